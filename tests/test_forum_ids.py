"""Forum post ids and ORA2 submission UUIDs: keyed pseudonyms of their own identities.

Anyone enrolled can open a forum thread, response or comment by its id and see its author (staff
open an ORA2 submission, and its learner, by its UUID), so a raw id would undo the author's
pseudonym. The research policy pseudonymizes them (``forum_post``, ``submission``); a post's id in
a page URL gets the pseudonym its events' fields get, so page views still join their thread.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import orjson
import pytest

from anonymizer.core import native
from anonymizer.core.engine import Anonymizer
from anonymizer.core.keys import Key
from anonymizer.core.policy import load_policy, parse_policy
from anonymizer.core.pseudonyms import Pseudonymizer
from anonymizer.verify.harvest import harvest_inputs, identifier_fields
from tests.support import every_string

ROOT = Path(__file__).resolve().parent
FAMILIES = ROOT / "fixtures" / "families"
CORPUS = ROOT.parent.parent / "shared" / "corpus" / "event-routing-backends" / "processed-events"
KEY = Key(bytes(range(32)))
OTHER_KEY = Key(b"\x07" * 32)
COURSE = "course-v1:NorthwindX+Astro101+2024_T1"
THREAD = "5eadf5ec7c1f2d81018cb156"  # the study-group thread of the forum family
RESPONSE = "b37c6a26c25934ec2f983731"
SUBMISSION = "c1794c38-b6ed-4bee-9311-c7dd359fef9b"
_HEX24 = re.compile(r"\b[0-9a-f]{24}\b")
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")


def pseudonym(namespace: str, value: str, prefix: str, key: Key = KEY) -> str:
    return prefix + Pseudonymizer(key).text(namespace, value.lower())


def engines(policy: str = "research", key: Key = KEY) -> list:
    loaded = load_policy(policy)
    found = [Anonymizer(loaded, key)]
    if native.available():
        found.append(native.NativeAnonymizer(loaded, key))
    return found


def written(anonymizer, data: bytes) -> list[bytes]:
    return anonymizer.anonymize_batch(data).written()


def forum_ids(data: bytes, pattern: re.Pattern = _HEX24) -> set[str]:
    """The ids of the forum's posts in DATA (from the fields that name them)."""
    found = set()
    for line in data.splitlines():
        event = json.loads(line)
        payload = event.get("event") or event.get("data") or {}
        if isinstance(payload, str):
            payload = json.loads(payload)
        for value in (payload.get("id"), payload.get("discussion", {}).get("id"), payload.get("response", {}).get("id"),
                      payload.get("submission_uuid"), payload.get("submission_returned_uuid")):
            if isinstance(value, str) and pattern.fullmatch(value):
                found.add(value)
    return found


def thread_view(url_id: str, payload_id: str) -> dict:
    page = f"https://lms.example.org/courses/{COURSE}/discussion/forum/8b22e514eabc2f0c24485fe4174dd699/threads/{url_id}"
    return {
        "username": "zelda-q", "event_type": "edx.forum.thread.viewed", "event_source": "server", "page": page,
        "time": "2024-03-12T09:00:00+00:00", "referer": page,
        "context": {"course_id": COURSE, "user_id": 530114, "path": f"/api/discussion/v1/threads/{url_id}/"},
        "event": {"id": payload_id, "commentable_id": "8b22e514eabc2f0c24485fe4174dd699", "url": page},
    }


# ---------------------------------------------------------------- one pseudonym, payload and URL


@pytest.mark.parametrize("engine", range(2), ids=["python", "native"])
def test_a_thread_id_in_the_payload_and_in_its_urls_is_one_pseudonym(engine):
    chosen = engines()
    if engine >= len(chosen):
        pytest.skip("the native engine is not built (`make venv` builds it when cargo is on PATH)")
    # The URL writes the id in upper case: an ObjectId is hex, the case says nothing.
    out = json.loads(written(chosen[engine], orjson.dumps(thread_view(THREAD.upper(), THREAD)) + b"\n")[0])
    expected = pseudonym("forum_post", THREAD, "fp_")
    assert out["event"]["id"] == expected
    assert out["page"].endswith(f"/threads/{expected}") and out["referer"] == out["page"] == out["event"]["url"]
    assert out["context"]["path"] == f"/api/discussion/v1/threads/{expected}/"
    # The discussion topic is course structure: kept.
    assert out["event"]["commentable_id"] == "8b22e514eabc2f0c24485fe4174dd699"


