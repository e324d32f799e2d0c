"""The journal of a run: which output files are finished, so that an interrupted run can resume.

``.journal.jsonl`` in the package directory holds one JSON object a line. The first says what the
run is made of: the tool version, the policy's sha256, the key id, the roster's keyed fingerprint
and the names of every input. Each further line records one finished output file: its input
(name, sha256, size, lines), the output (name, sha256, size, events) and the counts of its lines,
everything the manifest needs and nothing more (no value from the logs). A line is appended and
fsynced after its output file is in place, so a kill at any moment leaves either a complete entry
or a torn last line, which is ignored.

A rerun with the same inputs, policy, key and roster reuses every entry whose input still hashes
as recorded and whose output is still there with the recorded bytes, and redoes the rest. Since
the counts of each file are kept whole and merged in input order, the manifest comes out as an
uninterrupted run writes it. The journal is removed once the manifest is written.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import orjson

from ..version import __version__
from ..core.errors import UsageError
from ..package.codebook import CODEBOOK_FILES
from ..package.manifest import FileEntry, InputEntry
from .parquet import JSONL, data_file_name
from ..package.layout import is_layout_file
from ..core.stats import RejectionList, Stats

JOURNAL_NAME = ".journal.jsonl"
FORMAT_VERSION = 2  # 2: counts of lines not selected, days and places; the layout and selection in the header
# What a package directory may hold while a run is unfinished, besides the run's own outputs.
_WORK_FILES = (JOURNAL_NAME, JOURNAL_NAME + ".new", ".manifest.json.partial")
_PARTIAL_DIR = ".partial"


@dataclass
class Finished:
    """One finished output file, as the manifest will list it."""

    input: InputEntry
    output: FileEntry | None  # None in the course-day layout, whose files take lines from every input
    stats: Stats


def header(
    *, policy_sha256: str, key_id: str, roster: dict | None, inputs: list[str], learn: bool = True,
    layout: str = "input", selection: dict | None = None,
    scope: str | None = None, pseudonyms: str = "global", geoip: str | None = None, output_format: str = JSONL,
) -> dict:
    """The first line of a journal: what a run must share with another to resume it."""
    # Named only when set, so that a journal of a run without them reads the same as before.
    options = {
        "scope": scope, "pseudonyms": pseudonyms if pseudonyms != "global" else None, "geoip": geoip,
        "format": output_format if output_format != JSONL else None,
    }
    return {
        **{name: value for name, value in options.items() if value is not None},
        "journal": FORMAT_VERSION,
        "tool_version": __version__,
        "policy_sha256": policy_sha256,
        "key_id": key_id,
        "roster": roster,
        "learn": learn,
        "inputs": inputs,
        "layout": layout,
        "selection": selection,
    }


# ------------------------------------------------------------------------------------ counts


def stats_to_json(stats: Stats) -> dict:
    return {
        "read": stats.read,
        "written": stats.written,
        "not_selected": stats.not_selected,
        "dropped": dict(stats.dropped),
        "rejected": dict(stats.rejected),
        "event_types": {label: dict(counter) for label, counter in stats.event_types.items()},
        "fields": [[label, path, reason, count] for (label, path, reason), count in stats.fields.items()],
        "rejections": [list(entry) for entry in stats.rejections],
        "rejections_not_listed": stats.rejections_not_listed,
        "days": {label: list(span) for label, span in stats.days.items()},
        "places": [[course, day, count] for (course, day), count in stats.places.items()],
    }


def stats_from_json(data: dict) -> Stats:
    return Stats(
        read=data["read"],
        written=data["written"],
        not_selected=data["not_selected"],
        dropped=Counter(data["dropped"]),
        rejected=Counter(data["rejected"]),
        event_types={label: Counter(counts) for label, counts in data["event_types"].items()},
        fields=Counter({(label, path, reason): count for label, path, reason, count in data["fields"]}),
        rejections=RejectionList([(file, line, reason) for file, line, reason in data["rejections"]], data["rejections_not_listed"]),
        days={label: [first, last] for label, (first, last) in data["days"].items()},
        places=Counter({(course, day): count for course, day, count in data["places"]}),
    )


def _entry_to_json(entry: Finished) -> dict:
    return {"input": vars(entry.input), "output": vars(entry.output), "stats": stats_to_json(entry.stats)}


def _entry_from_json(data: dict) -> Finished:
    return Finished(InputEntry(**data["input"]), FileEntry(**data["output"]), stats_from_json(data["stats"]))


# ------------------------------------------------------------------------------------ reading


@dataclass
class Previous:
    """What an unfinished run left: its header and its finished files by input name."""

    header: dict
    finished: dict[str, Finished]


def read(out_dir: Path) -> Previous | None:
    """The journal in OUT_DIR, or None when there is none. A torn last line (a kill while it was
    being written) is ignored; anything else unreadable is an error."""
    path = Path(out_dir) / JOURNAL_NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the journal of the unfinished run ({exc.strerror}); pass --force to start again") from None
    lines = data.split(b"\n")
    if lines and not data.endswith(b"\n"):
        lines.pop()  # the last line was cut short: that file is redone
    try:
        first, *rest = [orjson.loads(line) for line in lines if line]
        if first.get("journal") != FORMAT_VERSION:
            raise ValueError("unknown journal format")
        finished = {}
        for item in rest:
            entry = _entry_from_json(item)
            finished[entry.input.path] = entry
    except (ValueError, TypeError, KeyError, AttributeError):
        raise UsageError(f"{path}: the journal of the unfinished run is damaged; pass --force to discard the run and start again") from None
    return Previous(first, finished)


def mismatch(previous: dict, current: dict) -> str | None:
    """Why a journal's run is not this run, in words that hold no value; None when it is."""
    checks = [
        ("tool_version", f"another version of the tool ({previous.get('tool_version')})"),
        ("scope", "another --scope" if previous.get("scope") and current.get("scope") else "--scope" if previous.get("scope") else "no --scope"),
        ("pseudonyms", f"--pseudonyms {previous.get('pseudonyms') or 'global'}"),
        ("geoip", "another --geoip database" if previous.get("geoip") and current.get("geoip") else "--geoip" if previous.get("geoip") else "no --geoip"),
        ("key_id", f"another key (key id {previous.get('key_id')})"),
        ("policy_sha256", "another policy (its sha256 differs)"),
        ("roster", "a roster" if not current.get("roster") else "another roster" if previous.get("roster") else "no roster"),
        ("learn", "a learned roster" if not current.get("learn") else "--no-learn"),
        ("inputs", "other input files"),
        ("layout", f"another layout (--layout {previous.get('layout')})"),
        ("format", f"another output format (--format {previous.get('format') or JSONL})"),
        ("selection", "another selection (--course, --org, --since, --until, --event-type or --exclude-staff)"),
    ]
    for field, why in checks:
        if previous.get(field) != current.get(field):
            return why
    return None


