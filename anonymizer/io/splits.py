"""Ordered splits of input files: the batches of a file, found by many readers at once.

A single-machine run reads each input from its start and cuts it into batches of whole lines
(``anonymizer.io.inputs.batches``: a cut after the last newline before each multiple of
``READ_BLOCK`` of the decoded stream). A cluster reads a large file in pieces, each on another
machine. A split is one such piece of a plain file: the bytes ``[start, end)``, with ``start`` and
``end`` multiples of ``READ_BLOCK`` (``end`` may be the end of the file). The reader of a split
makes exactly the batches that the single-machine reader would make and that *begin* in its
split's range, or whose cut falls in it: it starts at the cut at or before ``start`` (found by
looking back for the last newline before it) and replays the same cutter from there. So every
batch is made once, by one split, with the same bytes as on one machine, and the members written
from them are the same.

A gzip file cannot be entered in the middle: it is one split, read from its start. Line numbers
come from the newlines of the batches made by a file's earlier splits, counted by a first pass
(``count_split``).

A path is a local path or a URI; every read goes through ``anonymizer.io.storage`` (a split of
a file on an object store is a ranged read).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..core.errors import InputError
from . import storage
from .inputs import GZIP_MAGIC, READ_BLOCK, Batch, FileEnd, WholeLines, _read_problem, batches

# Splits are whole numbers of read blocks, so that a split's cuts fall where one reader's would.
DEFAULT_SPLIT_BYTES = 32 * READ_BLOCK  # 128 MiB, as HDFS blocks are
LOOK_BACK = 1 << 20  # how far back a reader looks at a time for the newline before its split


@dataclass(frozen=True)
class Split:
    """Bytes ``[start, end)`` of input FILE_INDEX (named NAME, at PATH: a local path or a URI); a
    gzip file is one split with ``end`` None (read to its end)."""

    file_index: int
    index: int  # the split's place in its file, from 0
    name: str
    path: str
    start: int
    end: int | None
    gzipped: bool


@dataclass
class SplitCount:
    """What the first pass found in a split: the newlines of its batches."""

    split: Split
    newlines: int
    last_without_newline: bool  # the file's last line ends without a newline (counted as a line)


def plan_splits(sources: list[tuple[Path | str, str]], split_bytes: int = DEFAULT_SPLIT_BYTES) -> list[Split]:
    """The splits of every input, in input order: plain files cut every SPLIT_BYTES (rounded to
    a whole number of read blocks), gzip files whole."""
    step = max(READ_BLOCK, split_bytes // READ_BLOCK * READ_BLOCK)
    splits: list[Split] = []
    probed = storage.heads_and_sizes([path for path, _ in sources if storage.is_uri(path)], len(GZIP_MAGIC))
    for file_index, (path, name) in enumerate(sources):
        try:
            head, size = probed[path] if path in probed else storage.head_and_size(path, len(GZIP_MAGIC))
            gzipped = head == GZIP_MAGIC
        except OSError as exc:
            raise InputError(f"{name}: {_read_problem(exc)}. Check the file, or leave it out of this run") from None
        except Exception as exc:  # noqa: BLE001  (a store's own errors, such as missing credentials: their kind, not their text)
            raise InputError(f"{name}: it cannot be read ({type(exc).__name__}). Check the URI and the storage's credentials") from None
        if gzipped or size <= step:
            splits.append(Split(file_index, 0, name, str(path), 0, None, gzipped))
            continue
        starts = range(0, size, step)
        for index, start in enumerate(starts):
            end = start + step if start + step < size else None
            splits.append(Split(file_index, index, name, str(path), start, end, False))
    return splits


def _cut_at_or_before(raw, start: int) -> int:
    """Where the batch holding byte START begins: just after the last newline before START (0
    when there is none). A batch cut is always there (``WholeLines`` cuts after the last newline
    of what it holds), and never between it and START."""
    position = start
    while position > 0:
        low = max(0, position - LOOK_BACK)
        raw.seek(low)
        block = raw.read(position - low)
        found = block.rfind(b"\n")
        if found >= 0:
            return low + found + 1
        position = low
    return 0


def split_batches(split: Split, first_line: int) -> Iterator[Batch | FileEnd]:
    """The batches SPLIT makes, with line numbers from FIRST_LINE (the number of the first line of
    its first batch: 1 + the newlines of the batches that the file's earlier splits make). A file
    in one split is read as one reader reads it, and ends with its ``FileEnd``."""
    if split.start == 0 and split.end is None:
        yield from batches(split.file_index, split.name, split.path)
        return
    try:
        raw = storage.open_read(split.path)
    except OSError as exc:
        raise InputError(f"{split.name}: {_read_problem(exc)}. Check the file, or leave it out of this run") from None
    with raw:
        try:
            cut = _cut_at_or_before(raw, split.start)
            cutter = WholeLines(READ_BLOCK)
            raw.seek(cut)
            cutter.pending = raw.read(split.start - cut)  # what the one reader holds at START
            line = first_line
            position = split.start
            while split.end is None or position < split.end:
                block = raw.read(READ_BLOCK)
                if not block:
                    break
                position += len(block)
                data = cutter.feed(block)
                if data is not None:
                    yield Batch(split.file_index, split.name, line, data, position)
                    line += data.count(b"\n")
            if split.end is None:  # the file's last split: what is left is the last batch
                data = cutter.end()
                if data:
                    yield Batch(split.file_index, split.name, line, data, position)
        except OSError as exc:
            raise InputError(f"{split.name}: {_read_problem(exc)}. Repair the file or leave it out of this run") from None


def count_split(split: Split, readers=()) -> SplitCount:
    """The first pass over SPLIT: the newlines of the batches it makes (so that the next split of
    the file knows its first line number), and whether its file's last line lacks a newline. Each
    of READERS (a recording ``Learner``, a ``GroupCounter``) reads the lines too."""
    newlines = 0
    last_open = False
    for item in split_batches(split, 1):  # line numbers do not matter here
        if isinstance(item, Batch):
            newlines += item.data.count(b"\n")
            last_open = not item.data.endswith(b"\n")
            if readers:
                lines = _lines(item.data)
                for reader in readers:
                    reader.add_lines(lines)
    return SplitCount(split, newlines, last_open and split.end is None)


def _lines(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def file_digest(path: str) -> tuple[str, int]:
    """The sha256 and size of a whole input file, as stored (for the manifest)."""
    digest = hashlib.sha256()
    size = 0
    with storage.open_read(path) as raw:
        while block := raw.read(READ_BLOCK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size
