"""`anonymizer inspect`: what a set of logs holds, by count, kind and reason, never by value."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest

from anonymizer.tools.inspect import inspect_inputs, inspect_lines, string_kind

FIXTURES = Path(__file__).parent / "fixtures"
CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
CLI = [sys.executable, "-m", "anonymizer.cli"]

PLANTED_EMAIL = "zq.planted.learner@example.org"
PLANTED_USERNAME = "ZqPlantedLearner_42"


_EMPTY = object()


def event(event_type: str = "play_video", payload=_EMPTY, **extra) -> dict:
    base = {
        "username": PLANTED_USERNAME,
        "event_type": event_type,
        "event_source": "server",
        "ip": "203.0.113.77",
        "time": "2024-03-01T10:00:00+00:00",
        "context": {"user_id": 918273, "course_id": "course-v1:X+Y+Z"},
        "event": {} if payload is _EMPTY else payload,
    }
    base.update(extra)
    return base


def lines(*events: dict) -> list[bytes]:
    return [orjson.dumps(e) for e in events]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=dict(os.environ))


def test_event_types_are_counted_and_url_paths_grouped_as_url():
    inventory = inspect_lines(lines(event("play_video"), event("play_video"), event("/courses/x/about"), event("/u/someone")))
    assert {label: inv.events for label, inv in inventory.event_types.items()} == {"play_video": 2, "<url>": 2}


def test_every_encoding_of_event_is_counted():
    events = [
        event(payload={"a": 1}),
        event(payload=json.dumps({"a": 1})),
        event(payload="input_x_2_1=yes&input_x_3_1=no"),
        event(payload=["input_x_2_1=yes", "<p>html</p>"]),
        event(payload=""),
        event(payload=None),
        event(payload='{"cut": "mid-way'),
    ]
    no_payload = event()
    del no_payload["event"]
    inventory = inspect_lines(lines(*events, no_payload))
    assert inventory.encodings == Counter(
        {"dict": 1, "json-string": 1, "query-string": 1, "list": 1, "empty": 1, "null": 1, "unparseable": 1, "missing": 1}
    )


def test_value_kinds_are_recorded_per_path():
    payload = {
        "email": PLANTED_EMAIL,
        "count": 3,
        "score": 0.5,
        "done": True,
        "note": None,
        "blank": "",
        "when": "2024-03-01T10:00:00Z",
        "id": "57f6482141f1868ab2e4833efc17b5b8",
        "link": "https://lms.example/courses/x?u=1",
        "body": "a sentence with spaces",
        "digits": "918273",
    }
    fields = inspect_lines(lines(event(payload=payload))).event_types["play_video"].fields
    kinds = {path: dict(counter) for path, counter in fields.items()}
    assert kinds["event.email"] == {"email-like": 1}
    assert kinds["event.count"] == {"integer": 1}
    assert kinds["event.score"] == {"float": 1}
    assert kinds["event.done"] == {"boolean": 1}
    assert kinds["event.note"] == {"null": 1}
    assert kinds["event.blank"] == {"empty-string": 1}
    assert kinds["event.when"] == {"iso-time": 1}
    assert kinds["event.id"] == {"hex-id": 1}
    assert kinds["event.link"] == {"url": 1}
    assert kinds["event.body"] == {"text": 1}
    assert kinds["event.digits"] == {"numeric-string": 1}
    assert kinds["ip"] == {"ip-like": 1}
    assert kinds["context.user_id"] == {"integer": 1}


def test_kinds_of_the_same_path_accumulate_across_events():
    inventory = inspect_lines(lines(event(payload={"user_id": 5}), event(payload={"user_id": "5"}), event(payload={"user_id": None})))
    assert dict(inventory.event_types["play_video"].fields["event.user_id"]) == {"integer": 1, "numeric-string": 1, "null": 1}


def test_a_string_longer_than_the_threshold_is_long_text_whatever_its_length():
    assert string_kind("word" * 60) == "long-text"
    assert string_kind("word" * 600) == "long-text"


def test_a_json_string_payload_is_decoded_into_its_paths():
    inventory = inspect_lines(lines(event(payload=json.dumps({"id": "video-1", "currentTime": 12.5}))))
    assert set(inventory.event_types["play_video"].fields) >= {"event.id", "event.currentTime"}


def test_a_query_string_payload_is_decoded_into_its_parameter_names():
    inventory = inspect_lines(lines(event("problem_check", "input_abc_2_1=call+me&input_abc_3_1%5B%5D=choice_1")))
    fields = inventory.event_types["problem_check"].fields
    assert dict(fields["event.input_abc_2_1"]) == {"text": 1}
    assert "event.*" in fields  # `input_abc_3_1[]` is not a plain name


def test_a_list_payload_is_walked_as_list_items():
    inventory = inspect_lines(lines(event("problem_graded", ["input_abc_2_1=yes", "<p>an answer</p>"])))
    assert dict(inventory.event_types["problem_graded"].fields["event[*]"]) == {"query-string": 1, "text": 1}


def test_a_nested_json_string_is_a_json_string_and_its_contents_are_walked():
    saved = json.dumps({"parts": [{"text": "my essay"}]})
    fields = inspect_lines(lines(event("openassessmentblock.save_submission", {"saved_response": saved}))).event_types[
        "openassessmentblock.save_submission"
    ].fields
    assert dict(fields["event.saved_response"]) == {"json-string": 1}
    assert dict(fields["event.saved_response.parts[*].text"]) == {"text": 1}


def test_data_like_keys_are_reported_as_a_wildcard():
    payload = {
        "answers": {
            "b33cd53142feb18718a15bc13456a1e9_2_1": "x",
            PLANTED_EMAIL: "y",
            "i4x-edX-DemoX-problem-abc_2_1": "z",
        }
    }
    fields = inspect_lines(lines(event("problem_check", payload))).event_types["problem_check"].fields
    assert [path for path in fields if path.startswith("event.answers.")] == ["event.answers.*"]
    assert dict(fields["event.answers.*"]) == {"string": 3}


def test_rejected_lines_are_counted_by_reason():
    expected = json.loads((FIXTURES / "malformed.expected.json").read_text())
    reasons = Counter(e["reason"] for e in expected.values() if e["outcome"] == "rejected")
    inventory = inspect_inputs([FIXTURES / "malformed.log"])
    assert inventory.rejected == reasons
    assert inventory.events == sum(1 for e in expected.values() if e["outcome"] == "written")


def test_rejections_name_file_line_and_reason():
    inventory = inspect_inputs([FIXTURES / "malformed.log"])
    assert ("malformed.log", 7, "invalid_json") in inventory.rejections


def test_the_fixture_families_are_inventoried_with_their_sources_and_encodings():
    inventory = inspect_inputs([FIXTURES / "families"])
    problem_check = inventory.event_types["problem_check"]
    assert problem_check.sources == Counter({"browser": 3, "server": 2})
    assert problem_check.encodings == Counter({"query-string": 3, "dict": 2})
    assert inventory.event_types["<url>"].encodings == Counter({"json-string": 7, "unparseable": 1})
    assert inventory.rejected == Counter({"missing_event_type": 2})  # the two Segment-format lines


def test_the_json_report_holds_counts_encodings_and_kinds():
    report = inspect_inputs([FIXTURES / "families" / "video.jsonl"]).as_dict()
    assert report["events"] == 7
    assert report["encodings"] == {"dict": 1, "json-string": 6}
    assert report["event_types"]["play_video"]["fields"]["event.duration"] == {"float": 1}


def test_cli_inspect_never_prints_a_planted_value(tmp_path):
    log = tmp_path / "planted.log"
    planted = [
        event(payload={"email": PLANTED_EMAIL, "note": f"write to {PLANTED_EMAIL}", "user": PLANTED_USERNAME}),
        event("edx.forum.thread.created", json.dumps({"body": f"hi {PLANTED_USERNAME}", "target_username": PLANTED_USERNAME})),
        event("problem_check", f"input_a_2_1={PLANTED_EMAIL}&input_a_3_1={PLANTED_USERNAME}"),
        event(f"/u/{PLANTED_USERNAME}", json.dumps({"GET": {"next": [f"/u/{PLANTED_USERNAME}"]}, "POST": {}})),
    ]
    log.write_bytes(b"\n".join(lines(*planted)) + b"\n" + f'{{"username": "{PLANTED_USERNAME}", "event'.encode() + b"\n")
    report = tmp_path / "inventory.json"
    result = cli("inspect", str(log), "--json", str(report))
    assert result.returncode == 0, result.stderr
    assert "play_video" in result.stdout and "invalid_json 1" in result.stdout
    for text in (result.stdout, result.stderr, report.read_text()):
        assert PLANTED_EMAIL not in text
        assert PLANTED_USERNAME not in text
        assert "203.0.113.77" not in text


def test_cli_inspect_json_to_standard_output_prints_only_the_json(tmp_path):
    result = cli("inspect", str(FIXTURES / "families" / "video.jsonl"), "--json", "-")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["events"] == 7


def test_cli_inspect_of_a_missing_file_is_a_usage_error(tmp_path):
    result = cli("inspect", str(tmp_path / "absent.log"))
    assert result.returncode == 2
    assert "absent.log: no such file or directory" in result.stderr


@pytest.mark.corpus
def test_cli_inspect_over_the_corpus_completes_and_prints_no_username_or_email(tmp_path):
    from test_corpus import assert_no_corpus_identifier_in

    report = tmp_path / "corpus.json"
    result = cli("inspect", str(CORPUS), "--json", str(report))
    assert result.returncode == 0, result.stderr
    assert json.loads(report.read_text())["events"] > 2000
    assert_no_corpus_identifier_in(result.stdout + result.stderr + report.read_text())