def test_a_comment_joins_its_thread_and_its_response():
    lines = [json.loads(line) for line in written(engines()[0], (FAMILIES / "forum.jsonl").read_bytes())]
    by_type = {line["event_type"]: line for line in lines}
    thread = pseudonym("forum_post", THREAD, "fp_")
    response = pseudonym("forum_post", RESPONSE, "fp_")
    comment = by_type["edx.forum.comment.created"]
    assert comment["event"]["discussion"]["id"] == thread and comment["event"]["response"]["id"] == response
    assert by_type["edx.forum.response.created"]["event"]["id"] == response
    # The reply to the response, by its URL: /discussion/comments/{response id}/reply.
    assert comment["context"]["path"] == f"/courses/{COURSE}/discussion/comments/{response}/reply"


def test_thread_id_and_parent_id_fields_are_pseudonyms_of_the_same_identity():
    event = thread_view(THREAD, RESPONSE)
    event["event"].update({"thread_id": THREAD, "parent_id": RESPONSE})
    out = Anonymizer(load_policy("research"), KEY).anonymize_event(event)
    assert out["event"]["thread_id"] == pseudonym("forum_post", THREAD, "fp_")
    assert out["event"]["parent_id"] == out["event"]["id"] == pseudonym("forum_post", RESPONSE, "fp_")


def test_a_submission_uuid_is_one_pseudonym_in_every_ora2_event():
    lines = [json.loads(line) for line in written(engines()[0], (FAMILIES / "ora2.jsonl").read_bytes())]
    expected = pseudonym("submission", SUBMISSION, "sub_")
    seen = [line["event"].get("submission_uuid") or line["event"].get("submission_returned_uuid") for line in lines]
    assert seen.count(expected) == 4  # create, get_peer_submission, peer_assess, submit_feedback
    assert SUBMISSION not in b"".join(written(engines()[0], (FAMILIES / "ora2.jsonl").read_bytes())).decode()


def test_another_key_gives_other_pseudonyms():
    event = orjson.dumps(thread_view(THREAD, THREAD)) + b"\n"
    one = json.loads(written(engines(key=KEY)[0], event)[0])
    other = json.loads(written(engines(key=OTHER_KEY)[0], event)[0])
    assert one["event"]["id"] != other["event"]["id"]
    assert other["event"]["id"] == pseudonym("forum_post", THREAD, "fp_", OTHER_KEY)
    assert other["page"].endswith("/threads/" + other["event"]["id"])


def test_the_namespaces_differ_where_the_values_are_equal():
    # A post id is not a team's, a session's or a submission's: one value, other pseudonyms.
    assert pseudonym("forum_post", THREAD, "") != pseudonym("team", THREAD, "")
    assert pseudonym("forum_post", THREAD, "") != pseudonym("submission", THREAD, "")


# ---------------------------------------------------------------- no raw id anywhere


def _fixture_inputs() -> list[bytes]:
    found = [(FAMILIES / "forum.jsonl").read_bytes(), (FAMILIES / "ora2.jsonl").read_bytes()]
    if CORPUS.is_dir():
        # The event-routing-backends fixtures, one pretty-printed event per file: one line each.
        found.append(b"".join(orjson.dumps(json.loads(p.read_bytes())) + b"\n" for p in sorted(CORPUS.glob("edx.forum.*.json"))))
    return found


@pytest.mark.parametrize("policy", ["research", "strict"])
def test_no_raw_post_or_submission_id_survives_in_either_engine(policy):
    for data in _fixture_inputs():
        raw = forum_ids(data) | forum_ids(data, _UUID)
        assert raw, "the fixture holds post or submission ids"
        outputs = [written(anonymizer, data) for anonymizer in engines(policy)]
        assert all(out == outputs[0] for out in outputs)  # the engines agree, byte for byte
        assert outputs[0], "the fixture's events are written"
        for line in outputs[0]:
            text = every_string(line).lower()
            for value in raw:
                assert value.lower() not in text


