"""The fictional people the adversarial set plants: awkward usernames, a short id, several scripts.

None of them appears in the fixtures, so a survivor is always one that the set planted.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Person:
    id: int
    username: str
    email: str
    name: str
    phone: str
    ip: str

    def values(self) -> dict[str, str]:
        """Every identifying value of the person, by kind."""
        return {
            "username": self.username,
            "user_id": str(self.id),
            "email": self.email,
            "name": self.name,
            "phone": self.phone,
            "ip": self.ip,
        }


@dataclass(frozen=True)
class Authored:
    """Ids of what a person made, each of which opens it, and its author, on the platform."""

    forum_post: str  # a forum thread they started (a 24-hex ObjectId)
    submission: str  # their ORA2 submission (a UUID)

    def values(self) -> dict[str, str]:
        return {"forum_post": self.forum_post, "submission": self.submission}


def authored(number: int) -> Authored:
    """The post and submission of person NUMBER: made up, never in the fixtures."""
    return Authored(f"65f0{number:02x}c0ffee{number:02x}d15c00{number:04x}", f"0d1e{number:04x}-5ab1-4e00-9c00-00000000{number:04x}")


PEOPLE = (
    Person(583021, "Mar.Tina-K", "martina.kovac@example.net", "Martina Kovač", "+44 20 7946 0321", "203.0.113.77"),
    Person(47, "zoë_łukasz", "zoe.lukasz@example.pl", "Zoë Łukasiewicz", "+48 512 345 678", "198.51.100.19"),
    Person(7301956, "quinn_harrow", "q.harrow+edx@example.org", "Quinn Harrowgate", "(617) 555-0143", "2001:db8:85a3::8a2e:370:7334"),
    Person(264013, "o.okonkwo-2", "obinna.okonkwo@example.com.ng", "Obinna Okonkwo", "+234 803 555 0187", "192.0.2.146"),
    Person(91544, "BeatrizQ", "bea.quiroga@example.com.br", "Beatriz Quiroga", "+55 11 91234-5678", "100.64.23.9"),
    Person(3318870, "王芳_wf", "wang.fang@example.cn", "王芳", "+86 138 0013 8000", "203.0.113.201"),
)


def write_roster(path: Path, people=PEOPLE) -> Path:
    """A roster CSV of PEOPLE (id, username, email, name), the format ``--roster`` reads."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "username", "email", "name"])
        for person in people:
            writer.writerow([person.id, person.username, person.email, person.name])
    return path
