"""The learned roster: the people a run's own inputs name in their identifier fields.

Before anonymizing, one pass over the inputs reads the fields the policy pseudonymizes with
the ``username`` and ``user_id`` identities (the envelope's ``username``, ``context.user_id``, a
payload's ``target_username``, ``student`` ...) and the few fields that hold an account's email
(``EMAIL_FIELDS``). It collects every username, user id and email found there, and links them:

- a username and a user id named side by side (the envelope's ``username`` and
  ``context.user_id``; a payload's ``username`` and ``user_id``) are one person;
- an email in an email field belongs to the identity beside it in the payload, else to the
  event's actor; an email typed into a username field is collected as an email.

People are also named outside identifier fields, and those values are learned too:

- an account setting's ``old`` and ``new`` (``edx.user.settings.changed``, ``.requested`` ...):
  where ``setting`` is ``name``, ``username`` or ``email``, the value is that person's name,
  username or email, linked to the user id beside it in the payload, else to the event's actor;
- the ``POST`` body of a registration or account request (an implicit event whose type is the
  path, ``/user_api/v1/account/registration/``, ``/create_account``): its ``username``, ``name``
  and ``email`` are one person's;
- a URL path (``page``, ``referer``, ``context.path``, an implicit event's type) that a route
  template of ``anonymizer/data/url_routes.yaml`` reads as holding a username or an email in a
  segment (``/u/{username}``, ``/api/user/v1/accounts/{username}``): whose it is the URL does
  not say, so it is learned on its own;
- an email address written anywhere in a line (a forum post, a form, a URL): on its own too.

The result is a ``Roster`` of people marked ``listed=False``: every free text, URL and key of the
run is searched for them as for the people of ``--roster`` (with the same rules: usernames that
are common words or short are only found as ``@mentions``), but their username pseudonyms are
never linked to their user ids, since that would make a pseudonym depend on which other logs a
run happened to read. Same inputs, same roster: people are listed in the order the inputs first
name them, whatever the number of workers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit
from typing import Any, Iterable, Iterator

import orjson

from ..core.compiler import CompiledPolicy, decode_payload
from ..core.text.detectors import EMAIL_PATTERN, email_at
from ..core.paths import WILDCARD, Token, parse_path
from ..core.policy import FieldRule, Policy
from ..core.errors import InputError
from .inputs import Batch, batches, collect_inputs, open_lines, split_lines
from .pool import ordered_map
from ..core.lines import event_key
from ..core.roster import Person, Roster
from ..core.url_routes import Unit, default_rules, is_key

USERNAME, USER_ID = "username", "user_id"
# Payload fields that hold the email of the account the payload is about (enrollment events of
# some platform versions, registration events), and settings changes whose values are emails.
EMAIL_FIELDS = ("email", "user_email")
EMAIL_SETTINGS = ("email",)
NAME_SETTINGS = ("name",)
USERNAME_SETTINGS = ("username",)
# Implicit events whose POST body is a person's own account: registration and account forms.
ACCOUNT_POSTS = re.compile(r"regist|create_account|/account|/user_api/|/api/user/", re.IGNORECASE)
POST_FIELDS = ("username", "name", "email")
URL_PERSON_KINDS = frozenset({"username", "username_or_email", "email"})
NAME_MAX_CHARS = 200  # longer is no one's name: prose pasted into a form
_Paths = tuple[tuple[tuple[Token, ...], str], ...]


def _identity_paths(rules: dict[str, FieldRule]) -> _Paths:
    """(path tokens, identity) of every field RULES pseudonymize as a username or a user id."""
    found = []
    for path, rule in rules.items():
        if rule.op == "pseudonymize" and rule.params.identity in (USERNAME, USER_ID):
            found.append((parse_path(path), rule.params.identity))
    return tuple(found)


def _values(value: Any, tokens: tuple[Token, ...]) -> Iterable[Any]:
    """The values at TOKENS under VALUE (``*`` is any key or item)."""
    if not tokens:
        yield value
        return
    token, rest = tokens[0], tokens[1:]
    if token == WILDCARD:
        items = value.values() if type(value) is dict else (value if type(value) is list else ())
        for item in items:
            yield from _values(item, rest)
    elif type(token) is int:
        if type(value) is list and -len(value) <= token < len(value):
            yield from _values(value[token], rest)
    elif type(value) is dict:
        item = value.get(token)
        if item is not None:
            yield from _values(item, rest)


def _username(value: Any) -> str | None:
    if type(value) is int:
        value = str(value)
    if type(value) is not str:
        return None
    value = value.strip()
    return value or None


def _user_id(value: Any) -> str | None:
    if type(value) is int:
        return str(value) if value > 0 else None
    if type(value) is str:
        value = value.strip()
        if value.isascii() and value.isdecimal() and int(value) > 0:
            return str(int(value))
    return None


_SEEN_LIMIT = 1 << 20
_LEARNED_SETTINGS = frozenset(EMAIL_SETTINGS + NAME_SETTINGS + USERNAME_SETTINGS)


def person_name(value: str) -> str | None:
    """VALUE as a person's name (white space collapsed), or None when it cannot be one: empty,
    without a letter, an email, a null spelled out, or prose (longer than ``NAME_MAX_CHARS``)."""
    name = " ".join(value.split())
    if not name or len(name) > NAME_MAX_CHARS or name.lower() in ("none", "null") or is_email(name):
        return None
    return name if any(ch.isalpha() for ch in name) else None


# Where an address may be: an "@" (or "%40") before a domain's first dot; the detector's own
# pattern decides around it (block keys' ``block@name`` have no dot after them).
_EMAIL_ANCHOR = re.compile(rb"(?:@|%40)[\w-]+\.")


def emails_in(line: bytes) -> list[str]:
    """The email addresses written anywhere in a raw LINE (as ``verify`` harvests them)."""
    found = (email_at(line, anchor.start(), 0, len(line)) for anchor in _EMAIL_ANCHOR.finditer(line))
    return [email for email in found if email is not None]


def _url_people(rules, path: str) -> tuple:
    """(kind, value) of each username or email that a route template places in PATH."""
    if len(path) < 3 or path.count("/") < 2:
        return ()
    segments = path.split("/")
    units: list[Unit] = []
    index = 0
    while index < len(segments):
        raw = segments[index]
        text = unquote(raw) if "%" in raw else raw
        units.append(Unit(raw, text, False))
        index += 1
        # An old course id (Org/Num/Run) spans three segments: one unit, as scrub_url reads it.
        if text.casefold() in ("courses", "course") and index + 2 < len(segments) and ":" not in segments[index]:
            joined = "/".join(segments[index : index + 3])
            units.append(Unit(joined, unquote(joined), True))
            index += 3
    start = 1 if units[0].text == "" else 0
    found = []
    for unit, kind in zip(units, rules.kinds(units, start)):
        if not kind or unit.key:
            continue
        pairs = zip(kind.split(","), unit.text.split(",", 1)) if "," in kind else ((kind, unit.text),)
        for one, text in pairs:
            text = text.strip()
            if one not in URL_PERSON_KINDS or not text or is_key(text):
                continue
            if is_email(text):
                found.append(("email", text))
            elif one != "email":
                found.append(("username", text))
    return tuple(found)


def _getter(tokens: tuple[Token, ...]):
    """A function reading the value at TOKENS (plain keys only) from an event, or None."""
    if len(tokens) == 1:
        first = tokens[0]
        return lambda event: event.get(first)
    first, rest = tokens[0], tokens[1:]
    inner = _getter(rest)
    return lambda event: inner(value) if type(value := event.get(first)) is dict else None


def _envelope_reader(paths: _Paths):
    """A function giving the raw values of PATHS in an event, as a key for the envelopes already
    read; None when a path has a wildcard or a list index (then every event is read)."""
    if any(type(t) is not str or t == WILDCARD for tokens, _ in paths for t in tokens):
        return lambda event: None
    getters = tuple(_getter(tokens) for tokens, _ in paths)
    return lambda event: (paths, *[get(event) for get in getters])


def is_email(value: str) -> bool:
    return "@" in value and EMAIL_PATTERN.fullmatch(value) is not None


@dataclass
class _Group:
    """The identities found side by side (one event's envelope, or one payload's top level)."""

    usernames: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)


class Learner:
    """Collects the people of a run's inputs under POLICY; ``roster()`` is the result."""

    def __init__(self, policy: Policy) -> None:
        self._resolver = CompiledPolicy(rules=[(rule, None) for rule in policy.events], unknown=None)
        self._envelope = _identity_paths(policy.envelope)
        self._unknown = (self._envelope, (), _envelope_reader(self._envelope))
        self._rules: list[tuple] = []  # per event rule: (envelope paths, payload paths, envelope reader)
        for rule in policy.events:
            envelope = _identity_paths({**policy.envelope, **rule.envelope}) if rule.envelope else self._envelope
            payload = _identity_paths(rule.fields) if rule.action == "anonymize" else ()
            self._rules.append((envelope, payload, _envelope_reader(envelope) if rule.envelope else self._unknown[2]))
        self._routes: dict[tuple[str, str], tuple] = {}
        # Insertion order is first appearance in the inputs: the roster is deterministic.
        self._usernames: dict[str, list] = {}  # folded → [spelling, user id or None]
        self._ids: dict[str, list[str]] = {}  # user id → folded usernames
        self._emails: dict[str, list] = {}  # folded → [spelling, ("id"|"username", value) or None]
        self._names: dict[str, list] = {}  # folded → [spelling, ("id"|"username", value) or None]
        self._url_people: dict[str, tuple] = {}  # URL → (kind, value) of the people its path names
        self._url_rules = default_rules()
        # Envelopes already read, by their raw identifier values: the same actor recurs in
        # thousands of events, and linking them again would change nothing.
        self._seen: set[tuple] = set()
        self.lines = 0

    # ---------------------------------------------------------------- reading

    def add_files(self, inputs: list[Path]) -> None:
        """Read every line of INPUTS (files and directories, as ``run`` collects them)."""
        for path, _ in collect_inputs(inputs):
            self.add_lines(open_lines(path))

    def add_lines(self, lines: Iterable[bytes]) -> None:
        loads = orjson.loads
        for line in lines:
            self.lines += 1
            try:
                event = loads(line)
            except orjson.JSONDecodeError:
                continue  # the run rejects it; nothing of it is written
            if type(event) is dict:
                self.add_event(event)
                if b"@" in line or b"%40" in line:
                    for email in emails_in(line):  # typed anywhere: whose, the line does not say
                        self._link(_Group(emails=[email]))

    def _paths(self, event: dict) -> tuple:
        key = event_key(event)
        if key is None:
            return self._unknown
        found = self._routes.get(key)
        if found is None:
            index = self._resolver.rule_index(*key)
            found = self._rules[index] if index is not None else self._unknown
            if len(self._routes) > 100_000:
                self._routes.clear()
            self._routes[key] = found
        return found

    def add_event(self, event: dict) -> None:
        """Collect the identities of one parsed event."""
        envelope_paths, payload_paths, envelope_reader = self._paths(event)
        raw = envelope_reader(event)
        try:
            seen = raw is not None and raw in self._seen
        except TypeError:  # a value that is a dict or a list: read it the long way
            raw, seen = None, False
        if not seen:
            actor = self._group(event, envelope_paths)
            self._link(actor)
            if raw is not None:
                if len(self._seen) >= _SEEN_LIMIT:
                    self._seen.clear()
                self._seen.add(raw)
        self._add_urls(event)
        payload = event.get("event")
        if payload is None or not (payload_paths or type(payload) is dict or type(payload) is str):
            return
        if type(payload) is str:
            post = '"POST"' in payload and self._account_post(event)
            if not payload_paths and "mail" not in payload and not post:
                return  # nothing to read: decoding the payload would cost for nothing
            try:
                _, payload = decode_payload(payload)
            except Exception:  # noqa: BLE001  (an undecodable payload is emptied by the run)
                return
            if post and type(payload) is dict and type(payload.get("POST")) is dict:
                self._add_post(payload["POST"])
        if type(payload) is not dict:
            if payload_paths and type(payload) is list:
                self._link(self._group(payload, payload_paths))
            return
        own = self._group(payload, payload_paths)
        emails = [v for name in EMAIL_FIELDS if type(v := payload.get(name)) is str]
        names: list[str] = []
        usernames: list[str] = []
        setting = payload.get("setting")
        if type(setting) is str and setting in _LEARNED_SETTINGS:
            for value in (payload.get("old"), payload.get("new")):
                if type(value) is not str or not value.strip():
                    continue
                value = value.strip()
                if setting in EMAIL_SETTINGS or is_email(value):
                    emails.append(value)
                elif setting in NAME_SETTINGS:
                    name = person_name(value)
                    if name is not None:
                        names.append(name)
                else:
                    usernames.append(value)
        emails = [e.strip() for e in emails if is_email(e.strip())]
        if emails or names or usernames:
            # An account's email, name or username belongs to the identity beside it, else to
            # the event's actor.
            owner = own if (own.usernames or own.ids) else self._group(event, envelope_paths)
            owner.emails.extend(emails)
            owner.names.extend(names)
            ids = list(owner.ids) if len(owner.ids) == 1 else []
            if owner is not own:
                self._link(owner)
            for username in usernames:  # an old or new username of the account: one at a time
                self._link(_Group([username], ids))
        self._link(own)

    def _account_post(self, event: dict) -> bool:
        """Whether EVENT is an implicit event posting a person's own account (registration, account forms)."""
        event_type = event.get("event_type")
        return type(event_type) is str and event_type[:1] == "/" and ACCOUNT_POSTS.search(event_type) is not None

    def _add_post(self, post: dict) -> None:
        """The username, name and email of a registration or account form: one person's."""
        group = _Group()
        for key in POST_FIELDS:
            found = post.get(key)
            for value in (found if type(found) is list else [found]):
                if type(value) is not str or not value.strip():
                    continue
                value = value.strip()
                if is_email(value):
                    group.emails.append(value)
                elif key == "username":
                    group.usernames.append(value)
                elif key == "name" and (name := person_name(value)) is not None:
                    group.names.append(name)
        if group.usernames or group.emails or group.names:
            self._link(group)

    def _add_urls(self, event: dict) -> None:
        """The usernames and emails in the person segments of the event's URLs (see the module's
        docstring): each learned on its own, since a URL does not say whose it is."""
        context, payload, event_type = event.get("context"), event.get("event"), event.get("event_type")
        urls = (
            event.get("page"),
            event.get("referer"),
            context.get("path") if type(context) is dict else None,
            payload.get("url") if type(payload) is dict else None,
            event_type if type(event_type) is str and event_type[:1] == "/" else None,  # an implicit event's path
        )
        memo = self._url_people
        for url in urls:
            if type(url) is not str or "/" not in url:
                continue
            found = memo.get(url)
            if found is None:
                found = _url_people(self._url_rules, urlsplit(url).path if "://" in url else url.split("?", 1)[0].split("#", 1)[0])
                if len(memo) >= _SEEN_LIMIT:
                    memo.clear()
                memo[url] = found
            for kind, value in found:
                self._link(_Group(emails=[value]) if kind == "email" else _Group(usernames=[value]))

    def _group(self, value: Any, paths: _Paths) -> _Group:
        group = _Group()
        for tokens, identity in paths:
            for found in _values(value, tokens):
                if identity == USER_ID:
                    user_id = _user_id(found)
                    if user_id is not None and user_id not in group.ids:
                        group.ids.append(user_id)
                    continue
                username = _username(found)
                if username is None:
                    continue
                if is_email(username):
                    group.emails.append(username)
                elif username not in group.usernames:
                    group.usernames.append(username)
        return group

    def _link(self, group: _Group) -> None:
        folded = list(dict.fromkeys(u.lower() for u in group.usernames))
        # Only an unambiguous pair is one person: an event naming two usernames and one id
        # (an instructor acting on a learner) says nothing about whose id it is.
        user_id = group.ids[0] if len(group.ids) == 1 and len(folded) == 1 else None
        for user in group.ids:
            self._ids.setdefault(user, [])
        for spelling in group.usernames:
            low = spelling.lower()
            entry = self._usernames.get(low)
            if entry is None:
                entry = self._usernames[low] = [spelling, None]
            if user_id is not None and entry[1] is None:
                entry[1] = user_id
                known = self._ids[user_id]
                if low not in known:
                    known.append(low)
        owner = ("id", user_id) if user_id is not None else (
            ("username", folded[0]) if len(folded) == 1 and not group.ids else (("id", group.ids[0]) if len(group.ids) == 1 and not folded else None)
        )
        for values, known in ((group.emails, self._emails), (group.names, self._names)):
            for value in values:
                low = value.lower()
                entry = known.get(low)
                if entry is None:
                    entry = known[low] = [value, None]
                if entry[1] is None and owner is not None:
                    entry[1] = owner
        group.emails.clear()  # linked once
        group.names.clear()

    # ---------------------------------------------------------------- the result

    def roster(self) -> Roster:
        """The people learned so far, as a roster (people marked ``listed=False``)."""
        emails_of, loose_emails = self._owned(self._emails)
        names_of, loose_names = self._owned(self._names)
        people: list[Person] = []
        for user_id, folded in self._ids.items():
            usernames = tuple(self._usernames[low][0] for low in folded)
            emails = list(emails_of.get(("id", user_id), ()))
            names = list(names_of.get(("id", user_id), ()))
            for low in folded:
                emails += emails_of.get(("username", low), ())
                names += names_of.get(("username", low), ())
            people.append(Person(user_id, usernames, tuple(emails), tuple(names), False))
        for low, (spelling, user_id) in self._usernames.items():
            if user_id is None:
                key = ("username", low)
                people.append(Person(None, (spelling,), tuple(emails_of.get(key, ())), tuple(names_of.get(key, ())), False))
        people.extend(Person(None, (), (email,), (), False) for email in loose_emails)
        people.extend(Person(None, (), (), (name,), False) for name in loose_names)
        return Roster(people)

    def _owned(self, values: dict[str, list]) -> tuple[dict[tuple[str, str], list[str]], list[str]]:
        """VALUES (emails or names) by their owner (a username with an id counts as the id), and
        those without one."""
        owned: dict[tuple[str, str], list[str]] = {}
        loose: list[str] = []
        for spelling, owner in values.values():
            if owner is None:
                loose.append(spelling)
                continue
            if owner[0] == "username" and self._usernames.get(owner[1], [None, None])[1] is not None:
                owner = ("id", self._usernames[owner[1]][1])
            owned.setdefault(owner, []).append(spelling)
        return owned, loose

    def summary(self) -> dict:
        """Counts for the manifest: never a person."""
        return {"usernames": len(self._usernames), "user_ids": len(self._ids), "emails": len(self._emails), "names": len(self._names)}


