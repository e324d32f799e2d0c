"""Counting what happened to every line, by outcome, reason, event type and field path.

No value from the logs is ever counted by itself. In the manifest an event type is named only
when a policy rule names it exactly; one that a glob matched is counted under that glob
(``edx.forum.*``, ``/*``), and every other under ``<other>``, since any client may send any event
type. Field paths use ``*`` for data-like keys. (``inspect`` and ``policy check``, which report to
the data steward and never into a package, use ``event_type_label``.)
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from collections import Counter
from dataclasses import dataclass, field

_PLAIN_EVENT_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_.:\-]{0,99}$")
_HEXISH = re.compile(r"[0-9a-f]{16,}")
MAX_REJECTIONS_LISTED = 1000
# Distinct dropped-field paths counted per event type; the rest are counted under OTHER_PATHS, so
# that events with thousands of distinct keys cannot grow the counts (and the manifest) without end.
MAX_FIELD_PATHS = 1000
OTHER_PATHS = "<other paths>"


def event_type_label(event_type: object) -> str:
    """How an event type is named in counts: as itself when it is a plain name, else a group."""
    if not isinstance(event_type, str):
        return "<missing>"
    if event_type.startswith("/"):
        return "<url>"
    if _PLAIN_EVENT_TYPE.match(event_type) and not _HEXISH.search(event_type):
        return event_type
    return "<other>"


UNNAMED = "<other>"


def policy_label(event_type: str, match: list[str] | None) -> str:
    """How the manifest counts EVENT_TYPE, matched by a rule with the patterns MATCH (None: no rule):
    as itself when a pattern names it exactly, as the glob that matched it, else ``<other>``."""
    if not match:
        return UNNAMED
    if event_type in match and not event_type.startswith("/") and not any(ch in event_type for ch in "*?["):
        return event_type
    for pattern in match:
        if any(ch in pattern for ch in "*?[") and fnmatchcase(event_type, pattern):
            return pattern
    return UNNAMED


class RejectionList(list):
    """The first LIMIT rejected lines as (file, line, reason); ``not_listed`` counts the rest, so
    that a file of garbage cannot grow a report without end. Without LIMIT, the manifest's
    ``MAX_REJECTIONS_LISTED`` applies (read when used)."""

    def __init__(self, listed=(), not_listed: int = 0, limit: int | None = None) -> None:
        super().__init__(listed)
        self.not_listed = not_listed
        self.limit = limit

    def _room(self) -> int:
        return (self.limit if self.limit is not None else MAX_REJECTIONS_LISTED) - len(self)

    def add(self, file: str, line: int, reason: str) -> None:
        if self._room() > 0:
            self.append((file, line, reason))
        else:
            self.not_listed += 1

    def merge(self, other: RejectionList) -> None:
        room = max(0, self._room())
        self.extend(other[:room])
        self.not_listed += other.not_listed + max(0, len(other) - room)


@dataclass
class Stats:
    """Counters for one run, or one part of a run; ``merge`` adds another's."""

    read: int = 0
    written: int = 0
    dropped: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)
    event_types: dict[str, Counter] = field(default_factory=dict)
    fields: dict[tuple[str, str, str], int] = field(default_factory=Counter)
    rejections: RejectionList = field(default_factory=RejectionList)
    _paths: dict[str, int] = field(default_factory=dict, repr=False, compare=False)  # distinct paths per event type

    def event(self, label: str, outcome: str) -> None:
        counter = self.event_types.get(label)
        if counter is None:
            counter = self.event_types[label] = Counter()
        counter[outcome] += 1

    @property
    def rejections_not_listed(self) -> int:
        return self.rejections.not_listed

    def reject(self, file: str, line: int, reason: str) -> None:
        self.rejected[reason] += 1
        self.rejections.add(file, line, reason)

    def merge(self, other: Stats) -> None:
        self.read += other.read
        self.written += other.written
        self.dropped.update(other.dropped)
        self.rejected.update(other.rejected)
        for label, counter in other.event_types.items():
            self.event_types.setdefault(label, Counter()).update(counter)
        fields = self.fields
        for key, count in other.fields.items():
            if key not in fields:
                label = key[0]
                paths = self._paths.get(label, 0)
                if paths >= MAX_FIELD_PATHS:
                    key = (label, OTHER_PATHS, key[2])
                    if key not in fields:
                        fields[key] = 0
                else:
                    self._paths[label] = paths + 1
            fields[key] += count
        self.rejections.merge(other.rejections)

    def accounted(self) -> bool:
        """Every line read was written, dropped or rejected."""
        return self.read == self.written + sum(self.dropped.values()) + sum(self.rejected.values())

    def as_dict(self) -> dict:
        """The manifest's ``counts`` section."""
        fields: dict[str, dict[str, dict[str, int]]] = {}
        for (label, path, reason), count in sorted(self.fields.items()):
            fields.setdefault(label, {}).setdefault(path, {})[reason] = count
        return {
            "read": self.read,
            "written": self.written,
            "dropped": dict(sorted(self.dropped.items())),
            "rejected": dict(sorted(self.rejected.items())),
            "event_types": {label: dict(sorted(c.items())) for label, c in sorted(self.event_types.items())},
            "dropped_fields": fields,
        }
