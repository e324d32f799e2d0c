"""xAPI statements as input: containers, detection, the xapi-research policy, identities across
formats, routing, the engines, verify, and a generated set with planted identifiers."""

from __future__ import annotations

import copy
import csv
import gzip
import hashlib
import json
import uuid
from pathlib import Path

import orjson
import pytest

from anonymizer import Anonymizer, Key, load_policy, run
from anonymizer.core.errors import PolicyError, UsageError
from anonymizer.core.lowering import lower
from anonymizer.core.native import make_anonymizer as make_native
from anonymizer.core.paths import format_path, parse_path
from anonymizer.core.plan import from_json, to_json
from anonymizer.core.roster import load_roster
from anonymizer.core.scoping import chosen_engine
from anonymizer.core.xapi import course_in_id
from anonymizer.io.formats import default_policy, detect
from anonymizer.verify import verify_package
from adversarial.people import PEOPLE
from adversarial.search import Searcher

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
XAPI_FIXTURES = CORPUS / "event-routing-backends" / "xapi-expected"
KEY = Key(bytes(range(32)))
HOST = "https://lms.learn.example.org"
COURSE = "course-v1:NorthwindX+Astro101+2024_T1"
BLOCK = "block-v1:NorthwindX+Astro101+2024_T1+type@problem+block@b33cd53142feb18718a15bc13456a1e9"
SESSION_ID = "https://w3id.org/xapi/openedx/extensions/session-id"
VIDEO_TIME = "https://w3id.org/xapi/video/extensions/time"


@pytest.fixture(scope="module")
def policy():
    return load_policy("xapi-research")


def statement(actor: str = "8b4c3e0e-54d4-4e8a-9c59-0a1b2c3d4e5f", verb: str = "http://adlnet.gov/expapi/verbs/answered", **extra) -> dict:
    """A problem answer, as event-routing-backends writes one."""
    out = {
        "id": "0f6c2e3a-54b1-5c31-9d8e-7a6b5c4d3e2f",
        "actor": {"objectType": "Agent", "account": {"homePage": HOST, "name": actor}},
        "verb": {"id": verb, "display": {"en": verb.rsplit("/", 1)[1]}},
        "object": {
            "id": f"{HOST}/xblock/{BLOCK}",
            "objectType": "Activity",
            "definition": {"type": "http://adlnet.gov/expapi/activities/cmi.interaction", "interactionType": "other"},
        },
        "result": {"response": "blue", "success": True, "score": {"raw": 1, "max": 1, "min": 0, "scaled": 1.0}},
        "context": {
            "contextActivities": {"parent": [{"id": f"{HOST}/course/{COURSE}", "objectType": "Activity"}]},
            "extensions": {SESSION_ID: "993110e9c27848a545da74a74114158d"},
        },
        "timestamp": "2024-02-03T10:11:12.000000+00:00",
        "version": "1.0.3",
    }
    out.update(extra)
    return out


def line(value: dict) -> bytes:
    return orjson.dumps(value)


def written(result) -> list[dict]:
    return [orjson.loads(one.output) for one in result.lines if one.outcome == "written"]


def package_statements(out: Path) -> list[dict]:
    return [json.loads(text) for path in sorted(out.rglob("*.gz")) for text in gzip.decompress(path.read_bytes()).decode().splitlines()]


# ---------------------------------------------------------------- paths and policies


def test_quoted_keys_hold_dots_and_round_trip():
    path = 'result.extensions."https://w3id.org/xapi/video/extensions/time"'
    assert parse_path(path) == ("result", "extensions", VIDEO_TIME)
    assert format_path(parse_path(path)) == path
    assert parse_path('a."k*[0]"[1].b') == ("a", "k*[0]", 1, "b")  # inside quotes nothing is syntax
    for bad in ('a."b', 'a.""', 'a"b', 'a."b"c', '"a".'):
        with pytest.raises(ValueError, match="double quotes"):
            parse_path(bad)


