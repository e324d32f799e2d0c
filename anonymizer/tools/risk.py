"""The quasi-identifier report (``anonymizer risk``): k-anonymity of a package, per course.

Pseudonyms do not make a learner anonymous when they are the only one in a course with a given
browser on a given network. This reads a package's events (the files its manifest lists), groups
them by pseudonymous learner, and gives each learner one value per quasi-identifier present:

- ``agent``: the generalized user agent (``context.agent``, else ``agent``);
- ``ip``: the truncated network (``context.ip``, else ``ip``);
- ``language``: the primary language (``accept_language``);
- ``enrollment_mode``: the mode of the learner's last enrollment event in the course;
- ``courses``: the set of courses the learner has events in, in this package;
- with a tables package (``--tables``, made with the same key): ``year_of_birth`` (its band),
  ``gender``, ``level_of_education`` and ``country`` from ``auth_userprofile``, joined to the
  events' learners by their pseudonyms.

A learner's value is the one most of their events carry (ties: the smallest), and a learner
without one has the value "none", which forms a group like any other. For every combination of the
quasi-identifiers present, learners of a course with equal values form a group; the report counts
the learners in groups smaller than k, and, for the combination of all of them, how many would be
left after each coarser choice (a shorter IP prefix, the agent's family only, a field dropped).

Counts only: never a value of a group, nor a pseudonym. Course keys are named, as the codebook
names them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any, Callable

import orjson

from ..core.errors import UsageError
from ..core.ipmask import make_ip_masker
from ..io.inputs import open_lines
from ..io.parquet import events as parquet_events
from ..package.manifest import MANIFEST_NAME
from ..tables.demographics import DEMOGRAPHICS, read_demographics

DEFAULT_K = 5
QUASI_IDENTIFIERS = ("agent", "ip", "language", "enrollment_mode", "courses", *DEMOGRAPHICS)
NONE = ""  # the value of a learner who has none: a group of its own
NO_COURSE = "<no course>"


def _first(event: dict, *paths: tuple[str, ...]) -> Any:
    for path in paths:
        value: Any = event
        for token in path:
            value = value.get(token) if type(value) is dict else None
        if type(value) is str and value.strip():
            return value
    return None


def _learner(event: dict) -> str | None:
    value = _first(event, ("username",), ("context", "username"))
    if value is not None:
        return "u:" + value
    user_id = event.get("context", {}).get("user_id") if type(event.get("context")) is dict else None
    return f"i:{user_id}" if type(user_id) in (int, str) and str(user_id).strip() else None


def _mode(counter: Counter) -> str:
    if not counter:
        return NONE
    top = max(counter.values())
    return min(value for value, count in counter.items() if count == top)


@dataclass
class _Learner:
    values: dict[str, Counter] = field(default_factory=lambda: {name: Counter() for name in ("agent", "ip", "language")})
    courses: set[str] = field(default_factory=set)
    modes: dict[str, str] = field(default_factory=dict)  # course -> enrollment mode, the last seen
    demographics: dict[str, str] = field(default_factory=dict)  # from a tables package


class _Reader:
    """The quasi-identifiers of every learner of a package."""

    def __init__(self) -> None:
        self.learners: dict[str, _Learner] = {}
        self.present: set[str] = set()
        self.events = 0

    def add(self, event: Any) -> None:
        if type(event) is not dict:
            return
        who = _learner(event)
        if who is None:
            return
        self.events += 1
        learner = self.learners.get(who)
        if learner is None:
            learner = self.learners[who] = _Learner()
        context = event.get("context") if type(event.get("context")) is dict else {}
        course = context.get("course_id") if type(context.get("course_id")) is str and context.get("course_id") else None
        if course is not None:
            learner.courses.add(course)
        for name, paths in (("agent", (("context", "agent"), ("agent",))), ("ip", (("context", "ip"), ("ip",))), ("language", (("accept_language",),))):
            value = _first(event, *paths)
            if value is not None:
                learner.values[name][value] += 1
                self.present.add(name)
        event_type = event.get("event_type")
        payload = event.get("event")
        if type(event_type) is str and event_type.startswith("edx.course.enrollment.") and type(payload) is dict:
            mode = payload.get("mode")
            where = payload.get("course_id") if type(payload.get("course_id")) is str else course
            if type(mode) is str and mode and where:
                learner.modes[where] = mode
                learner.courses.add(where)
                self.present.add("enrollment_mode")

    def read_package(self, directory: Path) -> list[str]:
        """Read every event file DIRECTORY's manifest lists; the files read."""
        try:
            manifest = orjson.loads((directory / MANIFEST_NAME).read_bytes())
        except (OSError, orjson.JSONDecodeError):
            raise UsageError(f"{directory}: holds no readable {MANIFEST_NAME}; not a package") from None
        files = [entry.get("path") for entry in manifest.get("files") or () if isinstance(entry, dict)]
        parquet = isinstance(manifest.get("format"), dict) and manifest["format"].get("files") == "parquet"
        for name in files:
            if parquet:  # run --format parquet: the events its rows give back
                for event in parquet_events(directory / name):
                    self.add(event)
                continue
            for line in open_lines(directory / name):
                try:
                    self.add(orjson.loads(line))
                except orjson.JSONDecodeError:
                    continue  # a package holds JSON lines only; verify reports anything else
        if any(len(learner.courses) > 0 for learner in self.learners.values()):
            self.present.add("courses")
        return files


