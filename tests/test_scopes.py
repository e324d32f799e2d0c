"""Scoped keys (``--scope``) and per-course pseudonyms (``--pseudonyms per-course``)."""

from __future__ import annotations

import gzip
import pickle
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from anonymizer import Anonymizer, Key, UsageError, run
from anonymizer.core.keys import NO_COURSE, derive_course_key, derive_scoped_key
from anonymizer.core.outcomes import AccountingError, Route
from anonymizer.core.roster import Person, Roster, load_roster
from anonymizer.core.scoping import ScopedAnonymizer, make_anonymizer
from anonymizer.io.journal import mismatch
from anonymizer.package.manifest import MANIFEST_NAME, read_manifest
from test_resume import interrupted, make_logs, package_files

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_LOG = ROOT / "examples" / "tracking.log"
EXAMPLE_ROSTER = ROOT / "examples" / "roster.csv"
CLI = [sys.executable, "-m", "anonymizer.cli"]
_TEXT_PSEUDONYM = re.compile(r"\b[a-z]_[0-9a-f]{20}\b|\bu_[0-9]{1,16}\b")


# ------------------------------------------------------------------------------------ the derivation


def test_the_scoped_key_is_hkdf_of_the_master_key_with_the_label_as_info(key):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    expected = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"anonymizer scope v1", info="équipe-a".encode()).derive(key.secret)
    assert derive_scoped_key(key, "équipe-a").secret == expected
    # Pinned: a change here changes every scoped pseudonym, and must raise PSEUDONYM_VERSION.
    assert derive_scoped_key(key, "team-a").key_id == KNOWN_TEAM_A_KEY_ID
    assert derive_scoped_key(key, "team-a") == derive_scoped_key(key, "team-a")
    assert len({derive_scoped_key(key, label).secret for label in ("team-a", "team-b", "Team-a", "team-a2")}) == 4
    assert "team-a" not in repr(derive_scoped_key(key, "team-a")) and key.secret.hex() not in repr(derive_scoped_key(key, "team-a"))


KNOWN_TEAM_A_KEY_ID = "k1-9335a181162e7929"  # under the test key, bytes 0..31


def test_course_keys_differ_by_course_and_from_the_run_key(key):
    a, b, none = derive_course_key(key, "course-v1:X+A+1"), derive_course_key(key, "course-v1:X+B+1"), derive_course_key(key, None)
    assert len({a.secret, b.secret, none.secret, key.secret}) == 4
    assert derive_course_key(key, NO_COURSE) != none  # a course could never be named like the no-course scope
    assert derive_course_key(key, "course-v1:X+A+1").key_id == "k1-b1d3668cb0b75668"  # pinned, as above


@pytest.mark.parametrize("label", ["", "  ", " team", "team\n", "a" * 201, "tab\there"])
def test_a_bad_scope_label_is_a_usage_error(key, label):
    with pytest.raises(UsageError) as caught:
        derive_scoped_key(key, label)
    assert "--scope" in str(caught.value)


# ------------------------------------------------------------------------------------ two scopes


def pseudonyms_of(package: Path) -> set[str]:
    """Every pseudonym in a package: the text pseudonyms anywhere (fields, free text, URLs, nested
    JSON), and the numbers of every ``user_id`` field."""
    found: set[str] = set()

    def walk(value, key=None):
        if isinstance(value, dict):
            for name, item in value.items():
                walk(item, name)
        elif isinstance(value, list):
            for item in value:
                walk(item, key)
        elif isinstance(value, str):
            found.update(_TEXT_PSEUDONYM.findall(value))
            if value[:1] in "{[":
                try:
                    walk(orjson.loads(value), key)
                except orjson.JSONDecodeError:
                    pass
        elif isinstance(value, int) and not isinstance(value, bool) and key == "user_id":
            found.add(f"user_id:{value}")

    for path in sorted(package.rglob("*.gz")):
        for line in gzip.decompress(path.read_bytes()).splitlines():
            walk(orjson.loads(line))
    return found


