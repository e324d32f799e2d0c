"""The learned roster, case-insensitive usernames and emails typed where a username belongs."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import orjson
import pytest

from anonymizer import Anonymizer, parse_policy, run
from anonymizer.io.learn import Learner
from anonymizer.core.pseudonyms import PSEUDONYM_VERSION, Pseudonymizer
from anonymizer.core.roster import Person, Roster, join_rosters

from support import every_string

CLASSMATE = "ymir_okonkwo"
ACTOR = "Zelda_Q"


def _event(event_type: str, username: str, payload, user_id: int | None = None, **extra) -> dict:
    context = {"course_id": "course-v1:X+Y+Z"}
    if user_id is not None:
        context["user_id"] = user_id
    return {"event_type": event_type, "event_source": "server", "username": username, "context": context,
            "time": "2024-03-01T10:00:00Z", "event": payload, **extra}


def _write(path: Path, events: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return path


def _lines(package: Path) -> list[str]:
    return [line for f in sorted(package.glob("*.gz")) for line in gzip.decompress(f.read_bytes()).decode().splitlines()]


def _learn(research, events: list[dict]) -> Roster:
    learner = Learner(research)
    for event in events:
        learner.add_event(json.loads(json.dumps(event)))
    return learner.roster()


# ---------------------------------------------------------------- the pass


def test_the_pass_reads_the_identity_fields_of_the_policy_and_links_a_username_to_its_id(research):
    roster = _learn(research, [
        _event("play_video", ACTOR, "{}", user_id=73311),
        _event("edx.forum.response.created", "ana_b", {"body": "hi", "target_username": CLASSMATE}),
    ])
    zelda = roster.person_for("zelda_q")  # found ignoring case
    assert zelda is not None and zelda.id == "73311" and zelda.usernames == (ACTOR,) and not zelda.listed
    assert roster.person_for(CLASSMATE) is not None  # from a payload field the policy pseudonymizes as a username
    assert roster.by_id["73311"] is zelda


def test_only_identities_named_side_by_side_are_linked(research):
    # An instructor (the actor, with the envelope's id) rescoring a learner named in the payload.
    roster = _learn(research, [_event("problem_rescore", "prof_x", {"student": CLASSMATE}, user_id=90001)])
    assert roster.person_for("prof_x").id == "90001"
    assert roster.person_for(CLASSMATE).id is None
    # Two usernames beside one id: whose id would it be? Neither is linked.
    event = _event("play_video", "staff_x", "{}", user_id=81234)
    event["context"]["username"] = "ana_b"
    roster = _learn(research, [event])
    assert roster.person_for("ana_b").id is None and roster.person_for("staff_x").id is None


def test_emails_are_learned_from_username_fields_and_linked_through_account_email_fields(research):
    roster = _learn(research, [
        _event("edx.course.enrollment.activated", "staff_bulk", {"user_id": 81234, "username": "ana_b", "email": "Ana.B@example.org",
                                                                  "course_id": "course-v1:X+Y+Z", "mode": "audit"}),
        _event("rescore-student-submission", "prof_x", {"student": "loose@example.net", "problem": "p"}),
    ])
    ana = roster.person_for("ana.b@example.org")
    assert ana is not None and ana.usernames == ("ana_b",) and ana.id == "81234"
    loose = roster.person_for("loose@example.net")
    assert loose is not None and loose.usernames == ()


def test_the_learned_roster_does_not_depend_on_how_the_events_are_split(research):
    events = [_event("play_video", f"user_{i % 7}", "{}", user_id=50000 + i % 7) for i in range(40)]
    one = _learn(research, events)
    learner = Learner(research)
    learner.add_lines(orjson.dumps(e) for e in events[:13])
    learner.add_lines(orjson.dumps(e) for e in events[13:])
    assert learner.roster().people == one.people


def test_the_pass_on_workers_learns_what_one_process_learns(tmp_path, research, monkeypatch):
    """The first pass read by two workers, their groups linked in input order: the same people,
    in the same order, with the same links, as one process reading every line."""
    import anonymizer.io.inputs as inputs
    from anonymizer.io.learn import learn_sources

    monkeypatch.setattr(inputs, "BATCH_BYTES", 2048)  # many batches, spread over the workers
    events = []
    for i in range(400):
        n = (i * 37) % 60
        # A username first seen alone, later beside its id; emails loose, then beside their owner;
        # the same envelope again and again, across batches.
        events.append(_event("play_video", f"Learner_{n:02d}", "{}", user_id=None if i < 200 else 60000 + n))
        if i % 5 == 0:
            events.append(_event("edx.user.settings.changed", f"learner_{n:02d}", {"setting": "email", "old": f"l{n}@example.org", "new": f"l{n}.new@example.org"}))
    log = _write(tmp_path / "a.log", events[:500])
    other = tmp_path / "b.log.gz"
    other.write_bytes(gzip.compress(b"".join(orjson.dumps(e) + b"\n" for e in events[500:])))
    sources = [(log, "a.log"), (tmp_path / "missing.log", "missing.log"), (other, "b.log.gz")]
    one, two = learn_sources(research, sources, 1), learn_sources(research, sources, 2)
    assert two.roster().people == one.roster().people
    assert two.summary() == one.summary() and one.summary()["user_ids"] == 60 and one.summary()["emails"] > 0
    assert two.lines == one.lines == len(events)
    serial = Learner(research)
    serial.add_lines(orjson.dumps(e) for e in events)
    assert one.roster().people == serial.roster().people


def _settings(actor: str, user_id: int, setting: str, old, new) -> dict:
    return _event("edx.user.settings.changed", actor, {"setting": setting, "old": old, "new": new, "user_id": user_id, "table": "auth_user"},
                  user_id=user_id)


def _registration(username: str, name: str, email: str) -> dict:
    post = {"email": [email], "name": [name], "username": [username], "password": "********", "honor_code": ["true"]}
    return _event("/user_api/v1/account/registration/", "", json.dumps({"GET": {}, "POST": post}))


def test_account_settings_teach_a_name_a_username_and_an_email_of_the_account(research):
    roster = _learn(research, [
        _settings(ACTOR, 73311, "name", "Zelda Q", "Zelda  Quintero"),
        _settings(ACTOR, 73311, "username", ACTOR, "zq_renamed"),
        _settings(ACTOR, 73311, "email", None, "zq@example.org"),
        _settings(ACTOR, 73311, "bio", "I am Nobody Special", "x"),  # not a setting that names the account
    ])
    zelda = roster.by_id["73311"]
    assert zelda.usernames == (ACTOR, "zq_renamed") and zelda.emails == ("zq@example.org",)
    assert zelda.names == ("Zelda Q", "Zelda Quintero")  # white space collapsed
    assert not any("Nobody" in name for person in roster.people for name in person.names)


def test_a_registration_form_teaches_one_person_and_an_unrelated_post_nothing(research):
    team = _event("/api/team/v0/teams/", "prof_x", json.dumps({"GET": {}, "POST": {"name": ["Astro Owls"], "course_id": ["c"]}}))
    roster = _learn(research, [_registration("ymir_balder77", "Ymir Balder", "ymir.b@example.org"), team])
    ymir = roster.person_for("ymir_balder77")
    assert ymir.emails == ("ymir.b@example.org",) and ymir.names == ("Ymir Balder",)
    assert not any("Astro Owls" in person.names for person in roster.people)  # a team's name is no one's


def test_urls_teach_the_usernames_and_emails_in_their_person_segments(research):
    event = _event("play_video", ACTOR, "{}", page="https://lms.example.org/u/hidden_person9?tab=about",
                   referer="https://lms.example.org/api/user/v1/accounts/other.one%40example.com/image")
    implicit = _event("/api/enrollment/v1/enrollment/third_one,course-v1:X+Y+Z", "", "{}")
    course = _event("/courses/OrgX/Num1/2014_T1/courseware/ch/sec/", "", "{}")  # an old course id: nobody in it
    roster = _learn(research, [event, implicit, course])
    assert roster.person_for("hidden_person9").id is None  # a URL does not say whose it is
    assert roster.person_for("other.one@example.com") is not None and roster.person_for("third_one") is not None
    assert {u for p in roster.people for u in p.usernames} == {ACTOR, "hidden_person9", "third_one"}


def test_a_name_learned_from_the_settings_or_a_form_is_scrubbed_from_posts_whatever_the_workers(tmp_path, research, key):
    events = [
        _settings("zelda_q", 73311, "name", None, "Zelda Quintero"),
        _registration("ymir_balder77", "Ymir Balder", "ymir.b@example.org"),
        _event("play_video", "ana_b", "{}", page="https://lms.example.org/u/hidden_person9"),
    ] + [_event("edx.forum.comment.created", f"learner_{i:03d}", {"body": f"thanks Zelda Quintero, Balder and hidden_person9 ({i})"})
         for i in range(300)]
    log = _write(tmp_path / "tracking.log", events)
    one = run([log], tmp_path / "one", research, key, jobs=1)
    run([log], tmp_path / "two", research, key, jobs=2)
    assert [p.read_bytes() for p in sorted((tmp_path / "one").glob("*.gz"))] == [p.read_bytes() for p in sorted((tmp_path / "two").glob("*.gz"))]
    text = "\n".join(every_string(line) for line in _lines(tmp_path / "one"))
    for value in ("zelda", "quintero", "balder", "hidden_person9"):
        assert value not in text
    assert one.manifest["learned_roster"]["names"] == 2


# ---------------------------------------------------------------- in a run


def test_a_classmate_named_in_a_post_is_scrubbed_because_the_inputs_name_her_elsewhere(tmp_path, research, key):
    log = _write(tmp_path / "tracking.log", [
        _event("play_video", CLASSMATE, "{}", user_id=70001),
        _event("edx.forum.comment.created", ACTOR, {"body": f"Ask {CLASSMATE} or @{CLASSMATE}, she solved it (user 70001)"}),
    ])
    learned = run([log], tmp_path / "learned", research, key, jobs=1)
    text = "\n".join(every_string(line) for line in _lines(tmp_path / "learned"))
    assert CLASSMATE not in text and "70001" not in text
    assert learned.manifest["learned_roster"] == {"usernames": 2, "user_ids": 1, "emails": 0, "names": 0}
    run([log], tmp_path / "unlearned", research, key, jobs=1, learn=False)
    assert CLASSMATE in "\n".join(_lines(tmp_path / "unlearned"))  # what the pass adds
    assert "learned_roster" not in json.loads((tmp_path / "unlearned" / "manifest.json").read_text())


def test_the_output_is_identical_whatever_the_number_of_workers(tmp_path, research, key):
    events = [_event("edx.forum.comment.created", f"learner_{i % 50:03d}", {"body": f"thanks learner_{(i * 7) % 50:03d}"}) for i in range(3000)]
    log = _write(tmp_path / "tracking.log", events)
    run([log], tmp_path / "one", research, key, jobs=1)
    run([log], tmp_path / "two", research, key, jobs=2)
    assert [p.read_bytes() for p in sorted((tmp_path / "one").glob("*.gz"))] == [p.read_bytes() for p in sorted((tmp_path / "two").glob("*.gz"))]
    assert "learner_0" not in "\n".join(_lines(tmp_path / "one"))


def test_the_learned_roster_follows_the_identifying_name_rule(tmp_path, research, key):
    # "will" is a common word: as a username it is replaced only as an @mention.
    log = _write(tmp_path / "tracking.log", [
        _event("play_video", "will", "{}"),
        _event("edx.forum.comment.created", ACTOR, {"body": "I will ask @will tomorrow"}),
    ])
    run([log], tmp_path / "package", research, key, jobs=1)
    body = json.loads(_lines(tmp_path / "package")[1])["event"]["body"]
    assert body.startswith("I will ask @u_") and "@will" not in body


def test_with_a_roster_file_the_two_are_joined(research, key):
    listed = Roster([Person("70001", ("ymir_o",), (), ("Ymir Okonkwo",))])
    learned = Roster([Person("70001", (CLASSMATE,), ("ymir@example.org",), (), False), Person(None, ("other_one",), (), (), False)])
    joined = join_rosters(listed, learned)
    ymir = joined.person_for(CLASSMATE)
    assert ymir.listed and ymir.id == "70001" and ymir.usernames == ("ymir_o", CLASSMATE) and ymir.emails == ("ymir@example.org",)
    assert not joined.person_for("other_one").listed
    anonymizer = Anonymizer(research, key, joined)
    out = anonymizer.anonymize_event(_event("rescore-student-submission", "prof_x", {"student": "YMIR@example.org", "problem": "p"}))
    linked = anonymizer.anonymize_event(_event("play_video", "ymir_o", "{}", user_id=70001))
    # A listed person's email resolves to her linked username pseudonym: u_ + her user-id pseudonym.
    assert out["event"]["student"] == linked["username"] == f"u_{linked['context']['user_id']}"


def test_a_person_only_learned_is_never_linked_to_her_user_id(research, key):
    learned = Roster([Person("70001", (CLASSMATE,), (), (), False)])
    with_learned = Anonymizer(research, key, learned).anonymize_event(_event("play_video", CLASSMATE, "{}", user_id=70001))
    alone = Anonymizer(research, key).anonymize_event(_event("play_video", CLASSMATE, "{}", user_id=70001))
    assert with_learned["username"] == alone["username"] != f"u_{alone['context']['user_id']}"


# ---------------------------------------------------------------- case and emails in username fields


def test_usernames_differing_only_in_case_get_one_pseudonym(anonymizer):
    upper = anonymizer.anonymize_event(_event("play_video", "Zelda_Q", "{}"))
    lower = anonymizer.anonymize_event(_event("play_video", "zelda_q", "{}"))
    assert upper["username"] == lower["username"]
    assert PSEUDONYM_VERSION == 2


def test_the_pseudonym_is_the_hmac_of_the_lower_cased_username(anonymizer, key):
    out = anonymizer.anonymize_event(_event("play_video", "ZÉLDA_Q", "{}"))
    assert out["username"] == "u_" + Pseudonymizer(key).text("username", "zélda_q")


def test_an_identity_can_stay_case_sensitive(key):
    policy = parse_policy(b"""
