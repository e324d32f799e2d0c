"""A run: every input file through the anonymizer into a package directory with a manifest."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from isal import igzip

from .engine import WRITTEN, Anonymizer
from .errors import UsageError
from .keys import Key
from .manifest import MANIFEST_NAME, FileEntry, InputEntry, build_manifest, read_manifest, write_json_atomically
from .policy import Policy
from .reader import collect_inputs, open_lines, output_name
from .stats import Stats

PARTIAL_DIR = ".partial"
GZIP_LEVEL = 2  # isal's default: several times faster than zlib's 6, for a few percent more bytes
WRITE_BATCH = 4096


class _HashingWriter:
    """A file object that hashes and counts what passes through it."""

    def __init__(self, raw) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def write(self, data) -> int:
        self.sha256.update(data)
        self.bytes += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


@dataclass
class RunResult:
    out_dir: Path
    manifest: dict
    stats: Stats


def _prepare_out_dir(out_dir: Path, force: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{out_dir}: exists and is not a directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = [p for p in out_dir.iterdir()]
    if not entries:
        return
    if not force:
        raise UsageError(f"{out_dir}: not empty; choose an empty directory or pass --force to replace a previous package")
    manifest_path = out_dir / MANIFEST_NAME
    if not manifest_path.exists():
        raise UsageError(f"{out_dir}: not empty and holds no {MANIFEST_NAME}; --force only replaces a previous package")
    try:
        listed = [entry["path"] for entry in read_manifest(out_dir).get("files", [])]
    except Exception:
        raise UsageError(f"{out_dir}: its {MANIFEST_NAME} cannot be read; remove the directory by hand") from None
    # The manifest goes first, so that an interrupted replacement never looks complete.
    manifest_path.unlink()
    for extra in ("manifest.sig",):
        (out_dir / extra).unlink(missing_ok=True)
    for relative in listed:
        target = (out_dir / relative).resolve()
        if out_dir.resolve() in target.parents:
            target.unlink(missing_ok=True)
    shutil.rmtree(out_dir / PARTIAL_DIR, ignore_errors=True)


def anonymize_file(anonymizer: Anonymizer, source: Path, name: str, destination: Path) -> FileEntry:
    """Anonymize SOURCE into the gzip file DESTINATION; count into ``anonymizer.stats``."""
    written_events = 0
    with open(destination, "wb") as raw:
        hashing = _HashingWriter(raw)
        with igzip.IGzipFile(filename="", mode="wb", compresslevel=GZIP_LEVEL, fileobj=hashing, mtime=0) as gz:
            batch: list[bytes] = []
            line_number = 0
            anonymize_line = anonymizer.anonymize_line
            for line_number, line in enumerate(open_lines(source), start=1):
                outcome, result = anonymize_line(line, name, line_number)
                if outcome is WRITTEN:
                    batch.append(result)
                    if len(batch) >= WRITE_BATCH:
                        gz.write(b"".join(batch))
                        written_events += len(batch)
                        batch.clear()
            if batch:
                gz.write(b"".join(batch))
                written_events += len(batch)
        raw.flush()
        os.fsync(raw.fileno())
    return FileEntry(path=output_name(name), sha256=hashing.sha256.hexdigest(), bytes=hashing.bytes, events=written_events, source=name)


def _describe_input(path: Path, name: str, lines: int) -> InputEntry:
    with open(path, "rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    return InputEntry(path=name, sha256=digest, bytes=path.stat().st_size, lines=lines)


def run(
    inputs: list[Path],
    out_dir: Path,
    policy: Policy,
    key: Key,
    *,
    force: bool = False,
    on_file_done: Callable[[str, Stats], None] | None = None,
) -> RunResult:
    """Anonymize INPUTS into OUT_DIR under POLICY and KEY, and write the manifest last."""
    out_dir = Path(out_dir)
    sources = collect_inputs(inputs)
    _prepare_out_dir(out_dir, force)
    partial = out_dir / PARTIAL_DIR
    partial.mkdir(exist_ok=True)
    anonymizer = Anonymizer(policy, key)
    total = Stats()
    files: list[FileEntry] = []
    described: list[InputEntry] = []
    for source, name in sources:
        temporary = partial / f"{len(files):06d}.gz"
        entry = anonymize_file(anonymizer, source, name, temporary)
        stats = anonymizer.take_stats()
        final = out_dir / entry.path
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temporary, final)
        files.append(entry)
        described.append(_describe_input(source, name, stats.read))
        total.merge(stats)
        if on_file_done is not None:
            on_file_done(name, stats)
    shutil.rmtree(partial, ignore_errors=True)
    if not total.accounted():
        raise AssertionError("line accounting does not add up; the package is incomplete")
    manifest = build_manifest(
        files=files,
        inputs=described,
        stats=total,
        policy_name=policy.name,
        policy_source=policy.source,
        policy_sha256=policy.sha256,
        key_id=key.key_id,
    )
    write_json_atomically(out_dir / MANIFEST_NAME, manifest)
    return RunResult(out_dir=out_dir, manifest=manifest, stats=total)
