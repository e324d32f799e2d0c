"""xAPI statements: how a line holds one, what a policy keys it by, and where it belongs.

A line holds a statement in one of two ways: the statement itself (a JSON object with ``actor``,
``verb`` and ``object``: JSON lines, as event-routing-backends, Ralph and Vector write them), or a
row of a ClickHouse ``JSONEachRow`` export of ``xapi_events_all``, with the statement, as a JSON
string or an object, in its ``event`` column (``event_str`` in older schemas). Of a row only the
statement is read: its other columns (``event_id``, ``emission_time`` ...) are dropped.

A statement is keyed by its verb id and its object's definition type (the policy's ``match`` and
``object_type``). Its course is the course key in ``object.id``, else in the ids of its context
activities (``parent``, ``grouping``, ``category``, ``other``, in that order); its day is the UTC
day of ``timestamp``.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

import orjson

from .outcomes import RejectReason
from .routing import course_key, utc_date
from .strictjson import StrictJSONError
from .strictjson import loads as strict_loads

STATEMENT_KEYS = ("actor", "verb", "object")
ROW_COLUMNS = ("event", "event_str")  # the column of xapi_events_all that holds the statement
CONTEXT_ACTIVITIES = ("parent", "grouping", "category", "other")

_PART = r"[\w.\-~]+"
# A course key, or the course part of a block key, inside an activity id (a URL).
_KEY_IN_ID = re.compile(
    rf"(?P<course>(?:course|ccx)-v1:{_PART}\+{_PART}\+{_PART}(?:\+ccx@\d+)?)(?=[/?#]|\Z)"
    rf"|(?P<ccx>ccx-)?block-v1:(?P<org>{_PART})\+(?P<num>{_PART})\+(?P<run>{_PART}?)(?P<ccxid>\+ccx@\d+)?\+type@",
    re.ASCII,
)


def is_statement(value: object) -> bool:
    """Whether VALUE is a JSON object with ``actor``, ``verb`` and ``object``."""
    return type(value) is dict and "actor" in value and "verb" in value and "object" in value


def unwrap(parsed: dict) -> tuple[dict, tuple[str, ...]] | RejectReason:
    """The statement a parsed line holds, with the columns of its row that are dropped (none for
    a bare statement), or ``NOT_XAPI`` (a tracking-log event, a row without a statement),
    ``DUPLICATE_KEY`` or ``TOO_DEEP`` (a statement column that repeats a key or nests too deep)."""
    if is_statement(parsed):
        return parsed, ()
    if "event_type" in parsed:
        return RejectReason.NOT_XAPI
    for column in ROW_COLUMNS:
        value = parsed.get(column)
        if type(value) is str:
            try:
                value = strict_loads(value)
            except orjson.JSONDecodeError:
                return RejectReason.NOT_XAPI
            except StrictJSONError as exc:
                return RejectReason(exc.reason)
        if is_statement(value):
            return value, tuple(key for key in parsed if key != column)
    return RejectReason.NOT_XAPI


def holds_statement(parsed: object) -> bool:
    """Whether a parsed line holds a statement, bare or in a row (for telling input formats apart)."""
    return type(parsed) is dict and type(unwrap(parsed)) is tuple


def statement_key(statement: dict) -> tuple[str, str] | None:
    """(verb id, object definition type or "") as rules are keyed; None without a verb id."""
    verb = statement.get("verb")
    verb_id = verb.get("id") if type(verb) is dict else None
    if type(verb_id) is not str or not verb_id:
        return None
    thing = statement.get("object")
    definition = thing.get("definition") if type(thing) is dict else None
    kind = definition.get("type") if type(definition) is dict else None
    return verb_id, kind if type(kind) is str else ""


def course_in_id(activity_id: object) -> str | None:
    """The course key of an activity id: a course key in it, or the course of a block key."""
    if type(activity_id) is not str:
        return None
    if "%" in activity_id:
        activity_id = unquote(activity_id)
    match = _KEY_IN_ID.search(activity_id)
    if match is None:
        return None
    if match.group("course"):
        return course_key(match.group("course"))
    prefix = "ccx-v1:" if match.group("ccx") else "course-v1:"
    return course_key(f"{prefix}{match.group('org')}+{match.group('num')}+{match.group('run')}{match.group('ccxid') or ''}")


def course_of(statement: dict) -> str | None:
    """The course of STATEMENT: from ``object.id``, else from its context activities' ids."""
    thing = statement.get("object")
    found = course_in_id(thing.get("id")) if type(thing) is dict else None
    if found is not None:
        return found
    context = statement.get("context")
    activities = context.get("contextActivities") if type(context) is dict else None
    if type(activities) is not dict:
        return None
    for group in CONTEXT_ACTIVITIES:
        members = activities.get(group)
        if type(members) is dict:
            members = [members]
        if type(members) is not list:
            continue
        for member in members:
            found = course_in_id(member.get("id")) if type(member) is dict else None
            if found is not None:
                return found
    return None


def day_of(statement: dict) -> str | None:
    """The UTC day of STATEMENT's ``timestamp``."""
    return utc_date(statement.get("timestamp"))
