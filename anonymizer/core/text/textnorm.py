"""A decoded view of a text, with a map from every character of the view back to the original.

People and programs disguise identifiers in free text: ``jane&#64;example.com``,
``jane%2540example.com``, ``\\u0040``, ``Zo&euml;``, fullwidth ``ｊａｎｅ＠…``. The detectors and
the roster are run on a decoded copy (the *view*); what they find there is mapped back to a span
of the original, and that span is replaced in the original. The view itself is never output.

The rules, in the order applied (one *round*):

1. **JSON string escapes**: ``\\uXXXX`` (a surrogate pair as one character; a lone surrogate is
   left alone), ``\\"``, ``\\\\``, ``\\/``, ``\\b``, ``\\f``, ``\\n``, ``\\r``, ``\\t``
   (RFC 8259, section 7). Texts that are themselves JSON (JSInput answers, re-encoded payloads).
2. **HTML character references**: ``&name;``, ``&#DDD;``, ``&#xHH;``, decoded as Python's
   ``html.unescape`` does (the WHATWG HTML5 named-reference table, ``html.entities.html5``,
   including the legacy names that may omit the ``;``, and the numeric-reference fix-ups). A
   reference that does not decode is left as written.
3. **Percent-encoding**: each maximal run of ``%HH`` is decoded as UTF-8; a byte that does not
   start a complete UTF-8 character stays as written. ``+`` is not a space here (``a+b@x.org``).
4. **Markdown backslash escapes**: a backslash before ASCII punctuation is the punctuation
   (``kwame\\_nair57``, as forum editors make people write a username).
5. **HTML tags** (``anonymizer.core.text.lookalikes``): known inline tags and comments read as
   nothing (``zel<b>da</b>-q``), block tags and ``<br>`` with the white space around them as one
   space (``Mark<br>Young``); what is not a known tag stays (``a<3 and b>2``).
6. **Markdown emphasis**: paired ``*``, ``**``, ``***`` (also inside a word), ``~~``, and ``__``
   at word edges are removed, and a single ``_`` pair at word edges around text without ``_``
   (``_Mark_ Young``); a username's inner ``_`` is no emphasis (``_ymir_balder77_`` stays).
7. **Compatibility forms**: each character with its combining marks is put in NFKC
   (``unicodedata`` of the running Python: fullwidth ``＠`` and letters, ligatures, no-break and
   other spaces become their plain forms), then dashes (U+2010-U+2015, U+2212, U+FE58, U+FE63,
   U+FF0D) become ``-``.
8. **Invisible characters** (Unicode's default-ignorable code points: zero-width space and
   joiners, soft hyphen, word joiner, byte-order mark, bidirectional marks, variation
   selectors) are removed.
9. **Look-alike letters**: a word whose every letter is Latin or a Cyrillic, Greek or Armenian
   look-alike of one (``zеlda`` with a Cyrillic ``е``) is read in Latin; other words stay.

Rounds repeat until one changes nothing, at most ``MAX_ROUNDS`` times: ``%2540`` is ``%40`` after
one round and ``@`` after two, ``\\\\u0040`` is ``\\u0040`` then ``@``.

**Spans.** Each character of the view carries the span of the original it came from: a character
kept as is, its own; a decoded character, the whole unit it was decoded from (all of ``&#64;``,
all of ``%E7%8E%8B``, a base character with its marks); through several rounds, the union of the
units. A match ``[s, e)`` in the view maps to ``[start of s, end of e-1)`` in the original, so a
match that covers part of a unit widens to the whole unit. Replacements whose original spans
overlap after widening are merged into one (``apply``).

**Limits.** NFKC is applied per character with its combining marks (``unicodedata.combining``
non-zero), so that every span stays small; sequences that compose across base characters
(conjoining Hangul jamo) are left as written. Decoding is not done inside the replacement: a
replaced span is the whole original unit, so no half-decoded identifier is left around it.

**Fast path.** ``decode`` returns None when no rule applies (so a text whose view differs from
it always has a view: the native engine relies on it), and costs a few ``str`` checks for ASCII text
without ``&``, ``%``, ``\\``, ``<``, ``*``, ``~~`` or ``_``.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass

from . import lookalikes

MAX_ROUNDS = 4

_JSON_ESCAPE = re.compile(r"\\(?:u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|[\"\\/bfnrt])")
_JSON_SIMPLE = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_ENTITY = re.compile(r"&(?:#[0-9]{1,7};?|#[xX][0-9a-fA-F]{1,6};?|[A-Za-z][A-Za-z0-9]{1,31};?)")
_PERCENT = re.compile(r"(?:%[0-9A-Fa-f]{2})+")
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
_DASH_FOLD = str.maketrans({dash: "-" for dash in _DASHES})
_HAS_DASH = re.compile(f"[{_DASHES}]")


@dataclass(frozen=True)
class View:
    """TEXT, decoded; STARTS[i]:ENDS[i] is the span of the original that TEXT[i] came from."""

    text: str
    starts: list[int]
    ends: list[int]

    def origin(self, start: int, end: int) -> tuple[int, int]:
        """The span of the original that the view's [START, END) came from (END > START)."""
        return self.starts[start], self.ends[end - 1]


