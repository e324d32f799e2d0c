"""The run as a Spark job: the same package as ``anonymizer run``, built by a cluster.

Three passes, each a set of Spark tasks whose results come back to the driver as data (no
accumulators: a retried task's result replaces the failed attempt's, so every count is exact):

1. **Count and learn.** Each split of an input (``anonymizer.io.splits``) counts the newlines of
   the batches it makes, and records the identity groups its events name (for the learned
   roster). Files cut into several splits are hashed by a task of their own. The driver replays
   the groups in input order into one ``Learner``: the same roster as one machine's first pass.
2. **Anonymize.** Each split's batches go through the core's batch function and are compressed
   into gzip members exactly as one machine compresses them (``anonymizer.io.pool.process_batch``),
   into a part file under the staging directory. The task returns each batch's counts.
3. **Assemble.** One task per output file concatenates its parts in order into the staged file
   and returns its sha256. Concatenated gzip members are one gzip file: byte for byte the file
   one machine writes.

Only then does the driver move the files into place and write the manifest, last
(``anonymizer.io.staging``). A failed job removes its staging directory and leaves nothing that
looks like a package.

The key travels only inside the tasks' closures (never in a Spark conf, an environment variable
or a job description, which Spark shows in its UI and event log); each Python worker builds the
anonymizer once per job. A task that fails raises an error that names the input and the kind of
failure, never a value: executors' tracebacks reach the driver's log and the UI.

Inputs and the output are local paths that every executor sees under the same name (local mode;
on a cluster a shared mount: ``/dbfs/...``, NFS), or URIs (``s3a://``, ``gs://``, ``abfss://``,
``hdfs://``, ``file://``), read and written from Python in the tasks through fsspec
(``anonymizer.io.storage``), so that splits keep their order. The library of every URI's scheme
is checked on the driver before any work.
"""

from __future__ import annotations

import os
import pickle
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import AnonymizerError, InputError, OutputError, UsageError, os_reason
from ..core.ipmask import GeoIP
from ..core.keys import Key
from ..core.lowering import lower
from ..core.outcomes import AccountingError
from ..core.policy import Policy
from ..core.pseudonyms import Pseudonymizer
from ..core.roster import Roster, join_rosters
from ..core.scoping import GLOBAL, chosen_engine, make_anonymizer
from ..core.selection import Selection
from ..core.stats import Stats
from ..core.suppression import GroupCounter
from ..package.encrypt import encrypt_package
from ..package.manifest import FileEntry, InputEntry
from ..package.signing import Ed25519PrivateKey
from .staging import target as package_target
from . import storage
from .inputs import FileEnd, collect_locations, output_name
from .learn import GroupRecorder, Learner, replay
from .pool import EMPTY_GZIP, process_batch
from .runner import RunResult, check_run, layout_entries, rejected_warning
from .splits import DEFAULT_SPLIT_BYTES, Split, count_split, file_digest, plan_splits, split_batches

# ---------------------------------------------------------------------------- tasks
# Module-level functions: what Spark ships to the executors is these and their arguments.

_ANONYMIZERS: dict[str, Any] = {}  # per Python worker: the job's anonymizer, built once


@dataclass
class SplitResult:
    """What pass 2 returns for one split: its part files (one, or in the course-day layout one per
    course and day, in the order they first occur), its batches' counts, and (for a file in one
    split) the file's ``FileEnd``."""

    split: Split
    parts: list[tuple[Any, str, int, int]]  # (place, part path, bytes, events); place None: the input layout
    batch_stats: list[Stats]
    file_end: FileEnd | None


class TaskError(RuntimeError):
    """A task's failure, in words that name the input and the kind of fault, never a value."""


def _guarded(split: Split, work):
    try:
        return work()
    except (InputError, UsageError) as exc:
        raise TaskError(str(exc)) from None  # its message names the file and the line (or a missing library), no value
    except Exception as exc:  # noqa: BLE001  (any other fault: its message could hold a value)
        raise TaskError(f"{split.name}: {type(exc).__name__} in split {split.index}") from None


