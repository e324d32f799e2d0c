"""A catalogue of hostile line shapes, one fixture each in ``tests/bad_inputs/``, with the outcome
each must have: rejected with a named reason, or written with only what the policy allows.
Lines too big to commit (tens of megabytes) are built here."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import orjson
import pytest

from anonymizer import Anonymizer, run
from anonymizer.package.manifest import MANIFEST_NAME
from anonymizer.core.stats import MAX_FIELD_PATHS, OTHER_PATHS

CATALOGUE = Path(__file__).parent / "bad_inputs"
PLAIN_FORUM = {"body": "hi", "title": "t"}

# fixture -> ("rejected", reason) or ("written", the event payload that must come out)
EXPECTED = {
    "depth_bomb_object.jsonl": ("rejected", "too_deep"),
    "depth_bomb_array.jsonl": ("rejected", "too_deep"),
    "depth_bomb_in_json_string.jsonl": ("rejected", "too_deep"),
    "depth_at_the_limit.jsonl": ("written", PLAIN_FORUM),  # 64 deep is allowed; the unnamed field goes
    "integer_past_64_bits.jsonl": ("written", ""),  # the user id is pseudonymized like any other
    "nan.jsonl": ("rejected", "invalid_json"),
    "infinity.jsonl": ("rejected", "invalid_json"),
    "float_overflow.jsonl": ("rejected", "invalid_json"),
    "duplicate_key_top.jsonl": ("rejected", "duplicate_key"),
    "duplicate_key_nested.jsonl": ("rejected", "duplicate_key"),
    "duplicate_key_in_json_string.jsonl": ("rejected", "duplicate_key"),
    "invalid_utf8.jsonl": ("rejected", "invalid_utf8"),
    "overlong_utf8.jsonl": ("rejected", "invalid_utf8"),
    "lone_surrogate_escape.jsonl": ("rejected", "invalid_json"),  # no UTF-8 text can hold it
    "surrogate_pair_escape.jsonl": ("written", {"body": "smile \U0001f600 [EMAIL]", "title": "t"}),
    "nul_raw.jsonl": ("rejected", "invalid_json"),  # a raw control character inside a string
    "nul_escaped.jsonl": ("written", {"body": "a\x00b [EMAIL]", "title": "t"}),
    "bom_utf8.jsonl": ("written", PLAIN_FORUM),  # the mark is skipped
    "bom_utf16.jsonl": ("rejected", "utf16_bom"),
    "bom_utf32.jsonl": ("rejected", "utf32_bom"),
    "line_separator_u2028.jsonl": ("written", {"body": "one\u2028two\u2029three [EMAIL]", "title": "t"}),
    "keys_with_dots_and_stars.jsonl": ("written", PLAIN_FORUM),  # no rule can name them: dropped
    "empty_keys.jsonl": ("written", {"body": "hi"}),
    "not_an_object.jsonl": ("rejected", "not_an_object"),
    "empty_object.jsonl": ("rejected", "missing_event_type"),
    "logger_prefix.jsonl": ("written", PLAIN_FORUM),
}


def test_every_fixture_has_an_expected_outcome():
    assert sorted(p.name for p in CATALOGUE.glob("*.jsonl")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_hostile_shape_has_its_outcome(name, research, key):
    anonymizer = Anonymizer(research, key)
    lines = CATALOGUE.joinpath(name).read_bytes().split(b"\n")
    assert lines.pop() == b""
    assert len(lines) == 1, "one line per fixture"
    outcome, result = anonymizer.anonymize_line(lines[0], name, 1)
    expected_outcome, expected = EXPECTED[name]
    assert outcome == expected_outcome, result
    if outcome == "rejected":
        assert result == expected
        return
    event = orjson.loads(result)  # the output is valid JSON
    assert event["event"] == expected
    assert b"QX" not in result
    if "user_id" in event.get("context", {}):
        assert event["context"]["user_id"] != 123456789012345678901234567890


def test_a_run_over_the_catalogue_accounts_for_every_line(tmp_path, research, key):
    out = tmp_path / "package"
    run([CATALOGUE], out, research, key, jobs=1)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    counts = manifest["counts"]
    rejected = [name for name, (outcome, _) in EXPECTED.items() if outcome == "rejected"]
    assert counts["read"] == len(EXPECTED)
    assert counts["written"] == len(EXPECTED) - len(rejected)
    assert sum(counts["rejected"].values()) == len(rejected)
    for path in out.rglob("*.gz"):
        assert b"QX" not in gzip.decompress(path.read_bytes())


def test_a_very_long_valid_line_is_written_without_its_unnamed_field(tmp_path, research, key):
    text = "word " * (4 << 20)  # 20 MB in one line
    line = orjson.dumps({"event_type": "edx.forum.thread.created", "event": {"body": "hi", "title": "t", "unnamed": text}})
    log = tmp_path / "long.log"
    log.write_bytes(line + b"\n" + b"x" * (20 << 20) + b"\n")  # and 20 MB of garbage in the next line
    out = tmp_path / "package"
    run([log], out, research, key, jobs=1)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["counts"]["written"] == 1
    assert manifest["counts"]["rejected"] == {"invalid_json": 1}
    assert manifest["rejections"] == [{"file": "long.log", "line": 2, "reason": "invalid_json"}]
    written = orjson.loads(gzip.decompress((out / "long.log.gz").read_bytes()))
    assert written["event"] == PLAIN_FORUM


def test_a_long_free_text_is_scrubbed_to_its_end(research, key):
    text = "word " * (400 << 10) + "QXbob@example.com"  # 2 MB of text
    line = orjson.dumps({"event_type": "edx.forum.thread.created", "event": {"body": text, "title": "t"}})
    outcome, result = Anonymizer(research, key).anonymize_line(line)
    assert outcome == "written"
    assert orjson.loads(result)["event"]["body"].endswith("[EMAIL]")


def test_very_many_keys_are_dropped_and_counted_in_bounded_space(tmp_path, research, key):
    payload = {f"k{i}": "QXvalue" for i in range(100_000)}
    line = orjson.dumps({"event_type": "edx.forum.thread.created", "event": {"body": "hi", "title": "t", **payload}})
    log = tmp_path / "many.log"
    log.write_bytes(line + b"\n")
    out = tmp_path / "package"
    run([log], out, research, key, jobs=1)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["counts"]["written"] == 1
    (paths,) = manifest["counts"]["dropped_fields"].values()  # one event type, under its policy label
    assert len(paths) <= MAX_FIELD_PATHS + 1
    assert sum(sum(reasons.values()) for reasons in paths.values()) == len(payload)
    assert OTHER_PATHS in paths
    assert orjson.loads(gzip.decompress((out / "many.log.gz").read_bytes()))["event"] == PLAIN_FORUM
