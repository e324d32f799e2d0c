"""`anonymizer policy check`: a valid policy, and what it would drop from a sample, before a release."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from anonymizer import Key, parse_policy, run
from anonymizer.tools.policy_check import PolicyChecker, check_policy, format_check, verdict

FIXTURES = Path(__file__).parent / "fixtures"
CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
CLI = [sys.executable, "-m", "anonymizer.cli"]

PLANTED_EMAIL = "zq.planted.learner@example.org"
PLANTED_USERNAME = "ZqPlantedLearner_42"

POLICY = b"""
name: small
envelope:
  event_type: {op: keep, shape: word}
  event_source: {op: keep, shape: word}
  username: {op: pseudonymize, identity: username}
  time: {op: keep, shape: iso_time}
events:
  - match: play_video
    fields: {id: {op: keep, shape: slug}, currentTime: {op: keep, shape: number}}
  - match: page_close
    action: drop
  - match: edx.forum.*
    fields: {body: scrub_text}
  - match: problem_check
    source: browser
    payload: drop
"""


@pytest.fixture()
def policy_file(tmp_path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_bytes(POLICY)
    return path


@pytest.fixture()
def small(policy_file):
    return parse_policy(POLICY, str(policy_file))


def event(event_type: str, payload, source: str = "browser", **extra) -> dict:
    return {
        "username": PLANTED_USERNAME,
        "event_type": event_type,
        "event_source": source,
        "time": "2024-03-01T10:00:00+00:00",
        "event": payload,
        **extra,
    }


def write_sample(path: Path, *events: dict) -> Path:
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return path


def checked(policy, *events: dict):
    checker = PolicyChecker(policy)
    checker.add_lines(orjson.dumps(e) for e in events)
    return checker.finish()


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=dict(os.environ))


# ---------------------------------------------------------------- the library


def test_an_event_type_no_rule_matches_is_reported_as_unhandled(small):
    check = checked(small, event("play_video", {"id": "v"}), event("edx.video.new_thing", {"id": "v"}), event("edx.video.new_thing", {}))
    assert check.unhandled_event_types == {"edx.video.new_thing": 2}


def test_a_field_no_rule_names_is_reported_with_its_path(small):
    check = checked(small, event("play_video", json.dumps({"id": "v", "currentTime": 1, "speed": "1.5"})))
    assert check.unnamed_fields == {"play_video": {"event.speed": 1}}


def test_an_unnamed_envelope_field_is_reported_too(small):
    check = checked(small, event("play_video", {"id": "v"}, ip="203.0.113.7"))
    assert check.unnamed_fields == {"play_video": {"ip": 1}}


def test_under_unknown_events_envelope_an_unmatched_event_type_is_still_unhandled(policy_file):
    policy = parse_policy(POLICY + b"unknown_events: envelope\n", str(policy_file))
    check = checked(policy, event("edx.video.new_thing", {"x": 1}))
    assert check.unhandled_event_types == {"edx.video.new_thing": 1}
    assert "kept as envelope only" in format_check(check)


def test_a_rule_with_action_drop_counts_as_handled(small):
    check = checked(small, event("page_close", ""))
    assert check.unhandled_event_types == {}
    assert check.dropped_by_rule == {"page_close": 1}


def test_url_event_types_are_reported_as_url(small):
    check = checked(small, event(f"/u/{PLANTED_USERNAME}", "{}", source="server"))
    assert check.unhandled_event_types == {"<url>": 1}


def test_rules_that_matched_no_event_are_listed_by_index(small):
    check = checked(small, event("play_video", {"id": "v"}), event("edx.forum.thread.created", {"body": "hi"}))
    assert check.unused_rules == [1, 3]


def test_a_rule_for_another_source_does_not_count_as_matched(small):
    check = checked(small, event("problem_check", {"answers": {}}, source="server"))
    assert 3 in check.unused_rules
    assert check.unhandled_event_types == {"problem_check": 1}


def test_an_unparseable_payload_is_reported_but_is_not_an_unnamed_field(small):
    check = checked(small, event("play_video", '{"id": "cut mid-'))
    assert check.dropped_fields(("unparseable",)) == {"play_video": {"event": {"unparseable": 1}}}
    assert check.unnamed_fields == {}


def test_rejected_sample_lines_are_counted_by_reason(research):
    check = check_policy(research, [FIXTURES / "malformed.log"])
    expected = json.loads((FIXTURES / "malformed.expected.json").read_text())
    assert sum(check.rejected.values()) == sum(1 for e in expected.values() if e["outcome"] == "rejected")
    assert check.rejected["missing_event_type"] == 1


def test_the_check_and_a_run_agree_on_what_is_dropped(tmp_path, small):
    # The check and a real run must never disagree: same unhandled event types, same dropped fields.
    check = check_policy(small, [FIXTURES / "families"])
    result = run([FIXTURES / "families"], tmp_path / "package", small, Key(bytes(32)))
    counts = result.manifest["counts"]
    assert sum(check.unhandled_event_types.values()) == counts["dropped"]["event_type_not_in_policy"]
    assert check.dropped_fields() == counts["dropped_fields"]


def test_a_policy_without_a_sample_is_only_validated(small):
    check = check_policy(small)
    assert not check.sampled
    assert verdict(check, strict=True) == (True, "ok (--strict)")


def test_strict_fails_on_unhandled_event_types_but_not_on_unnamed_fields(small):
    check = checked(small, event("edx.video.new_thing", {}), event("play_video", {"id": "v", "speed": 1}))
    assert verdict(check)[0] is True
    assert verdict(check, strict=True)[0] is False
    assert verdict(check, strict_fields=True)[0] is False


# ---------------------------------------------------------------- the command line


def test_cli_check_of_a_valid_policy_without_a_sample_exits_0(policy_file):
    result = cli("policy", "check", str(policy_file))
    assert result.returncode == 0, result.stderr
    assert "valid, 4 event rule(s)" in result.stdout


def test_cli_check_lists_the_unknown_event_type_and_the_unnamed_field(tmp_path, policy_file):
    sample = write_sample(tmp_path / "sample.log", event("edx.video.new_thing", {}), event("play_video", {"id": "v", "speed": 1}))
    result = cli("policy", "check", str(policy_file), "--sample", str(sample))
    assert result.returncode == 0, result.stderr
    assert "event types no rule handles (dropped, unknown_events: drop): 1" in result.stdout
    assert "edx.video.new_thing" in result.stdout
    assert "event.speed" in result.stdout


def test_cli_strict_exits_1_when_an_event_type_is_unhandled(tmp_path, policy_file):
    sample = write_sample(tmp_path / "sample.log", event("play_video", {"id": "v"}), event("edx.video.new_thing", {}))
    result = cli("policy", "check", str(policy_file), "--sample", str(sample), "--strict")
    assert result.returncode == 1
    assert "FAILED: 1 event type(s) in the sample are handled by no rule (--strict)" in result.stdout


def test_cli_strict_exits_0_when_every_event_type_is_handled(tmp_path, policy_file):
    sample = write_sample(tmp_path / "sample.log", event("play_video", {"id": "v", "extra": 1}), event("page_close", ""))
    result = cli("policy", "check", str(policy_file), "--sample", str(sample), "--strict")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sample: 1 file(s), 2 lines, 2 events of 2 event type(s)" in result.stdout
    assert "event types no rule handles: none" in result.stdout
    assert "event.extra" in result.stdout  # unnamed, reported, but not a --strict failure
    assert result.stdout.rstrip().endswith("ok (--strict)")


def test_cli_strict_fields_exits_1_on_an_unnamed_field(tmp_path, policy_file):
    sample = write_sample(tmp_path / "sample.log", event("play_video", {"id": "v", "extra": 1}))
    result = cli("policy", "check", str(policy_file), "--sample", str(sample), "--strict-fields")
    assert result.returncode == 1
    assert "(--strict-fields)" in result.stdout


def test_cli_strict_without_a_sample_is_a_usage_error(policy_file):
    result = cli("policy", "check", str(policy_file), "--strict")
    assert result.returncode == 2
    assert "--sample" in result.stderr


def test_cli_takes_several_sample_files_after_one_sample_option(tmp_path, policy_file):
    one = write_sample(tmp_path / "one.log", event("play_video", {"id": "v"}))
    two = write_sample(tmp_path / "two.log", event("edx.video.new_thing", {}))
    report = tmp_path / "check.json"
    result = cli("policy", "check", str(policy_file), "--sample", str(one), str(two), "--json", str(report))
    assert result.returncode == 0, result.stderr
    assert [i["path"] for i in json.loads(report.read_text())["sample"]["inputs"]] == ["one.log", "two.log"]


def test_cli_refuses_sample_files_without_the_sample_option(tmp_path, policy_file):
    one = write_sample(tmp_path / "one.log", event("play_video", {"id": "v"}))
    result = cli("policy", "check", str(policy_file), str(one))
    assert result.returncode == 2
    assert "--sample" in result.stderr


def test_cli_invalid_policy_exits_2_naming_the_file_and_the_place(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nenvelope:\n  ip: {op: mask_ip, ipv4_prefix: 40}\n")
    result = cli("policy", "check", str(bad))
    assert result.returncode == 2
    assert f"{bad}: invalid policy" in result.stderr
    assert "envelope.ip: operator 'mask_ip': ipv4_prefix" in result.stderr


def test_cli_invalid_policy_json_report_says_invalid(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nenvelope: {ip: no_such_operator}\n")
    report = tmp_path / "check.json"
    result = cli("policy", "check", str(bad), "--json", str(report))
    assert result.returncode == 2
    data = json.loads(report.read_text())
    assert data["policy"]["valid"] is False and data["result"]["passed"] is False
    assert "envelope.ip" in data["policy"]["error"]


def test_cli_json_report_lists_gaps_and_unused_rules(tmp_path, policy_file):
    sample = write_sample(tmp_path / "sample.log", event("edx.video.new_thing", {}), event("play_video", {"id": "v", "speed": 1}))
    report = tmp_path / "check.json"
    result = cli("policy", "check", str(policy_file), "--sample", str(sample), "--strict", "--json", str(report))
    assert result.returncode == 1
    data = json.loads(report.read_text())
    assert data["unhandled_event_types"] == {"edx.video.new_thing": 1}
    assert data["unnamed_fields"] == {"play_video": {"event.speed": 1}}
    assert data["dropped_fields"] == {"play_video": {"event.speed": {"unnamed": 1}}}
    assert [rule["match"] for rule in data["unused_rules"]] == [["page_close"], ["edx.forum.*"], ["problem_check"]]
    assert data["result"] == {
        "passed": False,
        "strict": True,
        "strict_fields": False,
        "summary": "FAILED: 1 event type(s) in the sample are handled by no rule (--strict)",
    }


def test_cli_check_never_prints_a_planted_value(tmp_path, policy_file):
    sample = write_sample(
        tmp_path / "sample.log",
        event("play_video", {"id": "v", "email": PLANTED_EMAIL, "user": PLANTED_USERNAME}),
        event("edx.forum.thread.created", {"body": f"write to {PLANTED_EMAIL}", "target_username": PLANTED_USERNAME}),
        event(f"/u/{PLANTED_USERNAME}", json.dumps({"GET": {"email": [PLANTED_EMAIL]}}), source="server"),
        event("problem_check", f"input_a_2_1={PLANTED_EMAIL}", ip=PLANTED_EMAIL),
        event("play_video", '{"id": "' + PLANTED_EMAIL),
    )
    with open(sample, "ab") as fh:
        fh.write(f'{{"username": "{PLANTED_USERNAME}", "email": "{PLANTED_EMAIL}", "ev\n'.encode())
    report = tmp_path / "check.json"
    result = cli("policy", "check", str(policy_file), "--sample", str(sample), "--strict", "--strict-fields", "--json", str(report))
    assert result.returncode == 1
    assert "event.email" in result.stdout  # the field is reported, by its path
    for text in (result.stdout, result.stderr, report.read_text()):
        assert PLANTED_EMAIL not in text
        assert PLANTED_USERNAME not in text


def test_cli_check_of_the_research_policy_over_the_fixture_families_passes_strict():
    families = sorted((FIXTURES / "families").glob("*.jsonl"))
    lines = sum(len(path.read_bytes().splitlines()) for path in families)
    result = cli("policy", "check", "research", "--sample", str(FIXTURES / "families"), "--strict")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"sample: {len(families)} file(s), {lines} lines, {lines - 2} events" in result.stdout
    assert "2 lines rejected (missing_event_type 2)" in result.stdout  # the Segment-format lines
    assert "event types no rule handles: none" in result.stdout
    assert "fields no rule names: none" in result.stdout
    assert result.stdout.rstrip().endswith("ok (--strict)")


@pytest.mark.corpus
def test_cli_check_over_the_corpus_completes_and_prints_no_username_or_email(tmp_path):
    from test_corpus import assert_no_corpus_identifier_in

    report = tmp_path / "check.json"
    result = cli("policy", "check", "research", "--sample", str(CORPUS), "--json", str(report))
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    assert data["sample"]["events"] > 2000
    assert_no_corpus_identifier_in(result.stdout + result.stderr + report.read_text())


def test_a_string_kept_under_the_default_shape_is_a_warning_and_fails_strict(tmp_path):
    """A `keep` without a shape copies whatever a person typed, space or not: the check says where."""
    unshaped = POLICY.replace(b"{op: keep, shape: slug}", b"keep")
    policy = parse_policy(unshaped, "unshaped.yaml")
    sample = write_sample(tmp_path / "sample.log", event("play_video", {"id": PLANTED_USERNAME, "currentTime": 3}))
    check = check_policy(policy, [sample])
    assert check.kept_free_text == {"play_video": {"event.id": 1}}
    assert "shape scalar or any" in format_check(check)
    assert not verdict(check, strict=True)[0]
    shaped = check_policy(parse_policy(POLICY, "small.yaml"), [sample])
    assert shaped.kept_free_text == {}
