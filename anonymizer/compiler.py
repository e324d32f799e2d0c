"""Compile a policy, once, into small functions: one plan per event rule.

Field rules become a tree keyed by path token; each node becomes one closure that walks only
its own level. At run time a plan is a call to the root closure: no policy lookups, no
branches on configuration. A key no rule names is dropped and recorded in the event's state.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import parse_qsl, urlencode

import orjson

from .data_keys import UNSAFE_KEY, key_checker
from .errors import PolicyError
from .operators import DROP, REGISTRY, BuildContext, EventState, Identity, OperatorFn
from .paths import WILDCARD, Token, format_path, parse_path
from .policy import EventRule, FieldRule, Policy
from .pseudonyms import Pseudonymizer
from .roster import Roster
from .strictjson import loads as strict_loads

class _KeepMarker:
    """Stands for the ``keep`` operator inside compiled trees, so containers copy without a call."""

    __slots__ = ()

    def __call__(self, value, state):
        return value


_SAFE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,47}$")
_HEX_RUN = re.compile(r"[0-9a-fA-F]{16}")


def safe_key(key: Any) -> str:
    """A key as it may appear in the manifest: plain names as they are, anything else as ``*``.

    Keys of payload dicts can be data (problem input ids, query parameters), so only short
    identifier-like names without long hex runs (block ids) are reported.
    """
    if isinstance(key, int):
        return "[*]"
    return key if _SAFE_KEY.match(key) and not _HEX_RUN.search(key) else "*"


def _join(path: str, key: Any) -> str:
    key = safe_key(key)
    return f"{path}{key}" if key == "[*]" else (f"{path}.{key}" if path else key)


@dataclass
class _Node:
    rule: FieldRule | None = None
    children: dict[Token, _Node] = field(default_factory=dict)
    fn: OperatorFn | None = None  # a precompiled function that replaces the whole node


def _build_tree(rules: dict[str, FieldRule], where: str) -> _Node:
    root = _Node()
    for path, rule in rules.items():
        tokens = parse_path(path)
        node = root
        for token in tokens:
            node = node.children.setdefault(token, _Node())
        if node.rule is not None:
            raise PolicyError(f"{where}: the field {format_path(tokens)!r} is ruled twice")
        node.rule = rule
    _inherit(root)
    return root


def _inherit(node: _Node) -> None:
    """A more specific path wins, and what it leaves unsaid falls back to the wildcard beside it."""
    star = node.children.get(WILDCARD)
    if star is not None:
        for token, child in list(node.children.items()):
            if token != WILDCARD:
                node.children[token] = _merge(child, star)
    for child in node.children.values():
        _inherit(child)


def _merge(exact: _Node, star: _Node) -> _Node:
    merged = _Node(rule=exact.rule if exact.rule is not None else star.rule, children=dict(exact.children))
    for token, child in star.children.items():
        merged.children[token] = _merge(merged.children[token], child) if token in merged.children else child
    return merged


class _Compiler:
    def __init__(self, ctx: BuildContext, where: str, built: dict | None = None, key_check=None) -> None:
        self.ctx = ctx
        self.where = where
        self._built: dict[tuple[str, str], OperatorFn] = built if built is not None else {}
        self.key_check = key_check if key_check is not None else _all_keys

    def operator(self, rule: FieldRule, path: str) -> OperatorFn:
        if rule.op == "keep" and rule.params.copies_anything:
            return KEEP  # `shape: any`: copied without a call
        operator = REGISTRY[rule.op]
        # One function per distinct operator and parameters, so that fields sharing a rule
        # (a username in ten places) share its memo too.
        signature = (rule.op, rule.params.model_dump_json() if rule.params is not None else "")
        built = self._built.get(signature)
        if built is None:
            try:
                fn = operator.build(rule.params, self.ctx)
            except KeyError as exc:
                raise PolicyError(f"{self.where}: field {path!r}: unknown identity {exc.args[0]!r}") from None
            built = _map_leaves(fn, memoize=operator.pure, key_check=self.key_check) if operator.leaf else fn
            self._built[signature] = built
        return built

    def node(self, node: _Node, path: str) -> OperatorFn:
        if node.fn is not None:
            return node.fn
        rule = node.rule
        if rule is not None and rule.decode is not None:
            inner = self.node(_build_tree(rule.fields, self.where), path)
            own = _decoder(rule.decode, inner, path)
        elif rule is not None:
            own = self.operator(rule, path)
        else:
            own = None
        if not node.children:
            return own
        children = {}
        for token, child in node.children.items():
            child_path = _join(path, "*" if token == WILDCARD else token)
            if child.rule is not None and child.rule.op == "drop" and not child.children:
                children[token] = None  # dropped by rule: skipped without being counted
            else:
                children[token] = self.node(child, child_path)
        conditions = {token: child.rule.when for token, child in node.children.items() if child.rule is not None and child.rule.when}
        if conditions:
            return _conditional(_container(children, own, path, self.key_check), conditions, path, self.where)
        return _container(children, own, path, self.key_check)


KEEP: Any = _KeepMarker()


def _all_keys(key, state) -> bool:
    return True


def _holds(value: Any, allowed: list) -> bool:
    # Compared with their JSON types: `true` is not `1`, `"1"` is not `1`.
    return any(type(value) is type(item) and value == item for item in allowed)


def _conditional(container: OperatorFn, conditions: dict[Token, dict], path: str, where: str) -> OperatorFn:
    """Before CONTAINER applies its rules, drop each field whose ``when`` does not hold: every
    named sibling must be present and equal one of its values (read as logged, before any rule)."""
    checks = []
    for token, when in conditions.items():
        if not isinstance(token, str) or token == WILDCARD:
            raise PolicyError(f"{where}: field {_join(path, '*' if token == WILDCARD else token)!r}: 'when' applies to named fields, not to list items or wildcards")
        checks.append((token, tuple(when.items())))

    def conditional(value, state):
        if type(value) is dict:
            for key, needs in checks:
                if key in value and not all(_holds(value.get(sibling, _MISSING), allowed) for sibling, allowed in needs):
                    del value[key]
                    state.dropped.append((_join(path, key), "condition_not_met"))
        return container(value, state)

    return conditional


_MEMO_LIMIT = 1 << 16
_UNSEEN = object()


def _map_leaves(op: OperatorFn, memoize: bool = False, key_check=_all_keys) -> OperatorFn:
    """Apply a scalar operator to every scalar under a value; None and "" pass as they are.

    The keys of the dicts under the value are data no rule names: an entry whose key fails
    KEY_CHECK is dropped (see ``anonymizer.data_keys``).

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
    return leaves


