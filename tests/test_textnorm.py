"""The decoded view of a text (``anonymizer.core.text.textnorm``): each decoding, the span map, the fast path."""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from anonymizer.core.text import textnorm


def decoded(text: str) -> str:
    view = textnorm.decode(text)
    return text if view is None else view.text


@pytest.mark.parametrize(
    "text, expected",
    [
        ("jane&#64;example.com", "jane@example.com"),
        ("jane&#x40;example.com", "jane@example.com"),
        ("jane&commat;example.com", "jane@example.com"),
        ("Zo&euml; &amp; co", "Zoë & co"),
        ("&copy 2024", "© 2024"),  # a legacy name without its ';', as browsers read it
        ("&bogus; & AT&T", "&bogus; & AT&T"),
    ],
)
def test_html_character_references_are_decoded(text, expected):
    assert decoded(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("jane%40example.com", "jane@example.com"),
        ("jane%2540example.com", "jane@example.com"),
        ("jane%252540example.com", "jane@example.com"),
        ("%E7%8E%8B%E8%8A%B3", "王芳"),
        ("50% of %zz and %E7", "50% of %zz and %E7"),  # no complete character: as written
        ("a+b%40x.org", "a+b@x.org"),  # '+' is not a space
    ],
)
def test_percent_encoding_is_decoded_until_stable(text, expected):
    assert decoded(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        (r"jane\u0040example.com", "jane@example.com"),
        (r"\u738b\u82b3", "王芳"),
        (r"\ud83d\ude00", "😀"),
        (r"lone \ud83d stays", r"lone \ud83d stays"),
        (r"jane\\u0040example.com", "jane@example.com"),  # a JSON string inside a JSON string
        (r"a\"b\/c\n", 'a"b/c\n'),
    ],
)
def test_json_string_escapes_are_decoded_at_any_depth(text, expected):
    assert decoded(text) == expected


def test_a_json_document_in_a_string_decodes_to_its_content():
    inner = json.dumps({"answer": "mail me: jane@example.com 王芳"}, ensure_ascii=True)
    twice = json.dumps(inner, ensure_ascii=True)[1:-1]
    assert "jane@example.com" in decoded(twice) and "王芳" in decoded(twice)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ", "jane@example.com"),
        ("jane﹫example.com", "jane@example.com"),
        ("415\u00a0555\u202f0132", "415 555 0132"),
        ("415\u2013555\u20110132", "415-555-0132"),
        ("ﬁle", "file"),
        ("Zoe\u0308", "Zoë"),
    ],
)
def test_compatibility_forms_and_dashes_are_folded(text, expected):
    assert decoded(text) == expected


def test_layers_are_decoded_through_each_other():
    assert decoded("jane%26%2364%3Bexample.com") == "jane@example.com"  # an entity, percent-encoded
    assert decoded("jane&#92;u0040example.com") == "jane@example.com"  # a JSON escape, as an entity


@pytest.mark.parametrize("text", ["plain prose, 3.14 and v1.2.3", "a@b.com", "", "Øyvind Ærø wrote", "王芳", "50 % off & more"])
def test_text_without_anything_to_decode_has_no_view(text):
    assert textnorm.decode(text) is None


def test_each_character_of_the_view_maps_to_the_unit_it_came_from():
    view = textnorm.decode("a&#64;b%2540c\\u0040d")
    assert view.text == "a@b@c@d"
    assert [view.origin(i, i + 1) for i in range(len(view.text))] == [
        (0, 1), (1, 6), (6, 7), (7, 12), (12, 13), (13, 19), (19, 20),
    ]


def test_a_match_on_part_of_a_unit_widens_to_the_whole_unit():
    view = textnorm.decode("x%E7%8E%8By")
    assert view.text == "x王y"
    assert view.origin(1, 2) == (1, 10)
    view = textnorm.decode("ab&#x1F600;")  # one character from six: any part is all of it
    assert view.origin(2, 3) == (2, 11)


def test_apply_replaces_spans_and_merges_those_that_overlap():
    assert textnorm.apply("hello world", [(0, 5, "[A]")]) == "[A] world"
    assert textnorm.apply("abcdef", [(0, 3, "[A]"), (2, 5, "[B]")]) == "[A][B]f"
    assert textnorm.apply("abcdef", [(1, 3, "[A]"), (1, 3, "[A]")]) == "a[A]def"
    assert textnorm.apply("abc", []) == "abc"


def test_rebuild_maps_a_placeholder_to_the_span_it_replaced():
    view = textnorm.decode("x&#64;y z")
    seen = textnorm.rebuild(view, [(0, 3, "[EMAIL]")])
    assert seen.text == "[EMAIL] z"
    assert seen.origin(0, 7) == (0, 7) and seen.origin(8, 9) == (8, 9)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("zel\u200bda-q", "zelda-q"),  # zero-width space
        ("zel\u00adda-q", "zelda-q"),  # soft hyphen
        ("530\u2060114 \ufeffZelda\u200c\u200d", "530114 Zelda"),  # word joiner, byte-order mark, joiners
        ("zel&shy;da-q", "zelda-q"),  # an invisible character written as an entity
        ("zel\\u200bda-q", "zelda-q"),  # ... as a JSON escape
        ("Zelda\u202e\ufe0f", "Zelda"),  # a bidirectional override, a variation selector
    ],
)
def test_invisible_characters_are_removed(text, expected):
    assert decoded(text) == expected


