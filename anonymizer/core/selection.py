"""Selection: which events a run writes, by course, organization, day, event type and staff.

A selection is a property of the run (``run --course --org --since --until --event-type
--exclude-staff``). It is validated once (``Selection.parse``: a bad glob or date is a
``UsageError`` naming the option, never the value) and applied per line by the batch function,
before the plan runs, on the line's routing key and its parsed envelope.

**It reads only what the package keeps.** Each rule of the plan is looked at once
(``visibility``): the course is read only when the rule writes ``context.course_id`` out (or, for
an implicit event, its URL path), the day only when it writes ``time``, the actor only from the
identity fields it pseudonymizes. A value the policy drops is, for selection and for the routing
key, as if the event had none: a selection cannot be used to learn what the policy removes, and
every event of a package can be checked against its selection from the package alone.

What an event with no value for a criterion becomes: with ``--course`` or ``--org``, an event with
no (kept) course is left out; with ``--since`` or ``--until``, an event with no (kept) day is left
out; with ``--exclude-staff``, an event whose kept identity fields name nobody of the roster's
staff is written (anonymous events and events whose rule keeps no actor included).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from fnmatch import fnmatchcase
from typing import Any, Iterable

from .errors import UsageError
from .outcomes import Route
from .plan import Container, Op, Plan, Rule
from .stats import event_type_label

# What a course glob or an organization may hold: the characters of course keys, and glob syntax.
_COURSE_GLOB = re.compile(r"[\w.\-~+:/@*?\[\]!]{1,200}", re.ASCII)
_ORG_GLOB = re.compile(r"[\w.\-~*?\[\]!]{1,100}", re.ASCII)
_EVENT_GLOB = re.compile(r"[\x21-\x7e]{1,200}")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_GLOB_CHARS = "*?["
# Actor kinds read for --exclude-staff, and the operator that writes them out (as pseudonyms).
_ACTOR_KINDS = ("username", "user_id")


# ---------------------------------------------------------------- what a rule writes out


@dataclass(frozen=True)
class Visible:
    """What one rule writes out, of what selection and routing read: ``course`` (``context.
    course_id``), ``url`` (the event type and name, where an implicit event's course is),
    ``time``, and ``actors``: (kind, key path) of the envelope's identity fields it pseudonymizes."""

    course: bool = False
    url: bool = False
    time: bool = False
    actors: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def hides(self) -> bool:
        """Whether the rule drops something a routing key would name."""
        return not (self.course and self.url and self.time)


NOTHING = Visible()


def _kept(container: Container | None, path: tuple[str, ...]) -> bool:
    """Whether CONTAINER writes the value at PATH out: every step a named key without a condition,
    the last one an operator other than ``drop``. Anything less certain counts as dropped."""
    node: Any = container
    for step in path:
        if not isinstance(node, Container):
            return False
        entry = next((k for k in node.keys if k.key == step), None)
        if entry is None or entry.when is not None:
            return False
        node = entry.rule
    return isinstance(node, Op) and node.op != "drop"


def visibility(plan: Plan, rule: Rule) -> Visible:
    """What RULE of PLAN writes out (``NOTHING`` for a rule that drops its events)."""
    if rule.action == "drop" or rule.envelope is None:
        return NOTHING
    envelope = plan.envelopes[rule.envelope]
    actors = []
    for identity in rule.identities:
        if identity.scope != "envelope" or identity.kind not in _ACTOR_KINDS or identity.op != "pseudonymize":
            continue
        if len(identity.path) != 1 or not all(isinstance(t, str) and t != "*" for t in identity.path[0]):
            continue  # inside a decoded string, or under a wildcard: not an actor field
        steps = tuple(identity.path[0])
        if _kept(envelope, steps):
            actors.append((identity.kind, steps))
    return Visible(
        course=_kept(envelope, ("context", "course_id")),
        url=_kept(envelope, ("event_type",)) and _kept(envelope, ("name",)),
        time=_kept(envelope, ("time",)),
        actors=tuple(actors),
    )


# ---------------------------------------------------------------- the selection


def _globs(option: str, values: Iterable[str] | None, shape: re.Pattern[str], what: str) -> tuple[str, ...]:
    found = []
    for position, value in enumerate(values or (), start=1):
        if not isinstance(value, str) or not shape.fullmatch(value) or value.count("[") != value.count("]"):
            raise UsageError(f"{option}: value {position} is not {what}")
        found.append(value)
    return tuple(found)


def _day(option: str, value: str | date | None) -> str | None:
    if value is None or isinstance(value, date):
        return value.isoformat() if value is not None else None
    if not isinstance(value, str) or not _DAY.fullmatch(value.strip()):
        raise UsageError(f"{option}: expected a UTC date as YYYY-MM-DD")
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise UsageError(f"{option}: not a valid date (expected YYYY-MM-DD)") from None


def _matcher(patterns: tuple[str, ...]):
    """A test of a string against PATTERNS: exact names by one set lookup, globs by fnmatchcase."""
    exact = frozenset(p for p in patterns if not any(c in p for c in _GLOB_CHARS))
    globs = tuple(p for p in patterns if any(c in p for c in _GLOB_CHARS))
    return lambda value: value in exact or any(fnmatchcase(value, g) for g in globs)


def course_org(course: str) -> str:
    """The organization of a course key (``course-v1:Org+Num+Run`` or ``Org/Num/Run``)."""
    if ":" in course:
        return course.split(":", 1)[1].split("+", 1)[0]
    return course.split("/", 1)[0]


@dataclass(frozen=True)
class Staff:
    """The staff of a roster: user ids (canonical decimal) and usernames (case-folded)."""

    user_ids: frozenset[str] = frozenset()
    usernames: frozenset[str] = frozenset()

    def __len__(self) -> int:
        return max(len(self.user_ids), len(self.usernames))


def staff_of(roster, option: str = "--exclude-staff") -> Staff:
    """The staff of ROSTER (``anonymizer.core.roster.Roster``): a ``UsageError`` when none of its
    files had a staff or role column."""
    if roster is None or not getattr(roster, "staff_known", False):
        raise UsageError(
            f"{option} needs a roster with a staff or role column (is_staff, is_superuser, staff or role), "
            "or an auth_user export: pass it with --roster"
        )
    ids = frozenset(p.id for p in roster.people if p.staff and p.id is not None)
    names = frozenset(u.casefold() for p in roster.people if p.staff for u in p.usernames)
    return Staff(ids, names)


@dataclass(frozen=True)
class Selection:
    """Which events a run writes. Empty criteria select everything; given ones must all hold."""

    courses: tuple[str, ...] = ()
    orgs: tuple[str, ...] = ()
    since: str | None = None  # UTC day, inclusive
    until: str | None = None  # UTC day, inclusive
    event_types: tuple[str, ...] = ()
    staff: Staff | None = None  # with --exclude-staff: the people whose events are left out
    _course: Any = field(default=None, compare=False, repr=False)
    _org: Any = field(default=None, compare=False, repr=False)
    _type: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(
        cls,
        *,
        courses: Iterable[str] | None = None,
        orgs: Iterable[str] | None = None,
        since: str | date | None = None,
        until: str | date | None = None,
        event_types: Iterable[str] | None = None,
        exclude_staff: bool = False,
        roster=None,
    ) -> Selection | None:
        """The selection of these options, validated (None when they select everything).
        Errors name the option and the position of the bad value, never the value."""
        course_globs = _globs("--course", courses, _COURSE_GLOB, "a course key (course-v1:Org+Num+Run or Org/Num/Run) or a glob of one")
        org_globs = _globs("--org", orgs, _ORG_GLOB, "an organization (the Org of a course key) or a glob of one")
        type_globs = _globs("--event-type", event_types, _EVENT_GLOB, "an event type or a glob of one (printable ASCII, no spaces)")
        first, last = _day("--since", since), _day("--until", until)
        if first is not None and last is not None and first > last:
            raise UsageError("--since is after --until: no event could be selected")
        staff = staff_of(roster) if exclude_staff else None
        if not (course_globs or org_globs or type_globs or first or last or staff is not None):
            return None
        return cls(course_globs, org_globs, first, last, type_globs, staff)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_course", _matcher(self.courses) if self.courses else None)
        object.__setattr__(self, "_org", _matcher(self.orgs) if self.orgs else None)
        object.__setattr__(self, "_type", _matcher(self.event_types) if self.event_types else None)

    def __reduce__(self):  # the matchers are rebuilt where the selection arrives
        return (Selection, (self.courses, self.orgs, self.since, self.until, self.event_types, self.staff))

    def describe(self) -> dict:
        """The selection as the manifest and the journal record it: the options, never a person."""
        return {
            "courses": list(self.courses),
            "orgs": list(self.orgs),
            "since": self.since,
            "until": self.until,
            "event_types": list(self.event_types),
            "exclude_staff": self.staff is not None,
        }

    def selects(self, routing: Route, event_type: str, event: dict, visible: Visible) -> bool:
        """Whether the event (ROUTING: its routing key as the package keeps it; EVENT: the parsed
        line, before the plan; VISIBLE: what its rule writes out) is one the run writes."""
        if not self.selects_place(routing):
            return False
        if self._type is not None:
            # As the manifest names it: a plain event name as itself, anything else (a URL) by
            # its rule's label (``/*``), which is what the package shows of it.
            name = event_type if event_type_label(event_type) == event_type else routing.label
            if not self._type(name):
                return False
        if self.staff is not None and visible.actors and self._by_staff(event, visible):
            return False
        return True

    def selects_statement(self, routing: Route) -> bool:
        """Whether an xAPI statement (ROUTING: as its written copy shows it) is one the run writes:
        its course and day, and its verb id as the manifest counts it, against ``--event-type``."""
        return self.selects_place(routing) and (self._type is None or self._type(routing.label))

    def selects_place(self, routing: Route) -> bool:
        """Whether ROUTING's course and day are selected (the part of ``selects`` that the written
        event alone can answer)."""
        course = routing.course_id
        if self._course is not None and (course is None or not self._course(course)):
            return False
        if self._org is not None and (course is None or not self._org(course_org(course))):
            return False
        day = routing.date
        if self.since is not None and (day is None or day < self.since):
            return False
        if self.until is not None and (day is None or day > self.until):
            return False
        return True

    def _by_staff(self, event: dict, visible: Visible) -> bool:
        """Whether a kept identity field of EVENT names one of the staff."""
        staff = self.staff
        for kind, steps in visible.actors:
            value: Any = event
            for step in steps:
                value = value.get(step) if type(value) is dict else None
            if value is None or value == "":
                continue
            if kind == "user_id":
                text = str(value) if type(value) is int else value if type(value) is str else None
                if text is not None and text.isascii() and text.isdecimal() and str(int(text)) in staff.user_ids:
                    return True
            elif type(value) is str and value.casefold() in staff.usernames:
                return True
        return False
