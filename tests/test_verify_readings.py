"""The readings ``verify`` makes of normalized text are the regular expressions' they replace.

``deobfuscate`` finds the sign or word first and takes the white space
around it by hand, because a pattern that begins with ``\\s*`` is tried at every
character of a line. These properties compare them with the plain patterns on text made of the
pieces that matter (brackets, "at", "dot", "@", white space of several kinds, digits, separators).
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from anonymizer.verify.forms import deobfuscate, space_phone_separators

_AT = re.compile(r"\s*[(\[{<]\s*at\s*[)\]}>]\s*|\s+at\s+|\s*@\s*")
_DOT = re.compile(r"\s*[(\[{<]\s*dot\s*[)\]}>]\s*|\s+dot\s+")
_SEPARATORS = re.compile(r"(?<=\d)[\s\-./()_]+(?=\d)")

_PIECES = st.lists(
    st.sampled_from(["at", "dot", "@", " ", "  ", "\t", "\n", "\u00a0", "\u3000", "(", ")", "[", "]", "{", "}", "<", ">",
                     "a", "t", "cat", "ada", "x", ".", "-", "/", "_", "1", "42", "٣", "zq"]),
    max_size=40,
)


@settings(max_examples=1500, deadline=None)
@given(_PIECES)
def test_deobfuscate_reads_as_the_patterns_do(pieces):
    text = "".join(pieces)
    assert deobfuscate(text) == _DOT.sub(".", _AT.sub("@", text))


@settings(max_examples=1000, deadline=None)
@given(_PIECES)
def test_phone_separators_read_as_the_pattern_does(pieces):
    text = "".join(pieces)
    assert space_phone_separators(text) == _SEPARATORS.sub(" ", text)


def test_the_readings_of_an_address_and_a_phone():
    assert deobfuscate("zq (at) example [dot] org") == "zq@example.org"
    assert deobfuscate("write zq at example dot org at noon") == "write zq@example.org@noon"
    assert deobfuscate("a cat sat") == "a cat sat"
    assert space_phone_separators("617-555 / 0143") == "617 555 0143"
