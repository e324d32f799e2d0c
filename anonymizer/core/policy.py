"""The policy model: a YAML file validated once, with errors that point into the file.

A policy names what may leave: *envelope* rules for the fields every event has, *event* rules
for the ``event`` payload keyed by event type (exact or glob, optionally by ``event_source``),
and *identities* that say how each kind of identifier is pseudonymized. Everything a policy
does not name is dropped. See ``policies/research.yaml`` for a commented example.
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from .errors import PolicyError, shown
from .operators import REGISTRY
from .paths import format_path, parse_path

BUILTIN_PACKAGE = "anonymizer.policies"
_SIBLING = re.compile(r"^[^.*\[\]]+$")


class FieldRule(BaseModel):
    """What happens to one field: an operator with its parameters, or a nested decode.

    Written as an operator name (``keep``), a mapping (``{op: pseudonymize, identity: username}``),
    a decode (``{decode: json, fields: {...}}``) for strings that hold JSON or a query string, or
    a list of cases, rules with ``when``: the first whose condition holds applies (the last may
    leave out ``when``: it applies otherwise), and with none the field is dropped.
    """

    model_config = ConfigDict(extra="allow")

    op: str | None = None
    decode: Literal["json", "query"] | None = None
    fields: dict[str, FieldRule] | None = None
    # Apply this rule only when each named sibling field equals one of the listed values;
    # otherwise the field is dropped (counted as `condition_not_met`).
    when: dict[str, list[str | int | float | bool | None]] | None = None
    # Written as a list: one rule per case, each with its own `when`.
    cases: list[FieldRule] | None = None
    _params: BaseModel | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"op": data}
        if isinstance(data, list):
            return {"cases": data}
        if data is None:
            raise ValueError("a rule is required here: an operator name such as 'keep' or 'drop', or a mapping with 'op'")
        return data

    @field_validator("when")
    @classmethod
    def _siblings(cls, value: dict | None) -> dict | None:
        if value is not None:
            if not value:
                raise ValueError("'when' needs at least one sibling field and its values")
            for key in value:
                if not _SIBLING.match(key):
                    raise ValueError(f"'when' names sibling fields by plain name; {shown(key)} is not one")
        return value

    @model_validator(mode="after")
    def _check(self) -> FieldRule:
        extra = dict(self.model_extra or {})
        if self.cases is not None:
            return self._check_cases(extra)
        if self.decode is not None:
            if self.op is not None or extra:
                raise ValueError("a 'decode' rule takes only 'fields' (the rules for the decoded value)")
            if not self.fields:
                raise ValueError("a 'decode' rule needs 'fields': without them everything decoded would be dropped")
            _check_paths(self.fields)
            return self
        if self.fields is not None:
            raise ValueError("'fields' belongs to a 'decode' rule")
        if self.op is None:
            raise ValueError(f"missing 'op': expected one of {sorted(REGISTRY)}")
        operator = REGISTRY.get(self.op)
        if operator is None:
            raise ValueError(f"unknown operator {shown(self.op)}: expected one of {sorted(REGISTRY)}")
        try:
            self._params = operator.Params.model_validate(extra)
        except ValidationError as exc:
            problems = "; ".join(_describe(err) for err in exc.errors())
            raise ValueError(f"operator {self.op!r}: {problems}") from None
        return self

    def _check_cases(self, extra: dict) -> FieldRule:
        if self.op is not None or self.decode is not None or self.when is not None or extra:
            raise ValueError("a list of cases takes nothing beside it: each case is a rule with its own 'when'")
        if not self.cases:
            raise ValueError("a list of cases needs at least one rule")
        for number, case in enumerate(self.cases):
            if case.cases is not None or case.decode is not None:
                raise ValueError(f"case {number}: a case is an operator rule, not a list or a decode")
            if case.when is None and number != len(self.cases) - 1:
                raise ValueError(f"case {number}: only the last case may leave out 'when' (it applies when no other does)")
        return self

    @property
    def params(self) -> BaseModel | None:
        return self._params


def _check_paths(rules: dict[str, FieldRule]) -> dict[str, FieldRule]:
    """Every path parses, and no two name the same field (``a.*`` and ``a[*]`` are one field)."""
    seen: dict[tuple, str] = {}
    for path in rules:
        tokens = parse_path(path)
        if tokens in seen:
            raise ValueError(f"the field {format_path(tokens)!r} is ruled twice (as {seen[tokens]!r} and {path!r})")
        seen[tokens] = path
    return rules


class RosterRules(BaseModel):
    """How the people of a roster (``--roster``) are found in free text. Used only with a roster."""

    model_config = ConfigDict(extra="forbid")
    # A name part (or a username) is matched on its own only with this many letters or digits.
    name_min_length: int = Field(3, ge=1, le=20)
    # Leave out words too common to identify anyone (the shipped list), and add the policy's own.
    default_common_words: bool = True
    common_words: list[str] = []
    # Digit runs this long that equal a roster user id become [USER_ID]; 0 turns this off.
    user_id_min_digits: int = Field(5, ge=0, le=20)
    # `identifying`: usernames that pass the name rule are matched anywhere, others only as
    # @mentions; `all`: every username anywhere.
    usernames: Literal["identifying", "all"] = "identifying"


class IdentityRule(BaseModel):
    """How one kind of identifier is pseudonymized."""

    model_config = ConfigDict(extra="forbid")
    format: Literal["text", "number"] = "text"
    prefix: str = ""
    # `insensitive`: the pseudonym is derived from the value lower-cased with Python's
    # `str.lower()` (full Unicode lower-casing), so `Zelda_Q` and `zelda_q` are one person.
    # Default: insensitive for `username` (edX usernames are unique regardless of case),
    # sensitive for every other identity.
    case: Literal["sensitive", "insensitive"] | None = None


class EventRule(BaseModel):
    """The rule for the payload of the event types it matches."""

    model_config = ConfigDict(extra="forbid")

    match: list[str] = Field(min_length=1)
    source: list[str] | None = None
    # xAPI policies: the object's definition type (``object.definition.type``), where a verb is
    # shared by several kinds of object. Dispatched as ``source`` is for tracking logs.
    object_type: list[str] | None = None
    action: Literal["anonymize", "drop", "envelope"] = "anonymize"
    payload: FieldRule | None = None
    fields: dict[str, FieldRule] = {}
    envelope: dict[str, FieldRule] = {}
    description: str = ""

    @field_validator("match", "source", "object_type", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_key(self) -> EventRule:
        if self.object_type is not None and self.source is not None:
            raise ValueError("'source' (tracking logs) and 'object_type' (xAPI) cannot both key one rule")
        return self

    @property
    def keyed_by(self) -> list[str] | None:
        """What the rule's second key is matched against: ``source`` or ``object_type``."""
        return self.source if self.source is not None else self.object_type

    @field_validator("fields", "envelope")
    @classmethod
    def _paths(cls, value: dict[str, FieldRule]) -> dict[str, FieldRule]:
        return _check_paths(value)

    @field_validator("envelope")
    @classmethod
    def _no_payload_in_envelope(cls, value: dict[str, FieldRule]) -> dict[str, FieldRule]:
        return _envelope_paths(value)