def _count_task(item: tuple[str, Any], policy: Policy, learn: bool):
    kind, what = item
    if kind == "hash":
        index, path, name = what
        try:
            return ("hash", index, *file_digest(path))
        except OSError as exc:
            raise TaskError(f"{name}: it cannot be read ({os_reason(exc)})") from None
        except Exception as exc:  # noqa: BLE001  (a store's own errors: their kind, never their text)
            raise TaskError(f"{name}: it cannot be read ({type(exc).__name__})") from None
    split = what

    def work():
        recorder = GroupRecorder(policy) if learn else None
        counter = GroupCounter(lower(policy))
        readers = [r for r in (recorder, counter if counter.active else None) if r is not None]
        count = count_split(split, readers)
        return ("count", count, recorder.groups if recorder is not None else [], counter.pairs if counter.active else None)

    return _guarded(split, work)


def _anonymizer(token: str, key: bytes, shared):
    found = _ANONYMIZERS.get(token)
    if found is None:
        _ANONYMIZERS.clear()  # one job's at a time
        build = pickle.loads(shared.value)
        found = _ANONYMIZERS[token] = build(pickle.loads(key))
    return found


def _anonymize_task(
    item: tuple[Split, int], token: str, key: bytes, shared, staging: str, by_place: bool, fail_once: str | None,
) -> SplitResult:
    split, first_line = item

    def work() -> SplitResult:
        if fail_once is not None and not os.path.exists(fail_once):
            Path(fail_once).touch()  # a test's fault: this attempt fails, the retry succeeds
            raise RuntimeError("injected fault")
        anonymizer = _anonymizer(token, key, shared)
        stats: list[Stats] = []
        file_end = None
        parts: dict[Any, list] = {}  # place -> [path, handle, bytes, events]
        try:
            for item in split_batches(split, first_line):
                if isinstance(item, FileEnd):
                    file_end = item
                    continue
                packed = process_batch(anonymizer, item, by_place)
                stats.append(packed.stats)
                members = packed.places if by_place else ([(None, packed.member, packed.events)] if packed.member else [])
                for place, member, events in members:
                    part = parts.get(place)
                    if part is None:
                        path = storage.join(staging, f"{split.file_index:06d}-{split.index:06d}-{len(parts):06d}.part")
                        part = parts[place] = [path, storage.open_write(path), 0, 0]
                    part[1].write(member)
                    part[2] += len(member)
                    part[3] += events
        finally:
            for part in parts.values():
                part[1].close()
        return SplitResult(split, [(place, p[0], p[2], p[3]) for place, p in parts.items()], stats, file_end)

    return _guarded(split, work)


def _assemble_task(item: tuple[Any, str, list[str]], staging: str) -> tuple[Any, str, str, int]:
    """Concatenate one output file's parts, in order, into a staged file: (its key, path, sha256, bytes)."""
    import hashlib  # noqa: PLC0415  (kept beside its one use in the executors)

    key, label, parts = item
    digest = hashlib.sha256()
    size = 0
    target = storage.join(staging, "files", f"{uuid.uuid4().hex}.gz")
    try:
        with storage.open_write(target) as out:
            for part in parts:
                with storage.open_read(part) as data:
                    while block := data.read(1 << 22):
                        out.write(block)
                        digest.update(block)
                        size += len(block)
            if size == 0:  # a file with no events is still a valid (empty) gzip file
                out.write(EMPTY_GZIP)
                digest.update(EMPTY_GZIP)
                size = len(EMPTY_GZIP)
            storage.sync(out)
    except OSError as exc:
        raise TaskError(f"{label}: cannot be written ({os_reason(exc)})") from None
    except Exception as exc:  # noqa: BLE001  (a store's own errors: their kind, never their text)
        raise TaskError(f"{label}: cannot be written ({type(exc).__name__})") from None
    return key, target, digest.hexdigest(), size


# ---------------------------------------------------------------------------- the driver


def default_session(master: str | None = None, app_name: str = "anonymizer"):
    """The active SparkSession, or a new one (MASTER, default ``local[*]``) whose Python workers
    run this interpreter in local mode."""
    from pyspark.sql import SparkSession  # noqa: PLC0415  (pyspark is an optional extra)

    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        return active
    master = master or "local[*]"
    if master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = SparkSession.builder.master(master).appName(app_name).config("spark.ui.showConsoleProgress", "false").getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session


