"""Batches of lines through one or many worker processes, in order.

Every input file is cut into batches of whole lines by ``anonymizer.io.inputs`` (the cut points
depend on the input alone). Each batch goes through the core's batch function
(``Anonymizer.anonymize_batch``) and what it writes is compressed into a gzip member of its own,
and the members are written in input order: concatenated gzip members are one valid gzip file, so
the output is byte-identical whatever the number of workers. Only ``2 × jobs`` batches are in
flight at once, so memory stays bounded whatever the input size.
"""

from __future__ import annotations

import ctypes
import hashlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from isal import igzip

from ..core.engine import Anonymizer
from .inputs import Batch, FileEnd
from .signals import held_signals
from ..core.stats import Stats

GZIP_LEVEL = 2  # isal's default: several times faster than zlib's 6, for a few percent more bytes
EMPTY_GZIP = igzip.compress(b"", compresslevel=GZIP_LEVEL, mtime=0)


@dataclass
class PackedBatch:
    """A batch's output as a gzip member, with its counts; by place, its output as one gzip
    member per (course, day) of its routing keys, in the order each place first occurs."""

    member: bytes  # a gzip member holding the batch's output lines, or b"" when none was written
    events: int
    stats: Stats
    places: list[tuple[tuple[str | None, str | None], bytes, int]] | None = None  # ((course, day), member, events)


def _compress(lines: list[bytes]) -> bytes:
    return igzip.compress(b"".join(lines), compresslevel=GZIP_LEVEL, mtime=0)


def process_batch(anonymizer: Anonymizer, batch: Batch, by_place: bool = False) -> PackedBatch:
    """Anonymize one batch (the core's batch function) and compress what it writes: as one
    member, or, BY_PLACE, one member per (course, day), each holding its lines in input order."""
    result = anonymizer.anonymize_batch(batch.data, batch.first_line, name=batch.name)
    if not by_place:
        out = result.written()
        return PackedBatch(_compress(out) if out else b"", len(out), result.stats)
    groups: dict[tuple[str | None, str | None], list[bytes]] = {}
    for line, route in result.routed():
        place = (route.course_id, route.date)
        group = groups.get(place)
        if group is None:
            group = groups[place] = []
        group.append(line)
    places = [(place, _compress(lines), len(lines)) for place, lines in groups.items()]
    return PackedBatch(b"", sum(len(lines) for lines in groups.values()), result.stats, places)


class AnonymizeTask:
    """What a worker does to a batch in a run: ``process_batch`` with the run's anonymizer."""

    def __init__(self, anonymizer: Anonymizer, by_place: bool = False) -> None:
        self.anonymizer = anonymizer
        self.by_place = by_place

    def __call__(self, batch: Batch) -> PackedBatch:
        return process_batch(self.anonymizer, batch, self.by_place)


_TASK: Callable[[Batch], Any] | None = None


PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
WATCHDOG_SECONDS = 1.0


def _exit_with_parent(parent: int) -> None:
    """Make this worker end when PARENT does, even by ``kill -9``: orphans would go on computing.

    On Linux the kernel sends SIGKILL when the parent dies (``PR_SET_PDEATHSIG``). Everywhere, a
    watchdog thread also checks the parent's process id, which changes when the parent is gone.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover (no prctl): the watchdog remains
            pass
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(WATCHDOG_SECONDS)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def _init_worker(task: Callable[[Batch], Any], parent: int) -> None:
    global _TASK
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the pool
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler, inherited by fork
    _exit_with_parent(parent)
    _TASK = task


def _work(batch: Batch) -> Any:
    assert _TASK is not None
    return _TASK(batch)


def default_jobs() -> int:
    """All the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover (not Linux)
        return max(1, os.cpu_count() or 1)


def ordered_results(
    items: Iterator[Batch | FileEnd], anonymizer: Anonymizer, jobs: int, by_place: bool = False
) -> Iterator[tuple[Batch | FileEnd, PackedBatch | None]]:
    """Each item with its result (None for a ``FileEnd``), in input order, using JOBS processes;
    BY_PLACE: each batch's output cut by (course, day), see ``process_batch``."""
    return ordered_map(items, AnonymizeTask(anonymizer, by_place), jobs)


def ordered_map(items: Iterator[Batch | FileEnd], task: Callable[[Batch], Any], jobs: int) -> Iterator[tuple[Batch | FileEnd, Any]]:
    """Each item with TASK(item) (None for a ``FileEnd``), in input order, using JOBS processes
    (TASK is a picklable callable; each worker gets it once)."""
    if jobs <= 1:
        for item in items:
            yield item, task(item) if isinstance(item, Batch) else None
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with held_signals():
        executor = ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_worker, initargs=(task, os.getpid()))
    window: deque[tuple[Batch | FileEnd, Future | None]] = deque()
    try:
        for item in items:
            future = None
            if isinstance(item, Batch):
                with held_signals():  # submit may fork a worker: an interrupt inside the fork is lost
                    future = executor.submit(_work, item)
            window.append((item, future))
            while len(window) > 2 * jobs:
                done, future = window.popleft()
                yield done, future.result() if future is not None else None
        while window:
            done, future = window.popleft()
            yield done, future.result() if future is not None else None
    finally:
        with held_signals():
            executor.shutdown(wait=True, cancel_futures=True)


class OutputFile:
    """One package file being written from gzip members; hashed and counted on the way."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.raw = open(path, "wb")
        self.sha256 = hashlib.sha256()
        self.bytes = 0
        self.events = 0

    def write(self, result: PackedBatch) -> None:
        if result.member:
            self._write(result.member)
            self.events += result.events

    def _write(self, data: bytes) -> None:
        self.raw.write(data)
        self.sha256.update(data)
        self.bytes += len(data)

    def close(self) -> None:
        if self.bytes == 0:
            self._write(EMPTY_GZIP)  # a file with no events is still a valid (empty) gzip file
        self.raw.flush()
        os.fsync(self.raw.fileno())
        self.raw.close()



class AppendedFile:
    """One package file made of gzip members appended over the run (the course-day layout, where
    a file takes lines from many batches and inputs); hashed and counted on the way. It is opened
    for each append, so that a run with thousands of courses and days holds no file open."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sha256 = hashlib.sha256()
        self.bytes = 0
        self.events = 0
        path.write_bytes(b"")

    def append(self, member: bytes, events: int) -> None:
        with open(self.path, "ab") as fh:
            fh.write(member)
        self.sha256.update(member)
        self.bytes += len(member)
        self.events += events

    def close(self) -> None:
        with open(self.path, "rb+") as fh:
            os.fsync(fh.fileno())
