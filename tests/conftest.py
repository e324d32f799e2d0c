"""Shared fixtures: a fixed test key, the built-in policies, the fixture corpus."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import support
from anonymizer import Anonymizer, Key, load_policy

FIXTURES = Path(__file__).parent / "fixtures"
SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def key() -> Key:
    return Key(bytes(range(32)))


@pytest.fixture(scope="session")
def research():
    return load_policy("research")


@pytest.fixture(scope="session")
def strict():
    return load_policy("strict")


@pytest.fixture()
def anonymizer(research, key) -> Anonymizer:
    return Anonymizer(research, key)


@pytest.fixture(scope="session")
def people() -> dict:
    return json.loads((FIXTURES / "people.json").read_text(encoding="utf-8"))


@pytest.fixture()
def key_file(tmp_path, key) -> Path:
    path = tmp_path / "test.key"
    path.write_text(key.secret.hex() + "\n")
    path.chmod(0o600)
    return path


def pytest_runtest_setup(item) -> None:
    """Tests marked ``corpus`` need ../shared/corpus, and tests marked ``spark`` need pyspark and
    Java: skipped without them, failed under CI."""
    if item.get_closest_marker("spark") is not None:
        missing = support.spark_missing()
        if missing is not None:
            if support.corpus_decision(False, os.environ) == "fail":
                pytest.fail(f"{missing}; CI is set, where the Spark tier must run", pytrace=False)
            pytest.skip(missing)
    if item.get_closest_marker("corpus") is None:
        return
    decision = support.corpus_decision(support.CORPUS.is_dir(), os.environ)
    if decision == "skip":
        pytest.skip(support.CORPUS_MISSING)
    if decision == "fail":
        pytest.fail(f"{support.CORPUS_MISSING}; CI is set, where a missing corpus fails the run instead of skipping", pytrace=False)
