"""``anonymizer tables``: anonymize the platform's table exports into a package of CSV files.

Every table the policy names becomes one CSV file (``TABLE.csv``, UTF-8, a header row, RFC 4180
quoting, ``\\n`` line ends): CSV because its quoting carries any value (a studentmodule ``state``
holds tabs, newlines and commas, which TSV has no standard way to escape) and every analysis tool
reads it with its header. Rows are anonymized by the event policies' compiled operators under the
same key and identities, so user ids and usernames get the pseudonyms the tracking logs get.

The manifest accounts for every row: per table, rows read, written and rejected (with file, line
and reason), columns dropped by reason; files of tables the policy does not name are listed with
their line counts and are not copied. Nothing from a row ever reaches a message.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import orjson

from ..core.compiler import build_fields
from ..core.errors import OutputError, UsageError, os_reason
from ..core.keys import Key, check_scope, derive_scoped_key
from ..core.lowering import lower_fields
from ..core.operators import BuildContext, EventState, Identity
from ..core.plan import Namespace
from ..core.pseudonyms import PSEUDONYM_VERSION, Pseudonymizer
from ..core.roster import Person, Roster, join_rosters
from ..core.stats import RejectionList
from ..package.manifest import FORMAT_VERSION, MANIFEST_NAME, write_json_atomically
from ..package.signing import SIGNATURE_NAME, sign_manifest
from ..version import __version__
from .codebook import write_table_codebook
from .policy import TablePolicy
from .reader import GZIP_MAGIC, open_table, table_of

KIND = "tables"
# Where the people of the export are: the columns of these tables that name them (learned, like
# ``run --learn``: found in free text, never used to link pseudonyms).
_PEOPLE_TABLES = {"auth_user": ("id", "username", "email", ("first_name", "last_name")), "auth_userprofile": ("user_id", None, None, "name")}
_ACTOR_COLUMNS = ("user_id", "student_id")


@dataclass
class TableCounts:
    rows_read: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    dropped: dict[str, Counter] = field(default_factory=dict)  # reason -> column -> count

    def as_dict(self) -> dict:
        return {
            "rows_read": self.rows_read,
            "rows_written": self.rows_written,
            "rows_rejected": self.rows_rejected,
            "columns_dropped": {reason: dict(sorted(counts.items())) for reason, counts in sorted(self.dropped.items())},
        }


@dataclass
class TableInput:
    path: Path
    name: str  # relative to the export directory, as the manifest lists it
    table: str | None


def find_inputs(paths: list[Path], policy: TablePolicy) -> list[TableInput]:
    """The files of PATHS (directories walked; hidden files left out), sorted, each with its table."""
    found: dict[str, Path] = {}
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                relative = child.relative_to(path)
                if child.is_file() and not any(part.startswith(".") for part in relative.parts):
                    _add(found, relative.as_posix(), child)
        elif path.is_file():
            _add(found, path.name, path)
        else:
            raise UsageError(f"{path}: no such file or directory")
    names = policy.names()
    return [TableInput(path, name, _table(path, names, policy)) for name, path in sorted(found.items())]


def _add(found: dict[str, Path], name: str, path: Path) -> None:
    if name in found:
        raise UsageError(f"{path}: two inputs have the name {name!r}; give them from one directory")
    found[name] = path


def _table(path: Path, names: list[str], policy: TablePolicy) -> str | None:
    name = table_of(path, names)
    return policy.table_for(name) if name is not None else None


def prepare_out(out: Path, force: bool) -> None:
    """Make OUT ready: a new or empty directory, or (with FORCE) a previous tables package, removed."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a directory")
    present = sorted(p for p in out.rglob("*")) if out.exists() else []
    if present:
        manifest = out / MANIFEST_NAME
        if not force:
            raise UsageError(f"{out}: is not empty; pass --force to replace a previous package there")
        if not manifest.is_file():
            raise UsageError(f"{out}: is neither empty nor a package (it holds no {MANIFEST_NAME}); refusing to touch it")
        try:
            listed = orjson.loads(manifest.read_bytes())
            names = [entry["path"] for entry in listed.get("files", []) + listed.get("documents", [])]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            raise UsageError(f"{out}: its {MANIFEST_NAME} cannot be read; refusing to touch the directory") from None
        manifest.unlink()
        for name in [*names, SIGNATURE_NAME]:
            target = (out / name).resolve()
            if out.resolve() in target.parents and target.is_file():
                target.unlink()
        left = [p for p in out.rglob("*") if p.is_file()]
        if left:
            raise UsageError(f"{out}: holds {len(left)} file(s) the previous package did not list; remove them first")
    out.mkdir(parents=True, exist_ok=True)


