"""Pattern detectors for personal data in free text: emails, URLs, IP addresses, phone numbers.

One regular expression, over the kinds whose cheap hint is present in the text, finds every
candidate in a single pass; each candidate is then confirmed before it is replaced by a typed
placeholder such as ``[EMAIL]``. An IP address must parse. A phone number must pass
libphonenumber's checks (``phonenumbers``): a number written with ``+`` must be possible for the
country its code names; any other must be possible in one of the configured regions (valid, for
a run of digits without separators), must have 7 to 15 digits, and must not read as a date, a
grouped number (``1 000 000``) or an ISBN-like code.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

import phonenumbers

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
_URL = r"(?P<url>(?:\b[a-zA-Z][a-zA-Z0-9+.\-]{1,15}://|\bwww\.)[^\s<>\"'\[\]{}|\\^`]+)"
_IPV4 = r"(?P<ipv4>(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w]|\.\d))"
_IPV6 = r"(?P<ipv6>(?<![\w:.])(?=[0-9A-Fa-f:.]*::|(?:[0-9A-Fa-f]{1,4}:){7})[0-9A-Fa-f:.]{2,45}(?![\w:]))"
_PHONE = (
    r"(?P<phone>(?<![\w+\-.,/:])(?:"
    r"(?:\+\d{1,3}[ .\-]?)?(?:\(\d{1,5}\)[ .\-]?)?\d{1,8}(?:[ .\-]\d{1,8}){1,5}"  # separated groups
    r"|\+\d{7,15}"  # E.164, unseparated
    r"|\(\d{1,5}\)[ .\-]?\d{5,10}"  # (area) and the rest
    r"|\d{9,15}"  # a bare run long enough to dial
    r")(?![\w\-]|[.,/:]\d))"
)
# A date, alone or followed by the hour of a time (``2024-03-01 10`` of ``2024-03-01 10:30:00``).
_ISO_DATE = re.compile(r"^(?:\d{4}[-./ ]\d{1,2}[-./ ]\d{1,2}|\d{1,2}[-./ ]\d{1,2}[-./ ]\d{4})(?: \d{1,2})?$")
_GROUPS = re.compile(r"\d+")
# Regions whose numbering plans a number without a `+` is checked against: where learners are.
DEFAULT_PHONE_REGIONS = (
    "US", "GB", "IN", "DE", "FR", "ES", "IT", "NL", "NO", "SE", "PL", "TR", "IL", "PK", "NG", "ZA",
    "KE", "EG", "CN", "JP", "KR", "AU", "BR", "MX", "CO",
)


_ALTERNATIVES = {"email": _EMAIL, "url": _URL, "ipv4": _IPV4, "ipv6": _IPV6, "phone": _PHONE}
# Necessary conditions, each far cheaper than the pattern it guards: a kind whose hint fails
# cannot match anywhere in the text, so leaving its branch out changes no result.
_IPV4_HINT = re.compile(r"\d\.\d")
_PHONE_HINT = re.compile(r"\d(?:[ .\-()+/]{0,3}\d){6}")
_DIGIT = re.compile(r"\d")
_ASCII_DIGITS = "0123456789"


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
    groups = _GROUPS.findall(candidate)
    digits = sum(len(g) for g in groups)
    if not 7 <= digits <= 15 or _ISO_DATE.match(candidate):
        return False
    international = candidate.startswith("+")
    body = groups[1:] if international and len(groups) > 1 else groups
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

    def _replace(self, match: re.Match[str]) -> str:
        kind = match.lastgroup
        text = match.group()
        if kind == "ipv4":
            return PLACEHOLDERS["ip"]
        if kind == "ipv6":
            try:
                ipaddress.IPv6Address(text.split("%", 1)[0])
            except ValueError:
                return text
            return PLACEHOLDERS["ip"]
        if kind == "phone":
            return PLACEHOLDERS["phone"] if _is_phone(text, self.phone_regions) else text
        return PLACEHOLDERS[kind]

    def _regex(self, text: str) -> re.Pattern[str] | None:
        """The pattern over the kinds that can match TEXT at all, or None when none can."""
        branches = []
        if self._email and ("@" in text or "%40" in text):
            branches.append("email")
        if self._url and ("://" in text or "www." in text):
            branches.append("url")
        first = _first_digit(text) if self._ip or self._phone else -1
        if self._ip:
            if first >= 0 and _IPV4_HINT.search(text, first):
                branches.append("ipv4")
            if _may_hold_ipv6(text):
                branches.append("ipv6")
        if self._phone and first >= 0 and _PHONE_HINT.search(text, first):
            branches.append("phone")
        return _pattern(tuple(branches)) if branches else None

    def scrub(self, text: str) -> str:
        """TEXT with every detected item replaced by its placeholder."""
        regex = self._regex(text)
        return text if regex is None else regex.sub(self._replace, text)

    def find(self, text: str) -> list[tuple[str, int, int]]:
        """(kind, start, end) of every confirmed finding, for reports that must not print the value."""
        found = []
        regex = self._regex(text)
        if regex is None:
            return found
        for match in regex.finditer(text):
            if self._replace(match) != match.group():
                kind = match.lastgroup
                found.append(("ip" if kind in ("ipv4", "ipv6") else kind, match.start(), match.end()))
        return found