def test_events_format_is_an_attribute_of_policy_and_plan(policy, research):
    assert (policy.events_format, lower(policy).events_format) == ("xapi", "xapi")
    assert (research.events_format, lower(research).events_format) == ("tracking-log", "tracking-log")
    # Tracking-log plans keep their bytes; an xAPI plan says what it is, and reads back.
    assert b"events_format" not in to_json(lower(research))
    assert from_json(to_json(lower(policy))).events_format == "xapi"


def test_rule_keys_belong_to_their_format():
    xapi = b"name: x\nevents_format: xapi\nenvelope: {id: drop}\nevents: [{match: v, source: s, fields: {a: drop}}]\n"
    tracking = b"name: t\nenvelope: {time: drop}\nevents: [{match: v, object_type: s, fields: {a: drop}}]\n"
    from anonymizer.core.policy import parse_policy

    with pytest.raises(PolicyError, match="object_type"):
        parse_policy(xapi, "x.yaml")
    with pytest.raises(PolicyError, match="xAPI policies only"):
        parse_policy(tracking, "t.yaml")


# ---------------------------------------------------------------- the policy on one statement


def test_a_statement_keeps_its_research_fields_and_loses_its_people(policy):
    result = Anonymizer(policy, KEY).anonymize_batch([line(statement())])
    (out,) = written(result)
    assert out["verb"]["id"] == "http://adlnet.gov/expapi/verbs/answered"
    assert out["object"]["id"] == f"{HOST}/xblock/{BLOCK}"
    assert out["context"]["contextActivities"]["parent"][0]["id"] == f"{HOST}/course/{COURSE}"
    assert out["result"] == {"response": "blue", "success": True, "score": {"raw": 1, "max": 1, "min": 0, "scaled": 1.0}}
    assert out["timestamp"] == "2024-02-03T10:11:12.000000+00:00"
    assert out["actor"]["account"]["name"].startswith("x_")
    assert out["context"]["extensions"][SESSION_ID].startswith("s_")
    assert out["id"].startswith("st_")
    routed = result.lines[0].route
    assert (routed.course_id, routed.date) == (COURSE, "2024-02-03")


def test_unknown_extensions_verbs_and_actor_names_are_dropped(policy):
    value = statement()
    value["context"]["extensions"]["https://example.org/x/learner-email"] = "someone@example.org"
    value["actor"]["name"] = "Quinn Harrowgate"
    value["context"]["instructor"] = {"mbox": "mailto:teacher@example.org"}
    unknown = statement(verb="https://example.org/verbs/whispered")
    result = Anonymizer(policy, KEY).anonymize_batch([line(value), line(unknown)])
    assert result.stats.dropped == {"event_type_not_in_policy": 1}
    (out,) = written(result)
    assert "https://example.org/x/learner-email" not in out["context"]["extensions"]
    assert "name" not in out["actor"] and "instructor" not in out["context"]
    assert b"someone@" not in result.lines[0].output and b"teacher@" not in result.lines[0].output and b"Quinn" not in result.lines[0].output


def test_lines_of_another_format_are_rejected_never_copied(policy):
    tracking = {"event_type": "play_video", "username": "quinn_harrow", "event": "{}", "time": "2024-02-03T10:00:00+00:00"}
    row_without = {"event_id": "e1", "event": json.dumps({"verb": {"id": "x"}})}
    lines = [line(tracking), b'{"actor": oops', line(row_without), line(statement())]
    result = Anonymizer(policy, KEY).anonymize_batch(lines)
    assert result.stats.rejected == {"not_an_xapi_statement": 2, "invalid_json": 1}
    assert [one.outcome for one in result.lines] == ["rejected", "rejected", "rejected", "written"]
    assert b"quinn_harrow" not in b"".join(one.output for one in result.lines if one.outcome == "written")


