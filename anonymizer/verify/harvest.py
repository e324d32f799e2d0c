"""Harvesting identifiers: from the raw inputs (``--against``) and from rosters.

From the inputs: the values of the fields that carry identities (a fixed list of the platform's
envelope and payload fields and of xAPI statements' actor and session fields, and the fields the
package's policy says carry an identity, such as forum post ids: those whose key says nothing on
its own, ``id``, only in the events of the rule that names them; a ClickHouse row is read as the
statement it holds), the name, username or email an account setting or a registration form gives
(as the run learns them), every email address in a raw line, and the phones and IP addresses the
detectors find in its text.
From a roster: each person's id, usernames, emails and names. Each value is kept once, ignoring
case, with where it was first seen; the value itself is never printed.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Iterable, Iterator

import orjson

from ..core.ipmask import url_host_ipv4
from ..core.lowering import lower
from ..core.text.detectors import EMAIL_PATTERN, TextScrubber, email_at  # noqa: F401  (email_at: for the scan)
from ..core.paths import WILDCARD, parse_path
from ..core.policy import Policy
from ..io.inputs import collect_inputs, open_lines
from ..io.learn import ACCOUNT_POSTS
from ..core.lines import parse_line
from ..core.roster import load_roster
from ..core.xapi import unwrap

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
# The fields of xAPI statements that name a person or a session, whatever the policy does with
# them (paths as tokens: an extension's key is a URL).
_FIXED_STATEMENT = {
    ("actor", "account", "name"): "external_id",
    ("actor", "mbox"): "email",
    ("actor", "mbox_sha1sum"): "mbox_sha1sum",
    ("actor", "name"): "name",
    ("actor", "openid"): "openid",
    ("context", "instructor", "account", "name"): "external_id",
    ("context", "instructor", "mbox"): "email",
    ("context", "registration"): "registration",
    ("context", "extensions", "https://w3id.org/xapi/openedx/extensions/session-id"): "session",
    ("id",): "statement_id",
    ("context", "statement", "id"): "statement_id",
}
_MAILTO = "mailto:"
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
# Payload keys too common to say what they hold on their own (a video's ``id`` is a block key, a
# forum event's a post's id): read only at their path, in the events of the rule that names them.
_GENERIC_PAYLOAD_KEYS = frozenset({"id", "name"})


@dataclass(frozen=True)
class IdentifierFields:
    """Where identifiers live: envelope paths and payload keys with their kind, and the keys whose
    values a policy masks as IP addresses (with the prefixes, to recognise a masked address).
    ``scoped``: payload paths ending in a generic key (``discussion.id``), with the event-type
    patterns of the rule that names them and their kind."""

    envelope: dict[tuple[str, ...], str]
    payload: dict[str, str]
    masked_ip_keys: frozenset[str]
    ipv4_prefix: int = 24
    ipv6_prefix: int = 48
    scoped: tuple[tuple[tuple[str, ...], tuple[str, ...], str], ...] = ()

    @property
    def keys(self) -> frozenset[str]:
        """Every key name that holds an identifier, in the envelope or a payload."""
        return frozenset(self.payload) | frozenset(path[-1] for path in self.envelope)


def identifier_fields(*policies: Policy) -> IdentifierFields:
    """The fixed identifier fields, plus the fields that POLICIES say carry an identity (see
    the plan's ``identities``): envelope paths whole, payload fields by their last key."""
    envelope = {parse_path(path): kind for path, kind in _FIXED_ENVELOPE.items()}
    payload = dict(_FIXED_PAYLOAD)
    masked: set[str] = set()
    prefixes: tuple[int, int] | None = None
    scoped: dict[tuple, None] = {}
    for policy in policies:
        plan = lower(policy)
        if policy.events_format == "tracking-log":
            for rule in plan.rules:
                for found in rule.identities:
                    tokens = _plain_tokens(found)
                    if found.scope == "payload" and tokens and tokens[-1] in _GENERIC_PAYLOAD_KEYS:
                        scoped.setdefault((tuple(rule.match), tokens, found.kind))
        for found in plan.identities:
            tokens = _plain_tokens(found)
            if not tokens:
                continue
            if found.scope == "payload":
                if tokens[-1] not in _GENERIC_PAYLOAD_KEYS:
                    payload.setdefault(tokens[-1], found.kind)
                continue
            envelope.setdefault(tokens, found.kind)
            params = dict(found.params)
            # A field whose operator writes a network prefix: its values must be their own mask.
            if found.kind == "ip" and "ipv4_prefix" in params:
                masked.add(tokens[-1])
                if params.get("country") == "add":
                    masked.add("network")  # mask_ip writes {"network": the mask, "country": a code}
                if prefixes is None:
                    prefixes = (params["ipv4_prefix"], params.get("ipv6_prefix", 48))
    ipv4, ipv6 = prefixes or (24, 48)
    return IdentifierFields(envelope, payload, frozenset(masked or {"ip"}), ipv4, ipv6, tuple(scoped))


def _plain_tokens(found) -> tuple[str, ...] | None:
    """The keys of FOUND's path, through any decoded strings, or None where a step is not a plain key."""
    tokens = tuple(token for segment in found.path for token in segment)
    if not tokens or not all(isinstance(t, str) and t != WILDCARD for t in tokens):
        return None
    return tokens



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
EMAIL_ANCHORS = (re.compile(rb"@[\w-]++\."), re.compile(rb"%40[\w-]++\."))


def _emails_in(line: bytes) -> Iterator[str]:
    for anchors in EMAIL_ANCHORS:
        for anchor in anchors.finditer(line):
            email = email_at(line, anchor.start(), 0, len(line))
            if email is not None:
                yield email




def _scalar_text(value) -> str | None:
    if type(value) is str:
        return value
    if type(value) is int:
        return str(value)
    return None


def harvest_inputs(inputs: Iterable[Path], fields: IdentifierFields) -> Identifiers:
    """Every identifier in the raw INPUTS (files or directories, plain or gzip), read the way
    ``run`` reads them."""
    found = Identifiers()
    envelope = list(fields.envelope.items())
    statement_fields = envelope + list(_FIXED_STATEMENT.items())  # read from statements only
    payload_keys = fields.payload
    # Text that may hold a phone or an address, each distinct string once (most recur: URLs,
    # course and block keys), with where it was first seen; the detectors read them at the end.
    texts: dict[str, str] = {}
    for path, name in collect_inputs(list(inputs)):
        for number, line in enumerate(open_lines(path), start=1):
            origin = f"{name}:{number}"
            if b"@" in line or b"%40" in line:
                for email in _emails_in(line):
                    found.add(email, "email", "input", origin)
            event = parse_line(line)
            if type(event) is not dict:
                continue
            held = unwrap(event) if "event_type" not in event else None
            paths = envelope
            if type(held) is tuple:
                event, paths = held[0], statement_fields  # a statement, bare or in a ClickHouse row
            for tokens, kind in paths:
                value = event.get(tokens[0])
                for token in tokens[1:]:
                    if type(value) is not dict:
                        value = None
                        break
                    value = value.get(token)
                if value is not None:
                    value = _scalar_text(value)
                    if value:
                        _add_value(found, value, kind, origin)
            _walk_event(event, payload_keys, found, origin, texts)
            if fields.scoped and type(held) is not tuple:
                _harvest_scoped(event, fields.scoped, found, origin)
    _harvest_texts(texts, found)
    return found


def _harvest_scoped(event: dict, scoped, found: Identifiers, origin: str) -> None:
    """The values at the SCOPED payload paths of the rules whose patterns match EVENT's type."""
    event_type = event.get("event_type")
    if event_type is None:
        event_type = event.get("name")
    if type(event_type) is not str:
        return
    for patterns, tokens, kind in scoped:
        if not any(fnmatchcase(event_type, pattern) for pattern in patterns):
            continue
        value = event.get("event")
        for token in tokens:
            if type(value) is str and value[:1] == "{":
                try:
                    value = orjson.loads(value)  # a payload, or a field, that is a JSON string
                except orjson.JSONDecodeError:
                    value = None
            value = value.get(token) if type(value) is dict else None
        text = _scalar_text(value) if value is not None else None
        if text:
            _add_value(found, text, kind, origin)


PHONE_MIN_DIGITS = 9  # fewer digits are too common in logs to be searched as a phone
_MAX_DEPTH = 32
_DIGIT = re.compile(r"\d")
# A string that is a timestamp and nothing else holds no phone and no address.
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:\.\d{1,9})?)?(?:Z|[+-]\d\d:?\d\d)?")