def test_a_match_across_an_invisible_character_covers_it():
    view = textnorm.decode("hi zel\u200bda-q!")
    assert view.text == "hi zelda-q!"
    assert view.origin(3, 10) == (3, 11)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("z\u0435lda-q", "zelda-q"),  # Cyrillic e
        ("\u041c\u0430rk Young", "Mark Young"),  # Cyrillic M and a
        ("J\u03bfhn", "John"),  # Greek omicron
        ("\u0435\u0441\u043e\u043e\u0440", "ecoop"),  # every letter a look-alike: reads as Latin
        ("\u0418\u0432\u0430\u043d\u043e\u0432 z\u0435lda", "\u0418\u0432\u0430\u043d\u043e\u0432 zelda"),  # real Cyrillic stays
    ],
)
def test_look_alike_letters_in_words_that_read_as_latin_are_read_in_latin(text, expected):
    assert decoded(text) == expected


@pytest.mark.parametrize("text", ["\u0418\u0432\u0430\u043d\u043e\u0432", "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440", "\u03ba\u03b1\u03bb\u03b7\u03bc\u03ad\u03c1\u03b1"])
def test_cyrillic_and_greek_words_are_not_read_as_latin(text):
    assert textnorm.decode(text) is None


@pytest.mark.parametrize(
    "text, expected",
    [
        (r"ask \_ymir\_balder77\_", "ask _ymir_balder77_"),
        (r"kwame\_nair57 and zelda\-q", "kwame_nair57 and zelda-q"),
        (r"jane\.doe\@example\.com", "jane.doe@example.com"),
        (r"a\\_b", "a_b"),  # a JSON-escaped backslash, then a Markdown escape
    ],
)
def test_markdown_backslash_escapes_are_undone(text, expected):
    assert decoded(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("zel<b>da</b>-q", "zelda-q"),
        ("<b>Mark</b> <i>Young</i>", "Mark Young"),
        ('zel<span class="x" title="a>b">da</span>-q', "zelda-q"),
        ("zel<!-- -->da-q", "zelda-q"),
        ("Mark<br>Young", "Mark Young"),
        ("Mark <br/> Young", "Mark Young"),
        ("<p>Mark</p>\n<p>Young</p>", " Mark Young "),
        ("zel&lt;b&gt;da-q", "zelda-q"),  # tags written as entities are read too
    ],
)
def test_html_tags_are_read_through(text, expected):
    assert decoded(text) == expected


@pytest.mark.parametrize("text", ["a<3 and b>2", "x <foo>bar</foo>", "if a < b and c > d"])
def test_what_is_not_a_known_tag_stays(text):
    assert textnorm.decode(text) is None


@pytest.mark.parametrize(
    "text, expected",
    [
        ("**Mark** Young", "Mark Young"),
        ("*Mark* Young", "Mark Young"),
        ("***Mark*** Young", "Mark Young"),
        ("zel*da*-q", "zelda-q"),
        ("~~Mark~~ Young", "Mark Young"),
        ("__Mark__ Young", "Mark Young"),
        ("__kwame_nair57__", "kwame_nair57"),
        ("_Mark_ Young", "Mark Young"),
        ("(_Mark Young_)", "(Mark Young)"),
        ("_ymir_", "ymir"),  # as emphasis too: the scrubber also reads the text as written
    ],
)
def test_markdown_emphasis_markers_are_removed(text, expected):
    assert decoded(text) == expected


@pytest.mark.parametrize("text", ["_ymir_balder77_", "snake_case", "snake__case__name", "a * b * c", "** not **", "x__"])
def test_underscores_and_lone_asterisks_stay(text):
    """A "_" inside a word is a username's character (``_ymir_balder77_``), "__" inside a word is
    no emphasis, and an asterisk with space inside is no marker."""
    assert textnorm.decode(text) is None


# ---------------------------------------------------------------- properties

_ENCODINGS = {
    "entity": lambda s: "".join(f"&#{ord(c)};" for c in s),
    "hex_entity": lambda s: "".join(f"&#x{ord(c):x};" for c in s),
    "percent": lambda s: "".join(f"%{byte:02X}" for byte in s.encode()),
    "double_percent": lambda s: "".join(f"%25{byte:02X}" for byte in s.encode()),
    "json": lambda s: "".join(f"\\u{ord(c):04x}" for c in s),
    "double_json": lambda s: "".join(f"\\\\u{ord(c):04x}" for c in s),
    "fullwidth": lambda s: "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in s),
}
_PLAIN = st.text(alphabet=string.ascii_letters + string.digits + " .,;:!?-_()/'\n", max_size=40)


@settings(max_examples=100, deadline=None)
@given(before=_PLAIN, after=_PLAIN, secret=st.text(alphabet=string.ascii_letters + "@.é王", min_size=1, max_size=12),
       encoding=st.sampled_from(sorted(_ENCODINGS)))
def test_an_encoded_string_decodes_to_itself_and_maps_back_to_its_encoding(before, after, secret, encoding):
    encoded = _ENCODINGS[encoding](secret)
    assume("__" not in before + after)  # Markdown's strong emphasis, read through
    assume(encoded != secret)  # fullwidth forms exist for ASCII only: "é王" is written as it is
    text = before + " " + encoded + " " + after
    view = textnorm.decode(text)
    assert view is not None and view.text == before + " " + secret + " " + after
    assert len(view.starts) == len(view.ends) == len(view.text)
    at = len(before) + 1
    assert view.origin(at, at + len(secret)) == (at, at + len(encoded))


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=60))
def test_spans_are_ordered_and_within_the_original(text):
    view = textnorm.decode(text) or textnorm.identity(text)
    for i in range(len(view.text)):
        start, end = view.origin(i, i + 1)
        assert 0 <= start < end <= len(text)
        if i:
            assert view.starts[i - 1] <= start