def test_a_clickhouse_row_gives_its_statement_and_drops_its_columns(policy):
    value = statement()
    row = {"event_id": value["id"], "emission_time": "2024-02-03 10:11:12", "actor_id": value["actor"]["account"]["name"], "event": json.dumps(value)}
    anonymizer = Anonymizer(policy, KEY)
    from_row = anonymizer.anonymize_batch([line(row)])
    bare = anonymizer.anonymize_batch([line(value)])
    assert from_row.lines[0].output == bare.lines[0].output
    dropped = {path for (_, path, _) in from_row.stats.fields}
    assert {"<row>.event_id", "<row>.emission_time", "<row>.actor_id"} <= dropped


def test_activity_urls_fail_closed_but_keep_their_keys(policy):
    value = statement()
    value["object"]["id"] = f"{HOST}/u/quinn_harrow?token=s3cret#x"
    value["context"]["contextActivities"]["grouping"] = [{"id": f"{HOST}/courses/{COURSE}/hidden-page/quinn-private-notes"}]
    (out,) = written(Anonymizer(policy, KEY).anonymize_batch([line(value)]))
    assert "quinn" not in json.dumps(out) and "s3cret" not in json.dumps(out)
    assert COURSE in out["context"]["contextActivities"]["grouping"][0]["id"]


def test_the_course_of_a_statement_comes_from_its_activity_ids():
    assert course_in_id(f"{HOST}/xblock/{BLOCK}") == COURSE
    assert course_in_id(f"{HOST}/course/{COURSE}") == COURSE
    assert course_in_id(f"{HOST}/xblock/ccx-block-v1:Org+Num+Run+ccx@3+type@video+block@ab") == "ccx-v1:Org+Num+Run+ccx@3"
    assert course_in_id(f"{HOST}/api/discussion/v1/threads/64abcdfee68f35002fd013c6") is None


# ---------------------------------------------------------------- identities across formats


def cast_external_id(person) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, person.username))


def write_cast_roster(path: Path) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "username", "email", "name", "external_id"])
        for person in PEOPLE:
            writer.writerow([person.id, person.username, person.email, person.name, cast_external_id(person)])
    return path


def test_one_learner_one_pseudonym_across_tracking_logs_and_xapi(tmp_path, policy, research):
    roster, _ = load_roster([write_cast_roster(tmp_path / "roster.csv")])
    person = PEOPLE[2]
    event = {"event_type": "play_video", "event_source": "browser", "username": person.username, "context": {"user_id": person.id},
             "event": "{}", "time": "2024-02-03T10:00:00+00:00"}
    (tracked,) = written(Anonymizer(research, KEY, roster).anonymize_batch([line(event)]))
    sha1 = hashlib.sha1(f"mailto:{person.email}".encode()).hexdigest()
    statements = [statement(actor=cast_external_id(person).upper()), statement(), statement()]
    statements[1]["actor"] = {"objectType": "Agent", "mbox": f"mailto:{person.email}"}
    statements[2]["actor"] = {"objectType": "Agent", "mbox_sha1sum": sha1}
    outs = written(Anonymizer(policy, KEY, roster).anonymize_batch([line(s) for s in statements]))
    pseudonym = tracked["username"]
    assert pseudonym == f"u_{tracked['context']['user_id']}"  # the roster links username and user id
    assert [outs[0]["actor"]["account"]["name"], outs[1]["actor"]["mbox"], outs[2]["actor"]["mbox_sha1sum"]] == [pseudonym] * 3


def test_without_a_roster_actors_and_mailboxes_get_their_own_pseudonyms(policy):
    value = statement()
    mailbox = statement()
    mailbox["actor"] = {"mbox": "mailto:Someone@Example.org"}
    hashed = statement()
    hashed["actor"] = {"mbox_sha1sum": hashlib.sha1(b"mailto:someone@example.org").hexdigest()}
    outs = written(Anonymizer(policy, KEY).anonymize_batch([line(value), line(mailbox), line(hashed)]))
    assert outs[0]["actor"]["account"]["name"].startswith("x_")
    assert outs[1]["actor"]["mbox"].startswith("u_") and "example" not in outs[1]["actor"]["mbox"].lower()
    assert outs[2]["actor"]["mbox_sha1sum"].startswith("u_") and len(outs[2]["actor"]["mbox_sha1sum"]) < 40


