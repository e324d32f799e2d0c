"""Pattern detectors for personal data in free text: emails, URLs, IP addresses, phone numbers.

One combined regular expression finds every candidate in a single pass; each candidate is
then confirmed (an IP must parse, a phone number must have a plausible digit count and not be
a date) before it is replaced by a typed placeholder such as ``[EMAIL]``.
"""

from __future__ import annotations

import ipaddress
import re

PLACEHOLDERS = {
    "email": "[EMAIL]",
    "url": "[URL]",
    "ip": "[IP]",
    "phone": "[PHONE]",
}
KINDS = tuple(PLACEHOLDERS)

# The lookbehind lets a match start only where a local part starts, and the domain has no nested
# repetition: both keep the search linear on long runs such as block ids (``type@problem+block@…``).
_LOCAL = r"[\w.!#$%&'*+/=?^`{|}~-]"
_EMAIL = rf"(?P<email>(?<!{_LOCAL}){_LOCAL}+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{{2,}})"
EMAIL_PATTERN = re.compile(_EMAIL)
_URL = r"(?P<url>(?:\b[a-zA-Z][a-zA-Z0-9+.\-]{1,15}://|\bwww\.)[^\s<>\"'\[\]{}|\\^`]+)"
_IPV4 = r"(?P<ipv4>(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w]|\.\d))"
_IPV6 = r"(?P<ipv6>(?<![\w:.])(?=[0-9A-Fa-f:.]*::|(?:[0-9A-Fa-f]{1,4}:){7})[0-9A-Fa-f:.]{2,45}(?![\w:]))"
_PHONE = (
    r"(?P<phone>(?<![\w+\-.])"
    r"(?:\+\d{1,3}[ .\-]?)?"
    r"(?:\(\d{1,5}\)[ .\-]?)?"
    r"\d{1,5}(?:[ .\-]\d{2,5}){1,4}"
    r"(?![\w\-]|\.\d))"
)
# A date, alone or followed by the hour of a time (``2024-03-01 10`` of ``2024-03-01 10:30:00``).
_ISO_DATE = re.compile(r"^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{4})(?: \d{1,2})?$")
_DIGITS = re.compile(r"\d")


def _pattern(kinds: tuple[str, ...]) -> re.Pattern[str]:
    parts = []
    if "email" in kinds:
        parts.append(_EMAIL)
    if "url" in kinds:
        parts.append(_URL)
    if "ip" in kinds:
        parts += [_IPV4, _IPV6]
    if "phone" in kinds:
        parts.append(_PHONE)
    return re.compile("|".join(parts))


def _is_phone(candidate: str) -> bool:
    digits = len(_DIGITS.findall(candidate))
    if _ISO_DATE.match(candidate):
        return False
    if candidate.startswith("+") or "(" in candidate:
        return 7 <= digits <= 15
    return 9 <= digits <= 15


class TextScrubber:
    """Replaces what the chosen detectors find in a string; reusable and thread-safe."""

    def __init__(self, kinds: tuple[str, ...] = KINDS) -> None:
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown detectors: {sorted(unknown)}")
        self.kinds = tuple(kinds)
        self._regex = _pattern(self.kinds) if self.kinds else None
        self._wants_digits = "ip" in kinds or "phone" in kinds

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
            return PLACEHOLDERS["phone"] if _is_phone(text) else text
        return PLACEHOLDERS[kind]

    def could_match(self, text: str) -> bool:
        """A cheap test that is false only when no detector can match."""
        if "@" in text or "://" in text or "www." in text:
            return True
        return self._wants_digits and _DIGITS.search(text) is not None

    def scrub(self, text: str) -> str:
        """TEXT with every detected item replaced by its placeholder."""
        if self._regex is None or not self.could_match(text):
            return text
        return self._regex.sub(self._replace, text)

    def find(self, text: str) -> list[tuple[str, int, int]]:
        """(kind, start, end) of every confirmed finding, for reports that must not print the value."""
        found = []
        if self._regex is None or not self.could_match(text):
            return found
        for match in self._regex.finditer(text):
            if self._replace(match) != match.group():
                kind = match.lastgroup
                found.append(("ip" if kind in ("ipv4", "ipv6") else kind, match.start(), match.end()))
        return found
