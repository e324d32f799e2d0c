"""What the core says about each line: typed outcomes, reasons and routing keys.

Reasons are string enums whose values are the words the manifest counts (``blank``,
``event_type_not_in_policy`` ...), so that a report, a test or another engine can compare them
with the manifest; in code they are compared as members. No outcome holds a value from the
logs, except ``Written.output``, which is the anonymized line itself, and the routing key, whose
course id has the shape of a course key (see ``anonymizer.core.routing``) and whose date is a date.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar, NamedTuple, Union

from .errors import AnonymizerError

if TYPE_CHECKING:  # for annotations only: stats imports nothing from here
    from .stats import Stats


class Outcome(StrEnum):
    """What happened to a line: every line read has exactly one."""

    WRITTEN = "written"
    DROPPED = "dropped"
    REJECTED = "rejected"
    NOT_SELECTED = "not_selected"  # the policy would write it, but the run's selection leaves it out


class DropReason(StrEnum):
    """Why a well-formed event was left out by the policy."""

    NOT_IN_POLICY = "event_type_not_in_policy"
    DROPPED_BY_RULE = "event_type_dropped_by_rule"


class RejectReason(StrEnum):
    """Why a line could not be read as an event (see README, Drop reasons)."""

    BLANK = "blank"
    INVALID_UTF8 = "invalid_utf8"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_EVENT_TYPE = "missing_event_type"
    DUPLICATE_KEY = "duplicate_key"
    TOO_DEEP = "too_deep"
    UTF16_BOM = "utf16_bom"
    UTF32_BOM = "utf32_bom"
    UTF16_OR_UTF32 = "utf16_or_utf32"
    NOT_XAPI = "not_an_xapi_statement"  # an xAPI run: a tracking-log event, or a row without a statement


@dataclass(frozen=True, slots=True)
class Route:
    """Where an event belongs: its event type as the manifest counts it (``label``), its course
    (``course_id``: a course key, or None when the event names none) and the UTC day of its
    ``time`` (``date``: ``YYYY-MM-DD``, or None when it has no readable time). Per-course
    packages and other drivers route written lines by it. Equal routes are one object."""

    label: str
    course_id: str | None
    date: str | None


@dataclass(frozen=True, slots=True)
class Written:
    """The line was anonymized: OUTPUT is the line to write (JSON and a newline)."""

    output: bytes
    route: Route
    outcome: ClassVar[Outcome] = Outcome.WRITTEN


@dataclass(frozen=True, slots=True)
class Dropped:
    """The policy leaves the event out, for REASON."""

    reason: DropReason
    route: Route
    outcome: ClassVar[Outcome] = Outcome.DROPPED


@dataclass(frozen=True, slots=True)
class Rejected:
    """The line is not an event the tool can read, for REASON. It has no route: nothing in it is trusted."""

    reason: RejectReason
    outcome: ClassVar[Outcome] = Outcome.REJECTED
    route: ClassVar[None] = None


@dataclass(frozen=True, slots=True)
class NotSelected:
    """The policy would write the event, but the run's selection (``anonymizer.core.selection``)
    leaves it out: counted apart from the policy's drops."""

    route: Route
    outcome: ClassVar[Outcome] = Outcome.NOT_SELECTED
    reason: ClassVar[str] = "not_selected"


LineOutcome = Union[Written, Dropped, Rejected, NotSelected]


class BatchResult:
    """What one batch came to: one outcome per line, in order (line ``first_line + i`` is
    ``lines[i]``), and the batch's counts, complete (nothing is left pending elsewhere).

    The outcomes are kept compactly and made into ``Written`` objects when ``lines`` is first
    read: a run, which only needs ``written()``, does not pay for an object per line."""

    __slots__ = ("first_line", "stats", "_results", "_lines")

    def __init__(self, first_line: int, results: list, stats: Stats) -> None:
        self.first_line = first_line
        self.stats = stats
        self._results = results  # per line: (output, route) when written, else its Dropped or Rejected
        self._lines: list[LineOutcome] | None = None

    @property
    def lines(self) -> list[LineOutcome]:
        if self._lines is None:
            self._lines = [Written(*result) if type(result) is tuple else result for result in self._results]
        return self._lines

    def written(self) -> list[bytes]:
        """The output lines, in order."""
        return [result[0] for result in self._results if type(result) is tuple]

    def routed(self) -> list[tuple[bytes, Route]]:
        """The output lines with their routing keys, in order (for layouts that place lines by route)."""
        return [result for result in self._results if type(result) is tuple]

    def __len__(self) -> int:
        return len(self._results)


class LineResult(NamedTuple):
    """One line's outcome as a pair: (``WRITTEN``, output line) or (``DROPPED``/``REJECTED``, reason),
    or (``NOT_SELECTED``, ``"not_selected"``)."""

    outcome: Outcome
    result: bytes | DropReason | RejectReason | str

    @classmethod
    def of(cls, line: LineOutcome) -> LineResult:
        return cls(line.outcome, line.output if line.outcome is Outcome.WRITTEN else line.reason)


class AccountingError(AnonymizerError):
    """Lines read do not add up to lines written, dropped, rejected and not selected: a bug, never
    the input's fault."""

    exit_code = 70
