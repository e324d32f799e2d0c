"""Pattern detectors for personal data in free text: emails, URLs, IP addresses, phone numbers.

One regular expression, over the kinds whose cheap hint is present in the text, finds every
candidate in a single pass; each candidate is then confirmed before it is replaced by a typed
placeholder such as ``[EMAIL]``. An IP address must parse. A phone number must pass
libphonenumber's checks (``phonenumbers``): a number written with ``+`` must be possible for the
country its code names; any other must be possible in one of the configured regions (valid, for
a run of digits without separators), must have 7 to 15 digits, and must not read as a date, a
grouped number (``1 000 000``) or an ISBN-like code. Groups may be parted by a space, ``.``, ``-``,
``/`` or ``_``, and the first three of these may have a space on each side (``617 - 555 - 0143``); a ``/``
must follow an area code (``030/1234567``, ``617/555/0143``).
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

import phonenumbers

from .glue import UNSPACED_RANGES

PLACEHOLDERS = {
    "email": "[EMAIL]",
    "url": "[URL]",
    "ip": "[IP]",
    "phone": "[PHONE]",
}
KINDS = tuple(PLACEHOLDERS)

# The lookbehind lets a match start only where a local part starts, and the domain has no nested
# repetition: both keep the search linear on long runs such as block ids (``type@problem+block@…``).
# ``%40`` is an ``@`` that a URL or form encoding left in the text.
_LOCAL = r"[\w.!#$%&'*+/=?^`{|}~-]"
_EMAIL = rf"(?P<email>(?<!{_LOCAL}){_LOCAL}+(?:@|%40)[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{{2,}})"
EMAIL_PATTERN = re.compile(_EMAIL)
EMAIL_CONTEXT = 256  # how far around its "@" an address is read


def email_at(data: bytes, at: int, floor: int, ceiling: int) -> str | None:
    """The email address whose ``@`` (or ``%40``) is at AT, looking no further than FLOOR and
    CEILING (the line it is on), or None."""
    before = data[max(floor, at - EMAIL_CONTEXT) : at].decode("utf-8", "replace")
    after = data[at : min(ceiling, at + EMAIL_CONTEXT)]
    if after.startswith(b"%40"):
        after = b"@" + after[3:]
    text = before + after.decode("utf-8", "replace")
    position = len(before)
    for match in EMAIL_PATTERN.finditer(text):
        if match.start() <= position < match.end():
            return match.group()
        if match.start() > position:
            break
    return None


# An address without a whole domain: cut off by the end of a truncated text (``jane.doe@exam``,
# ``jane.doe@``), or by anything else (``machebe797@qq</p>``, an intranet ``jane@mailhost``). A
# local part joined to ``@`` names someone whatever follows it; block keys' ``type@`` are no address.
_EMAIL_CUT = rf"(?P<emailcut>(?<!{_LOCAL}){_LOCAL}+@[\w-]*(?:\.[\w-]+)*)"
# Top-level domains that a host without a scheme must end with to be read as one: the common
# generic ones and the country codes that people use, without those that are also file
# extensions (``.py``, ``.md``, ``.sh``, ``.rs``, ``.so``, ``.cs``, ``.ps``, ``.mk``).
WEB_TLDS = (
    "com net org edu gov mil int info biz name pro io co me ly app dev ai tv fm gg gl to cc ws xyz site online "
    "tech page blog link live news club store shop cloud email travel museum mobi jobs "
    "us uk ca au nz ie de fr es it nl be ch at se no dk fi is pl pt ru ua cz gr hu ro tr il in pk cn jp kr tw "
    "hk sg my id ph th vn br mx ar cl pe ng ke za eg ma eu asia"
).split()
_TLD = "(?i:" + "|".join(sorted(WEB_TLDS, key=len, reverse=True)) + ")"
_URL_CHARS = r"[^\s<>\"'\[\]{}|\\^`]"
_URL = rf"(?P<url>(?:\b[a-zA-Z][a-zA-Z0-9+.\-]{{1,15}}://|\b[wW]{{3}}\.){_URL_CHARS}+)"
# A host without a scheme, then a path: ``linkedin.com/in/slug``. The path is required, so that
# ``main.py``, ``e.g.`` and ``v1.2.3`` are never a host.
_URL_BARE = (
    rf"(?P<urlbare>(?<![\w@.\-/:%])(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{{0,62}}[A-Za-z0-9])?\.)+{_TLD}"
    rf"(?::\d{{1,5}})?/{_URL_CHARS}*)"
)
# A letter or digit of a script written without spaces (``ip是203.0.113.45吗``, ``电话13800138000``)
# does not glue to an address or a number (``glue``): the lookarounds leave those scripts out.
_U = UNSPACED_RANGES
# Octets may be zero-padded (``192.168.001.023``); ``_`` may touch the address (``host_10.0.0.1``).
_OCTET = r"(?:25[0-5]|2[0-4]\d|[01]?\d?\d)"
# A dot may be defanged, as security reports write addresses (``203[.]0[.]113[.]45``, ``(dot)``),
# or spaced (``203 . 0 . 113 . 45``).
_DOT = r"(?:\.|\[\.\]|\(\.\)|\{\.\}|\[dot\]|\(dot\)| \. )"
_IPV4 = rf"(?P<ipv4>(?<![^\W_{_U}])(?<!\.){_OCTET}(?:{_DOT}{_OCTET}){{3}}(?![^\W_{_U}]|\.\d))"
# An address written with dashes inside a host name (``ip-10-0-1-23``, ``ec2-203-0-113-25.…``):
# only after a name part and its dash; ``_confirm`` checks that the part holds a letter.
_IPV4_DASHED = rf"(?P<ipdash>(?<=[A-Za-z0-9]-){_OCTET}(?:-{_OCTET}){{3}}(?![^\W_{_U}]|-\d))"
_IPV6 = rf"(?P<ipv6>(?<![^\W{_U}]|[:.])(?=[0-9A-Fa-f:.]*::|(?:[0-9A-Fa-f]{{1,4}}:){{7}})[0-9A-Fa-f:.]{{2,45}}(?![^\W{_U}]|:))"
# An IPv6 address as a Windows host name, dashes for colons (``2001-db8--1.ipv6-literal.net``;
# ``s`` begins a zone id).
_IPV6_LITERAL = r"(?P<ip6lit>(?<![\w.-])[0-9A-Fa-f]*-[0-9A-Fa-f-]*(?:s\w+)?(?=\.(?i:ipv6-literal\.net)\b))"
# A phone number may follow ``tel:`` or ``phone:`` directly, and may end with an extension.
_EXTENSION = r"(?:[ ]?(?i:x|ext\.?|extension)[ ]?\d{1,6})"
# Groups are separated by a space, ``.``, ``-`` or ``/`` (``030/1234567``, the German habit), either
# of the last three with a space on each side (``617 - 555 - 0143``), or ``_`` (``617_555_0143``).
_PHONE_SEP = r"(?:[ ]?[.\-/][ ]?|[ _])"
_PHONE = (
    rf"(?P<phone>(?:(?<![^\W{_U}]|[+\-.,/:])|(?<=[Tt][Ee][Ll]:)|(?<=[Pp][Hh][Oo][Nn][Ee]:))(?:"
    rf"(?:\+\d{{1,3}}[ .\-_]?)?(?:\(\d{{1,5}}\)[ .\-]?)?\d{{1,10}}(?:{_PHONE_SEP}\d{{1,10}}){{1,5}}"  # separated groups
    r"|\+\d{7,15}"  # E.164, unseparated
    r"|\(\d{1,5}\)[ .\-]?\d{5,10}"  # (area) and the rest
    r"|\d{9,15}"  # a bare run long enough to dial
    rf"){_EXTENSION}?(?![^\W{_U}]|-|[.,/:]\d))"
)
_EXTENSION_AT_END = re.compile(_EXTENSION + r"\Z")
# A date, alone or followed by the hour of a time (``2024-03-01 10`` of ``2024-03-01 10:30:00``).
_ISO_DATE = re.compile(r"^(?:\d{4}[-./ ]\d{1,2}[-./ ]\d{1,2}|\d{1,2}[-./ ]\d{1,2}[-./ ]\d{4})(?: \d{1,2})?$")
_GROUPS = re.compile(r"\d+")
_SPACED_SEPARATOR = re.compile(r" ?([.\-/]) ?")
_SPACE_BY_SEPARATOR = re.compile(r" [.\-/]|[.\-/] ")
# Regions whose numbering plans a number without a `+` is checked against: where learners are.
DEFAULT_PHONE_REGIONS = (
    "US", "GB", "IN", "DE", "FR", "ES", "IT", "NL", "NO", "SE", "PL", "TR", "IL", "PK", "NG", "ZA",
    "KE", "EG", "CN", "JP", "KR", "AU", "BR", "MX", "CO",
)


_ALTERNATIVES = {
    "email": _EMAIL, "emailcut": _EMAIL_CUT, "url": _URL, "urlbare": _URL_BARE, "ipv4": _IPV4, "ipdash": _IPV4_DASHED,
    "ipv6": _IPV6, "ip6lit": _IPV6_LITERAL, "phone": _PHONE,
}
_KIND_OF_BRANCH = {"email": "email", "emailcut": "email", "url": "url", "urlbare": "url", "ipv4": "ip",
                   "ipdash": "ip", "ipv6": "ip", "ip6lit": "ip", "phone": "phone"}
# Necessary conditions, each far cheaper than the pattern it guards: a kind whose hint fails
# cannot match anywhere in the text, so leaving its branch out changes no result.
_IPV4_HINT = re.compile(r"\d(?:[\[({ ]?\.[\])} ]?|[\[(]dot[\])])\d")
_IPV6_LITERAL_HINT = re.compile(r"(?i)ipv6-literal")
_IPV4_DASHED_HINT = re.compile(r"[A-Za-z0-9]-\d{1,3}-\d{1,3}-\d{1,3}-\d")
_URL_BARE_HINT = re.compile(rf"\.{_TLD}(?::\d{{1,5}})?/")
_PHONE_HINT = re.compile(r"\d(?:[ .\-()+/_]{0,3}\d){6}")
_DIGIT = re.compile(r"\d")
_ASCII_DIGITS = "0123456789"
# A block key's ``type@problem+block@…`` at the end of a text is no cut-off address.
_BLOCK_KEY_PART = re.compile(r"(?:^|[+:])(?:type|block)\Z")

# ---------------------------------------------------------------- obfuscated emails
# ``jane (at) example (dot) com``, ``jane[at]example[dot]com``, ``jane at example dot com``,
# ``jane @ example.com``: an "at" written out or spaced, a local part before it, and after it a
# domain whose labels are joined by "dot" written out or by ``.``, ending in one of WEB_TLDS or
# in any two letters (a country code: no file extension is in the way of an address).
# Around the core of a disguised "at" ("at" or "@"): spaces or brackets on both sides, or, for
# "@", a space on one side.
_BEFORE_AT = frozenset(" \t\n\r\f\v\u00a0([{<")
_AFTER_AT = frozenset(" \t\n\r\f\v\u00a0)]}>")
_SPACES = frozenset(" \t\n\r\f\v\u00a0")
_BRACKETS = frozenset("()[]{}<>")
_DOMAIN_LABEL = re.compile(r"[^\W_](?:[\w-]{0,62}[^\W_])?")
_DOMAIN_DOT = re.compile(r"\s*[(\[{<]\s*(?:[dD][oO][tT]|\.)\s*[)\]}>]\s*|\s+[dD][oO][tT]\s+|\.")
_LOCAL_CHARS = frozenset("._+-")
_MAX_LABELS = 16
_TLDS = frozenset(WEB_TLDS)
# Where "at" is an ordinary word and the domain is written with plain dots ("available at
# docs.example.org"), the address must look like one: a local part with ``.``, ``_``, ``-``,
# ``+`` or a digit, or a domain of a mail provider.
MAIL_PROVIDERS = frozenset(
    "gmail googlemail yahoo hotmail outlook live msn icloud me mac aol protonmail proton gmx web yandex mail "
    "qq 163 126 naver daum rediffmail zoho fastmail".split()
)


def _local_start(text: str, at: int) -> int:
    """Where the local part that ends at AT starts (AT itself when there is none)."""
    start = at
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] in _LOCAL_CHARS):
        start -= 1
    while start < at and text[start] in _LOCAL_CHARS:
        start += 1
    return start


def _is_email_tld(label: str) -> bool:
    return label.lower() in _TLDS or (len(label) == 2 and label.isascii() and label.isalpha())


def _domain_end(text: str, start: int) -> tuple[int, bool]:
    """The end of the longest domain at START whose last label is a known TLD (START when there
    is none), and whether any of its dots was written out."""
    label = _DOMAIN_LABEL.match(text, start)
    best, spelled, spelled_best = start, False, False
    for _ in range(_MAX_LABELS):  # bounded, so that a text of many "at"s costs linear time
        if label is None:
            break
        dot = _DOMAIN_DOT.match(text, label.end())
        if dot is None:
            break
        spelled = spelled or dot.group() != "."
        label = _DOMAIN_LABEL.match(text, dot.end())
        if label is not None and _is_email_tld(label.group()):
            best, spelled_best = label.end(), spelled
    return best, spelled_best


def _at_cores(text: str) -> list[tuple[int, int]]:
    """(start, end) of each "at" or "@" that may stand for the ``@`` of an address, in order.
    Found with ``str.find``: a regular expression scan costs several times more on prose."""
    low = text.lower()
    cores = []
    for needle in ("at", "@"):
        index = low.find(needle)
        while index >= 0:
            end = index + len(needle)
            before = low[index - 1] if index else ""
            after = low[end] if end < len(low) else ""
            if (before in _BEFORE_AT and after in _AFTER_AT and before and after) or (
                needle == "@" and (before in _SPACES or after in _SPACES) and (before or after)
            ):
                cores.append((index, end))
            index = low.find(needle, end)
    if len(cores) > 1:
        cores.sort()
    return cores


def _at_token(text: str, start: int, end: int) -> tuple[int, int]:
    """The span of the disguised "at" whose core is TEXT[START:END], with its spaces and brackets."""
    while start > 0 and (text[start - 1] in _SPACES or (text[start - 1] in _BRACKETS and text[start] not in _BRACKETS)):
        start -= 1
    while end < len(text) and (text[end] in _SPACES or (text[end] in _BRACKETS and text[end - 1] not in _BRACKETS)):
        end += 1
    return start, end


def obfuscated_emails(text: str) -> list[tuple[int, int]]:
    """(start, end) of every address written with its "at" (and maybe "dot") disguised."""
    found: list[tuple[int, int]] = []
    if "@" not in text and "at" not in text and "AT" not in text and "At" not in text and "aT" not in text:
        return found
    for core in _at_cores(text):
        at_start, at_end = _at_token(text, *core)
        start = _local_start(text, at_start)
        if start == at_start or (found and start < found[-1][1]):
            continue
        end, spelled = _domain_end(text, at_end)
        if end == at_end:
            continue
        if text[at_start:at_end].strip().lower() == "at" and not spelled:
            # "at" as an ordinary word before a domain with plain dots: only an address that
            # looks like one ("available at docs.example.org" is not).
            local = text[start:at_start]
            provider = text[at_end:end].split(".", 1)[0].lower()
            if not (any(ch in _LOCAL_CHARS or ch.isdigit() for ch in local) or provider in MAIL_PROVIDERS):
                continue
        found.append((start, end))
    return found


def _first_digit(text: str) -> int:
    """Where TEXT's first decimal digit is, or -1: ``str.find`` per ASCII digit, far cheaper
    than a scan with ``\\d``, unless the text has other scripts, whose digits ``\\d`` also finds."""
    if not text.isascii():
        match = _DIGIT.search(text)
        return match.start() if match else -1
    first = -1
    for digit in _ASCII_DIGITS:
        at = text.find(digit, 0, first) if first >= 0 else text.find(digit)
        if at >= 0:
            first = at
    return first


def _may_hold_ipv6(text: str) -> bool:
    # The IPv6 branch needs a "::" or seven "hex:" groups (its lookahead), so seven colons.
    return "::" in text or text.count(":") >= 7


@lru_cache(maxsize=64)
def _pattern(branches: tuple[str, ...]) -> re.Pattern[str]:
    """One pattern over BRANCHES (in precedence order: email, url, ipv4, ipv6, phone)."""
    return re.compile("|".join(_ALTERNATIVES[branch] for branch in branches))


def _is_phone(candidate: str, regions: tuple[str, ...] = DEFAULT_PHONE_REGIONS) -> bool:
    # Judged as written without the spaces around a separator, and with "-" for "_" (which
    # libphonenumber does not read): ``617 - 555 - 0143`` as ``617-555-0143``.
    candidate = _EXTENSION_AT_END.sub("", candidate)
    spaced = _SPACE_BY_SEPARATOR.search(candidate) is not None
    candidate = _SPACED_SEPARATOR.sub(r"\1", candidate).replace("_", "-")
    groups = _GROUPS.findall(candidate)
    if spaced and len(groups[-1]) < 4 and not candidate.startswith("+"):
        return False  # 120 - 145 - 160: a range of pages; a number ends with 4 digits or more
    digits = sum(len(g) for g in groups)
    if not 7 <= digits <= 15 or _ISO_DATE.match(candidate):
        return False
    international = candidate.startswith("+")
    body = groups[1:] if international and len(groups) > 1 else groups
    if "/" in candidate and not international and not (
        (len(groups[0]) >= 3 and groups[0][0] == "0") or (len(groups[0]) == 3 and digits == 10)
    ):
        # A slash follows an area code with its trunk 0 (030/1234567) or a North American one
        # (617/555/0143); elsewhere it parts years, dates and ratios (2019/2020, 1234/5678).
        return False
    if any(len(g) == 1 for g in body[1:]):
        return False  # single digits between separators: ISBNs, list numbers, not a dialled number
    if (
        not international
        and "(" not in candidate
        and len(groups) > 1
        and all(len(g) == 3 for g in groups[1:])
        and (len(groups[0]) < 3 or "." in candidate)
    ):
        return False  # 1 000 000 or 12.345.678: thousands grouping (612 345 678 is a Spanish mobile)
    try:
        if international:
            return phonenumbers.is_possible_number(phonenumbers.parse(candidate, None))
        check = phonenumbers.is_valid_number if len(groups) == 1 else phonenumbers.is_possible_number
        for region in regions:
            try:
                if check(phonenumbers.parse(candidate, region)):
                    return True
            except phonenumbers.NumberParseException:
                continue
    except phonenumbers.NumberParseException:
        return False
    return False


def _host_part_has_letter(text: str, start: int) -> bool:
    """Whether the host-name part that ends just before START (a dash) holds a letter."""
    index = start - 1
    while index > 0 and (text[index - 1].isalnum() or text[index - 1] in "-_"):
        index -= 1
        if text[index].isalpha():
            return True
    return False


class TextScrubber:
    """Replaces what the chosen detectors find in a string; reusable and thread-safe."""

    def __init__(self, kinds: tuple[str, ...] = KINDS, phone_regions: tuple[str, ...] = DEFAULT_PHONE_REGIONS) -> None:
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown detectors: {sorted(unknown)}")
        self.kinds = tuple(kinds)
        self.phone_regions = tuple(phone_regions)
        self._email, self._url = "email" in kinds, "url" in kinds
        self._ip, self._phone = "ip" in kinds, "phone" in kinds

    def _confirm(self, match: re.Match[str]) -> int:
        """Where the finding of MATCH ends (an IPv6 address may leave trailing punctuation out),
        or -1 when the candidate is not confirmed."""
        branch = match.lastgroup
        end = match.end()
        if branch == "ipv6":
            candidate = match.group()
            if candidate.strip(":.") == "":  # "::" alone (the unspecified address) is punctuation in prose
                return -1
            while candidate:
                try:
                    ipaddress.IPv6Address(candidate.split("%", 1)[0])
                    return match.start() + len(candidate)
                except ValueError:
                    if candidate[-1] not in ".:":
                        return -1
                    candidate = candidate[:-1]
            return -1
        if branch == "phone":
            return end if _is_phone(match.group(), self.phone_regions) else -1
        if branch == "ip6lit":
            try:
                ipaddress.IPv6Address(match.group().split("s", 1)[0].replace("-", ":"))
            except ValueError:
                return -1
            return end
        if branch == "ipdash":
            return end if _host_part_has_letter(match.string, match.start()) else -1
        if branch == "emailcut":
            local = match.group().split("@", 1)[0]
            return -1 if _BLOCK_KEY_PART.search(local) else end
        return end

    def _replace(self, match: re.Match[str]) -> str:
        end = self._confirm(match)
        if end < 0:
            return match.group()
        return PLACEHOLDERS[_KIND_OF_BRANCH[match.lastgroup]] + match.string[end:match.end()]

    def _regex(self, text: str) -> re.Pattern[str] | None:
        """The pattern over the kinds that can match TEXT at all, or None when none can."""
        branches = []
        if self._email and "@" in text:
            branches += ("email", "emailcut")
        elif self._email and "%40" in text:
            branches.append("email")
        if self._url:
            if "://" in text or "www." in text or "WWW." in text:
                branches.append("url")
            if "/" in text and _URL_BARE_HINT.search(text):
                branches.append("urlbare")
        first = _first_digit(text) if self._ip or self._phone else -1
        if self._ip:
            if first >= 0 and _IPV4_HINT.search(text, first):
                branches.append("ipv4")
            if first >= 0 and "-" in text and _IPV4_DASHED_HINT.search(text):
                branches.append("ipdash")
            if _may_hold_ipv6(text):
                branches.append("ipv6")
            if "-" in text and _IPV6_LITERAL_HINT.search(text):
                branches.append("ip6lit")
        if self._phone and first >= 0 and _PHONE_HINT.search(text, first):
            branches.append("phone")
        return _pattern(tuple(branches)) if branches else None

    def spans(self, text: str, obfuscated: list[tuple[int, int]] | None = None) -> list[tuple[int, int, str]]:
        """(start, end, placeholder) of every confirmed finding, leftmost first, not overlapping
        (OBFUSCATED: the obfuscated emails of TEXT, when already known)."""
        if obfuscated is None:
            obfuscated = obfuscated_emails(text) if self._email else []
        found = [(start, end, PLACEHOLDERS["email"]) for start, end in obfuscated]
        regex = self._regex(text)
        if regex is not None:
            for match in regex.finditer(text):
                end = self._confirm(match)
                if end >= 0:
                    found.append((match.start(), end, PLACEHOLDERS[_KIND_OF_BRANCH[match.lastgroup]]))
        found.sort(key=lambda span: (span[0], -span[1]))
        chosen: list[tuple[int, int, str]] = []
        for span in found:
            if not chosen or span[0] >= chosen[-1][1]:
                chosen.append(span)
        return chosen

    def scrub(self, text: str) -> str:
        """TEXT with every detected item replaced by its placeholder."""
        obfuscated = obfuscated_emails(text) if self._email else None
        if obfuscated:
            out, position = [], 0
            for start, end, placeholder in self.spans(text, obfuscated):
                out += (text[position:start], placeholder)
                position = end
            return "".join(out) + text[position:] if out else text
        regex = self._regex(text)
        return text if regex is None else regex.sub(self._replace, text)

    def find(self, text: str) -> list[tuple[str, int, int]]:
        """(kind, start, end) of every confirmed finding, for reports that must not print the value."""
        kinds = {placeholder: kind for kind, placeholder in PLACEHOLDERS.items()}
        return [(kinds[placeholder], start, end) for start, end, placeholder in self.spans(text)]