# ---------------------------------------------------------------- containers, detection, engines


def test_the_three_containers_are_detected_and_give_one_package(tmp_path, policy):
    values = [statement(), statement(verb="https://w3id.org/xapi/video/verbs/played")]
    values[1]["object"]["definition"]["type"] = "https://w3id.org/xapi/video/activity-type/video"
    values[1]["result"] = {"extensions": {VIDEO_TIME: 12.5}}
    plain = tmp_path / "in" / "statements.jsonl"
    plain.parent.mkdir()
    plain.write_bytes(b"".join(line(v) + b"\n" for v in values))
    vector = tmp_path / "in" / "vector.json.gz"
    vector.write_bytes(gzip.compress(plain.read_bytes()))
    rows = tmp_path / "in" / "xapi_events_all.json"
    rows.write_bytes(b"".join(line({"event_id": v["id"], "emission_time": "2024-02-03 10:11:12", "event": json.dumps(v)}) + b"\n" for v in values))
    tracking = tmp_path / "tracking.log"
    tracking.write_text('{"event_type": "page_close", "time": "2024-02-03T10:00:00+00:00"}\n')
    assert [detect(p) for p in (plain, vector, rows, tracking)] == ["xapi", "xapi", "xapi", "tracking-log"]
    assert default_policy([plain.parent]) == "xapi-research" and default_policy([tracking]) == "research"
    with pytest.raises(UsageError, match="both tracking logs"):
        default_policy([plain.parent, tracking])
    outputs = []
    for source in (plain, vector, rows):
        result = run([source], tmp_path / source.name, policy, KEY, jobs=1)
        assert result.manifest["counts"]["written"] == 2
        outputs.append(package_statements(tmp_path / source.name))
    assert outputs[0] == outputs[1] == outputs[2]
    assert outputs[0][1]["result"]["extensions"] == {VIDEO_TIME: 12.5}
    # The package says what it holds: statements, not tracking logs.
    readme = (tmp_path / plain.name / "README.md").read_text()
    assert "Pseudonymized Open edX xAPI statements" in readme and "one JSON xAPI statement per line" in readme
    assert json.loads((tmp_path / plain.name / "codebook.json").read_text())["events"] == "xapi"
    with pytest.raises(UsageError, match="written for tracking logs"):
        run([plain], tmp_path / "wrong", load_policy("research"), KEY, jobs=1)
    with pytest.raises(UsageError, match="xAPI statements"):
        run([tracking], tmp_path / "forced", policy, KEY, jobs=1, input_format="tracking-log")


def test_course_day_layout_and_selection_place_statements(tmp_path, policy):
    from anonymizer.core.selection import Selection

    days = [statement(timestamp=f"2024-02-0{day}T10:00:00+00:00") for day in (3, 4, 5)]
    source = tmp_path / "statements.jsonl"
    source.write_bytes(b"".join(line(v) + b"\n" for v in days))
    selection = Selection.parse(courses=["course-v1:NorthwindX+*"], since="2024-02-04")
    result = run([source], tmp_path / "out", policy, KEY, jobs=1, layout="course-day", selection=selection)
    counts = result.manifest["counts"]
    assert (counts["written"], counts["not_selected"]) == (2, 1)
    assert sorted((f["course"], f["day"]) for f in result.manifest["files"] if "course" in f) == [(COURSE, "2024-02-04"), (COURSE, "2024-02-05")]


