"""The demographic quasi-identifiers of a tables package, by pseudonymous learner (for ``risk``).

Read from the package's ``auth_userprofile`` (``year_of_birth`` as its band, ``gender``,
``level_of_education``, ``country``) and joined to the events' learners through ``auth_user``
(username pseudonym to user-id pseudonym): both packages must be made with one key.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from ..core.errors import UsageError
from ..package.manifest import MANIFEST_NAME

DEMOGRAPHICS = ("year_of_birth", "gender", "level_of_education", "country")


@dataclass
class Demographics:
    key_id: str | None
    by_user_id: dict[str, dict[str, str]] = field(default_factory=dict)
    user_id_of: dict[str, str] = field(default_factory=dict)  # username pseudonym -> user-id pseudonym
    present: set[str] = field(default_factory=set)

    def of(self, learner: str) -> dict[str, str]:
        """The values of LEARNER, as ``risk`` names learners (``u:`` username or ``i:`` user id)."""
        kind, _, value = learner.partition(":")
        user_id = self.user_id_of.get(value) if kind == "u" else value
        return self.by_user_id.get(user_id, {}) if user_id is not None else {}


def _table(directory: Path, manifest: dict, table: str) -> Path | None:
    for entry in manifest.get("files") or ():
        if isinstance(entry, dict) and entry.get("table") == table and isinstance(entry.get("path"), str):
            return directory / entry["path"]
    return None


def _rows(path: Path):
    with open(path, encoding="utf-8", newline="") as handle:
        yield from csv.DictReader(handle)


def read_demographics(directory: Path | str) -> Demographics:
    """The demographics of the tables package in DIRECTORY."""
    directory = Path(directory)
    try:
        manifest = orjson.loads((directory / MANIFEST_NAME).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        raise UsageError(f"{directory}: holds no readable {MANIFEST_NAME}; not a tables package") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != "tables":
        raise UsageError(f"{directory}: not a tables package (made by 'anonymizer tables')")
    found = Demographics(manifest.get("key_id"))
    users = _table(directory, manifest, "auth_user")
    if users is not None:
        for row in _rows(users):
            if row.get("id") and row.get("username"):
                found.user_id_of[row["username"]] = row["id"]
    profiles = _table(directory, manifest, "auth_userprofile")
    if profiles is not None:
        for row in _rows(profiles):
            user_id = row.get("user_id")
            if not user_id:
                continue
            values = {name: row[name] for name in DEMOGRAPHICS if row.get(name)}
            found.present.update(values)
            found.by_user_id[user_id] = values
    return found