# ---------------------------------------------------------------- policies without the identity


def test_a_policy_without_the_identity_redacts_a_post_id_in_a_url():
    text = b"""
name: old
envelope:
  event_type: {op: keep, shape: word}
  page: scrub_url
events:
  - match: edx.forum.*
    fields: {}
"""
    policy = parse_policy(text, "old.yaml")
    assert "forum_post" not in policy.identities
    out = Anonymizer(policy, KEY).anonymize_event(thread_view(THREAD, THREAD))
    assert out["page"].endswith("/threads/[REDACTED]")


# ---------------------------------------------------------------- verify


def test_verify_harvests_post_ids_only_from_the_events_that_hold_them(tmp_path):
    fields = identifier_fields(load_policy("research"))
    assert "id" not in fields.payload  # a video's id is a block key, not a post
    assert any(kind == "forum_post" and tokens == ("discussion", "id") for _, tokens, kind in fields.scoped)
    log = tmp_path / "tracking.log"
    video = {"username": "zelda-q", "event_type": "play_video", "event_source": "browser", "event": json.dumps({"id": "a0effb954cca4759994f1ac9e9434bf4"})}
    log.write_bytes((FAMILIES / "forum.jsonl").read_bytes() + orjson.dumps(video) + b"\n")
    found = {identifier.value: identifier.kind for identifier in harvest_inputs([log], fields)}
    assert found[THREAD] == found[RESPONSE] == "forum_post"
    assert "a0effb954cca4759994f1ac9e9434bf4" not in found


# ---------------------------------------------------------------- the codebook


def test_the_codebook_says_what_the_post_ids_and_urls_became():
    from anonymizer.core.lowering import lower
    from anonymizer.core.plan import Op
    from anonymizer.package.codebook import describe_op

    plan = lower(load_policy("research"))
    pseudonymize = Op("pseudonymize", {"identity": "forum_post"}, "leaves", True)
    assert "`fp_` + 20 hex digits" in describe_op(pseudonymize, plan) and "forum post id" in describe_op(pseudonymize, plan)
    submission = Op("pseudonymize", {"identity": "submission"}, "leaves", True)
    assert "`sub_` + 20 hex digits" in describe_op(submission, plan) and "ORA2 submission UUID" in describe_op(submission, plan)
    url = Op("scrub_url", {}, "leaves", True)
    assert "becomes its `fp_` pseudonym" in describe_op(url, plan)
    old = lower(parse_policy(b"name: old\nenvelope:\n  page: scrub_url\n", "old.yaml"))
    assert "comment id becomes [REDACTED]" in describe_op(url, old)


def test_verify_passes_the_pseudonyms_and_finds_a_raw_post_id_put_back(tmp_path):
    from anonymizer import run
    from anonymizer.verify import verify_package
    from tests.test_verify import rewrite

    raw = tmp_path / "raw" / "forum.log"
    raw.parent.mkdir()
    raw.write_bytes((FAMILIES / "forum.jsonl").read_bytes() + (FAMILIES / "ora2.jsonl").read_bytes())
    package = tmp_path / "package"
    run([raw], package, load_policy("research"), KEY)
    report = verify_package(package, against=[raw])
    assert report.ok, [finding.describe() for finding in report.findings]

    def keep_raw(line: dict) -> None:
        line["event"]["id"] = THREAD  # as the research policy before forum_post kept it

    rewrite(package, keep_raw, name=_file_of(package, "edx.forum.thread.created"))
    report = verify_package(package, against=[raw])
    assert not report.ok and {finding.kind for finding in report.findings} == {"forum_post"}


def _file_of(package: Path, event_type: str) -> str:
    """The package file whose first line is an event of EVENT_TYPE."""
    import gzip

    for path in sorted(package.rglob("*.gz")):
        first = gzip.decompress(path.read_bytes()).splitlines()[0]
        if json.loads(first)["event_type"] == event_type:
            return str(path.relative_to(package))
    raise AssertionError(f"no package file begins with {event_type}")