def _envelope_paths(rules: dict[str, FieldRule]) -> dict[str, FieldRule]:
    for path in rules:
        if parse_path(path)[0] == "event":
            raise ValueError("the 'event' payload is ruled by 'events', not by 'envelope'")
    return rules


EVENTS_FORMATS = ("tracking-log", "xapi")

DEFAULT_IDENTITIES = {"username": IdentityRule(format="text", prefix="u_"), "user_id": IdentityRule(format="number")}


class Policy(BaseModel):
    """A validated policy. Build one with ``load_policy``."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    format_version: Literal[1] = 1
    # What the policy's events are: tracking-log events, or xAPI statements (then `envelope` names
    # statement paths common to every verb, and each rule's `fields` the statement paths of its verbs).
    events_format: Literal["tracking-log", "xapi"] = "tracking-log"
    extends: str | None = None
    replace_operators: dict[str, str] = {}
    identities: dict[str, IdentityRule] = {}
    envelope: dict[str, FieldRule]
    events: list[EventRule] = []
    unknown_events: Literal["drop", "envelope"] = "drop"
    roster: RosterRules = RosterRules()

    _source: str = PrivateAttr(default="")
    _sha256: str = PrivateAttr(default="")

    @field_validator("envelope")
    @classmethod
    def _paths(cls, value: dict[str, FieldRule]) -> dict[str, FieldRule]:
        return _envelope_paths(_check_paths(value))

    @model_validator(mode="after")
    def _identities(self) -> Policy:
        merged = dict(DEFAULT_IDENTITIES)
        merged.update(self.identities)
        for name, rule in merged.items():
            if rule.case is None:
                merged[name] = rule.model_copy(update={"case": "insensitive" if name == "username" else "sensitive"})
        self.identities = merged
        for index, event_rule in enumerate(self.events):
            if self.events_format == "xapi" and event_rule.source is not None:
                raise ValueError(f"events[{index}]: an xAPI policy keys rules by verb and 'object_type', not 'source'")
            if self.events_format == "tracking-log" and event_rule.object_type is not None:
                raise ValueError(f"events[{index}]: 'object_type' keys rules of xAPI policies only (events_format: xapi)")
            if self.events_format == "xapi" and (event_rule.envelope or event_rule.payload is not None):
                raise ValueError(f"events[{index}]: an xAPI rule names statement paths under 'fields' (no 'envelope' or 'payload')")
        for loc, rule in _all_rules(self):
            if rule.op == "pseudonymize" and rule.params.identity not in merged:
                raise ValueError(
                    f"{_format_loc(loc)}: 'pseudonymize' names the identity {shown(rule.params.identity)}, which "
                    f"'identities' does not define (defined: {sorted(merged)})"
                )
        return self

    @property
    def source(self) -> str:
        """Where the policy came from: a built-in name or a file path."""
        return self._source

    @property
    def sha256(self) -> str:
        """The sha256 of the policy file's bytes."""
        return self._sha256


