"""`verify` finds what `run` missed: each class of leak planted into a package after the run (the
manifest re-hashed, so that only the leak scan can object) is found, with its class."""

from __future__ import annotations

import gzip
import hashlib
import json

import orjson
import pytest

from anonymizer import run
from anonymizer.package.manifest import MANIFEST_NAME
from anonymizer.verify import normalize_text, verify_package

USERNAME = "Mar.Tina-K"
EMAIL = "martina.kovac@example.net"
USER_ID = 583021
SHORT_ID = 47
IP = "203.0.113.77"
PHONE = "+44 20 7946 0321"
COURSE = "course-v1:X+Y+Z"


def _event(username: str, user_id: int, body: str) -> dict:
    return {
        "username": username,
        "event_type": "edx.forum.thread.created",
        "ip": IP,
        "agent": "Mozilla/5.0",
        "host": "lms.example",
        "event": {"body": body, "title": "hello"},
        "event_source": "server",
        "context": {"user_id": user_id, "course_id": COURSE, "org_id": "X", "path": "/courses/x"},
        "time": "2024-03-01T10:11:12.123456+00:00",
    }


@pytest.fixture()
def raw_log(tmp_path):
    path = tmp_path / "raw" / "tracking.log"
    path.parent.mkdir()
    lines = [
        _event(USERNAME, USER_ID, f"mail me at {EMAIL} or call {PHONE}"),
        _event("zoe_short", SHORT_ID, "hello all"),
        _event(USERNAME, USER_ID, "a second post"),
    ]
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


@pytest.fixture()
def package(raw_log, tmp_path, research, key):
    out = tmp_path / "package"
    run([raw_log], out, research, key)
    return out


def _rehash(package, name: str, data: bytes) -> None:
    (package / name).write_bytes(data)
    manifest = json.loads((package / MANIFEST_NAME).read_text())
    for entry in manifest["files"]:
        if entry["path"] == name:
            entry["sha256"] = hashlib.sha256(data).hexdigest()
            entry["bytes"] = len(data)
    (package / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2))


def plant(package, edit=None, raw: bytes | None = None) -> None:
    """Apply EDIT to the first event of the package (or replace the line with RAW) and re-hash."""
    name = "tracking.log.gz"
    lines = gzip.decompress((package / name).read_bytes()).splitlines()
    if raw is not None:
        lines[0] = raw
    else:
        event = orjson.loads(lines[0])
        edit(event)
        lines[0] = orjson.dumps(event)
    _rehash(package, name, gzip.compress(b"\n".join(lines) + b"\n", mtime=0))


def _set(*path, value):
    def edit(event: dict) -> None:
        node = event
        for step in path[:-1]:
            node = node.setdefault(step, {})
        node[path[-1]] = value

    return edit


def _body(text: str):
    return _set("event", "body", value=text)


DUPLICATE = (
    b'{"username":"u_0","event_type":"edx.user.settings.changed","event":{"setting":"email","old":null,'
    b'"new":"' + EMAIL.encode() + b'","setting":"time_zone"},"time":"2024-03-01T10:00:00+00:00"}'
)

CASES = [
    # (id, leak class, kind, edit or raw line)
    ("url_path-username-comma", "url_path", "username", _set("page", value=f"https://lms.example/api/enrollment/v1/enrollment/{USERNAME},{COURSE}")),
    ("url_path-short-id", "url_path", "user_id", _set("referer", value=f"https://lms.example/admin/auth/user/{SHORT_ID}/change/")),
    ("url_path-id", "url_path", "user_id", _set("event", "url", value=f"https://lms.example/certificates/user/{USER_ID}/course/{COURSE}")),
    ("url_path-event-type", "url_path", "username", _set("event_type", value=f"/U/{USERNAME}")),
    ("dict_key", "dict_key", "email", _set("event", "answers", value={EMAIL: "choice_1"})),
    ("dict_key-get-parameter", "dict_key", "username", _set("event", "GET", value={USERNAME.lower(): ["1"]})),
    ("identity_field-other-case", "identity_field", "username", _set("event", "student", value=USERNAME.upper())),
    ("identity_field-email", "identity_field", "email", _set("event", "student", value=EMAIL)),
    ("identity_field-short-id", "identity_field", "user_id", _set("event", "user_id", value=SHORT_ID)),
    ("kept_subtree", "kept_subtree", "username", _set("event", "correct_map", "i4x_2_1", value={"answervariable": f"by {USERNAME}"})),
    ("kept_subtree-tags", "kept_subtree", "email", _set("context", "course_user_tags", value={"group": f"ask {EMAIL}"})),
    ("duplicate_key", "duplicate_key", "email", DUPLICATE),
    ("disguised-entities", "disguised", "email", _body("mail martina&#46;kovac&#64;example&#x2e;net")),
    ("disguised-named-entities", "disguised", "username", _body("hi Mar&period;Tina&hyphen;K")),
    ("disguised-fullwidth", "disguised", "email", _body("ｍａｒｔｉｎａ.ｋｏｖａｃ＠ｅｘａｍｐｌｅ.ｎｅｔ")),
    ("disguised-double-percent", "disguised", "email", _body("martina.kovac%2540example.net")),
    ("disguised-json-escape", "disguised", "email", _body('{"answer": "martina.kovac\\u0040example.net"}')),
    ("disguised-json-escape-twice", "disguised", "email", _body(json.dumps({"a": '{"answer": "martina.kovac\\u0040example.net"}'}))),
    ("disguised-obfuscated", "disguised", "email", _body("martina.kovac (at) example (dot) net")),
    ("disguised-truncated", "disguised", "email", _body("write to martina.kovac@exa")),
    ("disguised-phone-tel", "disguised", "phone", _body("tel:+442079460321")),
    ("disguised-phone-en-dash", "disguised", "phone", _body("call 20\u20137946\u20130321")),
    ("disguised-padded-ip", "disguised", "ip", _body("from 203.000.113.077")),
    ("disguised-ip-host", "disguised", "ip", _body("ec2-203-0-113-77.compute-1.amazonaws.com")),
    ("disguised-zero-width", "disguised", "username", _body("hi Mar.Ti\u200bna-K")),
    ("disguised-soft-hyphen", "disguised", "email", _body("mail martina.ko\u00advac@example.net")),
    # An id split by a word joiner is reported as an id in text.
    ("disguised-zero-width-id", "free_text", "user_id", _body(f"id {str(USER_ID)[:3]}\u2060{str(USER_ID)[3:]}")),
    ("disguised-homoglyph", "disguised", "email", _body("mail m\u0430rtina.kov\u0430c@ex\u0430mple.net")),
    ("disguised-markdown-escape", "disguised", "username", _body("hi Mar\\.Tina\\-K")),
    ("disguised-html-tags", "disguised", "username", _body("hi Mar.<b>Tina</b>-K")),
    ("disguised-emphasis", "disguised", "username", _body("hi Mar.**Tina**-K")),
    ("free_text-id", "free_text", "user_id", _body(f"my id is {USER_ID} ok")),
    ("free_text-phone", "free_text", "phone", _body(f"ring {PHONE}")),
    ("free_text-username", "free_text", "username", _body(f"thanks {USERNAME}!")),
]