def _walk_event(event: dict, payload_keys: dict[str, str], found: Identifiers, origin: str, texts: dict[str, str]) -> None:
    """One pass over EVENT (JSON strings decoded): the values of identifier keys in its payload,
    and into TEXTS the strings with a digit that are long enough to hold a phone or an address."""
    event_type = event.get("event_type")
    account_form = type(event_type) is str and event_type[:1] == "/" and ACCOUNT_POSTS.search(event_type) is not None
    stack: list[tuple[object, int, bool]] = [(event, 0, False)]
    pop, push = stack.pop, stack.append
    while stack:
        value, depth, in_payload = pop()
        if depth > _MAX_DEPTH:
            continue
        kind_of = type(value)
        if kind_of is dict:
            if in_payload:
                _account_values(value, found, origin, account_form)
            for key, item in value.items():
                if in_payload:
                    kind = payload_keys.get(key)
                    if kind is not None:
                        text = _scalar_text(item)
                        if text:
                            _add_value(found, text, kind, origin)
                            if type(item) is str and len(item) >= 7:
                                push((item, depth + 1, True))
                            continue
                        if type(item) is list:  # a form field: ["value"]
                            for text in item:
                                if type(text) is str and text.strip():
                                    _add_value(found, text, kind, origin)
                elif depth == 0 and key == "event":
                    push((item, 1, True))
                    continue
                if type(item) in (dict, list, str):
                    push((item, depth + 1, in_payload))
        elif kind_of is list:
            for item in value:
                if type(item) in (dict, list, str):
                    push((item, depth + 1, in_payload))
        elif kind_of is str:
            if value[:1] in ("{", "[") and len(value) > 1:
                try:
                    push((orjson.loads(value), depth + 1, in_payload))
                    continue
                except orjson.JSONDecodeError:
                    pass
            if len(value) >= 7 and value not in texts and _DIGIT.search(value) and not _TIMESTAMP.fullmatch(value):
                texts[value] = origin


