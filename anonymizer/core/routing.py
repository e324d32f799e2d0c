"""The routing key of an event: its course and the UTC day of its time.

The course is ``context.course_id``; an implicit event (its type is the URL path the platform
served) that carries none is placed by the course key in its path (``/courses/{course_id}/…``).
Only a value with the shape of a course key is taken (``course-v1:Org+Num+Run``, a CCX key, an
old ``Org/Num/Run`` id): a routing key may name a file, so anything else counts as no course.
The day is read from ``time`` (ISO 8601; a time without an offset is taken as UTC, as the
platform writes it).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from urllib.parse import unquote

_PART = r"[\w.\-~]+"
COURSE_KEY = re.compile(rf"(?:course|ccx)-v1:{_PART}\+{_PART}\+{_PART}(?:\+ccx@\d+)?\Z|{_PART}/{_PART}/{_PART}\Z", re.ASCII)
# /courses/ and then a new-style key (one segment) or an old Org/Num/Run id (three).
_COURSE_IN_PATH = re.compile(r"/courses/([^/]*:[^/]+|[^/:]+/[^/:]+/[^/:]+)(?:/|\Z)")
# The common case, read without building a datetime: a day, a time of day, and UTC or no offset.
DAY = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_UTC_TIME = re.compile(r"(\d{4}-\d{2}-\d{2})[T ][\d:.]*(?:Z|[+-]00:?00)?\Z", re.ASCII)


_SHAPED: dict[str, bool] = {}  # course ids recur in every event: each is checked once
_DAYS: dict[str, bool] = {}
_CACHE_LIMIT = 1 << 16


def _remember(cache: dict[str, bool], value: str, verdict: bool) -> bool:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[value] = verdict
    return verdict


def course_key(value: object) -> str | None:
    """VALUE when it has the shape of a course key, else None."""
    if type(value) is not str:
        return None
    shaped = _SHAPED.get(value)
    if shaped is None:
        shaped = _remember(_SHAPED, value, COURSE_KEY.match(value) is not None)
    return value if shaped else None


def course_in_path(path: object) -> str | None:
    """The course key in a URL path such as ``/courses/course-v1:Org+Num+Run/courseware``."""
    if type(path) is not str:
        return None
    if "%" in path:
        path = unquote(path)
    match = _COURSE_IN_PATH.match(path) or (_COURSE_IN_PATH.search(path) if "://" in path else None)
    return course_key(match.group(1)) if match is not None else None


def course_of(event: dict, event_type: str) -> str | None:
    """The course of EVENT (of EVENT_TYPE): ``context.course_id``, else, for an implicit event,
    the course key in its path."""
    context = event.get("context")
    if type(context) is dict:
        found = course_key(context.get("course_id"))
        if found is not None:
            return found
    return course_in_path(event_type) if is_implicit(event_type) else None


def is_implicit(event_type: str) -> bool:
    """Whether EVENT_TYPE is a URL or a URL path: an implicit event, named after the page served."""
    return event_type[:1] == "/" or event_type[:4] == "http"


def utc_date(value: object) -> str | None:
    """The UTC day (``YYYY-MM-DD``) of an ISO 8601 time, or None when it is not one."""
    if type(value) is not str:
        return None
    if value[10:11] == "T" and value.endswith("+00:00"):  # as the platform writes it
        day = value[:10]
        valid = _DAYS.get(day)
        if valid is None:
            valid = _remember(_DAYS, day, DAY.fullmatch(day) is not None)
        if valid:
            return day
    match = _UTC_TIME.match(value)
    if match is not None:
        return match.group(1)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.date().isoformat()