def identity(text: str) -> View:
    """TEXT as a view of itself."""
    return View(text, list(range(len(text))), list(range(1, len(text) + 1)))


def decode(text: str) -> View | None:
    """The decoded view of TEXT, or None when no rule changes it (then TEXT is its own view)."""
    # What an ASCII text must hold for a rule to apply, as plain ``in`` tests (far faster than a
    # regular expression with alternatives, or a loop).
    if (
        text.isascii()
        and "&" not in text
        and "%" not in text
        and "\\" not in text
        and "<" not in text
        and "*" not in text
        and "_" not in text
        and "~~" not in text
    ):
        return None
    view = None
    for _ in range(MAX_ROUNDS):
        changed = False
        for layer in _LAYERS:
            current = view.text if view is not None else text
            pieces = layer(current)
            if pieces is None:
                continue
            view = rebuild(view if view is not None else identity(text), pieces)
            changed = True
        if not changed:
            break
    return view


def apply(original: str, replacements: list[tuple[int, int, str]]) -> str:
    """ORIGINAL with each (start, end, replacement) of its own offsets replaced; overlapping
    spans (a match widened to a unit that another match also touches) become one, whose
    replacement is the distinct replacements in order."""
    if not replacements:
        return original
    merged: list[list] = []
    for start, end, new in sorted(replacements, key=lambda r: (r[0], -r[1])):
        if merged and start < merged[-1][1]:
            last = merged[-1]
            last[1] = max(last[1], end)
            if new not in last[2]:
                last[2].append(new)
        else:
            merged.append([start, end, [new]])
    out, position = [], 0
    for start, end, news in merged:
        out.append(original[position:start])
        out.append("".join(news))
        position = end
    out.append(original[position:])
    return "".join(out)


# Each layer returns None when it changes nothing, else [(start, end, decoded)] of its input.
Pieces = list[tuple[int, int, str]]


def rebuild(view: View, pieces: Pieces) -> View:
    """VIEW with each (start, end, decoded) of its text replaced; decoded characters take the
    union of the original spans of what they replace."""
    text, starts, ends = view.text, view.starts, view.ends
    out, new_starts, new_ends = [], [], []
    position = 0
    for start, end, decoded in pieces:
        out.append(text[position:start])
        new_starts.extend(starts[position:start])
        new_ends.extend(ends[position:start])
        out.append(decoded)
        new_starts.extend([starts[start]] * len(decoded))
        new_ends.extend([ends[end - 1]] * len(decoded))
        position = end
    out.append(text[position:])
    new_starts.extend(starts[position:])
    new_ends.extend(ends[position:])
    return View("".join(out), new_starts, new_ends)


