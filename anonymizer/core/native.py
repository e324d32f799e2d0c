"""The native engine: the plan executed in Rust (the ``anonymizer_native`` extension), the Python
engine kept beside it as the reference and for what the native path leaves to it.

``NativeAnonymizer`` has the Python engine's interface and gives, batch for batch, the same output
bytes, outcomes, routing keys and ``Stats`` (``tests/test_native_diff.py`` proves it). The
extension receives the plan as JSON and, for the nodes it does not execute itself, the Python
engine's own function for that node; a line it cannot decide (any rejection, an unusual number,
a JSON-string payload that does not parse) it hands back whole, and the Python engine runs it.
The extension works on a batch without the GIL (it takes it back to call these functions), and
returns each written line with its routing key as the line shows it.
``make_anonymizer(..., engine="auto")`` picks the native engine when the extension imports.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

import orjson

from .compiler import _Builder
from .data_keys import _CHECK, _NO_ACTORS, _UNSAFE, key_checker, key_shape
from .compiler import _operator
from .engine import Anonymizer
from .routing import course_in_path
from .errors import UsageError
from .keys import Key
from .operators import DROP, BuildContext, EventState, Identity
from .operators.keep import CLOSED_SHAPES_IGNORING_CASE as _closed_shapes
from .outcomes import AccountingError, BatchResult, Dropped, DropReason
from .plan import Op, _node, to_json
from .policy import Policy, RosterRules
from .pseudonyms import Pseudonymizer
from .roster import Roster
from .stats import Stats

try:  # the extension is a separate distribution (``native/``): optional
    import anonymizer_native as _ext
except ImportError:  # pragma: no cover (depends on the build)
    _ext = None

ENGINES = ("auto", "native", "python")


def available() -> bool:
    """Whether the native engine's extension is installed."""
    return _ext is not None


class NativeUnavailable(UsageError):
    """``--engine native`` was asked for, and the extension is not installed."""


def make_anonymizer(policy: Policy, key: Key, roster: Roster | None = None, engine: str = "auto"):
    """The anonymizer of ENGINE: ``python``, ``native`` (raises ``NativeUnavailable`` without
    the extension) or ``auto`` (native when the extension imports, else Python)."""
    if engine not in ENGINES:
        raise UsageError(f"--engine {engine}: expected one of {', '.join(ENGINES)}")
    statements = policy.events_format == "xapi"  # the native engine runs tracking logs only
    if engine == "python" or (engine == "auto" and (_ext is None or statements)):
        return Anonymizer(policy, key, roster)
    if statements:
        raise UsageError("--engine native does not run xAPI statements yet; use --engine auto (the Python engine runs them) or python")
    if _ext is None:
        raise NativeUnavailable("the native engine is not installed: build it with `make venv` (needs cargo), or use --engine python")
    return NativeAnonymizer(policy, key, roster)


def engine_name(anonymizer: Any) -> str:
    """``native`` or ``python``: the engine ANONYMIZER runs (the manifest records it)."""
    return "native" if isinstance(anonymizer, NativeAnonymizer) else "python"


