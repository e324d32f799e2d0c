"""The core's one entry point: a batch of whole lines in, typed outcomes, routing keys and counts out."""

from __future__ import annotations

import copy

import orjson
import pytest

from anonymizer import Anonymizer, parse_policy
from anonymizer.core.lines import parse_line
from anonymizer.core.outcomes import AccountingError, BatchResult, Dropped, DropReason, LineResult, Outcome, Rejected, RejectReason, Route, Written
from anonymizer.core.routing import course_in_path, course_key, utc_date
from anonymizer.core.stats import Stats
from support import CORPUS

COURSE = "course-v1:edX+DemoX+Demo_Course"


def event(event_type: str, **fields) -> bytes:
    base = {"event_type": event_type, "username": "QXamy", "time": "2015-10-01T03:02:38.407715+00:00",
            "context": {"course_id": COURSE, "user_id": 7}, "event": {}}
    base.update(fields)
    return orjson.dumps(base)


def test_a_batch_gives_one_typed_outcome_per_line_in_order(anonymizer):
    data = b"\n".join([
        event("play_video"),
        b"",
        b"not json at all",
        event("brand.new.event"),
        orjson.dumps({"username": "QXamy"}),
        event("seq_goto", event_source="browser"),
    ]) + b"\n"
    result = anonymizer.anonymize_batch(data, 41, name="a.log")
    assert isinstance(result, BatchResult) and result.first_line == 41
    kinds = [type(line) for line in result.lines]
    assert kinds == [Written, Rejected, Rejected, Dropped, Rejected, Written]
    assert [line.outcome for line in result.lines] == [
        Outcome.WRITTEN, Outcome.REJECTED, Outcome.REJECTED, Outcome.DROPPED, Outcome.REJECTED, Outcome.WRITTEN]
    assert result.lines[1].reason is RejectReason.BLANK
    assert result.lines[2].reason is RejectReason.INVALID_JSON
    assert result.lines[3].reason is DropReason.NOT_IN_POLICY
    assert result.lines[4].reason is RejectReason.MISSING_EVENT_TYPE
    assert all(line.route is None for line in result.lines if isinstance(line, Rejected))
    assert result.written() == [result.lines[0].output, result.lines[5].output]
    stats = result.stats
    assert (stats.read, stats.written) == (6, 2) and stats.accounted()
    assert stats.rejections == [("a.log", 42, "blank"), ("a.log", 43, "invalid_json"), ("a.log", 45, "missing_event_type")]
    assert stats.event_types["play_video"] == {"written": 1} and stats.event_types["seq_goto"] == {"written": 1}
    assert stats.event_types["<other>"] == {"dropped": 1}


def test_lines_may_come_split_and_a_last_line_without_a_newline_counts(anonymizer):
    joined = anonymizer.anonymize_batch(event("play_video") + b"\n" + event("seq_goto"))
    split = anonymizer.anonymize_batch([event("play_video"), event("seq_goto")])
    assert joined.lines == split.lines and len(joined.lines) == 2


def test_the_pair_form_is_the_batch_of_one(anonymizer, research, key):
    line = event("play_video")
    pair = anonymizer.anonymize_line(line)
    assert isinstance(pair, LineResult) and pair.outcome is Outcome.WRITTEN
    assert pair.result == Anonymizer(research, key).anonymize_batch(line).lines[0].output
    assert anonymizer.anonymize_line(b"[1]") == (Outcome.REJECTED, RejectReason.NOT_AN_OBJECT)


def test_reading_stats_changes_nothing(anonymizer):
    anonymizer.anonymize_line(event("play_video"))
    first = copy.deepcopy(anonymizer.stats)
    second = anonymizer.stats
    assert first == second and second.event_types == {"play_video": {"written": 1}}
    taken = anonymizer.take_stats()
    assert taken == first and anonymizer.stats == Stats()


def test_batch_counts_are_complete_without_reading_anything_else(anonymizer):
    """The per-type tallies are moved into each batch's counts at its end, not when read."""
    one = anonymizer.anonymize_batch([event("play_video"), event("play_video")])
    two = anonymizer.anonymize_batch([event("play_video")])
    assert one.stats.event_types == {"play_video": {"written": 2}}
    assert two.stats.event_types == {"play_video": {"written": 1}}
    assert anonymizer.stats == Stats()  # batches count in their results, not in the anonymizer


