"""The codebook of a tables package: what each table's columns hold and what was done to them.

The descriptions come from the operators and their parameters, as in the codebook of an events
package (``anonymizer.package.codebook``); the counts come from the manifest. Nothing in it comes
from the rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..package.codebook import CODEBOOK_VERSION, FIELD_DROP_REASONS, LEARNED, LISTED, NO_PEOPLE, field_entries, write_documents

_UNNAMED_TABLE = "files whose name names no table of the policy are not copied out (what a policy does not name is dropped)"


@dataclass(frozen=True)
class _Namespaces:
    """What the operator descriptions read of a plan: how each identity's pseudonyms look."""

    namespaces: dict


def build_table_codebook(policy, trees: dict, columns_in: dict[str, list[str]], namespaces: dict, manifest: dict, *, people: int) -> dict:
    """The codebook as a JSON-ready dict: per table written, its file, counts and columns."""
    plan = _Namespaces(namespaces)
    files = {entry["table"]: entry for entry in manifest["files"]}
    tables = []
    for table, tree in trees.items():
        present = set(columns_in.get(table, ()))
        columns = [
            entry
            for entry in field_entries(tree, "", plan, people)
            if entry["path"].split(".", 1)[0].split("[", 1)[0] in present
        ]
        counts = manifest["tables"][table]
        tables.append({
            "name": table,
            "description": " ".join(policy.tables[table].description.split()),
            "file": files[table]["path"],
            "columns_written": files[table]["columns"],
            "rows_read": counts["rows_read"],
            "rows_written": counts["rows_written"],
            "rows_rejected": counts["rows_rejected"],
            "columns": columns,
            "columns_dropped": counts["columns_dropped"],
        })
    return {
        "codebook_version": CODEBOOK_VERSION,
        "kind": "tables",
        "policy": {"name": policy.name, "sha256": policy.sha256},
        "key_id": manifest["key_id"],
        "pseudonym_version": manifest["pseudonym_version"],
        "tables": tables,
        "not_copied": {"files": len(manifest["unknown_tables"]), "why": _UNNAMED_TABLE},
        "drop_reasons": {reason: FIELD_DROP_REASONS[reason] for reason in ("unnamed", "invalid_value", "unsafe_key")},
        "verify": {
            "command": "anonymizer verify PACKAGE --roster auth_user --roster auth_userprofile --public-key SIGNER.pub",
            "what": "checks every file against the sha256 the manifest lists (this codebook included), refuses files it does not "
            "list, checks manifest.sig, and searches every byte for the emails, names, usernames and user ids of the raw tables",
        },
    }


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def render_table_markdown(codebook: dict) -> str:
    """The codebook as the package's README.md."""
    lines = [
        "# Research data package: platform tables",
        "",
        f"The platform's tables, anonymized by `anonymizer tables` under the table policy `{codebook['policy']['name']}` "
        f"(sha256 `{codebook['policy']['sha256']}`) with the key id `{codebook['key_id']}`. Each table is one CSV file with a "
        "header row (UTF-8, RFC 4180 quoting). User ids and usernames are the pseudonyms the tracking logs anonymized with "
        "the same key get: join them with the events. `codebook.json` holds what this page says, for programs; "
        "`manifest.json` lists every file with its sha256 and accounts for every input row.",
        "",
        "| table | file | rows read | written | rejected |",
        "|---|---|---:|---:|---:|",
    ]
    for table in codebook["tables"]:
        lines.append(f"| `{table['name']}` | `{table['file']}` | {table['rows_read']} | {table['rows_written']} | {table['rows_rejected']} |")
    lines.append("")
    if codebook["not_copied"]["files"]:
        lines += [f"{codebook['not_copied']['files']} file(s) not copied: {codebook['not_copied']['why']}.", ""]
    for table in codebook["tables"]:
        lines += [f"## `{table['name']}`", ""]
        if table["description"]:
            lines += [table["description"], ""]
        lines += ["| column | what was done |", "|---|---|"]
        for entry in table["columns"]:
            inside = f" (inside a {' and '.join(entry['decoded'])} string)" if entry.get("decoded") else ""
            lines.append(f"| `{_md(entry['path'])}`{inside} | {_md(entry['description'])} |")
        lines.append("")
        for reason, columns in table["columns_dropped"].items():
            shown = ", ".join(f"`{column}` ({count})" for column, count in columns.items())
            lines += [f"Values dropped ({_md(codebook['drop_reasons'].get(reason, reason))}): {shown}.", ""]
    lines += [
        "## How to verify this package",
        "",
        "```sh",
        codebook["verify"]["command"],
        "```",
        "",
        codebook["verify"]["what"][0].upper() + codebook["verify"]["what"][1:] + ".",
        "",
    ]
    return "\n".join(lines)


def write_table_codebook(
    directory: Path, policy, trees: dict, columns_in: dict, namespaces: dict, manifest: dict, *, listed: bool, learned: bool
) -> list[dict]:
    """Write README.md and codebook.json into DIRECTORY; their manifest entries."""
    people = LISTED if listed else (LEARNED if learned else NO_PEOPLE)
    data = build_table_codebook(policy, trees, columns_in, namespaces, manifest, people=people)
    return write_documents(directory, data, render_table_markdown(data))
