"""A run: every input file through the anonymizer into a package directory with a manifest."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import journal, storage
from ..core.native import engine_name
from ..core.errors import InputError, OutputError, UsageError, os_reason
from ..core.ipmask import GeoIP
from ..core.keys import Key, derive_scoped_key
from ..core.scoping import GLOBAL, PSEUDONYM_MODES, make_anonymizer
from ..package.codebook import CODEBOOK_FILES, write_codebook
from ..package.manifest import MANIFEST_NAME, FileEntry, InputEntry, build_manifest, write_json_atomically
from .formats import XAPI, check_policy_format
from .inputs import Batch, batches, collect_inputs, open_lines
from .learn import learn_sources
from .parquet import JSONL, PARQUET, check_format, convert, data_file_name, layout_suffix
from ..package.columns import SCHEMA_VERSION, events_format
from ..core.outcomes import AccountingError
from .pool import AppendedFile, OutputFile, default_jobs, ordered_results
from ..core.policy import Policy
from ..core.pseudonyms import Pseudonymizer
from ..core.roster import Roster, join_rosters
from ..package.layout import LAYOUTS, course_dirs, file_path
from ..package.encrypt import EncryptedPackage, check_archive_targets, encrypt_package, parse_recipients
from ..package.signing import SIGNATURE_NAME, Ed25519PrivateKey, sign_manifest
from ..core.selection import Selection
from ..core.stats import Stats
from ..core.lowering import lower
from ..core.suppression import GroupCounter

PARTIAL_DIR = ".partial"
MOSTLY_REJECTED = 0.5  # above this share of rejected lines, an input is named in a warning


@dataclass
class RunResult:
    out_dir: Path
    manifest: dict
    stats: Stats
    resumed: int = 0  # files kept from an interrupted run with the same inputs, policy, key and roster
    encrypted: EncryptedPackage | None = None  # with encrypt_to: the archive and its check files


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


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({os_reason(exc)})") from None


def _remove_manifest(out_dir: Path) -> None:
    """Remove whatever manifest (and signature) a failed run began in OUT_DIR."""
    for path in (out_dir / MANIFEST_NAME, out_dir / SIGNATURE_NAME, out_dir / f".{MANIFEST_NAME}.partial", *(out_dir / n for n in CODEBOOK_FILES)):
        try:
            path.unlink(missing_ok=True)
        except OSError:
            continue


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


def _final_path(out_dir: Path, name: str, output_format: str = JSONL) -> Path:
    final = out_dir / data_file_name(name, output_format)
    final.parent.mkdir(parents=True, exist_ok=True)
    return final


def check_run(
    inputs: list[Path], out_dir: Path, key: Key, *, force: bool, layout: str, pseudonyms: str, scope: str | None,
    encrypt_to: list[str] | None, output_format: str = JSONL,
) -> tuple[Key, list | None]:
    """What every driver checks before any work: the options, the output directory against the
    inputs, the encrypted archive's place. Returns the run's key (derived for SCOPE) and the
    archive's recipients (None: no archive)."""
    if layout not in LAYOUTS:
        raise UsageError(f"--layout: expected one of {', '.join(LAYOUTS)}")
    check_format(output_format)  # Parquet without pyarrow: refused before any work
    if storage.any_uri([*inputs, out_dir]):  # spark-run's URIs
        storage.refuse_overlap(inputs, out_dir)
    else:
        _refuse_overlap(inputs, out_dir)
    if pseudonyms not in PSEUDONYM_MODES:
        raise UsageError(f"pseudonyms: expected one of {', '.join(PSEUDONYM_MODES)}")
    if scope is not None:
        key = derive_scoped_key(key, scope)  # from here on, the master key is not used
    recipients = parse_recipients(encrypt_to) if encrypt_to else None  # before any work
    if recipients is not None:
        if storage.is_uri(out_dir):
            raise UsageError(f"--encrypt-to: the archive is written beside a local output directory, and {out_dir} is a URI; encrypt a local copy")
        check_archive_targets(out_dir, force)
    return key, recipients