@pytest.fixture(scope="module")
def scoped_packages(tmp_path_factory, research):
    key = Key(bytes(range(32)))
    roster, _ = load_roster([EXAMPLE_ROSTER])
    base = tmp_path_factory.mktemp("scopes")
    made = {}
    for name, scope in (("a", "team-a"), ("a2", "team-a"), ("b", "team-b"), ("none", None)):
        made[name] = run([EXAMPLE_LOG], base / name, research, key, jobs=1, roster=roster, scope=scope)
    return base, key


def test_two_scopes_share_no_pseudonym(scoped_packages):
    base, _ = scoped_packages
    a, b, plain = pseudonyms_of(base / "a"), pseudonyms_of(base / "b"), pseudonyms_of(base / "none")
    assert len(a) > 100 and len(b) == len(a) and len(plain) == len(a)  # the same people, under other names
    assert any(p.startswith("user_id:") for p in a) and any(p.startswith("u_") for p in a)
    assert a.isdisjoint(b)
    assert a.isdisjoint(plain) and b.isdisjoint(plain)


def test_the_same_scope_twice_makes_the_same_package(scoped_packages):
    base, _ = scoped_packages
    assert package_files(base / "a") == package_files(base / "a2")
    assert package_files(base / "a") != package_files(base / "b")


def test_the_manifest_names_the_scope_and_the_derived_key_never_the_master_key(scoped_packages):
    base, key = scoped_packages
    manifest = read_manifest(base / "a")
    text = (base / "a" / MANIFEST_NAME).read_text()
    assert manifest["scope"] == "team-a"
    assert manifest["key_id"] == derive_scoped_key(key, "team-a").key_id != key.key_id
    assert key.key_id not in text and key.secret.hex() not in text and "master_key_id" not in manifest
    assert derive_scoped_key(key, "team-a").secret.hex() not in text
    # The roster's keyed fingerprint is under the scoped key too: the same roster does not link packages.
    assert manifest["roster"]["hmac_sha256"] != read_manifest(base / "b")["roster"]["hmac_sha256"]
    assert "scope" not in read_manifest(base / "none") and read_manifest(base / "none")["pseudonyms"] == "global"


def test_an_unfinished_run_of_another_scope_is_not_resumed(tmp_path, research, key, monkeypatch):
    logs = make_logs(tmp_path / "logs")
    out = tmp_path / "package"
    interrupted(logs, out, research, key, monkeypatch, scope="team-a")
    for other, named in (({"scope": "team-b"}, "another --scope"), ({}, "--scope"), ({"scope": "team-a", "pseudonyms": "per-course"}, "--pseudonyms global")):
        with pytest.raises(UsageError) as caught:
            run([logs], out, research, key, jobs=1, **other)
        assert named in str(caught.value) and "--force" in str(caught.value)
    result = run([logs], out, research, key, jobs=1, scope="team-a")
    assert result.resumed == 2
    expected = tmp_path / "expected"
    run([logs], expected, research, key, jobs=1, scope="team-a")
    assert package_files(out) == package_files(expected)


def test_journal_headers_without_the_new_options_still_match():
    old = {"journal": 1, "key_id": "k1-x", "inputs": ["a"]}
    assert mismatch(old, dict(old)) is None
    assert mismatch(old, {**old, "scope": "s"}) == "no --scope"
    assert mismatch({**old, "geoip": "ab"}, old) == "--geoip"


