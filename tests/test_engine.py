"""The anonymizer on single events and lines: encodings, fail-closed defaults, pseudonym consistency,
and every event family of the fixtures."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qsl

import orjson
import pytest

from anonymizer import Anonymizer, parse_policy
from support import every_string

FIXTURES = Path(__file__).parent / "fixtures"
FAMILIES = sorted((FIXTURES / "families").glob("*.jsonl"))


def envelope(event_type: str, payload, source: str = "server", **extra) -> dict:
    return {
        "username": "QXamy",
        "event_type": event_type,
        "ip": "198.51.100.23",
        "event": payload,
        "event_source": source,
        "context": {"user_id": 424242, "course_id": "course-v1:X+Y+Z"},
        "time": "2024-03-01T10:00:00+00:00",
        **extra,
    }


def run_line(anonymizer: Anonymizer, event: dict) -> dict:
    status, out = anonymizer.anonymize_line(orjson.dumps(event))
    assert status == "written", out
    return orjson.loads(out)


# ---------------------------------------------------------------- payload encodings


def test_a_dict_payload_stays_a_dict(anonymizer):
    out = run_line(anonymizer, envelope("edx.grades.problem.submitted", {"user_id": 424242, "weighted_earned": 1.0}))
    assert isinstance(out["event"], dict)
    assert out["event"]["weighted_earned"] == 1.0
    assert out["event"]["user_id"] == out["context"]["user_id"]


def test_a_json_string_payload_stays_a_json_string(anonymizer):
    payload = json.dumps({"id": "video-1", "currentTime": 12.5, "unexpected": "x"})
    out = run_line(anonymizer, envelope("play_video", payload, "browser"))
    assert isinstance(out["event"], str)
    assert json.loads(out["event"]) == {"id": "video-1", "currentTime": 12.5}


def test_a_get_parameter_payload_stays_a_query_string_with_its_values_scrubbed(anonymizer):
    payload = "input_abc_2_1=call+me+at+%28617%29+555-0199&input_abc_3_1%5B%5D=choice_1&input_abc_3_1%5B%5D=choice_2"
    out = run_line(anonymizer, envelope("problem_check", payload, "browser"))
    assert isinstance(out["event"], str)
    pairs = parse_qsl(out["event"])
    assert pairs == [("input_abc_2_1", "call me at [PHONE]"), ("input_abc_3_1[]", "choice_1"), ("input_abc_3_1[]", "choice_2")]


def test_an_untouched_query_string_with_escapes_is_rewritten_not_copied(anonymizer):
    """As written, ``%739026`` shows the digits 739026 (a user id to a reader, and to verify);
    decoded, the rules saw ``s9026``. A payload with an escape is written in its canonical
    encoding, which shows what the rules saw; one without is copied as it was."""
    out = run_line(anonymizer, envelope("problem_check", "input_1=x%E%2B%3C%739026+a", "browser"))
    assert out["event"] == "input_1=x%25E%2B%3Cs9026+a"
    assert "739026" not in out["event"]
    plain = run_line(anonymizer, envelope("problem_check", "input_1=choice_1&input_2=b+c", "browser"))
    assert plain["event"] == "input_1=choice_1&input_2=b+c"


def test_digits_after_an_escape_of_digits_are_escaped_too(anonymizer):
    """``&4013`` is ``%264013`` in the canonical encoding, which shows 264013 as written: the
    digits that follow an escape of digits are written as escapes, and decode to the same text."""
    from urllib.parse import parse_qsl

    out = run_line(anonymizer, envelope("problem_check", "input_1=note+%264013+x&input_2=%23530114", "browser"))
    assert "264013" not in out["event"] and "23530114" not in out["event"] and "530114" not in out["event"]
    assert parse_qsl(out["event"]) == [("input_1", "note &4013 x"), ("input_2", "#530114")]


def test_a_list_payload_keeps_the_inputs_and_drops_the_rendered_html(anonymizer):
    payload = ["input_abc_2_1=mail+QXamy%40example.com", "<div>QXamy answered QXamy@example.com</div>"]
    out = run_line(anonymizer, envelope("problem_graded", payload, "browser"))
    assert out["event"] == ["input_abc_2_1=mail+%5BEMAIL%5D"]


@pytest.mark.parametrize("payload", ["", None, {}])
def test_empty_payloads_stay_as_they_are(anonymizer, payload):
    out = run_line(anonymizer, envelope("page_close", payload, "browser"))
    assert out["event"] == payload


def test_a_payload_cut_at_512_characters_is_emptied_not_copied(anonymizer):
    full = json.dumps({"POST": {"body": ["x" * 600 + " QXamy@example.com"]}, "GET": {}})
    out = run_line(anonymizer, envelope("/courses/x/discussion/threads/create", full[:512]))
    assert out["event"] == "{}"
    assert anonymizer.stats.fields[("/*", "event", "unparseable")] == 1


def test_json_inside_a_string_inside_the_payload_is_decoded_scrubbed_and_re_encoded(anonymizer):
    saved = json.dumps({"parts": [{"text": "write to QXamy@example.com"}], "secret": "x"})
    out = run_line(anonymizer, envelope("openassessmentblock.save_submission", json.dumps({"saved_response": saved}), "browser"))
    inner = json.loads(json.loads(out["event"])["saved_response"])
    assert inner == {"parts": [{"text": "write to [EMAIL]"}]}


# ---------------------------------------------------------------- fail closed


def test_an_event_type_the_policy_does_not_name_is_dropped_and_counted(anonymizer):
    status, reason = anonymizer.anonymize_line(orjson.dumps(envelope("brand.new.event", {"a": 1})))
    assert (status, reason) == ("dropped", "event_type_not_in_policy")
    assert anonymizer.stats.event_types["<other>"]["dropped"] == 1
    assert "brand.new.event" not in anonymizer.stats.event_types


def test_the_manifest_names_an_event_type_only_when_a_rule_names_it(anonymizer):
    # Any client can send any event type: one that no rule names is never counted by its name.
    for event_type in ("problem_check", "edx.forum.thread.created", "edx.forum.alice@example.com", "/u/alice", "alice@example.com", "alice"):
        anonymizer.anonymize_line(orjson.dumps(envelope(event_type, {})))
    counts = anonymizer.stats.as_dict()
    assert set(counts["event_types"]) == {"problem_check", "edx.forum.*", "/*", "<other>"}
    assert counts["event_types"]["edx.forum.*"] == {"written": 2, "first_day": "2024-03-01", "last_day": "2024-03-01"}
    assert counts["event_types"]["<other>"] == {"dropped": 2}
    assert "alice" not in json.dumps(counts)


def test_unknown_events_can_be_reduced_to_their_envelope(key):
    policy = parse_policy(b"name: t\nunknown_events: envelope\nenvelope: {event_type: keep, username: {op: pseudonymize, identity: username}}\n", "t.yaml")
    out = run_line(Anonymizer(policy, key), envelope("brand.new.event", json.dumps({"secret": "QXamy"})))
    assert set(out) == {"event_type", "username", "event"}
    assert out["event"] == "{}"


def test_a_field_no_rule_names_is_dropped_and_counted_by_path(anonymizer):
    event = envelope("edx.grades.*", {"user_id": 1, "new_platform_field": "QXamy"}, new_top_level="QXamy")
    event["context"]["new_context_field"] = {"nested": "QXamy"}
    out = run_line(anonymizer, event)
    assert "QXamy" not in json.dumps(out)
    fields = anonymizer.stats.fields
    assert fields[("edx.grades.*", "event.new_platform_field", "unnamed")] == 1
    assert fields[("edx.grades.*", "new_top_level", "unnamed")] == 1
    assert fields[("edx.grades.*", "context.new_context_field", "unnamed")] == 1


def test_a_value_an_operator_cannot_handle_is_dropped_not_passed(anonymizer):
    out = run_line(anonymizer, envelope("edx.grades.*", {"user_id": 1}, ip="not an address QXamy"))
    assert "ip" not in out
    assert anonymizer.stats.fields[("edx.grades.*", "ip", "invalid_value")] == 1


def test_data_like_keys_are_counted_as_a_wildcard(anonymizer):
    run_line(anonymizer, envelope("edx.grades.problem.submitted", {"QXamy@example.com": 1}))
    paths = {path for (_, path, _) in anonymizer.stats.fields}
    assert "event.*" in paths
    assert not any("QXamy" in path for path in paths)


def test_problem_check_payload_rules_depend_on_event_source(anonymizer):
    server = run_line(anonymizer, envelope("problem_check", {"answers": {"a_2_1": "x"}, "grade": 1}, "server"))
    assert server["event"] == {"answers": {"a_2_1": "x"}, "grade": 1}
    browser = run_line(anonymizer, envelope("problem_check", "input_a_2_1=x", "browser"))
    assert browser["event"] == "input_a_2_1=x"
    status, reason = anonymizer.anonymize_line(orjson.dumps(envelope("problem_check", {"grade": 1}, "elsewhere")))
    assert status == "dropped"


def test_an_exact_event_type_beats_a_glob(key):
    policy = parse_policy(
        b"""name: t
