"""Characters that hide an identifier from a search but not from a reader, and markup around it.

- **Invisible characters**: Unicode's default-ignorable code points (``DerivedCoreProperties.txt``,
  ``Default_Ignorable_Code_Point``): zero-width space and joiners, soft hyphen, word joiner,
  byte-order mark, bidirectional marks, variation selectors, Hangul fillers, tag characters.
  A reader sees nothing of them; NFKC keeps them.
- **Look-alike letters**: the Cyrillic, Greek and other letters that look like a Latin one in
  common fonts (``е`` U+0435 for ``e``), a small table taken from Unicode's ``confusables.txt``.
  A word is read in Latin only when every letter of it is Latin or a look-alike (``zеlda``,
  ``есоор``): a word with any other letter (``Иванов``) is real Cyrillic or Greek, and stays.
- **Markup**: HTML tag names (inline ones hide nothing when removed; block ones and ``<br>``
  separate words, so they read as a space).

Shared by the text normalizer (``textnorm``) and ``verify``'s normalized reading: data only.
"""

from __future__ import annotations

import re

_IGNORABLE_RANGES = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
    (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)  # fmt: skip
INVISIBLE = re.compile("[" + "".join(f"{chr(a)}-{chr(b)}" if a != b else chr(a) for a, b in _IGNORABLE_RANGES) + "]+")
# For str.translate: every invisible character removed.
DROP_INVISIBLE = {code: None for a, b in _IGNORABLE_RANGES for code in range(a, b + 1)}

# Letter -> the Latin letter it is confusable with (confusables.txt, the common ones only).
CONFUSABLES = {
    # Cyrillic
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "ѕ": "s", "і": "i",
    "ј": "j", "һ": "h", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ӏ": "l", "ү": "y", "ɡ": "g",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T",
    "У": "Y", "Х": "X", "Ѕ": "S", "І": "I", "Ј": "J", "Ԛ": "Q", "Ԝ": "W", "Ӏ": "I", "Ү": "Y",
    # Greek
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O",
    "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "ο": "o", "ν": "v", "ρ": "p", "α": "a", "ι": "i", "κ": "k",
    "υ": "u", "ϲ": "c", "ϳ": "j", "Ϲ": "C", "Ϳ": "J",
    # Armenian, and Latin letters outside the basic alphabet
    "օ": "o", "ս": "u", "ı": "i", "ɑ": "a", "ℓ": "l",
}  # fmt: skip
_HAS_CONFUSABLE = re.compile("[" + "".join(CONFUSABLES) + "]")
# A word that reads as Latin: Latin letters (Basic Latin, Latin-1, Extended-A and -B, Extended
# Additional), look-alikes, digits, "_" and combining marks, with no other letter beside it.
_LATIN_CLASS = "0-9A-Za-z_\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff\u0300-\u036f" + "".join(CONFUSABLES)
_LATIN_WORD = re.compile(f"(?<!\\w)[{_LATIN_CLASS}]+(?!\\w)")


def latin_words(text: str) -> list[tuple[int, int, str]]:
    """(start, end, the word in Latin) for each word of TEXT that holds a look-alike letter and
    reads as a Latin word (every letter Latin or a look-alike)."""
    if not _HAS_CONFUSABLE.search(text):
        return []
    out = []
    for match in _LATIN_WORD.finditer(text):
        word = match.group()
        if not word.isascii() and _HAS_CONFUSABLE.search(word):
            out.append((match.start(), match.end(), "".join(CONFUSABLES.get(ch, ch) for ch in word)))
    return out


def to_latin(text: str) -> str:
    """TEXT with every word that reads as Latin written in Latin (see ``latin_words``)."""
    words = latin_words(text)
    if not words:
        return text
    out, position = [], 0
    for start, end, latin in words:
        out += [text[position:start], latin]
        position = end
    out.append(text[position:])
    return "".join(out)


# HTML elements whose tags hide nothing (text runs on through them: ``zel<b>da</b>-q``).
INLINE_TAGS = frozenset(
    "a abbr b bdi bdo big cite code data del dfn em font i ins kbd mark q s samp small span strike strong sub sup time tt u var wbr".split()
)
# Tags that separate words (``Mark<br>Young``, ``<p>Mark</p><p>Young</p>``): read as a space.
BLOCK_TAGS = frozenset(
    """address article aside blockquote br caption dd details div dl dt figcaption figure footer h1 h2 h3 h4 h5 h6
    header hr img input label li main nav ol p pre section summary table tbody td tfoot th thead tr ul""".split()
)
# A start or end tag with optional attributes (quoted values may hold ">"), or a comment.
HTML_TAG = re.compile(r"""<!--.*?-->|</?([A-Za-z][A-Za-z0-9]*)(?:\s+(?:[^<>"']|"[^"]*"|'[^']*')*)?/?>""", re.DOTALL)


def tag_reading(match: re.Match) -> str | None:
    """What a reader sees for an HTML_TAG match: nothing, a space, or None (not a known tag)."""
    name = match.group(1)
    if name is None:
        return ""  # a comment
    name = name.lower()
    if name in INLINE_TAGS:
        return ""
    if name in BLOCK_TAGS:
        return " "
    return None


def markup_pieces(text: str) -> list[tuple[int, int, str]]:
    """(start, end, reading) of each known HTML tag of TEXT. A tag that separates words takes
    the white space around it, and a run of them (``</p> <p>``) reads as one space, so that
    ``Mark</p>\n<p>Young`` reads ``Mark Young``."""
    pieces: list[tuple[int, int, str]] = []
    for match in HTML_TAG.finditer(text):
        reading = tag_reading(match)
        if reading is None:
            continue
        start, end = match.span()
        if reading == " ":
            floor = pieces[-1][1] if pieces else 0
            while start > floor and text[start - 1].isspace():
                start -= 1
            while end < len(text) and text[end].isspace():
                end += 1
            if pieces and pieces[-1][2] == " " and pieces[-1][1] == start:
                start = pieces.pop()[0]
        pieces.append((start, end, reading))
    return pieces


def read_markup(text: str) -> str:
    """TEXT with its known HTML tags read as ``markup_pieces`` reads them."""
    out, position = [], 0
    for start, end, reading in markup_pieces(text):
        out += [text[position:start], reading]
        position = end
    out.append(text[position:])
    return "".join(out)


# A Markdown backslash escape: a backslash before ASCII punctuation stands for the punctuation.
MARKDOWN_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
# Markdown emphasis pairs whose markers belong to no identifier: ``*``, ``**``, ``***`` (also
# inside a word), ``~~``, and ``__`` not inside a word; and a single ``_`` at the edges of words
# around text without ``_`` (``_Mark_ Young``). A username's own underscores are not read so:
# ``_ymir_balder77_`` has one inside (``_ymir_`` is read as ``ymir``, and found as written too).
EMPHASIS = re.compile(
    r"(?<![*\\])(\*{1,3})(?=[^\s*])(.+?)(?<=[^\s*\\])\1(?!\*)"
    r"|(?<![~\\])(~~)(?=[^\s~])(.+?)(?<=[^\s~\\])~~(?!~)"
    r"|(?<![\w\\])(__)(?=[^\s_])(.+?)(?<=[^\s_\\])__(?!\w)"
    r"|(?<![\w\\])(_)(?=[^\s_])([^_\n]*?[^\s_\\])_(?!\w)"
)
EMPHASIS_GROUPS = ((1, 2), (3, 4), (5, 6), (7, 8))  # (marker, text) of each kind
