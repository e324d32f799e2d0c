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

Only then does the driver move the files into place and write the manifest, last. A failed job
removes its staging directory and leaves nothing that looks like a package.

The key travels only inside the tasks' closures (never in a Spark conf, an environment variable
or a job description, which Spark shows in its UI and event log); each Python worker builds the
anonymizer once per job. A task that fails raises an error that names the input and the kind of
failure, never a value: executors' tracebacks reach the driver's log and the UI.

Paths must be visible to every executor under the same name: local paths in local mode; on a
cluster, a shared file system mounted on every node (``/dbfs/...`` on Databricks, NFS, a
FUSE mount of an object store).
"""

from __future__ import annotations

import os
import pickle
import shutil
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.engine import Anonymizer
from ..core.errors import AnonymizerError, InputError, OutputError, os_reason
from ..core.keys import Key
from ..core.outcomes import AccountingError
from ..core.policy import Policy
from ..core.pseudonyms import Pseudonymizer
from ..core.roster import Roster, join_rosters
from ..core.stats import Stats
from ..package.manifest import MANIFEST_NAME, FileEntry, InputEntry, build_manifest, write_json_atomically
from ..package.signing import Ed25519PrivateKey, sign_manifest
from .inputs import Batch, FileEnd, collect_inputs, output_name
from .learn import Learner, _Group
from .pool import EMPTY_GZIP, process_batch
from .runner import PARTIAL_DIR, RunResult, _final_path, _prepare_out_dir, _refuse_overlap, _remove_manifest, rejected_warning
from .splits import DEFAULT_SPLIT_BYTES, Split, count_split, file_digest, plan_splits, split_batches

ENGINE_NAME = "python"


class GroupRecorder(Learner):
    """A learner that records the identity groups it would link, in first-seen order, instead of
    linking them: a split's share of the first pass, replayed in order by the driver."""

    def __init__(self, policy: Policy) -> None:
        super().__init__(policy)
        self.groups: list[tuple] = []
        self._recorded: set[tuple] = set()

    def _link(self, group: _Group) -> None:
        # Linking a group a second time changes nothing, so a repeat is not recorded.
        found = (tuple(group.usernames), tuple(group.ids), tuple(group.emails))
        group.emails.clear()
        if found not in self._recorded:
            self._recorded.add(found)
            self.groups.append(found)


def replay(learner: Learner, groups: list[tuple]) -> None:
    """Link GROUPS (recorded by ``GroupRecorder``) into LEARNER, in order."""
    for usernames, ids, emails in groups:
        learner._link(_Group(list(usernames), list(ids), list(emails)))


# ---------------------------------------------------------------------------- tasks
# Module-level functions: what Spark ships to the executors is these and their arguments.

_ANONYMIZERS: dict[str, Anonymizer] = {}  # per Python worker: the job's anonymizer, built once


@dataclass
class SplitResult:
    """What pass 2 returns for one split: its part file, its batches' counts, and (for a file in
    one split) the file's ``FileEnd``."""

    split: Split
    part: str | None
    bytes: int
    events: int
    batch_stats: list[Stats]
    file_end: FileEnd | None


class TaskError(RuntimeError):
    """A task's failure, in words that name the input and the kind of fault, never a value."""


def _guarded(split: Split, work):
    try:
        return work()
    except InputError as exc:
        raise TaskError(str(exc)) from None  # its message names the file and the line, no value
    except Exception as exc:  # noqa: BLE001  (any other fault: its message could hold a value)
        raise TaskError(f"{split.name}: {type(exc).__name__} in split {split.index}") from None


def _count_task(item: tuple[str, Any], policy: Policy | None):
    kind, what = item
    if kind == "hash":
        index, path, name = what
        try:
            return ("hash", index, *file_digest(path))
        except OSError as exc:
            raise TaskError(f"{name}: it cannot be read ({os_reason(exc)})") from None
    split = what
    return ("count", _guarded(split, lambda: count_split(split, GroupRecorder(policy) if policy is not None else None)))


def _anonymizer(token: str, key: bytes, shared) -> Anonymizer:
    found = _ANONYMIZERS.get(token)
    if found is None:
        _ANONYMIZERS.clear()  # one job's at a time
        policy, people = pickle.loads(shared.value)
        found = _ANONYMIZERS[token] = Anonymizer(policy, pickle.loads(key), people)
    return found


