"""Suppressing rare quasi-identifier values (``min_group_size`` of ``mask_ip`` and ``generalize_agent``).

A truncated network or a generalized agent that only one or two learners share singles them out,
pseudonyms or not. With ``min_group_size: N`` on one of these operators, a value it produces is
written only when at least N distinct learners of the package have it; any other becomes ``RARE``.

Two passes, both deterministic: before the run, ``GroupCounter`` reads every input once (in input
order, in one process) and counts, per operator and parameters, the distinct learners of each
value the operator would produce; the result, ``frequent()``, is the set of values that may be
written, handed to every worker before it starts (``BuildContext.groups``). The output is
therefore the same whatever the number of workers. Counts are over the whole package, not per
course: a value is either written everywhere or nowhere (``anonymizer risk`` reports what is left
per course).

What the counting pass reads: the envelope fields the policy rules with such an operator (the
built-in policies' ``agent``, ``ip``, ``context.agent`` …); the learner of an event is its envelope
username (case-folded as the username identity folds it), else its ``context.user_id``. Values in
payload fields, and in events that name no learner, count for no one: fail closed, an operator
with ``min_group_size`` there writes ``RARE`` for them unless learners elsewhere share the value.
Without counts (``groups`` not given, as in ``policy check`` or the Python API), every value of such
an operator is ``RARE``.
"""

from __future__ import annotations

from typing import Any, Iterable

import orjson

from .ipmask import make_ip_masker
from .plan import IdentityField, Plan

RARE = "[RARE]"


def without_unset_size(data: dict) -> dict:
    """An operator's parameters as JSON, ``min_group_size`` left out when it is off: the plans of
    policies that do not suppress stay as they were."""
    if not data.get("min_group_size"):
        data.pop("min_group_size", None)
    return data
SUPPRESSING_OPS = ("mask_ip", "generalize_agent")


def group_key(op: str, params: dict) -> str:
    """The name of the counts an operator with PARAMS (as JSON, every default filled in) reads."""
    return orjson.dumps([op, params], option=orjson.OPT_SORT_KEYS).decode()


def suppressing(plan: Plan) -> list[IdentityField]:
    """The identity fields of PLAN whose operator suppresses rare values."""
    return [f for f in plan.identities if f.op in SUPPRESSING_OPS and (f.params.get("min_group_size") or 0) > 1]


def _getter(segment: tuple):
    """A function reading the value at SEGMENT (plain keys only) from a dict, or None when it has others."""
    if not segment or not all(isinstance(token, str) and token != "*" for token in segment):
        return None

    def get(event: dict) -> Any:
        value: Any = event
        for token in segment:
            if type(value) is not dict:
                return None
            value = value.get(token)
        return value

    return get


def _producer(op: str, params: dict):
    """The values (before suppression) the operator OP with PARAMS writes for one raw value."""
    if op == "mask_ip":
        mask = make_ip_masker(params["ipv4_prefix"], params["ipv6_prefix"])

        def masked(value: Any) -> list[str]:
            if type(value) is not str:
                return []
            return [m for part in value.split(",") if (m := mask(part)) is not None]

        return masked
    # Imported here: loading the agent parser costs a second that runs without agents never pay.
    from .operators.generalize_agent import generalize

    with_version = params.get("browser_version", True)
    return lambda value: [generalize(value, with_version)] if type(value) is str and value.strip() else []


class GroupCounter:
    """Counts the distinct learners of each value the suppressing operators of PLAN produce."""

    def __init__(self, plan: Plan) -> None:
        self.fields: list[tuple[str, Any, Any, int]] = []  # (group key, getter, producer, min size)
        producers: dict[str, Any] = {}
        for found in suppressing(plan):
            if found.scope != "envelope" or len(found.path) != 1:
                continue  # payload fields and decoded strings are not counted: their values stay RARE
            get = _getter(found.path[0])
            if get is None:
                continue
            key = group_key(found.op, found.params)
            producer = producers.setdefault(key, _producer(found.op, found.params))
            self.fields.append((key, get, producer, found.params["min_group_size"]))
        self.sizes = {key: size for key, _, _, size in self.fields}
        self._learners = self._learner_getters(plan)
        self._pairs: dict[str, set[tuple[str, str]]] = {key: set() for key in self.sizes}

    @staticmethod
    def _learner_getters(plan: Plan) -> list[tuple[Any, str, bool]]:
        found = []
        for kind in ("username", "user_id"):
            namespace = plan.namespaces.get(kind)
            for field in plan.identities:
                if field.kind == kind and field.scope == "envelope" and len(field.path) == 1:
                    get = _getter(field.path[0])
                    if get is not None:
                        found.append((get, kind, bool(namespace and namespace.fold)))
        return found

    @property
    def active(self) -> bool:
        return bool(self.fields)

    def learner(self, event: dict) -> str | None:
        """Who EVENT is about, as a key of the counts (never written anywhere), or None."""
        for get, kind, fold in self._learners:
            value = get(event)
            if type(value) is int and kind == "user_id":
                return f"id:{value}"
            if type(value) is str and value.strip():
                text = value.strip()
                if kind == "user_id":
                    if text.isascii() and text.isdecimal():
                        return f"id:{int(text)}"
                    continue
                return "name:" + (text.lower() if fold else text)
        return None

    def add_event(self, event: dict) -> None:
        if not self.fields or type(event) is not dict:
            return
        learner = self.learner(event)
        if learner is None:
            return
        for key, get, produce, _ in self.fields:
            raw = get(event)
            if raw is None:
                continue
            for value in produce(raw):
                self._pairs[key].add((value, learner))

    def add_lines(self, lines: Iterable[bytes]) -> None:
        for line in lines:
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # the run rejects it; nothing of it is written
            self.add_event(event)

    @property
    def pairs(self) -> dict[str, set[tuple[str, str]]]:
        """What was counted, as plain data (values and learners: kept in memory only)."""
        return self._pairs

    def merge(self, pairs: dict[str, set[tuple[str, str]]]) -> None:
        """Add PAIRS (another counter's ``pairs``, of the same plan, over other lines): sets, so
        the order of merging changes nothing."""
        for key, found in pairs.items():
            self._pairs[key] |= found

    def learners(self) -> dict[str, dict[str, int]]:
        """Distinct learners per value, per group key (kept in memory only: values are never reported)."""
        out: dict[str, dict[str, int]] = {}
        for key, pairs in self._pairs.items():
            counts: dict[str, int] = {}
            for value, _ in pairs:
                counts[value] = counts.get(value, 0) + 1
            out[key] = counts
        return out

    def frequent(self) -> dict[str, frozenset[str]]:
        """Per group key, the values shared by at least its ``min_group_size`` learners: the only
        ones the operator writes."""
        return {key: frozenset(v for v, n in counts.items() if n >= self.sizes[key]) for key, counts in self.learners().items()}

    def summary(self) -> dict[str, dict[str, int]]:
        """Counts for the manifest, per operator: distinct values kept and suppressed. Never a value."""
        out: dict[str, dict[str, int]] = {}
        for key, counts in self.learners().items():
            op = orjson.loads(key)[0]
            kept = sum(1 for n in counts.values() if n >= self.sizes[key])
            entry = out.setdefault(op, {"values_kept": 0, "values_suppressed": 0})
            entry["values_kept"] += kept
            entry["values_suppressed"] += len(counts) - kept
        return out


def keep_only(values: frozenset[str] | None):
    """A function from a produced value to itself when VALUES holds it, else ``RARE`` (None: no counts, all rare)."""
    allowed = values or frozenset()
    return lambda value: value if value in allowed else RARE
