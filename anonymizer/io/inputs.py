"""Input files: found in directories, plain or gzip (by content), hashed as read, and cut
into batches of whole lines.

This is the one reader of raw input for every driver (``run``, the learned roster, ``inspect``,
``policy check``) and the one whole-line chunker (``verify`` cuts decompressed package data with
``WholeLines`` too). A file that cannot be read to its end raises ``InputError`` naming the file
and how far it was read, never its content.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from isal import igzip
from isal.igzip_lib import IsalError

from ..core.errors import InputError, UsageError, os_reason
from . import storage

GZIP_MAGIC = b"\x1f\x8b"
BATCH_BYTES = 4 << 20
READ_BLOCK = 4 << 20


class WholeLines:
    """Cuts a stream of blocks into chunks of whole lines of at least SIZE bytes (the last may be
    shorter). A line longer than MAX_LINE (when given) is cut where it stands rather than held
    whole. The cut points depend on the data alone, so the chunks are the same on every run."""

    def __init__(self, size: int = BATCH_BYTES, max_line: int | None = None) -> None:
        self.size = size
        self.max_line = max_line
        self.pending = b""

    def feed(self, block: bytes) -> bytes | None:
        """Take BLOCK; return a chunk of whole lines when one is ready, else None."""
        pending = self.pending = self.pending + block
        if len(pending) < self.size:
            return None
        cut = pending.rfind(b"\n") + 1
        if cut == 0:
            if self.max_line is None or len(pending) < self.max_line:
                return None  # one very long line: keep reading until it ends
            cut = len(pending)
        chunk, self.pending = pending[:cut], pending[cut:]
        return chunk

    def end(self) -> bytes:
        """What is left at the end of the stream (the last line may lack its newline)."""
        rest, self.pending = self.pending, b""
        return rest


class _HashingReader:
    """A raw file object that counts (and, with HASH, hashes) what is read through it."""

    def __init__(self, raw, hash: bool = True) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256() if hash else None
        self.bytes = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        if self.sha256 is not None:
            self.sha256.update(data)
        self.bytes += len(data)
        return data

    def readinto(self, buffer) -> int:
        count = self.raw.readinto(buffer)
        if self.sha256 is not None:
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


def batches(file_index: int, name: str, path: Path | str, *, hash: bool = True) -> Iterator[Batch | FileEnd]:
    """The batches of one input file (plain or gzip, by content), then its ``FileEnd`` (whose
    ``sha256`` is empty without HASH). PATH is a local path or, for ``spark-run``, a URI
    (``anonymizer.io.storage``).

    A file that cannot be read to its end raises ``InputError`` (after the batches read before
    the fault): the run stops rather than account for a file it has only seen part of.
    """
    try:
        raw = storage.open_read(path) if storage.is_uri(path) else open(path, "rb")
    except OSError as exc:  # vanished or made unreadable since the run started
        raise InputError(f"{path}: {_read_problem(exc)}. Check the file, or leave it out of this run") from None
    reader = _HashingReader(raw, hash)
    cutter = WholeLines(BATCH_BYTES)
    line = 1
    try:
        try:
            gzipped = raw.read(2) == GZIP_MAGIC  # by content, from the file as opened: one open, no race
            raw.seek(0)
            stream = igzip.IGzipFile(fileobj=reader, mode="rb") if gzipped else reader
            decoded = 0  # bytes of lines read so far (after decompression)
            while True:
                block = stream.read(READ_BLOCK)
                if not block:
                    break
                decoded += len(block)
                data = cutter.feed(block)
                if data is None:
                    continue
                # How far into the stored file this batch reaches: what was read, less the share
                # still pending, so that progress does not run ahead of the work.
                reached = reader.bytes * (decoded - len(cutter.pending)) // decoded
                yield Batch(file_index, name, line, data, reached)
                line += data.count(b"\n")
            data = cutter.end()
            if data:
                yield Batch(file_index, name, line, data, reader.bytes)
                line += data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
            # Read to the end so that the hash covers the whole file (gzip trailers included).
            while reader.read(READ_BLOCK):
                pass
        except (EOFError, OSError, IsalError, zlib.error) as exc:
            done = line - 1 + cutter.pending.count(b"\n")
            where = f"after line {done}" if done else f"within its first {READ_BLOCK >> 20} MB"
            raise InputError(f"{name}: {_read_problem(exc)}, {where}. Repair the file or leave it out of this run") from None
        yield FileEnd(file_index, line - 1, reader.sha256.hexdigest() if hash else "", reader.bytes)
    finally:
        raw.close()


def _read_problem(exc: BaseException) -> str:
    """What went wrong reading a file, in words that hold none of its content."""
    if isinstance(exc, EOFError):
        return "the gzip data ends early or is corrupt (a file still being written?)"
    if isinstance(exc, (gzip.BadGzipFile, IsalError, zlib.error)):
        return "the gzip data fails its checksum or is corrupt"
    return f"it cannot be read ({os_reason(exc)})"


def split_lines(data: bytes) -> list[bytes]:
    """The lines of a batch, without their newlines (a last line without one included)."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def read_batches(path: Path, name: str | None = None) -> Iterator[Batch]:
    """The batches of PATH, not hashed: for the drivers that only read (``inspect``, ``policy
    check``, the learned roster, ``verify``'s harvest)."""
    for item in batches(0, name or Path(path).name, Path(path), hash=False):
        if isinstance(item, Batch):
            yield item