def _anonymize_task(item: tuple[Split, int], token: str, key: bytes, shared, staging: str, fail_once: str | None) -> SplitResult:
    split, first_line = item

    def work() -> SplitResult:
        if fail_once is not None and not os.path.exists(fail_once):
            Path(fail_once).touch()  # a test's fault: this attempt fails, the retry succeeds
            raise RuntimeError("injected fault")
        anonymizer = _anonymizer(token, key, shared)
        part = os.path.join(staging, f"{split.file_index:06d}-{split.index:06d}.part")
        stats: list[Stats] = []
        events = size = 0
        file_end = None
        with open(part, "wb") as out:
            for item in split_batches(split, first_line):
                if isinstance(item, FileEnd):
                    file_end = item
                    continue
                packed = process_batch(anonymizer, item)
                stats.append(packed.stats)
                if packed.member:
                    out.write(packed.member)
                    size += len(packed.member)
                    events += packed.events
        return SplitResult(split, part, size, events, stats, file_end)

    return _guarded(split, work)


def _assemble_task(item: tuple[int, str, list[str]], staging: str) -> tuple[int, str, int]:
    """Concatenate one output file's parts, in order, into its staged file: (file index, sha256, bytes)."""
    import hashlib  # noqa: PLC0415  (kept beside its one use in the executors)

    index, name, parts = item
    digest = hashlib.sha256()
    size = 0
    target = os.path.join(staging, "files", f"{index:06d}.gz")
    try:
        with open(target, "wb") as out:
            for part in parts:
                with open(part, "rb") as data:
                    while block := data.read(1 << 22):
                        out.write(block)
                        digest.update(block)
                        size += len(block)
            if size == 0:  # a file with no events is still a valid (empty) gzip file
                out.write(EMPTY_GZIP)
                digest.update(EMPTY_GZIP)
                size = len(EMPTY_GZIP)
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        raise TaskError(f"{output_name(name)}: cannot be written ({os_reason(exc)})") from None
    return index, digest.hexdigest(), size


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


