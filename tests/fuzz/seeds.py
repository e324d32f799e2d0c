"""Seed corpora and dictionaries for the fuzz targets, built from the test fixtures.

Every person here is the fictional cast of ``tests/fixtures/people.json``; the seed lines come from
``tests/fixtures/`` and, when it is present, the shared corpus beside the repository. Nothing is
downloaded and nothing real is planted.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
FIXTURES = TESTS / "fixtures"
SHARED_CORPUS = TESTS.parents[1] / "shared" / "corpus"
POLICIES = TESTS.parent / "policies"
MAX_SEED_BYTES = 16 << 10


def cast() -> list[dict]:
    """The fictional people of the fixtures: id, username, email, name."""
    return json.loads((FIXTURES / "people.json").read_text(encoding="utf-8"))["people"]


def planted_lines() -> list[bytes]:
    """Events that carry the cast's identifiers in the places the research policy must clean."""
    out = []
    for person in cast():
        user, mail, uid = person["username"], person["email"], person["id"]
        other = cast()[(cast().index(person) + 1) % len(cast())]
        events = [
            {"username": user, "event_type": "edx.forum.thread.created", "event_source": "server",
             "context": {"user_id": uid, "username": user, "course_id": "course-v1:X+Y+Z", "path": f"/u/{user}"},
             "event": {"body": f"hi @{other['username']} write {mail} or {other['email']} id {other['id']}",
                       "title": f"{other['name']} here", "target_username": other["username"]}},
            {"username": user, "event_type": f"/courses/course-v1:X+Y+Z/progress/{uid}/", "event_source": "server",
             "event": json.dumps({"GET": {"email": [mail]}, "POST": {"username": [user]}}), "context": {"user_id": str(uid)}},
            {"username": user, "event_type": "problem_check", "event_source": "browser",
             "event": f"input_1={other['username']}&input_2={mail.replace('@', '%40')}",
             "referer": f"https://lms.example/u/{other['username']}?email={mail}", "page": f"https://lms.example/users/{uid}"},
            {"username": user, "event_type": "openassessmentblock.save_submission", "event_source": "server",
             "event": {"saved_response": json.dumps({"parts": [{"text": f"{other['name']} ({other['username']}) {mail}"}]})}},
            # A username or user id as a part of values that shape and URL rules keep: a course
            # key's run, a problem id, a host, an event name, an i4x segment, a GET answer.
            {"username": user, "event_type": "problem_check", "event_source": "server", "host": f"{other['username']}.example.org",
             "name": f"edx.{other['username']}.viewed", "page": f"https://lms.example/courses/course-v1:X+Y+Z/courseware/i4x:{other['username']}/",
             "context": {"user_id": uid, "course_id": f"course-v1:X+Y+{other['username']}", "org_id": f"{other['username']}-org"},
             "event": {"problem_id": f"block-v1:X+Y+Z+type@problem+block@{other['username']}_q1", "answers": {"i4x-X-Y-problem-a_2_1": f"a+{other['id']}+b"}}},
        ]
        out.extend(json.dumps(event).encode() for event in events)
    return out


def line_seeds() -> list[bytes]:
    """Lines of the fixtures and the shared corpus, and the planted events; no duplicates."""
    files = sorted((FIXTURES / "families").glob("*.jsonl")) + [FIXTURES / "malformed.log", FIXTURES / "bom.log"]
    if SHARED_CORPUS.is_dir():
        files += sorted(p for p in SHARED_CORPUS.rglob("*.log") if p.is_file())
        files += sorted(SHARED_CORPUS.rglob("tracking.log"))
    seen, seeds = set(), []
    for line in planted_lines() + [line for path in files for line in path.read_bytes().splitlines()]:
        if line and len(line) <= MAX_SEED_BYTES and line not in seen:
            seen.add(line)
            seeds.append(line)
    return seeds


def line_tokens() -> list[bytes]:
    """Dictionary entries for the line target: the cast's identifiers, JSON keys of the seeds,
    and the encodings that could disguise a value."""
    tokens = {b'"event_type"', b'"event"', b'"username"', b'"context"', b'"user_id"', b'"event_source"',
              b'"browser"', b'"server"', b'\\u0040', b'%40', b'&#64;', b'&amp;', b'\\"', b'{"', b'":"', b'[{',
              b'http://', b'https://', b'/u/', b'/users/', b'?username=', b'mailto:', b'\\ud800', b'1e999'}
    for person in cast():
        for value in (person["username"], person["email"], str(person["id"]), person["name"]):
            tokens.add(value.encode())
            tokens.add(value.upper().encode())
    for line in line_seeds():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            tokens.update(f'"{key}"'.encode() for key in event if len(key) < 40)
            if isinstance(event.get("event_type"), str) and len(event["event_type"]) < 60:
                tokens.add(event["event_type"].encode())
    return sorted(tokens)


def policy_seeds() -> list[bytes]:
    """The shipped policies and small policies that exercise each part of the language."""
    seeds = [path.read_bytes() for path in sorted(POLICIES.glob("*.yaml"))]
    seeds += [
        b"name: p\nextends: research\nreplace_operators: {scrub_text: drop}\n",
        b"name: p\nenvelope:\n  username: {op: pseudonymize, identity: username}\n  ip: {op: mask_ip, ipv4_prefix: 16}\n"
        b"events:\n  - match: [a, b.*]\n    source: browser\n    fields: {x.y[*].z: keep, 'q[0]': redact}\n",
        b"name: p\nidentities: {username: {format: text, prefix: u_}, user_id: {format: number}}\nunknown_events: envelope\n"
        b"events:\n  - match: s\n    fields:\n      r: {decode: json, fields: {parts[*].text: scrub_text}}\n"
        b"      old: {op: keep, when: {setting: [a, 1, null]}}\n",
        b"name: p\nevents:\n  - match: '/*'\n    envelope: {event_type: scrub_url}\n    action: envelope\n",
    ]
    return seeds


def policy_tokens() -> list[bytes]:
    words = ("name extends identities unknown_events replace_operators envelope events match source payload fields "
             "action decode when op identity format prefix keep drop redact pseudonymize mask_ip generalize_agent "
             "scrub_url scrub_text truncate_time json query text number research strict browser server unit hour "
             "ipv4_prefix ipv6_prefix detectors phone_regions roster actor_usernames user_markers secret_markers")
    return sorted({word.encode() for word in words.split()} | {b"[*]", b".*", b"'/*'", b"{", b"}", b": ", b"\n  - ", b"&a", b"*a", b"<<", b"!!python"})


def write_corpus(directory: Path, seeds: list[bytes]) -> Path:
    """SEEDS as files named by their hash, as libFuzzer keeps a corpus."""
    directory.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        (directory / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
    return directory


def write_dictionary(path: Path, tokens: list[bytes]) -> Path:
    """TOKENS in libFuzzer's dictionary format: one quoted entry a line, other bytes as \\xNN."""
    def quoted(token: bytes) -> str:
        return "".join(chr(b) if 0x20 <= b < 0x7F and b not in b'"\\' else f"\\x{b:02x}" for b in token)

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f'"{quoted(token)}"\n' for token in tokens), encoding="ascii")
    return path


def prepare(directory: Path) -> None:
    """Seed corpora (added to any corpus already there) and dictionaries for both targets."""
    write_corpus(directory / "line-corpus", line_seeds())
    write_dictionary(directory / "line.dict", line_tokens())
    write_corpus(directory / "policy-corpus", policy_seeds())
    write_dictionary(directory / "policy.dict", policy_tokens())


if __name__ == "__main__":
    import sys

    prepare(Path(sys.argv[1]))
