"""Run one known-answer vector through the public API, the way a policy and a run would.

A vector file (``*.json`` beside this module) holds a key, the identities section of a policy, an
optional roster and a list of vectors. Each vector is one of:

- ``{"name", "hmac": {"namespace", "value"}, "expected"}``: the full HMAC-SHA256, in hex;
- ``{"name", "key_id": true, "expected"}``: the key id the manifest records;
- ``{"name", "rule", "input", "expected"}``: the value a policy field rule (``rule``, written as in
  a policy) turns ``input`` into. Optional: ``actors`` (the event's ``username`` and
  ``context.username``, which ``scrub_text`` replaces in text), ``roster: true`` (run with the
  file's roster). ``"dropped": true`` instead of ``expected``: the field is removed.

The field is an envelope field of a one-rule policy, so a vector exercises exactly what a run
does (the compiler's mapping of leaf operators over lists, None and "" passed through).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import yaml

from anonymizer import Anonymizer, Key, parse_policy
from anonymizer.core.pseudonyms import Pseudonymizer
from anonymizer.core.roster import load_roster

HERE = Path(__file__).parent
FILES = ("pseudonyms", "mask_ip", "agents", "urls", "text")
FIELD = "value"


def load(name: str) -> dict:
    return json.loads((HERE / f"{name}.json").read_text(encoding="utf-8"))


def roster_from(spec: dict, directory: Path):
    """The roster the file defines inline (``columns`` and ``rows``), read as ``--roster`` reads a CSV."""
    path = Path(directory) / "roster.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(spec["columns"])
        writer.writerows([["" if cell is None else cell for cell in row] for row in spec["rows"]])
    roster, report = load_roster([path])
    if report.bad:
        raise ValueError(f"the vector roster has {report.bad} bad row(s)")
    return roster


class Runner:
    """Runs the vectors of one file; anonymizers are built once per (rule, roster)."""

    def __init__(self, data: dict, directory: Path) -> None:
        self.data = data
        self.roster = roster_from(data["roster"], directory) if data.get("roster") else None
        self._anonymizers: dict[tuple[str, str, bool], Anonymizer] = {}

    def _key(self, vector: dict) -> Key:
        return Key(bytes.fromhex(vector.get("key_hex", self.data["key_hex"])))

    def _anonymizer(self, vector: dict) -> Anonymizer:
        rule = json.dumps(vector["rule"], sort_keys=True)
        key_hex = vector.get("key_hex", self.data["key_hex"])
        with_roster = bool(vector.get("roster"))
        cache_key = (rule, key_hex, with_roster)
        found = self._anonymizers.get(cache_key)
        if found is None:
            policy = {
                "name": "vectors",
                "identities": self.data["identities"],
                "envelope": {"event_type": "keep", FIELD: vector["rule"]},
                "events": [{"match": "vector", "action": "envelope"}],
            }
            parsed = parse_policy(yaml.safe_dump(policy).encode(), "vectors")
            found = Anonymizer(parsed, self._key(vector), self.roster if with_roster else None)
            self._anonymizers[cache_key] = found
        return found

    def result(self, vector: dict) -> dict[str, Any]:
        """``{"expected": value}`` or ``{"dropped": True}``: what the code gives for VECTOR today."""
        if "hmac" in vector:
            spec = vector["hmac"]
            return {"expected": Pseudonymizer(self._key(vector)).digest(spec["namespace"], spec["value"]).hex()}
        if vector.get("key_id"):
            return {"expected": self._key(vector).key_id}
        actors = list(vector.get("actors", [])) + [None, None]
        event = {"event_type": "vector", FIELD: vector["input"], "username": actors[0], "context": {"username": actors[1]}}
        out = self._anonymizer(vector).anonymize_event(event)
        assert out is not None, "the vector policy keeps every event"
        return {"expected": out[FIELD]} if FIELD in out else {"dropped": True}