def test_the_package_is_clean_before_planting(package, raw_log):
    report = verify_package(package, against=[raw_log])
    assert report.ok, [f.describe() for f in report.findings]


@pytest.mark.parametrize("cls, kind, edit", [pytest.param(c, k, e, id=i) for i, c, k, e in CASES])
def test_verify_finds_a_planted_leak_with_its_class(package, raw_log, cls, kind, edit):
    if isinstance(edit, bytes):
        plant(package, raw=edit)
    else:
        plant(package, edit)
    report = verify_package(package, against=[raw_log])
    assert report.integrity == []
    found = {(f.leak_class, f.kind) for f in report.findings}
    assert (cls, kind) in found, sorted(found)
    assert sum(report.findings_by_class.values()) == report.findings_total


def test_an_event_type_counted_in_the_manifest_is_a_url_path_leak(package, raw_log):
    manifest = json.loads((package / MANIFEST_NAME).read_text())
    manifest.setdefault("counts", {}).setdefault("event_types", {})[f"/u/{USERNAME}"] = 1
    (package / MANIFEST_NAME).write_text(json.dumps(manifest))
    report = verify_package(package, against=[raw_log])
    assert ("url_path", "username") in {(f.leak_class, f.kind) for f in report.findings}
    assert any(f.file == MANIFEST_NAME for f in report.findings)


def test_a_finding_in_normalized_text_never_prints_the_value(package, raw_log):
    plant(package, _body("martina&#46;kovac&#64;example&#46;net"))
    report = verify_package(package, against=[raw_log])
    text = report.describe() + json.dumps(report.as_dict())
    assert EMAIL not in text and "martina" not in text.lower()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a&#64;b", "a@b"),
        ("a%2540b", "a@b"),
        ("a\\\\u0040b", "a@b"),
        ("Ｚｏë", "zoë"),
        ("Zo&euml;", "zoë"),
        ("a+b", "a b"),
        ("Tina&hyphen;K", "tina-k"),
        ("zel\u200bda-q zel\u00adda-q", "zelda-q zelda-q"),
        ("z\u0435lda \u0418\u0432\u0430\u043d\u043e\u0432", "zelda \u0438\u0432\u0430\u043d\u043e\u0432"),
        ("\\\\_ymir\\\\_balder77\\\\_", "_ymir_balder77_"),  # as a JSON line holds a Markdown escape
        ("zel<b>da</b>-q, Mark<br>Young", "zelda-q, mark young"),
        ("**Mark** Young, zel*da*-q, _ymir_", "mark young, zelda-q, ymir"),  # "_x_" at word edges: emphasis
    ],
)
def test_normalize_text_undoes_each_disguise(text, expected):
    assert normalize_text(text) == expected


@pytest.mark.parametrize(
    "body",
    ["at the end of the day", "version 583021.5", "on 2024-03-01 at 10:11", "price $583021", "v1.583021", "0.583021", "583,021"],
)
def test_look_alikes_are_not_leaks(package, raw_log, body):
    plant(package, _body(body))
    report = verify_package(package, against=[raw_log])
    assert report.ok, [f.describe() for f in report.findings]


def test_a_json_number_in_an_indented_document_is_not_a_user_id_in_text():
    from anonymizer.verify.scan import _id_in_text

    for text in ('{\n  "events": 299687,\n  "line": 29452\n}', '{"events": 299687}', '{"a": [1,299687]}'):
        start = text.index("2")
        end = start + 6 if text[start:start + 6].isdigit() else start + 5
        assert not _id_in_text(text, start, end)
        assert not _id_in_text(text.encode(), start, end)
    for sentence in ("my id is 299687, thanks", "my id: 299687, thanks"):
        start = sentence.index("299687")
        assert _id_in_text(sentence, start, start + 6)
    assert _id_in_text("/progress/299687/", 10, 16)
