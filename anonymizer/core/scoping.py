"""Per-course pseudonyms (``--pseudonyms per-course``): one engine, and one key, per course.

Like Open edX's per-course anonymous ids, a learner then has a different pseudonym in every
course, and the same one within a course, across files and runs. ``ScopedAnonymizer`` is a thin
layer over the batch function: it reads the course of each line as the engine routes it
(``context.course_id``, else the course key in an implicit event's path; see
``anonymizer.core.routing.course_of``), sends the lines of each course, in order, through that
course's engine, compiled once under ``derive_course_key(run key, course)``, and puts the
outcomes back in line order. Events that name no course, and lines that cannot be read, go
through one more engine under the ``_no_course`` key. Free text is scrubbed by the same course
engine, so a roster person mentioned in it gets the course's pseudonym too.

Each outcome's route is checked against the course whose key was used: an event pseudonymized
under one course's key is never written under another's.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Iterable

import orjson

from .engine import Anonymizer
from .errors import UsageError
from .native import ENGINES
from .native import available as native_available
from .native import make_anonymizer as make_native
from .keys import Key, derive_course_key
from .lowering import lower
from .lines import event_key, parse_line
from .outcomes import AccountingError, BatchResult, LineResult, Outcome, RejectReason
from .policy import Policy
from .roster import Roster
from .routing import course_of
from .stats import RejectionList, Stats
from .strictjson import StrictJSONError

GLOBAL, PER_COURSE = "global", "per-course"
PSEUDONYM_MODES = (GLOBAL, PER_COURSE)
# Course engines kept compiled at once; the least recently used goes beyond it (and is compiled
# again if its course comes back: the output is the same, only slower).
MAX_COURSE_ENGINES = 128


def chosen_engine(engine: str, pseudonyms: str = GLOBAL, geoip=None, selection=None, groups=None, events_format: str = "tracking-log") -> str:
    """``native`` or ``python``: the engine that ENGINE (``auto``, ``native``, ``python``) runs
    with these options. The native engine runs the plain engine's work on tracking logs only: with
    a selection, rare-value suppression, a country database, per-course pseudonyms or xAPI
    statements (EVENTS_FORMAT ``xapi``), ``auto`` runs the Python engine and ``native`` is refused."""
    if engine not in ENGINES:
        raise UsageError(f"--engine {engine}: expected one of {', '.join(ENGINES)}")
    unsupported = [name for name, used in (
        ("--pseudonyms per-course", pseudonyms == PER_COURSE), ("a selection", selection is not None),
        ("min_group_size", groups is not None), ("--geoip", geoip is not None), ("xAPI statements", events_format == "xapi"),
    ) if used]
    if engine == "native" and unsupported:
        raise UsageError(f"--engine native does not run {', '.join(unsupported)} yet; use --engine auto (the Python engine runs them) or python")
    if engine == "native" or (engine == "auto" and not unsupported and native_available()):
        return "native"
    return "python"


def make_anonymizer(
    policy: Policy, key: Key, roster: Roster | None = None, pseudonyms: str = GLOBAL, geoip=None, *, selection=None, groups=None,
    engine: str = "python",
):
    """The anonymizer of a run: the plain engine (``global``) or the per-course layer, in the
    engine ``chosen_engine`` picks."""
    if chosen_engine(engine, pseudonyms, geoip, selection, groups, policy.events_format) == "native":
        return make_native(policy, key, roster, "native")
    if pseudonyms == GLOBAL:
        return Anonymizer(policy, key, roster, geoip, selection=selection, groups=groups)
    if pseudonyms == PER_COURSE:
        return ScopedAnonymizer(policy, key, roster, geoip, selection=selection, groups=groups)
    raise ValueError(f"pseudonyms: expected one of {', '.join(PSEUDONYM_MODES)}")


def _rebuild(policy, key, roster, geoip, engine, selection, groups) -> "ScopedAnonymizer":
    """A ScopedAnonymizer from its pickled arguments."""
    return ScopedAnonymizer(policy, key, roster, geoip, engine, selection=selection, groups=groups)


class ScopedAnonymizer:
    """The batch function with per-course keys. Pickles as (policy, run key, roster, geoip, engine)."""

    def __init__(
        self, policy: Policy, key: Key, roster: Roster | None = None, geoip=None, engine: Callable[..., Any] = Anonymizer, *, selection=None,
        groups=None,
    ) -> None:
        self.policy = policy
        self.key = key
        self.roster = roster
        self.geoip = geoip
        self.selection = selection
        self.groups = groups
        self._engine = engine
        self._plan = lower(policy) if engine is Anonymizer else None  # one lowering for every course
        self._engines: OrderedDict[str | None, Any] = OrderedDict()
        self._stats = Stats()

    def __reduce__(self):
        return (_rebuild, (self.policy, self.key, self.roster, self.geoip, self._engine, self.selection, self.groups))

    def engine_for(self, course_id: str | None):
        """The engine of COURSE_ID (None: events with no course), compiled on first use."""
        found = self._engines.get(course_id)
        if found is None:
            if len(self._engines) >= MAX_COURSE_ENGINES:
                self._engines.popitem(last=False)
            course_key = derive_course_key(self.key, course_id)
            if self._plan is not None:
                found = Anonymizer(
                    self.policy, course_key, self.roster, self.geoip, plan=self._plan, selection=self.selection, groups=self.groups,
                )
            elif self.selection is not None or self.groups is not None:
                found = self._engine(self.policy, course_key, self.roster, self.geoip, selection=self.selection, groups=self.groups)
            else:
                found = self._engine(self.policy, course_key, self.roster, self.geoip)
            self._engines[course_id] = found
        else:
            self._engines.move_to_end(course_id)
        return found

    def anonymize_batch(self, lines: bytes | Iterable[bytes], first_line: int = 1, *, name: str = "<input>") -> BatchResult:
        """As ``Anonymizer.anonymize_batch``: one outcome per line, in order, and the batch's counts."""
        if isinstance(lines, (bytes, bytearray, memoryview)):
            lines = bytes(lines).split(b"\n")
            if lines and lines[-1] == b"":
                lines.pop()
        elif not isinstance(lines, list):
            lines = list(lines)
        groups: dict[str | None, list[int]] = {}
        for index, line in enumerate(lines):
            groups.setdefault(_course(line), []).append(index)
        results: list = [None] * len(lines)
        stats = Stats()
        listed: list[tuple[str, int, str]] = []
        not_listed = 0
        for course_id, indices in groups.items():
            part = self.engine_for(course_id).anonymize_batch([lines[i] for i in indices], 1, name=name)
            for index, outcome in zip(indices, part._results):
                route = outcome[1] if type(outcome) is tuple else outcome.route
                # None: the policy does not write the course out (the route names only what is written).
                if route is not None and route.course_id is not None and route.course_id != course_id:
                    raise AccountingError(f"{name}: line {first_line + index}: routed to another course than the key it was pseudonymized under")
                results[index] = outcome
            # Rejections are numbered within the part: back to the batch's line numbers.
            listed += [(file, first_line + indices[number - 1], reason) for file, number, reason in part.stats.rejections]
            not_listed += part.stats.rejections.not_listed
            part.stats.rejections = RejectionList()
            stats.merge(part.stats)
        # Each part lists its first rejections in line order, so the first of their union, sorted,
        # are the batch's first, as the plain engine lists them.
        listed.sort(key=lambda entry: entry[1])
        stats.rejections = RejectionList()
        for entry in listed:
            stats.rejections.add(*entry)
        stats.rejections.not_listed += not_listed
        if not stats.accounted() or stats.read != len(lines):
            raise AccountingError(f"{name}: lines {first_line} to {first_line + len(lines) - 1}: lines read do not add up to lines written, dropped and rejected")
        return BatchResult(first_line, results, stats)

    def anonymize_line(self, line: bytes, file: str = "<input>", line_number: int = 0) -> LineResult:
        """As ``Anonymizer.anonymize_line``."""
        result = self.anonymize_batch([line], line_number, name=file)
        self._stats.merge(result.stats)
        return LineResult.of(result.lines[0])

    def anonymize_event(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """As ``Anonymizer.anonymize_event``."""
        result = self.anonymize_batch([orjson.dumps(event)])
        self._stats.merge(result.stats)
        line = result.lines[0]
        if line.outcome is Outcome.WRITTEN:
            return orjson.loads(line.output)
        if line.outcome is Outcome.REJECTED and line.reason in (RejectReason.DUPLICATE_KEY, RejectReason.TOO_DEEP):
            raise StrictJSONError(line.reason.value)
        return None

    @property
    def stats(self) -> Stats:
        """What ``anonymize_line`` and ``anonymize_event`` have counted so far."""
        return self._stats

    def take_stats(self) -> Stats:
        stats, self._stats = self._stats, Stats()
        return stats


def _course(line: bytes) -> str | None:
    """The course LINE's event is routed to, or None (no course, or not an event: the engine
    under the ``_no_course`` key then rejects or writes it).

    A line that is a JSON object as it stands is read with plain ``orjson`` (several times faster
    than the strict reader): where the strict reader would differ (a repeated key, a depth bomb),
    the engine rejects the line, and a rejected line has no route and no pseudonym. Any other line
    is read exactly as the engine reads it."""
    if line[:1] == b"{":
        try:
            parsed = orjson.loads(line)
        except orjson.JSONDecodeError:
            parsed = None
        if type(parsed) is dict:
            key = event_key(parsed)
            return None if key is None else course_of(parsed, key[0])
    parsed = parse_line(line)
    if type(parsed) is not dict:
        return None
    key = event_key(parsed)
    return None if key is None else course_of(parsed, key[0])
