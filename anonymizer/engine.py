"""The anonymizer: one event (a dict) or one line (bytes) in, its anonymized form out."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson

from .compiler import compile_policy
from .keys import Key
from .operators import EventState
from .policy import Policy
from .pseudonyms import Pseudonymizer
from .reader import event_key, parse_line
from .roster import Roster
from .stats import Stats, policy_label
from .strictjson import StrictJSONError

WRITTEN, DROPPED, REJECTED = "written", "dropped", "rejected"
# An object with neither event_type nor name (Segment-format lines, foreign JSON) cannot be keyed
# to a rule: it is rejected as malformed rather than dropped by policy.
MISSING_EVENT_TYPE = "missing_event_type"


class Anonymizer:
    """Applies a compiled policy under a key, with an optional roster of known people.
    Pickles as (policy, key, roster) and recompiles on arrival."""

    def __init__(self, policy: Policy, key: Key, roster: Roster | None = None) -> None:
        self.policy = policy
        self.key = key
        self.roster = roster
        self._compiled = compile_policy(policy, Pseudonymizer(key), roster)
        self._stats = Stats()
        self._routes: dict[tuple[str, str], tuple] = {}
        self._tallies: dict[str, list[int]] = {}

    def __reduce__(self):
        return (Anonymizer, (self.policy, self.key, self.roster))

    def anonymize_event(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """The anonymized copy of EVENT, or None when the policy drops it or it has no event type.
        EVENT itself is left as it was. Raises ``StrictJSONError`` when a JSON-string payload in it
        repeats a key or nests too deep (a run rejects such a line)."""
        out, _ = self._apply(orjson.loads(orjson.dumps(event)))
        return out

    def _route(self, event_type: str, source: str) -> tuple:
        """(plan, outcome, label, tally) for an event type and source, cached: the per-event path
        makes one dict lookup to find its plan and the counters of its event type."""
        key = (event_type, source)
        route = self._routes.get(key)
        if route is None:
            plan, outcome = self._compiled.resolve(event_type, source)
            index = self._compiled.rule_index(event_type, source)
            label = policy_label(event_type, None if index is None else self._compiled.rules[index][0].match)
            tally = self._tallies.get(label)
            if tally is None:
                tally = self._tallies[label] = [0, 0]  # written, dropped
            route = (plan, outcome, label, tally)
            if len(self._routes) > 100_000:
                self._routes.clear()
            self._routes[key] = route
        return route

    def _apply(self, event: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
        key = event_key(event)
        if key is None:
            return None, MISSING_EVENT_TYPE
        plan, outcome, label, tally = self._route(*key)
        if plan is None:
            reason = "event_type_dropped_by_rule" if outcome == "drop" else "event_type_not_in_policy"
            self._stats.dropped[reason] += 1
            tally[1] += 1
            return None, reason
        context = event.get("context")
        state = EventState(event.get("username"), context.get("username") if type(context) is dict else None)
        out = plan(event, state)
        if state.dropped:
            fields = self._stats.fields
            for path, reason in state.dropped:
                fields[(label, path, reason)] += 1
        tally[0] += 1
        return out, WRITTEN

    def anonymize_line(self, line: bytes, file: str = "<input>", line_number: int = 0) -> tuple[str, bytes | str]:
        """(``written``, output line) or (``dropped``/``rejected``, reason), counted in ``stats``."""
        stats = self._stats
        stats.read += 1
        parsed = parse_line(line)
        if type(parsed) is str:
            stats.reject(file, line_number, parsed)
            return REJECTED, parsed
        try:
            out, outcome = self._apply(parsed)
        except StrictJSONError as exc:  # a JSON-string payload repeats a key or nests too deep
            stats.reject(file, line_number, exc.reason)
            return REJECTED, exc.reason
        if out is None:
            if outcome is MISSING_EVENT_TYPE:
                stats.reject(file, line_number, outcome)
                return REJECTED, outcome
            return DROPPED, outcome
        stats.written += 1
        return WRITTEN, orjson.dumps(out, option=orjson.OPT_APPEND_NEWLINE)

    @property
    def stats(self) -> Stats:
        """What happened to the lines and events so far, as the manifest counts it."""
        stats = self._stats
        for label, tally in self._tallies.items():
            if tally[0]:
                stats.event_types.setdefault(label, Counter())["written"] += tally[0]
            if tally[1]:
                stats.event_types.setdefault(label, Counter())["dropped"] += tally[1]
            tally[0] = tally[1] = 0
        return stats

    def take_stats(self) -> Stats:
        """The counts so far, leaving fresh ones in their place."""
        stats = self.stats
        self._stats = Stats()
        return stats
