"""Helpers shared by tests: where a raw value could hide in an output line."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote_plus

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
CORPUS_MISSING = "../shared/corpus is not beside the project (it is test data kept outside the repository)"


def corpus_decision(present: bool, environ: Mapping[str, str] = os.environ) -> str:
    """``run``, ``skip`` or ``fail`` for a test that needs the corpus: a missing corpus skips on
    a developer's machine but fails under CI (``CI=true``), where a skip would pass silently."""
    if present:
        return "run"
    return "fail" if environ.get("CI", "").strip().lower() in ("true", "1", "yes") else "skip"


def spark_missing() -> str | None:
    """Why the Spark tier cannot run here (None when it can): pyspark and a Java runtime."""
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (pip install -e '.[spark]'; .ci/run installs it)"
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "no Java runtime (java on PATH or JAVA_HOME) for Spark"
    return None


def every_string(line: str | bytes) -> str:
    """The line and every string within it, nested JSON decoded and URL-decoded, NFC-normalized
    and case-folded: search this for a raw value and no encoding hides it."""
    text = line.decode() if isinstance(line, bytes) else line
    found = [text, unquote_plus(text)]

    def walk(value):
        if isinstance(value, str):
            found.extend([value, unquote_plus(value)])
            if value[:1] in "{[":
                try:
                    walk(json.loads(value))
                except ValueError:
                    pass
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(json.loads(text))
    return unicodedata.normalize("NFC", "\n".join(found)).casefold()