# ------------------------------------------------------------------------------------ resuming


def _sha256(path: Path) -> str | None:
    try:
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError:
        return None


def _still_valid(out_dir: Path, entry: Finished, source: Path) -> bool:
    """The input is unchanged and the output still holds the recorded bytes."""
    output = out_dir / entry.output.path
    try:
        if source.stat().st_size != entry.input.bytes or output.stat().st_size != entry.output.bytes:
            return False
    except OSError:
        return False
    return _sha256(source) == entry.input.sha256 and _sha256(output) == entry.output.sha256


def _strays(out_dir: Path, names: list[str], output_format: str = JSONL) -> list[str]:
    """Files in OUT_DIR that neither this run writes nor an unfinished run leaves behind."""
    # The codebook is written just before the manifest: an interruption between the two leaves it.
    expected = {data_file_name(name, output_format) for name in names} | set(_WORK_FILES) | set(CODEBOOK_FILES)
    strays = []
    for path in sorted(out_dir.rglob("*")):
        relative = path.relative_to(out_dir)
        if relative.parts[0] == _PARTIAL_DIR or path.is_dir():
            continue
        if relative.as_posix() not in expected:
            strays.append(relative.as_posix())
    return strays


def resume(out_dir: Path, previous: Previous, current: dict, sources: list[tuple[Path, str]]) -> dict[str, Finished]:
    """The finished files of PREVIOUS that this run (CURRENT header, SOURCES) can keep.

    Refuses, with a message that suggests ``--force``, a journal of another run and a directory
    holding files that are no part of either.
    """
    why = mismatch(previous.header, current)
    if why is not None:
        raise UsageError(
            f"{out_dir}: holds an unfinished run made with {why}. Rerun with what it was made from to "
            "resume it, or pass --force to discard it and start again"
        )
    if current.get("layout") == "course-day":
        # Each course-day file takes lines from every input: no file is finished before the last
        # input is, so there is nothing to keep. Refused rather than silently redone.
        raise UsageError(
            f"{out_dir}: holds an unfinished --layout course-day run, which cannot be resumed (each of its "
            "files takes events from every input); pass --force to discard it and start again"
        )
    strays = _strays(out_dir, [name for _, name in sources], current.get("format") or JSONL)
    if strays:
        more = f" and {len(strays) - 1} more" if len(strays) > 1 else ""
        raise UsageError(
            f"{out_dir}: holds an unfinished run and files that are no part of it ({strays[0]}{more}); "
            "remove them, or pass --force to discard the run and start again"
        )
    paths = dict((name, path) for path, name in sources)
    return {
        name: entry
        for name, entry in previous.finished.items()
        if name in paths and _still_valid(out_dir, entry, paths[name])
    }


