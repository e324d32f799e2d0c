"""Reading tracking logs: files and directories, plain or gzip, one event per line.

A line is parsed as JSON after its logger prefix (``2023-05-23 ... logger.py:41 - {``) is cut
off; the prefix is never copied. A line that cannot be parsed yields a reason word, never
its content.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import orjson
from isal import igzip

from .errors import InputError, UsageError, os_reason
from .strictjson import StrictJSONError
from .strictjson import loads as strict_loads

GZIP_MAGIC = b"\x1f\x8b"
_BOM = b"\xef\xbb\xbf"
READ_BUFFER = 1 << 20


# Byte-order marks of encodings other than UTF-8, longest first (UTF-32 LE starts like UTF-16 LE).
_FOREIGN_BOMS = (
    (b"\xff\xfe\x00\x00", "utf32_bom"),
    (b"\x00\x00\xfe\xff", "utf32_bom"),
    (b"\xff\xfe", "utf16_bom"),
    (b"\xfe\xff", "utf16_bom"),
)


def parse_line(line: bytes) -> dict | str:
    """The event on LINE, or the reason it was rejected (``blank``, ``invalid_utf8``, ``invalid_json``,
    ``not_an_object``, ``duplicate_key``, ``too_deep``, ``utf16_bom``, ``utf32_bom``,
    ``utf16_or_utf32`` for the lines after the mark, mostly NUL bytes).

    A UTF-8 byte-order mark is skipped (editors on some systems add one); a UTF-16 or UTF-32 one
    names the encoding, so that a file saved in the wrong encoding says so.
    """
    if line.startswith(_BOM):
        line = line[3:]
    elif line[:1] in (b"\xff", b"\xfe", b"\x00"):
        for bom, reason in _FOREIGN_BOMS:
            if line.startswith(bom):
                return reason
    start = 0
    if line[:1] != b"{":
        line = line.strip()
        if not line:
            return "blank"
        if line[:1] != b"{":
            try:
                orjson.loads(line)
            except orjson.JSONDecodeError:
                pass
            else:
                return "not_an_object"  # valid JSON, but an array, string or number
        start = line.find(b"{")
        if start < 0:
            return _undecodable(line)
    try:
        event = strict_loads(line[start:] if start else line)
    except orjson.JSONDecodeError:
        return _undecodable(line)
    except StrictJSONError as exc:
        return exc.reason
    if type(event) is not dict:
        return "not_an_object"
    return event


def event_key(event: dict) -> tuple[str, str] | None:
    """(event type, event source) as policy rules are keyed: the type is ``event_type``, else
    ``name``; the source is ``event_source``, or "" when it is missing. None when there is no type
    (the line is then rejected as ``missing_event_type``)."""
    event_type = event.get("event_type")
    if event_type is None:
        event_type = event.get("name")
    if type(event_type) is not str or not event_type:
        return None
    source = event.get("event_source")
    return event_type, source if type(source) is str else ""


def _undecodable(line: bytes) -> str:
    if line.count(b"\x00") * 4 >= len(line):
        return "utf16_or_utf32"  # every second or fourth byte zero: text in a wider encoding
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid_utf8"
    return "invalid_json"


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def open_lines(path: Path) -> Iterator[bytes]:
    """The lines of PATH as bytes, decompressing gzip (detected by content, not by name)."""
    if is_gzip(path):
        with igzip.open(path, "rb") as fh:
            yield from fh
    else:
        with open(path, "rb", buffering=READ_BUFFER) as fh:
            yield from fh


def output_name(relative: str) -> str:
    """The package file name for an input: the same relative path, compressed (``.gz``)."""
    return relative if relative.endswith(".gz") else relative + ".gz"


# What a package holds beside its data files: never read as input.
PACKAGE_FILES = ("manifest.json", "manifest.sig")


def _is_package(directory: Path) -> bool:
    return (directory / PACKAGE_FILES[0]).is_file()


def _walk(given: Path, packages: bool) -> list[tuple[Path, str]]:
    """The input files under directory GIVEN, in sorted order, skipping hidden entries (``.partial/``
    among them), manifest files and, unless PACKAGES, packages (directories that hold a manifest.json)."""
    found = []
    for root, dirs, names in os.walk(given, onerror=_unlistable):
        base = Path(root)
        dirs[:] = [d for d in dirs if not d.startswith(".") and (packages or not _is_package(base / d))]
        for name in names:
            path = base / name
            if name.startswith(".") or name in PACKAGE_FILES or not path.is_file():
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
    names: dict[str, Path] = {}
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
    return found
