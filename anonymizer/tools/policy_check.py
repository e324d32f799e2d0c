"""Checking a policy before a release: is it valid, and what would it drop from a sample of logs?

With a sample, the check runs the real anonymizer over it (under a throwaway key; nothing is
written), so what it reports is exactly what a run would do: event types no rule handles, field
paths no rule names, payloads that cannot be decoded, and rules that matched no event. Event
types and paths are reported as the manifest reports them, never by value.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..core.compiler import CompiledPolicy, _holds
from ..core.engine import Anonymizer
from ..io.inputs import collect_inputs, open_lines
from .inspect import string_kind
from ..core.keys import generate_key
from ..core.lines import event_key, parse_line
from ..core.xapi import statement_key, unwrap
from ..core.outcomes import LineOutcome, Outcome, RejectReason
from ..core.plan import Cases, Container, Decode, Node, Op, Payload, Rule, decode_payload, join_path
from ..core.policy import Policy
from ..core.strictjson import StrictJSONError

FORMAT_VERSION = 1
# Field drops reported on their own: `unnamed` (a rule could name the field) and `unparseable`
# (no rule can name what cannot be decoded). Other reasons are listed together.
GAP_REASONS = ("unnamed", "unparseable")
MAX_PATTERNS_SHOWN = 5  # per rule in the text report; the JSON report has them all
SAMPLE_BATCH_LINES = 10_000  # lines per batch through the core
# Rejections that come after the line was read as an event (its payload repeats a key or nests
# too deep): the event is still counted by rule and type, as a run routes it before rejecting it.
_LATE_REJECTIONS = (RejectReason.DUPLICATE_KEY, RejectReason.TOO_DEEP)


def describe_rule(rule: Rule) -> str:
    """A rule as its author wrote it: its patterns, and its source and action when given."""
    shown = rule.match[:MAX_PATTERNS_SHOWN]
    text = ", ".join(shown) + (f" … ({len(rule.match) - len(shown)} more)" if len(rule.match) > len(shown) else "")
    if rule.source:
        text += f" (source {', '.join(rule.source)})"
    if rule.action != "anonymize":
        text += f" (action {rule.action})"
    return text


@dataclass
class PolicyCheck:
    """The result of checking a policy, with or without a sample."""

    policy: Policy
    rules: list[Rule]
    sampled: bool = False
    inputs: list[tuple[str, int]] = field(default_factory=list)  # (name, lines)
    lines: int = 0
    events: int = 0
    rejected: Counter = field(default_factory=Counter)
    event_types: dict[str, Counter] = field(default_factory=dict)  # label -> outcome -> count
    rule_hits: Counter = field(default_factory=Counter)  # rule index -> events
    fields: dict[tuple[str, str, str], int] = field(default_factory=Counter)  # (label, path, reason) -> count
    kept_text: Counter = field(default_factory=Counter)  # (label, path) -> free-text values kept verbatim

    @property
    def kept_free_text(self) -> dict[str, dict[str, int]]:
        """{event type: {field path: count}} of free-form strings (with spaces, or long) that a
        ``keep`` rule copies verbatim: learner-made text there leaves unscrubbed."""
        out: dict[str, dict[str, int]] = {}
        for (label, path), count in sorted(self.kept_text.items()):
            out.setdefault(label, {})[path] = count
        return out

    @property
    def unhandled_event_types(self) -> dict[str, int]:
        """Event types (labels) that no rule matches, so ``unknown_events`` decides their fate."""
        return {label: c["unknown"] for label, c in sorted(self.event_types.items()) if c["unknown"]}

    @property
    def dropped_by_rule(self) -> dict[str, int]:
        """Event types (labels) that a rule with ``action: drop`` drops."""
        return {label: c["drop"] for label, c in sorted(self.event_types.items()) if c["drop"]}

    def dropped_fields(self, reasons: Iterable[str] | None = None) -> dict[str, dict[str, dict[str, int]]]:
        """{event type: {field path: {reason: count}}} for the field drops of REASONS (all when None),
        as the manifest's ``dropped_fields`` counts them."""
        wanted = None if reasons is None else set(reasons)
        out: dict[str, dict[str, dict[str, int]]] = {}
        for (label, path, reason), count in sorted(self.fields.items()):
            if wanted is None or reason in wanted:
                out.setdefault(label, {}).setdefault(path, {})[reason] = count
        return out

    @property
    def unnamed_fields(self) -> dict[str, dict[str, int]]:
        """{event type: {field path: count}} of fields no rule names (and so are dropped)."""
        out: dict[str, dict[str, int]] = {}
        for (label, path, reason), count in sorted(self.fields.items()):
            if reason == "unnamed":
                out.setdefault(label, {})[path] = count
        return out

    @property
    def unused_rules(self) -> list[int]:
        """Indexes (in the policy's ``events``, an extending policy's own rules first) of the
        rules that matched no event of the sample."""
        return [index for index in range(len(self.rules)) if not self.rule_hits[index]]

    def as_dict(self, *, strict: bool = False, strict_fields: bool = False) -> dict:
        """The JSON report, with the verdict under the --strict and --strict-fields gates."""
        passed, summary = verdict(self, strict=strict, strict_fields=strict_fields)
        report: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "policy": {
                "name": self.policy.name,
                "source": self.policy.source,
                "sha256": self.policy.sha256,
                "valid": True,
                "event_rules": len(self.rules),
                "unknown_events": self.policy.unknown_events,
            },
            "sampled": self.sampled,
            "result": {"passed": passed, "strict": strict, "strict_fields": strict_fields, "summary": summary},
        }
        if not self.sampled:
            return report
        report.update(
            {
                "sample": {
                    "inputs": [{"path": name, "lines": lines} for name, lines in self.inputs],
                    "lines": self.lines,
                    "events": self.events,
                    "rejected": dict(sorted(self.rejected.items())),
                },
                "unhandled_event_types": self.unhandled_event_types,
                "dropped_by_rule": self.dropped_by_rule,
                "unnamed_fields": self.unnamed_fields,
                "kept_free_text": self.kept_free_text,
                "dropped_fields": self.dropped_fields(),
                "unused_rules": [
                    {"index": index, "rule": f"events[{index}]", "match": list(self.rules[index].match),
                     "source": _listed(self.rules[index].source), "action": self.rules[index].action}
                    for index in self.unused_rules
                ],  # fmt: skip
                "event_types": {label: dict(sorted(c.items())) for label, c in sorted(self.event_types.items())},
            }
        )
        return report


