"""Where ``spark-run`` reads and writes: a local path, or a URI of any store fsspec reaches.

Every open, listing, size, write, move and removal of ``spark-run`` (its driver and its tasks)
goes through here. A local path (anything without a ``scheme://``) takes the same calls as
before URIs were known (``open``, ``os.stat``, ``os.replace``); a URI goes to the fsspec file
system of its scheme: ``s3://``/``s3a://``/``s3n://`` to s3fs, ``gs://`` to gcsfs,
``abfs://``/``abfss://``/``az://`` to adlfs, ``hdfs://`` to pyarrow's HDFS client, ``file://``
to fsspec itself (any other scheme fsspec knows works as fsspec implements it).

Credentials are the file-system libraries' own: each finds them where it always looks (an
instance role or workload identity, the standard environment variables on every executor, its
configuration files); this module never reads, passes or sets one.

Object stores have no rename: ``place`` copies (server-side) and then deletes. A package on a
store is made whole by its manifest, written last (``anonymizer.io.staging``).

Why fsspec and not Hadoop's file systems through the JVM: a Python task has no JVM to call, so
Hadoop could only feed it through ``binaryFiles`` (a whole file in memory, no ranged split) or
``binaryRecords`` (fixed-length records, not lines), and could not write its parts at all; with
fsspec the tasks read byte ranges and write files exactly as they do on a local disk.
"""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path
from typing import Any, BinaryIO

from ..core.errors import UsageError

_URI = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# scheme -> (fsspec's protocol, the package that brings it, imported to check it is there)
SCHEMES = {
    "s3": ("s3", "s3fs"), "s3a": ("s3", "s3fs"), "s3n": ("s3", "s3fs"),
    "gs": ("gs", "gcsfs"), "gcs": ("gs", "gcsfs"),
    "abfs": ("abfs", "adlfs"), "abfss": ("abfs", "adlfs"), "az": ("abfs", "adlfs"),
    "hdfs": ("hdfs", "pyarrow"),
    "file": ("file", "fsspec"),
}
Location = str | Path


def is_uri(location: Location) -> bool:
    """Whether LOCATION is a URI (``scheme://...``) rather than a local path."""
    return isinstance(location, str) and _URI.match(location) is not None


def any_uri(locations) -> bool:
    return any(is_uri(location) for location in locations)


def _scheme(uri: str) -> str:
    return _URI.match(uri).group(1).lower()


def require(locations) -> None:
    """Check, before any work, that the library of every URI's scheme can be imported here; a
    ``UsageError`` that names the package to install if not."""
    for location in locations:
        if is_uri(location):
            _library(location)


def _library(uri: str) -> str:
    """The fsspec protocol for URI, once its library is known to import."""
    scheme = _scheme(uri)
    protocol, package = SCHEMES.get(scheme, (scheme, None))
    wanted = ["fsspec"] + ([package] if package not in (None, "fsspec") else [])
    for name in wanted:
        try:
            importlib.import_module(name)
        except ImportError:
            extra = "the spark extra (pip install 'edx-log-anonymizer[spark]')" if name == "fsspec" else f"pip install {name}"
            raise UsageError(
                f"{uri}: {scheme}:// needs the {name} package, which is not installed: {extra}, "
                "on the driver and on every executor"
            ) from None
    if package is None:
        from fsspec.registry import known_implementations, registry  # noqa: PLC0415  (fsspec is optional)

        if scheme not in known_implementations and scheme not in registry:
            raise UsageError(f"{uri}: {scheme}:// is not a storage scheme known here (s3a://, gs://, abfss://, hdfs://, file://)")
    return protocol


def filesystem(uri: str) -> tuple[Any, str]:
    """The fsspec file system for URI and the path within it (fsspec caches one per process)."""
    import fsspec  # noqa: PLC0415  (an optional extra: only URIs need it)

    protocol = _library(uri)
    return fsspec.core.url_to_fs(protocol + uri[len(_scheme(uri)):])


def join(base: Location, *parts: str) -> Location:
    """BASE / PARTS: a path for a local BASE, a URI for a URI."""
    if not is_uri(base):
        return os.path.join(base, *parts) if isinstance(base, str) else Path(base).joinpath(*parts)
    return "/".join([str(base).rstrip("/"), *parts])


def open_read(location: Location) -> BinaryIO:
    if not is_uri(location):
        return open(location, "rb")
    fs, path = filesystem(location)
    return fs.open(path, "rb")


def open_write(location: Location) -> BinaryIO:
    """A new file at LOCATION; on an object store the object appears, in one piece, when the file
    is closed (so a package's files are placed only once written: see ``place``)."""
    if not is_uri(location):
        return open(location, "wb")
    fs, path = filesystem(location)
    _make_parents(fs, [path])
    return fs.open(path, "wb")


def _make_parents(fs, paths: list[str]) -> None:
    """A file system (file://, hdfs://) needs a file's directory made first; an object store
    (fsspec's asynchronous ones: S3, GCS, Azure) has none, and is spared the requests."""
    if not getattr(fs, "async_impl", False):
        for parent in {fs._parent(path) for path in paths}:
            fs.makedirs(parent, exist_ok=True)


