"""The flat columns of a Parquet package (``run --format parquet``): what each column holds, and
the row an anonymized event or xAPI statement gives.

Tracking logs follow edx2bigquery's tracking-log table: the envelope's fields as columns, ``time``
as a UTC timestamp, ``event`` (the payload) and ``context`` as JSON text, and the course and user
of ``context`` copied into columns of their own. xAPI statements follow Open edX Aspects'
``xapi_events_all_parsed``: a few columns parsed out of the statement, and the whole statement.

Nothing the policy writes out is lost: a field that has a column of its own but a value of another
kind (a number where text was expected, a time that is not ISO 8601) is left out of its column and
kept in ``extra``, with every envelope field that has no column. Pure Python: pyarrow is needed
only to write and read the files (``anonymizer.io.parquet``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

import orjson

TRACKING_LOG = "tracking-log"
XAPI = "xapi"
EVENTS_FORMATS = (TRACKING_LOG, XAPI)
SCHEMA_VERSION = 1

STRING, TIMESTAMP, JSON = "string", "timestamp", "json"  # JSON: a string column holding JSON text


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # STRING, TIMESTAMP (UTC, microseconds) or JSON
    source: str  # where the value comes from, in the codebook's words


_ENVELOPE_STRINGS = ("event_type", "event_source", "name", "username", "session", "ip", "agent", "host", "page", "referer", "accept_language")

TRACKING_COLUMNS = (
    Column("time", TIMESTAMP, "`time`, as a UTC timestamp (microseconds); null when absent; a time that is not ISO 8601 is in `extra`"),
    Column("event_type", STRING, "`event_type`"),
    Column("event_source", STRING, "`event_source` (server, browser, mobile)"),
    Column("name", STRING, "`name` (the event's name, on newer events)"),
    Column("username", STRING, "`username`"),
    Column("user_id", STRING, "`context.user_id`, as text: a number is written in decimal, a string as it is"),
    Column("course_id", STRING, "`context.course_id`"),
    Column("org_id", STRING, "`context.org_id`"),
    Column("session", STRING, "`session`"),
    Column("ip", STRING, "`ip`"),
    Column("agent", STRING, "`agent`"),
    Column("host", STRING, "`host`"),
    Column("page", STRING, "`page`"),
    Column("referer", STRING, "`referer`"),
    Column("accept_language", STRING, "`accept_language`"),
    Column("event", JSON, "`event`, the payload: JSON text (a payload the log holds as a string is that string)"),
    Column("context", JSON, "`context`, the whole object as JSON text"),
    Column(
        "extra", JSON,
        "every other envelope field the policy keeps, and any field above whose value is not of its column's kind, as a "
        "JSON object; null when there is none",
    ),
)

XAPI_COLUMNS = (
    Column("event_id", STRING, "`id`, the statement's id"),
    Column("emission_time", TIMESTAMP, "`timestamp`, as a UTC timestamp (microseconds); null when absent or not ISO 8601"),
    Column("verb_id", STRING, "`verb.id`"),
    Column("actor_id", STRING, "`actor.account.name`, else `actor.mbox`, else `actor.mbox_sha1sum` (the first not empty)"),
    Column("object_id", STRING, "`object.id`"),
    Column("object_type", STRING, "`object.definition.type` (the activity type)"),
    Column(
        "course_id", STRING,
        "the course key (`course-v1:…`) in the id of the first parent activity when that is a course, of the first grouping "
        "activity when the parent is another activity, else of `object.id` (a block key gives its course); null when there is none",
    ),
    Column("org", STRING, "the organization of `course_id`"),
    Column("response", STRING, "`result.response` (a value that is not text: as JSON text)"),
    Column("statement", JSON, "the whole statement as JSON text"),
)

COLUMNS = {TRACKING_LOG: TRACKING_COLUMNS, XAPI: XAPI_COLUMNS}


def dumps(value: Any) -> str:
    """VALUE as compact JSON text; numbers beyond 64 bits, which orjson refuses, by the standard library."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def loads(line: bytes) -> Any:
    """One output line as a value (the standard library reads the numbers orjson refuses)."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line)


def utc_time(value: Any) -> datetime | None:
    """VALUE (an ISO 8601 time) as an aware UTC datetime; None when it is not one. A time without
    an offset is read as UTC, as the tracking logs write it."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    try:
        return parsed.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        return None


def _user_id(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) else None


def tracking_row(event: Any) -> dict[str, Any]:
    """The columns of one anonymized tracking-log event (a dict, as the output line holds it)."""
    if not isinstance(event, dict):  # the engine writes objects; anything else is kept whole
        return {"extra": dumps({"value": event})}
    row: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in event.items():
        if key == "time":
            row["time"] = utc_time(value)
            if row["time"] is None and value is not None:
                extra[key] = value
        elif key in _ENVELOPE_STRINGS:
            if isinstance(value, str):
                row[key] = value
            elif value is not None:
                extra[key] = value
        elif key == "event":
            row["event"] = value if isinstance(value, str) else dumps(value)
        elif key == "context":
            row["context"] = dumps(value)
            if isinstance(value, dict):
                for name in ("course_id", "org_id"):
                    if isinstance(value.get(name), str):
                        row[name] = value[name]
                row["user_id"] = _user_id(value.get("user_id"))
        else:
            extra[key] = value
    if extra:
        row["extra"] = dumps(extra)
    return row