def spark_run(
    spark,
    inputs: list[Path],
    out_dir: Path,
    policy: Policy,
    key: Key,
    *,
    force: bool = False,
    roster: Roster | None = None,
    sign_key: Ed25519PrivateKey | None = None,
    learn: bool = True,
    max_rejected_fraction: float | None = None,
    split_bytes: int = DEFAULT_SPLIT_BYTES,
    _fail_once: str | None = None,
) -> RunResult:
    """Anonymize INPUTS into OUT_DIR on SPARK (a ``SparkSession``): the package that ``run`` makes
    with the same arguments, log files byte for byte (see the module's text for how)."""
    out_dir = Path(out_dir)
    inputs = [Path(p) for p in inputs]
    _refuse_overlap(inputs, out_dir)
    sources = collect_inputs(inputs)
    splits = plan_splits(sources, split_bytes)
    roster_summary = roster.summary(Pseudonymizer(key)) if roster is not None else None
    try:
        _prepare_out_dir(out_dir, force)
        staging = out_dir / PARTIAL_DIR / f"spark-{uuid.uuid4().hex}"
        (staging / "files").mkdir(parents=True)
    except OSError as exc:
        raise OutputError(f"{exc.filename or out_dir}: cannot prepare the output directory ({os_reason(exc)})") from None
    sc = spark.sparkContext
    completed = False
    try:
        # Pass 1: newlines per split, identity groups, and the digests of files cut in pieces.
        multi = sorted({s.file_index for s in splits if s.end is not None or s.start > 0})
        work = [("count", s) for s in splits] + [("hash", (i, str(sources[i][0]), sources[i][1])) for i in multi]
        policy_for_learning = policy if learn else None
        sc.setJobDescription("anonymizer: count lines and learn identities")
        counted = sc.parallelize(work, len(work)).map(lambda item: _count_task(item, policy_for_learning)).collect()
        counts = [c[1] for c in counted if c[0] == "count"]
        digests = {c[1]: (c[2], c[3]) for c in counted if c[0] == "hash"}
        learned = None
        people = roster
        if learn:
            learner = Learner(policy)
            for count in counts:
                replay(learner, count.groups)
            learned = learner.summary()
            people = join_rosters(roster, learner.roster())
        # Pass 2: each split through the batch function, from its first line number.
        first_lines: list[tuple[Split, int]] = []
        lines_so_far: dict[int, int] = {}
        for count in counts:
            done = lines_so_far.get(count.split.file_index, 0)
            first_lines.append((count.split, done + 1))
            lines_so_far[count.split.file_index] = done + count.newlines
        token = uuid.uuid4().hex
        # The key travels in the closure, small enough that Spark never turns it into a broadcast
        # (broadcasts are written to the executors' disks); the policy and the roster, which can
        # be large, go as a broadcast.
        secret = pickle.dumps(key)
        shared = sc.broadcast(pickle.dumps((policy, people)))
        where = str(staging)
        sc.setJobDescription("anonymizer: anonymize")
        try:
            results: list[SplitResult] = (
                sc.parallelize(first_lines, len(first_lines))
                .map(lambda item: _anonymize_task(item, token, secret, shared, where, _fail_once))
                .collect()
            )
        finally:
            shared.destroy()
        # Pass 3: each output file from its parts, in order.
        by_file: dict[int, list[SplitResult]] = {}
        for result in results:
            by_file.setdefault(result.split.file_index, []).append(result)
        jobs = [(i, sources[i][1], [r.part for r in by_file[i] if r.bytes]) for i in sorted(by_file)]
        sc.setJobDescription("anonymizer: assemble files")
        assembled = {i: (sha, size) for i, sha, size in sc.parallelize(jobs, max(1, len(jobs))).map(lambda j: _assemble_task(j, where)).collect()}
        sc.setJobDescription(None)
        # The driver: the counts in input order, the files into place, the manifest last.
        files, input_entries, total, warnings = [], [], Stats(), []
        for index, (path, name) in enumerate(sources):
            stats = Stats()
            parts = by_file[index]
            for result in parts:
                for batch in result.batch_stats:
                    stats.merge(batch)
            end = parts[-1].file_end if parts[-1].file_end is not None else None
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
            out_sha, out_bytes = assembled[index]
            input_entries.append(InputEntry(path=name, sha256=sha, bytes=size, lines=lines, rejected=rejected))
            files.append(FileEntry(path=output_name(name), sha256=out_sha, bytes=out_bytes, events=sum(r.events for r in parts), source=name))
            total.merge(stats)
        if not total.accounted():
            raise AccountingError("line accounting does not add up over the run; no manifest was written")
        for index, (_, name) in enumerate(sources):
            os.replace(staging / "files" / f"{index:06d}.gz", _final_path(out_dir, name))
        manifest = build_manifest(
            files=files, inputs=input_entries, stats=total, policy_name=policy.name, policy_source=policy.source,
            policy_sha256=policy.sha256, key_id=key.key_id, roster=roster_summary, warnings=warnings,
        )
        if learned is not None:
            manifest["learned_roster"] = learned
        write_json_atomically(out_dir / MANIFEST_NAME, manifest)
        if sign_key is not None:
            sign_manifest(out_dir, sign_key)
        completed = True
    except OSError as exc:
        _remove_manifest(out_dir)
        raise OutputError(f"{exc.filename or out_dir}: cannot write the package ({os_reason(exc)}); no manifest was written") from None
    except Exception as exc:
        _remove_manifest(out_dir)
        if isinstance(exc, AnonymizerError):
            raise
        raise _task_failure(exc) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if completed:
            shutil.rmtree(out_dir / PARTIAL_DIR, ignore_errors=True)
    return RunResult(out_dir=out_dir, manifest=manifest, stats=total)


def _task_failure(exc: BaseException) -> AnonymizerError:
    """A failed Spark job as an error for people: the task's own words (``TaskError``, which never
    holds a value) when they can be found in what Spark reports, else the kind of failure."""
    text = str(exc)
    marker = "TaskError: "
    if marker in text:
        reason = text.split(marker, 1)[1].splitlines()[0]
        return InputError(f"a Spark task failed: {reason}; no manifest was written")
    return InputError(f"the Spark job failed ({type(exc).__name__}); no manifest was written. See the Spark logs for the failed task")