def _listed(items: tuple | None) -> list | None:
    return list(items) if items is not None else None


class PolicyChecker:
    """Checks POLICY: lowering it to a plan validates it; ``add_lines`` runs sample lines through
    the core's batch function, as a run would, and counts what happened to them."""

    def __init__(self, policy: Policy) -> None:
        # A throwaway key: pseudonyms are computed (so that operators run as in a real run) and discarded.
        self.anonymizer = Anonymizer(policy, generate_key())
        self.plan = self.anonymizer.plan
        self.compiled: CompiledPolicy = self.anonymizer.compiled
        self.result = PolicyCheck(policy=policy, rules=list(self.plan.rules))
        self._fields: Counter = Counter()

    def add_line(self, line: bytes) -> None:
        """Run one raw sample line through the policy and count what happened to it."""
        self._add_batch([line], "<input>")

    def _add(self, line: bytes, outcome: LineOutcome) -> None:
        result = self.result
        result.sampled = True
        result.lines += 1
        rejected = outcome.outcome is Outcome.REJECTED
        # Read again, for what the outcome does not say (the rule, kept text); a line rejected
        # before it was an event has nothing more to say.
        parsed = parse_line(line) if not rejected or outcome.reason in _LATE_REJECTIONS else None
        statements = self.plan.events_format == "xapi"
        if statements and type(parsed) is dict:
            held = unwrap(parsed)
            parsed = held[0] if type(held) is tuple else None  # an xAPI statement, bare or in a row
            key = statement_key(parsed) if parsed is not None else None
        else:
            key = event_key(parsed) if type(parsed) is dict else None
        if key is None:
            result.rejected[outcome.reason.value] += 1
            return
        event_type, source = key
        route = self.anonymizer.route(event_type, source)
        result.events += 1
        if route.index is not None:
            result.rule_hits[route.index] += 1
        label = route.label if statements else route.type_label  # a verb id, as the manifest counts it
        counter = result.event_types.get(label)
        if counter is None:
            counter = result.event_types[label] = Counter()
        counter[route.outcome] += 1
        if route.index is not None and route.outcome == "anonymize":
            try:
                self._find_kept_text(parsed, route.index, label)
            except StrictJSONError:
                pass  # the batch met the same payload and rejected the line
        if rejected:  # a JSON-string payload a run would reject the line for
            result.events -= 1
            result.rejected[outcome.reason.value] += 1

    def _find_kept_text(self, event: dict, index: int, label: str) -> None:
        """Count the free-form strings of EVENT that a ``keep`` rule would copy verbatim."""
        rule = self.plan.rules[index]
        found: list[str] = []
        _kept_walk(self.plan.envelopes[rule.envelope], {k: v for k, v in event.items() if k != "event"}, "", found)
        payload = rule.payload.value if type(rule.payload) is Payload else None
        if payload is not None and "event" in event:
            _, decoded = decode_payload(event["event"])
            if decoded is not None:
                _kept_walk(payload, decoded, "event", found)
        for path in found:
            self.result.kept_text[(label, path)] += 1

    def add_lines(self, lines: Iterable[bytes], name: str = "<input>") -> None:
        """Run LINES, one input file's worth, through the policy, a batch at a time."""
        before = self.result.lines
        self.result.sampled = True
        batch: list[bytes] = []
        for line in lines:
            batch.append(line)
            if len(batch) >= SAMPLE_BATCH_LINES:
                self._add_batch(batch, name)
                batch = []
        if batch:
            self._add_batch(batch, name)
        self.result.inputs.append((name, self.result.lines - before))

    def _add_batch(self, lines: list[bytes], name: str) -> None:
        batch = self.anonymizer.anonymize_batch(lines, name=name)
        self._fields.update(batch.stats.fields)
        for line, outcome in zip(lines, batch.lines):
            self._add(line, outcome)

    def finish(self) -> PolicyCheck:
        """The result, with the batches' field counts taken in."""
        self.result.fields = Counter(self._fields)
        return self.result


