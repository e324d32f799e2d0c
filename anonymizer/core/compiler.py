"""Compile a policy, once, into small functions: one per event rule.

Two steps: ``anonymizer.core.lowering.lower`` turns the policy into a plan (``anonymizer.core.plan``),
plain data with every decision made; ``build_policy`` turns the plan, and nothing else, into
closures. Each node of a plan's field tree becomes one closure that walks only its own level.
At run time a rule is a call to the root closure: no policy lookups, no branches on
configuration. A key no rule names is dropped and recorded in the event's state.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlencode

import orjson

from .data_keys import UNSAFE_KEY, key_checker
from .errors import PolicyError
from .operators import DROP, REGISTRY, BuildContext, EventState, Identity, OperatorFn
from .lowering import dispatch as _dispatch
from .lowering import data_keys_op, lower, lower_op
from .paths import WILDCARD, Token
from .plan import Cases, Container, Decode, EmptyPayload, Match, Op, Payload, Skip, decode_payload, safe_key  # noqa: F401  (re-exported)
from .plan import Plan as PlanData
from .plan import decode_query as _decode_query
from .plan import join_path as _join
from .policy import Policy, RosterRules
from .pseudonyms import Pseudonymizer
from .roster import Roster
from .strictjson import loads as strict_loads


class _KeepMarker:
    """Stands for the ``keep`` operator inside compiled trees, so containers copy without a call."""

    __slots__ = ()

    def __call__(self, value, state):
        return value


KEEP: Any = _KeepMarker()


def _all_keys(key, state) -> bool:
    return True


def _holds(value: Any, allowed: list) -> bool:
    # Compared with their JSON types: `true` is not `1`, `"1"` is not `1`.
    return any(type(value) is type(item) and value == item for item in allowed)


def _conditional(container: OperatorFn, conditions: dict[Token, dict], path: str, where: str, cases: dict | None = None) -> OperatorFn:
    """Before CONTAINER applies its rules, drop each field whose ``when`` does not hold: every
    named sibling must be present and equal one of its values (read as logged, before any rule).
    A field ruled by CASES gets the first case whose condition holds, or is dropped likewise."""
    checks = []
    for token in (*conditions, *(cases or ())):
        if not isinstance(token, str) or token == WILDCARD:
            raise PolicyError(f"{where}: field {_join(path, '*' if token == WILDCARD else token)!r}: 'when' applies to named fields, not to list items or wildcards")
    checks = [(token, tuple(when.items())) for token, when in conditions.items()]
    choices = tuple((cases or {}).items())

    def holds(value, needs) -> bool:
        return all(_holds(value.get(sibling, _MISSING), allowed) for sibling, allowed in needs)

    def conditional(value, state):
        if type(value) is dict:
            # Every condition reads the siblings as logged: decide first, then apply.
            chosen = [(key, next((fn for needs, fn in options if holds(value, needs)), _MISSING)) for key, options in choices if key in value]
            for key, needs in checks:
                if key in value and not holds(value, needs):
                    del value[key]
                    state.dropped.append((_join(path, key), "condition_not_met"))
            for key, fn in chosen:
                if fn is _MISSING:
                    del value[key]
                    state.dropped.append((_join(path, key), "condition_not_met"))
                    continue
                result = DROP if fn is None else fn(value[key], state)
                if result is DROP:
                    del value[key]
                    if fn is not None:
                        state.dropped.append((_join(path, key), "invalid_value"))
                elif result is not value[key]:
                    value[key] = result
        return container(value, state)

    return conditional


_MEMO_LIMIT = 1 << 16
_UNSEEN = object()


def _map_leaves(op: OperatorFn, memoize: bool = False, key_check=_all_keys) -> OperatorFn:
    """Apply a scalar operator to every scalar under a value; None and "" pass as they are.

    The keys of the dicts under the value are data no rule names: an entry whose key fails
    KEY_CHECK is dropped (see ``anonymizer.core.data_keys``).

    With MEMOIZE, results for strings and integers are kept in a bounded dict: identifiers,
    agents, URLs and addresses recur across millions of events, and a lookup is far cheaper than
    the operator. (Only exact ``str`` and ``int`` values are looked up, so ``True`` or ``1.0`` never
    meet the result for ``1``.)
    """
    memo: dict[str | int, Any] = {}
    memo_get = memo.get

    def leaves(value, state):
        kind = type(value)
        if kind is str or kind is int:
            if memoize:
                result = memo_get(value, _UNSEEN)
                if result is _UNSEEN:
                    result = op(value, state) if value != "" else value
                    if len(memo) >= _MEMO_LIMIT:
                        memo.clear()
                    memo[value] = result
                return result
            return op(value, state) if value != "" else value
        if kind is dict:
            out = {}
            for key, item in value.items():
                if not key_check(key, state):
                    state.dropped.append(("*", UNSAFE_KEY))
                    continue
                result = leaves(item, state)
                if result is not DROP:
                    out[key] = result
            return out
        if kind is list:
            return [result for item in value if (result := leaves(item, state)) is not DROP]
        if value is None or value == "":
            return value
        return op(value, state)

    if memoize:
        leaves.memo = memo  # containers look strings up here before calling
    leaves.op = op  # the operator itself, for the native engine's forms of some operators
    return leaves


_MISSING = object()


def _container(children: dict[Token, OperatorFn | None], own: OperatorFn | None, path: str, key_check=_all_keys) -> OperatorFn:
    """A dict or list node. It edits the value in place (the engine owns the parsed event).

    For a dict, the keys no rule names are found with one set difference (in C), and only the
    named fields that may change are visited: fields kept whole (``shape: any``) cost nothing per
    event, and a value an operator has seen before (a shaped ``keep`` included) costs one lookup
    in the operator's memo.
    Precedence: an exact key's rule, else the wildcard's, else the node's own rule, else the field
    is dropped and counted as unnamed. A key that only a wildcard or the node's own rule covers
    is data: it must pass KEY_CHECK, or its entry is dropped and counted as ``unsafe_key``.
    """
    star = children.pop(WILDCARD, _MISSING)
    get = children.get
    fallback = star if star is not _MISSING else (own if own is not None else _MISSING)
    allowed = frozenset(key for key in children if type(key) is str)
    transforms = tuple(
        (key, fn, getattr(fn, "memo", None)) for key, fn in children.items() if type(key) is str and fn is not KEEP
    )
    transform_of = {key: (fn, memo) for key, fn, memo in transforms}
    pairs = tuple((key, (fn, memo)) for key, fn, memo in transforms)
    fallback_rule = (fallback, getattr(fallback, "memo", None))
    rejected = getattr(key_check, "rejected", None) or (lambda keys, state: [k for k in keys if not key_check(k, state)])

    def container(value, state):
        kind = type(value)
        if kind is dict:
            later = None  # fields only the wildcard or the node's own rule covers
            if not allowed.issuperset(value):
                extra = value.keys() - allowed if allowed else list(value)
                if fallback is _MISSING:
                    for key in extra:
                        state.dropped.append((_join(path, key), "unnamed"))
                        del value[key]
                else:
                    bad = rejected(extra, state)
                    if bad:
                        for key in extra:
                            if key in bad:
                                state.dropped.append((_join(path, key), UNSAFE_KEY))
                                del value[key]
                    if fallback is not KEEP:
                        later = [(key, fallback_rule) for key in extra if key in value]
            # Visit the rules, or, when the dict has fewer fields than there are rules (a context
            # that names every field some platform version sends), the fields: either way each
            # field is looked up once. A memo (of a pure leaf operator, or of `keep`) is read here,
            # so that a value seen before costs a lookup, not a call.
            if len(value) >= len(transforms):
                lookup = value.get
                visit = [(key, item, rule) for key, rule in pairs if (item := lookup(key, _MISSING)) is not _MISSING]
            else:
                visit = [(key, item, rule) for key, item in value.items() if (rule := transform_of.get(key)) is not None]
            if later:
                visit += [(key, value[key], rule) for key, rule in later]
            for key, item, (fn, memo) in visit:
                if fn is None:
                    del value[key]
                    continue
                if memo is not None and (type(item) is str or type(item) is int):
                    result = memo.get(item, _UNSEEN)
                    if result is _UNSEEN:
                        result = fn(item, state)
                else:
                    result = fn(item, state)
                if result is DROP:
                    state.dropped.append((_join(path, key), "invalid_value"))
                    del value[key]
                elif result is not item:
                    value[key] = result
            return value
        if kind is list:
            out_list = []
            for index, item in enumerate(value):
                fn = get(index, star)
                if fn is KEEP:
                    out_list.append(item)
                    continue
                if fn is _MISSING:
                    if own is None:
                        state.dropped.append((_join(path, index), "unnamed"))
                        continue
                    fn = own
                elif fn is None:
                    continue
                result = fn(item, state)
                if result is DROP:
                    state.dropped.append((_join(path, index), "invalid_value"))
                else:
                    out_list.append(result)
            return out_list
        if own is not None:
            return own(value, state)
        if value is None:
            return None
        return DROP

    return container


def _encode_query(decoded: dict[str, Any], original: str, pairs: list[tuple[str, str]]) -> str:
    """DECODED as a GET-parameter string; ORIGINAL itself when nothing changed and it holds no
    percent-escape, so that an untouched payload is not re-encoded. An escape makes the text as
    written read otherwise than what the rules saw (``%739026`` is ``s9026`` decoded, a user id
    as written): such a payload is always written in its canonical encoding, in which the digits
    right after an escape of digits are escaped too (see ``_DIGITS_AFTER_ESCAPE``)."""
    out = [(key, "" if v is None else str(v)) for key, value in decoded.items() for v in (value if isinstance(value, list) else [value])]
    if out == pairs and "%" not in original:
        return original
    encoded = urlencode(out)
    return _DIGITS_AFTER_ESCAPE.sub(_escape_digits, encoded) if "%" in encoded else encoded


# An escape of two digits followed by digits (``&4013`` is written ``%264013``) shows, as
# written, a number the rules never saw (264013: a user id to a reader and to verify). Those
# digits are escaped as well (``%26%34%30%31%33``): the same text decoded, and no long run of
# digits as written.
_DIGITS_AFTER_ESCAPE = re.compile(r"(%[0-9]{2})([0-9]+)")


def _escape_digits(match: re.Match) -> str:
    return match.group(1) + "".join(f"%{ord(digit):02X}" for digit in match.group(2))


def _decoder(kind: str, inner: OperatorFn, path: str) -> OperatorFn:
    """Decode a string (JSON or a query string), apply INNER, and encode the result back."""
    if kind == "json":

        def decode_json(value, state):
            kind = type(value)
            if kind is dict or kind is list:  # some platform versions log it already decoded
                return inner(value, state)
            if kind is not str:
                return DROP
            if not value.strip():
                return value
            try:
                decoded = strict_loads(value)  # a repeated key or a depth bomb rejects the line
            except orjson.JSONDecodeError:
                return DROP
            result = inner(decoded, state)
            return DROP if result is DROP else orjson.dumps(result).decode()

        return decode_json

    def decode_query(value, state):
        if type(value) is dict:
            return inner(value, state)
        if type(value) is not str:
            return DROP
        decoded, pairs = _decode_query(value)
        result = inner(decoded, state)
        return DROP if result is DROP else _encode_query(result, value, pairs)

    return decode_query


def _payload(root: OperatorFn | None) -> OperatorFn:
    """The function for the ``event`` field: it decodes each encoding, applies ROOT, re-encodes.

    A payload that cannot be decoded, or that the rule reduces to nothing, becomes the empty
    value of its encoding (``{}``, ``"{}"``, ``[]``, ``""``): never a copy of the original.
    """
    if root is None:
        root = lambda value, state: DROP  # noqa: E731  (no rule: everything goes)

    def payload(value, state):
        kind = type(value)
        if kind is dict or kind is list:
            result = root(value, state)
            return ({} if kind is dict else []) if result is DROP else result
        if value is None:
            return None
        if kind is not str:
            result = root(value, state)
            return None if result is DROP else result
        text = value.strip()
        if not text:
            return value
        if text[0] in "{[":
            try:
                decoded = strict_loads(text)  # a repeated key or a depth bomb rejects the line
            except orjson.JSONDecodeError:
                state.dropped.append(("event", "unparseable"))
                return "{}" if text[0] == "{" else "[]"
            result = root(decoded, state)
            if result is DROP:
                result = {} if type(decoded) is dict else []
            return orjson.dumps(result).decode()
        if "=" in text:
            decoded, pairs = _decode_query(text)
            result = root(decoded, state)
            return "" if result is DROP else _encode_query(result, text, pairs)
        result = root(value, state)
        if result is DROP:
            state.dropped.append(("event", "unnamed"))
            return ""
        return result

    return payload


def _empty_payload(value, state):
    if value is None:
        return None
    if type(value) is dict:
        return {}
    if type(value) is list:
        return []
    if type(value) is str:
        text = value.strip()
        return "{}" if text.startswith("{") else ("[]" if text.startswith("[") else "")
    return None


Plan = Callable[[dict, EventState], dict]


@dataclass
class CompiledPolicy:
    """Functions for every event rule, and the resolver from (event_type, event_source) to one.

    RULES pairs each rule (anything with ``match``, ``source`` and ``action``: a plan's ``Rule``)
    with its function. DISPATCH ranks their patterns (``anonymizer.lowering.dispatch``): an exact
    name beats a glob; a rule with ``source`` beats one without; then the first rule in the file.
    The globs that apply to one source are joined, in that order, into one regular expression
    whose first matching branch wins.
    """

    rules: list[tuple[Any, Plan | None]]
    unknown: Plan | None
    dispatch: tuple[Match, ...] | None = None
    _globs: dict[str, tuple[re.Pattern[str] | None, list[int]]] = field(default_factory=dict)
    _exact: dict[str, dict[str, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.dispatch is None:
            self.dispatch = _dispatch(rule for rule, _ in self.rules)
        self._exact_entries = tuple(m for m in self.dispatch if not m.glob)

    def outcome(self, index: int | None) -> tuple[Plan | None, str]:
        """The plan of the rule at INDEX (None: no rule) and the outcome (``anonymize``, ``drop``,
        ``unknown``)."""
        if index is None:
            return (self.unknown, "unknown")
        rule, plan = self.rules[index]
        return (None, "drop") if rule.action == "drop" else (plan, "anonymize")

    def _glob_matcher(self, source: str) -> tuple[re.Pattern[str] | None, list[int]]:
        found = self._globs.get(source)
        if found is None:
            branches, owners = [], []
            for entry in self.dispatch:
                if entry.glob and (entry.source is None or source in entry.source):
                    branches.append(f"(?P<g{len(owners)}>{fnmatch.translate(entry.pattern)})")
                    owners.append(entry.rule)
            found = (re.compile("|".join(branches)) if branches else None, owners)
            if len(self._globs) > 1000:
                self._globs.clear()  # a source is whatever the input says: bounded
            self._globs[source] = found
        return found

    def _exact_names(self, source: str) -> dict[str, int]:
        """Exact event names that apply to SOURCE, each with the index of the first rule (in
        precedence order) that names it: one dict lookup instead of a walk over the rules."""
        found = self._exact.get(source)
        if found is None:
            found = {}
            for entry in self._exact_entries:
                if entry.source is None or source in entry.source:
                    found.setdefault(entry.pattern, entry.rule)
            if len(self._exact) > 1000:
                self._exact.clear()  # sources are a handful; bounded all the same
            self._exact[source] = found
        return found

    def rule_index(self, event_type: str, source: str) -> int | None:
        """The index in ``rules`` of the rule that applies to this event type and source, or None."""
        if event_type[:1] != "/":  # a URL event type is matched by globs only
            index = self._exact_names(source).get(event_type)
            if index is not None:
                return index
        matcher, owners = self._glob_matcher(source)
        match = matcher.match(event_type) if matcher is not None else None
        return owners[int(match.lastgroup[1:])] if match is not None else None

    def resolve(self, event_type: str, source: str) -> tuple[Plan | None, str]:
        """The plan for this event type and source, and the outcome (``anonymize``, ``drop``,
        ``unknown``). Not cached here: the engine keeps the one route cache."""
        return self.outcome(self.rule_index(event_type, source))


class _Builder:
    """Turns the nodes of a plan into functions; fields that share an operator and its
    parameters share one function, and so its memo (a username in ten places)."""

    def __init__(self, ctx: BuildContext, key_check=None) -> None:
        self.ctx = ctx
        self._built: dict[tuple[str, bytes], OperatorFn] = {}
        self.key_check = key_check if key_check is not None else _all_keys

    def op(self, op: Op) -> OperatorFn:
        if op.apply == "copy":
            return KEEP  # copied without a call
        signature = (op.op, orjson.dumps(op.params, option=orjson.OPT_SORT_KEYS))
        built = self._built.get(signature)
        if built is None:
            built = _operator(op, self.ctx)
            if op.apply == "leaves":
                built = _map_leaves(built, memoize=op.memo, key_check=self.key_check)
            self._built[signature] = built
        return built

    def node(self, node) -> OperatorFn | None:
        kind = type(node)
        if kind is Op:
            return self.op(node)
        if kind is Container:
            return self.container(node)
        if kind is Skip:
            return None  # dropped by rule: skipped without being counted
        if kind is Decode:
            return _decoder(node.encoding, self.node(node.value), "")
        if kind is Payload:
            return _payload(self.node(node.value) if node.value is not None else None)
        if kind is EmptyPayload:
            return _empty_payload
        raise PolicyError(f"plan: unknown node {kind.__name__}")

    def container(self, node: Container) -> OperatorFn:
        own = self.node(node.own) if node.own is not None else None
        children: dict[Token, OperatorFn | None] = {}
        cases: dict[Token, tuple] = {}
        for key in node.keys:
            if type(key.rule) is Cases:
                # ((condition, function or None for a drop), ...), in order
                cases[key.key] = tuple((tuple(case.when.items()) if case.when else (), self.node(case.rule)) for case in key.rule.cases)
                children[key.key] = KEEP  # the cases have ruled it before the container runs
            else:
                children[key.key] = self.node(key.rule)
        children.update((item.index, self.node(item.rule)) for item in node.items)
        if node.any is not None:
            children[WILDCARD] = self.node(node.any)
        container = _container(children, own, node.path, self.key_check)
        conditions = {key.key: key.when for key in node.keys if key.when}
        return _conditional(container, conditions, node.path, "plan", cases) if conditions or cases else container


def _operator(op: Op, ctx: BuildContext) -> OperatorFn:
    """The operator's own function for OP's parameters."""
    operator = REGISTRY.get(op.op)
    if operator is None:
        raise PolicyError(f"plan: unknown operator {op.op!r}: expected one of {sorted(REGISTRY)}")
    try:
        return operator.build(operator.Params.model_validate(op.params), ctx)
    except KeyError as exc:
        raise PolicyError(f"plan: operator {op.op!r}: unknown identity {exc.args[0]!r}") from None


class _Compiler(_Builder):
    """One field rule at a time (lowered, then built): how the tests of operators build them."""

    def __init__(self, ctx: BuildContext, where: str = "", built: dict | None = None, key_check=None) -> None:
        super().__init__(ctx, key_check)

    def operator(self, rule, path: str = "") -> OperatorFn:
        return self.op(lower_op(rule.op, rule.params))


def build_policy(plan: PlanData, pseudonymizer: Pseudonymizer, roster: Roster | None = None, geoip=None, groups: dict | None = None) -> CompiledPolicy:
    """The functions PLAN describes, under the key held by PSEUDONYMIZER, finding ROSTER's people
    in text, placing addresses with the country database GEOIP. Reads the plan and nothing else,
    but for GROUPS: the values operators with ``min_group_size`` may write
    (``anonymizer.core.suppression``)."""
    identities = {name: Identity(name, ns.format, ns.prefix, ns.fold) for name, ns in plan.namespaces.items()}
    ctx = BuildContext(
        pseudonymizer=pseudonymizer, identities=identities, roster=roster, roster_rules=RosterRules.model_validate(plan.roster),
        geoip=geoip, groups=groups,
    )
    key_check = key_checker(_operator(plan.data_keys, ctx))
    builder = _Builder(ctx, key_check)
    rules = [(rule, builder.node(plan.tree(rule)) if rule.action != "drop" else None) for rule in plan.rules]
    unknown = builder.node(plan.tree(plan.fallback)) if plan.fallback.action == "envelope" else None
    return CompiledPolicy(rules=rules, unknown=unknown, dispatch=plan.dispatch)


def compile_policy(policy: Policy, pseudonymizer: Pseudonymizer, roster: Roster | None = None) -> CompiledPolicy:
    """Turn POLICY into functions under the key held by PSEUDONYMIZER, finding ROSTER's people in text."""
    return build_policy(lower(policy), pseudonymizer, roster)


def build_fields(node, ctx: BuildContext) -> OperatorFn:
    """The function of one lowered field tree (``lowering.lower_fields``) under CTX, with the data-key
    check of a run: how the rows of tables are anonymized with the events' operators."""
    return _Builder(ctx, key_checker(_operator(data_keys_op(), ctx))).node(node)