def sync(handle) -> None:
    """Make what was written to HANDLE durable before it is closed (a local file: fsync; a
    store's object is durable once closed)."""
    if hasattr(handle, "fileno"):
        try:
            fileno = handle.fileno()
        except (OSError, ValueError):
            return
        handle.flush()
        os.fsync(fileno)


def head_and_size(location: Location, count: int) -> tuple[bytes, int]:
    """The first COUNT bytes of LOCATION (fewer if it is shorter), and its size."""
    if not is_uri(location):
        with open(location, "rb") as raw:
            head = raw.read(count)
        return head, os.stat(location).st_size
    fs, path = filesystem(location)
    size = fs.size(path)
    return (fs.cat_file(path, 0, min(count, size)) if size else b""), size


def heads_and_sizes(locations: list[str], count: int) -> dict[str, tuple[bytes, int]]:
    """``head_and_size`` of many URIs, a store's asked concurrently (two requests a file, one
    after the other, would make planning an archive of many thousands of files slow). A group
    that fails is left out: the caller asks its files one by one, and names the one at fault."""
    groups: dict[int, tuple[Any, list[tuple[str, str]]]] = {}
    for location in locations:
        fs, path = filesystem(location)
        if getattr(fs, "async_impl", False):
            groups.setdefault(id(fs), (fs, []))[1].append((location, path))
    found: dict[str, tuple[bytes, int]] = {}
    for fs, members in groups.values():
        paths = [path for _, path in members]
        try:
            sizes = fs.sizes(paths)
            wanted = [(path, min(count, size)) for path, size in zip(paths, sizes) if size]
            heads = fs.cat_ranges([p for p, _ in wanted], 0, [end for _, end in wanted], on_error="raise") if wanted else []
        except Exception:  # noqa: BLE001  (asked again one by one, where the error names its file)
            continue
        head_of = dict(zip((p for p, _ in wanted), heads))
        for (location, path), size in zip(members, sizes):
            found[location] = (head_of.get(path, b""), size)
    return found


def kind(location: str) -> str | None:
    """``file``, ``directory`` or None (nothing there) for URI LOCATION."""
    fs, path = filesystem(location)
    if fs.isfile(path):
        return "file"
    return "directory" if fs.isdir(path) else None


def files_under(location: str) -> list[tuple[str, str]]:
    """(URI, path relative to LOCATION with ``/``) of every file under URI LOCATION, unordered."""
    fs, path = filesystem(location)
    root = path.rstrip("/")
    found = []
    for name in fs.find(root, withdirs=False):
        if name.endswith("/"):
            continue  # a directory marker some tools write on object stores
        relative = name[len(root):].lstrip("/")
        found.append((join(location, *relative.split("/")), relative))
    return found


def exists(location: str) -> bool:
    fs, path = filesystem(location)
    return fs.exists(path)


def write_bytes(location: str, data: bytes) -> None:
    with open_write(location) as handle:
        handle.write(data)


def remove(location: str) -> None:
    fs, path = filesystem(location)
    if fs.exists(path):
        fs.rm_file(path)


def remove_tree(location: str) -> None:
    """Remove everything under URI LOCATION (nothing there is not an error)."""
    fs, path = filesystem(location)
    fs.invalidate_cache()  # files written by the tasks, elsewhere, are not in this process's listings
    if fs.exists(path):
        fs.rm(path, recursive=True)


def place(moves: list[tuple[str, str]]) -> None:
    """Move each (staged URI, final URI) of MOVES. A file system renames; an object store has no
    rename, so every file is copied (server-side, concurrently) and the staged copies deleted."""
    if not moves:
        return
    fs, _ = filesystem(moves[0][0])
    sources = [filesystem(source)[1] for source, _ in moves]
    targets = [filesystem(target)[1] for _, target in moves]
    _make_parents(fs, targets)
    if getattr(fs, "async_impl", False):
        fs.copy(sources, targets)
        fs.rm(sources)
    else:
        for source, target in zip(sources, targets):
            fs.mv(source, target)


def overlaps(inside: Location, outer: Location) -> bool:
    """Whether INSIDE is OUTER or lies under it (as URIs of one store, or local paths)."""
    if is_uri(inside) != is_uri(outer):
        return False
    if not is_uri(inside):
        a, b = Path(inside).resolve(), Path(outer).resolve()
        return a == b or b in a.parents
    fs_a, a = filesystem(inside)
    fs_b, b = filesystem(outer)
    a, b = a.rstrip("/"), b.rstrip("/")
    return type(fs_a) is type(fs_b) and (a == b or a.startswith(b + "/"))


def refuse_overlap(inputs, out: Location) -> None:
    """An output inside an input directory would be read back as input, and an input inside the
    output would be deleted by --force: refuse both (``runner._refuse_overlap`` for URIs)."""
    for given in inputs:
        if overlaps(out, given) and (is_uri(given) or Path(given).is_dir()):
            raise UsageError(f"the output {out} is inside the input {given}; choose an output outside it")
        if overlaps(given, out):
            raise UsageError(f"the input {given} is inside the output {out}; choose an output that holds no input")