def free_form(value: str) -> bool:
    """A string that reads as prose: it has spaces, or is long (``inspect``'s text kinds)."""
    return string_kind(value) in ("text", "long-text")


def _kept_strings(value: Any, path: str, found: list[str], unshaped: bool = False) -> None:
    """Note PATH in FOUND for a free-form string under VALUE, or, when UNSHAPED (a ``keep`` whose
    shape is ``scalar`` or ``any``), for any string: nothing says what a person may type there."""
    if type(value) is str:
        if free_form(value) or (unshaped and value):
            found.append(path)
    elif type(value) is dict:
        for key, item in value.items():
            _kept_strings(item, join_path(path, key), found, unshaped)
    elif type(value) is list:
        for position, item in enumerate(value):
            _kept_strings(item, join_path(path, position), found, unshaped)


def _unshaped(node: Op) -> bool:
    shape = node.params.get("shape") or ()
    return "scalar" in shape or "any" in shape


_ABSENT = object()


def _copies_free_text(node: Node | None) -> bool:
    return type(node) is Op and node.op == "keep" and not node.params.get("authored", False)


def _kept_walk(node: Node | None, value: Any, path: str, found: list[str], own_when: dict | None = None) -> None:
    """Follow VALUE through a plan's field tree as a run does, and note in FOUND the path of
    every free-form string that a ``keep`` rule (``authored`` keeps aside) copies. OWN_WHEN: the
    condition of the node's own rule, which the fields it covers are read under."""
    if type(node) is Container and type(node.own) is Decode:
        node = node.own
    if type(node) is Decode:
        if type(value) is str:
            _, value = decode_payload(value) if node.encoding == "json" else ("", None)
        if value is not None:
            _kept_walk(node.value, value, path, found)
        return
    if type(node) is not Container or not isinstance(value, (dict, list)):
        own = node.own if type(node) is Container else node
        if _copies_free_text(own):
            _kept_strings(value, path, found, _unshaped(own))
        return
    keys = {key.key: key for key in node.keys}
    items = {item.index: item.rule for item in node.items}
    pairs = value.items() if type(value) is dict else enumerate(value)
    for key, item in pairs:
        named = keys.get(key) if type(key) is str else None
        child, when, child_when = None, None, None
        if named is not None:
            child, when, child_when = named.rule, named.when, named.when
        elif type(key) is int and key in items:
            child = items[key]
        elif node.any is not None:
            child = node.any
        elif node.own is not None:
            child, when = node.own, own_when
        if when and not (type(value) is dict and all(_holds(value.get(sibling, _ABSENT), allowed) for sibling, allowed in when.items())):
            continue  # dropped by its condition, as in a run
        if type(child) is Cases:
            case = next((c for c in child.cases if not c.when or all(_holds(value.get(s, _ABSENT), a) for s, a in c.when.items())), None)
            if case is None:
                continue  # no case holds: dropped, as in a run
            child = case.rule
        if child is not None:
            _kept_walk(child, item, join_path(path, key), found, child_when)


def check_policy(policy: Policy, samples: list[Path] | None = None) -> PolicyCheck:
    """Check POLICY (raises PolicyError when it does not compile) against the files and
    directories SAMPLES, read as ``run`` reads them."""
    checker = PolicyChecker(policy)
    if samples:
        checker.result.sampled = True
        for path, name in collect_inputs(samples, packages=True):
            checker.add_lines(open_lines(path), name)
    return checker.finish()


