"""The side tables (``anonymizer tables``): formats, the table policy, the join with the events,
what is dropped, the manifest and codebook, and the demographics in ``risk``."""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from anonymizer.cli import app
from anonymizer.core.errors import PolicyError, UsageError
from anonymizer.core.operators import DROP, EventState
from anonymizer.core.policy import builtin_policies
from anonymizer.core.roster import load_roster
from anonymizer.io.runner import run
from anonymizer.tables.policy import load_table_policy, parse_table_policy
from anonymizer.tables.runner import anonymize_tables
from anonymizer.tools.risk import risk_report
from anonymizer.verify import verify_package

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
OBFUSCATION = CORPUS / "edx-analytics-pipeline" / "input" / "obfuscation"
COURSE = "course-v1:Org+Num+Run"


@pytest.fixture(scope="module")
def tables_policy():
    return load_table_policy()


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _all_bytes(directory: Path) -> bytes:
    return b"\n".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()).lower()


def _events(directory: Path) -> list[dict]:
    events = []
    for path in sorted(directory.glob("*.gz")):
        events += [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]
    return events


def _write_log(path: Path, events: list[dict]) -> Path:
    path.write_text("".join(json.dumps(event) + "\n" for event in events))
    return path


def _event(username: str, user_id: int, agent: str = "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0") -> dict:
    return {
        "event_type": "play_video",
        "event_source": "browser",
        "username": username,
        "time": "2024-03-01T10:00:00+00:00",
        "agent": agent,
        "ip": "203.0.113.9",
        "context": {"course_id": COURSE, "user_id": user_id, "org_id": "Org"},
        "event": {"id": "abc", "currentTime": 1},
    }


# ---------------------------------------------------------------- the corpus exports


@pytest.mark.corpus
def test_corpus_exports_join_the_anonymized_events_and_keep_no_email_or_name(tmp_path, key, research, tables_policy):
    tables = tmp_path / "tables"
    manifest = anonymize_tables([OBFUSCATION], tables, key, tables_policy)
    events = tmp_path / "events"
    run([OBFUSCATION.parent / "obfuscation_tracking.log"], events, research, key, jobs=1, learn=False)  # learning changes no pseudonym

    users = _csv(tables / "auth_user.csv")
    profiles = _csv(tables / "auth_userprofile.csv")
    assert len(users) == len(profiles) == 4
    ids = {row["id"] for row in users}
    assert {row["user_id"] for row in profiles} == ids
    logged = [event for event in _events(events) if event.get("username")]
    assert logged
    # Every user id and username of the events is one of the table's pseudonyms, and each event's
    # (username, user id) pair is a row of auth_user but for the log's one inconsistent event.
    assert {str(event["context"]["user_id"]) for event in logged} <= ids
    assert {event["username"] for event in logged} <= {row["username"] for row in users}
    pairs = {(row["username"], row["id"]) for row in users}
    joined = [event for event in logged if (event["username"], str(event["context"]["user_id"])) in pairs]
    assert len(joined) >= len(logged) - 1

    # No email, name or password survives, in any byte of the package.
    raw = (OBFUSCATION / "auth_user").read_text().split("\n") + (OBFUSCATION / "auth_userprofile").read_text().split("\n")
    secrets = {field for line in raw if line for field in line.split("\x01") if "@" in field or "_first" in field}
    secrets |= {part for value in list(secrets) for part in value.split() if "_" in part}
    assert len(secrets) >= 12
    everything = _all_bytes(tables)
    for value in secrets:
        assert value.lower().encode() not in everything, "a raw email or name is in the package"
    assert manifest["tables"]["auth_user"] == {"rows_read": 4, "rows_written": 4, "rows_rejected": 0, "columns_dropped": {}}
    assert {row["year_of_birth"] for row in profiles} == {"1985-1989", "1995-1999", "1990-1994"}
    report = verify_package(tables, roster=[OBFUSCATION / "auth_user", OBFUSCATION / "auth_userprofile"])
    assert report.ok, report.describe()


# ---------------------------------------------------------------- the same pseudonyms as the events