def test_cli_scope_prints_the_derived_key_id(tmp_path, key_file, key):
    out = tmp_path / "p"
    result = subprocess.run([*CLI, "run", str(EXAMPLE_LOG), "--out", str(out), "--key-file", str(key_file), "--scope", "team-a", "-j", "1"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert derive_scoped_key(key, "team-a").key_id in result.stdout and key.key_id not in result.stdout + result.stderr
    bad = subprocess.run([*CLI, "run", str(EXAMPLE_LOG), "--out", str(tmp_path / "q"), "--key-file", str(key_file), "--scope", " "],
                         capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "--scope" in bad.stderr and "Traceback" not in bad.stderr
    bad = subprocess.run([*CLI, "run", str(EXAMPLE_LOG), "--out", str(tmp_path / "q"), "--key-file", str(key_file), "--pseudonyms", "per-file"],
                         capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "--pseudonyms" in bad.stderr


# ------------------------------------------------------------------------------------ per-course pseudonyms

ALICE, BOB = ("QXalice_77", "918273645"), ("QXbob_12", "55501234")
ROSTER = Roster([Person(ALICE[1], (ALICE[0],), ("qxalice@example.com",), ("Alice Quixote",)), Person(BOB[1], (BOB[0],), (), ("Bob Quimby",))])
COURSE_A, COURSE_B = "course-v1:QX+A+2024", "course-v1:QX+B+2024"


def forum_event(course: str | None, username: str = ALICE[0], user_id: str = ALICE[1]) -> bytes:
    context = {"user_id": int(user_id), "org_id": "QX"}
    if course is not None:
        context["course_id"] = course
    return orjson.dumps({
        "username": username, "event_type": "edx.forum.thread.created", "event_source": "server", "ip": "203.0.113.45",
        "event": {"body": f"thanks {BOB[0]}, see you", "title": "t", "user_id": int(user_id)},
        "context": context, "time": "2024-03-01T10:11:12+00:00",
    })


def page_event(course: str) -> bytes:
    """An implicit event: its course is only in its path."""
    return orjson.dumps({"username": ALICE[0], "event_type": f"/courses/{course}/courseware", "event_source": "server",
                         "context": {"user_id": int(ALICE[1])}, "time": "2024-03-01T10:11:12+00:00"})


def names_in(output: bytes) -> dict[str, object]:
    event = orjson.loads(output)
    return {"username": event["username"], "user_id": event["context"]["user_id"], "mention": _TEXT_PSEUDONYM.findall(event.get("event", {}).get("body", "") if isinstance(event.get("event"), dict) else "")}


def test_a_learner_has_one_pseudonym_per_course_in_fields_and_free_text(research, key):
    scoped = ScopedAnonymizer(research, key, ROSTER)
    lines = [forum_event(COURSE_A), forum_event(COURSE_B), forum_event(COURSE_A), page_event(COURSE_B), forum_event(None)]
    result = scoped.anonymize_batch(lines)
    a1, b1, a2, b_page, none = [names_in(line.output) for line in result.lines]
    assert a1 == a2 and a1["mention"] and a1["mention"] == a2["mention"]  # one pseudonym within a course
    assert b_page["username"] == b1["username"] and b_page["user_id"] == b1["user_id"]  # the path names the course
    for field in ("username", "user_id", "mention"):
        assert len({repr(a1[field]), repr(b1[field]), repr(none[field])}) == 3, field
    # Linked as in global mode: the username pseudonym derives from the course's user-id pseudonym.
    assert a1["username"] == f"u_{a1['user_id']}"
    # Neither equals the package-wide pseudonym.
    plain = names_in(Anonymizer(research, key, ROSTER).anonymize_batch([forum_event(COURSE_A)]).lines[0].output)
    assert plain["username"] not in (a1["username"], b1["username"], none["username"])
    # And a course's pseudonym is its course key's: the same in another batch, another run, another process.
    again = pickle.loads(pickle.dumps(ScopedAnonymizer(research, key, ROSTER)))
    assert names_in(again.anonymize_batch([forum_event(COURSE_B)]).lines[0].output) == b1
    assert names_in(Anonymizer(research, derive_course_key(key, COURSE_A), ROSTER).anonymize_batch([forum_event(COURSE_A)]).lines[0].output) == a1


def test_per_course_counts_and_rejections_are_the_plain_engines(research, key):
    lines = [forum_event(COURSE_A), b"not json", forum_event(COURSE_B), b"", page_event(COURSE_A),
             orjson.dumps({"event_type": "some.unknown", "context": {"course_id": COURSE_B}}), b"[1]", forum_event(None)]
    plain = Anonymizer(research, key, ROSTER).anonymize_batch(lines, 41, name="f.log")
    scoped = ScopedAnonymizer(research, key, ROSTER).anonymize_batch(lines, 41, name="f.log")
    assert scoped.stats == plain.stats
    assert list(scoped.stats.rejections) == [("f.log", 42, "invalid_json"), ("f.log", 44, "blank"), ("f.log", 47, "not_an_object")]
    assert [line.outcome for line in scoped.lines] == [line.outcome for line in plain.lines]
    assert [line.route for line in scoped.lines] == [line.route for line in plain.lines]


def test_the_rejection_list_keeps_the_first_in_line_order_past_its_limit(research, key, monkeypatch):
    import anonymizer.core.stats as stats_module

    monkeypatch.setattr(stats_module, "MAX_REJECTIONS_LISTED", 3)
    lines = [b"x", forum_event(COURSE_A), b"y", b"z", forum_event(COURSE_B), b"w", b"v"]
    plain = Anonymizer(research, key).anonymize_batch(lines)
    scoped = ScopedAnonymizer(research, key).anonymize_batch(lines)
    assert list(scoped.stats.rejections) == list(plain.stats.rejections) and len(plain.stats.rejections) == 3
    assert scoped.stats.rejections_not_listed == plain.stats.rejections_not_listed == 2


def test_an_event_routed_to_another_course_than_its_key_is_a_bug_that_stops_the_batch(research, key):
    class Misrouting(Anonymizer):
        def anonymize_batch(self, lines, first_line=1, *, name="<input>"):
            result = super().anonymize_batch(lines, first_line, name=name)
            result._results = [(output, Route("x", "course-v1:Other+C+1", None)) if type(output) is tuple else output for output in [r for r in result._results]]
            return result

    scoped = ScopedAnonymizer(research, key, engine=lambda policy, key, roster, geoip: Misrouting(policy, key, roster, geoip))
    with pytest.raises(AccountingError):
        scoped.anonymize_batch([forum_event(COURSE_A)])


def test_a_per_course_run_is_the_same_for_any_number_of_workers(tmp_path, research, key):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_bytes(b"\n".join([forum_event(COURSE_A), forum_event(COURSE_B), page_event(COURSE_A)] * 50) + b"\n")
    (logs / "b.log").write_bytes(b"\n".join([forum_event(COURSE_B), b"junk", forum_event(None)] * 50) + b"\n")
    one = run([logs], tmp_path / "one", research, key, jobs=1, roster=ROSTER, pseudonyms="per-course", scope="team-a")
    two = run([logs], tmp_path / "two", research, key, jobs=2, roster=ROSTER, pseudonyms="per-course", scope="team-a")
    assert package_files(tmp_path / "one") == package_files(tmp_path / "two")
    assert one.manifest["pseudonyms"] == "per-course" and one.manifest["counts"] == two.manifest["counts"]
    glob = run([logs], tmp_path / "global", research, key, jobs=1, roster=ROSTER, scope="team-a")
    assert pseudonyms_of(tmp_path / "one").isdisjoint(pseudonyms_of(tmp_path / "global"))
    assert glob.manifest["counts"] == one.manifest["counts"]


def test_make_anonymizer_names_the_modes(research, key):
    assert type(make_anonymizer(research, key)) is Anonymizer
    assert type(make_anonymizer(research, key, pseudonyms="per-course")) is ScopedAnonymizer
    with pytest.raises(ValueError):
        make_anonymizer(research, key, pseudonyms="per-file")


def test_run_refuses_an_unknown_pseudonym_mode_before_any_work(tmp_path, research, key):
    with pytest.raises(UsageError, match="pseudonyms"):
        run([EXAMPLE_LOG], tmp_path / "p", research, key, pseudonyms="per-file")
    assert not (tmp_path / "p").exists()