def _all_rules(policy: Policy):
    """(location, rule) for every rule of POLICY, the fields of decode rules included."""

    def walk(rules: dict[str, FieldRule], where: tuple):
        for path, rule in rules.items():
            yield from one(rule, where + (path,))

    def one(rule: FieldRule, where: tuple):
        yield where, rule
        for number, case in enumerate(rule.cases or ()):
            yield from one(case, where + (number,))
        if rule.fields:
            yield from walk(rule.fields, where + ("fields",))

    yield from walk(policy.envelope, ("envelope",))
    for index, event_rule in enumerate(policy.events):
        yield from walk(event_rule.fields, ("events", index, "fields"))
        yield from walk(event_rule.envelope, ("events", index, "envelope"))
        if event_rule.payload is not None:
            yield from one(event_rule.payload, ("events", index, "payload"))


def _describe(error: dict) -> str:
    loc = _format_loc(error.get("loc", ()))
    message = error.get("msg", "invalid")
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    return f"{loc}: {message}" if loc else message


def _format_loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and (set(part) & set(".*[] ") or part == ""):
            out += f"[{part!r}]"
        else:
            out += ("." if out else "") + str(part)
    return out


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate keys, which would otherwise silently override a rule."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # keys merged in from an anchor (<<: *shared) may be overridden
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain name, not a list or mapping", key_node.start_mark
            ) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {seen[key] + 1})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line
    loader.flatten_mapping(node)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def builtin_policies() -> list[str]:
    """Names of the policies shipped with the package."""
    # Table policies (``tables-*.yaml``) are of another kind: ``anonymizer.tables.policy`` reads them.
    return sorted(
        p.name[:-5] for p in resources.files(BUILTIN_PACKAGE).iterdir() if p.name.endswith(".yaml") and not p.name.startswith("tables-")
    )


def _read_yaml(text: bytes, source: str) -> dict:
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise PolicyError(f"{source}:{where}: {problem}") from None
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: a policy is a YAML mapping with at least 'name' and 'envelope'")
    return data


def _replace_operators(data: dict, replacements: dict[str, str]) -> None:
    """Swap operators throughout a raw policy: ``scrub_text: drop`` turns every text rule into a drop."""

    def swap(rule: Any) -> Any:
        if isinstance(rule, str):
            return replacements.get(rule, rule)
        if isinstance(rule, list):  # cases keep their conditions: each swaps its operator
            return [swap_case(case) for case in rule]
        if isinstance(rule, dict):
            if isinstance(rule.get("op"), str) and rule["op"] in replacements:
                return {"op": replacements[rule["op"]]}
            if isinstance(rule.get("fields"), dict):
                return {**rule, "fields": {path: swap(r) for path, r in rule["fields"].items()}}
        return rule

    def swap_case(rule: Any) -> Any:
        swapped = swap(rule)
        if isinstance(rule, dict) and "when" in rule and isinstance(swapped, dict):
            return {**swapped, "when": rule["when"]}
        return swapped

    for section in ("envelope",):
        if isinstance(data.get(section), dict):
            data[section] = {path: swap(rule) for path, rule in data[section].items()}
    for event_rule in data.get("events") or []:
        if not isinstance(event_rule, dict):
            continue
        for section in ("fields", "envelope"):
            if isinstance(event_rule.get(section), dict):
                event_rule[section] = {path: swap(rule) for path, rule in event_rule[section].items()}
        if "payload" in event_rule:
            event_rule["payload"] = swap(event_rule["payload"])


def _resolve_base(name: str, source: str) -> tuple[bytes, str]:
    if name in builtin_policies():
        return resources.files(BUILTIN_PACKAGE).joinpath(f"{name}.yaml").read_bytes(), name
    candidate = Path(name)
    if not candidate.is_absolute() and Path(source).is_file():
        candidate = Path(source).parent / candidate
    if not candidate.is_file():
        raise PolicyError(f"{source}: extends: {name!r} is neither a built-in policy nor a regular file")
    try:
        return _read_policy_file(candidate), str(candidate)
    except OSError:
        raise PolicyError(f"{source}: extends: {name!r} is neither a built-in policy nor a readable file") from None