envelope: {event_type: keep}
events:
  - {match: "edx.forum.*", fields: {a: keep}}
  - {match: edx.forum.searched, fields: {b: keep}}
""",
        "t.yaml",
    )
    out = run_line(Anonymizer(policy, key), envelope("edx.forum.searched", {"a": 1, "b": 2}))
    assert out["event"] == {"b": 2}


def test_an_event_rule_can_drop_its_events(key):
    policy = parse_policy(b"name: t\nenvelope: {event_type: keep}\nevents: [{match: 'x.*', action: drop}]\n", "t.yaml")
    anonymizer = Anonymizer(policy, key)
    assert anonymizer.anonymize_line(orjson.dumps(envelope("x.y", {}))) == ("dropped", "event_type_dropped_by_rule")


def test_a_specific_path_falls_back_to_the_wildcard_beside_it(key):
    policy = parse_policy(
        b"""name: t
envelope: {event_type: keep}
events:
  - match: e
    fields:
      correct_map.*: keep
      correct_map.*.queuestate: drop
      correct_map.special.msg: scrub_text
""",
        "t.yaml",
    )
    payload = {"correct_map": {"a": {"msg": "ok", "queuestate": {"key": "s"}}, "special": {"msg": "QXamy@example.com", "npoints": 2, "queuestate": 1}}}
    out = run_line(Anonymizer(policy, key), envelope("e", payload))
    assert out["event"] == {"correct_map": {"a": {"msg": "ok"}, "special": {"msg": "[EMAIL]", "npoints": 2}}}


# ---------------------------------------------------------------- one learner, one pseudonym


def test_a_username_is_the_same_pseudonym_in_every_field(anonymizer):
    event = envelope(
        "problem_rescore",
        {"student": "QXamy", "problem_id": "p"},
        referer="https://lms.example/u/QXamy?x=1",
    )
    event["context"]["username"] = "QXamy"
    out = run_line(anonymizer, event)
    pseudonym = out["username"]
    assert pseudonym.startswith("u_") and "QXamy" not in pseudonym
    assert out["context"]["username"] == pseudonym
    assert out["event"]["student"] == pseudonym
    assert out["referer"] == f"https://lms.example/u/{pseudonym}"


def test_a_user_id_is_one_pseudonym_as_integer_or_numeric_string_and_keeps_its_type(anonymizer):
    as_int = run_line(anonymizer, envelope("edx.grades.problem.submitted", {"user_id": 424242}))
    as_str = run_line(anonymizer, envelope("edx.grades.problem.submitted", {"user_id": "424242"}))
    assert isinstance(as_int["event"]["user_id"], int)
    assert isinstance(as_str["event"]["user_id"], str)
    assert str(as_int["event"]["user_id"]) == as_str["event"]["user_id"]
    assert as_int["event"]["user_id"] == as_int["context"]["user_id"] != 424242


def test_empty_and_null_identifiers_stay_as_they_are(anonymizer):
    event = envelope("edx.grades.problem.submitted", {"user_id": None}, username="", session="")
    event["context"]["user_id"] = ""
    out = run_line(anonymizer, event)
    assert out["username"] == "" and out["session"] == ""
    assert out["context"]["user_id"] == ""
    assert out["event"]["user_id"] is None


def test_the_actors_username_is_replaced_in_free_text(anonymizer):
    out = run_line(anonymizer, envelope("edx.forum.thread.created", {"body": "I am qxamy, mail QXamy@example.com"}))
    assert out["event"]["body"] == f"I am {out['username']}, mail [EMAIL]"


# ---------------------------------------------------------------- reading lines


def expected_outcomes(name: str) -> dict[int, dict]:
    return {int(k): v for k, v in json.loads((FIXTURES / name).read_text()).items()}


@pytest.mark.parametrize("log, expected", [("malformed.log", "malformed.expected.json"), ("bom.log", "bom.expected.json")])
def test_each_malformed_line_is_written_or_rejected_with_its_reason(anonymizer, log, expected):
    outcomes = expected_outcomes(expected)
    lines = (FIXTURES / log).read_bytes().splitlines(keepends=True)
    assert len(lines) == len(outcomes)
    for number, line in enumerate(lines, start=1):
        status, result = anonymizer.anonymize_line(line, log, number)
        assert status == outcomes[number]["outcome"], number
        if status == "rejected":
            assert result == outcomes[number]["reason"], number
        else:
            orjson.loads(result)
    assert anonymizer.stats.accounted()


def test_a_logger_prefix_is_never_copied(anonymizer):
    line = b"2023-05-23 13:53:13,461 INFO 20 [tracking] [user 6] [ip 172.18.0.1] logger.py:41 - " + orjson.dumps(envelope("page_close", ""))
    status, out = anonymizer.anonymize_line(line)
    assert status == "written"
    assert out.startswith(b"{") and b"172.18.0.1" not in out and b"logger.py" not in out


def test_a_rejected_line_is_never_in_the_result_or_the_stats(anonymizer):
    status, reason = anonymizer.anonymize_line(b'{"username": "QXamy", "email": "QXamy@example.com", "event_ty')
    assert (status, reason) == ("rejected", "invalid_json")
    assert "QXamy" not in repr(anonymizer.stats)


# ---------------------------------------------------------------- every family of the fixtures


def anonymize_family(anonymizer, path: Path) -> list[str]:
    written = []
    for number, line in enumerate(path.read_bytes().splitlines(keepends=True), start=1):
        status, result = anonymizer.anonymize_line(line, path.name, number)
        if status == "written":
            written.append(every_string(result))
    return written


# Values that only a roster of people can find in free text (a classmate's name or handle)
# are checked by the roster tests, not here.
NEEDS_ROSTER = {"names", "name_mentions", "addresses"}


@pytest.mark.parametrize("path", FAMILIES, ids=lambda p: p.stem)
def test_research_policy_leaves_no_identifier_in_any_family(anonymizer, people, path):
    outputs = anonymize_family(anonymizer, path)
    assert anonymizer.stats.accounted()
    actors = {p["username"] for p in people["people"]}
    for output in outputs:
        for kind, values in people.items():
            if kind in NEEDS_ROSTER or not isinstance(values, list) or kind == "people":
                continue
            for value in values:
                value = str(value).lower()
                if kind == "usernames":
                    # A classmate's handle inside free text needs the roster; as a value of its own,
                    # in a URL path or as the event's own actor it must never survive.
                    assert f'"{value}"' not in output and f"/{value}/" not in output and f"/{value}\n" not in output
                else:
                    assert value not in output, (kind, path.name)
    assert_family_was_checked(anonymizer, path, outputs, actors)


def assert_family_was_checked(anonymizer, path: Path, outputs: list[str], actors: set[str]) -> None:
    """The loop above checked something: events were written (Segment lines, which have no event
    type, are each rejected instead), and the family's input names people of the fixture."""
    lines = len(path.read_bytes().splitlines())
    if path.stem == "segment":
        assert outputs == []
        assert anonymizer.stats.rejected == {"missing_event_type": lines}
    else:
        assert outputs, f"{path.name}: no event written, so nothing was checked"
        assert anonymizer.stats.written == len(outputs)
    raw = path.read_text(encoding="utf-8").lower()
    assert any(actor.lower() in raw for actor in actors), f"{path.name} names no person of people.json"


@pytest.mark.parametrize("path", FAMILIES, ids=lambda p: p.stem)
def test_strict_policy_leaves_no_identifier_and_no_free_text_in_any_family(strict, key, people, path):
    anonymizer = Anonymizer(strict, key)
    outputs = anonymize_family(anonymizer, path)
    assert anonymizer.stats.accounted()
    assert_family_was_checked(anonymizer, path, outputs, {p["username"] for p in people["people"]})
    for output in outputs:
        for kind, values in people.items():
            if kind in ("people", "_about") or not isinstance(values, list):
                continue
            for value in values:
                assert str(value).lower() not in output, (kind, path.name)


def test_every_family_writes_at_least_one_event(anonymizer):
    for path in FAMILIES:
        if path.stem == "segment":
            continue  # Segment-format lines have no event_type: rejected as malformed
        assert anonymize_family(anonymizer, path), path.stem
