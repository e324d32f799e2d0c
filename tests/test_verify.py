"""`anonymizer verify`: integrity against the manifest, the leak scan, the report, the exit codes."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import orjson
import pytest

from anonymizer import UsageError, load_policy, parse_policy, run
from anonymizer.package.manifest import MANIFEST_NAME
from anonymizer.verify import verify_package

FIXTURES = Path(__file__).parent / "fixtures"
CLI = [sys.executable, "-m", "anonymizer.cli"]

AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/30.0.1599.101 Safari/537.36"
USERNAME = "zorander_77"
ACCENTED_USERNAME = "zoë_andersen"
EMAIL = "zora.nder@example.org"
IP = "203.0.113.45"
SESSION = "57f6482141f1868ab2e4833efc17b5b8"
USER_ID = 7


def event(**overrides) -> dict:
    base = {
        "username": USERNAME,
        "event_type": "edx.forum.thread.created",
        "ip": IP,
        "agent": AGENT,
        "host": "lms.example",
        "event": {"body": f"write to {EMAIL}", "title": "hello", "target_username": ACCENTED_USERNAME},
        "event_source": "server",
        "context": {"user_id": USER_ID, "course_id": "course-v1:X+Y+Z", "org_id": "X", "path": "/courses/x"},
        "time": "2024-03-01T10:11:12.123456+00:00",
        "session": SESSION,
    }
    base.update(overrides)
    return base


@pytest.fixture()
def raw_log(tmp_path) -> Path:
    path = tmp_path / "raw" / "tracking.log"
    path.parent.mkdir()
    lines = [
        event(),
        event(username=ACCENTED_USERNAME, ip="198.51.100.0", context={"user_id": 8, "course_id": "course-v1:X+Y+Z"}),
        event(event_type="play_video", event_source="browser", event=json.dumps({"id": "v1", "currentTime": USER_ID})),
    ]
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


@pytest.fixture()
def package(raw_log, tmp_path, research, key) -> Path:
    out = tmp_path / "package"
    run([raw_log], out, research, key)
    return out


def rewrite(package: Path, edit, name: str = "tracking.log.gz", fix_manifest: bool = True, index: int = 0) -> None:
    """Apply EDIT to the parsed event on line INDEX + 1 of NAME and write it back; by default the
    manifest is updated too, so that only the leak scan can object."""
    path = package / name
    lines = gzip.decompress(path.read_bytes()).splitlines()
    chosen = orjson.loads(lines[index])
    edit(chosen)
    lines[index] = orjson.dumps(chosen)
    data = gzip.compress(b"\n".join(lines) + b"\n", mtime=0)
    path.write_bytes(data)
    if fix_manifest:
        manifest = json.loads((package / MANIFEST_NAME).read_text())
        for entry in manifest["files"]:
            if entry["path"] == name:
                entry["sha256"] = hashlib.sha256(data).hexdigest()
                entry["bytes"] = len(data)
        (package / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2))


def set_body(text: str):
    def edit(line: dict) -> None:
        line["event"]["body"] = text

    return edit


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env={**os.environ})


# ---------------------------------------------------------------- clean packages


def test_a_clean_package_passes(package, raw_log):
    report = verify_package(package, against=[raw_log])
    assert report.ok, [f.describe() for f in report.findings] + [p.describe() for p in report.integrity]
    assert report.scanned["identifiers"] >= 6
    assert report.scanned["files"] == 4  # the output file, the manifest and the codebook (README.md, codebook.json)
    written = json.loads((package / "manifest.json").read_text())["counts"]["written"]
    assert written == 3
    documents = sum(len((package / name).read_text().splitlines()) for name in ("manifest.json", "README.md", "codebook.json"))
    assert report.scanned["lines"] == written + documents


def test_the_cli_exits_0_and_says_ok_for_a_clean_package(package, raw_log):
    result = cli("verify", str(package), "--against", str(raw_log))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verify: OK" in result.stdout


def test_the_fixture_families_built_with_their_roster_pass(tmp_path, research, key, people):
    roster = tmp_path / "people.csv"
    with open(roster, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "username", "email", "name"])
        for person in people["people"]:
            writer.writerow([person["id"], person["username"], person["email"], person["name"]])
    families = FIXTURES / "families"
    result = run([families], tmp_path / "package", research, key, roster=_load_roster(roster))
    report = verify_package(tmp_path / "package", against=[families], roster=[roster])
    assert report.ok, [f.describe() for f in report.findings]
    # It looked at everything: every output file and the manifest, every line, and at least each
    # person's id, username, email and name.
    manifest_lines = sum(len((tmp_path / "package" / name).read_text().splitlines()) for name in ("manifest.json", "README.md", "codebook.json"))
    assert report.scanned["files"] == len(result.manifest["files"]) + 3 == len(list(families.glob("*.jsonl"))) + 3  # manifest, codebook
    assert report.scanned["lines"] == result.manifest["counts"]["written"] + manifest_lines
    assert result.manifest["counts"]["written"] > 100
    assert report.scanned["identifiers"] >= 4 * len(people["people"])


def _load_roster(path: Path):
    from anonymizer.core.roster import load_roster

    return load_roster([path])[0]


# ---------------------------------------------------------------- planted leaks

PLANTED = [
    pytest.param("username", set_body(f"thanks {USERNAME}!"), "as written", id="username"),
    pytest.param("email", set_body(f"mail {EMAIL}"), "as written", id="email"),
    pytest.param("ip", set_body(f"my server is {IP}"), "as written", id="ip"),
    pytest.param("session", set_body(f"session={SESSION}"), "as written", id="session"),
    pytest.param("agent", set_body(f"I use {AGENT} daily"), "as written", id="agent"),
    pytest.param("email", set_body(f"https://x.example/?to={quote(EMAIL, safe='')}"), "URL-encoded", id="url-encoded-email"),
    pytest.param("agent", set_body(f"https://x.example/?ua={quote(AGENT, safe='')}"), "URL-encoded", id="url-encoded-agent"),
    pytest.param(
        "username",
        set_body(json.dumps({"by": ACCENTED_USERNAME})),  # ensure_ascii: \u00eb inside a JSON string
        "JSON-escaped",
        id="json-escaped-username",
    ),
]


@pytest.mark.parametrize("kind, edit, form", PLANTED)
def test_a_planted_raw_identifier_is_found(package, raw_log, kind, edit, form):
    rewrite(package, edit)
    report = verify_package(package, against=[raw_log])
    assert not report.ok
    assert report.integrity == []
    assert (kind, form) in {(f.kind, f.form) for f in report.findings}


def test_an_identifier_inside_a_json_string_payload_is_found_with_its_path(package, raw_log):
    def edit(line: dict) -> None:
        line["event"] = json.dumps({"note": {"session": SESSION}})

    rewrite(package, edit)
    report = verify_package(package, against=[raw_log])
    found = [f for f in report.findings if f.kind == "session"]
    assert found and found[0].path == "event.note.session"


def test_a_finding_names_file_line_path_and_origin(package, raw_log):
    rewrite(package, set_body(f"thanks {USERNAME}!"))
    finding = next(f for f in verify_package(package, against=[raw_log]).findings if f.kind == "username")
    assert (finding.file, finding.line, finding.path) == ("tracking.log.gz", 1, "event.body")
    assert finding.origin == "tracking.log:1"
    assert finding.fingerprint.startswith("fp:")


@pytest.mark.parametrize("kind, edit, form", PLANTED)
def test_the_cli_exits_1_on_a_leak_and_never_prints_the_value(package, raw_log, tmp_path, kind, edit, form):
    rewrite(package, edit)
    report_path = tmp_path / "report.json"
    result = cli("verify", str(package), "--against", str(raw_log), "--json", str(report_path))
    assert result.returncode == 1
    assert f": {kind} (" in result.stdout
    shown = result.stdout + result.stderr + report_path.read_text()
    for value in (USERNAME, ACCENTED_USERNAME, EMAIL, IP, SESSION, AGENT, "AppleWebKit", quote(EMAIL, safe="")):
        assert value.lower() not in shown.lower()


def test_the_same_value_has_the_same_fingerprint_within_a_report(package, raw_log):
    rewrite(package, set_body(f"{USERNAME} {SESSION}"))
    rewrite(package, set_body(f"again {USERNAME}"), index=1)
    findings = verify_package(package, against=[raw_log]).findings
    usernames = {f.fingerprint for f in findings if f.kind == "username"}
    sessions = {f.fingerprint for f in findings if f.kind == "session"}
    assert len(usernames) == 1 and len(sessions) == 1
    assert usernames != sessions
    assert len([f for f in findings if f.kind == "username"]) == 2


def test_escapes_of_lone_surrogates_typed_as_text_are_read_not_fatal(package, raw_log):
    """A learner can type ``\\ud800`` (a backslash escape that decodes to half a character): the
    normalized reading takes it as U+FFFD, joins an escaped pair into its character, and goes on
    to find what else the line holds."""
    rewrite(package, set_body(f"hi \\ud800 there \\ud83d\\ude00 {USERNAME.upper()}"))
    report = verify_package(package, against=[raw_log])
    assert {f.kind for f in report.findings} == {"username"}


def test_a_username_inside_a_longer_word_is_not_a_leak(package, raw_log):
    rewrite(package, set_body(f"x{USERNAME}y and {USERNAME}1"))
    assert verify_package(package, against=[raw_log]).ok


def test_a_username_is_found_whatever_its_case(package, raw_log):
    rewrite(package, set_body(f"hi {USERNAME.upper()}."))
    assert {f.kind for f in verify_package(package, against=[raw_log]).findings} == {"username"}


def test_a_short_user_id_is_found_as_the_value_of_an_identifier_field(package, raw_log):
    def edit(line: dict) -> None:
        line["context"]["user_id"] = USER_ID

    rewrite(package, edit)
    findings = verify_package(package, against=[raw_log]).findings
    assert [(f.kind, f.form, f.path) for f in findings] == [("user_id", "field value", "context.user_id")]


def test_a_short_user_id_elsewhere_is_not_a_leak(package, raw_log):
    def edit(line: dict) -> None:
        line["event"]["attempts"] = USER_ID
        line["event"]["body"] = f"question {USER_ID} of 10"

    rewrite(package, edit)
    assert verify_package(package, against=[raw_log]).ok


def test_an_address_that_is_its_own_mask_is_not_a_leak_in_the_ip_field(package, raw_log):
    # The second raw event comes from 198.51.100.0, which masking leaves as it is.
    assert "198.51.100.0" in gzip.decompress((package / "tracking.log.gz").read_bytes()).decode()
    assert verify_package(package, against=[raw_log]).ok


def test_an_address_that_is_its_own_mask_is_a_leak_elsewhere(package, raw_log):
    rewrite(package, set_body("reach me on 198.51.100.0 tonight"))
    findings = verify_package(package, against=[raw_log]).findings
    assert [(f.kind, f.path) for f in findings] == [("ip", "event.body")]


def test_an_unmasked_address_in_the_ip_field_is_a_leak(package):
    def edit(line: dict) -> None:
        line["ip"] = "192.0.2.77"

    rewrite(package, edit)
    findings = verify_package(package).findings
    assert [(f.kind, f.form, f.path) for f in findings] == [("ip", "unmasked in a masked field", "ip")]


def test_a_policy_that_keeps_the_agent_leaks_it(raw_log, tmp_path, key):
    leaky = tmp_path / "leaky.yaml"
    leaky.write_text("name: leaky\nextends: research\nenvelope:\n  agent: keep\n")
    run([raw_log], tmp_path / "package", load_policy(leaky), key)
    report = verify_package(tmp_path / "package", against=[raw_log])
    assert report.integrity == []
    assert {(f.kind, f.path) for f in report.findings} == {("agent", "agent")}


def test_roster_identifiers_are_searched(package, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("id,username,email,name\n41,quintessa_v,quintessa@example.net,Quintessa Vale\n")
    rewrite(package, set_body("Quintessa Vale wrote this"))
    findings = verify_package(package, roster=[roster]).findings
    assert [(f.kind, f.source) for f in findings] == [("name", "roster")]


# ---------------------------------------------------------------- detectors without --against


@pytest.mark.parametrize(
    "kind, text",
    [("email", "write to someone.else@example.com"), ("ip", "from 192.0.2.99 today"), ("phone", "call +44 20 7946 0958")],
    ids=["email", "ip", "phone"],
)
def test_detectors_find_personal_data_without_against(package, kind, text):
    rewrite(package, set_body(text))
    findings = verify_package(package).findings
    assert [(f.kind, f.source, f.path) for f in findings] == [(kind, "detector", "event.body")]


def test_an_email_written_with_percent_40_is_detected(package):
    rewrite(package, set_body("https://x.example/?to=someone.else%40example.com"))
    assert [f.kind for f in verify_package(package).findings] == ["email"]


def test_without_against_a_research_package_passes_the_detectors(package):
    assert verify_package(package).ok


# ---------------------------------------------------------------- integrity


def test_a_changed_byte_is_an_integrity_failure(package, raw_log):
    path = package / "tracking.log.gz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    problems = verify_package(package).integrity
    assert any(p.file == "tracking.log.gz" and "sha256" in p.problem for p in problems)


def test_an_edit_without_updating_the_manifest_is_an_integrity_failure(package):
    rewrite(package, set_body("harmless"), fix_manifest=False)
    report = verify_package(package)
    assert report.findings == []
    assert {p.file for p in report.integrity} == {"tracking.log.gz"}


def test_a_missing_file_is_an_integrity_failure(package):
    (package / "tracking.log.gz").unlink()
    problems = verify_package(package).integrity
    assert [(p.file, p.problem) for p in problems] == [("tracking.log.gz", "is listed in the manifest but missing")]


def test_an_extra_file_is_an_integrity_failure(package):
    (package / "notes.txt").write_text("not in the manifest")
    problems = verify_package(package).integrity
    assert [(p.file, p.problem) for p in problems] == [("notes.txt", "is not listed in the manifest")]


def test_an_extra_file_is_scanned_too(package):
    (package / "notes.txt").write_text("ask someone.else@example.com")
    assert [(f.file, f.kind) for f in verify_package(package).findings] == [("notes.txt", "email")]


def test_a_truncated_gzip_file_is_an_integrity_failure(package):
    path = package / "tracking.log.gz"
    path.write_bytes(path.read_bytes()[:-12])
    problems = {p.problem for p in verify_package(package).integrity if p.file == "tracking.log.gz"}
    assert any("truncated" in problem for problem in problems)


def _replace_file(package: Path, name: str, data: bytes) -> None:
    (package / name).write_bytes(data)
    manifest = json.loads((package / MANIFEST_NAME).read_text())
    for entry in manifest["files"]:
        if entry["path"] == name:
            entry["sha256"], entry["bytes"] = hashlib.sha256(data).hexdigest(), len(data)
    (package / MANIFEST_NAME).write_text(json.dumps(manifest))


def test_every_member_of_a_multi_member_gzip_file_is_scanned(package, raw_log):
    path = package / "tracking.log.gz"
    second = gzip.compress(orjson.dumps({"event_type": "x", "event": {"body": f"hi {USERNAME}"}}) + b"\n", mtime=0)
    _replace_file(package, "tracking.log.gz", path.read_bytes() + second)
    findings = verify_package(package, against=[raw_log]).findings
    assert [(f.kind, f.line) for f in findings] == [("username", 4)]


def test_data_after_the_last_gzip_member_is_an_integrity_failure(package):
    path = package / "tracking.log.gz"
    _replace_file(package, "tracking.log.gz", path.read_bytes() + b"trailing")
    problems = [p.problem for p in verify_package(package).integrity]
    assert problems == ["has data after its last gzip member"]


def test_a_manifest_that_is_not_json_is_an_integrity_failure(package):
    (package / MANIFEST_NAME).write_text("{not json")
    report = verify_package(package)
    assert any(p.file == MANIFEST_NAME for p in report.integrity)
    assert {p.file for p in report.integrity} >= {"tracking.log.gz"}  # then nothing is listed


def test_a_manifest_path_outside_the_package_is_refused(package):
    manifest = json.loads((package / MANIFEST_NAME).read_text())
    manifest["files"].append({"path": "../elsewhere.gz", "sha256": "0" * 64, "bytes": 1})
    (package / MANIFEST_NAME).write_text(json.dumps(manifest))
    problems = [p.problem for p in verify_package(package).integrity]
    assert "lists a file outside the package" in problems


# ---------------------------------------------------------------- usage and report


def test_a_directory_without_a_manifest_is_a_usage_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="manifest.json"):
        verify_package(tmp_path / "empty")


def test_the_cli_exits_2_on_usage_errors(tmp_path, package):
    nowhere = cli("verify", str(tmp_path / "nowhere"))
    assert nowhere.returncode == 2 and "no such package directory" in nowhere.stderr
    stray = cli("verify", str(package), "stray-argument")
    assert stray.returncode == 2 and "stray-argument: unexpected argument; give raw inputs after --against" in stray.stderr
    unsigned = cli("verify", str(package), "--require-signature")
    assert unsigned.returncode == 2 and "--public-key" in unsigned.stderr


def test_the_json_report_has_the_documented_shape(package, raw_log, tmp_path):
    rewrite(package, set_body(f"thanks {USERNAME}!"))
    path = tmp_path / "report.json"
    cli("verify", str(package), "--against", str(raw_log), "--json", str(path))
    report = json.loads(path.read_text())
    assert report["ok"] is False
    assert set(report["scanned"]) >= {"files", "bytes", "lines", "identifiers"}
    assert report["findings"][0].keys() == {"file", "line", "path", "kind", "source", "form", "origin", "fingerprint", "leak_class"}
    assert sum(report["findings_by_class"].values()) == report["findings_total"]
    assert report["findings_total"] == 1


def test_json_to_standard_output_replaces_the_text(package, raw_log):
    result = cli("verify", str(package), "--against", str(raw_log), "--json", "-")
    assert result.returncode == 0
    assert json.loads(result.stdout)["ok"] is True


def test_against_takes_several_inputs_after_one_flag(package, raw_log, tmp_path):
    other = tmp_path / "raw" / "other.log"
    other.write_bytes(orjson.dumps(event(username="someone_else_9")) + b"\n")
    rewrite(package, set_body("hello someone_else_9"))
    result = cli("verify", str(package), "--against", str(raw_log), str(other))
    assert result.returncode == 1
    assert "username" in result.stdout


def test_findings_beyond_the_limit_are_counted_not_listed(package, raw_log):
    rewrite(package, set_body(f"{USERNAME} {SESSION} {EMAIL}"))
    report = verify_package(package, against=[raw_log], max_listed=1)
    assert len(report.findings) == 1
    assert report.findings_total == 3
    assert report.as_dict()["findings_not_listed"] == 2


def test_identifier_fields_come_from_the_policy(tmp_path):
    from anonymizer.verify import identifier_fields

    policy = parse_policy(
        b"name: p\nenvelope:\n  event_type: keep\nevents:\n  - match: x\n    fields:\n      learner_handle: {op: pseudonymize, identity: username}\n",
        "p.yaml",
    )
    assert identifier_fields(policy).payload["learner_handle"] == "username"


# ---------------------------------------------------------------- the real fixtures in ../shared/corpus

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
needs_corpus = pytest.mark.corpus


def corpus_logs() -> list[Path]:
    return sorted(p for p in CORPUS.rglob("*.log") if "expected-output" not in p.parts)


@pytest.fixture(scope="module")
def corpus_report(tmp_path_factory):
    from anonymizer import Key

    out = tmp_path_factory.mktemp("corpus") / "package"
    run(corpus_logs(), out, load_policy("research"), Key(b"\x05" * 32))
    return verify_package(out, against=corpus_logs())


@needs_corpus
def test_the_corpus_package_holds_no_identifier_of_its_inputs(corpus_report):
    assert corpus_report.integrity == []
    assert [f.describe() for f in corpus_report.findings if f.source != "detector"] == []
    assert corpus_report.scanned["identifiers"] > 100


@needs_corpus
def test_the_corpus_package_passes_verify(corpus_report):
    assert corpus_report.ok, sorted({(f.kind, f.path) for f in corpus_report.findings})
    assert corpus_report.scanned["files"] == len(corpus_logs()) + 3  # the manifest and the codebook
    assert corpus_report.scanned["lines"] > 2000


def test_the_plan_lists_the_identity_fields_that_operators_declare():
    from anonymizer.core.lowering import lower

    policy = parse_policy(
        b"name: p\nenvelope:\n  ip: {op: mask_ip, ipv4_prefix: 16}\n  agent: generalize_agent\n  event_type: keep\n"
        b"events:\n  - match: x\n    fields:\n      who: {op: pseudonymize, identity: username}\n      note: scrub_text\n",
        "p.yaml",
    )
    found = {(f.scope, f.path, f.kind) for f in lower(policy).identities}
    assert found == {("envelope", (("ip",),), "ip"), ("envelope", (("agent",),), "agent"), ("payload", (("who",),), "username")}
    fields = identifier_fields_of(policy)
    assert fields.ipv4_prefix == 16 and "ip" in fields.masked_ip_keys


def identifier_fields_of(policy):
    from anonymizer.verify import identifier_fields

    return identifier_fields(policy)


def test_verify_names_no_operator():
    from anonymizer.core.operators import REGISTRY

    sources = (Path(__file__).resolve().parents[1] / "anonymizer" / "verify").glob("*.py")
    text = "\n".join(path.read_text() for path in sources)
    for name in REGISTRY:
        assert f'"{name}"' not in text and f"'{name}'" not in text, name


def test_names_usernames_and_emails_given_by_account_settings_and_forms_are_harvested(tmp_path):
    """What the run learns outside identifier fields, verify searches for: a setting's old and new
    name, username or email, a registration form's fields; not another form's "name"."""
    from anonymizer.verify.harvest import harvest_inputs, identifier_fields

    events = [
        {"event_type": "edx.user.settings.changed", "username": "zelda_q", "context": {"user_id": 7},
         "event": {"setting": "name", "old": "Zelda  Q", "new": "Zelda Quintero", "user_id": 7}},
        {"event_type": "edx.user.settings.changed", "username": "zelda_q", "event": {"setting": "username", "old": "zelda_q", "new": "zq_renamed"}},
        {"event_type": "/user_api/v1/account/registration/", "username": "",
         "event": json.dumps({"GET": {}, "POST": {"name": ["Ymir Balder"], "username": ["ymir_balder77"], "email": ["ymir.b@example.org"]}})},
        {"event_type": "/api/team/v0/teams/", "username": "prof_x", "event": json.dumps({"GET": {}, "POST": {"name": ["Astro Owls"]}})},
    ]
    log = tmp_path / "tracking.log"
    log.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    found = {(i.kind, i.value) for i in harvest_inputs([log], identifier_fields())}
    assert {("name", "Zelda Q"), ("name", "Zelda Quintero"), ("username", "zq_renamed"), ("name", "Ymir Balder"),
            ("username", "ymir_balder77"), ("email", "ymir.b@example.org")} <= found
    assert not any(value == "Astro Owls" for _, value in found)