def clear(out_dir: Path, previous: Previous) -> None:
    """Remove what an unfinished run wrote: the outputs of every input it was given (finished or
    not yet journaled), its work files, then the journal, last, so that a failure midway leaves a
    run that can still be cleared."""
    out_dir = Path(out_dir)
    root = out_dir.resolve()
    output_format = previous.header.get("format") or JSONL
    if not isinstance(output_format, str):
        output_format = JSONL
    outputs = {data_file_name(name, output_format) for name in previous.header.get("inputs", []) if isinstance(name, str)}
    outputs |= {entry.output.path for entry in previous.finished.values() if entry.output is not None}
    if previous.header.get("layout") == "course-day":  # files moved into place before the kill
        outputs |= {p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if is_layout_file(p.relative_to(out_dir).as_posix())}
    for relative in sorted(outputs):
        target = (out_dir / relative).resolve()
        if root in target.parents:
            target.unlink(missing_ok=True)
            _remove_empty_parents(target.parent, root)
    shutil.rmtree(out_dir / _PARTIAL_DIR, ignore_errors=True)
    for name in _WORK_FILES[::-1]:
        (out_dir / name).unlink(missing_ok=True)


def _remove_empty_parents(directory: Path, root: Path) -> None:
    while directory != root and root in directory.parents:
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent


# ------------------------------------------------------------------------------------ writing


class Journal:
    """The journal being written: started afresh (with the entries kept from a previous run),
    then one fsynced line per finished file."""

    def __init__(self, out_dir: Path, head: dict, kept: list[Finished] = ()) -> None:
        self.path = Path(out_dir) / JOURNAL_NAME
        temporary = self.path.with_name(_WORK_FILES[1])
        with open(temporary, "wb") as fh:
            fh.write(orjson.dumps(head) + b"\n")
            for entry in kept:
                fh.write(orjson.dumps(_entry_to_json(entry)) + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temporary, self.path)
        self._fh = open(self.path, "ab")

    def record(self, entry: Finished) -> None:
        self._fh.write(orjson.dumps(_entry_to_json(entry)) + b"\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)
