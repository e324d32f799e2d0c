"""Verifying a package: its integrity against the manifest and signature, and a scan for leaks.

**Integrity.** Every file the manifest lists must exist with the listed size and sha256, no
other file may be in the package, and ``manifest.sig`` must be a valid signature of
``manifest.json`` when a public key is given.

**Leaks.** Every byte of every file (gzip files decompressed, the manifest included) is searched
for identifiers harvested from the raw inputs (``--against``) and from a roster, and for what
the pattern detectors find:

- *Harvested identifiers* are the values of the fields the policy treats as identifiers
  (usernames, user ids, sessions, IP addresses, user agents, client ids, anonymous ids, and
  the payload fields that name a learner) plus every email address in a raw line. Each is
  searched case-insensitively as a substring, as written, URL-encoded and JSON-escaped (once,
  and twice for JSON inside a JSON string), with one Aho-Corasick automaton over the output.
  A hit must stand alone: a form that begins or ends with an ASCII letter or digit is not
  reported where the output has another letter or digit beside it (``marisol`` is not found
  in ``amarisola``).
  IPv4 addresses are also searched zero-padded and with ``-`` or ``_`` for dots (host names),
  phones by their digits and with other separators, and an email's local part followed by ``@``
  (an address cut off in a truncated text).
- *Normalized reading.* A line that holds an entity, a percent sign, a JSON escape, a character
  outside ASCII or an address written with "at" is also read normalized (JSON escapes at any
  depth, HTML entities and percent-encoding undone until stable, NFKC, case folded, dashes and
  ``+`` read as ``-`` and space) and searched with a second automaton of every identifier
  normalized alike, with the same boundary rule; ``name (at) host (dot) org`` and spaces around
  ``@`` are read as an address there. The normalized text is never written anywhere.
- *Short or common values* (fewer than 6 characters, a CJK character counting three, digits
  only with fewer than 10 digits, or a common word of the logs such as ``honor`` or ``staff``)
  would be noise as substrings: a user id ``7``. They are compared with the whole value of the
  output's identifier fields of their kind (a user id with ``user_id``, ``attempt_user_id`` ...;
  a username with ``username``, ``student``, ``target_username`` ...), at any depth, inside
  JSON-string payloads too. A user id of any length is also found as the URL path segment after
  a route word that names a person (``/user/7/``, ``/users/``, ``/progress/{course}/``, ...), and
  from 5 digits alone in text or as any path segment (not a JSON number, decimal, date or time).
- *Inputs' free text.* With ``--against``, the phones and IP addresses that the detectors find
  in the raw lines are harvested too, and searched like the other identifiers.
- *Detectors* find email addresses (also with ``@`` written ``%40``) and IP addresses always,
  and phone numbers when no ``--against`` input is given (an IP address is not counted again
  as a phone).

**Classes.** Each finding is sorted into a leak class from where and in which form it was found:
``duplicate_key`` (the line has a key twice), ``identity_field`` (the whole value of an
identifier field, or a value under an identifier key), ``url_path`` (inside a URL or path),
``dict_key`` (an object key), ``kept_subtree`` (inside a container that policies keep whole:
``correct_map``, ``course_user_tags``, notes ``results`` ...), ``disguised`` (found only in
another form: entities, percent-encoding, escapes, fullwidth, obfuscated), else ``free_text``. IP addresses are expected in the
  fields the policy masks (``ip``, ``context.ip``): an address there that is its own mask
  (``203.0.113.0`` under /24) is not a leak, whether it was detected or harvested.

Identifier fields are those of a fixed list and those that the research policy and the
package's own policy (when it can be loaded and still has the sha256 in the manifest)
pseudonymize, mask or generalize.

Nothing found is ever printed: a finding names the file, line, JSON path and kind, where the
identifier came from (``tracking.log:12``), and a fingerprint keyed with a random key made for
this verification, which groups the findings of one value within a report and means nothing
outside it.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import re
import secrets
import time
import unicodedata
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator
from urllib.parse import quote, quote_plus, unquote

import ahocorasick_rs
import orjson
from isal import isal_zlib

from .detectors import EMAIL_PATTERN, TextScrubber
from .errors import UsageError
from .manifest import MANIFEST_NAME
from .operators.mask_ip import make_ip_masker
from .paths import WILDCARD, format_path, parse_path
from .policy import Policy, load_policy
from .inputs import GZIP_MAGIC, collect_inputs, open_lines
from .lines import parse_line

# ---------------------------------------------------------------- what counts as an identifier

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

# Envelope fields that hold identifiers whatever the policy does with them (most policies drop
# them, so the policy alone would not name them).
_FIXED_ENVELOPE = {
    "username": "username",
    "context.username": "username",
    "context.user_id": "user_id",
    "session": "session",
    "context.session": "session",
    "ip": "ip",
    "context.ip": "ip",
    "agent": "agent",
    "context.agent": "agent",
    "context.client_id": "client_id",
    "context.client.ip": "ip",
    "context.client.userAgent": "agent",
    "context.client.device.id": "device_id",
    "context.client.device.advertisingId": "device_id",
    "context.traits.username": "username",
    "context.traits.email": "email",
    "context.traits.userId": "user_id",
    "context.traits.anonymousId": "anonymous_id",
    "userId": "user_id",
    "anonymousId": "anonymous_id",
}
# Payload keys (at any depth of the decoded payload) whose values name a person.
_FIXED_PAYLOAD = {
    "username": "username",
    "user_id": "user_id",
    "student": "username",
    "instructor": "username",
    "user": "username",
    "target_username": "username",
    "requesting_student_id": "anonymous_id",
    "requesting_staff_id": "anonymous_id",
    "scorer_id": "anonymous_id",
    "anonymous_id": "anonymous_id",
    "attempt_user_id": "user_id",
    "allowance_user_id": "user_id",
    "instructor_id": "user_id",
    "email": "email",
    "user_email": "email",
}
_OPERATOR_KINDS = {"mask_ip": "ip", "generalize_agent": "agent"}


@dataclass(frozen=True)
class IdentifierFields:
    """Where identifiers live: envelope paths and payload keys with their kind, and the keys whose
    values a policy masks as IP addresses (with the masker, to recognise a masked address)."""

    envelope: dict[tuple[str, ...], str]
    payload: dict[str, str]
    masked_ip_keys: frozenset[str]
    ipv4_prefix: int = 24
    ipv6_prefix: int = 48

    @property
    def keys(self) -> frozenset[str]:
        """Every key name that holds an identifier, in the envelope or a payload."""
        return frozenset(self.payload) | frozenset(path[-1] for path in self.envelope)


def _plain_keys(path: str) -> tuple[str, ...] | None:
    try:
        tokens = parse_path(path)
    except ValueError:
        return None
    if all(isinstance(t, str) and t != WILDCARD for t in tokens):
        return tokens
    return None


def _rule_kind(rule) -> str | None:
    if rule.op == "pseudonymize":
        return rule.params.identity
    return _OPERATOR_KINDS.get(rule.op or "")


def identifier_fields(*policies: Policy) -> IdentifierFields:
    """The fixed identifier fields, plus those POLICIES pseudonymize, mask or generalize."""
    envelope = {parse_path(path): kind for path, kind in _FIXED_ENVELOPE.items()}
    payload = dict(_FIXED_PAYLOAD)
    masked: set[str] = set()
    prefixes: tuple[int, int] | None = None

    def payload_rules(rules: dict) -> None:
        for path, rule in rules.items():
            if rule.fields:
                payload_rules(rule.fields)
            kind = _rule_kind(rule)
            tokens = _plain_keys(path) if kind else None
            if tokens:
                payload.setdefault(tokens[-1], kind)

    for policy in policies:
        envelopes = [policy.envelope] + [rule.envelope for rule in policy.events]
        for rules in envelopes:
            for path, rule in rules.items():
                kind = _rule_kind(rule)
                tokens = _plain_keys(path) if kind else None
                if tokens:
                    envelope.setdefault(tokens, kind)
                if rule.op == "mask_ip" and tokens:
                    masked.add(tokens[-1])
                    if prefixes is None:
                        prefixes = (rule.params.ipv4_prefix, rule.params.ipv6_prefix)
        for event_rule in policy.events:
            payload_rules(event_rule.fields)
    ipv4, ipv6 = prefixes or (24, 48)
    return IdentifierFields(envelope, payload, frozenset(masked or {"ip"}), ipv4, ipv6)


# ---------------------------------------------------------------- harvesting


@dataclass(frozen=True)
class Identifier:
    """A value to search for. ``value`` is never printed; ``origin`` says where it came from."""

    kind: str
    source: str  # "input" or "roster"
    origin: str  # "tracking.log:12", or the roster's file names
    value: str = field(repr=False)


class Identifiers:
    """A set of identifiers, one per value ignoring case (the first one seen is kept)."""

    def __init__(self) -> None:
        self._by_folded: dict[str, Identifier] = {}

    def add(self, value: str, kind: str, source: str, origin: str) -> None:
        value = value.strip()
        if value:
            folded = value.lower()
            if folded not in self._by_folded:
                self._by_folded[folded] = Identifier(kind, source, origin, value)

    def update(self, other: Identifiers) -> None:
        for folded, identifier in other._by_folded.items():
            self._by_folded.setdefault(folded, identifier)

    def __len__(self) -> int:
        return len(self._by_folded)

    def __iter__(self) -> Iterator[Identifier]:
        return iter(self._by_folded.values())


# An email in raw bytes: found from its "@" (or "%40") followed by a domain label and a dot,
# then confirmed with the detector's own pattern around it.
_EMAIL_ANCHORS = (re.compile(rb"@[\w-]++\."), re.compile(rb"%40[\w-]++\."))
_EMAIL_CONTEXT = 256


def _emails_in(line: bytes) -> Iterator[str]:
    for anchors in _EMAIL_ANCHORS:
        for anchor in anchors.finditer(line):
            email = _email_at(line, anchor.start(), 0, len(line))
            if email is not None:
                yield email


def _email_at(data: bytes, at: int, floor: int, ceiling: int) -> str | None:
    """The email address whose ``@`` (or ``%40``) is at AT, looking no further than FLOOR and
    CEILING (the line it is on), or None."""
    before = data[max(floor, at - _EMAIL_CONTEXT) : at].decode("utf-8", "replace")
    after = data[at : min(ceiling, at + _EMAIL_CONTEXT)]
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


def _scalar_text(value) -> str | None:
    if type(value) is str:
        return value
    if type(value) is int:
        return str(value)
    return None


def _get(event: dict, tokens: tuple[str, ...]):
    value = event
    for token in tokens:
        if type(value) is not dict:
            return None
        value = value.get(token)
    return value


def harvest_inputs(inputs: Iterable[Path], fields: IdentifierFields) -> Identifiers:
    """Every identifier in the raw INPUTS (files or directories, plain or gzip), read the way
    ``run`` reads them."""
    found = Identifiers()
    envelope = list(fields.envelope.items())
    payload_keys = fields.payload
    detectors = TextScrubber(("phone", "ip"))
    for path, name in collect_inputs(list(inputs)):
        for number, line in enumerate(open_lines(path), start=1):
            if b"@" in line or b"%40" in line:
                for email in _emails_in(line):
                    found.add(email, "email", "input", f"{name}:{number}")
            event = parse_line(line)
            if type(event) is not dict:
                continue
            # Phones and addresses that people typed (forum posts, answers, profile fields).
            for text in _texts(event):
                for kind, start, end in detectors.find(text):
                    value = text[start:end]
                    if kind == "ip" or sum(c.isdigit() for c in value) >= PHONE_MIN_DIGITS:
                        found.add(value, kind, "input", f"{name}:{number}")
            for tokens, kind in envelope:
                value = _scalar_text(_get(event, tokens))
                if value:
                    _add_value(found, value, kind, f"{name}:{number}")
            payload = event.get("event")
            if payload:
                _harvest_payload(payload, payload_keys, found, name, number, 0)
    return found


PHONE_MIN_DIGITS = 9  # fewer digits are too common in logs to be searched as a phone


def _texts(value, depth: int = 0) -> Iterator[str]:
    """The strings of a payload with a digit in them (JSON strings decoded, GET strings as they are)."""
    if depth > 32:
        return
    if type(value) is str:
        if value[:1] in ("{", "[") and len(value) > 1:
            try:
                yield from _texts(orjson.loads(value), depth + 1)
                return
            except orjson.JSONDecodeError:
                pass
        if len(value) >= 7 and any(c.isdigit() for c in value):
            yield value
    elif type(value) is dict:
        for item in value.values():
            yield from _texts(item, depth + 1)
    elif type(value) is list:
        for item in value:
            yield from _texts(item, depth + 1)


def _add_value(found: Identifiers, value: str, kind: str, origin: str) -> None:
    if kind == "ip" and "," in value:
        for part in value.split(","):
            found.add(part, kind, "input", origin)
    else:
        found.add(value, kind, "input", origin)


def _harvest_payload(value, keys: dict[str, str], found: Identifiers, name: str, number: int, depth: int) -> None:
    if depth > 32:
        return
    kind_of = type(value)
    if kind_of is str:
        if value[:1] in ("{", "[") and len(value) > 1:
            try:
                decoded = orjson.loads(value)
            except orjson.JSONDecodeError:
                return
            _harvest_payload(decoded, keys, found, name, number, depth + 1)
        return
    if kind_of is dict:
        for key, item in value.items():
            kind = keys.get(key)
            if kind is not None:
                text = _scalar_text(item)
                if text:
                    _add_value(found, text, kind, f"{name}:{number}")
                    continue
            if type(item) in (dict, list, str):
                _harvest_payload(item, keys, found, name, number, depth + 1)
    elif kind_of is list:
        for item in value:
            _harvest_payload(item, keys, found, name, number, depth + 1)


def harvest_roster(paths: Iterable[Path]) -> Identifiers:
    """The ids, usernames, emails and names of the people in roster files (see ``anonymizer.roster``)."""
    from .roster import load_roster

    roster, _ = load_roster(list(paths))
    origin = "roster " + ", ".join(roster.files)
    found = Identifiers()
    for person in roster.people:
        if person.id is not None:
            found.add(person.id, "user_id", "roster", origin)
        for kind, values in (("username", person.usernames), ("email", person.emails), ("name", person.names)):
            for value in values:
                found.add(value, kind, "roster", origin)
    return found


# ---------------------------------------------------------------- the report


@dataclass
class Finding:
    """One leak: where it is and what kind of value, never the value."""

    file: str
    line: int
    path: str | None
    kind: str
    source: str  # input, roster, detector
    form: str  # as written, URL-encoded, JSON-escaped, normalized, field value, detected ...
    origin: str | None
    fingerprint: str
    leak_class: str = "free_text"  # see LEAK_CLASSES

    def as_dict(self) -> dict:
        return dict(vars(self))

    def describe(self) -> str:
        where = f"{self.file}:{self.line}" + (f" {self.path}" if self.path else "")
        came = f", from {self.origin}" if self.origin else ""
        return f"LEAK {where}: {self.kind} ({self.source}, {self.form}{came}) class {self.leak_class} [{self.fingerprint}]"


@dataclass
class IntegrityProblem:
    """A file that does not match the manifest, or a signature that does not hold."""

    file: str
    problem: str

    def as_dict(self) -> dict:
        return dict(vars(self))

    def describe(self) -> str:
        return f"INTEGRITY {self.file}: {self.problem}"


@dataclass
class Report:
    """What a verification found. ``ok`` when nothing leaked and the package is intact."""

    package: str
    integrity: list[IntegrityProblem] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    findings_total: int = 0
    findings_by_kind: Counter = field(default_factory=Counter)
    findings_by_class: Counter = field(default_factory=Counter)
    signature: str = "not checked"
    checks: dict = field(default_factory=dict)
    scanned: dict = field(default_factory=lambda: {"files": 0, "bytes": 0, "lines": 0, "identifiers": 0})
    seconds: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.integrity and not self.findings_total

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "package": self.package,
            "integrity": [p.as_dict() for p in self.integrity],
            "signature": self.signature,
            "findings": [f.as_dict() for f in self.findings],
            "findings_total": self.findings_total,
            "findings_not_listed": self.findings_total - len(self.findings),
            "findings_by_kind": dict(sorted(self.findings_by_kind.items())),
            "findings_by_class": dict(sorted(self.findings_by_class.items())),
            "checks": self.checks,
            "scanned": self.scanned,
            "seconds": self.seconds,
        }

    def describe(self) -> str:
        """The report as text: one line per problem, then a summary."""
        lines = [p.describe() for p in self.integrity]
        lines += [f.describe() for f in self.findings]
        not_listed = self.findings_total - len(self.findings)
        if not_listed:
            lines.append(f"… and {not_listed} more finding(s) not listed")
        scanned = self.scanned
        megabytes = scanned["bytes"] / 1e6
        took = self.seconds.get("scan", 0.0)
        rate = f", {megabytes / took:.0f} MB/s" if took >= 0.5 else ""
        lines.append(
            f"scanned {scanned['files']} file(s), {megabytes:.1f} MB decompressed, {scanned['lines']} lines, "
            f"for {scanned['identifiers']} identifier(s) and the detectors ({', '.join(self.checks.get('detectors', []))}) "
            f"in {took:.1f} s{rate}; signature: {self.signature}"
        )
        if self.ok:
            lines.append("verify: OK: no leak found and the package matches its manifest")
        else:
            kinds = ", ".join(f"{n} {k}" for k, n in sorted(self.findings_by_kind.items()))
            classes = ", ".join(f"{n} {c}" for c, n in sorted(self.findings_by_class.items()))
            lines.append(
                f"verify: FAILED: {self.findings_total} leak(s)" + (f" ({kinds}; by class: {classes})" if kinds else "")
                + f", {len(self.integrity)} integrity problem(s)"
            )
        return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- the scan

_ALNUM = bytes(1 if (48 <= b <= 57 or 97 <= b <= 122 or 65 <= b <= 90) else 0 for b in range(256))
# Folds bytes for the automaton: ASCII letters to lower case, digits kept, everything else 0.
_FOLD = bytes(b + 32 if 65 <= b <= 90 else (b if _ALNUM[b] else 0) for b in range(256))
_NEWLINE = re.compile(b"\n")
# Anchors that begin with a literal (which the regular expression engine skips to fast) and use
# possessive repeats (which fail without backtracking); each candidate is confirmed afterwards.
_IPV4_ANCHOR = rb"\.\d{1,3}+\.\d{1,3}+\."
_IPV6_ANCHOR = re.compile(rb"::|:[0-9a-f]{1,4}+:[0-9a-f]{1,4}+:[0-9a-f]{1,4}+:")
_KEY_BEFORE = re.compile(rb'\\?"([a-z0-9_]+)\\?"\s*:\s*\\?"$')
_NUMBER = re.compile(rb"[-+0-9.e]*")
# Keys too general to be identifier fields on their own (``context.client.device.id``).
_GENERIC_KEYS = frozenset({"id", "name"})
# The route words after which a path segment names a person (see the URL route catalogue):
# /u/{username}, /users/{user_id}, /admin/auth/user/{id}/, /progress/{course_id}/{user_id} ...
_PERSON_SEGMENT = re.compile(
    rb"/(?:u|users?|user_id|learners?|students?|profile|accounts?|retire_user|retire_backend_user|demographics"
    rb"|\[redacted\]|(?:progress|xqueue)(?:/[^/\"\\?#\s]+)?)/+(\d{1,9})(?=[/?#\",;\\]|$)"
)
USER_ID_MIN_DIGITS = 5  # as the policies' text rules: shorter numbers alone in text are too common
ID_IN_TEXT = "alone in text"
TRUNCATED = "truncated address"
READ_SIZE = 1 << 20
SCAN_SIZE = 8 << 20
MAX_CARRY = 64 << 20
MAX_LISTED = 1000


_PLAIN = re.compile(r"[A-Za-z0-9_.~-]+")


def _forms(value: str) -> list[tuple[str, bytes]]:
    """VALUE as it can appear in output, ASCII-lowercased: as written, URL-encoded, JSON-escaped."""
    if _PLAIN.fullmatch(value):
        return [("as written", value.encode().lower())]  # every encoding leaves these characters alone
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


def searched_as_substring(value: str) -> bool:
    """Whether VALUE is searched everywhere, or (short, numeric or common) in identifier fields only."""
    # A character of the CJK scripts says about as much as a syllable: it counts three.
    if sum(3 if ord(c) >= 0x2E80 else 1 for c in value) < SUBSTRING_MIN_LENGTH:
        return False
    if value.isascii() and value.isdigit() and len(value) < NUMERIC_SUBSTRING_MIN_DIGITS:
        return False
    return value.lower() not in COMMON_WORDS


def _field_value_key(value: str) -> bytes:
    """What the field check reads of VALUE in the output: lowercased, up to a character JSON escapes."""
    data = value.encode("utf-8", "replace").lower()
    cut = re.search(rb'["\\]', data)
    return data[: cut.start()] if cut else data


def _value_after(data: bytes, at: int) -> bytes:
    """The JSON value that begins at AT (after ``"key":``), for the field check: a string's text up
    to its closing quote (also when escaped inside a JSON string), or a number."""
    while data[at : at + 1] == b" ":
        at += 1
    first = data[at : at + 1]
    if first == b'"':
        start, close = at + 1, data.find(b'"', at + 1)
    elif first == b"\\":
        start, close = at + 2, data.find(b"\\", at + 2)
    else:
        return _NUMBER.match(data, at).group()
    return data[start:close] if close >= 0 else b""


# ---------------------------------------------------------------- normalized text

# Lines worth a second, normalized reading: they hold an entity, a percent sign, a JSON escape,
# a character outside ASCII (fullwidth and other compatibility forms, other case of non-ASCII
# letters) or an address written with "at" for "@". Other lines read the same either way.
# Found with bytes.find (a regular expression with alternatives reads a few MB/s only).
_SUSPECT_MARKERS = (b"&", b"%", b"\\u")
_AT_MARKERS = (b" at ", b"at)", b"at]", b" @", b"@ ")  # lines also read as obfuscated addresses
_NON_ASCII = re.compile(rb"[\x80-\xff]")
_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})|\\([\"\\/])")
_OBFUSCATED_AT = re.compile(r"\s*[(\[{<]\s*at\s*[)\]}>]\s*|\s+at\s+|\s*@\s*")
_OBFUSCATED_DOT = re.compile(r"\s*[(\[{<]\s*dot\s*[)\]}>]\s*|\s+dot\s+")
# Between digits, any run of dashes, dots, slashes, parentheses and spaces reads as one space
# (a phone's own groups are searched joined by spaces too).
_PHONE_SEPARATORS = re.compile(r"(?<=\d)[\s\-./()]+(?=\d)")
_READING_KIND = {"obfuscated address": "email", "phone separators": "phone"}
_LOCAL_PART_MIN = 4  # an address cut after its "@" is still found from a local part this long


def _unescape_json(match: re.Match) -> str:
    return chr(int(match.group(1), 16)) if match.group(1) else match.group(2)


def normalize_text(text: str) -> str:
    """TEXT as a reader sees it: JSON escapes (at any depth), HTML entities and percent-encoding
    (double too) undone until nothing changes, then NFKC (fullwidth forms), case folded, and
    ``+`` read as the space it is in a query string. For searching only: never written out."""
    if text.isascii() and not any(c in text for c in "\\&%+"):
        return text.lower()  # nothing to undo: the common case, fast
    for _ in range(8):
        before = text
        if "\\" in text:
            text = _JSON_ESCAPE.sub(_unescape_json, text)
        if "&" in text:
            text = html.unescape(text)
        if "%" in text:
            text = unquote(text)
        if text == before:
            break
    return unicodedata.normalize("NFKC", text).casefold().translate(_LOOK_ALIKES)


# Hyphens and dashes that NFKC leaves alone read as "-"; "+" reads as the space it is in a query.
_LOOK_ALIKES = str.maketrans({**{chr(c): "-" for c in (0x2010, 0x2011, 0x2012, 0x2013, 0x2014, 0x2212)}, "+": " "})


def deobfuscate(text: str) -> str:
    """Normalized TEXT with ``(at)``, ``[dot]``, `` at ``, `` dot `` and spaces around ``@`` read as an address."""
    return _OBFUSCATED_DOT.sub(".", _OBFUSCATED_AT.sub("@", text))


def _stands_alone(text: str, start: int, end: int) -> bool:
    """The boundary rule on normalized text: a match that begins or ends with a letter or digit
    must not have another beside it."""
    if text[start].isalnum() and start and text[start - 1].isalnum():
        return False
    return not (text[end - 1].isalnum() and end < len(text) and text[end].isalnum())


def _extra_forms(identifier: Identifier) -> list[tuple[str, bytes]]:
    """How an IP address or a phone number of the inputs is also written: zero-padded octets, or
    dashes and underscores for dots (host names such as ``ip-10-0-1-23``); a phone's digits alone
    or with other separators."""
    value = identifier.value
    forms: list[str] = []
    if identifier.kind == "ip" and _IPV4_TEXT.fullmatch(value):
        octets = value.split(".")
        forms = [".".join(o.zfill(3) for o in octets), "-".join(octets), "_".join(octets)]
    elif identifier.kind == "phone":
        digits = re.sub(r"\D", "", value)
        groups = re.findall(r"\d+", value)
        if len(digits) >= 9:
            forms = [digits, "+" + digits]
        forms.append(re.sub(r"[\s()]", "", value))  # as in a tel: link
        variants = [groups]
        if value.lstrip().startswith("+") and len("".join(groups[1:])) >= 7:
            variants.append(groups[1:])  # the number without its country code
        for parts in variants:
            forms += ["-".join(parts), ".".join(parts), "\u2013".join(parts), " ".join(parts)]
    return [("disguised form", form.encode("utf-8").lower()) for form in dict.fromkeys(forms) if form != value]


_IPV4_TEXT = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")


# ---------------------------------------------------------------- leak classes

# The classes a finding is sorted into, from where and in which form it was found (most
# specific first): the issue tracker's classes of leak.
LEAK_CLASSES = ("duplicate_key", "identity_field", "url_path", "dict_key", "kept_subtree", "disguised", "free_text")
# Containers that a policy may keep whole although they can carry text that people typed.
_KEPT_CONTAINERS = frozenset({"correct_map", "course_user_tags", "note_text", "results", "team_id", "answervariable", "highlighted_content", "tags"})
_URL_LIKE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|/|[\w-]+(?:\.[\w-]+)+/)", re.IGNORECASE)
_PLAIN_FORMS = frozenset({"as written", "detected", "field value", "unmasked in a masked field", "alone in text", "path segment"})


def _duplicate_keys(line: bytes) -> bool:
    """Whether LINE, or a JSON string inside it, has an object with the same key twice."""

    def pairs(items):
        keys = [key for key, _ in items]
        if len(keys) != len(set(keys)):
            raise _Duplicate
        return dict(items)

    def check(value, depth=0) -> None:
        if depth > 32:
            return
        if type(value) is dict:
            for item in value.values():
                check(item, depth + 1)
        elif type(value) is list:
            for item in value:
                check(item, depth + 1)
        elif type(value) is str and value[:1] in ("{", "[") and len(value) > 1:
            try:
                check(json.loads(value, object_pairs_hook=pairs), depth + 1)
            except ValueError:
                return

    try:
        check(json.loads(line, object_pairs_hook=pairs))
    except _Duplicate:
        return True
    except ValueError:
        return False
    return False


class _Duplicate(Exception):
    pass


def leak_class(line: bytes, where: tuple | None, form: str, identity_keys: frozenset[str]) -> str:
    """The class of a finding on LINE at WHERE ((path tokens, is a key, the string that holds it)),
    found in FORM."""
    if b'":' in line and _duplicate_keys(line):
        return "duplicate_key"
    if form == "field value":
        return "identity_field"
    if where is None:
        return "disguised" if form not in _PLAIN_FORMS else "free_text"
    path, is_key, leaf = where
    text = leaf if type(leaf) is str else ""
    if _URL_LIKE.match(text):
        return "url_path"
    if is_key:
        return "dict_key"
    last = path[-1] if path else None
    if last in identity_keys:
        return "identity_field"
    if any(step in _KEPT_CONTAINERS for step in path if type(step) is str):
        return "kept_subtree"
    if form not in _PLAIN_FORMS:
        return "disguised"
    return "free_text"


class Scanner:
    """Searches output bytes for a set of identifiers and the detectors; collects findings.

    One Aho-Corasick automaton holds every form of every identifier searched as a substring and
    the keys of the identifier fields (``"username":``) whose values are compared with the
    identifiers checked as whole values. Masked-IP fields and the detectors are read with
    regular expressions that begin with a literal. Build it once; ``scan`` whole lines.
    """

    def __init__(
        self,
        identifiers: Identifiers,
        fields: IdentifierFields,
        *,
        phones: bool,
        max_listed: int = MAX_LISTED,
    ) -> None:
        self.identifiers: list[Identifier] = list(identifiers)
        self.fields = fields
        self.max_listed = max_listed
        self.findings: list[Finding] = []
        self.total = 0
        self.by_kind: Counter = Counter()
        self.by_class: Counter = Counter()
        self._fingerprint_key = secrets.token_bytes(32)
        self._masker = make_ip_masker(fields.ipv4_prefix, fields.ipv6_prefix)
        self._masked_cache: dict[bytes, bool] = {}
        self._unmasked_seen: set[bytes] = set()
        self._ip_scrubber = TextScrubber(("ip",))
        self._phone_scrubber = TextScrubber(("phone",)) if phones else None
        self._field_keys = frozenset(k for k in fields.keys if k not in _GENERIC_KEYS)
        self._field_keys_lower = {k.lower().encode() for k in self._field_keys}
        self._masked_keys = {k.lower().encode() for k in fields.masked_ip_keys}
        self._masked_prefixes = tuple(
            prefix
            for key in self._masked_keys
            for prefix in (b'"' + key + b'":"', b'\\"' + key + b'\\":\\"', b'"' + key + b'": "')
        )
        # An IPv4 address that is the plain value of a masked field is judged by the masked-field
        # check instead: skip it without leaving the regular expression engine. The assertions
        # follow the leading literal and a lookahead, so that the engine still skips to the literal.
        skip = b"".join(
            b"(?<!" + re.escape(prefix) + b"\\d" * digits + b"\\.)" for prefix in self._masked_prefixes for digits in (1, 2, 3)
        )
        self._ipv4_anchor = re.compile(rb"\.(?=\d{1,3}+\.\d{1,3}+\.)" + skip)
        # (pattern, a literal that must be present for it to match: a quick test first)
        self._masked_fields = [
            pair
            for key in sorted(self._masked_keys)
            for pair in (
                (re.compile(rb'"' + re.escape(key) + rb'":\s*"([^"]*)"'), b'"' + key + b'":'),
                (re.compile(rb'\\"' + re.escape(key) + rb'\\":\s*\\"([^"\\]*)\\"'), b'\\"' + key + b'\\":'),
            )
        ]

        # Most forms are searched in a folded copy of the output in which every byte that is not
        # an ASCII letter or digit is 0, with a 0 added to each alphanumeric edge of the form: the
        # boundary rule is then part of the pattern, and the automaton never starts a match in
        # the middle of a word (hex identifiers and pseudonyms would otherwise keep it busy).
        # Every match is confirmed on the output itself. Forms with fewer than 2 ASCII letters
        # and digits (names in other scripts) are searched in the output as it is.
        folded: dict[bytes, list[tuple[int, str, bytes, int, int]]] = {}
        verbatim: dict[bytes, list[tuple[int, str]]] = {}
        self._field_values: dict[bytes, list[int]] = {}
        # User ids too short to be searched everywhere: as a path segment after a route word
        # that names a person (/user/7/), and from USER_ID_MIN_DIGITS digits alone in text.
        self._short_ids: dict[bytes, list[int]] = {}
        normal: dict[str, list[tuple[int, str]]] = {}
        self.substring_count = 0
        for index, identifier in enumerate(self.identifiers):
            value = identifier.value
            if not searched_as_substring(value):
                self._field_values.setdefault(_field_value_key(value), []).append(index)
                if identifier.kind == "user_id" and value.isascii() and value.isdigit():
                    self._short_ids.setdefault(value.encode(), []).append(index)
                    if len(value) >= USER_ID_MIN_DIGITS:
                        pattern = b"\0" + value.encode() + b"\0"
                        folded.setdefault(pattern, []).append((index, ID_IN_TEXT, value.encode(), 1, 1))
                        normal.setdefault(value, []).append((index, ID_IN_TEXT))
                continue
            self.substring_count += 1
            normal.setdefault(normalize_text(value), []).append((index, "normalized"))
            forms = _forms(value) + _extra_forms(identifier)
            if identifier.kind == "email":
                local = value.split("@")[0]
                if len(local) >= _LOCAL_PART_MIN:
                    forms.append((TRUNCATED, local.encode("utf-8").lower() + b"@"))
                    normal.setdefault(normalize_text(local) + "@", []).append((index, TRUNCATED))
            for form in (f for _, f in _extra_forms(identifier)):
                normal.setdefault(normalize_text(form.decode("utf-8")), []).append((index, "normalized"))
            for label, form in forms:
                pattern = form.translate(_FOLD)
                if len(pattern) - pattern.count(0) < 2:
                    verbatim.setdefault(form, []).append((index, label))
                    continue
                left = 1 if _ALNUM[form[0]] else 0
                right = 1 if _ALNUM[form[-1]] else 0
                pattern = b"\0" * left + pattern + b"\0" * right
                folded.setdefault(pattern, []).append((index, label, form, left, right))
        # The whole values are read from the fields of their kinds: "username": for usernames.
        kinds = {self.identifiers[i].kind for indexes in self._field_values.values() for i in indexes}
        key_kinds = [(path[-1], kind) for path, kind in fields.envelope.items()] + list(fields.payload.items())
        marker_keys = sorted({key.lower().encode() for key, kind in key_kinds if kind in kinds and key not in _GENERIC_KEYS})
        self.field_check_keys = [key.decode() for key in marker_keys]
        patterns = list(folded)
        self._pattern_info = list(folded.values())
        self._marker_base = len(patterns)
        # A key is preceded by "{" or ",": two 0 bytes before it keep "target_username": from
        # matching the marker of "username":, and cover the escaped form (\"username\":) too.
        self._markers: list[bytes] = []
        for key in marker_keys:
            patterns.append(b"\0\0" + key.translate(_FOLD) + b"\0\0")
            self._markers.append(key)
        self._automaton = ahocorasick_rs.BytesAhoCorasick(patterns, matchkind=ahocorasick_rs.MatchKind.Standard) if patterns else None
        self._verbatim_info = list(verbatim.values())
        self._verbatim_forms = list(verbatim)
        self._verbatim = (
            ahocorasick_rs.BytesAhoCorasick(self._verbatim_forms, matchkind=ahocorasick_rs.MatchKind.Standard) if verbatim else None
        )
        # The normalized reading of suspect lines: every identifier normalized the same way.
        normal.pop("", None)
        self._normal_info = list(normal.values())
        self._normal = ahocorasick_rs.AhoCorasick(list(normal), matchkind=ahocorasick_rs.MatchKind.Standard) if normal else None
        self._has_emails = any(i.kind == "email" for i in self.identifiers)
        self._has_phones = any(i.kind == "phone" for i in self.identifiers)

    # -------------------------------------------------------------- one chunk of whole lines

    def scan(self, file: str, chunk: bytes, first_line: int) -> None:
        """Search CHUNK (whole lines of FILE, the first numbered FIRST_LINE)."""
        lowered = chunk.lower()
        context = _Chunk(file, chunk, lowered, first_line)
        if self._automaton is not None:
            hits = []
            values = self._field_values
            markers = self._markers
            base = self._marker_base
            starts = lowered.startswith
            # Offsets in the folded copy are one more than in the output (its leading 0).
            for match in self._automaton.find_matches_as_indexes(b"\0" + chunk.translate(_FOLD) + b"\0", overlapping=True):
                pattern = match[0]
                if pattern < base:
                    hits.append(match)
                    continue
                # A key marker: confirm it (its 0 bytes stand for quotes and colon), read the value.
                # The key's opening quote is at the match's start (the folded copy is one longer).
                key = markers[pattern - base]
                quote = match[1]
                if starts(b'"' + key + b'":', quote):
                    end = quote + len(key) + 3
                elif starts(b'"' + key + b'\\":', quote) and lowered[quote - 1 : quote] == b"\\":
                    end = quote + len(key) + 4
                else:
                    continue
                value = _value_after(lowered, end)
                if value in values:
                    self._field_hit(context, end, values[value])
                elif b"\\" in value and value[: value.find(b"\\")] in values:
                    self._field_hit(context, end, values[value[: value.find(b"\\")]])
            if hits:
                self._folded_hits(context, hits)
        if self._verbatim is not None:
            self._verbatim_hits(context, self._verbatim.find_matches_as_indexes(lowered, overlapping=True))
        if self._short_ids:
            self._person_segments(context)
        if self._normal is not None:
            self._normalized_pass(context)
        self._check_masked_fields(context)
        self._detect(context)

    def _person_segments(self, context: _Chunk) -> None:
        """User ids of any length as the path segment after a route word that names a person."""
        lowered = context.lowered
        if b"/" not in lowered:
            return
        for match in _PERSON_SEGMENT.finditer(lowered):
            for index in self._short_ids.get(match.group(1), ()):
                identifier = self.identifiers[index]
                self._report(context, match.start(1), identifier.kind, identifier.source, "path segment", identifier.origin, identifier.value, match.group(1))

    def _normalized_pass(self, context: _Chunk) -> None:
        """Read each suspect line normalized (entities, percent-encoding, JSON escapes, NFKC, case)
        and search it for every identifier normalized alike."""
        chunk = context.chunk
        lines: dict[int, tuple[int, int]] = {}
        obfuscated: set[int] = set()
        for marker in _SUSPECT_MARKERS + (_AT_MARKERS if self._has_emails else ()):
            at = chunk.find(marker)
            while at >= 0:
                line_index, start, end = context.line_of(at)
                lines[line_index] = (start, end)
                if marker in _AT_MARKERS:
                    obfuscated.add(line_index)
                at = chunk.find(marker, end)
        if not chunk.isascii():
            match = _NON_ASCII.search(chunk)
            while match is not None:
                line_index, start, end = context.line_of(match.start())
                lines[line_index] = (start, end)
                match = _NON_ASCII.search(chunk, end)
        for line_index in sorted(lines):
            start, end = lines[line_index]
            self._normalized_line(context, line_index, chunk[start:end], line_index in obfuscated)

    def _normalized_line(self, context: _Chunk, line_index: int, raw: bytes, obfuscated: bool) -> None:
        text = normalize_text(raw.decode("utf-8", "replace"))
        readings = [(text, "normalized")]
        if obfuscated or (self._has_emails and "\uff20" in raw.decode("utf-8", "replace")):
            unmasked = deobfuscate(text)
            if unmasked != text:
                readings.append((unmasked, "obfuscated address"))
        if self._has_phones:
            spaced = _PHONE_SEPARATORS.sub(" ", text)
            if spaced != text:
                readings.append((spaced, "phone separators"))
        lowered_line = None
        for reading, how in readings:
            matches = self._normal.find_matches_as_indexes(reading, overlapping=True)
            # Whole addresses before the local parts that stand for cut ones.
            matches.sort(key=lambda m: self._normal_info[m[0]][0][1] == TRUNCATED)
            for pattern, start, end in matches:
                if not _stands_alone(reading, start, end):
                    continue
                for index, label in self._normal_info[pattern]:
                    identifier = self.identifiers[index]
                    if how != "normalized" and identifier.kind != _READING_KIND[how]:
                        continue
                    if label == ID_IN_TEXT and not _id_in_text(reading, start, end):
                        continue
                    if identifier.kind == "ip":
                        # As written, an address is judged by the byte scan (masked fields hold their own mask).
                        lowered_line = raw.lower() if lowered_line is None else lowered_line
                        if identifier.value.lower().encode() in lowered_line:
                            continue
                    form = how if label == "normalized" else label
                    needle = reading[start:end]
                    where = _locate_normalized(raw, needle, how)
                    self._report_line(context, line_index, identifier.kind, identifier.source, form, identifier.origin, identifier.value, None, where)

    def _folded_hits(self, context: _Chunk, matches: list) -> None:
        lowered = context.lowered
        deferred = []
        for pattern, start, end in matches:
            for index, label, form, left, right in self._pattern_info[pattern]:
                begin = start - 1 + left
                if lowered[begin : begin + len(form)] != form:
                    continue
                if label == ID_IN_TEXT and not _id_in_text(lowered, begin, begin + len(form)):
                    continue
                if label == TRUNCATED:
                    deferred.append((index, label, begin, begin + len(form)))
                    continue
                self._identifier_hit(context, index, label, begin, begin + len(form))
        # A whole address is reported as such: its local part alone only where the rest is gone.
        for index, label, begin, end in deferred:
            self._identifier_hit(context, index, label, begin, end)

    def _verbatim_hits(self, context: _Chunk, matches: list) -> None:
        lowered = context.lowered
        size = len(lowered)
        for pattern, start, end in matches:
            form = self._verbatim_forms[pattern]
            if _ALNUM[form[0]] and start and _ALNUM[lowered[start - 1]]:
                continue
            if _ALNUM[form[-1]] and end < size and _ALNUM[lowered[end]]:
                continue
            for index, label in self._verbatim_info[pattern]:
                self._identifier_hit(context, index, label, start, end)

    def _identifier_hit(self, context: _Chunk, index: int, label: str, start: int, end: int) -> None:
        identifier = self.identifiers[index]
        if identifier.kind == "ip" and self._is_masked_ip(context.lowered, start, end):
            return
        self._report(context, start, identifier.kind, identifier.source, label, identifier.origin, identifier.value, context.lowered[start:end])

    def _check_masked_fields(self, context: _Chunk) -> None:
        """Every value of a field the policy masks must be what masking writes: a network address."""
        lowered = context.lowered
        cache = self._masked_cache
        for regex, literal in self._masked_fields:
            if literal not in lowered:
                continue
            found = regex.findall(lowered)
            if not found:
                continue
            unmasked = set()
            # Networks recur from chunk to chunk: only values not seen before are judged.
            for value in set(found).difference(cache):
                if len(cache) > 262144:
                    cache.clear()
                cache[value] = masked = self._masked_value(value)
                if not masked:
                    unmasked.add(value)
            unmasked.update(value for value in self._unmasked_seen.intersection(found))
            if unmasked:
                self._unmasked_seen.update(unmasked)
                for match in regex.finditer(lowered):
                    value = match.group(1)
                    if value in unmasked:
                        # Not what the policy's masking writes: a raw address, or one from another policy.
                        self._report(context, match.start(1), "ip", "detector", "unmasked in a masked field", None, value.decode("latin-1"), value)

    def _masked_value(self, value: bytes) -> bool:
        text = value.decode("utf-8", "replace")
        parts = [part.strip() for part in text.split(",")]
        # What does not parse as an address is not an address: the detectors judge it elsewhere.
        return all(self._masker(part) in (part, None) for part in parts)

    def _field_hit(self, context: _Chunk, offset: int, indexes: list[int]) -> None:
        line_index, _, _ = context.line_of(offset)
        for index in indexes:
            identifier = self.identifiers[index]
            path = _locate_field(context.line(line_index), self._field_keys, identifier.value.lower())
            if path is None:
                continue  # the value only began like the identifier
            if identifier.kind == "ip" and path[1] in self.fields.masked_ip_keys and self._masker(identifier.value) == identifier.value:
                continue
            self._report_line(context, line_index, identifier.kind, identifier.source, "field value", identifier.origin, identifier.value, None, path[0])

    def _detect(self, context: _Chunk) -> None:
        lowered = context.lowered
        for anchors in _EMAIL_ANCHORS:
            if anchors is _EMAIL_ANCHORS[1] and b"%40" not in lowered:
                continue  # a quick test first: URL-encoded addresses are rare
            for anchor in anchors.finditer(lowered):
                _, line_start, line_end = context.line_of(anchor.start())
                email = _email_at(lowered, anchor.start(), line_start, line_end)
                if email is not None:
                    self._report(context, anchor.start(), "email", "detector", "detected", None, email, email.lower().encode())
        for anchor_re in (self._ipv4_anchor, _IPV6_ANCHOR):
            previous_end = -1
            for anchor in anchor_re.finditer(lowered):
                start = anchor.start()
                if start < previous_end or (self._masked_prefixes and self._looks_masked(lowered, start)):
                    continue
                _, line_start, line_end = context.line_of(start)
                low = max(line_start, start - 48)
                window = lowered[low : min(line_end, anchor.end() + 48)].decode("latin-1")
                for _, found_start, found_end in self._ip_scrubber.find(window):
                    begin, end = low + found_start, low + found_end
                    if not (begin <= start < end):
                        continue
                    previous_end = end
                    if self._is_masked_ip(lowered, begin, end):
                        continue
                    address = window[found_start:found_end]
                    self._report(context, begin, "ip", "detector", "detected", None, address, address.encode())
        if self._phone_scrubber is not None:
            self._detect_phones(context)

    def _detect_phones(self, context: _Chunk) -> None:
        text = context.chunk.decode("utf-8", "replace")
        found = self._phone_scrubber.find(text)
        if not found:
            return
        # Offsets in TEXT count characters: find lines by characters too.
        line_starts = [0]
        for line in text.split("\n")[:-1]:
            line_starts.append(line_starts[-1] + len(line) + 1)
        addresses = None
        for _, start, end in found:
            value = text[start:end]
            if "." in value or ":" in value:
                # An IP address is reported as one, not a second time as a phone.
                if addresses is None:
                    addresses = [(a, b) for _, a, b in self._ip_scrubber.find(text)]
                if any(a < end and start < b for a, b in addresses):
                    continue
            before = text[max(0, start - 8) : start].rstrip()[-1:]
            after = text[end : end + 8].lstrip()[:1]
            if before in (":", ",", "[") and after in (",", "}", "]", "") and value.isdigit():
                continue  # a JSON number, such as a numeric pseudonym, is not text
            key = _KEY_BEFORE.search(text[max(0, start - 64) : start].lower().encode("utf-8", "replace"))
            if key is not None and key.group(1) in self._field_keys_lower and value.isdigit():
                continue  # the whole value of an identifier field: a pseudonym written as a string
            line_index = bisect_right(line_starts, start) - 1
            if any(seen[0] == line_index and seen[1] == "ip" and value in seen[2] for seen in context.reported):
                continue  # the digits of an IP address found on this line: one finding, not two
            self._report_line(context, line_index, "phone", "detector", "detected", None, value, value.lower().encode("utf-8"))

    def _looks_masked(self, lowered: bytes, anchor_start: int) -> bool:
        """A quick test for the common case: the anchor is in a masked-IP field's plain value,
        which the field check reads."""
        quote_at = lowered.rfind(b'"', max(0, anchor_start - 48), anchor_start)
        if quote_at < 0 or not lowered.endswith(self._masked_prefixes, 0, quote_at + 1):
            return False
        return not lowered[quote_at + 1 : anchor_start].translate(None, b"0123456789abcdef:.")

    def _is_masked_ip(self, lowered: bytes, start: int, end: int) -> bool:
        """Whether [START, END) is a whole address in a field the policy masks, and is its own mask."""
        quote_at = lowered.rfind(b'"', max(0, start - 64), start)
        if quote_at < 0:
            return False
        head = lowered[max(0, quote_at - 64) : quote_at + 1]
        match = _KEY_BEFORE.search(head)
        if match is None or match.group(1) not in self._masked_keys:
            return False
        close = lowered.find(b'"', end)
        if close < 0:
            return False
        value = lowered[quote_at + 1 : close].rstrip(b"\\").decode("latin-1")
        address = lowered[start:end].decode("latin-1")
        parts = [part.strip() for part in value.split(",")]
        return address in parts and self._masker(address) == address

    # -------------------------------------------------------------- findings

    def _report(self, context: _Chunk, offset: int, kind, source, form, origin, value, needle) -> None:
        line_index, _, _ = context.line_of(offset)
        self._report_line(context, line_index, kind, source, form, origin, value, needle)

    def _report_line(self, context: _Chunk, line_index: int, kind, source, form, origin, value, needle, where=False) -> None:
        """Count a finding (once per line, kind and value), sort it into its class, and list it
        while under the limit."""
        key = (line_index, kind, value.lower())
        if key in context.reported:
            return
        context.reported.add(key)
        self.total += 1
        self.by_kind[kind] += 1
        line = context.line(line_index)
        if where is False:
            needles = ([needle] if needle else []) + [form for _, form in _forms(value)]
            where = _locate(line, needles)
        cls = leak_class(line, where, form, self._field_keys)
        self.by_class[cls] += 1
        if len(self.findings) >= self.max_listed:
            return
        path = _format_where(where)
        digest = hmac.new(self._fingerprint_key, f"{kind}\x00{value.lower()}".encode("utf-8", "replace"), hashlib.sha256)
        self.findings.append(
            Finding(
                file=context.file,
                line=context.first_line + line_index,
                path=path,
                kind=kind,
                source=source,
                form=form,
                origin=origin,
                fingerprint="fp:" + digest.hexdigest()[:12],
                leak_class=cls,
            )
        )


class _Chunk:
    """Whole lines of one file, with line lookup built on first use (most chunks have no finding)."""

    __slots__ = ("file", "chunk", "lowered", "first_line", "_starts", "reported")

    def __init__(self, file: str, chunk: bytes, lowered: bytes, first_line: int) -> None:
        self.file = file
        self.chunk = chunk
        self.lowered = lowered
        self.first_line = first_line
        self._starts: list[int] | None = None
        self.reported: set = set()

    def line_of(self, offset: int) -> tuple[int, int, int]:
        """(index of the line within the chunk, its start offset, its end offset) for OFFSET."""
        if self._starts is None:
            self._starts = [0] + [m.end() for m in _NEWLINE.finditer(self.chunk)]
        index = bisect_right(self._starts, offset) - 1
        start = self._starts[index]
        end = self._starts[index + 1] - 1 if index + 1 < len(self._starts) else len(self.chunk)
        return index, start, end

    def line(self, index: int) -> bytes:
        if self._starts is None:
            self.line_of(0)
        start = self._starts[index]
        end = self._starts[index + 1] if index + 1 < len(self._starts) else len(self.chunk)
        return self.chunk[start:end]


def _walk(value, path: tuple, depth: int = 0) -> Iterator[tuple[tuple, object, object]]:
    """(path, key, leaf) for every leaf of VALUE, JSON strings decoded; keys are leaves too."""
    if depth > 32:
        return
    if type(value) is dict:
        for key, item in value.items():
            yield path + (key,), None, key
            yield from _walk(item, path + (key,), depth + 1)
    elif type(value) is list:
        for index, item in enumerate(value):
            yield from _walk(item, path + (index,), depth + 1)
    else:
        yield path, path[-1] if path else None, value
        if type(value) is str and value[:1] in ("{", "[") and len(value) > 1:
            try:
                decoded = orjson.loads(value)
            except orjson.JSONDecodeError:
                return
            yield from _walk(decoded, path, depth + 1)


def _parse(line: bytes):
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return None


def _locate(line: bytes, needles: list[bytes]) -> tuple | None:
    """(JSON path, whether it is a key, the string or number) of the deepest value or key in LINE
    that holds one of NEEDLES; inside a JSON string that holds JSON, the path goes on into it."""
    return _deepest(line, lambda text: any(needle in text.encode("utf-8", "replace").lower() for needle in needles))


def _locate_normalized(line: bytes, needle: str, how: str) -> tuple | None:
    """As ``_locate``, for a NEEDLE found in the normalized reading HOW."""

    def holds(text: str) -> bool:
        reading = normalize_text(text)
        if how == "obfuscated address":
            reading = deobfuscate(reading)
        elif how == "phone separators":
            reading = _PHONE_SEPARATORS.sub(" ", reading)
        return needle in reading

    return _deepest(line, holds)


def _deepest(line: bytes, holds) -> tuple | None:
    parsed = _parse(line)
    if parsed is None:
        return None
    best: tuple | None = None
    for path, key, leaf in _walk(parsed, ()):
        if type(leaf) is bool or leaf is None:
            continue
        if holds(leaf if type(leaf) is str else str(leaf)):
            is_key = key is None and type(leaf) is str and bool(path) and path[-1] == leaf
            if best is None or len(path) > len(best[0]):
                best = (path, is_key, leaf)
    return best


def _format_where(where: tuple | None) -> str | None:
    if where is None:
        return None
    text = format_path(where[0]) or "(line)"
    return text + " (key)" if where[1] else text


def _id_in_text(text, start: int, end: int) -> bool:
    """Whether the digits at [START, END) of TEXT (bytes or str) are a number standing alone in
    text or a URL path segment, not a JSON number, a decimal, a date or a time."""
    before = text[start - 1 : start] if start else text[:0]
    after = text[end : end + 1]
    following = text[end + 1 : end + 2]
    # A member's value after white space (`"events": 299687,` in an indented document such as the
    # manifest) is a JSON number too; in prose ("my id: 299687, thanks") the colon follows a word.
    before_word = text[max(0, start - 16) : start].rstrip()[-2:]
    after_word = text[end : end + 16].lstrip()[:1]
    if isinstance(text, bytes):
        before, after, following = before.decode("latin-1"), after.decode("latin-1"), following.decode("latin-1")
        before_word, after_word = before_word.decode("latin-1"), after_word.decode("latin-1")
    if before == "/":
        return True
    if before in (":", ",", "[") and after in (",", "}", "]", ""):
        return False  # a JSON number
    if before_word == '":' and after_word in (",", "}", "]", ""):
        return False  # a JSON number, indented
    if before and before in ".-+$#@:":
        return False
    return not (after and after in ".,-:" and following.isdigit())


def _locate_field(line: bytes, keys: frozenset[str], folded: str) -> tuple[tuple, str] | None:
    """((path, False, value), key) of an identifier field in LINE whose whole value is FOLDED, ignoring case."""
    parsed = _parse(line)
    if parsed is None:
        return None
    for path, key, leaf in _walk(parsed, ()):
        if key in keys and type(leaf) in (str, int) and str(leaf).strip().lower() == folded:
            return (path, False, leaf), key
    return None


# ---------------------------------------------------------------- the package


def _manifest_policy(manifest: dict, directory: Path) -> Policy | None:
    """The package's policy, when it is built in or its file still has the sha256 the manifest says."""
    policy = manifest.get("policy") if isinstance(manifest, dict) else None
    if not isinstance(policy, dict) or not isinstance(policy.get("source"), str):
        return None
    try:
        loaded = load_policy(policy["source"])
    except Exception:  # noqa: BLE001 - a policy that no longer loads is simply not used
        return None
    return loaded if loaded.sha256 == policy.get("sha256") else None


