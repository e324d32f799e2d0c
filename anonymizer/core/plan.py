"""The plan: a policy lowered to plain data, the form every engine executes.

``anonymizer.core.lowering.lower`` makes every decision a policy leaves implicit (wildcard
inheritance, precedence between rules and between keys, which operator runs on which value, how
a payload is encoded) and writes it down here; ``anonymizer.core.compiler`` turns a plan into the
functions the Python engine runs, reading nothing else. A plan is JSON-serializable
(``to_json`` / ``from_json``), and its schema is documented in ``docs/plan.md``.

Versioning: ``PLAN_VERSION`` changes whenever a node type, a field or the meaning of one changes,
so that an engine refuses a plan it does not understand instead of executing it differently.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar, Union
from urllib.parse import parse_qsl

import orjson

from .strictjson import loads as strict_loads

PLAN_VERSION = 1
EVENTS_FORMATS = ("tracking-log", "xapi")

Token = Union[str, int]  # a key, a list index, or "*" (any key or item)
Segment = tuple[Token, ...]


class PlanError(ValueError):
    """A plan that cannot be read: wrong version, unknown node type, missing field."""


# ---------------------------------------------------------------- field tree nodes


@dataclass(frozen=True)
class Op:
    """An operator with its validated parameters (every default filled in).

    ``apply``: ``leaves`` (called on every string, number and boolean under the value, ``null``
    and ``""`` passed as they are, dict keys checked as data keys), ``value`` (called once on the
    value as it is) or ``copy`` (the value is copied as it is, no call: ``keep`` with shape
    ``any``). ``memo``: the result depends on the value alone, so it may be cached per string or
    integer. ``data``: names (in ``Plan.data``) of the shared data the operator reads.
    """

    node: ClassVar[str] = "op"
    op: str
    params: dict[str, Any]
    apply: str
    memo: bool
    data: tuple[str, ...] = ()


@dataclass(frozen=True)
class Skip:
    """A field dropped by its rule (``drop`` with nothing under it): removed, not counted."""

    node: ClassVar[str] = "skip"


@dataclass(frozen=True)
class Decode:
    """A string that holds JSON (``json``) or a GET query (``query``): decoded, ``value`` applied
    to the result, encoded back. A dict or list already decoded gets ``value`` directly."""

    node: ClassVar[str] = "decode"
    encoding: str
    value: Node


@dataclass(frozen=True)
class Key:
    """The rule for one named key of a dict, and the condition it is kept under.

    ``when``: {sibling key: allowed values}. Every sibling must be present in the dict (as logged,
    before any rule) and equal one of its values, compared with their JSON types; else the key is
    dropped and counted as ``condition_not_met`` before any rule of the dict runs."""

    key: str
    rule: Node
    when: dict[str, tuple[Any, ...]] | None = None


@dataclass(frozen=True)
class Item:
    """The rule for one position of a list."""

    index: int
    rule: Node


@dataclass(frozen=True)
class Container:
    """A position whose dicts or lists have rules for their members, inheritance resolved.

    For a dict, a key is ruled by its entry in ``keys``, else by ``any``, else by ``own``, else
    it is dropped and counted as ``unnamed``. A key that only ``any`` or ``own`` covers is data:
    it must pass ``Plan.data_keys`` or its entry is dropped and counted as ``unsafe_key``. For a
    list, position N is ruled by ``items``, else ``any``, else ``own``, else dropped as
    ``unnamed``. A value that is neither goes to ``own``; without one, ``null`` stays and
    anything else is dropped as ``invalid_value``. ``path`` names this position in counts.
    """

    node: ClassVar[str] = "container"
    path: str
    keys: tuple[Key, ...] = ()
    items: tuple[Item, ...] = ()
    any: Node | None = None
    own: Node | None = None


@dataclass(frozen=True)
class Case:
    """One case of a field ruled by cases: ``rule`` applies when ``when`` holds (read like a
    ``Key``'s ``when``; ``None`` holds always). ``rule`` is an ``Op`` or a ``Skip``."""

    when: dict[str, tuple[Any, ...]] | None
    rule: Node


@dataclass(frozen=True)
class Cases:
    """A named field ruled by the first of its cases whose condition holds, decided on the dict
    as logged, before any rule of the dict runs. With none, the field is dropped and counted as
    ``condition_not_met``; a case's ``Skip`` drops it uncounted; an ``Op`` that refuses the value
    drops it as ``invalid_value``."""

    node: ClassVar[str] = "cases"
    cases: tuple[Case, ...]


@dataclass(frozen=True)
class Payload:
    """The ``event`` field of a rule that anonymizes its payload: decoded by its encoding
    (``payload_encoding``), ``value`` applied, encoded back; without ``value`` it is emptied."""

    node: ClassVar[str] = "payload"
    value: Node | None = None


@dataclass(frozen=True)
class EmptyPayload:
    """The ``event`` field of an envelope-only rule: the empty value of its encoding."""

    node: ClassVar[str] = "empty_payload"


Node = Union[Op, Skip, Decode, Container, Cases, Payload, EmptyPayload]
NODE_TYPES: dict[str, type] = {cls.node: cls for cls in (Op, Skip, Decode, Container, Cases, Payload, EmptyPayload)}


# ---------------------------------------------------------------- rules, identities, the plan


@dataclass(frozen=True)
class IdentityField:
    """A field that carries a kind of identifier, as the policy names it.

    ``scope``: ``envelope`` (paths from the event's top level) or ``payload`` (from the decoded
    ``event``). ``path``: the field's path, then, for a field inside a decoded string, its path
    within each decoded value in turn. ``kind``: the pseudonym namespace (``username``,
    ``user_id`` …) for ``pseudonymize``, ``ip`` for ``mask_ip``, ``agent`` for ``generalize_agent``.
    """

    scope: str
    path: tuple[Segment, ...]
    kind: str
    op: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Rule:
    """One event rule of the policy (``events[index]``), or the fallback for unknown events.

    An event is ruled by the container ``Plan.envelopes[envelope]`` with one more key, ``event``,
    placed after the others and ruled by ``payload`` (a ``Payload`` or ``EmptyPayload`` node).
    Both are None when ``action`` is ``drop``."""

    index: int | None
    match: tuple[str, ...]
    source: tuple[str, ...] | None
    action: str
    envelope: int | None
    payload: Node | None
    identities: tuple[IdentityField, ...] = ()


@dataclass(frozen=True)
class Match:
    """One pattern of one rule, in precedence order: the first entry that matches wins.

    ``glob``: ``*`` any run of characters, ``?`` one, ``[seq]``/``[!seq]`` as Python's
    ``fnmatchcase``; otherwise the event type must equal ``pattern`` and not begin with ``/``.
    ``source``: the entry applies only to events whose ``event_source`` is one of these."""

    pattern: str
    glob: bool
    source: tuple[str, ...] | None
    rule: int


@dataclass(frozen=True)
class Namespace:
    """How one identity is pseudonymized (see the README's "Pseudonyms, exactly")."""

    format: str  # "text" or "number"
    prefix: str
    fold: bool  # derived from the value lower-cased


@dataclass(frozen=True)
class DataRef:
    """Shared data an operator reads, by reference: a file shipped in the Python package
    (``anonymizer/`` + ``path``), or a library's bundled rules, with the digest or version the
    plan was made with. An engine loads it itself and refuses a different digest."""

    path: str
    sha256: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class Plan:
    """A lowered policy. ``rules[i]`` is ``events[i]`` of the policy; ``fallback`` is what happens
    to events no rule matches; ``dispatch`` finds the rule of an event; ``envelopes`` holds each
    distinct envelope tree once."""

    version: int
    policy: str
    source: str
    dispatch: tuple[Match, ...]
    envelopes: tuple[Container, ...]
    rules: tuple[Rule, ...]
    fallback: Rule
    namespaces: dict[str, Namespace]
    roster: dict[str, Any]
    data_keys: Op
    data: dict[str, DataRef] = field(default_factory=dict)
    # What the events are: "tracking-log" events or "xapi" statements (rules keyed by verb id and
    # object definition type, the envelope tree applied to the whole statement). Written in the
    # JSON only when it is not "tracking-log", so that tracking-log plans keep their bytes.
    events_format: str = "tracking-log"

    @property
    def unknown_events(self) -> str:
        return "envelope" if self.fallback.action == "envelope" else "drop"

    def tree(self, rule: Rule) -> Container | None:
        """The whole tree RULE applies to an event: its envelope with ``event`` last."""
        if rule.envelope is None:
            return None
        envelope = self.envelopes[rule.envelope]
        return replace(envelope, keys=(*envelope.keys, Key("event", rule.payload)))

    @property
    def identities(self) -> tuple[IdentityField, ...]:
        """Every field any rule (or the fallback) names as carrying an identifier, once each."""
        seen: dict[bytes, IdentityField] = {}
        for rule in (*self.rules, self.fallback):
            for found in rule.identities:
                seen.setdefault(_canonical(_to_data(found)), found)
        return tuple(seen[key] for key in sorted(seen))


# ---------------------------------------------------------------- paths in counts

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


def join_path(path: str, key: Any) -> str:
    """The counted path of KEY (a dict key or list index) under PATH."""
    key = safe_key(key)
    return f"{path}{key}" if key == "[*]" else (f"{path}.{key}" if path else key)


# ---------------------------------------------------------------- payload encodings


def decode_query(text: str) -> tuple[dict[str, Any], list[tuple[str, str]]]:
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


_NO_PAYLOAD = object()


def decode_payload(value: Any = _NO_PAYLOAD) -> tuple[str, Any]:
    """The encoding of an ``event`` payload and its decoded value, as a ``Payload`` node decides.

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
        return "query-string", decode_query(text)[0]
    return "string", value


# ---------------------------------------------------------------- JSON


def _to_data(obj: Any) -> Any:
    """OBJ as JSON data: dataclasses as objects (nodes tagged with ``node``), tuples as arrays."""
    if hasattr(obj, "__dataclass_fields__"):
        out = {"node": obj.node} if isinstance(getattr(type(obj), "node", None), str) else {}
        for f in fields(obj):
            out[f.name] = _to_data(getattr(obj, f.name))
        return out
    if isinstance(obj, dict):
        return {key: _to_data(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_data(item) for item in obj]
    return obj


def _canonical(data: Any) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


def _plan_data(plan: Plan) -> dict:
    data = _to_data(plan)
    if data.get("events_format") == "tracking-log":
        del data["events_format"]
    return data


def to_json(plan: Plan) -> bytes:
    """PLAN as JSON: keys sorted, two-space indents, a final newline; equal plans, equal bytes."""
    return orjson.dumps(_plan_data(plan), option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)


def digest(plan: Plan) -> str:
    """The sha256 of the plan's canonical JSON: two plans with one digest do the same thing."""
    return hashlib.sha256(to_json(plan)).hexdigest()


def _tuple(items: Any) -> tuple:
    return tuple(items) if items is not None else ()


def _segment(tokens: list) -> Segment:
    return tuple(tokens)


def _node(data: Any) -> Node | None:
    if data is None:
        return None
    try:
        kind = data["node"]
        if kind == "op":
            return Op(data["op"], data["params"], data["apply"], data["memo"], _tuple(data.get("data")))
        if kind == "skip":
            return Skip()
        if kind == "decode":
            return Decode(data["encoding"], _node(data["value"]))
        if kind == "container":
            keys = tuple(
                Key(k["key"], _node(k["rule"]), {s: tuple(v) for s, v in k["when"].items()} if k.get("when") is not None else None)
                for k in data["keys"]
            )
            items = tuple(Item(i["index"], _node(i["rule"])) for i in data["items"])
            return Container(data["path"], keys, items, _node(data.get("any")), _node(data.get("own")))
        if kind == "cases":
            return Cases(
                tuple(Case({s: tuple(v) for s, v in c["when"].items()} if c.get("when") is not None else None, _node(c["rule"])) for c in data["cases"])
            )
        if kind == "payload":
            return Payload(_node(data.get("value")))
        if kind == "empty_payload":
            return EmptyPayload()
    except (KeyError, TypeError, AttributeError) as exc:
        raise PlanError(f"a {data.get('node') if isinstance(data, dict) else type(data).__name__!r} node is missing or misstates {exc}") from None
    raise PlanError(f"unknown node type {data.get('node')!r}: expected one of {sorted(NODE_TYPES)}")


def _identity(data: dict) -> IdentityField:
    return IdentityField(data["scope"], tuple(_segment(s) for s in data["path"]), data["kind"], data["op"], data["params"])


def _rule(data: dict) -> Rule:
    source = data.get("source")
    return Rule(
        data["index"],
        tuple(data["match"]),
        tuple(source) if source is not None else None,
        data["action"],
        data.get("envelope"),
        _node(data.get("payload")),
        tuple(_identity(i) for i in data.get("identities", ())),
    )


def from_data(data: dict) -> Plan:
    """A plan from its JSON data (``to_json``, parsed); raises ``PlanError`` when it is not one."""
    if not isinstance(data, dict) or data.get("version") != PLAN_VERSION:
        found = data.get("version") if isinstance(data, dict) else None
        raise PlanError(f"plan version {found!r}: this engine executes plan version {PLAN_VERSION} only")
    if data.get("events_format", "tracking-log") not in EVENTS_FORMATS:
        raise PlanError(f"plan events_format {data.get('events_format')!r}: expected one of {', '.join(EVENTS_FORMATS)}")
    try:
        return Plan(
            version=data["version"],
            policy=data["policy"],
            source=data["source"],
            dispatch=tuple(
                Match(m["pattern"], m["glob"], tuple(m["source"]) if m["source"] is not None else None, m["rule"]) for m in data["dispatch"]
            ),
            envelopes=tuple(_node(e) for e in data["envelopes"]),
            rules=tuple(_rule(r) for r in data["rules"]),
            fallback=_rule(data["fallback"]),
            namespaces={name: Namespace(n["format"], n["prefix"], n["fold"]) for name, n in data["namespaces"].items()},
            roster=data["roster"],
            data_keys=_node(data["data_keys"]),
            data={name: DataRef(d["path"], d.get("sha256"), d.get("version")) for name, d in data.get("data", {}).items()},
            events_format=data.get("events_format", "tracking-log"),
        )
    except (KeyError, TypeError) as exc:
        raise PlanError(f"not a plan: missing or misstated {exc}") from None


def from_json(text: bytes | str) -> Plan:
    """A plan from ``to_json``'s output."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise PlanError("not a plan: not valid JSON") from None
    return from_data(data)