def _read_people(inputs: list[TableInput], policy: TablePolicy) -> Roster | None:
    """The people the export's auth_user and auth_userprofile name (learned, not listed)."""
    by_id: dict[str, dict] = {}
    for item in inputs:
        spec = _PEOPLE_TABLES.get(item.table or "")
        if spec is None:
            continue
        id_column, username_column, email_column, name_column = spec
        opened = open_table(item.path, policy.tables[item.table].layout, _known(policy, item.table))
        for row in opened.rows:
            values = row.values
            if values is None:
                continue
            user_id = (values.get(id_column) or "").strip()
            if not (user_id.isascii() and user_id.isdecimal()):
                continue
            person = by_id.setdefault(str(int(user_id)), {"usernames": [], "emails": [], "names": []})
            for key, column in (("usernames", username_column), ("emails", email_column)):
                value = (values.get(column) or "").strip() if column else ""
                if value and value not in person[key]:
                    person[key].append(value)
            parts = name_column if isinstance(name_column, tuple) else (name_column,)
            name = " ".join(" ".join((values.get(part) or "").split()) for part in parts if values.get(part)).strip()
            if name and name not in person["names"]:
                person["names"].append(name)
    people = [
        Person(user_id, tuple(p["usernames"]), tuple(p["emails"]), tuple(p["names"]), listed=False)
        for user_id, p in by_id.items()
        if p["usernames"] or p["emails"] or p["names"]
    ]
    return Roster(people) if people else None


def _known(policy: TablePolicy, table: str) -> frozenset[str]:
    rule = policy.tables[table]
    return frozenset(rule.columns) | frozenset(rule.layout or ())


def _hash_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _count_lines(path: Path) -> int:
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == GZIP_MAGIC
    opener = gzip.open if gzipped else open
    lines = 0
    last = b"\n"
    try:
        with opener(path, "rb") as handle:
            while block := handle.read(1 << 20):
                lines += block.count(b"\n")
                last = block[-1:]
    except (OSError, EOFError):
        pass  # a file not copied out: counted as far as it reads
    return lines + (last != b"\n")


def _column_of(path: str) -> str:
    head = path.split(".", 1)[0].split("[", 1)[0]
    return head if head.isidentifier() and head.isascii() else "<other>"


@dataclass
class _Compiled:
    function: Callable
    tree: object
    kept: list[str]  # the columns a rule keeps (not dropped by rule), in policy order


def _compile(policy: TablePolicy, ctx: BuildContext) -> dict[str, _Compiled]:
    compiled = {}
    for name, rule in policy.tables.items():
        tree = lower_fields(rule.columns, f"{policy.source}: tables.{name}.columns")
        kept = [column for column, field_rule in rule.columns.items() if field_rule.op != "drop"]
        compiled[name] = _Compiled(build_fields(tree, ctx), tree, kept)
    return compiled


def _actors(values: dict, people: Roster | None) -> tuple[str, ...]:
    """The usernames of the learner a row is about (its user id in the export's auth_user):
    replaced in the row's free text like an event's actor."""
    if people is None:
        return ()
    for column in _ACTOR_COLUMNS:
        user_id = (values.get(column) or "").strip()
        if user_id.isascii() and user_id.isdecimal():
            person = people.by_id.get(str(int(user_id)))
            return person.usernames if person is not None else ()
    return ()


