"""`when` on a field rule: a field is kept under its rule only while a sibling field allows it."""

from __future__ import annotations

import pytest

from anonymizer import Anonymizer, Key, PolicyError, load_policy, parse_policy

KEY = Key(b"w" * 32)


def policy(fields: str):
    return parse_policy(
        (
            "name: t\nenvelope: {event_type: keep}\nevents:\n  - match: edx.user.settings.changed\n    fields:\n"
            "      setting: keep\n" + fields
        ).encode(),
        "t.yaml",
    )


def settings_event(setting, old="QXold", new="QXnew") -> dict:
    return {"event_type": "edx.user.settings.changed", "event": {"setting": setting, "old": old, "new": new}}


ALLOW = "      old: {op: keep, when: {setting: [pref-lang, is_active]}}\n      new: {op: keep, when: {setting: [pref-lang, is_active]}}\n"


def test_a_field_is_kept_when_its_sibling_holds_an_allowed_value():
    out = Anonymizer(policy(ALLOW), KEY).anonymize_event(settings_event("pref-lang", "en", "nb"))
    assert out["event"] == {"setting": "pref-lang", "old": "en", "new": "nb"}


def test_a_field_is_dropped_and_counted_when_its_sibling_holds_another_value():
    anonymizer = Anonymizer(policy(ALLOW), KEY)
    out = anonymizer.anonymize_event(settings_event("name"))
    assert out["event"] == {"setting": "name"}
    assert anonymizer.stats.as_dict()["dropped_fields"]["edx.user.settings.changed"]["event.old"] == {"condition_not_met": 1}


def test_a_field_is_dropped_when_the_sibling_is_missing():
    out = Anonymizer(policy(ALLOW), KEY).anonymize_event({"event_type": "edx.user.settings.changed", "event": {"old": "QXold"}})
    assert out["event"] == {}


def test_values_compare_with_their_json_types():
    rules = "      old: {op: keep, when: {setting: [1]}}\n"
    anonymizer = Anonymizer(policy(rules), KEY)
    assert "old" not in anonymizer.anonymize_event(settings_event(True))["event"]
    assert "old" not in anonymizer.anonymize_event(settings_event("1"))["event"]
    assert anonymizer.anonymize_event(settings_event(1))["event"]["old"] == "QXold"


def test_the_condition_is_read_from_the_payload_as_logged_in_a_json_string():
    out = Anonymizer(policy(ALLOW), KEY).anonymize_event(
        {"event_type": "edx.user.settings.changed", "event": '{"setting": "is_active", "old": false, "new": true}'}
    )
    assert out["event"] == '{"setting":"is_active","old":false,"new":true}'


def test_research_policy_keeps_old_and_new_only_in_the_shape_of_their_setting():
    anonymizer = Anonymizer(load_policy("research"), KEY)
    kept = anonymizer.anonymize_event(settings_event("pref-lang", "en", "fr"))["event"]
    assert (kept["old"], kept["new"]) == ("en", "fr")
    zone = anonymizer.anonymize_event(settings_event("time_zone", "Europe/Oslo", "note: quinn_harrow, see you"))["event"]
    assert zone["old"] == "Europe/Oslo" and "new" not in zone
    flag = anonymizer.anonymize_event(settings_event("is_active", True, "QXnew"))["event"]
    assert flag["old"] is True and "new" not in flag
    unknown = anonymizer.anonymize_event(settings_event("favourite_colour", "QXold", "QXnew"))["event"]
    assert "old" not in unknown and "new" not in unknown
    counts = anonymizer.stats.as_dict()["dropped_fields"]["edx.user.settings.changed"]
    assert counts["event.old"] == {"condition_not_met": 1} and counts["event.new"] == {"condition_not_met": 1, "invalid_value": 2}


@pytest.mark.parametrize("setting", ["year_of_birth", "gender", "country", "level_of_education", "name", "bio", "mailing_address"])
def test_research_policy_redacts_values_of_identifying_and_demographic_settings(setting):
    out = Anonymizer(load_policy("research"), KEY).anonymize_event(settings_event(setting))
    assert out["event"] == {"setting": setting, "old": "[REDACTED]", "new": "[REDACTED]"}


def test_research_policy_pseudonymizes_an_email_setting():
    out = Anonymizer(load_policy("research"), KEY).anonymize_event(settings_event("email", "QXold@example.org", "QXnew@example.org"))
    assert "QX" not in str(out)
    assert out["event"]["old"].startswith("u_") and out["event"]["new"].startswith("u_")


