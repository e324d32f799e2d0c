"""Lowering: a validated policy to a plan (``anonymizer.core.plan``), every decision made here.

This is the one walk over a policy's rule tree. Field rules become a tree keyed by path token;
a more specific path wins, and what it leaves unsaid falls back to the wildcard beside it; each
rule becomes an operator node with its validated parameters, a decode node, or a skip; event
rules are ranked into one dispatch list; the fields that carry identities are listed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any, Iterable, Iterator

from .errors import PolicyError
from .operators import REGISTRY
from .paths import WILDCARD, Token, format_path, parse_path
from .plan import PLAN_VERSION, Case, Cases, Container, DataRef, Decode, EmptyPayload, IdentityField, Item, Key, Match, Namespace, Node, Op, Payload, Plan, Rule, Segment, Skip, _canonical, _to_data, join_path
from .policy import FieldRule, Policy

# Shared data operators read (``Operator.data``) and the data-key check, shipped in the package.
DATA_FILES = {"url_routes": "data/url_routes.yaml", "common_words": "data/common_words.txt", "safe_keys": "data/safe_keys.txt"}


@dataclass
class _Node:
    rule: FieldRule | None = None
    children: dict[Token, _Node] = field(default_factory=dict)
    lowered: Node | None = None  # a node lowered beforehand that replaces this one (the payload)


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


def lower_op(name: str, params: Any) -> Op:
    """The node for operator NAME with its validated PARAMS."""
    operator = REGISTRY[name]
    if getattr(params, "copies_anything", False):
        apply = "copy"  # `keep` with `shape: any`: copied without a call
    else:
        apply = "leaves" if operator.leaf else "value"
    dumped = params.model_dump(mode="json") if params is not None else {}
    return Op(name, dumped, apply, operator.pure and apply == "leaves", tuple(operator.data))


class _Lowering:
    def __init__(self, where: str) -> None:
        self.where = where

    def node(self, node: _Node, path: str) -> Node | None:
        if node.lowered is not None:
            return node.lowered
        rule = node.rule
        if rule is not None and rule.decode is not None:
            own: Node | None = Decode(rule.decode, self.node(_build_tree(rule.fields, self.where), path))
        elif rule is not None:
            own = lower_op(rule.op, rule.params)
        else:
            own = None
        if not node.children:
            return own
        keys, items, star = [], [], None
        for token, child in node.children.items():
            child_path = join_path(path, "*" if token == WILDCARD else token)
            if child.rule is not None and child.rule.cases is not None:
                if child.children:
                    raise PolicyError(f"{self.where}: field {child_path!r}: a field ruled by cases has no rules under it")
                if not isinstance(token, str) or token == WILDCARD:
                    raise PolicyError(f"{self.where}: field {child_path!r}: 'when' applies to named fields, not to list items or wildcards")
                lowered = Cases(tuple(self.case(case) for case in child.rule.cases))
            elif child.rule is not None and child.rule.op == "drop" and not child.children:
                lowered: Node | None = Skip()  # dropped by rule: skipped without being counted
            else:
                lowered = self.node(child, child_path)
            when = child.rule.when if child.rule is not None and child.rule.when else None
            if when and (not isinstance(token, str) or token == WILDCARD):
                raise PolicyError(f"{self.where}: field {child_path!r}: 'when' applies to named fields, not to list items or wildcards")
            if token == WILDCARD:
                star = lowered
            elif isinstance(token, int):
                items.append(Item(token, lowered))
            else:
                keys.append(Key(token, lowered, {sibling: tuple(values) for sibling, values in when.items()} if when else None))
        return Container(path, tuple(keys), tuple(items), star, own)

    @staticmethod
    def case(rule: FieldRule) -> Case:
        return Case(_when(rule.when), Skip() if rule.op == "drop" else lower_op(rule.op, rule.params))


def _when(when: dict | None) -> dict[str, tuple[Any, ...]] | None:
    return {sibling: tuple(values) for sibling, values in when.items()} if when else None


def _carried(rules: dict[str, FieldRule], scope: str, outer: tuple[Segment, ...] = ()) -> Iterator[IdentityField]:
    """The fields RULES (as written) name as carrying an identifier; OUTER: the decoded strings they are in."""
    for path, rule in rules.items():
        yield from _carried_one(rule, outer + (parse_path(path),), scope)


def _carried_one(rule: FieldRule, here: tuple[Segment, ...], scope: str) -> Iterator[IdentityField]:
    if rule.cases is not None:
        # A field ruled by cases carries an identity only under some condition (a setting's
        # ``old`` is an email only when ``setting`` is ``email``): not an identity field.
        return
    if rule.decode is not None:
        yield from _carried(rule.fields, scope, here)
        return
    kind = REGISTRY[rule.op].carries(rule.params)
    if kind is not None:
        yield IdentityField(scope, here, kind, rule.op, rule.params.model_dump(mode="json"))


def _identities(envelope: dict[str, FieldRule], fields: dict[str, FieldRule], payload: FieldRule | None) -> tuple[IdentityField, ...]:
    found = list(_carried(envelope, "envelope")) + list(_carried(fields, "payload"))
    if payload is not None:
        found += list(_carried_one(payload, ((),), "payload"))
    return tuple(found)


def _is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def dispatch(rules: Iterable[Any]) -> tuple[Match, ...]:
    """The patterns of RULES (anything with ``match`` and ``source``) in precedence order: an exact
    name beats a glob; a rule with ``source`` beats one without; then the first rule in the file."""
    rules = list(rules)
    keys = [getattr(rule, "keyed_by", rule.source) for rule in rules]  # an xAPI rule's object_type
    ranked = sorted((key is None, index) for index, key in enumerate(keys))
    out = []
    for globs in (False, True):
        for _, index in ranked:
            source = tuple(keys[index]) if keys[index] is not None else None
            out.extend(Match(p, globs, source, index) for p in rules[index].match if _is_glob(p) == globs)
    return tuple(out)


def _data_refs() -> dict[str, DataRef]:
    files = resources.files("anonymizer")
    return {name: DataRef(path, hashlib.sha256(files.joinpath(path).read_bytes()).hexdigest()) for name, path in DATA_FILES.items()}


def lower(policy: Policy) -> Plan:
    """POLICY as a plan; raises PolicyError for what validation alone cannot see."""
    rules = []
    envelopes: list[Container] = []
    seen: dict[bytes, int] = {}  # each distinct envelope tree once, by its JSON
    # Most rules share the policy's envelope as it is: lowered once (the same rule objects).
    by_rules: dict[tuple, int] = {}
    carried: dict[tuple, tuple[IdentityField, ...]] = {}

    def envelope(envelope_rules: dict[str, FieldRule], where: str) -> int:
        same = tuple((path, id(rule)) for path, rule in envelope_rules.items())
        index = by_rules.get(same)
        if index is None:
            tree = _envelope(envelope_rules, where)
            index = by_rules[same] = seen.setdefault(_canonical(_to_data(tree)), len(envelopes))
            if index == len(envelopes):
                envelopes.append(tree)
        return index

    def envelope_identities(envelope_rules: dict[str, FieldRule]) -> tuple[IdentityField, ...]:
        same = tuple((path, id(rule)) for path, rule in envelope_rules.items())
        found = carried.get(same)
        if found is None:
            found = carried[same] = tuple(_carried(envelope_rules, "envelope"))
        return found

    xapi = policy.events_format == "xapi"
    for index, rule in enumerate(policy.events):
        where = f"{policy.source}: events[{index}]"
        if xapi:
            # A statement has no payload: a rule's fields are statement paths, ruled beside the
            # envelope's (and before them where both name one path).
            envelope_rules = {**policy.envelope, **(rule.fields if rule.action != "envelope" else {})}
            identities = envelope_identities(envelope_rules)
        else:
            envelope_rules = {**policy.envelope, **rule.envelope}
            # A rule that drops its events still names where their people are (the learned roster reads them).
            identities = envelope_identities(envelope_rules) + _identities({}, rule.fields, rule.payload)
        source = tuple(rule.keyed_by) if rule.keyed_by is not None else None
        if rule.action == "drop":
            rules.append(Rule(index, tuple(rule.match), source, "drop", None, None, identities))
            continue
        if xapi:
            payload: Node = Skip()  # a statement's key "event", were there one, is dropped
        elif rule.action == "envelope":
            payload = EmptyPayload()
        else:
            payload_rules = dict(rule.fields)
            if rule.payload is not None:
                if rule.payload.when:
                    raise PolicyError(f"{where}: payload: 'when' applies to a field beside the fields it names, not to the whole payload")
                payload_tree = _build_tree(payload_rules, where)
                payload_tree.rule = rule.payload
            else:
                payload_tree = _build_tree(payload_rules, where) if payload_rules else None
            payload = Payload(_Lowering(where).node(payload_tree, "event") if payload_tree is not None else None)
        rules.append(Rule(index, tuple(rule.match), source, rule.action, envelope(envelope_rules, where), payload, identities))
    # Lowered even when unknown events are dropped, so that the envelope's errors surface at load time.
    fallback_envelope = envelope(policy.envelope, f"{policy.source}: envelope")
    identities = envelope_identities(policy.envelope)
    action = "envelope" if policy.unknown_events == "envelope" else "drop"
    if action == "envelope":
        fallback = Rule(None, (), None, action, fallback_envelope, Skip() if xapi else EmptyPayload(), identities)
    else:
        fallback = Rule(None, (), None, action, None, None, identities)
    data_keys = data_keys_op()
    return Plan(
        version=PLAN_VERSION,
        policy=policy.name,
        source=policy.source,
        dispatch=dispatch(policy.events),
        envelopes=tuple(envelopes),
        rules=tuple(rules),
        fallback=fallback,
        namespaces={name: Namespace(rule.format, rule.prefix, rule.case == "insensitive") for name, rule in policy.identities.items()},
        roster=policy.roster.model_dump(mode="json"),
        data_keys=data_keys,
        data=_data_refs(),
        events_format=policy.events_format,
    )


def data_keys_op() -> Op:
    """The check of keys that are data: the default text scrubber, whatever the policy does with
    text (a policy that drops text still copies the keys of the dicts it keeps)."""
    data_keys = lower_op("scrub_text", REGISTRY["scrub_text"].Params())
    return Op(data_keys.op, data_keys.params, data_keys.apply, data_keys.memo, (*data_keys.data, "safe_keys"))


def lower_fields(rules: dict[str, FieldRule], where: str) -> Node:
    """The tree of field RULES alone, as an event rule's ``fields`` are lowered (used for the rows
    of tables, whose columns are fields)."""
    return _Lowering(where).node(_build_tree(rules, where), "")


_EVENT = Skip()  # stands for the payload while the envelope is lowered: the rule's own node replaces it


def _envelope(envelope_rules: dict[str, FieldRule], where: str) -> Container:
    """The envelope tree, without its ``event`` key (each rule has its own payload node)."""
    tree = _build_tree(envelope_rules, where)
    tree.children["event"] = _Node(lowered=_EVENT)  # ruled beside the others, as in a run
    lowered = _Lowering(where).node(tree, "")
    return replace(lowered, keys=tuple(key for key in lowered.keys if key.rule is not _EVENT))