def _write_table(out: Path, table: str, columns: list[str], rows) -> tuple[str, str, int, int]:
    """Write TABLE.csv from ROWS (dicts); (name, sha256, bytes, rows written)."""
    name = f"{table}.csv"
    target = out / name
    temporary = out / f".{name}.partial"
    written = 0
    try:
        with open(temporary, "w", encoding="utf-8", errors="surrogatepass", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(columns)
            for values in rows:
                writer.writerow(["" if values.get(column) is None else str(values[column]) for column in columns])
                written += 1
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise OutputError(f"{target}: cannot write the table ({os_reason(exc)})") from None
    except BaseException:
        temporary.unlink(missing_ok=True)  # an input that cannot be read to its end: no half-written table
        raise
    sha256, size = _hash_file(target)
    return name, sha256, size, written


def anonymize_tables(
    paths: list[Path],
    out: Path,
    key: Key,
    policy: TablePolicy,
    *,
    roster: Roster | None = None,
    force: bool = False,
    scope: str | None = None,
    signer=None,
    created: datetime | None = None,
) -> dict:
    """Anonymize the table files of PATHS into OUT under KEY and POLICY; ROSTER: the people of
    ``--roster``. With SCOPE, under the key derived from KEY for that label, as ``run`` does.
    Returns the manifest written."""
    out = Path(out)
    if scope is not None:
        key = derive_scoped_key(key, check_scope(scope))  # from here on, the master key is not used
    inputs = find_inputs([Path(p) for p in paths], policy)
    if not inputs:
        raise UsageError("no table files found in the inputs")
    prepare_out(out, force)
    learned = _read_people(inputs, policy)
    people = join_rosters(roster, learned)
    pseudonymizer = Pseudonymizer(key)
    identities = {name: Identity(name, rule.format, rule.prefix, rule.case == "insensitive") for name, rule in policy.identities.items()}
    ctx = BuildContext(pseudonymizer=pseudonymizer, identities=identities, roster=people, roster_rules=policy.roster)
    compiled = _compile(policy, ctx)

    counts: dict[str, TableCounts] = {}
    input_entries: list[dict] = []
    rejections = RejectionList()
    unknown: list[dict] = []
    by_table: dict[str, list[TableInput]] = {}
    for item in inputs:
        if item.table is None:
            lines = _count_lines(item.path)
            unknown.append({"file": item.name, "lines": lines, "reason": "no table of the policy is named by the file name"})
            sha256, size = _hash_file(item.path)
            input_entries.append({"path": item.name, "sha256": sha256, "bytes": size, "table": None, "format": None, "rows": 0, "rejected": 0, "not_copied_lines": lines})
            continue
        by_table.setdefault(item.table, []).append(item)

    files: list[dict] = []
    columns_in: dict[str, list[str]] = {}
    for table in policy.tables:
        items = by_table.get(table)
        if not items:
            continue
        spec = compiled[table]
        tally = counts[table] = TableCounts()
        opened = [(item, open_table(item.path, policy.tables[table].layout, _known(policy, table))) for item in items]
        present = {column for _, handle in opened for column in handle.columns}
        columns = [column for column in spec.kept if column in present]
        columns_in[table] = sorted(present & set(policy.tables[table].columns))

        def rows():
            for item, handle in opened:
                entry = {"path": item.name, "table": table, "format": handle.format, "rows": 0, "rejected": 0}
                for row in handle.rows:
                    tally.rows_read += 1
                    entry["rows"] += 1
                    if row.values is None:
                        tally.rows_rejected += 1
                        entry["rejected"] += 1
                        rejections.add(item.name, row.line, row.reason)
                        continue
                    state = EventState(*_actors(row.values, people))
                    result = spec.function(row.values, state)
                    for path, reason in state.dropped:
                        tally.dropped.setdefault(reason, Counter())[_column_of(path)] += 1
                    tally.rows_written += 1
                    yield result
                entry["sha256"], entry["bytes"] = _hash_file(item.path)
                input_entries.append(entry)

        name, sha256, size, written = _write_table(out, table, columns, rows())
        files.append({"path": name, "sha256": sha256, "bytes": size, "rows": written, "table": table, "columns": columns})

    input_entries.sort(key=lambda entry: entry["path"])
    manifest = {
        "format_version": FORMAT_VERSION,
        "kind": KIND,
        "tool": {"name": "anonymizer", "version": __version__},
        "created": (created or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
        "policy": {"name": policy.name, "source": policy.source, "sha256": policy.sha256},
        "key_id": key.key_id,
        "pseudonym_version": PSEUDONYM_VERSION,
        **({"scope": scope} if scope is not None else {}),
        "inputs": input_entries,
        "files": files,
        "tables": {table: counts[table].as_dict() for table in policy.tables if table in counts},
        "unknown_tables": unknown,
        "rejections": [{"file": f, "line": n, "reason": r} for f, n, r in rejections],
        "rejections_not_listed": rejections.not_listed,
    }
    if roster is not None:
        manifest["roster"] = roster.summary(pseudonymizer)
    namespaces = {name: Namespace(rule.format, rule.prefix, rule.case == "insensitive") for name, rule in policy.identities.items()}
    manifest["documents"] = write_table_codebook(
        out, policy, {table: compiled[table].tree for table in counts}, columns_in, namespaces, manifest,
        listed=roster is not None, learned=learned is not None,
    )
    write_json_atomically(out / MANIFEST_NAME, manifest)
    if signer is not None:
        sign_manifest(out, signer)
    return manifest


def describe(manifest: dict) -> list[str]:
    """Lines for people: per table, rows read, written and rejected; files not copied."""
    lines = []
    for table, tally in manifest["tables"].items():
        dropped = sum(sum(c.values()) for reason, c in tally["columns_dropped"].items())
        lines.append(
            f"{table}: {tally['rows_read']} row(s) read, {tally['rows_written']} written, {tally['rows_rejected']} rejected"
            + (f"; {dropped} value(s) of unnamed or invalid columns dropped" if dropped else "")
        )
    for entry in manifest["unknown_tables"]:
        lines.append(f"{entry['file']}: not copied ({entry['reason']}; {entry['lines']} line(s))")
    for rejection in manifest["rejections"][:10]:
        lines.append(f"  {rejection['file']}: line {rejection['line']}: {rejection['reason']}")
    return lines

