"""Counting what happened to every line, by outcome, reason, event type and field path.

No value from the logs is ever counted by itself. In the manifest an event type is named only
when a policy rule names it exactly; one that a glob matched is counted under that glob
(``edx.forum.*``, ``/*``), and every other under ``<other>``, since any client may send any event
type. Field paths use ``*`` for data-like keys. (``inspect`` and ``policy check``, which report to
the data steward and never into a package, use ``event_type_label``.)
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from collections import Counter
from dataclasses import dataclass, field

_PLAIN_EVENT_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_.:\-]{0,99}$")
_HEXISH = re.compile(r"[0-9a-f]{16,}")
MAX_REJECTIONS_LISTED = 1000
# Distinct dropped-field paths counted per event type; the rest are counted under OTHER_PATHS, so
# that events with thousands of distinct keys cannot grow the counts (and the manifest) without end.
MAX_FIELD_PATHS = 1000
OTHER_PATHS = "<other paths>"


def event_type_label(event_type: object) -> str:
    """How an event type is named in counts: as itself when it is a plain name, else a group."""
    if not isinstance(event_type, str):
        return "<missing>"
    if event_type.startswith("/"):
        return "<url>"
    if _PLAIN_EVENT_TYPE.match(event_type) and not _HEXISH.search(event_type):
        return event_type
    return "<other>"


UNNAMED = "<other>"


def policy_label(event_type: str, match: list[str] | None) -> str:
    """How the manifest counts EVENT_TYPE, matched by a rule with the patterns MATCH (None: no rule):
    as itself when a pattern names it exactly, as the glob that matched it, else ``<other>``."""
    if not match:
        return UNNAMED
    if event_type in match and not event_type.startswith("/") and not any(ch in event_type for ch in "*?["):
        return event_type
    for pattern in match:
        if any(ch in pattern for ch in "*?[") and fnmatchcase(event_type, pattern):
            return pattern
    return UNNAMED


class RejectionList(list):
    """The first LIMIT rejected lines as (file, line, reason); ``not_listed`` counts the rest, so
    that a file of garbage cannot grow a report without end. Without LIMIT, the manifest's
    ``MAX_REJECTIONS_LISTED`` applies (read when used)."""

    def __init__(self, listed=(), not_listed: int = 0, limit: int | None = None) -> None:
        super().__init__(listed)
        self.not_listed = not_listed
        self.limit = limit

    def _room(self) -> int:
        return (self.limit if self.limit is not None else MAX_REJECTIONS_LISTED) - len(self)

    def add(self, file: str, line: int, reason: str) -> None:
        if self._room() > 0:
            self.append((file, line, reason))
        else:
            self.not_listed += 1

    def merge(self, other: RejectionList) -> None:
        room = max(0, self._room())
        self.extend(other[:room])
        self.not_listed += other.not_listed + max(0, len(other) - room)


@dataclass
class Stats:
    """Counters for one run, or one part of a run; ``merge`` adds another's."""

    read: int = 0
    written: int = 0
    not_selected: int = 0  # events the policy would write that the run's selection left out
    dropped: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)
    event_types: dict[str, Counter] = field(default_factory=dict)
    fields: dict[tuple[str, str, str], int] = field(default_factory=Counter)
    rejections: RejectionList = field(default_factory=RejectionList)
    # Per event-type label, the first and last UTC day (YYYY-MM-DD) of the events written.
    days: dict[str, list[str]] = field(default_factory=dict)
    # Events written per place: (course key or None, UTC day or None).
    places: Counter = field(default_factory=Counter)
    _paths: dict[str, int] = field(default_factory=dict, repr=False, compare=False)  # distinct paths per event type

    def event(self, label: str, outcome: str) -> None:
        counter = self.event_types.get(label)
        if counter is None:
            counter = self.event_types[label] = Counter()
        counter[outcome] += 1

    @property
    def rejections_not_listed(self) -> int:
        return self.rejections.not_listed

    def reject(self, file: str, line: int, reason: str) -> None:
        self.rejected[reason] += 1
        self.rejections.add(file, line, reason)

    def place(self, label: str, course: str | None, day: str | None, events: int) -> None:
        """Count EVENTS written of LABEL, course COURSE and day DAY (a routing key's values)."""
        self.places[(course, day)] += events
        if day is not None:
            self._widen(label, day, day)

    def _widen(self, label: str, first: str, last: str) -> None:
        span = self.days.get(label)
        if span is None:
            self.days[label] = [first, last]
        else:  # ISO days compare as strings: exact, whatever the order batches merge in
            if first < span[0]:
                span[0] = first
            if last > span[1]:
                span[1] = last

    def merge(self, other: Stats) -> None:
        self.read += other.read
        self.written += other.written
        self.not_selected += other.not_selected
        for label, (first, last) in other.days.items():
            self._widen(label, first, last)
        self.places.update(other.places)
        self.dropped.update(other.dropped)
        self.rejected.update(other.rejected)
        for label, counter in other.event_types.items():
            self.event_types.setdefault(label, Counter()).update(counter)
        fields = self.fields
        for key, count in other.fields.items():
            if key not in fields:
                label = key[0]
                paths = self._paths.get(label, 0)
                if paths >= MAX_FIELD_PATHS:
                    key = (label, OTHER_PATHS, key[2])
                    if key not in fields:
                        fields[key] = 0
                else:
                    self._paths[label] = paths + 1
            fields[key] += count
        self.rejections.merge(other.rejections)

    def accounted(self) -> bool:
        """Every line read was written, dropped, rejected or not selected."""
        return self.read == self.written + sum(self.dropped.values()) + sum(self.rejected.values()) + self.not_selected

    def as_dict(self) -> dict:
        """The manifest's ``counts`` section."""
        fields: dict[str, dict[str, dict[str, int]]] = {}
        for (label, path, reason), count in sorted(self.fields.items()):
            fields.setdefault(label, {}).setdefault(path, {})[reason] = count
        event_types = {}
        for label, counter in sorted(self.event_types.items()):
            entry: dict = dict(sorted(counter.items()))
            span = self.days.get(label)
            if span is not None:
                entry["first_day"], entry["last_day"] = span
            event_types[label] = entry
        return {
            "read": self.read,
            "written": self.written,
            "dropped": dict(sorted(self.dropped.items())),
            "rejected": dict(sorted(self.rejected.items())),
            "not_selected": self.not_selected,
            "event_types": event_types,
            "dropped_fields": fields,
        }

    def courses(self) -> list[dict]:
        """The manifest's ``courses``: every course of the events written (None: no course), with
        its events and the events of each UTC day (``no_date``: events with no readable time)."""
        found: dict[str | None, dict] = {}
        for (course, day), events in self.places.items():
            entry = found.setdefault(course, {"course": course, "events": 0, "days": {}, "no_date": 0})
            entry["events"] += events
            if day is None:
                entry["no_date"] += events
            else:
                entry["days"][day] = entry["days"].get(day, 0) + events
        listed = []
        for course in sorted(found, key=lambda c: (c is None, c or "")):
            entry = found[course]
            entry["days"] = dict(sorted(entry["days"].items()))
            listed.append(entry)
        return listed
