"""The table policy: table -> column -> rule, validated once, with errors that point into the file.

A table policy names, for each table of the platform's exports, what happens to each column,
with the same rules and operators as the event policies (``anonymizer.core.policy.FieldRule``):
an operator name, a mapping with ``op``, or ``{decode: json, fields: {...}}`` for a column that
holds JSON. A column the policy does not name is dropped and counted; a table it does not name is
not copied out at all. ``identities`` says how pseudonyms are made, as in an event policy: keep
them equal to the event policy's (``username``, ``user_id``) so that tables and events join.
See ``policies/tables-research.yaml``.
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from ..core.errors import PolicyError, shown
from ..core.policy import (
    BUILTIN_PACKAGE,
    DEFAULT_IDENTITIES,
    FieldRule,
    IdentityRule,
    RosterRules,
    _describe,
    _read_policy_file,
    _read_yaml,
)

TABLE_POLICY_PREFIX = "tables-"
DEFAULT_TABLE_POLICY = "tables-research"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def _plain_names(names, what: str) -> None:
    for name in names:
        if not _NAME.match(name):
            raise ValueError(f"{what} {shown(name)} is not a plain name (letters, digits and '_', not starting with a digit)")


class TableRule(BaseModel):
    """What happens to one table: a rule per column; LAYOUT, the column order of its headerless exports."""

    model_config = ConfigDict(extra="forbid")

    description: str = ""
    # Other names the table's files may carry (a Django table name beside the short one).
    aliases: list[str] = []
    # The columns, in order, of exports without a header row (TSV or \x01-separated).
    layout: list[str] | None = None
    columns: dict[str, FieldRule] = Field(min_length=1)

    @field_validator("columns")
    @classmethod
    def _columns(cls, value: dict[str, FieldRule]) -> dict[str, FieldRule]:
        _plain_names(value, "column")
        for column, rule in value.items():
            if rule.when:
                raise ValueError(f"column {column!r}: 'when' is not supported for table columns")
        return value

    @field_validator("layout")
    @classmethod
    def _layout(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            _plain_names(value, "layout column")
            if len(set(value)) != len(value):
                raise ValueError("a column is named twice in 'layout'")
        return value

    @field_validator("aliases")
    @classmethod
    def _aliases(cls, value: list[str]) -> list[str]:
        _plain_names(value, "alias")
        return value


class TablePolicy(BaseModel):
    """A validated table policy. Build one with ``load_table_policy``."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    format_version: Literal[1] = 1
    identities: dict[str, IdentityRule] = {}
    roster: RosterRules = RosterRules()
    tables: dict[str, TableRule] = Field(min_length=1)

    _source: str = PrivateAttr(default="")
    _sha256: str = PrivateAttr(default="")

    @model_validator(mode="after")
    def _check(self) -> TablePolicy:
        _plain_names(self.tables, "table")
        merged = dict(DEFAULT_IDENTITIES)
        merged.update(self.identities)
        for name, rule in merged.items():
            if rule.case is None:
                merged[name] = rule.model_copy(update={"case": "insensitive" if name == "username" else "sensitive"})
        self.identities = merged
        owners: dict[str, str] = {}
        for table, rule in self.tables.items():
            for name in (table, *rule.aliases):
                if name in owners:
                    raise ValueError(f"tables.{table}: the name {name!r} also names the table {owners[name]!r}")
                owners[name] = table
            for column, where, field_rule in _rules(rule.columns):
                if field_rule.op == "pseudonymize" and field_rule.params.identity not in merged:
                    raise ValueError(
                        f"tables.{table}.columns.{column}{where}: 'pseudonymize' names the identity "
                        f"{shown(field_rule.params.identity)}, which 'identities' does not define (defined: {sorted(merged)})"
                    )
        return self

    @property
    def source(self) -> str:
        return self._source

    @property
    def sha256(self) -> str:
        return self._sha256

    def table_for(self, name: str) -> str | None:
        """The table a name (a table name or one of its aliases) stands for, or None."""
        for table, rule in self.tables.items():
            if name == table or name in rule.aliases:
                return table
        return None

    def names(self) -> list[str]:
        """Every table name and alias."""
        return [name for table, rule in self.tables.items() for name in (table, *rule.aliases)]


def _rules(columns: dict[str, FieldRule]):
    """(column, where inside it, rule) for every rule of COLUMNS, decoded fields and cases included."""

    def one(column: str, where: str, rule: FieldRule):
        yield column, where, rule
        for number, case in enumerate(rule.cases or ()):
            yield from one(column, f"{where}[{number}]", case)
        for path, inner in (rule.fields or {}).items():
            yield from one(column, f"{where}.fields[{path!r}]", inner)

    for column, rule in columns.items():
        yield from one(column, "", rule)


def builtin_table_policies() -> list[str]:
    """Names of the table policies shipped with the package."""
    return sorted(
        p.name[:-5] for p in resources.files(BUILTIN_PACKAGE).iterdir() if p.name.endswith(".yaml") and p.name.startswith(TABLE_POLICY_PREFIX)
    )


def parse_table_policy(text: bytes, source: str) -> TablePolicy:
    """Validate table policy TEXT; SOURCE names it in errors."""
    data = _read_yaml(text, source)
    if "envelope" in data or "events" in data:
        raise PolicyError(f"{source}: an event policy, not a table policy (a table policy has 'tables'); give it to 'run'")
    try:
        policy = TablePolicy.model_validate(data)
    except ValidationError as exc:
        problems = "\n  ".join(_describe(err) for err in exc.errors())
        raise PolicyError(f"{source}: invalid table policy:\n  {problems}") from None
    policy._source = source
    policy._sha256 = hashlib.sha256(text).hexdigest()
    return policy


def load_table_policy(name_or_path: str | Path = DEFAULT_TABLE_POLICY) -> TablePolicy:
    """Load a table policy file, or a built-in one by name (``tables-research``)."""
    path = Path(name_or_path)
    if path.is_file():
        try:
            text = _read_policy_file(path)
        except OSError as exc:
            raise PolicyError(f"{path}: cannot read the table policy ({exc.strerror})") from None
        return parse_table_policy(text, str(path))
    name = str(name_or_path)
    if name in builtin_table_policies():
        return parse_table_policy(resources.files(BUILTIN_PACKAGE).joinpath(f"{name}.yaml").read_bytes(), name)
    raise PolicyError(f"{name}: no such table policy file, and not a built-in one (built-in: {', '.join(builtin_table_policies())})")