_MISSING = object()


def _container(children: dict[Token, OperatorFn | None], own: OperatorFn | None, path: str, key_check=_all_keys) -> OperatorFn:
    """A dict or list node. It edits the value in place (the engine owns the parsed event).

    For a dict, the keys no rule names are found with one set difference (in C), and only the
    named fields that change anything are visited: kept fields cost nothing per event.
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
    transform_of = {triple[0]: triple for triple in transforms}
    fallback_memo = getattr(fallback, "memo", None)

    def container(value, state):
        kind = type(value)
        if kind is dict:
            # Visit the rules, or, when the dict has fewer fields than there are rules (a context
            # that names every field some platform version sends), the fields.
            visit = transforms if len(value) >= len(transforms) else [
                triple for key in value if (triple := transform_of.get(key)) is not None
            ]
            if not allowed.issuperset(value):
                extra = value.keys() - allowed if allowed else list(value)
                if fallback is _MISSING:
                    for key in extra:
                        state.dropped.append((_join(path, key), "unnamed"))
                        del value[key]
                else:
                    for key in extra:
                        if not key_check(key, state):
                            state.dropped.append((_join(path, key), UNSAFE_KEY))
                            del value[key]
                    if fallback is not KEEP:
                        visit = [*visit, *((key, fallback, fallback_memo) for key in extra if key in value)]
            if visit:
                lookup = value.get
                for key, fn, memo in visit:
                    item = lookup(key, _MISSING)
                    if item is _MISSING:
                        continue
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


def _decode_query(text: str) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """A GET-parameter string as a dict (repeated keys become lists), and its pairs as parsed."""
    pairs = parse_qsl(text, keep_blank_values=True)
    decoded: dict[str, Any] = {}
    for key, value in pairs:
        if key in decoded:
            previous = decoded[key]
            decoded[key] = previous + [value] if isinstance(previous, list) else [previous, value]
        else:
            decoded[key] = value
    return decoded, pairs


def _encode_query(decoded: dict[str, Any], original: str, pairs: list[tuple[str, str]]) -> str:
    """DECODED as a GET-parameter string; ORIGINAL itself when nothing changed, so that an untouched
    payload is not re-encoded (every character of it is in PAIRS, so nothing hides there)."""
    out = [(key, "" if v is None else str(v)) for key, value in decoded.items() for v in (value if isinstance(value, list) else [value])]
    return original if out == pairs else urlencode(out)


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


_NO_PAYLOAD = object()


def decode_payload(value: Any = _NO_PAYLOAD) -> tuple[str, Any]:
    """The encoding of an ``event`` payload and its decoded value, decided as ``_payload`` decides.

    Encodings: ``dict``, ``list``, ``json-string``, ``query-string``, ``string`` (a plain string,
    decoded as itself), ``scalar`` (a number or boolean), ``empty``, ``null``, ``missing`` (no
    ``event`` key: call without VALUE) and ``unparseable`` (decoded as None). A JSON string that
    repeats a key or nests too deep raises ``StrictJSONError``, as it rejects the line in a run.
    """
    if value is _NO_PAYLOAD:
        return "missing", None
    kind = type(value)
    if kind is dict or kind is list:
        return kind.__name__, value
    if value is None:
        return "null", None
    if kind is not str:
        return "scalar", value
    text = value.strip()
    if not text:
        return "empty", value
    if text[0] in "{[":
        try:
            return "json-string", strict_loads(text)
        except orjson.JSONDecodeError:
            return "unparseable", None
    if "=" in text:
        return "query-string", _decode_query(text)[0]
    return "string", value


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


def _is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


@dataclass
class CompiledPolicy:
    """Plans for every event rule, and the resolver from (event_type, event_source) to a plan.

    Precedence: an exact name beats a glob; a rule with ``source`` beats one without; then the
    first rule in the file. Exact names are a dict lookup; the globs that apply to one source are
    joined, in precedence order, into one regular expression whose first matching branch wins.
    """

    rules: list[tuple[EventRule, Plan | None]]
    unknown: Plan | None
    _globs: dict[str, tuple[re.Pattern[str] | None, list[int]]] = field(default_factory=dict)

    def outcome(self, index: int | None) -> tuple[Plan | None, str]:
        """The plan of the rule at INDEX (None: no rule) and the outcome (``anonymize``, ``drop``,
        ``unknown``)."""
        if index is None:
            return (self.unknown, "unknown")
        rule, plan = self.rules[index]
        return (None, "drop") if rule.action == "drop" else (plan, "anonymize")

    def _candidates(self, source: str, globs: bool):
        """Indexes of the rules that apply to SOURCE, in precedence order, with their patterns."""
        ranked = sorted(
            (rule.source is None, index)
            for index, (rule, _) in enumerate(self.rules)
            if rule.source is None or source in rule.source
        )
        for _, index in ranked:
            patterns = [p for p in self.rules[index][0].match if _is_glob(p) == globs]
            if patterns:
                yield index, patterns

    def _glob_matcher(self, source: str) -> tuple[re.Pattern[str] | None, list[int]]:
        found = self._globs.get(source)
        if found is None:
            branches, owners = [], []
            for index, patterns in self._candidates(source, globs=True):
                for pattern in patterns:
                    branches.append(f"(?P<g{len(owners)}>{fnmatch.translate(pattern)})")
                    owners.append(index)
            found = (re.compile("|".join(branches)) if branches else None, owners)
            self._globs[source] = found
        return found

    def rule_index(self, event_type: str, source: str) -> int | None:
        """The index in ``rules`` of the rule that applies to this event type and source, or None."""
        for index, patterns in self._candidates(source, globs=False) if event_type[:1] != "/" else ():
            if event_type in patterns:
                return index
        matcher, owners = self._glob_matcher(source)
        match = matcher.match(event_type) if matcher is not None else None
        return owners[int(match.lastgroup[1:])] if match is not None else None

    def resolve(self, event_type: str, source: str) -> tuple[Plan | None, str]:
        """The plan for this event type and source, and the outcome (``anonymize``, ``drop``,
        ``unknown``). Not cached here: the engine keeps the one route cache."""
        return self.outcome(self.rule_index(event_type, source))


def compile_policy(policy: Policy, pseudonymizer: Pseudonymizer, roster: Roster | None = None) -> CompiledPolicy:
    """Turn POLICY into plans under the key held by PSEUDONYMIZER, finding ROSTER's people in text."""
    identities = {name: Identity(name, rule.format, rule.prefix, rule.case == "insensitive") for name, rule in policy.identities.items()}
    ctx = BuildContext(pseudonymizer=pseudonymizer, identities=identities, roster=roster, roster_rules=policy.roster)
    built: dict = {}
    # Keys that are data are checked with the default text scrubber, whatever the policy does
    # with text (a policy that drops text still copies the keys of the dicts it keeps).
    key_check = key_checker(REGISTRY["scrub_text"].build(REGISTRY["scrub_text"].Params(), ctx))

    def plan_for(envelope_rules: dict[str, FieldRule], payload_fn: OperatorFn, where: str) -> Plan:
        tree = _build_tree(envelope_rules, where)
        tree.children["event"] = _Node(fn=payload_fn)
        root = _Compiler(ctx, where, built, key_check).node(tree, "")
        return root

    compiled_rules = []
    for index, rule in enumerate(policy.events):
        where = f"{policy.source}: events[{index}]"
        if rule.action == "drop":
            compiled_rules.append((rule, None))
            continue
        if rule.action == "envelope":
            payload_fn = _empty_payload
        else:
            payload_rules = dict(rule.fields)
            if rule.payload is not None:
                if rule.payload.when:
                    raise PolicyError(f"{where}: payload: 'when' applies to a field beside the fields it names, not to the whole payload")
                payload_tree = _build_tree(payload_rules, where)
                payload_tree.rule = rule.payload
            else:
                payload_tree = _build_tree(payload_rules, where) if payload_rules else None
            root = _Compiler(ctx, where, built, key_check).node(payload_tree, "event") if payload_tree is not None else None
            payload_fn = _payload(root)
        envelope_rules = {**policy.envelope, **rule.envelope}
        compiled_rules.append((rule, plan_for(envelope_rules, payload_fn, where)))
    unknown = plan_for(policy.envelope, _empty_payload, f"{policy.source}: envelope") if policy.unknown_events == "envelope" else None
    # Build the envelope once even when unknown events are dropped, so that its errors surface at load time.
    plan_for(policy.envelope, _empty_payload, f"{policy.source}: envelope")
    return CompiledPolicy(rules=compiled_rules, unknown=unknown)
