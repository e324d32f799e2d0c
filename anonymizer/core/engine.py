"""The anonymizer, and its one entry point: a batch of whole lines in, one outcome per line out.

``Anonymizer.anonymize_batch`` is the only place lines are anonymized. Every driver calls it: the
run's workers, ``policy check``, the Python API (``anonymize_line`` and ``anonymize_event`` are
batches of one), and later per-course packages and other engines' drivers. It touches no file,
no process and no compression: bytes in, typed outcomes, routing keys and counts out.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

import orjson

from .compiler import CompiledPolicy, build_policy
from .keys import Key
from .lines import event_key, parse_line
from .lowering import lower
from .operators import EventState
from .outcomes import AccountingError, BatchResult, Dropped, DropReason, LineResult, NotSelected, Outcome, Rejected, RejectReason, Route
from .policy import Policy
from .pseudonyms import Pseudonymizer
from .roster import Roster
from .selection import Selection, visibility
from .statements import anonymize_statements
from .routing import DAY as _DAY
from .routing import course_in_path, course_key, is_implicit, utc_date
from .stats import Stats, event_type_label, policy_label
from .strictjson import StrictJSONError

# Kept for callers of the pair form (``anonymize_line``): the members compare equal to these words.
WRITTEN, DROPPED, REJECTED = Outcome.WRITTEN, Outcome.DROPPED, Outcome.REJECTED
# An object with neither event_type nor name (Segment-format lines, foreign JSON) cannot be keyed
# to a rule: it is rejected as malformed rather than dropped by policy.
MISSING_EVENT_TYPE = RejectReason.MISSING_EVENT_TYPE

_REJECTED = {reason: Rejected(reason) for reason in RejectReason}
_CACHE_LIMIT = 100_000  # distinct routes and routing keys held; cleared, not grown, beyond it
_APPEND_NEWLINE = orjson.OPT_APPEND_NEWLINE


def _shows(out: dict, routing: Route, implicit: bool) -> bool:
    """Whether the written event OUT still shows ROUTING's day and course (an operator may refuse
    a value the rule keeps, such as a time of another shape): checked after the plan, cheaply."""
    if routing.date is not None and out.get("time") is None:
        return False
    course = routing.course_id
    if course is None:
        return True
    context = out.get("context")
    if type(context) is dict and context.get("course_id") == course:
        return True
    return implicit and course_in_path(out.get("event_type")) == course


def _shown_course(out: dict, routing: Route, implicit: bool) -> str | None:
    course = routing.course_id
    if course is None:
        return None
    context = out.get("context")
    if type(context) is dict and context.get("course_id") == course:
        return course
    return course if implicit and course_in_path(out.get("event_type")) == course else None


class RuleRoute:
    """How events of one (event type, event source) are handled, found once and cached: the plan
    (None when the event is dropped), the outcome (``anonymize``, ``drop``, ``unknown``), the
    index of the rule (None: no rule), the label the manifest counts the type under, the label
    reports for the data steward use, and the type's written/dropped tally for the batch under way."""

    __slots__ = ("plan", "outcome", "index", "label", "type_label", "tally", "drop", "implicit", "visible", "hides")

    def __init__(self, plan, outcome: str, index: int | None, label: str, type_label: str, tally: list[int]) -> None:
        self.plan = plan
        self.outcome = outcome
        self.index = index
        self.label = label
        self.type_label = type_label
        self.tally = tally
        self.drop = DropReason.DROPPED_BY_RULE if outcome == "drop" else DropReason.NOT_IN_POLICY
        self.implicit = False  # its type is a URL (an implicit event): set by the engine
        self.visible = None  # what the rule writes out (``anonymizer.core.selection.Visible``): set by the engine
        self.hides = False  # the rule drops the course or the time: its routing keys are narrowed


def _rebuild(policy, key, roster, geoip, selection, groups) -> "Anonymizer":
    """An Anonymizer from its pickled arguments (keyword arguments cannot travel in a reduce tuple)."""
    return Anonymizer(policy, key, roster, geoip, selection=selection, groups=groups)


