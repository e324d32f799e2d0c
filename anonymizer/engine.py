"""The anonymizer: one event (a dict) or one line (bytes) in, its anonymized form out."""

from __future__ import annotations

from typing import Any

import orjson

from .compiler import compile_policy
from .keys import Key
from .operators import EventState
from .policy import Policy
from .pseudonyms import Pseudonymizer
from .reader import parse_line
from .stats import Stats, event_type_label

WRITTEN, DROPPED, REJECTED = "written", "dropped", "rejected"
# An object with neither event_type nor name (Segment-format lines, foreign JSON) cannot be keyed
# to a rule: it is rejected as malformed rather than dropped by policy.
MISSING_EVENT_TYPE = "missing_event_type"


class Anonymizer:
    """Applies a compiled policy under a key. Pickles as (policy, key) and recompiles on arrival."""

    def __init__(self, policy: Policy, key: Key) -> None:
        self.policy = policy
        self.key = key
        self._compiled = compile_policy(policy, Pseudonymizer(key))
        self.stats = Stats()

    def __reduce__(self):
        return (Anonymizer, (self.policy, self.key))

    def anonymize_event(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """The anonymized copy of EVENT, or None when the policy drops it or it has no event type.
        EVENT itself is left as it was."""
        out, _ = self._apply(orjson.loads(orjson.dumps(event)))
        return out

    def _apply(self, event: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
        stats = self.stats
        event_type = event.get("event_type")
        if event_type is None:
            event_type = event.get("name")
        if type(event_type) is not str or not event_type:
            return None, MISSING_EVENT_TYPE
        source = event.get("event_source")
        plan, outcome = self._compiled.resolve(event_type, source if type(source) is str else "")
        label = event_type_label(event_type)
        if plan is None:
            reason = "event_type_dropped_by_rule" if outcome == "drop" else "event_type_not_in_policy"
            stats.dropped[reason] += 1
            stats.event(label, "dropped")
            return None, reason
        context = event.get("context")
        state = EventState(event.get("username"), context.get("username") if type(context) is dict else None)
        out = plan(event, state)
        if state.dropped:
            fields = stats.fields
            for path, reason in state.dropped:
                fields[(label, path, reason)] += 1
        stats.event(label, "written")
        return out, WRITTEN

    def anonymize_line(self, line: bytes, file: str = "<input>", line_number: int = 0) -> tuple[str, bytes | str]:
        """(``written``, output line) or (``dropped``/``rejected``, reason), counted in ``stats``."""
        stats = self.stats
        stats.read += 1
        parsed = parse_line(line)
        if type(parsed) is str:
            stats.reject(file, line_number, parsed)
            return REJECTED, parsed
        out, outcome = self._apply(parsed)
        if out is None:
            if outcome is MISSING_EVENT_TYPE:
                stats.reject(file, line_number, outcome)
                return REJECTED, outcome
            return DROPPED, outcome
        stats.written += 1
        return WRITTEN, orjson.dumps(out) + b"\n"

    def take_stats(self) -> Stats:
        """The counts so far, leaving fresh ones in their place."""
        stats, self.stats = self.stats, Stats()
        return stats
