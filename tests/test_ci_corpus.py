"""Under CI a missing corpus fails the run: a skip there would let the corpus tests pass unseen."""

from __future__ import annotations

import pytest

import conftest
import support


@pytest.mark.parametrize(
    ("present", "environ", "decision"),
    [
        (True, {}, "run"),
        (True, {"CI": "true"}, "run"),
        (False, {}, "skip"),
        (False, {"CI": ""}, "skip"),
        (False, {"CI": "false"}, "skip"),
        (False, {"CI": "true"}, "fail"),
        (False, {"CI": "TRUE"}, "fail"),
        (False, {"CI": "1"}, "fail"),
    ],
)
def test_the_corpus_decision(present, environ, decision):
    assert support.corpus_decision(present, environ) == decision


class _Item:
    def __init__(self, marked: bool) -> None:
        self.marked = marked

    def get_closest_marker(self, name):
        return object() if self.marked and name == "corpus" else None


def test_a_corpus_test_fails_under_ci_when_the_corpus_is_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(support, "CORPUS", tmp_path / "absent")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        conftest.pytest_runtest_setup(_Item(marked=True))
    conftest.pytest_runtest_setup(_Item(marked=False))  # tests that do not need it are untouched


def test_a_corpus_test_skips_outside_ci_when_the_corpus_is_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(support, "CORPUS", tmp_path / "absent")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="shared/corpus"):
        conftest.pytest_runtest_setup(_Item(marked=True))


def test_a_corpus_test_runs_when_the_corpus_is_there(monkeypatch, tmp_path):
    monkeypatch.setattr(support, "CORPUS", tmp_path)
    monkeypatch.setenv("CI", "true")
    conftest.pytest_runtest_setup(_Item(marked=True))
