"""A username written with other separators or none: found by the roster's matcher, the event's
own usernames (``scrub_text``'s actors) and ``verify``, under one rule (``text.variants``)."""

from __future__ import annotations

import pytest

from anonymizer import Anonymizer, Key, load_policy
from anonymizer.core.roster import Person, Roster
from anonymizer.core.text import variants
from anonymizer.core.text.mentions import default_common_words
from anonymizer.verify.forms import extra_forms

KEY = Key(bytes(range(32)))
COMMON = default_common_words()
USERNAME = "_ymir_balder77_"
WRITTEN = ["ymir-balder77", "ymir.balder77", "Ymir Balder77", "ymirbalder77", "YMIR_BALDER77", "ymir-balder77."]


@pytest.mark.parametrize("username, runs", [
    (USERNAME, ("ymir", "balder77")),
    ("Mar.Tina-K", ("mar", "tina", "k")),
    ("zoë_łukasz", ("zoë", "łukasz")),
    ("BeatrizQ", None),  # one run: no other spelling
    ("ab_cd", None),  # four letters: too short to be found without its separators
    ("12_34_56", None),  # digits only: a date or a number as often
    ("will_power", None),  # every run a common word: prose
    ("mark+young", None),  # a character between runs that is no separator
])
def test_which_usernames_have_variants(username, runs):
    assert variants.runs(username, COMMON) == runs


def _body(anonymizer: Anonymizer, actor: str, text: str) -> str:
    event = {"event_type": "edx.forum.comment.created", "event_source": "server", "username": actor, "context": {},
             "time": "2024-03-01T10:00:00Z", "event": {"body": text}}
    return anonymizer.anonymize_event(event)["event"]["body"]


@pytest.mark.parametrize("written", WRITTEN)
def test_the_event_s_own_username_is_found_with_other_separators(written):
    anonymizer = Anonymizer(load_policy("research"), KEY)
    pseudonym = _body(anonymizer, USERNAME, USERNAME)
    assert pseudonym.startswith("u_")
    assert _body(anonymizer, USERNAME, f"ask {written} now") == f"ask {pseudonym}{'.' if written.endswith('.') else ''} now"


@pytest.mark.parametrize("written", WRITTEN)
def test_a_roster_username_is_found_with_other_separators(written):
    anonymizer = Anonymizer(load_policy("research"), KEY, Roster([Person("70001", (USERNAME,))]))
    body = _body(anonymizer, "someone_else", f"ask {written} now")
    assert "balder" not in body.lower() and body.startswith("ask u_")


@pytest.mark.parametrize("roster", [False, True])
@pytest.mark.parametrize("actor, text", [
    (USERNAME, "xymirbalder77 and ymirbalder777 and ymir--balder77 stay"),  # glued, longer, two separators
    ("will_power", "the will power of it, willpower"),
    ("ab_cd", "abcd and ab-cd"),
    ("ana.lee", "Analee, a name of its own: six letters joined are too few without a digit"),
])
def test_what_is_not_a_variant_is_kept(roster, actor, text):
    people = Roster([Person("70001", (actor,))]) if roster else None
    assert _body(Anonymizer(load_policy("research"), KEY, people), "someone_else" if roster else actor, text) == text


def test_verify_searches_the_variants_that_the_scrubber_finds():
    forms = {form for _, form in extra_forms("username", USERNAME)}
    assert forms == {b"ymir_balder77", b"ymir-balder77", b"ymir.balder77", b"ymir balder77", b"ymirbalder77"}
    assert extra_forms("username", "will_power") == [] and extra_forms("username", "BeatrizQ") == []
    assert b"analee" not in {form for _, form in extra_forms("username", "ana.lee")}
