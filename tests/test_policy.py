"""The policy model: built-in policies, ``extends``, ``replace_operators``, and errors that point
into the file without repeating anything that could be data."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from anonymizer.core.compiler import compile_policy
from anonymizer.core.errors import PolicyError
from anonymizer.core.keys import Key
from anonymizer.core.policy import builtin_policies, load_policy, parse_policy
from anonymizer.core.pseudonyms import Pseudonymizer

SOURCE = "custom-policy.yaml"
# A value that looks like data. The policies below hold it (in a redact rule, at the faulty
# spot when possible); no error message may repeat it.
DATA = "ada.lovelace@example.org"


def policy_text(body: str = "", envelope: str = "") -> bytes:
    """A policy whose envelope holds DATA in a redact rule, then the ENVELOPE rules (one per line),
    then BODY (top-level YAML)."""
    rules = "".join(f"  {line}\n" for line in envelope.splitlines())
    header = f"name: custom\nenvelope:\n  event_type: keep\n  secret: {{op: redact, value: '{DATA}'}}\n{rules}"
    return (header + textwrap.dedent(body)).encode()


def policy_error(text: bytes, source: str = SOURCE) -> str:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, source)
    message = str(caught.value)
    assert message.startswith(source), message
    assert DATA not in message
    return message


def all_ops(value) -> list[str]:
    """Every operator named anywhere in a dumped policy."""
    if isinstance(value, dict):
        found = [value["op"]] if isinstance(value.get("op"), str) else []
        return found + [op for item in value.values() for op in all_ops(item)]
    if isinstance(value, list):
        return [op for item in value for op in all_ops(item)]
    return []


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


# ------------------------------------------------------------------ built-in policies


def test_builtin_policies_are_research_and_strict():
    assert {"research", "strict"} <= set(builtin_policies())


def test_research_policy_loads():
    policy = load_policy("research")
    assert policy.name == "research"
    assert policy.source == "research"
    assert policy.envelope["ip"].op == "mask_ip"
    assert policy.identities["username"].prefix == "u_"


def test_default_policy_is_research():
    assert load_policy().name == "research"


@pytest.mark.parametrize("name", ["research", "strict"])
def test_builtin_policy_compiles(name):
    compiled = compile_policy(load_policy(name), Pseudonymizer(Key(b"k" * 32)))
    assert compiled.resolve("play_video", "browser")[1] == "anonymize"


def test_strict_policy_extends_research():
    strict, research = load_policy("strict"), load_policy("research")
    assert strict.name == "strict"
    assert strict.extends == "research"
    assert len(strict.events) == len(research.events)
    assert set(research.envelope) <= set(strict.envelope)


def test_strict_policy_overrides_envelope_rules():
    strict = load_policy("strict")
    assert strict.envelope["ip"].op == "drop"
    assert strict.envelope["time"].op == "truncate_time"
    assert strict.envelope["time"].params.unit == "hour"


def test_strict_policy_has_no_scrub_text_left_anywhere():
    ops = all_ops(load_policy("strict").model_dump())
    assert "scrub_text" not in ops
    assert "drop" in ops


def test_research_policy_does_use_scrub_text():
    assert "scrub_text" in all_ops(load_policy("research").model_dump())


def test_strict_policy_replaces_scrub_text_inside_decode_rules():
    strict = load_policy("strict")
    rule = next(rule for rule in strict.events if "openassessmentblock.save_submission" in rule.match)
    decoded = rule.fields["saved_response"]
    assert decoded.decode == "json"
    assert {inner.op for inner in decoded.fields.values()} == {"drop"}


def test_load_policy_from_a_file(tmp_path):
    path = write(tmp_path, "mine.yaml", "name: mine\nenvelope:\n  event_type: keep\n")
    policy = load_policy(path)
    assert policy.name == "mine"
    assert policy.source == str(path)


def test_load_policy_unknown_name_is_a_policy_error():
    with pytest.raises(PolicyError, match="no-such-policy: no such policy file"):
        load_policy("no-such-policy")


def test_unnamed_fields_have_no_rule_and_identities_default():
    policy = parse_policy(b"name: t\nenvelope:\n  username: {op: pseudonymize, identity: username}\n", SOURCE)
    assert set(policy.identities) == {"username", "user_id"}
    assert policy.unknown_events == "drop"


# ------------------------------------------------------------------ sha256


def test_policy_sha256_is_stable():
    assert load_policy("research").sha256 == load_policy("research").sha256
    assert load_policy("strict").sha256 == load_policy("strict").sha256


def test_policy_sha256_is_the_sha256_of_the_file_bytes():
    import hashlib

    text = b"name: t\nenvelope:\n  event_type: keep\n"
    assert parse_policy(text, SOURCE).sha256 == hashlib.sha256(text).hexdigest()


def test_policy_sha256_does_not_depend_on_the_source_name():
    text = b"name: t\nenvelope:\n  event_type: keep\n"
    assert parse_policy(text, "a.yaml").sha256 == parse_policy(text, "b.yaml").sha256


def test_policy_sha256_changes_with_any_byte():
    a = parse_policy(b"name: t\nenvelope:\n  event_type: keep\n", SOURCE)
    b = parse_policy(b"name: t\nenvelope:\n  event_type: keep \n", SOURCE)
    assert a.sha256 != b.sha256


def test_policy_sha256_covers_the_policy_it_extends(tmp_path):
    write(tmp_path, "base.yaml", "name: base\nenvelope:\n  event_type: keep\n")
    child = write(tmp_path, "child.yaml", "name: child\nextends: base.yaml\nenvelope:\n  name: keep\n")
    before = load_policy(child).sha256
    write(tmp_path, "base.yaml", "name: base\nenvelope:\n  event_type: keep\n  time: keep\n")
    assert load_policy(child).sha256 != before


# ------------------------------------------------------------------ extends and replace_operators


def test_extends_a_file_relative_to_the_extending_policy(tmp_path):
    write(tmp_path, "base.yaml", "name: base\nenvelope:\n  event_type: keep\n  ip: mask_ip\n")
    child = write(tmp_path, "child.yaml", "name: child\nextends: base.yaml\nenvelope:\n  ip: drop\n")
    policy = load_policy(child)
    assert policy.name == "child"
    assert policy.envelope["event_type"].op == "keep"
    assert policy.envelope["ip"].op == "drop"


def test_extending_policy_event_rules_come_first(tmp_path):
    write(tmp_path, "base.yaml", "name: base\nenvelope: {}\nevents:\n  - match: a\n    payload: keep\n")
    child = write(tmp_path, "child.yaml", "name: child\nextends: base.yaml\nevents:\n  - match: a\n    payload: drop\n")
    assert [rule.payload.op for rule in load_policy(child).events] == ["drop", "keep"]


def test_the_same_file_name_at_two_levels_of_a_chain_is_not_a_cycle(tmp_path):
    (tmp_path / "lib").mkdir()
    write(tmp_path / "lib", "policy.yaml", "name: bottom\nenvelope:\n  event_type: keep\n")
    write(tmp_path, "policy.yaml", "name: middle\nextends: lib/policy.yaml\nenvelope:\n  name: keep\n")
    top = write(tmp_path, "top.yaml", "name: top\nextends: policy.yaml\nenvelope:\n  time: keep\n")
    assert set(load_policy(top).envelope) == {"event_type", "name", "time"}


def test_replace_operators_swaps_an_operator_everywhere():
    policy = parse_policy(
        policy_text(
            """
            replace_operators: {scrub_text: redact}
            events:
              - match: x
                fields:
                  body: scrub_text
                  parts[*].text: {op: scrub_text, detectors: [email]}
            """
        ),
        SOURCE,
    )
    assert {rule.op for rule in policy.events[0].fields.values()} == {"redact"}


# ------------------------------------------------------------------ errors


def test_unknown_operator_names_the_location():
    message = policy_error(policy_text("events:\n  - match: x\n    fields:\n      body: scrub_txt\n"))
    assert "events[0].fields.body" in message
    assert "unknown operator 'scrub_txt'" in message


def test_unknown_operator_that_looks_like_data_is_not_repeated():
    message = policy_error(policy_text(f"events:\n  - match: x\n    fields:\n      body: '{DATA}'\n"))
    assert "events[0].fields.body" in message
    assert "unknown operator" in message


def test_missing_op_names_the_location():
    message = policy_error(policy_text(f"events:\n  - match: x\n    fields:\n      body: {{value: '{DATA}'}}\n"))
    assert "events[0].fields.body" in message
    assert "missing 'op'" in message


def test_empty_rule_names_the_location():
    message = policy_error(policy_text("events:\n  - match: x\n    fields:\n      body:\n"))
    assert "events[0].fields.body" in message


def test_bad_operator_parameter_names_the_location_and_parameter():
    message = policy_error(policy_text(envelope="ip: {op: mask_ip, ipv4_prefix: 40}"))
    assert "envelope.ip" in message
    assert "ipv4_prefix" in message
    assert "40" not in message


def test_bad_operator_parameter_value_that_looks_like_data_is_not_repeated():
    message = policy_error(policy_text(envelope=f"ip: {{op: mask_ip, ipv4_prefix: '{DATA}'}}"))
    assert "envelope.ip" in message
    assert "ipv4_prefix" in message


def test_unknown_operator_parameter_names_the_location():
    message = policy_error(policy_text(envelope="time: {op: truncate_time, units: hour}"))
    assert "envelope.time" in message
    assert "units" in message


def test_unknown_scrub_text_detector_is_not_repeated():
    message = policy_error(
        policy_text(f"events:\n  - match: x\n    fields:\n      body: {{op: scrub_text, detectors: [email, '{DATA}']}}\n")
    )
    assert "events[0].fields.body" in message
    assert "detectors" in message


def test_unknown_identity_names_the_location():
    message = policy_error(
        policy_text("events:\n  - match: x\n    fields:\n      student: {op: pseudonymize, identity: nobody}\n")
    )
    assert "events[0].fields.student" in message
    assert "'nobody'" in message


def test_unknown_identity_that_looks_like_data_is_not_repeated():
    message = policy_error(
        policy_text(f"events:\n  - match: x\n    fields:\n      student: {{op: pseudonymize, identity: '{DATA}'}}\n")
    )
    assert "events[0].fields.student" in message


def test_unknown_identity_inside_a_decoded_payload_is_found_at_load_time():
    message = policy_error(
        policy_text(
            """
            events:
              - match: x
                payload:
                  decode: json
                  fields:
                    student: {op: pseudonymize, identity: nobody}
            """
        )
    )
    assert "events[0].payload.fields.student" in message


def test_identity_defined_by_the_policy_is_accepted():
    policy = parse_policy(
        policy_text(
            """
            identities:
              anonymous_id: {format: text, prefix: a_}
            events:
              - match: x
                fields:
                  scorer: {op: pseudonymize, identity: anonymous_id}
            """
        ),
        SOURCE,
    )
    assert policy.identities["anonymous_id"].prefix == "a_"


@pytest.mark.parametrize("path", ["a..b", ".a", "a.", "a[x]", "a[", "a]b", "a*b", "[*]x"])
def test_malformed_field_path_names_the_location(path):
    message = policy_error(policy_text(f"events:\n  - match: x\n    fields:\n      '{path}': keep\n"))
    assert "events[0].fields" in message
    assert "malformed field path" in message


def test_malformed_envelope_path_names_the_location():
    message = policy_error(policy_text(envelope="'context..ip': keep"))
    assert "envelope" in message
    assert "malformed field path" in message


def test_field_ruled_twice_under_two_spellings_names_the_location():
    message = policy_error(policy_text("events:\n  - match: x\n    fields:\n      a.*: keep\n      a[*]: drop\n"))
    assert "events[0].fields" in message
    assert "ruled twice" in message


def test_field_ruled_twice_inside_a_decode_rule_names_the_location():
    message = policy_error(
        policy_text(
            """
            events:
              - match: x
                fields:
                  saved:
                    decode: json
                    fields:
                      parts.*.text: keep
                      parts[*].text: drop
            """
        )
    )
    assert "events[0].fields.saved" in message
    assert "ruled twice" in message


def test_duplicate_yaml_key_names_the_line():
    text = policy_text(envelope="ip: mask_ip\nip: keep")
    message = policy_error(text)
    duplicate_line = text.decode().splitlines().index("  ip: keep") + 1
    assert f"line {duplicate_line}" in message
    assert "duplicate key 'ip'" in message


def test_duplicate_yaml_key_inside_an_event_rule_is_refused():
    message = policy_error(policy_text("events:\n  - match: x\n    fields:\n      body: keep\n      body: drop\n"))
    assert "duplicate key 'body'" in message


def test_yaml_anchor_merge_keys_may_be_overridden():
    text = b"name: t\nshared: &shared {a: keep, b: keep}\n"
    # A merge key is not a duplicate: "shared" is refused as an unknown top-level key, not for duplication.
    message = policy_error(text + b"envelope:\n  <<: *shared\n  a: drop\n")
    assert "duplicate" not in message
    assert "shared" in message


def test_invalid_yaml_names_the_line():
    text = policy_text("events:\n  - match: [x\n    fields: {}\n")
    message = policy_error(text)
    assert "line 7" in message


def test_yaml_list_used_as_a_key_is_a_policy_error():
    message = policy_error(policy_text(envelope="? [a, b]\n: keep"))
    assert "line 5" in message


def test_policy_that_is_not_a_mapping_is_refused():
    message = policy_error(b"- name: t\n")
    assert "mapping" in message


def test_event_payload_in_the_envelope_is_refused():
    message = policy_error(policy_text(envelope="event.body: keep"))
    assert "envelope" in message
    assert "'events'" in message


def test_event_payload_in_an_event_rule_envelope_is_refused():
    message = policy_error(policy_text("events:\n  - match: x\n    envelope:\n      event: keep\n"))
    assert "events[0].envelope" in message


def test_decode_without_fields_names_the_location():
    message = policy_error(policy_text("events:\n  - match: x\n    fields:\n      saved: {decode: json}\n"))
    assert "events[0].fields.saved" in message
    assert "'fields'" in message


def test_decode_with_an_operator_is_refused():
    message = policy_error(
        policy_text("events:\n  - match: x\n    fields:\n      saved: {decode: json, op: keep, fields: {a: keep}}\n")
    )
    assert "events[0].fields.saved" in message


def test_missing_envelope_is_refused():
    message = policy_error(b"name: t\n")
    assert "envelope" in message


def test_event_rule_without_match_is_refused():
    message = policy_error(policy_text("events:\n  - payload: keep\n"))
    assert "events[0].match" in message


def test_unknown_top_level_key_is_refused():
    message = policy_error(policy_text("unknown_event: drop\n"))
    assert "unknown_event" in message


def test_extends_a_missing_policy(tmp_path):
    path = write(tmp_path, "child.yaml", "name: child\nextends: nowhere.yaml\nenvelope: {}\n")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    message = str(caught.value)
    assert message.startswith(str(path))
    assert "extends" in message
    assert "nowhere.yaml" in message


def test_extends_cycle_is_refused(tmp_path):
    write(tmp_path, "a.yaml", "name: a\nextends: b.yaml\nenvelope: {}\n")
    write(tmp_path, "b.yaml", "name: b\nextends: a.yaml\nenvelope: {}\n")
    with pytest.raises(PolicyError) as caught:
        load_policy(tmp_path / "a.yaml")
    message = str(caught.value)
    assert "extends" in message
    assert "leads back to itself" in message
    assert str(tmp_path) in message


def test_extending_itself_is_refused(tmp_path):
    path = write(tmp_path, "self.yaml", "name: s\nextends: self.yaml\nenvelope: {}\n")
    with pytest.raises(PolicyError, match="leads back to itself"):
        load_policy(path)


def test_extends_with_a_section_of_the_wrong_shape_is_a_policy_error():
    message = policy_error(b"name: t\nextends: research\nenvelope: [ip]\n")
    assert "envelope" in message


def test_replace_operators_with_an_unknown_operator():
    message = policy_error(policy_text("replace_operators: {scrub_text: shred}\n"))
    assert "replace_operators" in message
    assert "'shred'" in message


def test_replace_operators_with_a_value_that_looks_like_data_is_not_repeated():
    message = policy_error(policy_text(f"replace_operators: {{scrub_text: '{DATA}'}}\n"))
    assert "replace_operators" in message


def test_replace_operators_with_a_list_instead_of_a_name_is_a_policy_error():
    message = policy_error(policy_text("replace_operators: {scrub_text: [drop]}\n"))
    assert "replace_operators" in message


def test_several_problems_are_all_reported():
    message = policy_error(
        policy_text("events:\n  - match: x\n    fields:\n      a: scrub_txt\n  - match: y\n    fields:\n      b: kep\n")
    )
    assert "events[0].fields.a" in message
    assert "events[1].fields.b" in message


def test_extends_a_device_file_is_refused_without_reading_it(tmp_path):
    child = write(tmp_path, "child.yaml", "name: child\nextends: /dev/zero\nenvelope:\n  name: keep\n")
    with pytest.raises(PolicyError, match="nor a regular file"):
        load_policy(child)


def test_a_policy_file_larger_than_the_limit_is_refused(tmp_path, monkeypatch):
    import anonymizer.core.policy as policy_module

    monkeypatch.setattr(policy_module, "MAX_POLICY_BYTES", 64)
    big = write(tmp_path, "big.yaml", "name: big\n" + "# padding\n" * 20)
    with pytest.raises(PolicyError, match="is this a policy file"):
        load_policy(big)
