"""Other spellings of a known identifier (``text.variants``): a username written with other
separators or none, found by the roster's matcher, the event's own usernames (``scrub_text``'s
actors) and ``verify``; an email's local part alone, found by the roster's matcher and ``verify``."""

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


# ---------------------------------------------------------------- an email's local part alone


@pytest.mark.parametrize("email, parts", [
    ("zq.1999@example.org", ["zq.1999"]),
    ("q.harrow+edx@example.org", ["q.harrow+edx", "q.harrow"]),
    ("Martina.Kovac@example.net", ["martina.kovac"]),
    ("info@example.org", []),  # short, and no digit or separator
    ("johnsmith@example.org", []),  # a word as far as a text can tell
    ("123456789@example.org", []),  # a number
    ("input_2_1=send+it+to+oyvind.aero@example.no", []),  # a query that ran into an address
])
def test_which_local_parts_are_found_alone(email, parts):
    assert variants.local_parts(email, COMMON) == parts


def test_a_roster_email_s_local_part_alone_is_an_email():
    anonymizer = Anonymizer(load_policy("research"), KEY, Roster([Person("7", ("zelda_q",), ("zq.1999@example.org", "info@example.org"))]))
    body = _body(anonymizer, "someone_else", "mail ZQ.1999, or zq.1999@example.org; not zq.19999, xzq.1999, zq-1999 or info")
    assert body == "mail [EMAIL], or [EMAIL]; not zq.19999, xzq.1999, zq-1999 or info"


def test_an_email_typed_in_one_event_teaches_its_local_part_for_the_others(tmp_path):
    import gzip
    import json

    from anonymizer import run

    events = [
        {"event_type": "edx.forum.comment.created", "event_source": "server", "username": "ana_b", "context": {},
         "time": "2024-03-01T10:00:00Z", "event": {"body": f"write to {text}"}}
        for text in ("zq.1999@example.org", "zq.1999 on the forum")
    ]
    log = tmp_path / "tracking.log"
    log.write_text("".join(json.dumps(e) + "\n" for e in events))
    run([log], tmp_path / "package", load_policy("research"), KEY, jobs=1)
    text = "".join(gzip.decompress(p.read_bytes()).decode() for p in sorted((tmp_path / "package").glob("*.gz")))
    assert "zq.1999" not in text and text.count("[EMAIL]") == 2


def test_verify_searches_a_distinctive_local_part_alone():
    assert [form for _, form in extra_forms("email", "zq.1999@example.org")] == [b"zq.1999"]
    assert extra_forms("email", "info@example.org") == []