def _json_layer(text: str) -> Pieces | None:
    if "\\" not in text:
        return None
    pieces = []
    for match in _JSON_ESCAPE.finditer(text):
        escape = match.group()
        if escape[1] in "uU" and len(escape) == 12:
            high, low = int(escape[2:6], 16), int(escape[8:12], 16)
            decoded = chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
        elif escape[1] == "u":
            code = int(escape[2:6], 16)
            if 0xD800 <= code <= 0xDFFF:
                continue  # a lone surrogate is no character
            decoded = chr(code)
        else:
            decoded = _JSON_SIMPLE[escape[1]]
        pieces.append((match.start(), match.end(), decoded))
    return pieces or None


def _entity_layer(text: str) -> Pieces | None:
    if "&" not in text:
        return None
    pieces = []
    for match in _ENTITY.finditer(text):
        reference = match.group()
        decoded = html.unescape(reference)
        if decoded != reference:
            pieces.append((match.start(), match.end(), decoded))
    return pieces or None


def _utf8_length(lead: int) -> int:
    """How many bytes the UTF-8 character that starts with LEAD has (0: not a lead byte)."""
    if lead < 0x80:
        return 1
    if 0xC2 <= lead <= 0xDF:
        return 2
    if 0xE0 <= lead <= 0xEF:
        return 3
    if 0xF0 <= lead <= 0xF4:
        return 4
    return 0


def _percent_layer(text: str) -> Pieces | None:
    if "%" not in text:
        return None
    pieces = []
    for match in _PERCENT.finditer(text):
        run = bytes.fromhex(match.group().replace("%", ""))
        base = match.start()
        index = 0
        while index < len(run):
            size = _utf8_length(run[index])
            if size:
                try:
                    decoded = run[index:index + size].decode("utf-8")
                except UnicodeDecodeError:
                    decoded = None
                if decoded is not None:
                    pieces.append((base + 3 * index, base + 3 * (index + size), decoded))
                    index += size
                    continue
            index += 1  # stays as written
    return pieces or None


def _compat_layer(text: str) -> Pieces | None:
    if text.isascii() or (unicodedata.is_normalized("NFKC", text) and not _HAS_DASH.search(text)):
        return None
    pieces = []
    index, length = 0, len(text)
    while index < length:
        end = index + 1
        while end < length and unicodedata.combining(text[end]):
            end += 1
        cluster = text[index:end]
        if not cluster.isascii():
            decoded = unicodedata.normalize("NFKC", cluster).translate(_DASH_FOLD)
            if decoded != cluster:
                pieces.append((index, end, decoded))
        index = end
    return pieces or None


def _markdown_escape_layer(text: str) -> Pieces | None:
    if "\\" not in text:
        return None
    pieces = [(m.start(), m.end(), m.group(1)) for m in lookalikes.MARKDOWN_ESCAPE.finditer(text)]
    return pieces or None


def _tag_layer(text: str) -> Pieces | None:
    if "<" not in text:
        return None
    return lookalikes.markup_pieces(text) or None


def _emphasis_layer(text: str) -> Pieces | None:
    if "*" not in text and "~~" not in text and "_" not in text:
        return None
    pieces = []
    for match in lookalikes.EMPHASIS.finditer(text):
        group = next(g for g, _ in lookalikes.EMPHASIS_GROUPS if match.group(g) is not None)
        size = len(match.group(group))
        pieces.append((match.start(), match.start() + size, ""))
        pieces.append((match.end() - size, match.end(), ""))
    return pieces or None


def _invisible_layer(text: str) -> Pieces | None:
    if text.isascii() or not lookalikes.INVISIBLE.search(text):
        return None
    return [(m.start(), m.end(), "") for m in lookalikes.INVISIBLE.finditer(text)]


def _latin_layer(text: str) -> Pieces | None:
    if text.isascii():
        return None
    return lookalikes.latin_words(text) or None


_LAYERS = (
    _json_layer,
    _entity_layer,
    _percent_layer,
    _markdown_escape_layer,
    _tag_layer,
    _emphasis_layer,
    _compat_layer,
    _invisible_layer,
    _latin_layer,
)
