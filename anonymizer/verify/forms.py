"""The forms in which an identifier can appear in a package, and the normalized reading of text.

An identifier is searched as written, URL-encoded and JSON-escaped (once, and twice for JSON
inside a JSON string); IPv4 addresses also zero-padded and with ``-`` or ``_`` for dots, phones
by their digits and with other separators, usernames with other separators or none.
``normalize_text`` reads text the way a person does
(escapes, entities and percent-encoding undone, NFKC, case folded); it is for searching only.
"""

from __future__ import annotations

import html
import json
import re
import unicodedata
from urllib.parse import quote, quote_plus, unquote

from ..core.text import lookalikes
from ..core.text import variants as username_variants
from ..core.text.mentions import default_common_words
# The boundary rule on normalized text (shared with the scrubber): a letter or digit of the same
# kind next to a match glues it into a longer word; one of a script written without spaces, or of
# another script, does not.
from ..core.text.glue import stands_alone  # noqa: F401  (re-exported for the scan)

SUBSTRING_MIN_LENGTH = 6
NUMERIC_SUBSTRING_MIN_DIGITS = 10
# Words that the logs themselves use (enrollment modes, roles, event sources, device classes,
# placeholders): as account names they are checked in identifier fields only.
COMMON_WORDS = frozenset(
    """
    honor audit verified professional credit masters executive-education no-id-professional
    staff student learner instructor admin administrator teacher beta_tester moderator
    anonymous unknown other none null true false test tester demo guest user username
    server browser mobile desktop tablet robot bot android iphone ipad windows linux
    chrome firefox safari edge opera course problem video forum default
    """.split()
)


_PLAIN = re.compile(r"[A-Za-z0-9_.~-]+")


def forms_of(value: str) -> list[tuple[str, bytes]]:
    """VALUE as it can appear in output, ASCII-lowercased: as written, URL-encoded, JSON-escaped."""
    if _PLAIN.fullmatch(value):
        return [("as written", value.encode().lower())]  # every encoding leaves these characters alone
    if value.isascii():
        return _ascii_forms(value)
    out: dict[bytes, str] = {}
    variants = (value,) if value.isascii() else dict.fromkeys((value, value.lower(), value.upper(), value.title()))
    for variant in variants:
        url = quote(variant, safe="")
        single = json.dumps(variant)[1:-1]
        candidates = [
            ("as written", variant),
            ("URL-encoded", url),
            ("URL-encoded", url.replace("%20", "+")),
            ("JSON-escaped", single),
            ("JSON-escaped", json.dumps(single)[1:-1]),
        ]
        if "/" in variant:
            candidates.append(("URL-encoded", quote(variant)))
            candidates.append(("URL-encoded", quote_plus(variant)))
        if not variant.isascii():
            unescaped = json.dumps(variant, ensure_ascii=False)[1:-1]
            candidates.append(("JSON-escaped", unescaped))
            candidates.append(("JSON-escaped", json.dumps(unescaped, ensure_ascii=False)[1:-1]))
        for label, text in candidates:
            try:
                form = text.encode("utf-8").lower()
            except UnicodeEncodeError:
                continue
            out.setdefault(form, label)
    return [(label, form) for form, label in out.items()]


# Each ASCII character URL-encoded, as ``quote`` writes it with nothing safe, and with "/" safe.
_URL = {code: quote(chr(code), safe="") for code in range(128)}
_URL_PATH = {**_URL, ord("/"): "/"}
_JSON_ASCII = json.encoder.encode_basestring_ascii  # the C function that json.dumps calls


def _ascii_forms(value: str) -> list[tuple[str, bytes]]:
    """``forms_of`` for an ASCII VALUE, with the same result, written with translate tables and
    the JSON encoder's C function: a roster has hundreds of thousands of them."""
    url = value.translate(_URL)
    single = _JSON_ASCII(value)[1:-1]
    candidates = [
        ("as written", value),
        ("URL-encoded", url),
        ("URL-encoded", url.replace("%20", "+")),
        ("JSON-escaped", single),
        ("JSON-escaped", _JSON_ASCII(single)[1:-1]),
    ]
    if "/" in value:
        path = value.translate(_URL_PATH)
        candidates.append(("URL-encoded", path))
        candidates.append(("URL-encoded", quote_plus(value)))
    out: dict[bytes, str] = {}
    for label, text in candidates:
        out.setdefault(text.encode().lower(), label)
    return [(label, form) for form, label in out.items()]


def searched_as_substring(value: str) -> bool:
    """Whether VALUE is searched everywhere, or (short, numeric or common) in identifier fields only."""
    # A character of the CJK scripts says about as much as a syllable: it counts three.
    if value.isascii():
        if len(value) < SUBSTRING_MIN_LENGTH:
            return False
    elif sum(3 if ord(c) >= 0x2E80 else 1 for c in value) < SUBSTRING_MIN_LENGTH:
        return False
    if value.isascii() and value.isdigit() and len(value) < NUMERIC_SUBSTRING_MIN_DIGITS:
        return False
    return value.lower() not in COMMON_WORDS