# What the run learns outside identifier fields (``anonymizer.io.learn``): an account setting's
# old and new name, username or email, and the name of a registration or account form (an
# implicit event of such a path: another form's "name" is a team's or a file's).
_SETTING_KINDS = {"name": "name", "username": "username", "email": "email"}


def _account_values(payload: dict, found: Identifiers, origin: str, account_form: bool) -> None:
    setting = payload.get("setting")
    kind = _SETTING_KINDS.get(setting) if type(setting) is str else None
    if kind is not None:
        for key in ("old", "new"):
            value = payload.get(key)
            if type(value) is str and value.strip():
                _add_value(found, " ".join(value.split()) if kind == "name" else value, kind, origin)
    post = payload.get("POST") if account_form else None
    if type(post) is dict:
        names = post.get("name")
        for value in names if type(names) is list else [names]:
            if type(value) is str and value.strip():
                _add_value(found, " ".join(value.split()), "name", origin)


def _harvest_texts(texts: dict[str, str], found: Identifiers) -> None:
    """Phones and addresses that people typed (forum posts, answers, profile fields)."""
    detectors = TextScrubber(("phone", "ip"))
    for text, origin in texts.items():
        for kind, start, end in detectors.find(text):
            value = text[start:end]
            if kind == "ip" or len(_DIGIT.findall(value)) >= PHONE_MIN_DIGITS:
                found.add(value, kind, "input", origin)
            plain = _plain_address(value) if kind == "ip" else None
            if plain is not None and plain != value:
                found.add(plain, kind, "input", origin)  # its other forms are searched from this one
        if "://" in text:
            for host in _URL_HOST.findall(text):
                address = url_host_ipv4(host)
                if address is not None:
                    found.add(address, "ip", "input", origin)  # http://3405803821/: searched in all its forms


# How the detectors find an address written otherwise: a defanged or spaced dot, dashes for the
# dots of an IPv4 address or for the colons of an IPv6 one (``2001-db8--1.ipv6-literal.net``).
_URL_HOST = re.compile(r"://(?:[^/@\s]*@)?([0-9A-Fa-fXx.]+)(?=[:/?#\s\"]|\Z)")
_DEFANGED_DOT = re.compile(r"\[\.\]|\(\.\)|\{\.\}|\[dot\]|\(dot\)| \. ")


def _plain_address(value: str) -> str | None:
    """The address VALUE (as a detector found it) in its usual form, or None."""
    text = _DEFANGED_DOT.sub(".", value)
    for candidate in (text, text.replace("-", "."), text.split("s", 1)[0].replace("-", ":")):
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return None


def _add_value(found: Identifiers, value: str, kind: str, origin: str) -> None:
    if kind == "email" and value[: len(_MAILTO)].lower() == _MAILTO:
        value = value[len(_MAILTO):]  # an xAPI mbox
    if kind == "user_id" and not value.strip().isdecimal():
        kind = "username"  # a username typed where an id belongs: searched in a username's forms too
    if kind == "ip" and "," in value:
        for part in value.split(","):
            found.add(part, kind, "input", origin)
    else:
        found.add(value, kind, "input", origin)


def harvest_roster(paths: Iterable[Path]) -> Identifiers:
    """The ids, usernames, emails and names of the people in roster files (see ``anonymizer.core.roster``)."""
    roster, _ = load_roster(list(paths))
    origin = "roster " + ", ".join(roster.files)
    found = Identifiers()
    for person in roster.people:
        if person.id is not None:
            found.add(person.id, "user_id", "roster", origin)
        for kind, values in (
            ("username", person.usernames), ("email", person.emails), ("name", person.names), ("external_id", person.external_ids)
        ):
            for value in values:
                found.add(value, kind, "roster", origin)
    return found

