"""What ``anonymizer tables`` does between its options and the package: load, check, run, describe."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..core.keys import check_scope, load_key
from ..core.roster import load_roster
from ..package.signing import load_private_key
from .policy import load_table_policy
from .runner import anonymize_tables, describe


def run_tables(
    inputs: list[Path], out: Path, policy: str, key_file: Path | None, roster: list[Path] | None, scope: str | None,
    sign_key: Path | None, force: bool, quiet: bool, warn: Callable[[str], None],
) -> list[str]:
    """Anonymize INPUTS into OUT; the lines to print (none with QUIET, but for warnings)."""
    loaded = load_table_policy(policy)
    key = load_key(key_file, warn=warn)
    if scope is not None:
        check_scope(scope)
    signer = load_private_key(sign_key) if sign_key is not None else None  # before the run, not after it
    lines: list[str] = []
    people = None
    if roster:
        people, report = load_roster(roster)
        lines += report.describe()
    manifest = anonymize_tables(inputs, out, key, loaded, roster=people, force=force, scope=scope, signer=signer)
    for entry in manifest["unknown_tables"]:
        warn(f"{entry['file']}: no table of the policy is named by the file name; not copied ({entry['lines']} line(s))")
    if quiet:
        return []
    return lines + describe(manifest) + [f"wrote {len(manifest['files'])} table(s) to {out} (key id {manifest['key_id']})"]