def test_the_native_engine_does_not_run_statements(policy):
    assert chosen_engine("auto", events_format="xapi") == "python"
    with pytest.raises(UsageError, match="xAPI statements"):
        chosen_engine("native", events_format="xapi")
    assert type(make_native(policy, KEY, None, "auto")) is Anonymizer
    with pytest.raises(UsageError, match="xAPI"):
        make_native(policy, KEY, None, "native")


# ---------------------------------------------------------------- verify


def test_verify_harvests_actors_mailboxes_and_sessions_from_statements(tmp_path, policy):
    """A policy that lets the actor, its mailbox and the session through is caught by verify
    against the raw statements (read from a ClickHouse export, as run reads them)."""
    value = statement(actor="5e1d3c2b-aaaa-4bbb-8ccc-0d9e8f7a6b5c")
    mailbox = statement()
    mailbox["actor"] = {"mbox": "mailto:leaky.person@example.net"}
    source = tmp_path / "xapi_events_all.json"
    source.write_bytes(b"".join(line({"event_id": "e", "event": json.dumps(v)}) + b"\n" for v in (value, mailbox)))
    leaky = tmp_path / "leaky.yaml"
    leaky.write_text(
        "name: leaky\nextends: xapi-research\nenvelope:\n  actor.account.name: keep\n  actor.mbox: keep\n"
        f"  'context.extensions.\"{SESSION_ID}\"': keep\n"
    )
    run([source], tmp_path / "leaky", load_policy(leaky), KEY, jobs=1)
    report = verify_package(tmp_path / "leaky", against=[source])
    assert {"external_id", "email", "session"} <= {f.kind for f in report.findings}
    run([source], tmp_path / "clean", policy, KEY, jobs=1)
    clean = verify_package(tmp_path / "clean", against=[source])
    assert clean.ok, [f.describe() for f in clean.findings]


# ---------------------------------------------------------------- planted identifiers