name: cased
unknown_events: envelope
identities:
  username: {format: text, prefix: "u_", case: sensitive}
envelope:
  event_type: keep
  username: {op: pseudonymize, identity: username}
""", "cased.yaml")
    anonymizer = Anonymizer(policy, key)
    assert anonymizer.anonymize_event({"event_type": "x", "username": "Zelda_Q"})["username"] != anonymizer.anonymize_event(
        {"event_type": "x", "username": "zelda_q"})["username"]


def test_an_email_typed_for_a_username_resolves_to_the_learner_the_inputs_link_it_to(tmp_path, research, key):
    log = _write(tmp_path / "tracking.log", [
        _event("edx.course.enrollment.activated", "ana_b", {"user_id": 81234, "email": "ana.b@example.org",
                                                             "course_id": "course-v1:X+Y+Z", "mode": "audit"}, user_id=81234),
        _event("rescore-student-submission", "prof_x", {"student": "Ana.B@Example.org", "problem": "p"}),
        _event("rescore-student-submission", "prof_x", {"student": "ANA_B", "problem": "p"}),
        _event("rescore-student-submission", "prof_x", {"student": "stranger@example.net", "problem": "p"}),
    ])
    run([log], tmp_path / "package", research, key, jobs=1)
    lines = [json.loads(line) for line in _lines(tmp_path / "package")]
    ana = lines[0]["username"]
    assert lines[1]["event"]["student"] == ana == lines[2]["event"]["student"]
    stranger = lines[3]["event"]["student"]
    assert stranger.startswith("u_") and stranger != ana and "stranger" not in "\n".join(_lines(tmp_path / "package"))
    assert "example.org" not in "\n".join(_lines(tmp_path / "package"))


def test_an_unknown_email_in_a_username_field_gets_a_pseudonym_of_its_own(anonymizer, key):
    out = anonymizer.anonymize_event(_event("rescore-student-submission", "prof_x", {"student": "Zed@Example.org", "problem": "p"}))
    assert out["event"]["student"] == "u_" + Pseudonymizer(key).text("email", "zed@example.org")


@pytest.mark.parametrize("value", ["zelda_q", "Zelda_Q"])
def test_roster_lookups_of_usernames_ignore_case(value):
    roster = Roster([Person("1", ("ZELDA_q",))])
    assert roster.person_for(value) is roster.people[0]


def test_the_command_line_turns_the_pass_off_with_no_learn(tmp_path, key_file):
    import subprocess
    import sys

    log = _write(tmp_path / "tracking.log", [_event("play_video", CLASSMATE, "{}"),
                                             _event("edx.forum.comment.created", ACTOR, {"body": f"ask {CLASSMATE}"})])
    for flag, found in (("--learn", False), ("--no-learn", True)):
        out = tmp_path / flag
        result = subprocess.run([sys.executable, "-m", "anonymizer.cli", "run", str(log), "--out", str(out), "--key-file", str(key_file),
                                 "--jobs", "1", "--quiet", flag], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert (CLASSMATE in "\n".join(_lines(out))) is found