def test_line_accounting_that_does_not_add_up_is_a_typed_error(anonymizer, monkeypatch):
    monkeypatch.setattr(Stats, "accounted", lambda self: False)
    with pytest.raises(AccountingError) as caught:
        anonymizer.anonymize_batch([event("play_video")], 7, name="a.log")
    assert caught.value.exit_code == 70 and "a.log" in str(caught.value) and "QXamy" not in str(caught.value)


def test_parse_line_gives_an_event_or_a_reason():
    assert parse_line(b'{"a":1,"a":2}') is RejectReason.DUPLICATE_KEY
    assert parse_line(b"   ") is RejectReason.BLANK
    assert parse_line(b'{"event_type":"x"}') == {"event_type": "x"}


# ------------------------------------------------------------------ routing keys


def test_routing_keys_name_the_policy_label_the_course_and_the_utc_day(anonymizer):
    lines = [
        event("play_video"),
        event("edx.forum.thread.created", time="2015-10-01T23:30:00-05:00"),
        event("/courses/course-v1:MITx+6.002x+2024/courseware/abc/", context={"user_id": 7}),
        event("/courses/MITx/6.002x/2012_Fall/info", context={}),
        event("brand.new.event", context={"course_id": "not a course"}, time="yesterday"),
    ]
    routes = [line.route for line in anonymizer.anonymize_batch(lines).lines]
    assert routes[0] == Route("play_video", COURSE, "2015-10-01")
    assert routes[1] == Route("edx.forum.*", COURSE, "2015-10-02")
    assert routes[2] == Route("/*", "course-v1:MITx+6.002x+2024", "2015-10-01")
    assert routes[3] == Route("/*", "MITx/6.002x/2012_Fall", "2015-10-01")
    assert routes[4] == Route("<other>", None, None)  # dropped, still routed; nothing unshaped is kept
    again = anonymizer.anonymize_batch([lines[0]]).lines[0].route
    assert again is routes[0]  # equal keys are one object


def test_course_keys_and_days_are_read_strictly():
    assert course_key("ccx-v1:edX+DemoX+Demo_Course+ccx@3") and course_key("edX/DemoX/Demo_Course")
    assert course_key("course-v1:edX+DemoX") is None and course_key("jane@example.com") is None and course_key(7) is None
    assert course_in_path("/courses/course-v1%3AedX%2BDemoX%2BDemo_Course/about") == COURSE
    assert course_in_path("https://lms.example.com/courses/course-v1:edX+DemoX+Demo_Course/courseware") == COURSE
    assert course_in_path("/u/course-v1:edX+DemoX+Demo_Course") is None
    assert utc_date("2014-03-03T16:19:05.584523+00:00") == "2014-03-03"
    assert utc_date("2014-03-03T16:19:05Z") == "2014-03-03"
    assert utc_date("2014-03-03T01:00:00+02:00") == "2014-03-02"
    assert utc_date("2014-03-03 16:19:05") == "2014-03-03"
    assert utc_date("March 3rd") is None and utc_date(None) is None


def _corpus_events():
    for path in sorted(p for p in CORPUS.rglob("*.log") if "expected-output" not in p.parts):
        for line in path.read_bytes().splitlines():
            parsed = parse_line(line)
            if isinstance(parsed, dict):
                yield parsed


@pytest.mark.corpus
def test_corpus_events_are_routed_by_their_course_and_day(research, key):
    anonymizer = Anonymizer(research, key)
    explicit = implicit = 0
    for parsed in _corpus_events():
        context = parsed.get("context") if isinstance(parsed.get("context"), dict) else {}
        course = course_key(context.get("course_id"))
        route = anonymizer.anonymize_batch([orjson.dumps(parsed)]).lines[0].route
        if route is None:
            continue  # rejected (a Segment-format line, a payload that repeats a key)
        if course:
            assert route.course_id == course
            explicit += 1
        time = parsed.get("time")
        if isinstance(time, str) and time.endswith("+00:00"):
            assert route.date == time[:10]
        event_type = parsed.get("event_type") or ""
        if course and event_type.startswith("/courses/"):
            # The same implicit event without a course in its context: placed by its URL path.
            bare = {**parsed, "context": {k: v for k, v in context.items() if k != "course_id"}}
            assert anonymizer.anonymize_batch([orjson.dumps(bare)]).lines[0].route.course_id == course
            implicit += 1
    assert explicit > 100 and implicit > 10
