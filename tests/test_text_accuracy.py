"""Accuracy of free-text scrubbing with a roster, on the labelled set of bench/eval_text.py.

These are accuracy targets, not speed: recall 100% for roster identifiers, for emails and for
identifiers in disguise (encoded, obfuscated, cut off...), at least 99% for phone numbers,
precision at least 95%.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

EVAL = Path(__file__).resolve().parents[1] / "bench" / "eval_text.py"


@pytest.fixture(scope="module")
def figures() -> dict:
    spec = importlib.util.spec_from_file_location("eval_text", EVAL)
    module = importlib.util.module_from_spec(spec)
    sys.modules["eval_text"] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module.measure()


def test_the_labelled_set_is_large_enough_to_mean_something(figures):
    assert figures["sentences"] >= 300 and figures["planted"] >= 300 and figures["roster_people"] >= 5000


def test_every_roster_identifier_is_found(figures):
    assert figures["roster_recall"] == 1.0


def test_every_email_is_found(figures):
    assert figures["email_recall"] == 1.0


def test_at_least_99_percent_of_phone_numbers_are_found(figures):
    assert figures["phone_recall"] >= 0.99


def test_every_disguised_identifier_is_found(figures):
    assert figures["disguised_planted"] >= 60 and figures["disguised_recall"] == 1.0


def test_precision_is_at_least_95_percent(figures):
    assert figures["overall_precision"] >= 0.95


def test_at_least_95_percent_of_clean_sentences_come_out_unchanged(figures):
    assert figures["clean_sentences_kept"] >= 0.95