class NativeAnonymizer(Anonymizer):
    """The Python engine's interface, its batches run by the native engine. Pickles as (policy,
    key, roster), like the Python engine, and rebuilds the extension's engine on arrival."""

    engine = "native"

    def __init__(self, policy: Policy, key: Key, roster: Roster | None = None) -> None:
        super().__init__(policy, key, roster)
        if _ext is None:
            raise NativeUnavailable("the native engine is not installed")
        plan = self.plan
        closed_shape = _closed_shapes.fullmatch
        # The functions of the nodes the extension calls back: built as ``build_policy`` builds them.
        identities = {name: Identity(name, ns.format, ns.prefix, ns.fold) for name, ns in plan.namespaces.items()}
        ctx = BuildContext(pseudonymizer=Pseudonymizer(key), identities=identities, roster=roster, roster_rules=RosterRules.model_validate(plan.roster))
        key_check = key_checker(_operator(plan.data_keys, ctx))
        builder = _Builder(ctx, key_check)
        scrub = _operator(plan.data_keys, ctx)

        def native_form(node) -> str | None:
            # The operators the extension runs itself, with what it needs to run them as here.
            if type(node) is not Op:
                return None
            if node.op == "pseudonymize" and node.apply == "leaves":
                identity = ctx.identity(node.params["identity"])
                if identity.roster is not None and identity.person_identity is not None:
                    return None  # linked to the roster's people: the Python function
                return orjson.dumps({"op": "pseudonymize", "namespace": identity.name, "format": identity.format, "prefix": identity.prefix, "fold": identity.fold}).decode()
            if node.op == "keep" and node.apply == "value":
                return orjson.dumps({"op": "keep", "shape": list(node.params["shape"]), "roster": roster is not None}).decode()
            return None

        # The roster's ids and usernames that a value of a closed shape (``keep._CLOSED``: ASCII
        # patterns, never searched inside) could equal, lower-cased: ``keep`` asks the roster
        # whether such a value is a person by the value itself and its case-folded form, so a
        # value not among these is no one. A superset is safe: the extension sends a value it
        # finds here to the Python function. One set for the engine, whatever the number of nodes.
        known: set[str] = set()
        if roster is not None:
            for text in (*roster.by_id, *roster.by_username, *roster.folded_usernames()):
                if text.isascii() and closed_shape(text.lower()) is not None:
                    known.add(text.lower())

        def node_fn(node_json: str):
            node = _node(orjson.loads(node_json))
            fn = builder.node(node)
            form, helper = native_form(node), None
            if type(node) is Op and node.op == "scrub_text" and node.apply in ("leaves", "value"):
                # The text-only part (memoized by the operator), called by the extension, which
                # runs the actors' step itself where it is a plain search (see ``scrub_text``).
                inner = getattr(fn, "op", fn)
                helper = getattr(inner, "text_part", None)
                if helper is not None:
                    form = orjson.dumps({"op": "scrub_text", "actors": inner.replaces_actors, "chars": inner.memo_text_chars}).decode()
            # memoized per string or integer where the Python engine's containers memoize it
            return fn, getattr(fn, "memo", None) is not None, form, helper

        def call(fn, value, state):
            result = fn(value, state)
            if result is DROP:
                return None
            # The value itself, unchanged: only a str, number or bool can say so by identity
            # (the Python containers edit a dict or list in place and return it).
            kind = type(result)
            return True if result is value and kind is not dict and kind is not list else orjson.dumps(result)

        def verdict(key: str):
            # The checker's verdict without an event (``data_keys.key_checker``): 0 safe, 2 unsafe,
            # the lower-cased key when only an actor of the event can change it, 1 ask per event.
            shape = key_shape(key)
            if shape != _CHECK:
                return shape
            if scrub(key, _NO_ACTORS) != key:
                return _UNSAFE
            return key.lower() if key.isascii() else _CHECK

        def resolve(event_type: str, source: str):
            route = self._route(event_type, source)
            if route.plan is None:
                tree = -1
            else:
                tree = route.index if route.index is not None else len(plan.rules)
            return route, route.label, tree, route.drop.value, route.implicit

        def routing(route, event_type, course, time):
            context = {"course_id": course} if course is not None else None
            found = self._routing_key(route, event_type, context, time)
            # As the Python engine routes: a rule that drops the course or the time places the event without it.
            return self._visible_key(route, event_type, context, found) if route.hides and route.plan is not None else found

        def dropped(reason: str, routing_key):
            found = self._dropped.get((DropReason(reason), routing_key))
            if found is None:
                found = Dropped(DropReason(reason), routing_key)
            return found

        def place(routing, course, timed: bool):
            # The routing key of a written event that shows only COURSE, and the day when TIMED
            # (an operator refused the time or course the rule keeps): as the Python engine places it.
            return self._route_value(routing.label, course, routing.date if timed else None)

        self._native = _ext.Engine(
            to_json(plan).decode(), key.secret, node_fn, call, verdict, key_check, EventState, resolve, routing, dropped, place, course_in_path,
            sorted(known),
        )

    def __reduce__(self):
        return (NativeAnonymizer, (self.policy, self.key, self.roster))

    def anonymize_batch(self, lines: bytes | Iterable[bytes], first_line: int = 1, *, name: str = "<input>") -> BatchResult:
        """As ``Anonymizer.anonymize_batch``: the same outcomes, bytes and counts."""
        if isinstance(lines, (bytes, bytearray, memoryview)):
            data = bytes(lines)
            split = None
        else:
            split = list(lines)
            if any(b"\n" in line for line in split):
                # Lines given already split may hold a newline (the pair form): left to the Python engine.
                return super().anonymize_batch(split, first_line, name=name)
            data = b"\n".join(split) + (b"\n" if split else b"")
        results, fallback, written, dropped, tallies, fields = self._native.anonymize_batch(data)
        stats = Stats()
        stats.written = written
        stats.dropped.update(dropped)
        event_types = stats.event_types
        for label, w, d in tallies:
            counter = event_types.get(label)
            if counter is None:
                counter = event_types[label] = Counter()
            if w:
                counter["written"] += w
            if d:
                counter["dropped"] += d
        stats.fields.update(fields)
        if fallback:
            lines_of = split if split is not None else _split(data)
            for index in fallback:
                number = first_line + index
                one = super().anonymize_batch([lines_of[index]], number, name=name)
                results[index] = one._results[0]
                _add(stats, one.stats)
        stats.read = len(results)
        # Events per routing key (the course, day and per-type day ranges), counted from the
        # outcomes as the Python engine counts them: the same routing key is one object.
        placed: dict[int, list] = {}
        for outcome in results:
            if type(outcome) is tuple:
                count = placed.get(id(outcome[1]))
                if count is None:
                    placed[id(outcome[1])] = [outcome[1], 1]
                else:
                    count[1] += 1
        for routing, events in placed.values():
            stats.place(routing.label, routing.course_id, routing.date, events)
        if not stats.accounted():
            raise AccountingError(f"{name}: lines {first_line} to {first_line + len(results) - 1}: lines read do not add up to lines written, dropped, rejected and not selected")
        return BatchResult(first_line, results, stats)


def _split(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def _add(stats: Stats, other: Stats) -> None:
    """Add OTHER (one line's counts) to STATS as the batch function counts: plain sums, the
    rejections in line order (``Stats.merge`` would cap the paths, which a batch does not)."""
    stats.written += other.written
    stats.dropped.update(other.dropped)
    stats.rejected.update(other.rejected)
    for label, counter in other.event_types.items():
        stats.event_types.setdefault(label, Counter()).update(counter)
    stats.fields.update(other.fields)
    for file, line, reason in other.rejections:
        stats.rejections.add(file, line, reason)
