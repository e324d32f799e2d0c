"""Parquet files (``run --format parquet``): written from a finished gzip JSON-lines file, read
back as JSON lines for ``verify``.

A run makes every output file as gzip JSON lines first, exactly as for ``--format jsonl``, and
converts each finished file to Parquet before it moves into place. The gzip file holds the same
bytes for any number of workers, so the Parquet file does too: its rows are the lines in order,
cut into row groups of ``ROW_GROUP_ROWS`` rows (whatever the batches were), and every setting of
the writer is fixed here rather than left to pyarrow's defaults. The columns are
``anonymizer.package.columns``.

pyarrow is an optional extra (``pip install 'edx-log-anonymizer[parquet]'``): it is imported only
when a Parquet file is written or read.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Iterator

import orjson
from isal import igzip

from ..core.errors import UsageError
from ..package.columns import COLUMNS, JSON, ROWS, SCHEMA_VERSION, TIMESTAMP, XAPI, loads, tracking_event
from .inputs import output_name

JSONL, PARQUET = "jsonl", "parquet"
FORMATS = (JSONL, PARQUET)
PARQUET_MAGIC = b"PAR1"
# Row groups of a fixed number of rows, independent of batches and workers. 64 Ki rows of events
# of about 1 kB hold some 64 MB before compression: large enough for DuckDB and Spark to read
# in parallel by row group, small enough that the writer's memory stays bounded.
ROW_GROUP_ROWS = 1 << 16
# zstd: tracking logs are repetitive text, and zstd makes them markedly smaller than snappy at a
# similar reading speed; DuckDB, Spark, pandas (pyarrow) and polars all read it.
COMPRESSION = "zstd"
COMPRESSION_LEVEL = 3
PARQUET_VERSION = "2.6"
INSTALL = "pip install 'edx-log-anonymizer[parquet]'"


def pyarrow_modules():
    """(pyarrow, pyarrow.parquet), or a ``UsageError`` saying how to install them."""
    try:
        import pyarrow  # noqa: PLC0415  (an optional extra)
        import pyarrow.parquet  # noqa: PLC0415
    except ImportError:
        raise UsageError(f"--format parquet needs pyarrow: install the parquet extra ({INSTALL})") from None
    return pyarrow, pyarrow.parquet


def check_format(output_format: str) -> None:
    """Refuse an unknown format, and Parquet without pyarrow, before any work."""
    if output_format not in FORMATS:
        raise UsageError(f"--format: expected one of {', '.join(FORMATS)}")
    if output_format == PARQUET:
        pyarrow_modules()


def data_file_name(name: str, output_format: str) -> str:
    """The package path of the output of input NAME: ``NAME.gz`` (JSON lines) or, for Parquet,
    NAME without its ``.gz`` and with ``.parquet``."""
    if output_format == JSONL:
        return output_name(name)
    return (name[:-3] if name.endswith(".gz") else name) + ".parquet"


def layout_suffix(output_format: str) -> str:
    """The ending of the course-day layout's file names."""
    return ".log.gz" if output_format == JSONL else ".parquet"


def schema(events: str):
    """The Arrow schema of a package of EVENTS (``tracking-log`` or ``xapi``)."""
    pa, _ = pyarrow_modules()
    types = {TIMESTAMP: pa.timestamp("us", tz="UTC")}
    fields = [pa.field(c.name, types.get(c.kind, pa.string())) for c in COLUMNS[events]]
    # Which columns hold JSON text, for readers (and ``verify``) that want to decode them.
    json_columns = ",".join(c.name for c in COLUMNS[events] if c.kind == JSON)
    return pa.schema(fields, metadata={"anonymizer.schema": f"{events}/{SCHEMA_VERSION}", "anonymizer.json_columns": json_columns})


def convert(source: Path, target: Path, events: str) -> tuple[str, int, int]:
    """Write the gzip JSON-lines file SOURCE as the Parquet file TARGET; its (sha256, bytes, rows)."""
    pa, pq = pyarrow_modules()
    table_schema = schema(events)
    to_row = ROWS[events]
    names = table_schema.names
    writer = pq.ParquetWriter(
        target, table_schema, version=PARQUET_VERSION, compression=COMPRESSION, compression_level=COMPRESSION_LEVEL,
        use_dictionary=True, write_statistics=True, data_page_version="1.0",
    )
    rows = 0
    columns: dict[str, list] = {name: [] for name in names}

    def flush() -> None:
        table = pa.Table.from_pydict(columns, schema=table_schema)
        writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        for values in columns.values():
            values.clear()

    try:
        with igzip.open(source, "rb") as lines:
            for line in lines:
                if not line.strip():
                    continue
                row = to_row(loads(line))
                for name in names:
                    columns[name].append(row.get(name))
                rows += 1
                if rows % ROW_GROUP_ROWS == 0:
                    flush()
        if rows % ROW_GROUP_ROWS:
            flush()
    finally:
        writer.close()
    digest = hashlib.sha256()
    with open(target, "rb+") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
        os.fsync(fh.fileno())
    return digest.hexdigest(), target.stat().st_size, rows


def read_as_lines(path: Path, batch_rows: int = 8192) -> Iterator[bytes]:
    """The rows of the Parquet file at PATH as JSON lines (the JSON columns decoded back into
    values), in pieces of whole lines, then one line with the file's own key-value metadata: what
    ``verify`` scans. Raises ``UsageError`` without pyarrow and ``ValueError`` for a file that is
    not readable Parquet."""
    pa, pq = pyarrow_modules()
    try:
        parquet = pq.ParquetFile(path)
        metadata = parquet.schema_arrow.metadata or {}
        json_columns = set(metadata.get(b"anonymizer.json_columns", b"").decode("utf-8", "replace").split(","))
        for batch in parquet.iter_batches(batch_size=batch_rows):
            yield b"".join(orjson.dumps(_decoded(row, json_columns), default=str) + b"\n" for row in batch.to_pylist())
    except (pa.ArrowException, OSError) as exc:
        raise ValueError("is not a readable Parquet file") from exc
    own = {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in metadata.items() if k != b"ARROW:schema"}
    yield orjson.dumps({"parquet_metadata": own}) + b"\n"


def events(path: Path, batch_rows: int = 8192) -> Iterator[Any]:
    """The events of the Parquet file at PATH, as its rows give them back: tracking-log rows
    rebuilt (``tracking_event``), xAPI rows as their statements."""
    _, pq = pyarrow_modules()
    parquet = pq.ParquetFile(path)
    schema_name = (parquet.schema_arrow.metadata or {}).get(b"anonymizer.schema", b"").decode("utf-8", "replace")
    for batch in parquet.iter_batches(batch_size=batch_rows):
        for row in batch.to_pylist():
            if schema_name.startswith(XAPI + "/"):
                yield loads(row["statement"].encode()) if row.get("statement") else None
            else:
                yield tracking_event(row)


def _decoded(row: dict, json_columns: set[str]) -> dict:
    """ROW with its JSON text decoded where it is JSON (so that fields read as fields); text that
    is not JSON stays text, and is scanned all the same."""
    for name in json_columns:
        value = row.get(name)
        if isinstance(value, str):
            try:
                row[name] = loads(value.encode())
            except ValueError:
                pass
    return row