class GroupRecorder(Learner):
    """A learner that records the identity groups it would link, in first-seen order, instead of
    linking them: a share of the first pass (a Spark split, a worker's batches), replayed in input
    order into one ``Learner``.

    Linking a group a second time, at any later point, changes nothing (every link only fills
    what is still empty, and the order of first appearance is already set), so a repeat need not
    be recorded, and whichever share saw a group first, the replay learns the same roster."""

    def __init__(self, policy: Policy) -> None:
        super().__init__(policy)
        self.groups: list[tuple] = []
        self._recorded: set[tuple] = set()

    def _link(self, group: _Group) -> None:
        found = (tuple(group.usernames), tuple(group.ids), tuple(group.emails), tuple(group.names))
        group.emails.clear()
        group.names.clear()
        if found not in self._recorded:
            if len(self._recorded) >= _SEEN_LIMIT:
                self._recorded.clear()  # a repeat recorded again is harmless (see above)
            self._recorded.add(found)
            self.groups.append(found)


def replay(learner: Learner, groups: list[tuple]) -> None:
    """Link GROUPS (recorded by ``GroupRecorder``) into LEARNER, in order."""
    for usernames, ids, emails, names in groups:
        learner._link(_Group(list(usernames), list(ids), list(emails), list(names)))



class LearnTask:
    """What a worker does to a batch in the first pass: the identity groups of its lines, in
    order (``ordered_map`` sends it to each worker once; the recorder is made there)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._recorder: GroupRecorder | None = None

    def __getstate__(self) -> dict:
        return {"policy": self.policy, "_recorder": None}

    def __call__(self, batch: Batch) -> tuple[int, list[tuple]]:
        if self._recorder is None:
            self._recorder = GroupRecorder(self.policy)
        recorder = self._recorder
        recorder.groups = []
        lines = split_lines(batch.data)
        recorder.add_lines(lines)
        return len(lines), recorder.groups


def _readable_batches(sources: list[tuple[Path, str]]) -> Iterator[Batch]:
    """The batches of SOURCES in order; a file that cannot be read to its end is left there
    (the run itself reads it again and stops with an error that names it)."""
    for index, (path, name) in enumerate(sources):
        try:
            for item in batches(index, name, path, hash=False):
                if isinstance(item, Batch):
                    yield item
        except InputError:
            continue


def learn_sources(policy: Policy, sources: list[tuple[Path, str]], jobs: int) -> Learner:
    """The first pass of a run over SOURCES ((path, name) pairs), on JOBS processes: the lines
    are read in the workers and their groups linked here in input order, so the learned roster is
    the same whatever JOBS."""
    learner = Learner(policy)
    if jobs <= 1:
        for batch in _readable_batches(sources):
            learner.add_lines(split_lines(batch.data))
        return learner
    for _, found in ordered_map(_readable_batches(sources), LearnTask(policy), jobs):
        lines, groups = found
        learner.lines += lines
        replay(learner, groups)
    return learner


def learn_roster(inputs: list[Path], policy: Policy) -> tuple[Roster, dict]:
    """The learned roster of INPUTS under POLICY, and its counts for the manifest."""
    learner = Learner(policy)
    learner.add_files(inputs)
    return learner.roster(), learner.summary()
