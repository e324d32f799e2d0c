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


def test_research_policy_keeps_old_and_new_only_for_allowlisted_settings():
    anonymizer = Anonymizer(load_policy("research"), KEY)
    kept = anonymizer.anonymize_event(settings_event("pref-lang", "en", "fr"))["event"]
    dropped = anonymizer.anonymize_event(settings_event("name", "QXold name", "QXnew name"))["event"]
    assert (kept["old"], kept["new"]) == ("en", "fr")
    assert "old" not in dropped and "new" not in dropped


@pytest.mark.parametrize("setting", ["year_of_birth", "gender", "country", "level_of_education", "email", "bio", "mailing_address"])
def test_research_policy_drops_values_of_identifying_and_demographic_settings(setting):
    out = Anonymizer(load_policy("research"), KEY).anonymize_event(settings_event(setting))
    assert "QXold" not in str(out) and "QXnew" not in str(out)


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
