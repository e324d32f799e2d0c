"""Finding planted people in anonymized output, whatever the form they were written in.

Written apart from ``anonymizer.verify`` on purpose: the set judges the run and verify both, so it
must not share their code. Every string of an output line (values and keys, JSON strings decoded)
is normalized the way a reader would undo the disguises, then searched with a plain regular
expression per identifier:

- JSON escapes, HTML entities and percent-encoding are undone until nothing changes, then NFKC
  and case folding; ``+`` is read as a space (query strings); the text as written is searched
  too (NFKC and case folding only), since decoding can hide what a reader sees;
- what a reader does not see is dropped (format characters, Unicode category ``Cf``; HTML tags,
  ``<br>`` and ``<p>`` read as a space; Markdown's backslash before punctuation, ``*``, ``~~``
  and ``__``), and Cyrillic and Greek letters that look Latin are read as the Latin letter;
- addresses written ``name (at) host (dot) org`` are also read as addresses, and an address cut
  off after its ``@`` is found from its local part, as is a local part alone when it holds six
  letters or digits and a digit or a separator;
- runs that read as base64 (standard or URL-safe, padded or not) are decoded and searched too;
- phones are compared by their last 9 digits; IPv4 addresses with their octets unpadded and ``-``,
  ``_``, a defanged ``[.]`` or a spaced `` . `` read as dots, and as a URL host may write them (one
  decimal or hex number, octal octets); user ids of 5 digits or more alone in text (also after
  ``#``, ``:``, ``-``, ``.``, zero-padded or as a float), shorter ones as a whole value or path
  segment;
- a word of another script, or of one written without spaces, glued to a value does not hide it;
- a username of two runs of letters and digits or more (six letters and digits in all) is also
  searched with any one of ``_``, ``-``, ``.``, a space or nothing between its runs.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
import unicodedata
from urllib.parse import unquote

from .people import PEOPLE, authored

_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})|\\([\"\\/])")


def _json_unescape(text: str) -> str:
    def one(match: re.Match) -> str:
        return chr(int(match.group(1), 16)) if match.group(1) else match.group(2)

    out = _JSON_ESCAPE.sub(one, text)
    try:  # surrogate pairs written as two escapes
        return out.encode("utf-16", "surrogatepass").decode("utf-16")
    except UnicodeError:
        return out


# Cyrillic and Greek letters a reader takes for Latin ones (lower case: read after case folding).
_LATIN = str.maketrans(dict(zip("аеорсхуіјѕһԁԛԝӏмтнвкοαρνικυϲβεζητμχ", "aeopcxyijshdqwlmthbkoapvikucbezhtmx")))
_BREAK = re.compile(r"(?:\s*</?(?:br|p|div|li|td|tr|h\d)\b[^<>]*>\s*)+", re.IGNORECASE)
_TAG = re.compile(r"<!--.*?-->|</?[A-Za-z][A-Za-z0-9]*\b[^<>]*>")


def _unseen(text: str) -> str:
    """TEXT without what a reader does not see: format characters, tags, Markdown markers."""
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    text = _TAG.sub("", _BREAK.sub(" ", text))
    text = re.sub(r"\\(?=[!-/:-@\[-`{-~])", "", text)
    return text.replace("*", "").replace("~~", "").replace("__", "")


def normalize(text: str) -> str:
    for _ in range(8):
        before = text
        text = unquote(html.unescape(_json_unescape(text)))
        if text == before:
            break
    return _unseen(unicodedata.normalize("NFKC", text).casefold()).translate(_LATIN).replace("+", " ")


_AT = re.compile(r"\s*[\(\[\{<]\s*at\s*[\)\]\}>]\s*|\s+at\s+|\s*@\s*")
_DOT = re.compile(r"\s*[\(\[\{<]\s*dot\s*[\)\]\}>]\s*|\s+dot\s+")


def deobfuscate(text: str) -> str:
    return _DOT.sub(".", _AT.sub("@", text))


# Letters that glue to a Latin letter or a digit: Latin ones and digits. A word of another script,
# or of one written without spaces (Chinese, Japanese), glued to a value leaves it readable.
_LATIN = r"0-9a-z\u00c0-\u024f"


def _bounded(value: str) -> str:
    """VALUE where a reader sees it as a word of its own: not glued to a Latin letter or digit
    where its own end is one (``_``, ``-``, ``.``, other punctuation and other scripts around it
    do not hide it)."""
    left = rf"(?<![{_LATIN}])" if re.match(rf"[{_LATIN}]", value[:1]) else ""
    right = rf"(?![{_LATIN}])" if re.match(rf"[{_LATIN}]", value[-1:]) else ""
    return left + re.escape(value) + right


def _bounded_runs(runs: list[str]) -> str:
    """RUNS joined by any one of ``_``, ``-``, ``.``, a space, or nothing, bounded as ``_bounded`` bounds a value."""
    body = "[-_. ]?".join(re.escape(run) for run in runs)
    left = rf"(?<![{_LATIN}])" if re.match(rf"[{_LATIN}]", runs[0][:1]) else ""
    right = rf"(?![{_LATIN}])" if re.match(rf"[{_LATIN}]", runs[-1][-1:]) else ""
    return left + body + right


_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{8,}={0,2}")


def _base64_decoded(text: str) -> list[str]:
    """The UTF-8 texts that base64 runs of TEXT decode to."""
    out = []
    runs = _BASE64.findall(text)
    for run in runs + [piece for run in runs if "/" in run for piece in run.split("/") if len(piece) >= 8]:
        body = run.rstrip("=")
        padded = body + "=" * (-len(body) % 4)
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                out.append(decode(padded.encode("ascii")).decode("utf-8"))
                break
            except (binascii.Error, ValueError):
                continue
    return out


_DEFANGED = re.compile(r"(?<=\d)(?:\[\.\]|\(\.\)|\{\.\}|\[dot\]|\(dot\)|\s+\.\s+)(?=\d)")
# A URL host that a browser reads as an IPv4 address: one number (decimal or hex), or four
# octets of which some are octal (a leading 0) or hex.
_NUMBER_HOST = re.compile(r"(?<![\w.])(?:0x[0-9a-f]{1,8}|\d{8,10})(?![\w.])")
_OCTAL_HOST = re.compile(r"(?<![\w.])(?:0[0-7]*|0x[0-9a-f]{1,2}|\d{1,3})(?:\.(?:0[0-7]*|0x[0-9a-f]{1,2}|\d{1,3})){3}(?![\w.])")


def _octet(part: str) -> int:
    if part.startswith("0x"):
        return int(part[2:], 16)
    return int(part, 8) if len(part) > 1 and part[0] == "0" else int(part)


def _dotted(number: int) -> str:
    return ".".join(str((number >> shift) & 255) for shift in (24, 16, 8, 0))


def _ip_text(text: str) -> str:
    """IPv4 addresses unpadded, dashes, underscores, defanged (``[.]``) and spaced dots between
    octets read as dots."""
    text = _DEFANGED.sub(".", text)
    text = re.sub(r"(?<=\d)[-_](?=\d{1,3}(?:[-_.]\d{1,3}){0,2}\b)", ".", text)
    return re.sub(r"\b0+(\d)", r"\1", text)


def _ip_host_text(text: str) -> str:
    """Numbers that a browser reads as an IPv4 host (``3405803821``, ``0xcb00712d``,
    ``0313.0.0161.055``) written as the dotted address."""
    text = _NUMBER_HOST.sub(lambda m: _dotted(int(m.group(), 0) if m.group().startswith("0x") else int(m.group())), text)

    def octets(match: re.Match) -> str:
        try:
            values = [_octet(part) for part in match.group().split(".")]
        except ValueError:
            return match.group()
        return ".".join(map(str, values)) if max(values) <= 255 else match.group()

    return _OCTAL_HOST.sub(octets, text)


class Searcher:
    """The compiled search for every identifier of PEOPLE."""

    def __init__(self, people=PEOPLE) -> None:
        self.patterns: list[tuple[int, str, str]] = []
        self.phones: list[tuple[int, str]] = []
        self.short_ids: dict[str, int] = {}
        for number, person in enumerate(people):
            for kind, value in person.values().items():
                folded = normalize(value)
                if kind == "phone":
                    self.phones.append((number, re.sub(r"\D", "", value)[-9:]))
                elif kind == "user_id" and len(value) < 5:
                    self.short_ids[value] = number
                elif kind == "user_id":
                    # Zero-padded too, and as a float (583021.0); not inside a longer number,
                    # a decimal or a version (0.583021, v1.583021), nor a decimal itself.
                    self.patterns.append((number, kind, r"(?<![\d])(?<!\d[.,])0*" + value + r"(?![\d])(?!\.0*[1-9])"))
                else:
                    self.patterns.append((number, kind, _bounded(folded)))
                if kind == "username":
                    # Retyped with other separators or none: its runs of letters and digits, in order.
                    runs = re.findall(r"[^\W_]+", folded)
                    if len(runs) >= 2 and len("".join(runs)) >= 6:
                        self.patterns.append((number, kind, _bounded_runs(runs)))
                if kind == "email":
                    local = folded.split("@")[0]
                    self.patterns.append((number, kind, _bounded(local + "@")))
                    if len(re.findall(r"[^\W_]", local)) >= 6 and re.search(r"[\d._\- ]", local):
                        self.patterns.append((number, kind, _bounded(local)))  # alone, when distinctive
            # The ids of what they made: a forum post or a submission opens it, and its author.
            for kind, value in authored(number).values().items():
                self.patterns.append((number, kind, _bounded(normalize(value))))
        # One expression for all: each identifier is a named group (its position in PATTERNS).
        self.regex = re.compile("|".join(f"(?P<p{i}>{pattern})" for i, (_, _, pattern) in enumerate(self.patterns)))

    def find(self, line: str) -> set[tuple[int, str]]:
        """(person, kind) of every identifier in one output LINE."""
        found: set[tuple[int, str]] = set()
        try:
            parsed = json.loads(line)
        except ValueError:
            parsed = line
        for text in _strings(parsed):
            self._find_in(text, found)
        return found

    def _find_in(self, raw: str, found: set, depth: int = 0) -> None:
        if depth < 2:
            for decoded in _base64_decoded(raw):
                self._find_in(decoded, found, depth + 1)
        text = normalize(raw)
        # The text as written too: decoding can hide what a reader sees (``%739026`` decodes to ``s9026``).
        written = _unseen(unicodedata.normalize("NFKC", raw).casefold()).translate(_LATIN).replace("+", " ")
        for variant in {text, deobfuscate(text), _ip_text(text), _ip_host_text(text), written}:
            for match in self.regex.finditer(variant):
                number, kind, _ = self.patterns[int(match.lastgroup[1:])]
                found.add((number, kind))
        digits = re.sub(r"\D", "", text)
        for number, tail in self.phones:
            if tail in digits:
                found.add((number, "phone"))
        # A short id is a person only as a whole value or a path segment ("47" in text is not).
        for segment in [text.strip()] + re.findall(r"/(\d+)(?=[/?#,]|$)", text):
            if segment in self.short_ids:
                found.add((self.short_ids[segment], "user_id"))


def _strings(value, depth: int = 0):
    """Every string of a parsed JSON value, keys included; numbers as text; JSON strings decoded too."""
    if depth > 40:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, depth + 1)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, (int, float)):
        yield str(value)
    else:
        yield value
        if value[:1] in "{[":
            try:
                decoded = json.loads(value)
            except ValueError:
                return
            yield from _strings(decoded, depth + 1)
