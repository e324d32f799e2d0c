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
    source: str


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
    engine: str | None = None,
) -> dict:
    """The manifest as a JSON-ready dict. ROSTER, when the run had one, is its summary (file
    names, number of people, keyed fingerprint): never the people."""
    created = created or datetime.now(timezone.utc)
    rejections = [{"file": f, "line": n, "reason": r} for f, n, r in stats.rejections]
    manifest = {
        "format_version": FORMAT_VERSION,
        "tool": {"name": "anonymizer", "version": __version__},
        "created": created.isoformat(timespec="seconds"),
        "policy": {"name": policy_name, "source": policy_source, "sha256": policy_sha256},
        "key_id": key_id,
        "pseudonym_version": PSEUDONYM_VERSION,
        "inputs": [vars(entry) for entry in inputs],
        "files": [vars(entry) for entry in files],
        "counts": stats.as_dict(),
        "rejections": rejections,
        "rejections_not_listed": stats.rejections_not_listed,
    }
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
