"""Field paths: parsing into keys, list indexes and wildcards."""

from __future__ import annotations

import pytest

from anonymizer.core.paths import WILDCARD, format_path, parse_path


def test_dotted_keys():
    assert parse_path("a.b") == ("a", "b")


def test_single_key():
    assert parse_path("event_type") == ("event_type",)


def test_key_wildcard():
    assert parse_path("answers.*") == ("answers", WILDCARD)


def test_list_wildcard_inside_a_path():
    assert parse_path("answer.parts[*].text") == ("answer", "parts", WILDCARD, "text")


def test_list_index_alone():
    assert parse_path("[0]") == (0,)


def test_index_then_wildcard():
    assert parse_path("a[1][*]") == ("a", 1, WILDCARD)


def test_index_is_an_int_and_a_numeric_key_is_a_str():
    assert parse_path("a[2].3") == ("a", 2, "3")


def test_leading_wildcard():
    assert parse_path("*.answer") == (WILDCARD, "answer")


def test_star_and_bracket_star_are_the_same_path():
    assert parse_path("a.*") == parse_path("a[*]")


def test_surrounding_whitespace_is_ignored():
    assert parse_path(" a.b ") == ("a", "b")


def test_keys_may_hold_dashes_colons_and_spaces():
    assert parse_path("context.course_user_tags.my-tag:x y") == ("context", "course_user_tags", "my-tag:x y")


@pytest.mark.parametrize(
    "path",
    ["", "   ", "a..b", ".a", "a.", "a[", "a]", "a[x]", "a[-1]", "a[1", "a*b", "*a", "**", "[0]a", "a[ 1]"],
)
def test_malformed_path_raises_value_error(path):
    with pytest.raises(ValueError):
        parse_path(path)


def test_non_string_path_raises_value_error():
    with pytest.raises(ValueError):
        parse_path(None)  # type: ignore[arg-type]


def test_malformed_path_message_names_the_path():
    with pytest.raises(ValueError, match=r"malformed field path 'a\.\.b'"):
        parse_path("a..b")


@pytest.mark.parametrize("path", ["a.b", "answers.*", "answer.parts[*].text", "[0]", "a[1][*]", "*.x[2]"])
def test_format_path_round_trips(path):
    assert parse_path(format_path(parse_path(path))) == parse_path(path)


def test_format_path_writes_indexes_in_brackets():
    assert format_path(("a", 1, "b")) == "a[1].b"
