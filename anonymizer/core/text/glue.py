"""When a letter or digit next to a match makes it part of a longer word: the boundary rule of
``scrub_text`` and ``verify``.

A neighbouring character glues to a match only when it and the match's end character are letters
or digits of the same kind: two Latin letters, two Cyrillic letters, a digit and a digit, or a
digit and a letter of a script written with spaces (``user530114``, ``zelda-q2``). So:

- a character of a script written without spaces between words (Han, Hiragana, Katakana, Thai,
  Lao, Khmer, Myanmar) never glues, nor does Hangul, whose particles attach to names
  (``请联系zelda-q谢谢``, ``zelda-q님``, ``学号530114``);
- a letter of another script does not glue either (``спросиzelda-q``).

A false positive in such text costs a word; a false negative, a person. The kind of a character
is looked up only at candidate boundaries, and memoized.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

# Scripts written without spaces between words, and Hangul: Thai, Lao, Myanmar, Hangul jamo,
# Khmer, the CJK letters among punctuation (々〆〇), Hiragana, Katakana, Bopomofo, Hangul
# compatibility jamo, Katakana extensions, CJK ideographs (and extension A), Hangul syllables,
# CJK compatibility ideographs, halfwidth Katakana and Hangul, the supplementary ideographs.
_RANGES = (
    (0x0E00, 0x0EFF), (0x1000, 0x109F), (0x1100, 0x11FF), (0x1780, 0x17FF), (0x3005, 0x3007),
    (0x3040, 0x30FF), (0x3100, 0x312F), (0x3130, 0x318F), (0x31A0, 0x31BF), (0x31F0, 0x31FF),
    (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xA960, 0xA97F), (0xAC00, 0xD7FF), (0xF900, 0xFAFF),
    (0xFF66, 0xFFDC), (0x20000, 0x3134F),
)
# The same, for a regular expression class: ``[^\W_{UNSPACED_RANGES}]`` is a letter or digit
# that glues to a digit.
UNSPACED_RANGES = "".join(f"{chr(low)}-{chr(high)}" for low, high in _RANGES)

_DIGIT = "0"
_NEVER = ""  # a character of an unspaced script: glues to nothing
_PREFIXES = ("FULLWIDTH", "HALFWIDTH")


def unspaced(ch: str) -> bool:
    """Whether CH is of a script written without spaces between words (or Hangul)."""
    code = ord(ch)
    if code < 0x0E00:
        return False
    return any(low <= code <= high for low, high in _RANGES)


@lru_cache(maxsize=8192)
def _kind(ch: str) -> str:
    """The kind of a letter or digit CH: a digit, never gluing, or its script's name."""
    if unspaced(ch):
        return _NEVER
    if unicodedata.category(ch)[0] == "N":
        return _DIGIT
    words = unicodedata.name(ch, "").split()
    if words and words[0] in _PREFIXES:
        words = words[1:]
    return words[0] if words else ch


def glued(before: str, after: str) -> bool:
    """Whether the characters BEFORE and AFTER (adjacent) belong to one word."""
    if not (before.isalnum() and after.isalnum()):
        return False
    if before.isascii() and after.isascii():
        return True
    left, right = _kind(before), _kind(after)
    if not left or not right:  # an unspaced script
        return False
    return left == right or left == _DIGIT or right == _DIGIT


def splits(before: str, after: str) -> bool:
    """Whether a word boundary lies between two adjacent letters or digits for the roster's
    automaton: where they do not glue, except inside a run of unspaced scripts, whose names are
    searched without word boundaries (``王芳``, ``山田はなこ``)."""
    if glued(before, after) or not (before.isalnum() and after.isalnum()):
        return False
    return bool(_kind(before) or _kind(after))


def stands_alone(text: str, start: int, stop: int) -> bool:
    """Whether TEXT[start:stop] is not glued to a letter or digit on either side. Punctuation
    (``_``, ``.``, ``-`` included) around a match does not hide it."""
    if start > 0 and glued(text[start - 1], text[start]):
        return False
    return not (stop < len(text) and glued(text[stop - 1], text[stop]))


def number_alone(text: str, start: int, stop: int) -> bool:
    """Whether the digits TEXT[start:stop] (a whole run of digits) stand alone as a number that
    may be a user id: not glued to a letter or digit, and not part of a decimal, a version, a
    range, a date or time, a price, a handle or a grouped number.

    ``#``, ``:``, ``-`` and ``.`` before the digits are how people write an id (``#530114``,
    ``uid:530114``, ``user-530114``, ``No.530114``): they hide nothing unless a digit precedes
    them (``0.530114``, ``v1.530114``, ``2024-530114``, ``12:530114``). ``530,114`` reads as a
    grouped number, ``$530114`` as a price, ``@530114`` as a handle. After the digits, ``.0``
    (a float of an integer: ``530114.0``) hides nothing; another number's separator and digit
    (``530114.5``, ``530114-2``, ``530114:10``) does."""
    if start > 0:
        before = text[start - 1]
        if glued(before, text[start]) or before in "$@":
            return False
        if before in ",.-:" and start > 1 and text[start - 2].isdigit():
            return False
    if stop < len(text):
        after = text[stop]
        if glued(text[stop - 1], after):
            return False
        if after in ".,-:" and stop + 1 < len(text) and text[stop + 1].isdigit():
            if after != ".":
                return False
            end = stop + 1
            while end < len(text) and text[end] == "0":
                end += 1
            return not (end < len(text) and text[end].isdigit())
    return True
