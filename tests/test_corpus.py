"""The real fixtures of public Open edX projects, from ../shared/corpus, through the default policy."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from anonymizer import run
from anonymizer.core.lines import parse_line

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
pytestmark = pytest.mark.corpus

# Some account names in these fixtures are also words the logs use for other things: enrollment
# modes, "anonymous" flags, the "Other" of a generalized agent. They are checked as values only.
COMMON_WORDS = {"honor", "audit", "verified", "staff", "other", "anonymous"}


def corpus_logs() -> list[Path]:
    return sorted(p for p in CORPUS.rglob("*.log") if "expected-output" not in p.parts)


def harvest(paths: list[Path]) -> dict[str, set[str]]:
    """Every identifier the raw logs hold, by kind, as the policy would see it."""
    found: dict[str, set[str]] = {k: set() for k in ("username", "user_id", "ip", "session", "agent", "email")}
    for path in paths:
        for line in path.read_bytes().splitlines():
            found["email"].update(m.decode() for m in re.findall(rb"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", line))
            event = parse_line(line)
            if not isinstance(event, dict):
                continue
            context = event.get("context") if isinstance(event.get("context"), dict) else {}
            for kind, value in (
                ("username", event.get("username")),
                ("username", context.get("username")),
                ("user_id", context.get("user_id")),
                ("ip", event.get("ip")),
                ("ip", context.get("ip")),
                ("session", event.get("session")),
                ("session", context.get("session")),
                ("agent", event.get("agent")),
                ("agent", context.get("agent")),
            ):
                if value not in (None, "") and not isinstance(value, (dict, list)):
                    found[kind].add(str(value))
    return found


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    from anonymizer import Key, load_policy

    out = tmp_path_factory.mktemp("corpus") / "package"
    result = run(corpus_logs(), out, load_policy("research"), Key(b"\x05" * 32))
    return out, result


def output_values(out: Path) -> tuple[str, list]:
    text = "".join(gzip.decompress(p.read_bytes()).decode() for p in sorted(out.glob("*.gz")))
    return text, [json.loads(line) for line in text.splitlines()]


def strings_in(value, path=""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from strings_in(item, f"{path}.{key}")
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item, f"{path}[]")
    elif value is not None:
        yield path, str(value)


def test_every_corpus_line_is_accounted_for(package):
    out, result = package
    manifest = json.loads((out / "manifest.json").read_text())
    counts = manifest["counts"]
    total_lines = sum(len(p.read_bytes().splitlines()) for p in corpus_logs())
    assert counts["read"] == total_lines
    assert counts["read"] == counts["written"] + sum(counts["dropped"].values()) + sum(counts["rejected"].values())
    assert counts["written"] > 2000


def test_no_raw_identifier_from_the_corpus_survives(package):
    out, _ = package
    text, events = output_values(out)
    identifiers = harvest(corpus_logs())
    lowered = text.lower()
    for kind in ("email", "session", "agent"):
        for value in identifiers[kind]:
            assert value.lower() not in lowered, kind
    for value in identifiers["ip"]:
        if not value.endswith(".0"):  # a value that is already a /24 network masks to itself
            assert not re.search(r"(?<![\d.])" + re.escape(value) + r"(?![\d])", text), "ip"
    values = [(path, v) for event in events for path, v in strings_in(event)]
    usernames = identifiers["username"]
    user_ids = identifiers["user_id"]
    for path, value in values:
        leaf = path.rsplit(".", 1)[-1]
        if leaf in ("username", "student", "instructor", "target_username", "user"):
            assert value not in usernames, path
        if leaf.endswith("user_id") or leaf == "user_id":
            assert value not in user_ids, path
    for value in usernames:
        if len(value) >= 5 and value not in COMMON_WORDS:
            assert value.lower() not in lowered, "username"


def test_the_corpus_manifest_names_no_raw_value(package):
    out, _ = package
    manifest = (out / "manifest.json").read_text()
    identifiers = harvest(corpus_logs())
    for kind, values in identifiers.items():
        for value in values:
            if len(value) >= 5 and value not in COMMON_WORDS:
                assert value not in manifest, kind


def assert_no_corpus_identifier_in(printed: str) -> None:
    """No email, and no distinctive username, of the corpus appears in PRINTED."""
    identifiers = harvest(corpus_logs())
    for value in identifiers["email"]:
        assert value not in printed, "email"
    for value in identifiers["username"]:
        if len(value) >= 5 and value not in COMMON_WORDS:
            assert value not in printed, "username"