def _export(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


AUTH_USER_CSV = (
    "id,username,first_name,last_name,email,password,is_staff,is_active,is_superuser,last_login,date_joined,secret_col\n"
    "4242,Zelda_Q,Zelda,Quintavalle,zelda.q@example.org,pbkdf2_sha256$600000$saltysalt$hashhashhash,0,1,0,"
    "2024-02-29 23:59:58,2023-05-01 08:15:00,kept-nowhere-7731\n"
    "77,ymir_k,Ymir,Kowalczyk,ymir@example.net,pbkdf2_sha256$600000$othersalt$otherhash,1,1,0,,2022-01-01 00:00:00,kept-nowhere-7732\n"
)


@pytest.mark.parametrize("with_roster", [False, True], ids=["plain", "roster-and-scope"])
def test_user_ids_and_usernames_get_the_events_pseudonyms(tmp_path, key, research, tables_policy, with_roster):
    export = _export(tmp_path / "export", {"auth_user.csv": AUTH_USER_CSV})
    log = _write_log(tmp_path / "tracking.log", [_event("Zelda_Q", 4242), _event("ymir_k", 77)])
    roster = load_roster([export / "auth_user.csv"])[0] if with_roster else None
    scope = "team-a" if with_roster else None  # a scoped key on both sides joins too
    run([log], tmp_path / "events", research, key, jobs=1, roster=roster, scope=scope)
    manifest = anonymize_tables([export], tmp_path / "tables", key, tables_policy, roster=roster, scope=scope)
    assert manifest["key_id"] == json.loads((tmp_path / "events" / "manifest.json").read_text())["key_id"]

    from_events = {(e["username"], str(e["context"]["user_id"])) for e in _events(tmp_path / "events")}
    from_tables = {(row["username"], row["id"]) for row in _csv(tmp_path / "tables" / "auth_user.csv")}
    assert from_events == from_tables and len(from_tables) == 2
    if with_roster:  # linked: a username pseudonym is the prefix and the user-id pseudonym
        assert all(username == "u_" + user_id for username, user_id in from_tables)


def test_table_policy_has_the_research_policy_identities(research, tables_policy):
    for name in ("username", "user_id", "anonymous_id"):
        assert tables_policy.identities[name] == research.identities[name]


def test_studentmodule_state_rules_are_the_research_problem_state_rules(research, tables_policy):
    rule = next(r for r in research.events if "problem_check" in r.match and r.source == ["server"])
    events = {path[len("state."):]: field.model_dump() for path, field in rule.fields.items() if path.startswith("state.")}
    tables = {path: field.model_dump() for path, field in tables_policy.tables["courseware_studentmodule"].columns["state"].fields.items()}
    assert events and all(tables[path] == rule for path, rule in events.items())


# ---------------------------------------------------------------- CSV, unknown tables and columns, accounting


def test_csv_export_drops_unknown_tables_and_columns_and_reports_them(tmp_path, key, tables_policy):
    files = {"auth_user.csv": AUTH_USER_CSV, "mystery_table.csv": "a,b\nzelda.q@example.org,2\n", "certificates_generatedcertificate.csv": ""}
    export = _export(tmp_path / "export", files)
    out = tmp_path / "tables"
    manifest = anonymize_tables([export], out, key, tables_policy)

    names = ["README.md", "auth_user.csv", "certificates_generatedcertificate.csv", "codebook.json", "manifest.json"]
    assert sorted(p.name for p in out.iterdir()) == names
    assert manifest["tables"]["certificates_generatedcertificate"]["rows_read"] == 0  # an empty export: a table without rows
    assert manifest["unknown_tables"] == [{"file": "mystery_table.csv", "lines": 2, "reason": "no table of the policy is named by the file name"}]
    rows = _csv(out / "auth_user.csv")
    assert list(rows[0]) == ["id", "username", "last_login", "date_joined", "is_active", "is_superuser", "is_staff"]
    assert rows[0]["date_joined"] == "2023-05-01 00:00:00" and rows[1]["last_login"] == ""
    counts = manifest["tables"]["auth_user"]
    assert counts["rows_read"] == counts["rows_written"] == 2 and counts["columns_dropped"] == {"unnamed": {"secret_col": 2}}
    everything = _all_bytes(out)
    for raw in ("zelda.q@example.org", "ymir@example.net", "quintavalle", "kowalczyk", "pbkdf2", "saltysalt", "kept-nowhere", "zelda_q", "4242"):
        assert raw.encode() not in everything, raw
    codebook = orjson.loads((out / "codebook.json").read_bytes())
    columns = {entry["path"]: entry["op"] for entry in next(t for t in codebook["tables"] if t["name"] == "auth_user")["columns"]}
    assert columns["email"] == columns["password"] == columns["first_name"] == "drop"


def test_rows_that_cannot_be_read_are_rejected_by_line_without_their_values(tmp_path, key, tables_policy):
    export = _export(
        tmp_path / "export",
        {"student_courseenrollment.csv": f"id,user_id,course_id,created,is_active,mode\n1,4242,{COURSE},2024-01-02 10:00:00,1,audit\n2,zelda.q@example.org\n3,77,{COURSE},2024-01-03 11:00:00,1,verified\n"},
    )
    manifest = anonymize_tables([export], tmp_path / "tables", key, tables_policy)
    assert manifest["tables"]["student_courseenrollment"] == {"rows_read": 3, "rows_written": 2, "rows_rejected": 1, "columns_dropped": {}}
    assert manifest["rejections"] == [{"file": "student_courseenrollment.csv", "line": 3, "reason": "expected 6 fields, found 2"}]
    assert b"zelda" not in (tmp_path / "tables" / "manifest.json").read_bytes()
    rows = _csv(tmp_path / "tables" / "student_courseenrollment.csv")
    assert [row["mode"] for row in rows] == ["audit", "verified"] and rows[0]["created"] == "2024-01-02 00:00:00"


def test_tsv_with_a_header_decodes_mysql_escapes(tmp_path, key, tables_policy):
    sql = "id\tuser_id\tgoals\tyear_of_birth\tcountry\tname\n1\t4242\tfirst line\\nmail me at zelda.q@example.org\t1990\tNZ\tZelda Quintavalle\n2\t77\t\\N\tNULL\tFR\tYmir K\n"
    export = _export(tmp_path / "export", {"MITx-6.002x-2013-auth_userprofile-prod-analytics.sql": sql})
    manifest = anonymize_tables([export], tmp_path / "tables", key, tables_policy)
    assert manifest["inputs"][0]["format"] == "tsv-header" and manifest["inputs"][0]["table"] == "auth_userprofile"
    rows = _csv(tmp_path / "tables" / "auth_userprofile.csv")
    assert rows[0]["goals"] == "first line\nmail me at [EMAIL]"
    assert [row["year_of_birth"] for row in rows] == ["1990-1994", ""] and [row["country"] for row in rows] == ["NZ", "FR"]
    assert "name" not in rows[0]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("student_courseenrollment.tsv", f"1\t4242\t{COURSE}\t2024-01-02\t1\taudit\n"),
        # a first row of plain lower-case values is not taken for a header: it names no column
        ("user_id_map.tsv", "a1b2c3d4\tzelda_q\tymir_k\n"),
    ],
)
def test_a_headerless_export_of_a_table_without_a_layout_is_refused_by_name(tmp_path, key, tables_policy, name, text):
    export = _export(tmp_path / "export", {name: text})
    with pytest.raises(Exception, match=f"{name}: an export without a header row") as raised:
        anonymize_tables([export], tmp_path / "tables", key, tables_policy)
    assert not any(value in str(raised.value) for value in ("4242", "a1b2c3d4", "zelda_q"))