def field_value_key(value: str) -> bytes:
    """What the field check reads of VALUE in the output: lowercased, up to a character JSON escapes."""
    data = value.encode("utf-8", "replace").lower()
    cut = re.search(rb'["\\]', data)
    return data[: cut.start()] if cut else data


# ---------------------------------------------------------------- normalized text

# Lines worth a second, normalized reading: they hold an entity, a percent sign, a JSON escape,
# a backslash (a Markdown escape such as ``\_``), an HTML tag or Markdown emphasis, a character
# outside ASCII (fullwidth and other compatibility forms, other case of non-ASCII letters,
# invisible characters, look-alike letters) or an address written with "at" for "@". Other lines
# read the same either way. Found with bytes.find (a regular expression with alternatives reads
# a few MB/s only).
SUSPECT_MARKERS = (b"&", b"%", b"\\u", b"\\\\", b"<", b"*", b"~~", b"__", b" _", b"\"_")
AT_MARKERS = (b" at ", b"at)", b"at]", b" @", b"@ ")  # lines also read as obfuscated addresses
NON_ASCII = re.compile(rb"[\x80-\xff]")
_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})|\\([\"\\/])")
# An address written with "at" and "dot": ``(at)``, ``[dot]`` and the like, `` at `` and `` dot ``
# between spaces, and ``@`` with spaces around it, each read with the white space around it. The
# regular expressions find the word or sign itself, which begins with a literal, and
# ``_read_around`` takes the white space on each side (a pattern that begins with ``\s*`` is
# tried at every character, some 1,000 times slower on a long line). The same reading as
# ``re.sub(r"\s*[(\[{<]\s*at\s*[)\]}>]\s*|\s+at\s+|\s*@\s*", "@", text)`` (and alike for "dot").
_OBFUSCATED_AT = re.compile(r"[(\[{<]\s*at\s*[)\]}>]|(?<=\s)at(?=\s)|@")
_OBFUSCATED_DOT = re.compile(r"[(\[{<]\s*dot\s*[)\]}>]|(?<=\s)dot(?=\s)")
# Between digits, any run of dashes, dots, slashes, parentheses and spaces reads as one space
# (a phone's own groups are searched joined by spaces too).
_PHONE_SEPARATORS = re.compile(r"(?<=\d)[\s\-./()_]+(?=\d)")
READING_KIND = {"obfuscated address": "email", "phone separators": "phone"}
LOCAL_PART_MIN = 4  # an address cut after its "@" is still found from a local part this long
LOCAL_PART_ALONE = "truncated address"  # the scan's label for a cut address: reported after a whole one


_TO_UNDO = re.compile(r"[\\&%+<*]|~~|__|(?<![\w\\])_")


def _unescape_json(match: re.Match) -> str:
    return chr(int(match.group(1), 16)) if match.group(1) else match.group(2)


def _emphasis(match: re.Match) -> str:
    if match.group(7) is not None and match.start() == 0 and match.end() == len(match.string):
        return match.group()  # a value that is all of it (a username ``_ymir_``) is read as written
    return next(match.group(text) for marker, text in lookalikes.EMPHASIS_GROUPS if match.group(marker) is not None)


def normalize_text(text: str) -> str:
    """TEXT as a reader sees it: JSON escapes (at any depth), HTML entities and percent-encoding
    (double too), Markdown backslash escapes, HTML tags and Markdown emphasis undone until
    nothing changes, then NFKC (fullwidth forms), invisible characters removed, words of Latin
    and look-alike letters read in Latin, case folded, and ``+`` read as the space it is in a
    query string. For searching only: never written out."""
    if text.isascii() and not _TO_UNDO.search(text):
        return text.lower()  # nothing to undo: the common case, fast
    for _ in range(8):
        before = text
        if "\\" in text:
            text = _JSON_ESCAPE.sub(_unescape_json, text)
        if "&" in text:
            text = html.unescape(text)
        if "%" in text:
            text = unquote(text)
        if "\\" in text:
            text = lookalikes.MARKDOWN_ESCAPE.sub(r"\1", text)
        if "<" in text:
            text = lookalikes.read_markup(text)
        if "*" in text or "~~" in text or "_" in text:
            text = lookalikes.EMPHASIS.sub(_emphasis, text)
        if text == before:
            break
    if _SURROGATE.search(text):
        text = _whole_characters(text)
    text = unicodedata.normalize("NFKC", text)
    if not text.isascii():
        text = lookalikes.to_latin(text.translate(lookalikes.DROP_INVISIBLE))
    return text.casefold().translate(_LOOK_ALIKES)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _whole_characters(text: str) -> str:
    """TEXT with the surrogate pairs its JSON escapes spelled (``\\ud83d\\ude00``) joined into
    their characters, and a lone surrogate (which a learner can type as an escape) read as U+FFFD:
    the automata take whole characters only."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


# Hyphens and dashes that NFKC leaves alone read as "-"; "+" reads as the space it is in a query.
_LOOK_ALIKES = str.maketrans({**{chr(c): "-" for c in (0x2010, 0x2011, 0x2012, 0x2013, 0x2014, 0x2212)}, "+": " "})


def deobfuscate(text: str) -> str:
    """Normalized TEXT with ``(at)``, ``[dot]``, `` at ``, `` dot `` and spaces around ``@`` read as an address."""
    return _read_around(_OBFUSCATED_DOT, ".", _read_around(_OBFUSCATED_AT, "@", text))


def _read_around(signs: re.Pattern, reading: str, text: str) -> str:
    """TEXT with each of SIGNS, and the white space on each side of it, read as READING; a bare
    word ("at", not bracketed) only with white space of its own before it (the white space after
    a previous sign is that sign's)."""
    if not signs.search(text):
        return text
    out, done = [], 0
    for match in signs.finditer(text):
        start, end = match.start(), match.end()
        if start < done:
            continue
        left = start
        while left > done and text[left - 1].isspace():
            left -= 1
        if left == start and text[start].isalpha():
            continue  # " at " needs a space before it that a previous sign did not take
        while end < len(text) and text[end].isspace():
            end += 1
        out.append(text[done:left])
        out.append(reading)
        done = end
    out.append(text[done:])
    return "".join(out)


def space_phone_separators(text: str) -> str:
    """TEXT with each run of separators between two digits read as one space."""
    return _PHONE_SEPARATORS.sub(" ", text)


def extra_forms(kind: str, value: str) -> list[tuple[str, bytes]]:
    """How an IP address, a phone number or a username of the inputs is also written: zero-padded
    octets, dashes and underscores for dots (host names such as ``ip-10-0-1-23``), a defanged
    ``[.]``, the one number (decimal, hex) or octal octets of a URL host, the 6to4 prefix of an
    IPv6 address; a phone's digits alone or with other separators; a username with one other
    separator throughout or none (``ymir-balder77``, ``ymirbalder77``: the scrubber's variants,
    ``anonymizer.core.text.variants``); an email's distinctive local part alone (``zq.1999``)."""
    if kind == "email":
        # Its local part alone, where the scrubber finds one: reported as an address cut short
        # (the scan reports a whole address before it).
        return [(LOCAL_PART_ALONE, local.encode("utf-8")) for local in username_variants.local_parts(value, default_common_words())]
    if kind == "username":
        found = username_variants.runs(value, default_common_words())
        spellings = username_variants.spellings(found) if found is not None else []
        return [("other separators", form.encode("utf-8").lower()) for form in spellings if form != value.casefold()]
    if kind != "ip" and kind != "phone":
        return []
    forms: list[str] = []
    if kind == "ip" and _IPV4_TEXT.fullmatch(value):
        octets = value.split(".")
        forms = [".".join(o.zfill(3) for o in octets), "-".join(octets), "_".join(octets)]
        forms += [dot.join(octets) for dot in ("[.]", "(.)", "{.}", "[dot]", "(dot)", " . ")]  # defanged, spaced
        if all(int(o) <= 255 for o in octets):
            # As a URL host may write it (a browser reads each as the address): one number in
            # decimal or hex, octal octets; and as the 6to4 prefix of an IPv6 address.
            number = int.from_bytes(bytes(int(o) for o in octets), "big")
            forms += [str(number), f"0x{number:08x}", ".".join(f"0{int(o):o}" if int(o) else "0" for o in octets),
                      f"2002:{number >> 16:x}:{number & 0xFFFF:x}:"]
    elif kind == "phone":
        digits = re.sub(r"\D", "", value)
        groups = re.findall(r"\d+", value)
        if len(digits) >= 9:
            forms = [digits, "+" + digits]
        forms.append(re.sub(r"[\s()]", "", value))  # as in a tel: link
        variants = [groups]
        if value.lstrip().startswith("+") and len("".join(groups[1:])) >= 7:
            variants.append(groups[1:])  # the number without its country code
        for parts in variants:
            forms += ["-".join(parts), ".".join(parts), "\u2013".join(parts), " ".join(parts), "/".join(parts), "_".join(parts), " - ".join(parts)]
            if len(parts) > 2:  # a slash after the area code only (030/1234567, 617/555-0143)
                forms += [parts[0] + "/" + sep.join(parts[1:]) for sep in ("", " ", "-")]
    return [("disguised form", form.encode("utf-8").lower()) for form in dict.fromkeys(forms) if form != value]


_IPV4_TEXT = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")