CASES = """      old:
        - {op: keep, shape: word, when: {setting: [a, b]}}
        - {op: drop, when: {setting: [c]}}
        - {op: redact, when: {setting: [b, d]}}
"""


def test_the_first_case_whose_condition_holds_applies():
    anonymizer = Anonymizer(policy(CASES), KEY)
    assert anonymizer.anonymize_event(settings_event("a", "plain"))["event"] == {"setting": "a", "old": "plain"}
    assert anonymizer.anonymize_event(settings_event("b", "plain"))["event"] == {"setting": "b", "old": "plain"}
    assert anonymizer.anonymize_event(settings_event("d", "plain"))["event"] == {"setting": "d", "old": "[REDACTED]"}


def test_a_case_that_drops_is_silent_and_no_case_is_counted():
    anonymizer = Anonymizer(policy(CASES), KEY)
    assert anonymizer.anonymize_event(settings_event("c"))["event"] == {"setting": "c"}
    assert anonymizer.anonymize_event(settings_event("e"))["event"] == {"setting": "e"}
    assert anonymizer.anonymize_event(settings_event("a", "two words"))["event"] == {"setting": "a"}
    counts = anonymizer.stats.as_dict()["dropped_fields"]["edx.user.settings.changed"]["event.old"]
    assert counts == {"condition_not_met": 1, "invalid_value": 1}


def test_a_last_case_without_when_applies_otherwise():
    rules = "      old:\n        - {op: keep, when: {setting: [a]}}\n        - {op: redact, value: gone}\n"
    anonymizer = Anonymizer(policy(rules), KEY)
    assert anonymizer.anonymize_event(settings_event("a"))["event"]["old"] == "QXold"
    assert anonymizer.anonymize_event(settings_event("zz"))["event"]["old"] == "gone"


def test_cases_read_the_siblings_as_logged_in_a_json_string():
    out = Anonymizer(policy(CASES), KEY).anonymize_event({"event_type": "edx.user.settings.changed", "event": '{"setting": "d", "old": "x"}'})
    assert out["event"] == '{"setting":"d","old":"[REDACTED]"}'


def test_replace_operators_keeps_each_case_condition():
    text = (
        "name: t\nenvelope: {event_type: keep}\nreplace_operators: {redact: drop}\nevents:\n  - match: edx.user.settings.changed\n"
        "    fields:\n      setting: keep\n" + CASES
    ).encode()
    anonymizer = Anonymizer(parse_policy(text, "t.yaml"), KEY)
    assert anonymizer.anonymize_event(settings_event("d"))["event"] == {"setting": "d"}
    assert anonymizer.anonymize_event(settings_event("a"))["event"] == {"setting": "a", "old": "QXold"}


@pytest.mark.parametrize(
    "rules, message",
    [
        ("      old:\n        - {op: keep}\n        - {op: redact, when: {setting: [a]}}\n", "only the last case"),
        ("      old: []\n", "at least one"),
        ("      old:\n        - [{op: keep, when: {setting: [a]}}]\n", "a case is an operator rule"),
        ("      old:\n        - {op: nope, when: {setting: [a]}}\n", "unknown operator"),
    ],
)
def test_badly_written_cases_are_refused_at_load(rules, message):
    with pytest.raises(PolicyError, match=message):
        policy(rules)


def test_cases_on_a_wildcard_or_over_sub_rules_are_refused_when_the_policy_compiles():
    with pytest.raises(PolicyError, match="named fields"):
        Anonymizer(policy("      '*':\n        - {op: keep, when: {setting: [x]}}\n"), KEY)
    with pytest.raises(PolicyError, match="no rules under it"):
        Anonymizer(policy("      old:\n        - {op: keep, when: {setting: [x]}}\n      old.x: keep\n"), KEY)


def test_when_needs_plain_sibling_names():
    with pytest.raises(PolicyError, match="plain name"):
        policy("      old: {op: keep, when: {a.b: [x]}}\n")


def test_when_needs_at_least_one_condition():
    with pytest.raises(PolicyError, match="at least one"):
        policy("      old: {op: keep, when: {}}\n")


def test_when_on_a_wildcard_is_refused_when_the_policy_compiles():
    with pytest.raises(PolicyError, match="named fields"):
        Anonymizer(policy("      '*': {op: keep, when: {setting: [x]}}\n"), KEY)


def test_when_on_a_whole_payload_is_refused():
    text = b"name: t\nenvelope: {event_type: keep}\nevents:\n  - match: x\n    payload: {op: keep, when: {a: [b]}}\n"
    with pytest.raises(PolicyError, match="payload"):
        Anonymizer(parse_policy(text, "t.yaml"), KEY)
