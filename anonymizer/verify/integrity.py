"""Integrity: the files of a package against its manifest (each listed file present with its
size and sha256, no other file in the package), and reading each file (gzip decompressed, Parquet
rows as JSON lines) while hashing what is read from disk."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from isal import isal_zlib

from ..package.manifest import MANIFEST_NAME
from ..core.errors import UsageError
from ..io.inputs import GZIP_MAGIC
from ..io.parquet import INSTALL, PARQUET_MAGIC, read_as_lines
from .report import IntegrityProblem, Report

READ_SIZE = 1 << 20


def listed_files(manifest: dict, directory: Path, report: Report) -> dict[str, dict]:
    listed: dict[str, dict] = {}
    entries = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(entries, list):
        report.integrity.append(IntegrityProblem(MANIFEST_NAME, "has no list of files"))
        return listed
    documents = manifest.get("documents", [])  # the codebook: README.md and codebook.json
    if not isinstance(documents, list):
        report.integrity.append(IntegrityProblem(MANIFEST_NAME, "has a list of documents that is not a list"))
        documents = []
    entries = entries + documents
    root = directory.resolve()
    for entry in entries:
        path = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(path, str) or not path:
            report.integrity.append(IntegrityProblem(MANIFEST_NAME, "lists a file without a path"))
            continue
        target = (directory / path).resolve()
        if root not in target.parents:
            report.integrity.append(IntegrityProblem(MANIFEST_NAME, "lists a file outside the package"))
            continue
        listed[Path(path).as_posix()] = entry
    return listed


class _Corrupt(Exception):
    """The data of a gzip file cannot be decompressed; the message says how (never with data)."""


class _Gunzip:
    """Decompresses a gzip stream of one member or several, fed block by block."""

    def __init__(self) -> None:
        self._decompressor = isal_zlib.decompressobj(31)
        self.between_members = False

    def feed(self, data: bytes) -> bytes:
        out = []
        while data:
            if self.between_members:
                if data[:2] != GZIP_MAGIC:
                    raise _Corrupt("has data after its last gzip member")
                self._decompressor = isal_zlib.decompressobj(31)
                self.between_members = False
            try:
                out.append(self._decompressor.decompress(data))
            except isal_zlib.error:
                raise _Corrupt("is not a readable gzip file") from None
            if not self._decompressor.eof:
                break
            data = self._decompressor.unused_data
            self.between_members = True
        return b"".join(out)


def read_file(path: Path, digest) -> Iterator[bytes | str]:
    """The bytes of PATH, decompressed when it is gzip, hashing what is read from disk. A problem
    with the data is yielded as a str; what follows it is hashed but not scanned."""
    with open(path, "rb") as fh:
        block = fh.read(READ_SIZE)
        if block[:4] == PARQUET_MAGIC:
            yield from _read_parquet(fh, block, path, digest)
            return
        gunzip = _Gunzip() if block[:2] == GZIP_MAGIC else None
        broken = False
        while block:
            digest.update(block)
            if gunzip is None:
                yield block
            elif not broken:
                try:
                    yield gunzip.feed(block)
                except _Corrupt as problem:
                    broken = True
                    yield str(problem)
            block = fh.read(READ_SIZE)
        if gunzip is not None and not broken and not gunzip.between_members:
            yield "is truncated: its gzip stream does not end"




def _read_parquet(fh, block: bytes, path: Path, digest) -> Iterator[bytes | str]:
    """A Parquet file: hashed whole from disk, then its rows as JSON lines (every column, the
    JSON ones decoded), so that the scan reads them as it reads a JSON-lines file."""
    while block:
        digest.update(block)
        block = fh.read(READ_SIZE)
    try:
        yield from read_as_lines(path)
    except UsageError:
        yield f"is a Parquet file, which cannot be scanned without pyarrow ({INSTALL})"
    except ValueError as problem:
        yield str(problem)


def present_files(directory: Path) -> list[str]:
    """The files (and symbolic links) in DIRECTORY, as sorted relative POSIX paths."""
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file() or p.is_symlink())


def check_listed(relative: str, path: Path, entry: dict, sha256: str, report: Report) -> None:
    """Whether the file at PATH has the size and sha256 its manifest ENTRY lists."""
    if entry.get("bytes") != path.stat().st_size:
        report.integrity.append(IntegrityProblem(relative, "has a size other than the manifest lists"))
    if entry.get("sha256") != sha256:
        report.integrity.append(IntegrityProblem(relative, "has a sha256 other than the manifest lists"))
