"""A run: every input file through the anonymizer into a package directory with a manifest."""

from __future__ import annotations

import os
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from isal.igzip_lib import IsalError

from .engine import Anonymizer
from .errors import UsageError
from .keys import Key
from .manifest import MANIFEST_NAME, FileEntry, InputEntry, build_manifest, read_manifest, write_json_atomically
from .pipeline import Batch, OutputFile, batches, default_jobs, ordered_results
from .policy import Policy
from .pseudonyms import Pseudonymizer
from .reader import collect_inputs, open_lines, output_name
from .learn import Learner
from .roster import Roster, join_rosters
from .signing import SIGNATURE_NAME, Ed25519PrivateKey, sign_manifest
from .stats import Stats

PARTIAL_DIR = ".partial"


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
    (out_dir / SIGNATURE_NAME).unlink(missing_ok=True)
    for relative in listed:
        target = (out_dir / relative).resolve()
        if out_dir.resolve() in target.parents:
            target.unlink(missing_ok=True)
    shutil.rmtree(out_dir / PARTIAL_DIR, ignore_errors=True)


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
    learn: bool = True,
    on_file_done: Callable[[str, Stats], None] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> RunResult:
    """Anonymize INPUTS into OUT_DIR under POLICY and KEY, and write the manifest last.

    JOBS worker processes (default: all cores) share the work batch by batch; the output is
    byte-identical whatever their number. An interruption leaves no manifest behind. With
    ROSTER, every known person is found in free text and has one pseudonym. With SIGN_KEY (an
    Ed25519 private key, see ``anonymizer.signing``), ``manifest.sig`` is written beside the manifest.
    With LEARN (the default), a first pass collects the people the inputs name in identifier
    fields (see ``anonymizer.learn``), and they are found in free text as ROSTER's people are.
    """
    out_dir = Path(out_dir)
    sources = collect_inputs(inputs)
    _prepare_out_dir(out_dir, force)
    partial = out_dir / PARTIAL_DIR
    partial.mkdir(exist_ok=True)
    learned = None
    people = roster
    if learn:
        # Before any worker starts: every worker gets the same, whole roster.
        learner = Learner(policy)
        for path, _ in sources:
            try:
                learner.add_lines(open_lines(path))
            except (EOFError, OSError, zlib.error, IsalError):
                pass  # the run itself reads the file again and stops with an error that names it
        learned = learner.summary()
        people = join_rosters(roster, learner.roster())
    anonymizer = Anonymizer(policy, key, people)
    total = Stats()
    files: list[FileEntry] = []
    described: list[InputEntry] = []
    sizes = [path.stat().st_size for path, _ in sources]
    bytes_total, bytes_before = sum(sizes), 0
    outputs: dict[int, OutputFile] = {}
    file_stats: dict[int, Stats] = {}

    def items():
        for index, (path, name) in enumerate(sources):
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
                        Progress(total.read + file_stats[index].read, total.written + file_stats[index].written,
                                 bytes_before + item.raw_end, bytes_total, len(files), len(sources))
                    )
                continue
            # FileEnd: the file is complete; move it into place and account for it.
            output = outputs.pop(index)
            output.close()
            name = sources[index][1]
            os.replace(output.path, _final_path(out_dir, name))
            stats = file_stats.pop(index)
            files.append(FileEntry(path=output_name(name), sha256=output.sha256.hexdigest(), bytes=output.bytes, events=output.events, source=name))
            described.append(InputEntry(path=name, sha256=item.sha256, bytes=item.bytes, lines=item.lines))
            total.merge(stats)
            bytes_before += sizes[index]
            if on_file_done is not None:
                on_file_done(name, stats)
    finally:
        # Done, interrupted or failed: the files still in progress go. Without a manifest, what
        # an interruption leaves is visibly not a package.
        for unfinished in outputs.values():
            unfinished.raw.close()
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
        roster=roster.summary(Pseudonymizer(key)) if roster is not None else None,
    )
    if learned is not None:
        manifest["learned_roster"] = learned  # counts only, never a person
    write_json_atomically(out_dir / MANIFEST_NAME, manifest)
    if sign_key is not None:
        sign_manifest(out_dir, sign_key)  # after the manifest: it signs its exact bytes
    return RunResult(out_dir=out_dir, manifest=manifest, stats=total)
