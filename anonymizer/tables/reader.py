"""Reading the platform's table exports: which table a file holds, its format, and its rows.

Three formats, detected per file from its first line (plain or gzip, detected by content):

- ``\\x01``-separated, without a header: the old research pipeline's exports of ``auth_user`` and
  ``auth_userprofile``; the columns are the table's ``layout`` in the policy.
- tab-separated: with a header row when every field of the first line is a plain lower-case name
  and one of them is a column the policy names (the ``.sql`` files of edX data packages), else
  without one (the columns are the ``layout``).
  MySQL's escapes (``\\t``, ``\\n``, ``\\r``, ``\\\\``, ``\\0``) are decoded and ``\\N`` is null.
- CSV with a header row (anything else).

The table is named by the file name: the longest table name (or alias) of the policy that stands
in it between separators (``auth_user.tsv``, ``MITx-6.002x-2013-auth_userprofile-prod-analytics.sql``).
A row is a dict of column name to string (None for null); a row that cannot be read is rejected
with its line and a reason, never its content.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..core.errors import InputError, os_reason

GZIP_MAGIC = b"\x1f\x8b"
_HEADER_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
_NULLS = {"\\N", "NULL"}
_MYSQL_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "\\": "\\", "0": "\0", "N": None}
_ESCAPE = re.compile(r"\\(.)")
_SURROGATE = re.compile("[\udc80-\udcff]")
# csv's default field limit (128 KiB) is below a large courseware_studentmodule state.
csv.field_size_limit(1 << 26)

X01, TSV, TSV_HEADER, CSV, EMPTY = "x01", "tsv", "tsv-header", "csv", "empty"


class TableFileError(InputError):
    """A table file that cannot be read at all (no header, no layout, unreadable)."""


@dataclass
class TableFile:
    format: str
    columns: list[str]  # as the header or the layout names them (extra trailing fields: ``_extra_N``)
    rows: Iterator[Row]


@dataclass
class Row:
    line: int
    values: dict[str, str | None] | None  # None: rejected
    reason: str = ""


def table_of(path: Path, names: list[str]) -> str | None:
    """The longest of NAMES that stands in PATH's file name between separators, or None."""
    base = path.name.lower()
    for suffix in (".gz",):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    found = [name for name in names if re.search(rf"(?<![a-z0-9_]){re.escape(name.lower())}(?![a-z0-9_])", base)]
    return max(found, key=len) if found else None


def _open_text(path: Path):
    try:
        raw = open(path, "rb")
        gzipped = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
    except OSError as exc:
        raise TableFileError(f"{path}: cannot read the table ({os_reason(exc)})") from None
    stream = gzip.GzipFile(fileobj=raw) if gzipped else raw
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    return text


def _is_header(fields: list[str]) -> bool:
    return all(_HEADER_NAME.match(field.strip()) for field in fields)


def _unescape_mysql(value: str) -> str | None:
    if value in _NULLS:
        return None
    if "\\" not in value:
        return value
    return _ESCAPE.sub(lambda m: _MYSQL_ESCAPES.get(m.group(1)) or m.group(0), value)


def _null(value: str) -> str | None:
    return None if value in _NULLS else value


def open_table(path: Path, layout: list[str] | None, known: set[str] | frozenset[str] = frozenset()) -> TableFile:
    """The format, columns and rows of the table file at PATH; LAYOUT: the columns of a headerless
    export; KNOWN: the columns the policy names, of which a header row names at least one (so that
    a first row of values is never taken for column names)."""
    text = _open_text(path)
    try:
        first = text.readline()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        text.close()
        raise TableFileError(f"{path}: cannot read the table ({_why(exc)})") from None
    if first == "":
        text.close()
        return TableFile(EMPTY, [], iter(()))  # a table without rows, exported as an empty file
    if not first.strip():
        text.close()
        raise TableFileError(f"{path}: the first line is empty; expected a header row or the table's first row")
    if "\x01" in first:
        return TableFile(X01, _layout(path, text, layout), _delimited(path, text, first, "\x01", layout, True))
    if "\t" in first:
        fields = first.rstrip("\r\n").split("\t")
        if _is_header(fields) and known & {f.strip() for f in fields}:
            header = _unique(path, text, [f.strip() for f in fields])
            return TableFile(TSV_HEADER, header, _delimited(path, text, None, "\t", header, False))
        return TableFile(TSV, _layout(path, text, layout), _delimited(path, text, first, "\t", layout, True))
    header = _csv_header(path, text, first, known)
    return TableFile(CSV, header, _csv_rows(path, text, header))


