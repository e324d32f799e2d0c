"""The boundary rule that the scrubber and verify share (``anonymizer.core.text.glue``)."""

from __future__ import annotations

import pytest

from anonymizer.core.text.glue import glued, number_alone, stands_alone
from anonymizer.verify.scan import _id_in_text


@pytest.mark.parametrize(
    "before, after, expected",
    [
        ("a", "b", True), ("a", "1", True), ("1", "a", True), ("é", "a", True), ("ж", "б", True), ("ж", "5", True),
        ("系", "z", False), ("q", "谢", False), ("号", "5", False), ("q", "님", False), ("a", "さ", False),
        ("б", "a", False), ("a", "б", False), ("α", "a", False), ("王", "芳", False), ("a", "-", False), ("_", "a", False),
    ],
)
def test_only_letters_and_digits_of_one_kind_glue(before, after, expected):
    assert glued(before, after) is expected


def test_a_match_stands_alone_beside_other_scripts_but_not_inside_a_latin_word():
    assert stands_alone("请联系zelda-q谢谢", 3, 10)
    assert stands_alone("спросиzelda-q", 6, 13)
    assert not stands_alone("xzelda-q", 1, 8)
    assert not stands_alone("zelda-q2", 0, 7)


@pytest.mark.parametrize(
    "text, alone",
    [
        ("user #530114", True), ("uid:530114 x", True), ("user-530114", True), ("No.530114", True), ("学号530114。", True),
        ("530114.0 x", True), ("530114.00", True), ("0.530114", False), ("v1.530114", False), ("2024-530114", False),
        ("12:530114", False), ("530,114", False), ("$530114", False), ("@530114", False), ("v530114", False),
        ("530114.5", False), ("530114.05", False), ("530114-2", False), ("530114x", False),
    ],
)
def test_the_scrubber_and_verify_read_a_user_id_in_text_alike(text, alone):
    digits = "530114" if "530114" in text else "114"
    start = text.index(digits)
    if text == "530,114":
        start, digits = 4, "114"
    stop = start + len(digits)
    assert number_alone(text, start, stop) is alone
    if not any("\u3000" <= ch for ch in text) and text not in ("530114x", "v530114"):
        # verify's byte scan leaves letters and digits around to its automaton
        assert _id_in_text(text.encode(), start, stop) is alone