def open_lines(path: Path, name: str | None = None) -> Iterator[bytes]:
    """The lines of PATH (plain or gzip), without their newlines."""
    for batch in read_batches(path, name):
        yield from split_lines(batch.data)


def output_name(relative: str) -> str:
    """The package file name for an input: the same relative path, compressed (``.gz``)."""
    return relative if relative.endswith(".gz") else relative + ".gz"


# What a package holds beside its data files: never read as input.
PACKAGE_FILES = ("manifest.json", "manifest.sig")
# The codebook a package holds (``anonymizer.package.codebook``): skipped inside a package only,
# since elsewhere a file of that name is the user's and is read like any other.
PACKAGE_DOCUMENTS = ("README.md", "codebook.json")


def _is_package(directory: Path) -> bool:
    return (directory / PACKAGE_FILES[0]).is_file()


def _walk(given: Path, packages: bool) -> list[tuple[Path, str]]:
    """The input files under directory GIVEN, in sorted order, skipping hidden entries (``.partial/``
    among them), manifest files and, unless PACKAGES, packages (directories that hold a manifest.json)."""
    found = []
    for root, dirs, names in os.walk(given, onerror=_unlistable):
        base = Path(root)
        dirs[:] = [d for d in dirs if not d.startswith(".") and (packages or not _is_package(base / d))]
        documents = PACKAGE_DOCUMENTS if _is_package(base) else ()
        for name in names:
            path = base / name
            if name.startswith(".") or name in PACKAGE_FILES or name in documents or not path.is_file():
                continue
            found.append(path)
    return [(path, path.relative_to(given).as_posix()) for path in sorted(found)]


def _unlistable(exc: OSError) -> None:
    raise InputError(f"{exc.filename}: the directory cannot be listed ({os_reason(exc)})")


def collect_inputs(inputs: list[Path], packages: bool = False) -> list[tuple[Path, str]]:
    """(path, relative name) for every input file; directories are walked in sorted order.

    A file given directly is named by its base name; a file found under a directory by its path
    relative to that directory. Hidden files and manifest files are skipped, and so are packages
    (directories holding a manifest.json), which are refused when given directly, unless PACKAGES
    (``inspect`` and ``policy check`` may look into a package's data files). Two inputs with the
    same name are an error.
    """
    found = _collect_local(inputs, packages)
    _check_names(found)
    return found


def _collect_local(inputs: list[Path], packages: bool) -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    for given in inputs:
        given = Path(given)
        if given.is_dir():
            if _is_package(given) and not packages:
                raise UsageError(f"{given}: holds a {PACKAGE_FILES[0]}, so it is an anonymized package, not raw tracking logs")
            found.extend(_walk(given, packages))
        elif given.is_file():
            if given.name in PACKAGE_FILES:
                raise UsageError(f"{given}: a package's {given.name}, not a tracking log")
            found.append((given, given.name))
        else:
            raise UsageError(f"{given}: no such file or directory")
    return found


def collect_locations(inputs: list[Path | str]) -> list[tuple[Path | str, str]]:
    """``collect_inputs`` for inputs that may be URIs (``spark-run``): a URI names a file or a
    prefix (a directory), walked by the same rules as a local directory, in the same order."""
    if not storage.any_uri(inputs):
        return collect_inputs([Path(given) for given in inputs])
    found: list[tuple[Path | str, str]] = []
    for given in inputs:
        found.extend(_walk_uri(given) if storage.is_uri(given) else _collect_local([Path(given)], False))
    _check_names(found)
    return found


def _walk_uri(given: str) -> list[tuple[str, str]]:
    """The input files of URI GIVEN, as ``_walk`` finds them in a local directory: hidden entries,
    manifest files and packages left out, sorted as paths (part by part)."""
    try:
        kind = storage.kind(given)
        if kind == "file":
            name = given.rstrip("/").rsplit("/", 1)[-1]
            if name in PACKAGE_FILES:
                raise UsageError(f"{given}: a package's {name}, not a tracking log")
            return [(given, name)]
        listed = storage.files_under(given) if kind == "directory" else []
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001  (each storage library has its own errors: no credentials, access denied)
        raise InputError(f"{given}: cannot be listed ({type(exc).__name__}). Check the URI and the storage's credentials") from None
    if not listed:
        raise UsageError(f"{given}: no such file or directory")
    relatives = [relative.split("/") for _, relative in listed]
    packages = {tuple(parts[:-1]) for parts in relatives if parts[-1] == PACKAGE_FILES[0]}
    if () in packages:
        raise UsageError(f"{given}: holds a {PACKAGE_FILES[0]}, so it is an anonymized package, not raw tracking logs")
    found = []
    for (location, relative), parts in zip(listed, relatives):
        if any(p.startswith(".") for p in parts) or parts[-1] in PACKAGE_FILES:
            continue
        if any(tuple(parts[:depth]) in packages for depth in range(1, len(parts))):
            continue  # inside a package
        found.append((tuple(parts), location, relative))
    return [(location, relative) for _, location, relative in sorted(found)]


def _check_names(found: list[tuple[Path | str, str]]) -> None:
    """Two inputs with the same output name are an error; no input at all is one too."""
    names: dict[str, Path | str] = {}
    for path, relative in found:
        name = output_name(relative)
        if name in names:
            raise UsageError(
                f"{names[name]} and {path} would both be written to the package as {name}: "
                "rename one of them, or anonymize them in separate runs"
            )
        names[name] = path
    if not found:
        raise UsageError("no input files found")
