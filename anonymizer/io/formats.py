"""What the inputs of a run hold: tracking-log events or xAPI statements.

``--input-format auto`` (the default) reads each file's first line that parses as a JSON object
(among its first ``DETECT_LINES`` lines): a statement (an object with ``actor``, ``verb`` and
``object``), or a ClickHouse ``xapi_events_all`` row holding one, makes the file xAPI; any other
object makes it a tracking log. A file with no such line says nothing. The files that say
something must agree; the run's format is theirs, else the policy's. ``tracking-log`` or ``xapi``
reads every input as that format. Either way the policy must be written for the format
(``events_format``), and a line of the other format is rejected, never copied.
"""

from __future__ import annotations

from pathlib import Path

from ..core.errors import InputError, UsageError
from ..core.lines import parse_line
from ..core.xapi import holds_statement
from .inputs import collect_inputs, open_lines

INPUT_FORMATS = ("auto", "tracking-log", "xapi")
TRACKING_LOG, XAPI = "tracking-log", "xapi"
DETECT_LINES = 1000
# The built-in policy a run uses, by format, when none is given.
DEFAULT_POLICIES = {TRACKING_LOG: "research", XAPI: "xapi-research"}


def detect(path: Path) -> str | None:
    """The format of the file at PATH (plain or gzip) by its first line that parses as a JSON
    object, or None when none of its first DETECT_LINES lines does (or it cannot be read: the
    run itself then stops with an error that names it)."""
    try:
        for number, line in enumerate(open_lines(path)):
            if number >= DETECT_LINES:
                return None
            parsed = parse_line(line)
            if type(parsed) is dict:
                return XAPI if holds_statement(parsed) else TRACKING_LOG
    except InputError:
        return None
    return None


def check_format(input_format: str) -> None:
    if input_format not in INPUT_FORMATS:
        raise UsageError(f"--input-format {input_format}: expected one of {', '.join(INPUT_FORMATS)}")


def inputs_format(sources: list[tuple[Path, str]], input_format: str = "auto") -> str | None:
    """The format of a run's inputs (SOURCES: (path, name) pairs): INPUT_FORMAT when it is given,
    else the one their files agree on (None when no file says); a ``UsageError`` when they disagree."""
    check_format(input_format)
    if input_format != "auto":
        return input_format
    found: dict[str, str] = {}
    for path, name in sources:
        kind = detect(path)
        if kind is not None:
            found.setdefault(kind, name)
    if len(found) > 1:
        raise UsageError(
            f"the inputs hold both tracking logs ({found[TRACKING_LOG]}) and xAPI statements ({found[XAPI]}); "
            "anonymize them in two runs (with the same key and roster, a learner keeps one pseudonym), "
            "or pass --input-format to read every input as one format"
        )
    return next(iter(found), None)


def default_policy(inputs: list[Path], input_format: str = "auto") -> str:
    """The built-in policy for INPUTS when the run names none: ``research``, or ``xapi-research``
    when they hold xAPI statements."""
    return DEFAULT_POLICIES[inputs_format(collect_inputs(list(inputs)), input_format) or TRACKING_LOG]


def check_policy_format(sources: list[tuple[Path, str]], input_format: str, policy) -> str:
    """The run's format; a ``UsageError`` when POLICY is written for another format than the inputs'."""
    found = inputs_format(sources, input_format)
    wanted = policy.events_format
    if found is not None and found != wanted:
        what = "xAPI statements" if found == XAPI else "tracking logs"
        raise UsageError(
            f"the inputs hold {what}, but policy {policy.name} is written for {'xAPI statements' if wanted == XAPI else 'tracking logs'} "
            f"(events_format: {wanted}); use --policy {DEFAULT_POLICIES[found]} or a policy with events_format: {found}"
        )
    return wanted
