"""``keep``: copy the value unchanged, when it has the shape the rule names.

``shape`` says what a kept value must look like: one name of ``SHAPES`` below, a list of them
(the value must fit one), or ``any``. A value that does not fit is dropped and counted as
``invalid_value``, like an address that ``mask_ip`` cannot read: a person typed into a field the
policy keeps as an id (``"host": "bob@example.org"``) never leaves. The default is ``scalar``:
a string, number, boolean or null, never an object or a list, so a container leaves only where
the rule says ``shape: any``.

``null`` and ``""`` are kept whatever the shape, as leaf operators pass them: they carry nothing.
With a roster (or people learned from the inputs), a string that fits a named string shape but
equals a known username, email or user id is dropped too (a username can look like a ``word`` or
a ``hostname``), and so is one that holds a known username or user id as a *part*
(``i4x://Org/zelda-q/problem/x``, ``zelda-q.example.org``): see ``anonymizer.core.text.inside``
for the boundary and for the guard that keeps course words from counting.

``authored: true`` says that the policy's author has checked that the field holds text written
by the course team or the platform (a problem's question, an exam's name, a command name), never
by learners: ``policy check`` then does not warn when it holds prose. It changes nothing in a run.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, field_validator

from ..ipmask import host_holds_ip
from .base import DROP, Operator, register

_PART = r"[A-Za-z0-9_.~-]+"  # one part of an opaque key (org, course number, run)
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# Refuses an IPv4 address (dotted, zero-padded or not) or an IPv6 one where an id or a word stands.
_NOT_IP = r"(?![0-9]{1,3}(?:\.[0-9]{1,3}){3}$)(?![0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}$)"

# The named shapes of strings: each fullmatches the whole value. None of them admits "@" outside
# a key's own "type@"/"block@"/"ccx@" markers, a space, or more characters than real ids have.
SHAPES: dict[str, re.Pattern[str]] = {
    # Course keys: course-v1:Org+Num+Run, ccx-v1:Org+Num+Run+ccx@5, library-v1:Org+Lib, Org/Num/Run.
    "course_key": re.compile(
        rf"(?:(?:course|library)-v1:{_PART}(?:\+{_PART}){{1,2}}|ccx-v1:{_PART}\+{_PART}\+{_PART}\+ccx@[0-9]{{1,10}}"
        rf"|{_PART}/{_PART}/{_PART})"
    ),
    # Usage keys: block-v1:Org+Num+Run+type@problem+block@abc, ccx-block-v1, lib-block-v1,
    # i4x://Org/Num/category/name, and the hyphenated i4x-Org-Num-category-name of old problem ids.
    "usage_key": re.compile(
        rf"(?:(?:block|lib-block|ccx-block)-v1:{_PART}(?:\+{_PART}){{0,3}}(?:\+ccx@[0-9]{{1,10}})?"
        rf"\+type@[A-Za-z0-9_-]+\+block@[A-Za-z0-9_.:~-]+"
        rf"|i4x://{_PART}/{_PART}/{_PART}/[A-Za-z0-9_.:~-]+(?:@draft)?|i4x-[A-Za-z0-9_.~-]+)"
    ),
    # An organization code or a slug (topic id, badge slug): no "@", no space, short.
    "org": re.compile(_NOT_IP + r"[A-Za-z0-9_.-]{1,64}"),
    "slug": re.compile(_NOT_IP + r"[A-Za-z0-9_.-]{1,128}"),
    # A DNS name with at least one dot (or localhost), optionally with a port; IPs are refused below.
    "hostname": re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})+|localhost)(?::[0-9]{{1,5}})?"),
    "uuid": re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"),
    "hex_id": re.compile(r"[0-9a-fA-F]{1,64}"),
    "number": re.compile(r"-?[0-9]{1,20}(?:\.[0-9]{1,20})?(?:[eE][-+]?[0-9]{1,3})?"),
    "iso_time": re.compile(
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?"
    ),
    # A short identifier: an event source, a mode, a component or tab name.
    "word": re.compile(_NOT_IP + r"[A-Za-z][A-Za-z0-9_.:-]{0,63}"),
    # A flag: JSON true or false (see shape_check), or the words as GET parameters carry them.
    "boolean": re.compile(r"[Tt]rue|[Ff]alse|TRUE|FALSE"),
    # A language tag as the platform's language settings hold it: a language of 2 or 3 letters,
    # an optional script and an optional region (en, zh-hans, es-419, pt_BR).
    "language": re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z]{4})?(?:[-_](?:[A-Za-z]{2}|[0-9]{3}))?"),
    # A time zone of the tz database under one of its areas (Europe/Paris, America/Argentina/Salta,
    # Etc/GMT+5), or UTC / GMT with an optional offset (GMT+05:30), or a POSIX name (EST5EDT).
    "time_zone": re.compile(
        r"(?:Africa|America|Antarctica|Arctic|Asia|Atlantic|Australia|Europe|Indian|Pacific|Etc|US|Canada|Brazil|Chile|Mexico)"
        r"(?:/[A-Z][A-Za-z0-9_+-]{0,29}){1,2}|(?:UTC|GMT)(?:[+-][0-9]{1,2}(?::?[0-9]{2})?)?|[A-Z]{3,4}[0-9]{1,2}(?:[A-Z]{3,4})?"
    ),
    # A base64 digest (SHA-1, SHA-256, SHA-512) with its padding: grading-policy and block hashes.
    "b64_digest": re.compile(r"[A-Za-z0-9+/_-]{27}=|[A-Za-z0-9+/_-]{43}=|[A-Za-z0-9+/_-]{86}=="),
    # A letter grade of a course's grading policy: A, B+, Pass.
    "grade_letter": re.compile(r"[A-Za-z]{1,16}[+-]?"),
    # A media type as a browser reports a file's: image/png, application/vnd.ms-excel.
    "mime_type": re.compile(r"[a-z]{1,20}/[A-Za-z0-9][A-Za-z0-9.+_-]{0,79}"),
}
# Shapes of hex digits, digits and fixed separators only: no username stands alone inside one, and
# verify reads no user id in them (after "-", "." or ":"). Values of these shapes are compared with
# the known people whole, not searched inside: times and ids are distinct in every event.
_CLOSED = ("uuid", "hex_id", "number", "iso_time", "boolean")
# Any closed shape, matched without regard to ASCII case: what a lower-cased value of one of them
# fits (the native engine's test of which of the roster's people such a value could be).
CLOSED_SHAPES_IGNORING_CASE = re.compile("|".join(f"(?:{SHAPES[name].pattern})" for name in _CLOSED), re.IGNORECASE | re.ASCII)
# Shapes that are not patterns: "scalar" (any string, number, boolean or null) and "any".
OTHER_SHAPES = ("scalar", "any")
_SCALARS = (str, int, float, bool, type(None))


class KeepParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    authored: bool = False
    shape: tuple[str, ...] = ("scalar",)

    @field_validator("shape", mode="before")
    @classmethod
    def _names(cls, value):
        names = (value,) if isinstance(value, str) else value
        if not isinstance(names, (list, tuple)) or not names:
            raise ValueError("'shape' is a shape name or a list of them")
        for name in names:
            if name not in SHAPES and name not in OTHER_SHAPES:
                raise ValueError(f"unknown shape {name!r}: expected one of {sorted(SHAPES) + list(OTHER_SHAPES)}")
        return tuple(names)

    @property
    def copies_anything(self) -> bool:
        return "any" in self.shape


def _is_ip(text: str) -> bool:
    """Whether a host name TEXT (with an optional port) is or holds an IP address."""
    return host_holds_ip(text.rsplit(":", 1)[0] if text.count(":") == 1 else text)


_LONGEST = 255  # no platform id, key or host name is longer


def _matcher(name: str):
    match = SHAPES[name].fullmatch
    if name == "hostname":
        return lambda text: len(text) <= _LONGEST and match(text) is not None and not _is_ip(text)
    return lambda text: len(text) <= _LONGEST and match(text) is not None


def _any_shape(names: tuple[str, ...]):
    """One function telling whether a string fits one of the shapes NAMES: the patterns are
    joined into one alternation (a full match of the alternation is a full match of one of
    them), so that a value costs one regular-expression call whatever the number of shapes."""
    plain = [SHAPES[name].pattern for name in names if name in SHAPES and name != "hostname"]
    joined = re.compile("|".join(f"(?:{pattern})" for pattern in plain)).fullmatch if plain else None
    host = _matcher("hostname") if "hostname" in names else None
    if host is None:
        if joined is None:
            return lambda text: False
        return lambda text: len(text) <= _LONGEST and joined(text) is not None
    if joined is None:
        return host
    return lambda text: len(text) <= _LONGEST and (joined(text) is not None or host(text))


def shape_check(names: tuple[str, ...], roster=None, rules=None):
    """A function telling whether a value fits one of the shapes NAMES (a roster's people never
    do, whole or as a part of the value; RULES are the policy's ``roster`` rules, for the part)."""
    if "any" in names:
        return lambda value: True
    scalar = "scalar" in names
    matches = _any_shape(names)
    numbers = "number" in names
    booleans = "boolean" in names
    by_id = getattr(roster, "by_id", None) or {}
    inside = None
    if roster is not None and rules is not None:
        from ..text.inside import people_inside  # only with a roster: it builds the automaton

        inside = people_inside(roster, rules)
    closed = [SHAPES[name].pattern for name in names if name in _CLOSED]
    is_closed = re.compile("|".join(f"(?:{pattern})" for pattern in closed)).fullmatch if closed else None

    def known(text: str) -> bool:
        if roster is None:
            return False
        if text in by_id or roster.person_for(text) is not None:
            return True
        return inside is not None and not (is_closed is not None and is_closed(text)) and inside(text)

    def fits(value) -> bool:
        kind = type(value)
        if value is None or value == "" or (scalar and kind in _SCALARS):  # they carry nothing
            return True
        if numbers and (kind is int or kind is float):
            return True
        if booleans and kind is bool:
            return True
        if kind is not str or not matches(value):
            return False
        return not known(value)

    return fits


@register
class Keep(Operator):
    name = "keep"
    Params = KeepParams
    leaf = False

    @classmethod
    def build(cls, params, ctx):
        fits = shape_check(params.shape, ctx.roster, ctx.roster_rules)
        # value -> the value itself or DROP, per string or integer: ids, keys and enums recur in
        # every event. Exposed as ``keep.memo`` so that the compiled containers look a value up
        # without calling ``keep`` at all (as they do for the leaf operators' memos).
        memo: dict = {}

        def keep(value, state):
            kind = type(value)
            if kind is str or kind is int:
                found = memo.get(value)
                if found is None:
                    found = value if fits(value) else DROP
                    if len(memo) >= 1 << 16:
                        memo.clear()
                    memo[value] = found
                return found
            return value if fits(value) else DROP

        keep.memo = memo
        return keep