def _listed_files(manifest: dict, directory: Path, report: Report) -> dict[str, dict]:
    listed: dict[str, dict] = {}
    entries = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(entries, list):
        report.integrity.append(IntegrityProblem(MANIFEST_NAME, "has no list of files"))
        return listed
    root = directory.resolve()
    for entry in entries:
        path = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(path, str) or not path:
            report.integrity.append(IntegrityProblem(MANIFEST_NAME, "lists a file without a path"))
            continue
        target = (directory / path).resolve()
        if root not in target.parents:
            report.integrity.append(IntegrityProblem(MANIFEST_NAME, "lists a file outside the package"))
            continue
        listed[Path(path).as_posix()] = entry
    return listed


class _Corrupt(Exception):
    """The data of a gzip file cannot be decompressed; the message says how (never with data)."""


class _Gunzip:
    """Decompresses a gzip stream of one member or several, fed block by block."""

    def __init__(self) -> None:
        self._decompressor = isal_zlib.decompressobj(31)
        self.between_members = False

    def feed(self, data: bytes) -> bytes:
        out = []
        while data:
            if self.between_members:
                if data[:2] != GZIP_MAGIC:
                    raise _Corrupt("has data after its last gzip member")
                self._decompressor = isal_zlib.decompressobj(31)
                self.between_members = False
            try:
                out.append(self._decompressor.decompress(data))
            except isal_zlib.error:
                raise _Corrupt("is not a readable gzip file") from None
            if not self._decompressor.eof:
                break
            data = self._decompressor.unused_data
            self.between_members = True
        return b"".join(out)