def _layout(path: Path, text, layout: list[str] | None) -> list[str]:
    if layout is None:
        text.close()
        raise TableFileError(
            f"{path}: an export without a header row, and the policy gives no 'layout' (column order) for its table; "
            "export it with a header row, or add the layout to the table policy"
        )
    return list(layout)


def _unique(path: Path, text, columns: list[str]) -> list[str]:
    if len(set(columns)) != len(columns):
        text.close()
        raise TableFileError(f"{path}: line 1: a column is named twice in the header")
    return columns


def _why(exc: BaseException) -> str:
    return os_reason(exc) if isinstance(exc, OSError) and exc.strerror else "not a readable gzip file" if isinstance(exc, (EOFError, gzip.BadGzipFile)) else type(exc).__name__


def _columns_for(fields: list[str], columns: list[str]) -> list[str]:
    """COLUMNS for a row of FIELDS: later exports add columns at the end, which no layout names
    (they are dropped as unnamed)."""
    return columns + [f"_extra_{n}" for n in range(len(columns) + 1, len(fields) + 1)]


def _delimited(path: Path, text, first: str | None, separator: str, columns: list[str], extend: bool) -> Iterator[Row]:
    """Rows of a delimited file; FIRST: its first line when it is a row (not a header); EXTEND: a
    headerless export, whose later versions add columns at the end."""
    mysql = separator == "\t"
    lines = _chain([first], text) if first is not None else text
    number = 1 if first is not None else 2  # a header row is line 1
    try:
        for line in lines:
            yield _delimited_row(line, number, separator, columns, extend, mysql)
            number += 1
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise TableFileError(f"{path}: cannot read the table to its end, after line {number - 1} ({_why(exc)})") from None
    finally:
        text.close()


def _chain(first: list[str], text) -> Iterator[str]:
    yield from first
    yield from text


def _delimited_row(line: str, number: int, separator: str, columns: list[str], extend: bool, mysql: bool) -> Row:
    line = line.rstrip("\r\n") if mysql or separator == "\x01" else line
    if not line.strip():
        return Row(number, None, "empty line")
    if _SURROGATE.search(line):
        return Row(number, None, "not valid UTF-8")
    fields = line.split(separator)
    if len(fields) < len(columns) or (len(fields) > len(columns) and not extend):
        return Row(number, None, f"expected {len(columns)} fields, found {len(fields)}")
    names = _columns_for(fields, columns) if extend else columns
    decode = _unescape_mysql if mysql else _null
    return Row(number, {name: decode(value) for name, value in zip(names, fields)})


def _csv_header(path: Path, text, first: str, known) -> list[str]:
    try:
        header = next(csv.reader([first]))
    except (csv.Error, StopIteration):
        text.close()
        raise TableFileError(f"{path}: line 1: the header row is not valid CSV") from None
    if not header or not _is_header(header) or not known & {name.strip() for name in header}:
        text.close()
        raise TableFileError(
            f"{path}: line 1 is not a header row of plain lower-case column names naming a column of the table's policy; "
            "a CSV export needs a header "
            "(or export the table as TSV or \\x01-separated in its layout)"
        )
    return _unique(path, text, [name.strip() for name in header])


def _csv_rows(path: Path, text, columns: list[str]) -> Iterator[Row]:
    reader = csv.reader(text)
    try:
        while True:
            number = reader.line_num + 2  # the header was line 1
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error:
                yield Row(number, None, "not valid CSV")
                continue
            if not fields or not any(f.strip() for f in fields):
                yield Row(number, None, "empty line")
                continue
            if any(_SURROGATE.search(f) for f in fields):
                yield Row(number, None, "not valid UTF-8")
                continue
            if len(fields) != len(columns):
                yield Row(number, None, f"expected {len(columns)} fields, found {len(fields)}")
                continue
            yield Row(number, {name: _null(value) for name, value in zip(columns, fields)})
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise TableFileError(f"{path}: cannot read the table to its end ({_why(exc)})") from None
    finally:
        text.close()