class Anonymizer:
    """Applies a compiled policy under a key, with an optional roster of known people and an
    optional selection of the events to write (``anonymizer.core.selection``). GROUPS: the values
    rare-value suppression lets through (``anonymizer.core.suppression``). GEOIP: a country
    database for ``mask_ip``'s ``country`` (``anonymizer.core.ipmask.GeoIP``). Pickles as its
    arguments and recompiles on arrival."""

    def __init__(
        self, policy: Policy, key: Key, roster: Roster | None = None, geoip=None, *, plan=None, selection: Selection | None = None,
        groups: dict | None = None,
    ) -> None:
        self.policy = policy
        self.key = key
        self.roster = roster
        self.geoip = geoip
        self.selection = selection
        self.groups = groups
        # The policy as data (``anonymizer.core.plan``): what the batches execute. PLAN, when given,
        # is POLICY's, lowered once for many engines (one per course, see ``anonymizer.core.scoping``).
        self.plan = plan if plan is not None else lower(policy)
        self._compiled = build_policy(self.plan, Pseudonymizer(key), roster, geoip, groups)
        self._routes: dict[tuple[str, str], RuleRoute] = {}
        self._keys: dict[tuple, Route] = {}  # by the raw course id and day, as events carry them
        self._values: dict[tuple[str, str | None, str | None], Route] = {}  # by their values
        self._dropped: dict[tuple[DropReason, Route], Dropped] = {}
        self._tallies: dict[str, list[int]] = {}  # label -> [written, dropped, not selected] in the batch under way
        self._stats = Stats()  # what the pair and dict forms have counted so far
        # xAPI statements (``anonymizer.core.statements``): by (verb id, object type), their routes.
        self._statement_routes: dict | None = {} if self.plan.events_format == "xapi" else None

    def __reduce__(self):
        return (_rebuild, (self.policy, self.key, self.roster, self.geoip, self.selection, self.groups))

    @property
    def compiled(self) -> CompiledPolicy:
        """The compiled policy the batches run."""
        return self._compiled

    # ------------------------------------------------------------------ the entry point

    def anonymize_batch(self, lines: bytes | Iterable[bytes], first_line: int = 1, *, name: str = "<input>") -> BatchResult:
        """Anonymize a batch: LINES is the bytes of whole lines (split at newlines; a last line
        without one counts), or the lines already split. FIRST_LINE is the number of the first,
        NAME the file they come from (both only locate rejections). Returns one outcome per
        line, in order, and the batch's complete counts. Raises ``AccountingError`` (a bug) when
        the lines read do not add up to those written, dropped, rejected and not selected.

        A line's routing key names only what its rule writes out (a course or day the policy
        drops is None). With a selection, an event the policy would write but the selection
        leaves out is ``NotSelected``: the policy decides first, so that its drops are counted
        the same with or without a selection."""
        if isinstance(lines, (bytes, bytearray, memoryview)):
            lines = bytes(lines).split(b"\n")
            if lines and lines[-1] == b"":
                lines.pop()
        elif not isinstance(lines, list):
            lines = list(lines)
        if self._statement_routes is not None:
            return anonymize_statements(self, lines, first_line, name, self._statement_routes)
        stats = Stats()
        results: list = []
        append = results.append
        route_of = self._route
        key_of = self._routing_key
        written = 0
        not_selected = 0
        selection = self.selection
        placed: dict[int, list] = {}  # id of a written line's Route -> [Route, events]
        dropped_counts = stats.dropped
        number = first_line
        for line in lines:
            parsed = parse_line(line)
            if type(parsed) is not dict:
                stats.reject(name, number, parsed.value)
                append(_REJECTED[parsed])
                number += 1
                continue
            key = event_key(parsed)
            if key is None:
                stats.reject(name, number, MISSING_EVENT_TYPE.value)
                append(_REJECTED[MISSING_EVENT_TYPE])
                number += 1
                continue
            route = route_of(*key)
            context = parsed.get("context")
            # Routed before the plan runs: the plan edits the event in place.
            routing = key_of(route, key[0], context, parsed.get("time"))
            plan = route.plan
            if plan is None:
                reason = route.drop
                dropped_counts[reason.value] += 1
                route.tally[1] += 1
                found = self._dropped.get((reason, routing))
                if found is None:
                    if len(self._dropped) > _CACHE_LIMIT:
                        self._dropped.clear()
                    found = self._dropped[(reason, routing)] = Dropped(reason, routing)
                append(found)
                number += 1
                continue
            if route.hides:
                routing = self._visible_key(route, key[0], context, routing)
            if selection is not None and not selection.selects(routing, key[0], parsed, route.visible):
                not_selected += 1
                route.tally[2] += 1
                append(NotSelected(routing))
                number += 1
                continue
            state = EventState(parsed.get("username"), context.get("username") if type(context) is dict else None)
            try:
                out = plan(parsed, state)
            except StrictJSONError as exc:  # a JSON-string payload repeats a key or nests too deep
                stats.reject(name, number, exc.reason)
                append(_REJECTED[RejectReason(exc.reason)])
                number += 1
                continue
            if (routing.date is not None or routing.course_id is not None) and not _shows(out, routing, route.implicit):
                # An operator refused a value the rule keeps (a time of another shape): the event
                # is placed, and selected, as the package shows it.
                routing = self._route_value(route.label, _shown_course(out, routing, route.implicit), routing.date if out.get("time") is not None else None)
                if selection is not None and not selection.selects_place(routing):
                    not_selected += 1
                    route.tally[2] += 1
                    append(NotSelected(routing))
                    number += 1
                    continue
            if state.dropped:
                fields = stats.fields
                label = route.label
                for path, reason in state.dropped:
                    fields[(label, path, reason)] += 1
            route.tally[0] += 1
            written += 1
            count = placed.get(id(routing))
            if count is None:
                placed[id(routing)] = [routing, 1]
            else:
                count[1] += 1
            append((orjson.dumps(out, option=_APPEND_NEWLINE), routing))  # a Written, made when read
            number += 1
        return self._close_batch(stats, len(lines), results, placed, written, not_selected, name, first_line)

    def _close_batch(self, stats: Stats, read: int, results: list, placed: dict, written: int, not_selected: int, name: str, first_line: int) -> BatchResult:
        """The end of every batch path (events and statements): the counts, the events per
        routing key, the per-rule tallies, and the check that every line is accounted for."""
        stats.read = read  # the lines given, counted apart from the outcomes made for them
        stats.written = written
        stats.not_selected = not_selected
        for routing, events in placed.values():
            stats.place(routing.label, routing.course_id, routing.date, events)
        self._flush_tallies(stats)
        if not stats.accounted():
            raise AccountingError(
                f"{name}: lines {first_line} to {first_line + read - 1}: lines read do not add up to lines written, dropped, rejected and not selected"
            )
        return BatchResult(first_line, results, stats)

    # ------------------------------------------------------------------ routes

    def route(self, event_type: str, source: str) -> RuleRoute:
        """How events of EVENT_TYPE from SOURCE are handled (cached: the per-event path makes one
        dict lookup to find its plan and the counters of its event type)."""
        return self._route(event_type, source)

    def _route(self, event_type: str, source: str) -> RuleRoute:
        key = (event_type, source)
        route = self._routes.get(key)
        if route is None:
            index = self._compiled.rule_index(event_type, source)
            plan, outcome = self._compiled.outcome(index)
            label = policy_label(event_type, None if index is None else self._compiled.rules[index][0].match)
            tally = self._tallies.get(label)
            if tally is None:
                tally = self._tallies[label] = [0, 0, 0]  # written, dropped, not selected
            route = RuleRoute(plan, outcome, index, label, event_type_label(event_type), tally)
            route.implicit = is_implicit(event_type)
            route.visible = visibility(self.plan, self.plan.rules[index] if index is not None else self.plan.fallback)
            route.hides = route.visible.hides
            if len(self._routes) > _CACHE_LIMIT:
                self._routes.clear()
            self._routes[key] = route
        return route

    def _routing_key(self, route: RuleRoute, event_type: str, context: object, time: object) -> Route:
        """The routing key of an event of ROUTE and EVENT_TYPE with CONTEXT and TIME. Found by the
        raw course id and day, which recur: equal keys are one object."""
        course = context.get("course_id") if type(context) is dict else None
        if type(course) is not str:
            course = None
        day = time[:10] if type(time) is str and time[10:11] == "T" and time.endswith("+00:00") else utc_date(time)
        cache_key = (route.label, course, day, route.implicit)
        found = self._keys.get(cache_key)
        if found is None:
            shaped = course_key(course)
            if shaped is None and route.implicit:
                # Placed by its path, which differs from event to event: not remembered by the raw values.
                return self._route_value(route.label, course_in_path(event_type), day)
            if len(self._keys) > _CACHE_LIMIT:
                self._keys.clear()
            found = self._keys[cache_key] = self._route_value(route.label, shaped, day)
        return found

    def _visible_key(self, route: RuleRoute, event_type: str, context: object, routing: Route) -> Route:
        """ROUTING as the written event shows it, for a rule that drops the course or the time:
        a value the package does not keep is never used to place or select the event."""
        visible = route.visible
        course = None
        if visible.course and type(context) is dict:
            course = course_key(context.get("course_id"))
        if course is None and route.implicit and visible.url:
            course = course_in_path(event_type)
        return self._route_value(route.label, course, routing.date if visible.time else None)

    def _route_value(self, label: str, course: str | None, day: str | None) -> Route:
        """The one Route of these values (DAY is checked here: the fast path above only cut it)."""
        parts = (label, course, day if day is None or _DAY.fullmatch(day) else None)
        found = self._values.get(parts)
        if found is None:
            if len(self._values) > _CACHE_LIMIT:
                self._values.clear()
            found = self._values[parts] = Route(*parts)
        return found

    def _flush_tallies(self, stats: Stats) -> None:
        """Move the per-type written/dropped tallies of the batch into STATS (explicitly, at the
        end of each batch: the per-event path only adds to a list)."""
        for label, tally in self._tallies.items():
            if tally[0] or tally[1] or tally[2]:
                counter = stats.event_types.get(label)
                if counter is None:
                    counter = stats.event_types[label] = Counter()
                if tally[0]:
                    counter["written"] += tally[0]
                if tally[1]:
                    counter["dropped"] += tally[1]
                if tally[2]:
                    counter["not_selected"] += tally[2]
                tally[0] = tally[1] = tally[2] = 0

    # ------------------------------------------------------------------ drivers of one line

    def anonymize_line(self, line: bytes, file: str = "<input>", line_number: int = 0) -> LineResult:
        """One line as a batch of one: (``WRITTEN``, output line) or (``DROPPED``/``REJECTED``,
        reason), counted in ``stats``."""
        result = self.anonymize_batch([line], line_number, name=file)
        self._stats.merge(result.stats)
        return LineResult.of(result.lines[0])

    def anonymize_event(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """The anonymized copy of EVENT (a batch of one line), or None when the policy drops it or
        it has no event type. EVENT itself is left as it was. Raises ``StrictJSONError`` when a
        JSON-string payload in it repeats a key or nests too deep (a run rejects such a line)."""
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
        """What ``anonymize_line`` and ``anonymize_event`` have counted so far, as the manifest
        counts it. Reading it changes nothing; ``anonymize_batch`` returns its own counts."""
        return self._stats

    def take_stats(self) -> Stats:
        """The counts so far, leaving fresh ones in their place."""
        stats, self._stats = self._stats, Stats()
        return stats