def _read_file(path: Path, digest) -> Iterator[bytes | str]:
    """The bytes of PATH, decompressed when it is gzip, hashing what is read from disk. A problem
    with the data is yielded as a str; what follows it is hashed but not scanned."""
    with open(path, "rb") as fh:
        block = fh.read(READ_SIZE)
        gunzip = _Gunzip() if block[:2] == GZIP_MAGIC else None
        broken = False
        while block:
            digest.update(block)
            if gunzip is None:
                yield block
            elif not broken:
                try:
                    yield gunzip.feed(block)
                except _Corrupt as problem:
                    broken = True
                    yield str(problem)
            block = fh.read(READ_SIZE)
        if gunzip is not None and not broken and not gunzip.between_members:
            yield "is truncated: its gzip stream does not end"


def verify_package(
    directory: Path | str,
    *,
    against: Iterable[Path] = (),
    roster: Iterable[Path] = (),
    public_key=None,
    require_signature: bool = False,
    max_listed: int = MAX_LISTED,
) -> Report:
    """Check DIRECTORY against its manifest (and signature, with PUBLIC_KEY) and scan every byte
    in it for the identifiers of the raw inputs AGAINST and of ROSTER, and for what the detectors
    find. Raises ``UsageError`` when DIRECTORY is not a package."""
    from .signing import MISSING, SIGNATURE_NAME, VALID, verify_signature

    directory = Path(directory)
    against = list(against)
    roster = list(roster)
    if not directory.is_dir():
        raise UsageError(f"{directory}: no such package directory")
    manifest_path = directory / MANIFEST_NAME
    if not manifest_path.is_file():
        raise UsageError(f"{directory}: holds no {MANIFEST_NAME}; not a package (or an unfinished one)")
    if require_signature and public_key is None:
        raise UsageError("--require-signature needs --public-key FILE: a signature can only be checked against the public key")
    report = Report(package=str(directory))
    started = time.perf_counter()
    try:
        manifest = orjson.loads(manifest_path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        manifest = None
        report.integrity.append(IntegrityProblem(MANIFEST_NAME, "is not valid JSON"))
    listed = _listed_files(manifest, directory, report) if manifest is not None else {}

    if public_key is not None:
        status = verify_signature(directory, public_key)
        report.signature = status
        if status == MISSING:
            report.integrity.append(IntegrityProblem(SIGNATURE_NAME, "is missing: the manifest is not signed"))
        elif status != VALID:
            report.integrity.append(IntegrityProblem(SIGNATURE_NAME, "is not a valid signature of manifest.json under the public key"))
    else:
        report.signature = "present, not checked (no --public-key)" if (directory / SIGNATURE_NAME).exists() else "unsigned"

    policies = [load_policy("research")]
    package_policy = _manifest_policy(manifest, directory) if manifest is not None else None
    if package_policy is not None and package_policy.sha256 != policies[0].sha256:
        policies.insert(0, package_policy)
    fields = identifier_fields(*policies)
    identifiers = Identifiers()
    if against:
        identifiers.update(harvest_inputs(against, fields))
    if roster:
        identifiers.update(harvest_roster(roster))
    harvested = time.perf_counter()
    phones = not against
    scanner = Scanner(identifiers, fields, phones=phones, max_listed=max_listed)
    built = time.perf_counter()
    report.checks = {
        "against": [str(p) for p in against],
        "roster": [str(p) for p in roster],
        "policy_fields_from": [p.name for p in policies],
        "identifiers_searched_everywhere": scanner.substring_count,
        "identifiers_checked_in_fields": len(identifiers) - scanner.substring_count,
        "detectors": ["email", "ip"] + (["phone"] if phones else []),
    }

    present = sorted(
        p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file() or p.is_symlink()
    )
    for relative in sorted(set(listed) - set(present)):
        report.integrity.append(IntegrityProblem(relative, "is listed in the manifest but missing"))
    scanned_bytes = lines = files = 0
    for relative in present:
        path = directory / relative
        if relative == SIGNATURE_NAME:
            continue
        entry = listed.get(relative)
        if entry is None and relative != MANIFEST_NAME:
            report.integrity.append(IntegrityProblem(relative, "is not listed in the manifest"))
        if not path.is_file():
            report.integrity.append(IntegrityProblem(relative, "is not a regular file"))
            continue
        digest = hashlib.sha256()
        files += 1
        line_number = 1
        carry = b""
        for piece in _read_file(path, digest):
            if isinstance(piece, str):
                report.integrity.append(IntegrityProblem(relative, piece))
                continue
            scanned_bytes += len(piece)
            carry += piece
            if len(carry) < SCAN_SIZE:
                continue
            cut = carry.rfind(b"\n") + 1
            if cut == 0 and len(carry) < MAX_CARRY:
                continue
            cut = cut or len(carry)
            head, carry = carry[:cut], carry[cut:]
            scanner.scan(relative, head, line_number)
            line_number += head.count(b"\n")
        if carry:
            scanner.scan(relative, carry, line_number)
            line_number += carry.count(b"\n") + (0 if carry.endswith(b"\n") else 1)
        lines += line_number - 1
        if entry is not None:
            size = path.stat().st_size
            if entry.get("bytes") != size:
                report.integrity.append(IntegrityProblem(relative, "has a size other than the manifest lists"))
            if entry.get("sha256") != digest.hexdigest():
                report.integrity.append(IntegrityProblem(relative, "has a sha256 other than the manifest lists"))
    finished = time.perf_counter()
    report.findings = scanner.findings
    report.findings_total = scanner.total
    report.findings_by_kind = scanner.by_kind
    report.findings_by_class = scanner.by_class
    report.scanned = {"files": files, "bytes": scanned_bytes, "lines": lines, "identifiers": len(identifiers)}
    report.seconds = {
        "harvest": round(harvested - started, 3),
        "build": round(built - harvested, 3),
        "scan": round(finished - built, 3),
        "total": round(finished - started, 3),
    }
    return report
