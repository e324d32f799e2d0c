"""Paths the other tests do not reach: unreadable and unwritable key files, the rejection-list
cap, and list payloads whose items are named one by one."""

from __future__ import annotations

import pytest

from anonymizer import Anonymizer, Key, KeyFileError, generate_key, load_key, parse_policy, write_key
from anonymizer.package.signing import load_private_key, load_public_key, write_signing_key_pair
from anonymizer.core.stats import MAX_REJECTIONS_LISTED, Stats


def test_a_key_file_in_a_missing_directory_cannot_be_created(tmp_path):
    with pytest.raises(KeyFileError, match="cannot create the key file"):
        write_key(generate_key(), tmp_path / "missing" / "k.key")


def test_a_key_file_that_is_a_directory_cannot_be_read(tmp_path):
    with pytest.raises(KeyFileError, match="cannot read the key file"):
        load_key(tmp_path)


def test_signing_keys_are_never_overwritten_and_their_errors_name_the_file(tmp_path):
    write_signing_key_pair(tmp_path / "s")
    with pytest.raises(KeyFileError, match="already exists"):
        write_signing_key_pair(tmp_path / "s")
    with pytest.raises(KeyFileError, match="cannot create the key file"):
        write_signing_key_pair(tmp_path / "missing" / "s")
    with pytest.raises(KeyFileError, match="signing key not found"):
        load_private_key(tmp_path / "absent.key")
    with pytest.raises(KeyFileError, match="cannot read the public key"):
        load_public_key(tmp_path)


def test_rejections_past_the_cap_are_counted_not_listed():
    stats = Stats()
    for line in range(MAX_REJECTIONS_LISTED + 3):
        stats.reject("in.log", line + 1, "blank")
    assert len(stats.rejections) == MAX_REJECTIONS_LISTED
    assert stats.rejections_not_listed == 3
    assert stats.rejected == {"blank": MAX_REJECTIONS_LISTED + 3}


def test_stats_count_events_by_type_and_outcome():
    stats = Stats()
    stats.event("play_video", "written")
    stats.event("play_video", "written")
    stats.event("play_video", "dropped")
    assert stats.event_types == {"play_video": {"written": 2, "dropped": 1}}


LIST_POLICY = b"""
name: lists
envelope: {event_type: keep}
events:
  - match: t
    fields:
      items[0]: keep
      items[1]: drop
      items[2]: mask_ip
"""


@pytest.fixture(scope="module")
def lists():
    return Anonymizer(parse_policy(LIST_POLICY, "lists.yaml"), Key(bytes(32)))


def test_list_items_named_one_by_one(lists):
    out = lists.anonymize_event({"event_type": "t", "event": {"items": ["kept", "dropped", "not an address", "unnamed"]}})
    assert out["event"] == {"items": ["kept"]}
    fields = lists.stats.fields
    assert fields[("t", "event.items[*]", "invalid_value")] == 1
    assert fields[("t", "event.items[*]", "unnamed")] == 1


def test_a_named_list_that_is_not_a_list_is_dropped(lists):
    out = lists.anonymize_event({"event_type": "t", "event": {"items": "a string where a list was named"}})
    assert "items" not in out["event"]
    out = lists.anonymize_event({"event_type": "t", "event": {"items": None}})
    assert out["event"] == {"items": None}


def test_a_payload_string_that_is_neither_json_nor_a_query_is_emptied(lists):
    out = lists.anonymize_event({"event_type": "t", "event": "free text the rules cannot name"})
    assert out["event"] == ""
    assert lists.stats.fields[("t", "event", "unnamed")] >= 1
