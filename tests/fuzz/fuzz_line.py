"""Coverage-guided fuzzing of the line path: bytes of a line -> ``Anonymizer.anonymize_line``.

Run with libFuzzer's options, for instance::

    python tests/fuzz/fuzz_line.py -runs=5000 -seed=1 CORPUS_DIR -dict=line.dict

A crash (libFuzzer writes the input as ``crash-<sha1>``) is any exception escaping the
anonymizer, an outcome other than written/dropped/rejected, a line that is not counted exactly
once, or written bytes that are not one line of valid UTF-8 JSON. A planted identifier of the
fictional cast that survives in the output is not a crash: it is counted by class (which form it
took, where it was found) in the JSON report named by ``$FUZZ_REPORT``, and the first inputs of
each class are saved under ``$FUZZ_FINDINGS``, so that one long run lists every kind of survivor.
"""

from __future__ import annotations

import atexit
import hashlib
import html
import json
import os
import re
import sys
import unicodedata
from pathlib import Path
from urllib.parse import unquote_plus

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for support and fuzz.seeds

with atheris.instrument_imports(include=["anonymizer"]):
    from anonymizer import Anonymizer, Key, load_policy
    from anonymizer.core.engine import DROPPED, REJECTED, WRITTEN
    from anonymizer.core.roster import Person, Roster

from fuzz.seeds import cast  # noqa: E402
from support import every_string  # noqa: E402

KEY = Key(bytes(range(32)))
ROSTER = Roster(Person(str(p["id"]), (p["username"],), (p["email"],), (p["name"],)) for p in cast())
ANONYMIZER = Anonymizer(load_policy("research"), KEY, ROSTER)
PLANTED = sorted({v.casefold() for p in cast() for v in (p["username"], p["email"], str(p["id"]))}, key=len, reverse=True)
# A planted value counts only where it stands alone: not inside a longer word or number (a user
# id's digits inside a pseudonym's hex digits are no leak), as verify treats them.
class _StandingAlone:
    """Finds any of VALUES where it stands alone; substring tests first, since a regex of
    alternatives with look-arounds is a hundred times slower on a clean line."""

    def __init__(self, values) -> None:
        self.values = tuple(values)
        # verify's boundary: a letter or digit (any script) glued to an end that is itself one;
        # and a user id, as verify reads one in text, is not part of a decimal, a price or a date.
        self.patterns = {
            v: re.compile(
                r"(?<![^\W_])(?<![.\-+$#@:])(?<!\d,)" + v + r"(?![^\W_])(?![.,\-:]\d)"
                if v.isdigit()
                else ("(?<![^\\W_])" if v[:1].isalnum() else "") + re.escape(v) + ("(?![^\\W_])" if v[-1:].isalnum() else "")
            )
            for v in self.values
        }

    def search(self, text: str) -> bool:
        return any(v in text and self.patterns[v].search(text) for v in self.values)


_PATTERN = _StandingAlone(PLANTED)
_EXACT = _StandingAlone({v for p in cast() for v in (p["username"], p["email"], str(p["id"]))})
MAX_SAVED_PER_CLASS = 3
REPORT_EVERY = 1_000

report = {"inputs": 0, "written": 0, "dropped": 0, "rejected": 0, "survivors": 0, "classes": {}}
saved: dict[str, list[str]] = {}


def _label(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,30}", key) else "*"


def _strings(value, path=""):
    """(path, kind, text) for every key and string of VALUE, nested JSON decoded; kind is
    ``key`` or ``value``."""
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{_label(key)}" if path else _label(key)
            yield where, "key", key
            yield from _strings(item, where)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, f"{path}[*]")
    elif isinstance(value, str):
        yield path, "value", value
        if value[:1] in "{[":
            try:
                yield from _strings(json.loads(value), path + "(json)")
            except ValueError:
                pass
    elif isinstance(value, int) and not isinstance(value, bool):
        yield path, "value", str(value)


def _fold(text: str) -> str:
    return unicodedata.normalize("NFC", text).casefold()


def _classify(event) -> set[str]:
    """The classes of the planted values left in EVENT: form (as written, case changed,
    percent-encoded, HTML entities) @ where (dict key, URL, or the field path, cut at depth 3)."""
    found = set()
    for path, kind, text in _strings(event):
        for form, seen in (("as-is", text), ("case", _fold(text)), ("percent", _fold(unquote_plus(text))), ("html", _fold(html.unescape(text)))):
            if (_EXACT if form == "as-is" else _PATTERN).search(seen):
                if kind == "key":
                    where = "dict-key"
                elif "://" in text or text.startswith("/"):
                    where = "url-or-path"
                else:
                    where = ".".join(path.split(".")[:3]) or "(top)"
                found.add(f"{form}@{where}")
                break
    return found


def _note(classes: set[str], data: bytes) -> None:
    report["survivors"] += 1
    findings = os.environ.get("FUZZ_FINDINGS")
    new = False
    for name in classes:
        new |= name not in report["classes"]
        report["classes"][name] = report["classes"].get(name, 0) + 1
        examples = saved.setdefault(name, [])
        if findings and len(examples) < MAX_SAVED_PER_CLASS:
            directory = Path(findings)
            directory.mkdir(parents=True, exist_ok=True)
            file = directory / f"survivor-{re.sub(r'[^A-Za-z0-9_.@-]', '_', name)[:60]}-{hashlib.sha1(data).hexdigest()[:12]}"
            file.write_bytes(data)
            examples.append(file.name)
    if new:
        _write_report()


def _write_report() -> None:
    path = os.environ.get("FUZZ_REPORT")
    if path:
        Path(path).write_text(json.dumps({**report, "saved": saved}, indent=2, sort_keys=True) + "\n")


def test_one_input(data: bytes) -> None:
    report["inputs"] += 1
    outcome, result = ANONYMIZER.anonymize_line(data, "fuzz.log", report["inputs"])
    stats = ANONYMIZER.take_stats()
    if outcome not in (WRITTEN, DROPPED, REJECTED):
        raise AssertionError(f"unknown outcome {outcome!r}")
    if stats.read != 1 or not stats.accounted():
        raise AssertionError("the line was not counted exactly once as written, dropped or rejected")
    report[outcome] += 1
    if report["inputs"] % REPORT_EVERY == 0:
        _write_report()
    if outcome is not WRITTEN:
        if not isinstance(result, str) or not result:
            raise AssertionError("a dropped or rejected line must come with a reason")
        return
    if not result.endswith(b"\n") or result.count(b"\n") != 1:
        raise AssertionError("written output is not exactly one line")
    event = json.loads(result.decode("utf-8"))  # raises on invalid UTF-8 or JSON: a crash
    if not isinstance(event, dict):
        raise AssertionError("written output is not a JSON object")
    if _PATTERN.search(every_string(result)) or _PATTERN.search(_fold(html.unescape(result.decode()))):
        _note(_classify(event) or {"other"}, data)


def main() -> None:
    atexit.register(_write_report)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