# ---------------------------------------------------------------- year bands


@pytest.mark.parametrize(
    ("value", "width", "band"),
    [("1988", 5, "1985-1989"), ("1990", 5, "1990-1994"), ("1994", 5, "1990-1994"), (" 1988.0 ", 5, "1985-1989"), ("1988", 10, "1980-1989")],
)
def test_year_of_birth_becomes_a_band(value, width, band):
    from anonymizer.core.operators import REGISTRY

    operator = REGISTRY["generalize_year"]
    fn = operator.build(operator.Params(width=width), None)
    assert fn(value, EventState()) == band


@pytest.mark.parametrize("value", ["88", "nineteen", "1988-03-01", 1988])
def test_a_value_that_is_not_a_year_is_dropped(value):
    from anonymizer.core.operators import REGISTRY

    operator = REGISTRY["generalize_year"]
    assert operator.build(operator.Params(), None)(value, EventState()) is DROP


# ---------------------------------------------------------------- courseware_studentmodule.state


def test_studentmodule_state_is_decoded_and_scrubbed_and_unparseable_state_dropped(tmp_path, key, tables_policy):
    state = {
        "student_answers": {"abc_2_1": "write to zelda.q@example.org or ask ymir_k, says Zelda Quintavalle", "abc_3_1": "choice_2"},
        "correct_map": {"abc_2_1": {"correctness": "incorrect", "npoints": None, "msg": "", "queuestate": {"key": "s3cr3t-queue"}}},
        "seed": 1,
        "attempts": 2,
        "done": True,
        "private_note": "kept-nowhere-9911",
    }
    rows = [
        ["id", "module_type", "module_id", "student_id", "state", "grade", "max_grade", "done", "created", "modified", "course_id"],
        ["1", "problem", "block-v1:Org+Num+Run+type@problem+block@abc", "4242", json.dumps(state), "0", "1", "na", "2024-01-02 10:00:00", "2024-01-02 10:05:00", COURSE],
        ["2", "problem", "block-v1:Org+Num+Run+type@problem+block@abc", "77", '{"student_answers": {"abc_2_1": "zelda.q@example.org"', "1", "1", "na", "2024-01-02 10:00:00", "2024-01-02 10:05:00", COURSE],
    ]
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    export = _export(tmp_path / "export", {"auth_user.csv": AUTH_USER_CSV, "courseware_studentmodule.csv": text.getvalue()})
    out = tmp_path / "tables"
    manifest = anonymize_tables([export], out, key, tables_policy)

    users = {row["id"]: row["username"] for row in _csv(out / "auth_user.csv")}
    written = _csv(out / "courseware_studentmodule.csv")
    decoded = json.loads(written[0]["state"])
    answer = decoded["student_answers"]["abc_2_1"]
    assert "[EMAIL]" in answer and "[NAME]" in answer and users[written[0]["student_id"]] != ""
    assert set(users.values()) & set(answer.replace(",", " ").split())  # the known username became its pseudonym
    assert decoded["student_answers"]["abc_3_1"] == "choice_2" and decoded["seed"] == 1
    assert "queuestate" not in decoded["correct_map"]["abc_2_1"] and "private_note" not in decoded
    assert written[1]["state"] == ""  # cut short: dropped, never copied
    dropped = manifest["tables"]["courseware_studentmodule"]["columns_dropped"]
    assert dropped == {"invalid_value": {"state": 1}, "unnamed": {"state": 1}}
    everything = _all_bytes(out)
    for raw in ("zelda.q@example.org", "ymir_k", "quintavalle", "s3cr3t-queue", "kept-nowhere"):
        assert raw.encode() not in everything, raw