# A policy is a page or two of YAML; a bigger file is a wrong path, not a policy.
MAX_POLICY_BYTES = 4 << 20


def _read_policy_file(path: Path) -> bytes:
    """A policy file's bytes, refusing one larger than MAX_POLICY_BYTES (checked while reading,
    so a file that grows or never ends cannot make a run read forever)."""
    with path.open("rb") as handle:
        text = handle.read(MAX_POLICY_BYTES + 1)
    if len(text) > MAX_POLICY_BYTES:
        raise PolicyError(f"{path}: larger than {MAX_POLICY_BYTES >> 20} MiB; is this a policy file?")
    return text


def _where(source: str) -> str:
    """The file a policy source names, for cycle detection: a resolved path, or a built-in name."""
    path = Path(source)
    return str(path.resolve()) if path.is_file() else source


_MERGED_SECTIONS = {"envelope": dict, "identities": dict, "replace_operators": dict, "events": list}


def _check_sections(data: dict, source: str) -> None:
    for section, kind in _MERGED_SECTIONS.items():
        if data.get(section) is not None and not isinstance(data[section], kind):
            expected = "a mapping" if kind is dict else "a list"
            raise PolicyError(f"{source}: {section}: expected {expected}")


def _effective(text: bytes, source: str, seen: tuple[str, ...] = ()) -> tuple[dict, str]:
    """The raw policy with its base merged in, and the chained sha256 of every file involved."""
    data = _read_yaml(text, source)
    digest = hashlib.sha256(text).hexdigest()
    base_name = data.get("extends")
    if base_name is None:
        return data, digest
    if not isinstance(base_name, str):
        raise PolicyError(f"{source}: extends: expected the name or path of another policy")
    if len(seen) >= 8:
        raise PolicyError(f"{source}: extends: more than 8 policies deep")
    _check_sections(data, source)
    base_text, base_source = _resolve_base(base_name, source)
    here = _where(source)
    if _where(base_source) in seen + (here,):
        raise PolicyError(f"{source}: extends: {base_name!r} leads back to itself")
    base, base_digest = _effective(base_text, base_source, seen + (here,))
    _check_sections(base, base_source)
    merged = dict(base)
    merged.update({k: v for k, v in data.items() if k not in ("envelope", "events", "identities", "replace_operators")})
    merged["identities"] = {**(base.get("identities") or {}), **(data.get("identities") or {})}
    merged["envelope"] = {**(base.get("envelope") or {}), **(data.get("envelope") or {})}
    # The extending policy's event rules come first, so at equal specificity they win.
    merged["events"] = list(data.get("events") or []) + list(base.get("events") or [])
    replacements = {**(base.get("replace_operators") or {}), **(data.get("replace_operators") or {})}
    merged["replace_operators"] = replacements
    chained = hashlib.sha256(f"{digest}:{base_digest}".encode()).hexdigest()
    return merged, chained


def parse_policy(text: bytes, source: str) -> Policy:
    """Validate policy TEXT (merging the policy it ``extends``); SOURCE names it in errors."""
    data, digest = _effective(text, source)
    replacements = data.get("replace_operators") or {}
    if isinstance(replacements, dict) and replacements:
        ops = list(replacements) + list(replacements.values())
        unknown = sorted((op for op in ops if not (isinstance(op, str) and op in REGISTRY)), key=str)
        if unknown:
            unknown_text = ", ".join(shown(op) for op in unknown)
            raise PolicyError(f"{source}: replace_operators: unknown operator(s) {unknown_text}; expected some of {sorted(REGISTRY)}")
        _replace_operators(data, replacements)
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        problems = "\n  ".join(_describe(err) for err in exc.errors())
        raise PolicyError(f"{source}: invalid policy:\n  {problems}") from None
    policy._source = source
    policy._sha256 = digest
    return policy


def load_policy(name_or_path: str | Path = "research") -> Policy:
    """Load a policy file, or a built-in policy by name (``research``, ``strict``)."""
    path = Path(name_or_path)
    if path.is_file():
        try:
            text = _read_policy_file(path)
        except OSError as exc:
            raise PolicyError(f"{path}: cannot read the policy ({exc.strerror})") from None
        return parse_policy(text, str(path))
    name = str(name_or_path)
    if name in builtin_policies():
        return parse_policy(resources.files(BUILTIN_PACKAGE).joinpath(f"{name}.yaml").read_bytes(), name)
    raise PolicyError(
        f"{name}: no such policy file, and not a built-in policy (built-in: {', '.join(builtin_policies())})"
    )
