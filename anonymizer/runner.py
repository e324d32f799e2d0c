"""A run: every input file through the anonymizer into a package directory with a manifest."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .engine import Anonymizer
from .errors import InputError, OutputError, UsageError, os_reason
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
MOSTLY_REJECTED = 0.5  # above this share of rejected lines, an input is named in a warning


@dataclass
class RunResult:
    out_dir: Path
    manifest: dict
    stats: Stats


def _prepare_out_dir(out_dir: Path, force: bool) -> None:
    """Make OUT_DIR, or empty it for --force when it holds a package or an unfinished one.

    A directory with a manifest is a package; one with ``.partial/`` and no manifest is what an
    interrupted run left. Anything else that is not empty is someone's files: never touched.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{out_dir}: exists and is not a directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = [p for p in out_dir.iterdir()]
    if not entries:
        return
    if not force:
        raise UsageError(f"{out_dir}: not empty; choose an empty directory or pass --force to replace a previous package")
    manifest_path = out_dir / MANIFEST_NAME
    if not manifest_path.exists() and not (out_dir / PARTIAL_DIR).is_dir():
        raise UsageError(
            f"{out_dir}: not empty and holds neither a {MANIFEST_NAME} nor an unfinished run; "
            "--force only replaces a previous package"
        )
    # The manifest goes first, so that an interrupted replacement never looks complete; then
    # everything else, files the manifest does not list included (verify would reject them).
    manifest_path.unlink(missing_ok=True)
    (out_dir / PARTIAL_DIR).mkdir(exist_ok=True)  # from here on, an unfinished package
    for entry in entries:
        if entry.name == PARTIAL_DIR:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink(missing_ok=True)


def _refuse_overlap(inputs: list[Path], out_dir: Path) -> None:
    """An output directory inside an input directory would be read back as input, and an input
    inside the output directory would be deleted by --force: refuse both."""
    out = out_dir.resolve()
    for given in inputs:
        source = Path(given).resolve()
        if source.is_dir() and (out == source or source in out.parents):
            raise UsageError(f"the output directory {out_dir} is inside the input directory {given}; choose an output directory outside it")
        if out in source.parents or out == source:
            raise UsageError(f"the input {given} is inside the output directory {out_dir}; choose an output directory that holds no input")


@dataclass
class Progress:
    """Where a run is, for a progress display: no value from the logs, only counts."""

    lines: int
    events_written: int
    bytes_done: int
    bytes_total: int
    files_done: int
    files_total: int


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({os_reason(exc)})") from None


def _remove_written(out_dir: Path, placed: list[Path]) -> None:
    """Remove the files a failed run put into OUT_DIR, the manifest and the directories made for them."""
    for path in [*placed, out_dir / MANIFEST_NAME, out_dir / SIGNATURE_NAME, out_dir / f".{MANIFEST_NAME}.partial"]:
        try:
            path.unlink(missing_ok=True)
        except OSError:
            continue
        parent = path.parent
        while parent != out_dir and out_dir in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent


def rejected_warning(name: str, rejected: int, read: int, limit: float | None) -> str | None:
    """A warning when more than half of an input's lines were rejected; an ``InputError`` when more
    than LIMIT (a fraction) were."""
    if not read:
        return None
    fraction = rejected / read
    if limit is not None and fraction > limit:
        raise InputError(
            f"{name}: {rejected} of {read} lines rejected ({fraction:.1%}), more than --max-rejected-fraction "
            f"{limit:g} allows; no manifest was written. Is it a tracking log, in UTF-8?"
        )
    if fraction > MOSTLY_REJECTED:
        return f"{name}: {rejected} of {read} lines rejected ({fraction:.1%}); is it a tracking log, in UTF-8?"
    return None


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
    max_rejected_fraction: float | None = None,
) -> RunResult:
    """Anonymize INPUTS into OUT_DIR under POLICY and KEY, and write the manifest last.

    JOBS worker processes (default: all cores) share the work batch by batch; the output is
    byte-identical whatever their number. An interruption leaves no manifest behind. With
    ROSTER, every known person is found in free text and has one pseudonym. With SIGN_KEY (an
    Ed25519 private key, see ``anonymizer.signing``), ``manifest.sig`` is written beside the manifest.
    An input with more than half of its lines rejected is named in the manifest's ``warnings``;
    with MAX_REJECTED_FRACTION, an input above that share stops the run (``InputError``).
    """
    out_dir = Path(out_dir)
    _refuse_overlap(inputs, out_dir)
    sources = collect_inputs(inputs)
    try:
        _prepare_out_dir(out_dir, force)
    except OSError as exc:
        raise OutputError(f"{exc.filename or out_dir}: cannot prepare the output directory ({os_reason(exc)})") from None
    partial = out_dir / PARTIAL_DIR
    partial.mkdir(exist_ok=True)
    anonymizer = Anonymizer(policy, key, roster)
    total = Stats()
    files: list[FileEntry] = []
    described: list[InputEntry] = []
    sizes = [_size(path) for path, _ in sources]
    bytes_total, bytes_before = sum(sizes), 0
    outputs: dict[int, OutputFile] = {}
    file_stats: dict[int, Stats] = {}
    placed: list[Path] = []  # finished files moved into the package by this run
    warnings: list[str] = []
    completed = False

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
            stats = file_stats.pop(index)
            rejected = sum(stats.rejected.values())
            warning = rejected_warning(name, rejected, stats.read, max_rejected_fraction)
            if warning is not None:
                warnings.append(warning)
            final = _final_path(out_dir, name)
            os.replace(output.path, final)
            placed.append(final)
            files.append(FileEntry(path=output_name(name), sha256=output.sha256.hexdigest(), bytes=output.bytes, events=output.events, source=name))
            described.append(InputEntry(path=name, sha256=item.sha256, bytes=item.bytes, lines=item.lines, rejected=rejected))
            total.merge(stats)
            bytes_before += sizes[index]
            if on_file_done is not None:
                on_file_done(name, stats)
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
            warnings=warnings,
        )
        write_json_atomically(out_dir / MANIFEST_NAME, manifest)
        if sign_key is not None:
            sign_manifest(out_dir, sign_key)  # after the manifest: it signs its exact bytes
        completed = True
    except OSError as exc:
        # Reading problems are InputErrors by now: this is the package that cannot be written
        # (no space left, a read-only file system). Half a package is no use: it all goes.
        _remove_written(out_dir, placed)
        shutil.rmtree(partial, ignore_errors=True)
        raise OutputError(
            f"{exc.filename or out_dir}: cannot write the package ({os_reason(exc)}); "
            "the files written were removed and no manifest was written"
        ) from None
    finally:
        # Done, interrupted or failed: the files still in progress go. Without a manifest, what
        # an interruption leaves is visibly not a package; the empty .partial/ it keeps marks
        # it as an unfinished one, which --force may replace.
        for unfinished in outputs.values():
            unfinished.raw.close()
        if completed:
            shutil.rmtree(partial, ignore_errors=True)
        elif partial.is_dir():
            for leftover in partial.iterdir():
                leftover.unlink(missing_ok=True)
    return RunResult(out_dir=out_dir, manifest=manifest, stats=total)