def planted_statements() -> list[dict]:
    """Statements of every kind the policy rules, each with one person of the cast planted in
    every place a person can hide: actor, mailboxes, answers, extensions, activity URLs, names."""
    kinds = [
        ("http://adlnet.gov/expapi/verbs/answered", "http://adlnet.gov/expapi/activities/cmi.interaction"),
        ("https://w3id.org/xapi/video/verbs/played", "https://w3id.org/xapi/video/activity-type/video"),
        ("https://w3id.org/xapi/dod-isd/verbs/navigated", "http://id.tincanapi.com/activitytype/resource"),
        ("https://w3id.org/xapi/acrossx/verbs/posted", "http://id.tincanapi.com/activitytype/discussion"),
    ]
    out = []
    for index, person in enumerate(PEOPLE * 2):
        other = PEOPLE[(index + 1) % len(PEOPLE)]
        verb, kind = kinds[index % len(kinds)]
        value = statement(actor=cast_external_id(person), verb=verb)
        value["object"]["definition"] = {"type": kind, "name": {"en-US": f"Notes of {other.name}"}, "interactionType": other.username}
        value["object"]["id"] = [f"{HOST}/u/{person.username}", f"{HOST}/courses/{COURSE}/discussion/forum/users/{person.id}",
                                 f"{HOST}/xblock/{BLOCK}?email={person.email}", f"{HOST}/profile/{other.username}/edit"][index % 4]
        if index % 3 == 1:
            value["actor"]["mbox"] = f"mailto:{person.email}"
        if index % 3 == 2:
            value["actor"]["mbox_sha1sum"] = hashlib.sha1(f"mailto:{person.email}".encode()).hexdigest()
        value["actor"]["name"] = person.name
        value["result"] = {
            "response": f"I am {person.name} ({person.username}, id {person.id}, {cast_external_id(other)}); "
                        f"write to {person.email} or call {person.phone}; ask {other.name} at {other.email}",
            "success": True,
            "extensions": {VIDEO_TIME: 3.5, "https://w3id.org/xapi/openedx/extension/speed-from": other.username},
        }
        value["context"]["extensions"] = {
            SESSION_ID: hashlib.md5(person.username.encode()).hexdigest(),
            "http://id.tincanapi.com/extension/ending-point": f"{person.username} {person.phone}",
            "https://example.org/x/learner": {"email": person.email, "ip": person.ip},
        }
        value["context"]["contextActivities"]["grouping"] = [{"id": f"{HOST}/u/{other.username}", "definition": {"name": {"en": other.name}}}]
        value["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"statement-{index}"))
        value["timestamp"] = f"2024-02-{index + 1:02d}T10:00:00+00:00"
        out.append(value)
    return out


def test_a_generated_set_with_planted_identifiers_has_no_survivor(tmp_path, policy):
    values = planted_statements()
    source = tmp_path / "planted.jsonl"
    source.write_bytes(b"".join(line(v) + b"\n" for v in values))
    roster_path = write_cast_roster(tmp_path / "roster.csv")
    roster, _ = load_roster([roster_path])
    result = run([source], tmp_path / "package", policy, KEY, jobs=1, roster=roster)
    assert result.manifest["counts"]["written"] == len(values)
    lines = [text for path in sorted((tmp_path / "package").glob("*.gz")) for text in gzip.decompress(path.read_bytes()).decode().splitlines()]
    searcher = Searcher()
    survivors = [found for text in lines for found in searcher.find(text)]
    assert survivors == []
    text = "\n".join(lines).lower()
    raw = {cast_external_id(p) for p in PEOPLE} | {hashlib.md5(p.username.encode()).hexdigest() for p in PEOPLE}
    raw |= {hashlib.sha1(f"mailto:{p.email}".encode()).hexdigest() for p in PEOPLE} | {v["id"] for v in values}
    assert [value for value in raw if value in text] == []
    report = verify_package(tmp_path / "package", against=[source], roster=[roster_path])
    assert report.ok, [f.describe() for f in report.findings]


# ---------------------------------------------------------------- the real statements


def fixture_statements() -> list[dict]:
    """Every statement of the fixtures: one per file, or a list of them (problems with several inputs)."""
    out = []
    for path in sorted(XAPI_FIXTURES.glob("*.json")):
        value = json.loads(path.read_text(encoding="utf-8"))
        out.extend(value if isinstance(value, list) else [value])
    return out


@pytest.mark.corpus
def test_every_fixture_statement_anonymizes_with_nothing_raw_left(tmp_path, policy):
    assert len(list(XAPI_FIXTURES.glob("*.json"))) == 77
    values = fixture_statements()
    source = tmp_path / "statements.jsonl"
    source.write_bytes(b"".join(line(v) + b"\n" for v in values))
    result = run([source], tmp_path / "package", policy, KEY, jobs=1)
    counts = result.manifest["counts"]
    assert (counts["read"], counts["written"], counts["rejected"], counts["dropped"]) == (len(values), len(values), {}, {})
    out = package_statements(tmp_path / "package")
    text = json.dumps(out)
    raw = {v["actor"]["account"]["name"] for v in values} | {v["id"] for v in values}
    raw |= {v["context"]["extensions"].get(SESSION_ID) for v in values} - {None}
    assert [value for value in raw if value in text] == []
    # Research fields survive: verbs, course and block keys in activity ids, scores, video times.
    assert [o["verb"]["id"] for o in out] == [v["verb"]["id"] for v in values]
    for before, after in zip(values, out):
        for key in ("course-v1:", "block-v1:"):
            if key in before["object"].get("id", ""):
                assert before["object"]["id"].split(key, 1)[1].split("/")[0] in after["object"]["id"]
        assert after.get("result", {}).get("score") == before.get("result", {}).get("score")
        assert after["timestamp"] == before["timestamp"]
    assert sum(1 for o in out if VIDEO_TIME in o.get("result", {}).get("extensions", {})) >= 5
    report = verify_package(tmp_path / "package", against=[source])
    assert report.ok, [f.describe() for f in report.findings]
