"""The course-day layout of a package (``run --layout course-day``), as the edX research data
exchange delivered it::

    {org}-{course}-{run}/events/{org}-{course}-{run}-events-{YYYY-MM-DD}.log.gz
    _no_course/events/_no_course-events-{YYYY-MM-DD}.log.gz      events that name no course
    {dir}/events/{dir}-events-_no_date.log.gz                    events with no readable UTC day

With ``run --format parquet`` the files end in ``.parquet`` instead of ``.log.gz``.

A course's directory is its key's three parts joined by ``-`` (``course-v1:MITx+6.002x+2024_T1``
and ``MITx/6.002x/2024_T1`` both give ``MITx-6.002x-2024_T1``; a CCX key adds ``-ccx_N``). Course
keys are made of letters, digits and ``_ . - ~`` (``anonymizer.core.routing``), all safe in a file
name; any other character becomes ``_``, and a leading ``.`` becomes ``_`` (no hidden
directories). When two course keys of one package give the same name, each of them gets ``-`` and
the first 8 hex digits of the sha256 of its key appended: the names depend on the set of courses
alone, never on the order they were met in.
"""

from __future__ import annotations

import hashlib
import re
from typing import Iterable

NO_COURSE = "_no_course"
NO_DATE = "_no_date"
LAYOUTS = ("input", "course-day")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.~-]", re.ASCII)
_LAYOUT_FILE = re.compile(r"([^/]+)/events/\1-events-(\d{4}-\d{2}-\d{2}|_no_date)(?:\.log\.gz|\.parquet)")
GZIP_SUFFIX = ".log.gz"


def _safe(part: str) -> str:
    part = _UNSAFE.sub("_", part) or "_"
    return "_" + part[1:] if part.startswith(".") else part


def course_dir(course: str | None) -> str:
    """The directory name of COURSE (a course key), before any clash with another is resolved."""
    if course is None:
        return NO_COURSE
    if ":" in course:  # course-v1:Org+Num+Run, ccx-v1:Org+Num+Run+ccx@N
        parts = course.split(":", 1)[1].split("+")
    else:  # Org/Num/Run
        parts = course.split("/")
    return "-".join(_safe(part) for part in parts)


def course_dirs(courses: Iterable[str | None]) -> dict[str | None, str]:
    """The directory name of every course of a package (None: no course), clashes resolved."""
    names: dict[str | None, str] = {course: course_dir(course) for course in set(courses)}
    taken: dict[str, int] = {}
    for name in names.values():
        taken[name] = taken.get(name, 0) + 1
    for course, name in names.items():
        if course is not None and taken[name] > 1:
            names[course] = f"{name}-{hashlib.sha256(course.encode()).hexdigest()[:8]}"
    return names


def file_path(directory: str, day: str | None, suffix: str = GZIP_SUFFIX) -> str:
    """The package path of the events of course directory DIRECTORY on DAY (None: no day); SUFFIX
    ``.parquet`` for a Parquet package."""
    return f"{directory}/events/{directory}-events-{day or NO_DATE}{suffix}"


def is_layout_file(relative: str) -> bool:
    """Whether RELATIVE (a POSIX path inside a package) is a file the course-day layout names."""
    return _LAYOUT_FILE.fullmatch(relative) is not None
