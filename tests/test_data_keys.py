"""Keys that are data: keys no rule names are checked like values; subtrees are not kept whole."""

from __future__ import annotations

import json

import pytest

from anonymizer import Anonymizer, parse_policy
from anonymizer.core.data_keys import UNSAFE_KEY, key_shape
from anonymizer.tools.policy_check import PolicyChecker, format_check, verdict
from anonymizer.core.roster import Person, Roster

HEX = "932e6f2ce8274072a355a94560216d1a"


def _problem_check(answers: dict, **extra) -> dict:
    return {"event_type": "problem_check", "event_source": "server", "username": "zelda_q", "time": "2024-03-01T10:00:00Z",
            "context": {"course_id": "course-v1:X+Y+Z"},
            "event": {"problem_id": "block-v1:X+Y+Z+type@problem+block@p1", "answers": answers, "grade": 1, "max_grade": 2, **extra}}


@pytest.mark.parametrize("key", [f"{HEX}_2_1", f"input_{HEX}_2_1[]", "12", "correctness", f'"input_{HEX}_2_1'])
def test_platform_keys_are_safe_as_they_are(key):
    assert key_shape(key) == 0


STRUCTURED = ["i4x-edX-DemoX-problem-Sample_2_1", "input_i4x-edX-E929-problem-17de_2_1", "block-v1:X+Y+Z+type@problem+block@p1"]


@pytest.mark.parametrize("key", STRUCTURED)
def test_ids_whose_parts_an_author_chose_are_checked_as_text(key):
    assert key_shape(key) == 1


def test_an_authored_id_is_kept_unless_it_holds_a_known_person(research, key):
    roster = Roster([Person("530114", ("ann_lee",), (), ())])
    anonymizer = Anonymizer(research, key, roster)
    answers = {k: "choice_1" for k in STRUCTURED} | {"i4x-edX-DemoX-problem-Sample_ann_lee_2_1": "mine"}
    out = anonymizer.anonymize_event(_problem_check(answers))
    assert out["event"]["answers"] == {k: "choice_1" for k in STRUCTURED}


@pytest.mark.parametrize("key", ["zelda@example.org", "Zelda Quintero", "x" * 80, "tel:+1 555 0100"])
def test_keys_that_look_like_prose_or_addresses_are_unsafe(key):
    assert key_shape(key) == 2


def test_an_answer_keyed_by_an_email_or_a_name_is_dropped_and_counted(research, key):
    anonymizer = Anonymizer(research, key)
    out = anonymizer.anonymize_event(_problem_check({f"{HEX}_2_1": "choice_1", "zelda@example.org": "mine", "Zelda Quintero": "x"}))
    assert out["event"]["answers"] == {f"{HEX}_2_1": "choice_1"}
    assert anonymizer.stats.fields[("problem_check", "event.answers.*", UNSAFE_KEY)] == 2


def test_a_key_naming_a_known_person_or_the_actor_is_dropped_and_other_words_are_kept(research, key):
    roster = Roster([Person(None, ("ymir_okonkwo",), (), (), False)])
    anonymizer = Anonymizer(research, key, roster)
    out = anonymizer.anonymize_event(_problem_check({"ymir_okonkwo": "a", "zelda_q": "b", "learn_more": "c", "98765": "d"}))
    assert out["event"]["answers"] == {"learn_more": "c", "98765": "d"}


def test_keys_under_a_text_rule_are_checked_too(research, key):
    anonymizer = Anonymizer(research, key)
    event = {"event_type": "problem_check", "event_source": "browser", "username": "zelda_q", "time": "2024-03-01T10:00:00Z",
             "event": f"input_{HEX}_2_1=42&zelda%40example.org=1&input_{HEX}_3_1%5B%5D=choice_2"}
    out = anonymizer.anonymize_event(event)
    assert "example.org" not in out["event"] and f"input_{HEX}_2_1=42" in out["event"] and "choice_2" in out["event"]


def test_correct_map_entries_keep_grades_and_scrub_what_echoes_the_learner(research, key):
    out = Anonymizer(research, key).anonymize_event(_problem_check({}, correct_map={f"{HEX}_2_1": {
        "correctness": "correct", "npoints": 1, "answervariable": "zelda@example.org", "msg": "see zelda@example.org", "unknown": "x"}}))
    entry = out["event"]["correct_map"][f"{HEX}_2_1"]
    assert entry == {"correctness": "correct", "npoints": 1, "answervariable": "[EMAIL]", "msg": "see [EMAIL]"}


def test_team_ids_are_pseudonymized_and_course_user_tags_scrubbed(research, key):
    anonymizer = Anonymizer(research, key)
    event = {"event_type": "edx.team.learner_added", "username": "zelda_q", "time": "2024-03-01T10:00:00Z",
             "context": {"course_user_tags": {"xblock.partition_service.partition_50": "1", "zelda@example.org": "x",
                                              "note": "ask zelda@example.org"}},
             "event": {"team_id": "zelda-s-study-group-7f3a", "user_id": 7}}
    out = anonymizer.anonymize_event(event)
    assert out["event"]["team_id"].startswith("t_") and "zelda" not in json.dumps(out)
    assert out["context"]["course_user_tags"] == {"xblock.partition_service.partition_50": "1", "note": "ask [EMAIL]"}


POLICY = b"""
name: kept
envelope:
  event_type: {op: keep, shape: word}
events:
  - match: edx.forum.*
    fields:
      body: {op: keep, shape: any}
      title: {op: keep, authored: true}
      id: {op: keep, shape: hex_id}
"""


def test_policy_check_warns_about_kept_free_text_and_strict_fails_on_it():
    checker = PolicyChecker(parse_policy(POLICY, "kept.yaml"))
    checker.add_lines([json.dumps({"event_type": "edx.forum.thread.created",
                                   "event": {"body": "ask zelda about it", "title": "Week 1 questions", "id": "abc"}}).encode()])
    check = checker.finish()
    assert check.kept_free_text == {"edx.forum.thread.created": {"event.body": 1}}  # `authored` keeps aside
    assert "WARNING kept fields that held free text" in format_check(check)
    assert verdict(check)[0] and not verdict(check, strict=True)[0]
    assert "zelda" not in format_check(check) + json.dumps(check.as_dict(strict=True))


def test_the_research_policy_keeps_no_free_text_of_the_fixtures(research):
    from pathlib import Path

    from anonymizer.tools.policy_check import check_policy

    check = check_policy(research, [Path(__file__).parent / "fixtures" / "families"])
    assert check.kept_free_text == {}
