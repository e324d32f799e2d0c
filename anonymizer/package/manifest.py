"""The manifest: what a package holds, what it was made from, under which policy and key id,
and what happened to every input line. Written last, atomically, so that a package without one
is visibly incomplete."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import orjson

from ..version import __version__
from ..core.pseudonyms import PSEUDONYM_VERSION
from ..core.stats import Stats

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1


@dataclass
class FileEntry:
    path: str
    sha256: str
    bytes: int
    events: int
    source: str | None  # the input file it was made from (layout ``input``); None in the course-day layout
    course: str | None = None  # layout ``course-day``: the course key of its events (None: no course)
    day: str | None = None  # layout ``course-day``: the UTC day of its events (None: no readable time)
    placed: bool = False  # made by the course-day layout: ``course`` and ``day`` are listed

    def as_dict(self) -> dict:
        """The entry as the manifest lists it: ``course`` and ``day`` only in the course-day layout."""
        entry = {"path": self.path, "sha256": self.sha256, "bytes": self.bytes, "events": self.events}
        if self.placed:
            entry["course"], entry["day"] = self.course, self.day
        else:
            entry["source"] = self.source
        return entry


@dataclass
class InputEntry:
    path: str
    sha256: str
    bytes: int
    lines: int
    rejected: int = 0


def build_manifest(
    *,
    files: list[FileEntry],
    inputs: list[InputEntry],
    stats: Stats,
    policy_name: str,
    policy_source: str,
    policy_sha256: str,
    key_id: str,
    created: datetime | None = None,
    roster: dict | None = None,
    warnings: list[str] | None = None,
    layout: str = "input",
    selection: dict | None = None,
    scope: str | None = None,
    pseudonyms: str | None = None,
    engine: str | None = None,
) -> dict:
    """The manifest as a JSON-ready dict. ROSTER, when the run had one, is its summary (file
    names, number of people, keyed fingerprint): never the people. LAYOUT is ``input`` or
    ``course-day``; SELECTION, when the run had one, its options (``Selection.describe``). SCOPE
    is the run's scope label (KEY_ID is then the id of the key derived for it; the master key's id
    is left out, since one id common to every scope would link the packages it is meant to keep
    apart). PSEUDONYMS is ``global`` or ``per-course``."""
    created = created or datetime.now(timezone.utc)
    rejections = [{"file": f, "line": n, "reason": r} for f, n, r in stats.rejections]
    manifest = {
        "format_version": FORMAT_VERSION,
        "tool": {"name": "anonymizer", "version": __version__},
        "created": created.isoformat(timespec="seconds"),
        "policy": {"name": policy_name, "source": policy_source, "sha256": policy_sha256},
        "key_id": key_id,
        "pseudonym_version": PSEUDONYM_VERSION,
        **({"scope": scope} if scope is not None else {}),
        **({"pseudonyms": pseudonyms} if pseudonyms is not None else {}),
        "inputs": [vars(entry) for entry in inputs],
        "layout": layout,
        "files": [entry.as_dict() for entry in files],
        "counts": stats.as_dict(),
        "courses": stats.courses(),
        "rejections": rejections,
        "rejections_not_listed": stats.rejections_not_listed,
    }
    if selection is not None:
        manifest["selection"] = selection
    if engine is not None:
        manifest["engine"] = engine  # `native` or `python`: which engine made the files (same bytes either way)
    if roster is not None:
        manifest["roster"] = roster
    if warnings:
        manifest["warnings"] = list(warnings)
    return manifest


def write_json_atomically(path: Path, data: dict) -> None:
    """Write DATA to PATH through a temporary file and a rename."""
    temporary = path.with_name(f".{path.name}.partial")
    try:
        with open(temporary, "wb") as fh:
            fh.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)  # a full disk leaves no half-written file behind
        raise


def read_manifest(directory: Path) -> dict:
    return orjson.loads((Path(directory) / MANIFEST_NAME).read_bytes())
