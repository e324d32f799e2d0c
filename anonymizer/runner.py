"""A run: every input file through the anonymizer into a package directory with a manifest."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import journal
from .engine import Anonymizer
from .errors import UsageError
from .keys import Key
from .manifest import MANIFEST_NAME, FileEntry, InputEntry, build_manifest, read_manifest, write_json_atomically
from .pipeline import Batch, OutputFile, batches, default_jobs, ordered_results
from .policy import Policy
from .pseudonyms import Pseudonymizer
from .reader import collect_inputs, output_name
from .roster import Roster
from .signing import SIGNATURE_NAME, Ed25519PrivateKey, sign_manifest
from .stats import Stats

PARTIAL_DIR = ".partial"


@dataclass
class RunResult:
    out_dir: Path
    manifest: dict
    stats: Stats
    resumed: int = 0  # files kept from an interrupted run with the same inputs, policy, key and roster


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
    (out_dir / SIGNATURE_NAME).unlink(missing_ok=True)
    for relative in listed:
        target = (out_dir / relative).resolve()
        if out_dir.resolve() in target.parents:
            target.unlink(missing_ok=True)
    shutil.rmtree(out_dir / PARTIAL_DIR, ignore_errors=True)


def _resume_or_prepare(out_dir: Path, force: bool, head: dict, sources: list[tuple[Path, str]]) -> dict[str, journal.Finished]:
    """The files an unfinished run in OUT_DIR finished and this run can keep (by input name);
    with FORCE, or without such a run, none, and the directory is made ready as before."""
    previous = journal.read(out_dir) if out_dir.is_dir() and not (out_dir / MANIFEST_NAME).exists() else None
    if previous is None:
        _prepare_out_dir(out_dir, force)
        return {}
    if not force:
        return journal.resume(out_dir, previous, head, sources)
    journal.clear(out_dir, previous)
    _prepare_out_dir(out_dir, force)
    return {}


@dataclass
class Progress:
    """Where a run is, for a progress display: no value from the logs, only counts."""

    lines: int
    events_written: int
    bytes_done: int
    bytes_total: int
    files_done: int
    files_total: int


def _final_path(out_dir: Path, name: str) -> Path:
    final = out_dir / output_name(name)
    final.parent.mkdir(parents=True, exist_ok=True)
    return final


def run(
    inputs: list[Path],
    out_dir: Path,
    policy: Policy,
    key: Key,
    *,
    force: bool = False,
    jobs: int | None = None,
    roster: Roster | None = None,
    sign_key: Ed25519PrivateKey | None = None,
    on_file_done: Callable[[str, Stats], None] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> RunResult:
    """Anonymize INPUTS into OUT_DIR under POLICY and KEY, and write the manifest last.

    JOBS worker processes (default: all cores) share the work batch by batch; the output is
    byte-identical whatever their number. An interruption leaves no manifest behind, but a
    journal from which the same call resumes (see ``anonymizer.journal``); FORCE discards an
    unfinished run instead. With ROSTER, every known person is found in free text and has one
    pseudonym. With SIGN_KEY (an Ed25519 private key, see ``anonymizer.signing``),
    ``manifest.sig`` is written beside the manifest.
    """
    out_dir = Path(out_dir)
    sources = collect_inputs(inputs)
    roster_summary = roster.summary(Pseudonymizer(key)) if roster is not None else None
    head = journal.header(policy_sha256=policy.sha256, key_id=key.key_id, roster=roster_summary, inputs=[n for _, n in sources])
    kept = _resume_or_prepare(out_dir, force, head, sources)
    log = journal.Journal(out_dir, head, [kept[name] for _, name in sources if name in kept])
    partial = out_dir / PARTIAL_DIR
    partial.mkdir(exist_ok=True)
    anonymizer = Anonymizer(policy, key, roster)
    # Every file's entries and counts by input index, merged in input order at the end, so that
    # files kept from an interrupted run take their places as if they had just been made.
    done: dict[int, journal.Finished] = {i: kept[name] for i, (_, name) in enumerate(sources) if name in kept}
    sizes = [path.stat().st_size for path, _ in sources]
    bytes_total = sum(sizes)
    bytes_before = sum(sizes[i] for i in done)
    lines_before = sum(entry.stats.read for entry in done.values())
    written_before = sum(entry.stats.written for entry in done.values())
    outputs: dict[int, OutputFile] = {}
    file_stats: dict[int, Stats] = {}

    def items():
        for index, (path, name) in enumerate(sources):
            if index not in done:
                yield from batches(index, name, path)

    try:
        for item, result in ordered_results(items(), anonymizer, jobs or default_jobs()):
            index = item.file_index
            if index not in outputs:
                outputs[index] = OutputFile(partial / f"{index:06d}.gz")
                file_stats[index] = Stats()
            if isinstance(item, Batch):
                outputs[index].write(result)
                file_stats[index].merge(result.stats)
                if on_progress is not None:
                    on_progress(
                        Progress(lines_before + file_stats[index].read, written_before + file_stats[index].written,
                                 bytes_before + item.raw_end, bytes_total, len(done), len(sources))
                    )
                continue
            # FileEnd: the file is complete; move it into place and account for it.
            output = outputs.pop(index)
            output.close()
            name = sources[index][1]
            os.replace(output.path, _final_path(out_dir, name))
            stats = file_stats.pop(index)
            done[index] = journal.Finished(
                InputEntry(path=name, sha256=item.sha256, bytes=item.bytes, lines=item.lines),
                FileEntry(path=output_name(name), sha256=output.sha256.hexdigest(), bytes=output.bytes, events=output.events, source=name),
                stats,
            )
            log.record(done[index])  # after the file is in place: an entry always names a whole file
            bytes_before += sizes[index]
            lines_before += stats.read
            written_before += stats.written
            if on_file_done is not None:
                on_file_done(name, stats)
    finally:
        # Done, interrupted or failed: the files still in progress go. Without a manifest, what
        # an interruption leaves is visibly not a package.
        for unfinished in outputs.values():
            unfinished.raw.close()
        shutil.rmtree(partial, ignore_errors=True)
        log.close()
    total = Stats()
    for index in sorted(done):
        total.merge(done[index].stats)
    if not total.accounted():
        raise AssertionError("line accounting does not add up; the package is incomplete")
    manifest = build_manifest(
        files=[done[index].output for index in sorted(done)],
        inputs=[done[index].input for index in sorted(done)],
        stats=total,
        policy_name=policy.name,
        policy_source=policy.source,
        policy_sha256=policy.sha256,
        key_id=key.key_id,
        roster=roster_summary,
    )
    write_json_atomically(out_dir / MANIFEST_NAME, manifest)
    if sign_key is not None:
        sign_manifest(out_dir, sign_key)  # after the manifest: it signs its exact bytes
    log.remove()  # last: until the package is complete, a rerun can resume it
    return RunResult(out_dir=out_dir, manifest=manifest, stats=total, resumed=len(kept))