def finish_package(
    out_dir: Path, *, files: list[FileEntry], inputs: list[InputEntry], stats: Stats, warnings: list[str], policy: Policy,
    plan, key: Key, roster_summary: dict | None, learned: dict | None, counter: GroupCounter, layout: str,
    selection: Selection | None, scope: str | None, pseudonyms: str, geoip: GeoIP | None, sign_key: Ed25519PrivateKey | None,
    engine: str, output_format: str = JSONL,
) -> dict:
    """The end of every driver's run, once the data files are in place: the codebook, then the
    manifest that lists them all, then its signature. Returns the manifest."""
    manifest = build_manifest(
        files=files,
        inputs=inputs,
        stats=stats,
        policy_name=policy.name,
        policy_source=policy.source,
        policy_sha256=policy.sha256,
        key_id=key.key_id,
        roster=roster_summary,
        warnings=warnings,
        layout=layout,
        selection=selection.describe() if selection is not None else None,
        scope=scope,
        pseudonyms=pseudonyms,
        engine=engine,
    )
    if geoip is not None:
        manifest["geoip"] = geoip.summary()  # the database's type, date and sha256: no address
    if learned is not None:
        manifest["learned_roster"] = learned  # counts only, never a person
    if counter.active:
        manifest["suppressed"] = counter.summary()  # counts only, never a value
    if output_format != JSONL:  # named only for Parquet: a JSON-lines manifest reads as before
        manifest["format"] = {"files": output_format, "schema": events_format(policy), "schema_version": SCHEMA_VERSION}
    # The codebook before the manifest, which lists it: its hashes are signed with the rest.
    manifest["documents"] = write_codebook(out_dir, plan, manifest)
    write_json_atomically(out_dir / MANIFEST_NAME, manifest)
    if sign_key is not None:
        sign_manifest(out_dir, sign_key)  # after the manifest: it signs its exact bytes
    return manifest


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
    max_rejected_fraction: float | None = None,
    selection: Selection | None = None,
    layout: str = "input",
    scope: str | None = None,
    pseudonyms: str = GLOBAL,
    encrypt_to: list[str] | None = None,
    geoip: GeoIP | None = None,
    engine: str = "auto",
    input_format: str = "auto",
    output_format: str = JSONL,
) -> RunResult:
    """Anonymize INPUTS into OUT_DIR under POLICY and KEY, and write the manifest last.

    JOBS worker processes (default: all cores) share the work batch by batch; the output is
    byte-identical whatever their number. An interruption leaves no manifest behind, but a
    journal from which the same call resumes (see ``anonymizer.io.journal``); FORCE discards an
    unfinished run instead. With ROSTER, every known person is found in free text and has one
    pseudonym. With SIGN_KEY (an Ed25519 private key, see ``anonymizer.package.signing``),
    ``manifest.sig`` is written beside the manifest. An input with more than half of its lines
    rejected is named in the manifest's ``warnings``; with MAX_REJECTED_FRACTION, an input above
    that share stops the run (``InputError``). With LEARN (the default), a first pass collects the
    people the inputs name in identifier fields (see ``anonymizer.io.learn``), and they are found in
    free text as ROSTER's people are. With SCOPE (a label), the run's key is derived from KEY
    (``anonymizer.core.keys.derive_scoped_key``); PSEUDONYMS ``per-course`` gives every course
    its own pseudonyms (``anonymizer.core.scoping``). With ENCRYPT_TO (age or SSH public keys),
    the finished package is also written as an encrypted archive beside OUT_DIR
    (``anonymizer.package.encrypt``). GEOIP (``anonymizer.core.ipmask.GeoIP``) is the country
    database for ``mask_ip``'s ``country``. INPUT_FORMAT (``auto``, ``tracking-log``, ``xapi``):
    what the inputs hold (see ``anonymizer.io.formats``); POLICY must be written for it.

    SELECTION (``anonymizer.core.selection.Selection.parse``) leaves out the events the run does
    not ask for, counted as ``not_selected``. LAYOUT ``input`` writes one file per input;
    ``course-day`` one file per course and UTC day (``anonymizer.package.layout``), each holding
    its events in the order of the inputs as given and of the lines within each. A course-day run
    that is interrupted is not resumed: its files take lines from every input, so the same
    command refuses the directory and ``--force`` starts again.

    OUTPUT_FORMAT ``jsonl`` writes gzip JSON lines; ``parquet`` converts each finished file to
    Parquet (``anonymizer.io.parquet``; pyarrow needed) before it moves into place.
    """
    out_dir = Path(out_dir)
    key, recipients = check_run(
        inputs, out_dir, key, force=force, layout=layout, pseudonyms=pseudonyms, scope=scope, encrypt_to=encrypt_to, output_format=output_format,
    )
    sources = collect_inputs(inputs)
    if check_policy_format(sources, input_format, policy) == XAPI:
        _check_xapi_options(pseudonyms, selection)
    roster_summary = roster.summary(Pseudonymizer(key)) if roster is not None else None
    head = journal.header(
        policy_sha256=policy.sha256, key_id=key.key_id, roster=roster_summary, learn=learn, inputs=[n for _, n in sources],
        layout=layout, selection=selection.describe() if selection is not None else None,
        scope=scope, pseudonyms=pseudonyms, geoip=geoip.sha256 if geoip is not None else None, output_format=output_format,
    )
    try:
        kept = _resume_or_prepare(out_dir, force, head, sources)
        log = journal.Journal(out_dir, head, [kept[name] for _, name in sources if name in kept])
        partial = out_dir / PARTIAL_DIR
        partial.mkdir(exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{exc.filename or out_dir}: cannot prepare the output directory ({os_reason(exc)})") from None
    learned = None
    people = roster
    if learn:
        # A pass of its own, over before the anonymizing starts: every worker gets the same, whole roster.
        learner = learn_sources(policy, sources, jobs or default_jobs())
        learned = learner.summary()
        people = join_rosters(roster, learner.roster())
    plan = lower(policy)
    counter = GroupCounter(plan)  # min_group_size: its own pass, before any worker starts
    for path, _ in sources if counter.active else ():
        try:
            counter.add_lines(open_lines(path))
        except InputError:
            pass  # as for the learned roster: the run itself stops with an error that names the file
    anonymizer = make_anonymizer(
        policy, key, people, pseudonyms, geoip, selection=selection, groups=counter.frequent() if counter.active else None,
        engine=engine,
    )
    by_place = layout == "course-day"
    # Every file's entries and counts by input index, merged in input order at the end, so that
    # files kept from an interrupted run take their places as if they had just been made.
    done: dict[int, journal.Finished] = {i: kept[name] for i, (_, name) in enumerate(sources) if name in kept}
    sizes = [_size(path) for path, _ in sources]
    bytes_total = sum(sizes)
    bytes_before = sum(sizes[i] for i in done)
    lines_before = sum(entry.stats.read for entry in done.values())
    written_before = sum(entry.stats.written for entry in done.values())
    outputs: dict[int, OutputFile] = {}
    file_stats: dict[int, Stats] = {}
    placed: dict[tuple[str | None, str | None], AppendedFile] = {}  # course-day: by (course, day), in order of first line
    completed = False
    encrypted = None

    def items():
        for index, (path, name) in enumerate(sources):
            if index not in done:
                yield from batches(index, name, path)

    try:
        for item, result in ordered_results(items(), anonymizer, jobs or default_jobs(), by_place):
            index = item.file_index
            if index not in file_stats:
                if not by_place:
                    outputs[index] = OutputFile(partial / f"{index:06d}.gz")
                file_stats[index] = Stats()
            if isinstance(item, Batch):
                if by_place:
                    _append_places(placed, result.places, partial)
                else:
                    outputs[index].write(result)
                file_stats[index].merge(result.stats)
                if on_progress is not None:
                    on_progress(
                        Progress(lines_before + file_stats[index].read, written_before + file_stats[index].written,
                                 bytes_before + item.raw_end, bytes_total, len(done), len(sources))
                    )
                continue
            # FileEnd: the file is complete; move it into place and account for it.
            name = sources[index][1]
            stats = file_stats.pop(index)
            rejected = sum(stats.rejected.values())
            rejected_warning(name, rejected, stats.read, max_rejected_fraction)  # raises above the limit
            entry = InputEntry(path=name, sha256=item.sha256, bytes=item.bytes, lines=item.lines, rejected=rejected)
            if by_place:
                # Its lines are spread over the course-day files, which are finished at the end.
                done[index] = journal.Finished(entry, None, stats)
            else:
                output = outputs.pop(index)
                output.close()
                path, sha256, size = _finished(output, output_format, policy)
                os.replace(path, _final_path(out_dir, name, output_format))
                done[index] = journal.Finished(
                    entry,
                    FileEntry(path=data_file_name(name, output_format), sha256=sha256, bytes=size, events=output.events, source=name),
                    stats,
                )
                log.record(done[index])  # after the file is in place: an entry always names a whole file
            bytes_before += sizes[index]
            lines_before += stats.read
            written_before += stats.written
            if on_file_done is not None:
                on_file_done(name, stats)
        total = Stats()
        warnings: list[str] = []
        for index in sorted(done):
            entry = done[index]
            total.merge(entry.stats)
            # Kept files are checked again: a resumed run warns, or stops, as an uninterrupted one would.
            warning = rejected_warning(entry.input.path, entry.input.rejected, entry.stats.read, max_rejected_fraction)
            if warning is not None:
                warnings.append(warning)
        if not total.accounted():
            raise AccountingError("line accounting does not add up over the run; no manifest was written")
        if by_place:
            files = _place_files(placed, out_dir, output_format, policy)
        else:
            files = [done[index].output for index in sorted(done)]
        manifest = finish_package(
            out_dir, files=files, inputs=[done[index].input for index in sorted(done)], stats=total, warnings=warnings,
            policy=policy, plan=plan, key=key, roster_summary=roster_summary, learned=learned, counter=counter, layout=layout,
            selection=selection, scope=scope, pseudonyms=pseudonyms, geoip=geoip, sign_key=sign_key, engine=engine_name(anonymizer),
            output_format=output_format,
        )
        log.remove()  # last: until the package is complete, a rerun can resume it
        completed = True
    except OSError as exc:
        # Reading problems are InputErrors by now: this is the package that cannot be written
        # (no space left, a read-only file system). The files in progress go, and so does any
        # manifest begun; the finished files stay in the journal, so that the same command,
        # once there is room, resumes the run.
        for unfinished in outputs.values():
            unfinished.raw.close()
        outputs.clear()
        _remove_manifest(out_dir)
        raise OutputError(
            f"{exc.filename or out_dir}: cannot write the package ({os_reason(exc)}); no manifest was written. "
            "Run the same command again to resume once the cause is fixed, or with --force to start over"
        ) from None
    finally:
        # Done, interrupted or failed: the files still in progress go. Without a manifest, what
        # an interruption leaves is visibly not a package; its journal (and the empty .partial/)
        # mark it as an unfinished one, which the same command resumes and --force replaces.
        for unfinished in outputs.values():
            unfinished.raw.close()
        log.close()
        if completed:
            shutil.rmtree(partial, ignore_errors=True)
        elif partial.is_dir():
            for leftover in partial.iterdir():
                leftover.unlink(missing_ok=True)
    if recipients is not None:  # the package is complete: it stays, whatever happens to the archive
        encrypted = encrypt_package(out_dir, recipients, sign_key)
    return RunResult(out_dir=out_dir, manifest=manifest, stats=total, resumed=len(kept), encrypted=encrypted)


def _check_xapi_options(pseudonyms: str, selection: Selection | None) -> None:
    """The options a run of xAPI statements does not take yet."""
    if pseudonyms != GLOBAL:
        raise UsageError("--pseudonyms per-course is not available for xAPI statements yet; run with --pseudonyms global")
    if selection is not None and selection.staff is not None:
        raise UsageError("--exclude-staff is not available for xAPI statements yet (their actor is an external id); leave it out")


def _append_places(placed: dict, places: list, partial: Path) -> None:
    """Append a batch's members to the files of their (course, day), made on first use and named
    by the order places first occur (the final names are given at the end)."""
    for place, member, events in places:
        target = placed.get(place)
        if target is None:
            target = placed[place] = AppendedFile(partial / f"p{len(placed):06d}.gz")
        target.append(member, events)


def _finished(output: OutputFile | AppendedFile, output_format: str, policy: Policy) -> tuple[Path, str, int]:
    """A closed output file ready to move into place: (path, sha256, bytes), as written (JSON
    lines) or converted to Parquet beside it, the gzip file then removed."""
    if output_format != PARQUET:
        return output.path, output.sha256.hexdigest(), output.bytes
    target = output.path.with_suffix(".parquet")
    sha256, size, rows = convert(output.path, target, events_format(policy))
    if rows != output.events:
        raise AccountingError(f"{output.path.name}: {output.events} events written but {rows} Parquet rows; no manifest was written")
    output.path.unlink()
    return target, sha256, size


def _place_files(placed: dict, out_dir: Path, output_format: str = JSONL, policy: Policy | None = None) -> list[FileEntry]:
    """Move the course-day files into place under their layout names; their manifest entries,
    sorted by path."""
    finished = {}
    for place, output in placed.items():
        output.close()
        path, sha256, size = _finished(output, output_format, policy)
        finished[place] = (path, sha256, size, output.events)
    return place_files(finished, out_dir, layout_suffix(output_format))


def place_files(finished: dict, out_dir: Path, suffix: str = layout_suffix(JSONL)) -> list[FileEntry]:
    """Move finished course-day files, ``{(course, day): (path, sha256, bytes, events)}``, into
    place under their layout names (ending in SUFFIX); their manifest entries, sorted by path."""
    entries = []
    for path, relative, entry in layout_entries(finished, suffix):
        final = out_dir / relative
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, final)
        entries.append(entry)
    return sorted(entries, key=lambda entry: entry.path)


def layout_entries(finished: dict, suffix: str = layout_suffix(JSONL)) -> list[tuple[Path, str, FileEntry]]:
    """(path, name in the package, manifest entry) of each finished course-day file of FINISHED
    (as ``place_files`` takes it), named with SUFFIX."""
    names = course_dirs(course for course, _ in finished)
    entries = []
    for (course, day), (path, sha256, size, events) in finished.items():
        relative = file_path(names[course], day, suffix)
        entry = FileEntry(path=relative, sha256=sha256, bytes=size, events=events, source=None, course=course, day=day, placed=True)
        entries.append((path, relative, entry))
    return entries