def format_check(check: PolicyCheck, *, strict: bool = False, strict_fields: bool = False) -> str:
    """The check as text for people."""
    policy = check.policy
    out = [f"policy {policy.name} ({policy.source}, sha256 {policy.sha256[:12]}…): valid, {len(check.rules)} event rule(s)"]
    if not check.sampled:
        out.append("no sample given: pass --sample FILE... to see what the policy would drop from real logs")
        return "\n".join(out) + "\n"
    rejected = sum(check.rejected.values())
    line = f"sample: {len(check.inputs)} file(s), {check.lines} lines, {check.events} events of {len(check.event_types)} event type(s)"
    if rejected:
        line += f", {rejected} lines rejected (" + ", ".join(f"{r} {n}" for r, n in sorted(check.rejected.items())) + ")"
    out.append(line)

    unhandled = check.unhandled_event_types
    fate = "kept as envelope only" if policy.unknown_events == "envelope" else "dropped"
    out.append("")
    if unhandled:
        out.append(f"event types no rule handles ({fate}, unknown_events: {policy.unknown_events}): {len(unhandled)}")
        out.extend(_table(unhandled.items()))
    else:
        out.append("event types no rule handles: none")

    unnamed = check.dropped_fields(("unnamed",))
    out.append("")
    if unnamed:
        paths = sum(len(p) for p in unnamed.values())
        out.append(f"fields no rule names (dropped): {paths} path(s) in {len(unnamed)} event type(s)")
        out.extend(_table((label, path, r["unnamed"]) for label, by_path in unnamed.items() for path, r in by_path.items()))
    else:
        out.append("fields no rule names: none")

    kept = check.kept_free_text
    out.append("")
    if kept:
        paths = sum(len(p) for p in kept.values())
        out.append(
            f"WARNING kept fields that held free text, or strings under a 'keep' of shape scalar or any (copied "
            f"verbatim; scrub them, name their shape, or mark course or platform text with 'authored: true'): "
            f"{paths} path(s) in {len(kept)} event type(s)"
        )
        out.extend(_table((label, path, count) for label, by_path in kept.items() for path, count in by_path.items()))
    else:
        out.append("kept fields that held free text: none")

    unparseable = check.dropped_fields(("unparseable",))
    if unparseable:
        out.append("")
        out.append("payloads that cannot be decoded (emptied, as in a run):")
        out.extend(_table((label, sum(r["unparseable"] for r in by_path.values())) for label, by_path in unparseable.items()))

    others = [
        (label, path, reason, count)
        for label, by_path in check.dropped_fields().items()
        for path, reasons in by_path.items()
        for reason, count in reasons.items()
        if reason not in GAP_REASONS
    ]
    if others:
        out.append("")
        out.append("other fields dropped (invalid_value: an operator could not handle the value):")
        out.extend(_table(others))

    dropped = check.dropped_by_rule
    if dropped:
        out.append("")
        out.append(f"event types dropped by a rule: {len(dropped)}")
        out.extend(_table(dropped.items()))

    unused = check.unused_rules
    out.append("")
    if unused:
        out.append(f"rules that matched no sample event: {len(unused)} of {len(check.rules)}")
        width = len(f"events[{unused[-1]}]")
        out.extend(f"  {f'events[{index}]':<{width}}  {describe_rule(check.rules[index])}" for index in unused)
    else:
        out.append("rules that matched no sample event: none")

    out.append("")
    out.append(verdict(check, strict=strict, strict_fields=strict_fields)[1])
    return "\n".join(out) + "\n"


def verdict(check: PolicyCheck, *, strict: bool = False, strict_fields: bool = False) -> tuple[bool, str]:
    """(passed, one line saying why) under the --strict and --strict-fields gates."""
    failures = []
    if strict and check.unhandled_event_types:
        failures.append(f"{len(check.unhandled_event_types)} event type(s) in the sample are handled by no rule (--strict)")
    if strict and check.kept_free_text:
        paths = sum(len(p) for p in check.kept_free_text.values())
        failures.append(f"{paths} kept field path(s) in the sample held free text (--strict)")
    if strict_fields and check.unnamed_fields:
        paths = sum(len(p) for p in check.unnamed_fields.values())
        failures.append(f"{paths} field path(s) in the sample are named by no rule (--strict-fields)")
    if failures:
        return False, "FAILED: " + "; ".join(failures)
    gates = [name for name, on in (("--strict", strict), ("--strict-fields", strict_fields)) if on]
    return True, "ok" + (f" ({', '.join(gates)})" if gates else "")


def _table(rows: Iterable[tuple]) -> list[str]:
    """Rows of names and a final count, in aligned columns."""
    rows = [tuple(row) for row in rows]
    if not rows:
        return []
    widths = [min(60, max(len(row[i]) for row in rows)) for i in range(len(rows[0]) - 1)]
    return ["  " + "  ".join(f"{name:<{w}}" for name, w in zip(row, widths)) + f"  {row[-1]:>8}" for row in rows]