class _Build:
    """How an executor builds the run's anonymizer, given the key (which travels apart)."""

    def __init__(self, policy, roster, pseudonyms, geoip, selection, groups, engine) -> None:
        self.args = (policy, roster, pseudonyms, geoip, selection, groups, engine)

    def __call__(self, key: Key):
        policy, roster, pseudonyms, geoip, selection, groups, engine = self.args
        return make_anonymizer(policy, key, roster, pseudonyms, geoip, selection=selection, groups=groups, engine=engine)


def spark_run(
    spark,
    inputs: list[Path | str],
    out_dir: Path | str,
    policy: Policy,
    key: Key,
    *,
    force: bool = False,
    roster: Roster | None = None,
    sign_key: Ed25519PrivateKey | None = None,
    learn: bool = True,
    max_rejected_fraction: float | None = None,
    selection: Selection | None = None,
    layout: str = "input",
    scope: str | None = None,
    pseudonyms: str = GLOBAL,
    encrypt_to: list[str] | None = None,
    geoip: GeoIP | None = None,
    engine: str = "auto",
    split_bytes: int = DEFAULT_SPLIT_BYTES,
    _fail_once: str | None = None,
) -> RunResult:
    """Anonymize INPUTS into OUT_DIR on SPARK (a ``SparkSession``): the package that ``run`` makes
    with the same arguments (see ``anonymizer.io.runner.run``), log files byte for byte (see the
    module's text for how). Resuming is Spark's: a failed task is tried again; a failed job leaves
    no package, and the same call starts again. INPUTS and OUT_DIR may be URIs
    (``anonymizer.io.storage``); ENCRYPT_TO needs a local OUT_DIR."""
    out_dir = out_dir if storage.is_uri(out_dir) else Path(out_dir)
    inputs = [p if storage.is_uri(p) else Path(p) for p in inputs]
    storage.require([*inputs, out_dir])  # a missing library fails here, before any work
    key, recipients = check_run(inputs, out_dir, key, force=force, layout=layout, pseudonyms=pseudonyms, scope=scope, encrypt_to=encrypt_to)
    sources = collect_locations(inputs)
    splits = plan_splits(sources, split_bytes)
    roster_summary = roster.summary(Pseudonymizer(key)) if roster is not None else None
    plan = lower(policy)
    by_place = layout == "course-day"
    target = package_target(out_dir)
    where = target.prepare(force)
    sc = spark.sparkContext
    completed = False
    try:
        # Pass 1: newlines per split, identity groups and rare-value counts, and the digests of
        # files cut in pieces.
        multi = sorted({s.file_index for s in splits if s.end is not None or s.start > 0})
        work = [("count", s) for s in splits] + [("hash", (i, str(sources[i][0]), sources[i][1])) for i in multi]
        sc.setJobDescription("anonymizer: count lines and learn identities")
        counted = sc.parallelize(work, len(work)).map(lambda item: _count_task(item, policy, learn)).collect()
        counts = [c[1] for c in counted if c[0] == "count"]
        digests = {c[1]: (c[2], c[3]) for c in counted if c[0] == "hash"}
        learned = None
        people = roster
        if learn:
            learner = Learner(policy)
            for c in counted:
                if c[0] == "count":
                    replay(learner, c[2])
            learned = learner.summary()
            people = join_rosters(roster, learner.roster())
        counter = GroupCounter(plan)
        for c in counted:
            if c[0] == "count" and c[3] is not None:
                counter.merge(c[3])
        groups = counter.frequent() if counter.active else None
        # Pass 2: each split through the batch function, from its first line number.
        first_lines: list[tuple[Split, int]] = []
        lines_so_far: dict[int, int] = {}
        for count in counts:
            done = lines_so_far.get(count.split.file_index, 0)
            first_lines.append((count.split, done + 1))
            lines_so_far[count.split.file_index] = done + count.newlines
        token = uuid.uuid4().hex
        # The key travels in the closure, small enough that Spark never turns it into a broadcast
        # (broadcasts are written to the executors' disks); the policy and the rosters, which can
        # be large, go as a broadcast.
        secret = pickle.dumps(key)
        engine_used = chosen_engine(engine, pseudonyms, geoip, selection, groups, policy.events_format)  # as every executor will choose
        shared = sc.broadcast(pickle.dumps(_Build(policy, people, pseudonyms, geoip, selection, groups, engine_used)))
        sc.setJobDescription("anonymizer: anonymize")
        try:
            results: list[SplitResult] = (
                sc.parallelize(first_lines, len(first_lines))
                .map(lambda item: _anonymize_task(item, token, secret, shared, where, by_place, _fail_once))
                .collect()
            )
        finally:
            shared.destroy()
        # Pass 3: each output file from its parts, in input order.
        by_file: dict[int, list[SplitResult]] = {}
        outputs: dict[Any, list[str]] = {}  # output key (file index, or place) -> parts in order
        for result in results:
            by_file.setdefault(result.split.file_index, []).append(result)
            for place, path, size, _ in result.parts:
                parts = outputs.setdefault(place if by_place else result.split.file_index, [])
                if size:
                    parts.append(path)
        if not by_place:
            for index in range(len(sources)):
                outputs.setdefault(index, [])
        jobs = [(k, f"output file {n}", parts) for n, (k, parts) in enumerate(outputs.items())]
        sc.setJobDescription("anonymizer: assemble files")
        assembled = {k: rest for k, *rest in sc.parallelize(jobs, max(1, len(jobs))).map(lambda j: _assemble_task(j, where)).collect()}
        sc.setJobDescription(None)
        events_of: dict[Any, int] = {}
        for result in results:
            for place, _, _, events in result.parts:
                k = place if by_place else result.split.file_index
                events_of[k] = events_of.get(k, 0) + events
        # The driver: the counts in input order, the files into place, the manifest last.
        files, input_entries, total, warnings, moves = [], [], Stats(), [], []
        for index, (path, name) in enumerate(sources):
            stats = Stats()
            parts = by_file[index]
            for result in parts:
                for batch in result.batch_stats:
                    stats.merge(batch)
            end = parts[-1].file_end
            if end is None:
                sha, size = digests[index]
                last = [c for c in counts if c.split.file_index == index][-1]
                lines = lines_so_far[index] + (1 if last.last_without_newline else 0)
            else:
                sha, size, lines = end.sha256, end.bytes, end.lines
            rejected = sum(stats.rejected.values())
            warning = rejected_warning(name, rejected, stats.read, max_rejected_fraction)
            if warning is not None:
                warnings.append(warning)
            input_entries.append(InputEntry(path=name, sha256=sha, bytes=size, lines=lines, rejected=rejected))
            if not by_place:
                staged, out_sha, out_bytes = assembled[index]
                moves.append((staged, output_name(name)))
                files.append(FileEntry(path=output_name(name), sha256=out_sha, bytes=out_bytes, events=events_of.get(index, 0), source=name))
            total.merge(stats)
        if not total.accounted():
            raise AccountingError("line accounting does not add up over the run; no manifest was written")
        if by_place:
            placed = layout_entries({k: (p, sha, b, events_of.get(k, 0)) for k, (p, sha, b) in assembled.items()})
            moves = [(staged, relative) for staged, relative, _ in placed]
            files = sorted((entry for _, _, entry in placed), key=lambda entry: entry.path)
        target.place(moves)
        manifest = target.finish(
            files=files, inputs=input_entries, stats=total, warnings=warnings, policy=policy, plan=plan, key=key,
            roster_summary=roster_summary, learned=learned, counter=counter, layout=layout, selection=selection, scope=scope,
            pseudonyms=pseudonyms, geoip=geoip, sign_key=sign_key, engine=engine_used,
        )
        completed = True
    except OSError as exc:
        target.failed()
        raise OutputError(f"{exc.filename or out_dir}: cannot write the package ({os_reason(exc)}); no manifest was written") from None
    except Exception as exc:
        target.failed()
        if isinstance(exc, AnonymizerError):
            raise
        raise _task_failure(exc) from None
    finally:
        target.clean(completed)
    encrypted = encrypt_package(out_dir, recipients, sign_key) if recipients is not None else None
    return RunResult(out_dir=out_dir, manifest=manifest, stats=total, encrypted=encrypted)


def _task_failure(exc: BaseException) -> AnonymizerError:
    """A failed Spark job as an error for people: the task's own words (``TaskError``, which never
    holds a value) when they can be found in what Spark reports, else the kind of failure."""
    text = str(exc)
    marker = "TaskError: "
    if marker in text:
        reason = text.split(marker, 1)[1].splitlines()[0]
        return InputError(f"a Spark task failed: {reason}; no manifest was written")
    return InputError(f"the Spark job failed ({type(exc).__name__}); no manifest was written. See the Spark logs for the failed task")