# ---------------------------------------------------------------- coarser values


def _coarser_ip(ipv4_prefix: int, ipv6_prefix: int) -> Callable[[str], str]:
    mask = make_ip_masker(ipv4_prefix, ipv6_prefix)
    return lambda value: NONE if value == NONE else ", ".join(mask(part) or "?" for part in value.split(","))


def _agent_family(value: str) -> str:
    """``Chrome 45 / Mac OS X / desktop`` without the browser's version."""
    parts = value.split(" / ")
    browser = parts[0].rsplit(" ", 1)
    if len(browser) == 2 and browser[1].isdigit():
        parts[0] = browser[0]
    return " / ".join(parts)


def _agent_browser(value: str) -> str:
    """The browser family alone."""
    return _agent_family(value).split(" / ")[0]


def _decade(value: str) -> str:
    """A year band (``1985-1989``) widened to its decade (``1980-1989``)."""
    first, _, _ = value.partition("-")
    return f"{first[:3]}0-{first[:3]}9" if len(first) == 4 and first.isdigit() else value


COARSER: dict[str, list[tuple[str, Callable[[str], str]]]] = {
    "year_of_birth": [("year of birth in 10-year bands", _decade)],
    "ip": [("IP prefix /16 (IPv6 /32)", _coarser_ip(16, 32)), ("IP prefix /8 (IPv6 /24)", _coarser_ip(8, 24))],
    "agent": [("agent without the browser version", _agent_family), ("agent: browser family only", _agent_browser)],
}


# ---------------------------------------------------------------- the report


def _rows(reader: _Reader, names: tuple[str, ...]) -> dict[str, list[dict[str, str]]]:
    """Per course, one row of quasi-identifier values per learner of the course."""
    out: dict[str, list[dict[str, str]]] = {}
    for learner in reader.learners.values():
        common = {name: _mode(learner.values[name]) for name in ("agent", "ip", "language") if name in names}
        if "courses" in names:
            common["courses"] = "\x00".join(sorted(learner.courses))
        common.update((name, learner.demographics.get(name, NONE)) for name in DEMOGRAPHICS if name in names)
        for course in sorted(learner.courses) or [NO_COURSE]:
            row = dict(common)
            if "enrollment_mode" in names:
                row["enrollment_mode"] = learner.modes.get(course, NONE)
            out.setdefault(course, []).append(row)
    return out


def _below_k(rows: list[dict[str, str]], fields: tuple[str, ...], k: int, change: dict[str, Callable[[str], str]] | None = None) -> tuple[int, int]:
    """(groups smaller than K, learners in them) when ROWS are grouped by FIELDS (CHANGE: coarser values)."""
    change = change or {}
    sizes = Counter(tuple(change.get(name, lambda v: v)(row[name]) for name in fields) for row in rows)
    small = [size for size in sizes.values() if size < k]
    return len(small), sum(small)


def risk_report(directory: Path | str, k: int = DEFAULT_K, tables: Path | str | None = None) -> dict:
    """The k-anonymity report of the package in DIRECTORY, as a JSON-ready dict (counts only);
    TABLES: a tables package made with the same key, whose demographics are joined in."""
    if k < 2:
        raise UsageError(f"--k {k}: k-anonymity needs groups of at least 2")
    directory = Path(directory)
    if not directory.is_dir():
        raise UsageError(f"{directory}: no such package directory")
    reader = _Reader()
    files = reader.read_package(directory)
    if tables is not None:
        _add_demographics(reader, directory, Path(tables))
    names = tuple(name for name in QUASI_IDENTIFIERS if name in reader.present)
    courses = []
    for course, rows in sorted(_rows(reader, names).items()):
        combos = []
        for size in range(1, len(names) + 1):
            for fields in combinations(names, size):
                groups, learners = _below_k(rows, fields, k)
                combos.append({"fields": list(fields), "groups_below_k": groups, "learners_below_k": learners})
        entry = {"course": course, "learners": len(rows), "combinations": combos, "suggestions": []}
        if names:
            _, at_risk = _below_k(rows, names, k)
            entry["learners_below_k_all_fields"] = at_risk
            if at_risk:
                entry["suggestions"] = _suggestions(rows, names, k, at_risk)
                entry["greedy"] = _greedy(rows, names, k, at_risk)
        courses.append(entry)
    return {
        "format_version": 1,
        "package": str(directory),
        "k": k,
        "files_read": len(files),
        "events_with_a_learner": reader.events,
        "learners": len(reader.learners),
        "quasi_identifiers": list(names),
        "courses": courses,
    }