_COPIES = ("user_id", "course_id", "org_id")  # copies of context's fields, not fields of their own


def tracking_event(row: dict[str, Any]) -> dict[str, Any]:
    """The event a tracking-log row stands for, as far as a row gives it back: its columns (the
    copies of ``context``'s fields left out, the time in UTC ISO 8601), ``context`` decoded,
    ``extra`` merged in; ``event`` decoded when it is JSON (a payload held as a string of JSON
    comes back decoded). For readers of a package such as ``anonymizer risk``."""
    event: dict[str, Any] = {}
    for column in TRACKING_COLUMNS:
        value = row.get(column.name)
        if value is None or column.name in _COPIES or column.name == "extra":
            continue
        if column.kind == TIMESTAMP:
            value = value.isoformat() if isinstance(value, datetime) else value
        elif column.kind == JSON:
            try:
                value = loads(value.encode())
            except ValueError:
                pass  # a payload held as text that is not JSON
        event[column.name] = value
    if row.get("extra"):
        event.update(loads(row["extra"].encode()))
    return event


_COURSE_KEY = re.compile(r"(?:course|ccx)-v1:[^/?#\s]+")
_BLOCK_KEY = re.compile(r"block-v1:([^+/?#\s]+\+[^+/?#\s]+\+[^+/?#\s]+)\+type@")
_COURSE_TYPE = "http://adlnet.gov/expapi/activities/course"


def _get(value: Any, *path: str | int) -> Any:
    for step in path:
        if isinstance(step, int):
            value = value[step] if isinstance(value, list) and len(value) > step else None
        else:
            value = value.get(step) if isinstance(value, dict) else None
    return value


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _course_key(statement: dict) -> str | None:
    """As Aspects reads it: the first parent activity's id when it is a course; the first grouping
    activity's id when the parent is another activity (a question of a problem); else the object's
    id. The course key in it, or the course of a block key (``block-v1:Org+Num+Run+type@…``)."""
    parent = _get(statement, "context", "contextActivities", "parent", 0)
    source = None
    if _get(parent, "definition", "type") == _COURSE_TYPE:
        source = _text(_get(parent, "id"))
    elif _get(parent, "objectType") in ("Activity", "GroupActivity"):
        source = _text(_get(statement, "context", "contextActivities", "grouping", 0, "id"))
    source = source or _text(_get(statement, "object", "id"))
    if not source:
        return None
    found = _COURSE_KEY.search(source)
    if found:
        return found.group()
    block = _BLOCK_KEY.search(source)
    return f"course-v1:{block.group(1)}" if block else None


def _org(course_key: str | None) -> str | None:
    if course_key is None:
        return None
    org = course_key.split(":", 1)[1].split("+", 1)[0]
    return org or None


def xapi_row(statement: Any) -> dict[str, Any]:
    """The columns of one anonymized xAPI statement."""
    if not isinstance(statement, dict):
        return {"statement": dumps(statement)}
    actor = next(
        (value for value in (_get(statement, "actor", "account", "name"), _get(statement, "actor", "mbox"), _get(statement, "actor", "mbox_sha1sum")) if isinstance(value, str) and value),
        None,
    )
    response = _get(statement, "result", "response")
    course = _course_key(statement)
    return {
        "event_id": _text(statement.get("id")),
        "emission_time": utc_time(statement.get("timestamp")),
        "verb_id": _text(_get(statement, "verb", "id")),
        "actor_id": actor,
        "object_id": _text(_get(statement, "object", "id")),
        "object_type": _text(_get(statement, "object", "definition", "type")),
        "course_id": course,
        "org": _org(course),
        "response": response if isinstance(response, str) or response is None else dumps(response),
        "statement": dumps(statement),
    }


ROWS: dict[str, Callable[[Any], dict[str, Any]]] = {TRACKING_LOG: tracking_row, XAPI: xapi_row}


def events_format(policy: Any) -> str:
    """Whether POLICY anonymizes tracking logs or xAPI statements (``tracking-log`` unless it says)."""
    found = getattr(policy, "events_format", TRACKING_LOG)
    return found if found in EVENTS_FORMATS else TRACKING_LOG


def describe(events: str) -> list[dict]:
    """The columns of a package of EVENTS (``tracking-log`` or ``xapi``), for the codebook."""
    kinds = {STRING: "string", TIMESTAMP: "timestamp (UTC, microseconds)", JSON: "string (JSON text)"}
    return [{"name": c.name, "type": kinds[c.kind], "from": c.source} for c in COLUMNS[events]]