# ---------------------------------------------------------------- the policy


def test_table_policy_errors_name_the_policy_key(tmp_path):
    with pytest.raises(PolicyError, match=r"t\.yaml: invalid table policy:\n  tables\.auth_user\.columns\.email: unknown operator 'erase'"):
        parse_table_policy(b"name: t\ntables:\n  auth_user:\n    columns:\n      email: erase\n", "t.yaml")
    with pytest.raises(PolicyError, match=r"tables\.auth_user\.columns\.id: 'pseudonymize' names the identity 'pupil'"):
        parse_table_policy(b"name: t\ntables:\n  auth_user:\n    columns:\n      id: {op: pseudonymize, identity: pupil}\n", "t.yaml")
    with pytest.raises(PolicyError, match="an event policy, not a table policy"):
        parse_table_policy(b"name: t\nenvelope: {}\n", "t.yaml")
    assert "tables-research" not in builtin_policies()  # not an event policy


# ---------------------------------------------------------------- the command, determinism, risk


def test_tables_command_writes_a_package_that_verify_accepts_and_is_deterministic(tmp_path, key_file):
    export = _export(tmp_path / "export", {"auth_user.csv": AUTH_USER_CSV, "notes.txt": "nothing\n"})
    runner = CliRunner()
    for out in ("one", "two"):
        result = runner.invoke(app, ["tables", str(export), "--out", str(tmp_path / out), "--key-file", str(key_file)])
        assert result.exit_code == 0, result.output
    assert "notes.txt: no table of the policy is named by the file name; not copied (1 line(s))" in result.output
    for name in ("auth_user.csv", "codebook.json", "README.md"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    again = runner.invoke(app, ["tables", str(export), "--out", str(tmp_path / "one"), "--key-file", str(key_file)])
    assert isinstance(again.exception, UsageError) and "--force" in str(again.exception)
    assert runner.invoke(app, ["tables", str(export), "--out", str(tmp_path / "one"), "--key-file", str(key_file), "--force"]).exit_code == 0
    assert runner.invoke(app, ["verify", str(tmp_path / "one"), "--roster", str(export / "auth_user.csv")]).exit_code == 0


def test_risk_finds_a_planted_unique_demographic_combination(tmp_path, key, research, tables_policy):
    events, users, profiles = [], ["id,username"], ["user_id,gender,year_of_birth,level_of_education,country"]
    for number in range(12):
        events += [_event(f"learner{number:02d}", 1000 + number)]
        users.append(f"{1000 + number},learner{number:02d}")
        planted = number == 7
        profiles.append(f"{1000 + number},{'f' if planted else 'm'},{1950 if planted else 1990},b,{'IS' if planted else 'US'}")
    log = _write_log(tmp_path / "tracking.log", events)
    run([log], tmp_path / "events", research, key, jobs=1, learn=False)
    export = _export(tmp_path / "export", {"auth_user.csv": "\n".join(users) + "\n", "auth_userprofile.csv": "\n".join(profiles) + "\n"})
    anonymize_tables([export], tmp_path / "tables", key, tables_policy)

    report = risk_report(tmp_path / "events", 5, tables=tmp_path / "tables")
    assert {"year_of_birth", "gender", "level_of_education", "country"} <= set(report["quasi_identifiers"])
    combos = {tuple(c["fields"]): c["learners_below_k"] for c in report["courses"][0]["combinations"]}
    assert combos[("year_of_birth",)] == combos[("gender",)] == combos[("country",)] == 1
    assert combos[("level_of_education",)] == 0
    assert b"1950" not in orjson.dumps(report)

    other = tmp_path / "other"
    from anonymizer.core.keys import Key

    anonymize_tables([export], other, Key(b"z" * 32), tables_policy)
    with pytest.raises(Exception, match="another key"):
        risk_report(tmp_path / "events", 5, tables=other)