def _add_demographics(reader: _Reader, directory: Path, tables: Path) -> None:
    """Join the demographics of the tables package TABLES to the learners READER found."""
    found = read_demographics(tables)
    manifest = orjson.loads((directory / MANIFEST_NAME).read_bytes())
    if found.key_id != manifest.get("key_id"):
        raise UsageError(f"{tables}: made with another key (key id) than {directory}; its pseudonyms do not join")
    for who, learner in reader.learners.items():
        learner.demographics = found.of(who)
        reader.present.update(learner.demographics)


def _suggestions(rows: list[dict[str, str]], names: tuple[str, ...], k: int, at_risk: int) -> list[dict]:
    """Each coarser choice for the combination of all NAMES, with the learners still below K, best first."""
    found = []
    for name in names:
        for label, coarser in COARSER.get(name, ()):
            _, left = _below_k(rows, names, k, {name: coarser})
            found.append({"change": label, "learners_below_k": left})
        rest = tuple(other for other in names if other != name)
        _, left = _below_k(rows, rest, k) if rest else (0, 0)
        found.append({"change": f"drop {name}", "learners_below_k": left})
    found = [s for s in found if s["learners_below_k"] < at_risk]
    return sorted(found, key=lambda s: (s["learners_below_k"], s["change"]))


def _apply(rows: list[dict[str, str]], names: tuple[str, ...], k: int, steps: list[tuple[str, str, Any]]) -> int:
    """Learners below K after STEPS ((label, field, coarser function or None: dropped)), in order."""
    fields, change = list(names), {}
    for _, name, coarser in steps:
        if coarser is None:
            fields.remove(name)
            change.pop(name, None)
        else:
            change[name] = coarser
    return _below_k(rows, tuple(fields), k, change)[1]


def _greedy(rows: list[dict[str, str]], names: tuple[str, ...], k: int, at_risk: int) -> list[dict]:
    """Coarser choices taken one after another, each the one leaving the fewest learners below K
    (ties: a coarser value before a dropped field, then by name), never dropping the last field;
    then every step the result does not need is left out. The learners left after each step."""
    steps: list[tuple[str, str, Any]] = []
    fields, best = list(names), at_risk
    while best:
        options = []
        for name in fields:
            for label, coarser in COARSER.get(name, ()):
                if label not in [step[0] for step in steps]:
                    options.append((_apply(rows, names, k, steps + [(label, name, coarser)]), 0, label, name, coarser))
            if len(fields) > 1:
                options.append((_apply(rows, names, k, steps + [(f"drop {name}", name, None)]), 1, f"drop {name}", name, None))
        if not options:
            break
        best, _, label, name, coarser = min(options, key=lambda option: option[:3])
        steps.append((label, name, coarser))
        if coarser is None:
            fields.remove(name)
    fewest = min((_apply(rows, names, k, steps[: i + 1]) for i in range(len(steps))), default=at_risk)
    if fewest >= at_risk:
        return []  # nothing helps, short of dropping every field
    steps = steps[: next(i for i in range(len(steps)) if _apply(rows, names, k, steps[: i + 1]) == fewest) + 1]
    for step in list(steps):  # a step the result does not need goes (a drop makes a coarser value moot)
        without = [other for other in steps if other is not step]
        if _apply(rows, names, k, without) <= fewest:
            steps = without
    return [{"change": label, "learners_below_k": _apply(rows, names, k, steps[: i + 1])} for i, (label, _, _) in enumerate(steps)]


def format_report(report: dict) -> str:
    """The report as text for a terminal."""
    k = report["k"]
    lines = [
        f"{report['package']}: {report['learners']} learners, {report['events_with_a_learner']} events with a learner, "
        f"in {report['files_read']} file(s); k = {k}",
        "quasi-identifiers present: " + (", ".join(report["quasi_identifiers"]) or "none"),
    ]
    every = len(report["quasi_identifiers"])
    for course in report["courses"]:
        lines += ["", f"{course['course']}: {course['learners']} learners"]
        if course["learners"] < k:
            lines.append(f"  fewer learners than k: every group is smaller than {k}, whatever is generalized")
            continue
        shown = [c for c in course["combinations"] if len(c["fields"]) in (1, every)]
        for combo in shown:
            lines.append(
                f"  {' + '.join(combo['fields']):<48} {combo['learners_below_k']:>6} learner(s) in {combo['groups_below_k']} group(s) smaller than {k}"
            )
        more = sum(1 for c in course["combinations"] if c not in shown and c["learners_below_k"])
        if more:
            lines.append(f"  {more} other combination(s) leave learners below {k}: see --json")
        for suggestion in course["suggestions"][:5]:
            lines.append(f"  suggestion: {suggestion['change']}: {suggestion['learners_below_k']} learner(s) left below {k}")
        if course.get("greedy") and len(course["greedy"]) > 1:
            steps = ", then ".join(f"{step['change']} ({step['learners_below_k']} left)" for step in course["greedy"])
            lines.append(f"  one choice after another: {steps}")
    return "\n".join(lines) + "\n"


def at_risk(report: dict) -> int:
    """Learners below k on the combination of every quasi-identifier, summed over courses."""
    return sum(course.get("learners_below_k_all_fields", 0) for course in report["courses"])

