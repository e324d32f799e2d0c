"""The operator contract and registry.

An operator has two halves: ``Params`` (a pydantic model, validated once when the policy
loads) and ``build(params, ctx)``, which returns the small function the hot loop calls as
``fn(value, state)``. That function returns the new value, or ``DROP`` to remove the field.
Adding an operator means adding one module that calls ``register``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, ClassVar

from pydantic import BaseModel, ConfigDict

from ..pseudonyms import Pseudonymizer


class _Drop:
    __slots__ = ()

    def __repr__(self) -> str:
        return "DROP"


DROP: Any = _Drop()
"""Returned by an operator function to remove the field from the output."""


class EventState:
    """Per-event scratch space shared by the operator functions of one event."""

    __slots__ = ("dropped", "_raw_actors", "_actors")

    def __init__(self, *raw_usernames: object, actors: tuple[str, ...] | None = None) -> None:
        self.dropped: list[tuple[str, str]] = []  # (field path, reason) of fields removed by default or as unusable
        self._raw_actors = raw_usernames  # as read before the envelope was rewritten
        self._actors = actors

    @property
    def actors(self) -> tuple[str, ...]:
        """The usernames the event itself names (``username``, ``context.username``), cleaned on
        first use: only free-text operators need them."""
        if self._actors is None:
            found: list[str] = []
            for raw in self._raw_actors:
                if type(raw) is str and raw.strip() and raw.strip() not in found:
                    found.append(raw.strip())
            self._actors = tuple(found)
        return self._actors


OperatorFn = Callable[[Any, EventState], Any]


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Identity:
    """How one kind of identifier is pseudonymized: its HMAC namespace and output shape.

    With a roster, the ``username`` identity is *linked*: the username of a person listed in a
    roster file becomes ``prefix`` + that person's ``user_id`` pseudonym, so the two can be joined
    without the key. ``fold``: the pseudonym is derived from ``value.lower()`` (usernames are
    unique regardless of case).
    """

    name: str
    format: str  # "text" or "number"
    prefix: str = ""
    fold: bool = False
    roster: Any = field(default=None, compare=False, repr=False)
    person_identity: Identity | None = None  # the identity a linked pseudonym derives from


@dataclass
class BuildContext:
    """What an operator may use when it builds its function."""

    pseudonymizer: Pseudonymizer
    identities: dict[str, Identity]
    roster: Any = None  # a ``Roster`` when the run has one
    roster_rules: Any = None  # the policy's ``roster`` section: how its people are found in text
    geoip: Any = None  # a country database (``anonymizer.core.ipmask.GeoIP``) when the run has one
    # Per ``suppression.group_key``: the values an operator with ``min_group_size`` may write (see
    # ``anonymizer.core.suppression``); None when the run counted nothing.
    groups: dict[str, frozenset[str]] | None = None

    def __post_init__(self) -> None:
        username, user_id = self.identities.get("username"), self.identities.get("user_id")
        if self.roster is not None and username is not None and user_id is not None and username.format == "text":
            self.identities = {**self.identities, "username": replace(username, roster=self.roster, person_identity=user_id)}
            # An xAPI actor's external id: the pseudonym of the person's username (see ``pseudonymize``).
            external = self.identities.get("external_id")
            if external is not None and external.format == "text":
                linked = replace(external, roster=self.roster, person_identity=self.identities["username"])
                self.identities = {**self.identities, "external_id": linked}

    def identity(self, name: str) -> Identity:
        return self.identities[name]


class Operator:
    """Base class: subclasses set ``name`` and ``Params`` and implement ``build``."""

    name: ClassVar[str]
    Params: ClassVar[type[BaseModel]] = NoParams
    # Leaf operators see scalars only: the compiler maps them over lists and dicts and passes
    # None and "" through untouched. Whole-value operators (keep, drop, redact) see the value as is.
    leaf: ClassVar[bool] = True
    # A pure operator's result depends on the value alone (not on the event), so the compiler may
    # memoize it per string or integer value; operators that read the EventState set this to False.
    pure: ClassVar[bool] = True
    # Shared data the built function reads, by name in the plan's ``data`` (see ``anonymizer.core.lowering``).
    data: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def carries(cls, params: BaseModel) -> str | None:
        """The kind of identifier a field ruled by this operator holds (a pseudonym namespace,
        ``ip``, ``agent``), or None: the plan lists such fields for the learned roster and verify."""
        return None

    @classmethod
    def build(cls, params: BaseModel, ctx: BuildContext) -> OperatorFn:
        raise NotImplementedError



REGISTRY: dict[str, type[Operator]] = {}


def register(cls: type[Operator]) -> type[Operator]:
    """Class decorator: make an operator available to policies under its ``name``."""
    if cls.name in REGISTRY:
        raise RuntimeError(f"operator {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls
    return cls
