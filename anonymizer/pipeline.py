"""Batches of lines through one or many worker processes, in order.

Every input file is cut into batches of whole lines (about ``BATCH_BYTES`` each; the cut points
depend on the input alone). Each batch is anonymized and compressed into a gzip member of its own,
and the members are written in input order: concatenated gzip members are one valid gzip file, so
the output is byte-identical whatever the number of workers. Only ``2 × jobs`` batches are in
flight at once, so memory stays bounded whatever the input size.
"""

from __future__ import annotations

import ctypes
import gzip
import hashlib
import multiprocessing
import os
import signal
import sys
import threading
import time
import zlib
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from isal import igzip
from isal.igzip_lib import IsalError

from .engine import WRITTEN, Anonymizer
from .errors import InputError, os_reason
from .reader import is_gzip
from .stats import Stats

BATCH_BYTES = 4 << 20
READ_BLOCK = 4 << 20
GZIP_LEVEL = 2  # isal's default: several times faster than zlib's 6, for a few percent more bytes
EMPTY_GZIP = igzip.compress(b"", compresslevel=GZIP_LEVEL, mtime=0)


class _HashingReader:
    """A raw file object that hashes and counts what is read through it."""

    def __init__(self, raw) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.sha256.update(data)
        self.bytes += len(data)
        return data

    def readinto(self, buffer) -> int:
        count = self.raw.readinto(buffer)
        self.sha256.update(memoryview(buffer)[:count])
        self.bytes += count
        return count

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.raw.close()


@dataclass
class Batch:
    """Whole lines of one input file; ``first_line`` is the 1-based number of the first."""

    file_index: int
    name: str
    first_line: int
    data: bytes
    raw_end: int = 0  # how far into the input file (as stored, compressed or not) the batch reaches


@dataclass
class FileEnd:
    """Marks the end of an input file in the stream of batches."""

    file_index: int
    lines: int
    sha256: str
    bytes: int


def batches(file_index: int, name: str, path: Path) -> Iterator[Batch | FileEnd]:
    """The batches of one input file (plain or gzip, by content), then its ``FileEnd``.

    A file that cannot be read to its end raises ``InputError`` (after the batches read before
    the fault): the run stops rather than account for a file it has only seen part of.
    """
    try:
        raw = open(path, "rb")
    except OSError as exc:  # vanished or made unreadable since the run started
        raise InputError(f"{path}: {_read_problem(exc)}. Check the file, or leave it out of this run") from None
    reader = _HashingReader(raw)
    line = 1
    pending = b""
    try:
        try:
            stream = igzip.IGzipFile(fileobj=reader, mode="rb") if is_gzip(path) else reader
            decoded = 0  # bytes of lines read so far (after decompression)
            while True:
                block = stream.read(READ_BLOCK)
                if not block:
                    break
                pending += block
                decoded += len(block)
                if len(pending) < BATCH_BYTES:
                    continue
                cut = pending.rfind(b"\n") + 1
                if cut == 0:
                    continue  # one very long line: keep reading until it ends
                data, pending = pending[:cut], pending[cut:]
                # How far into the stored file this batch reaches: what was read, less the share
                # still pending, so that progress does not run ahead of the work.
                reached = reader.bytes * (decoded - len(pending)) // decoded
                yield Batch(file_index, name, line, data, reached)
                line += data.count(b"\n")
            if pending:
                yield Batch(file_index, name, line, pending, reader.bytes)
                line += pending.count(b"\n") + (0 if pending.endswith(b"\n") else 1)
                pending = b""
            # Read to the end so that the hash covers the whole file (gzip trailers included).
            while reader.read(READ_BLOCK):
                pass
        except (EOFError, OSError, IsalError, zlib.error) as exc:
            done = line - 1 + pending.count(b"\n")
            where = f"after line {done}" if done else f"within its first {READ_BLOCK >> 20} MB"
            raise InputError(f"{name}: {_read_problem(exc)}, {where}. Repair the file or leave it out of this run") from None
        yield FileEnd(file_index, line - 1, reader.sha256.hexdigest(), reader.bytes)
    finally:
        raw.close()


def _read_problem(exc: BaseException) -> str:
    """What went wrong reading a file, in words that hold none of its content."""
    if isinstance(exc, EOFError):
        return "the gzip data ends early or is corrupt (a file still being written?)"
    if isinstance(exc, (gzip.BadGzipFile, IsalError, zlib.error)):
        return "the gzip data fails its checksum or is corrupt"
    return f"it cannot be read ({os_reason(exc)})"


@dataclass
class BatchResult:
    member: bytes  # a gzip member holding the batch's output lines, or b"" when none was written
    events: int
    stats: Stats


def process_batch(anonymizer: Anonymizer, batch: Batch) -> BatchResult:
    """Anonymize one batch and compress what it writes."""
    lines = batch.data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    anonymize_line = anonymizer.anonymize_line
    name = batch.name
    out = []
    for number, line in enumerate(lines, start=batch.first_line):
        outcome, result = anonymize_line(line, name, number)
        if outcome is WRITTEN:
            out.append(result)
    member = igzip.compress(b"".join(out), compresslevel=GZIP_LEVEL, mtime=0) if out else b""
    return BatchResult(member, len(out), anonymizer.take_stats())


_WORKER: Anonymizer | None = None


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


def _init_worker(anonymizer: Anonymizer, parent: int) -> None:
    global _WORKER
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the pool
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler, inherited by fork
    _exit_with_parent(parent)
    _WORKER = anonymizer


def _work(batch: Batch) -> BatchResult:
    assert _WORKER is not None
    return process_batch(_WORKER, batch)


def default_jobs() -> int:
    """All the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover (not Linux)
        return max(1, os.cpu_count() or 1)


def ordered_results(
    items: Iterator[Batch | FileEnd], anonymizer: Anonymizer, jobs: int
) -> Iterator[tuple[Batch | FileEnd, BatchResult | None]]:
    """Each item with its result (None for a ``FileEnd``), in input order, using JOBS processes."""
    if jobs <= 1:
        for item in items:
            yield item, process_batch(anonymizer, item) if isinstance(item, Batch) else None
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    executor = ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_worker, initargs=(anonymizer, os.getpid()))
    window: deque[tuple[Batch | FileEnd, Future | None]] = deque()
    try:
        for item in items:
            window.append((item, executor.submit(_work, item) if isinstance(item, Batch) else None))
            while len(window) > 2 * jobs:
                done, future = window.popleft()
                yield done, future.result() if future is not None else None
        while window:
            done, future = window.popleft()
            yield done, future.result() if future is not None else None
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


class OutputFile:
    """One package file being written from gzip members; hashed and counted on the way."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.raw = open(path, "wb")
        self.sha256 = hashlib.sha256()
        self.bytes = 0
        self.events = 0

    def write(self, result: BatchResult) -> None:
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

