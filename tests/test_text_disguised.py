"""Disguised and escaped identifiers in free text, through the research policy: entities,
percent-encoding, JSON escapes, compatibility forms, obfuscated and cut-off emails, URLs without a
scheme, phones with prefixes, odd separators and extensions, padded and host-embedded IPs."""

from __future__ import annotations

import json
import string
from functools import lru_cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anonymizer import Anonymizer, Key, load_policy
from anonymizer.core.text import lookalikes, textnorm
from anonymizer.core.roster import Person, Roster

KEY = Key(bytes(range(32)))
ROSTER = Roster(
    [
        Person("530114", ("zelda-q",), ("zelda.quintero@example.com",), ("Zelda Quintero",)),
        Person("311977", ("zoe_dangelo",), ("zoe.dangelo@example.it",), ("Zoë D'Angelo",)),
        Person("312590", ("wangfang88",), (), ("王芳",)),
    ],
    ["test"],
)
ACTOR = "QXsomeone"


@lru_cache(maxsize=2)
def anonymizer(with_roster: bool = True) -> Anonymizer:
    return Anonymizer(load_policy("research"), KEY, ROSTER if with_roster else None)


def scrubbed(text: str, with_roster: bool = True) -> str:
    """The body of a forum post by ACTOR after the research policy."""
    event = {
        "username": ACTOR,
        "event_type": "edx.forum.thread.created",
        "event_source": "server",
        "context": {"user_id": 999999999, "course_id": "course-v1:X+Y+Z"},
        "event": {"body": text},
    }
    return anonymizer(with_roster).anonymize_event(event)["event"]["body"]


def pseudonym(username: str) -> str:
    event = {"username": username, "event_type": "page_close", "event": ""}
    return anonymizer(True).anonymize_event(event)["username"]


# ---------------------------------------------------------------- encodings of the text


@pytest.mark.parametrize(
    "disguised, expected",
    [
        ("ping zel\u200bda-q!", "ping {zelda}!"),
        ("ping zel\u00adda-q!", "ping {zelda}!"),
        ("ping z\u0435lda-q!", "ping {zelda}!"),
        ("ping zel<b>da</b>-q!", "ping {zelda}!"),
        ("ping zel*da*-q!", "ping {zelda}!"),
        (r"ping zelda\-q!", "ping {zelda}!"),
        (r"ask zoe\_dangelo", "ask {zoe}"),
        ("Zel\u200bda Quin\u200btero", "[NAME] [NAME]"),
        ("<b>Zelda</b> <i>Quintero</i>", "<b>[NAME]</b> <i>[NAME]</i>"),
        ("**Zelda** Quintero", "**[NAME]** [NAME]"),
        ("Zelda<br>Quintero", "[NAME]<br>[NAME]"),
        ("id 530\u200b114.", "id [USER_ID]."),
    ],
)
def test_invisible_characters_look_alikes_and_markup_inside_identifiers_are_read_through(disguised, expected):
    """The whole disguised span is replaced in the text as written."""
    assert scrubbed(disguised) == expected.format(zelda=pseudonym("zelda-q"), zoe=pseudonym("zoe_dangelo"))


def test_a_disguised_actor_is_found_without_a_roster():
    event = {"username": "zelda-q", "event_type": "edx.forum.thread.created", "event_source": "server",
             "context": {"user_id": 1, "course_id": "course-v1:X+Y+Z"}, "event": {"body": "I am zel\u200bda-q, z\u0435lda-q, zel<b>da</b>-q"}}  # fmt: skip
    body = anonymizer(False).anonymize_event(event)["event"]["body"]
    assert "zel" not in body and "lda" not in body


@pytest.mark.parametrize(
    "disguised",
    [
        "jane&#64;example.com", "jane&#x40;example.com", "jane&commat;example.com", "jane＠example.com",
        "ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ", "jane%40example.com", "jane%2540example.com", r"jane\u0040example.com",
        r"jane\\u0040example.com", "&#106;&#97;&#110;&#101;&#64;example.com",
    ],
)
def test_an_encoded_email_is_replaced_and_the_rest_of_the_text_kept_as_written(disguised):
    assert scrubbed(f"Mail {disguised} &amp; me") == "Mail [EMAIL] &amp; me"


@pytest.mark.parametrize(
    "disguised, replacement",
    [
        ("Zelda&#32;Quintero", "[NAME]&#32;[NAME]"),  # by part, as in plain text
        ("Zo&euml; D&#39;Angelo", "[NAME] [NAME]"),
        (r"\u738b\u82b3", "[NAME]"),
        ("%E7%8E%8B%E8%8A%B3", "[NAME]"),
        ("zelda&#45;q", None),
        ("ｚｅｌｄａ－ｑ", None),
        ("&#64;zelda-q", "@"),
    ],
)
def test_a_roster_person_in_disguise_is_found(disguised, replacement):
    out = scrubbed(f"ask {disguised} today")
    if replacement is None:
        replacement = pseudonym("zelda-q")
    elif replacement == "@":
        replacement = "@" + pseudonym("zelda-q")
    assert out == f"ask {replacement} today"


def test_the_actors_own_username_in_disguise_is_replaced_without_a_roster():
    out = scrubbed("I am QX&#115;omeone, or QXsomeone, or \\u0051Xsomeone", with_roster=False)
    assert out.count(pseudonym(ACTOR)) == 3 and "omeone" not in out


def test_a_json_answer_inside_a_string_is_scrubbed_where_it_is_written():
    answer = json.dumps({"answer": "write to zelda.quintero@example.com, 王芳"})
    out = scrubbed(json.dumps(answer))  # the answer as a JSON string inside a JSON string
    assert "zelda" not in textnorm.decode(out).text and "王芳" not in textnorm.decode(out).text
    assert '\\"answer\\"' in out  # the rest keeps its escapes


# ---------------------------------------------------------------- emails people obfuscate


@pytest.mark.parametrize(
    "written",
    [
        "jane.doe (at) example (dot) com", "jane.doe [at] example [dot] com", "jane.doe {at} example {dot} com",
        "jane.doe<at>example<dot>com", "jane.doe AT example DOT com", "jane at example dot com",
        "jane.doe at example.com", "jane at gmail.com", "jane.doe @ example.com", "jane.doe@ example.com",
        "jane.doe (at) example.co.uk", "jane(at)example(dot)com",
    ],
)
def test_an_obfuscated_email_is_replaced(written):
    assert scrubbed(f"Contact: {written} please") == "Contact: [EMAIL] please"


@pytest.mark.parametrize("ending", ["jane.doe@exam", "jane.doe@example.c", "jane.doe@", "jane.doe@exam…", "jane.doe@exam..."])
def test_an_address_cut_off_by_truncation_is_replaced(ending):
    assert scrubbed(f"You can write to {ending}").startswith("You can write to [EMAIL]")
    assert "jane" not in scrubbed(f"You can write to {ending}")


@pytest.mark.parametrize("written", ["reach me at machebe797@qq</p><p>Grader output", "mail jane.doe@mailhost today", "jane.doe@intranet, or call"])
def test_an_address_without_a_whole_domain_is_replaced_anywhere_in_the_text(written):
    assert "machebe797" not in scrubbed(written) and "jane" not in scrubbed(written)
    assert "[EMAIL]" in scrubbed(written)


def test_a_block_key_and_a_mention_are_no_address():
    text = "see block-v1:Org+C+R+type@problem+block@abc123 and thanks @zelda"
    assert "[EMAIL]" not in scrubbed(text)


@pytest.mark.parametrize(
    "text",
    [
        "at the end of the day", "meet at home dot", "Chapter 3 (at) most", "look at example (dot) notatld",
        "It is available at docs.example.org", "Use @property in Python", "see block-v1:X+Y+2024+type@problem+block@932e6f",
        "We met at noon [at] the lab.", "Sold at 3.50 each",
    ],
)
def test_look_alikes_of_obfuscated_emails_survive(text):
    assert scrubbed(text, with_roster=False) == text


# ---------------------------------------------------------------- URLs without a scheme


@pytest.mark.parametrize(
    "url",
    ["example.net/u/handle", "linkedin.com/in/jane-doe-123", "www.facebook.com/jane.doe", "WWW.Example.org/x",
     "github.com/janedoe", "sub.example.co.uk:8080/profile?id=7"],
)
def test_a_url_without_a_scheme_is_replaced(url):
    assert scrubbed(f"My profile: {url} (public)") == "My profile: [URL] (public)"


@pytest.mark.parametrize(
    "text",
    ["I am on v1.2.3 now.", "Run main.py then utils.py.", "Due 12.03.2024, not 12.04.2024.", "Use e.g. and i.e. well.",
     "It is 3.14/2 roughly.", "Edit README.md/notes.txt first.", "Read src/app/main.py and/or docs/index.md.",
     "pi/4 radians", "Version 2.0/3.0 of the spec."],
)
def test_look_alikes_of_urls_survive(text):
    assert scrubbed(text, with_roster=False) == text


# ---------------------------------------------------------------- phones


@pytest.mark.parametrize(
    "written",
    ["tel:+1-415-555-0132", "Tel:+14155550132", "phone:+44 20 7946 0958", "Phone:415-555-0132",
     "+1\u00a0415\u00a0555\u00a00132", "415\u2013555\u20130132", "415\u202f555\u202f0132", "(415)\u00a0555\u20110132",
     "415-555-0132 x123", "415-555-0132 ext. 12", "+1 415 555 0132 extension 7", "415.555.0132x9"],
)
def test_a_phone_with_a_prefix_odd_separators_or_an_extension_is_replaced(written):
    out = scrubbed(f"Call {written} today")
    assert "[PHONE]" in out and "0132" not in out and "0958" not in out
    assert out.endswith(" today")


def test_a_phone_in_a_tel_link_keeps_the_prefix():
    assert scrubbed("Call tel:+1-415-555-0132 today") == "Call tel:[PHONE] today"


# ---------------------------------------------------------------- IP addresses


@pytest.mark.parametrize(
    "written, expected",
    [
        ("192.168.001.023", "[IP]"),
        ("010.000.001.023", "[IP]"),
        ("ec2-203-0-113-25.compute-1.amazonaws.com", "ec2-[IP].compute-1.amazonaws.com"),
        ("ip-10-0-1-23.ec2.internal", "ip-[IP].ec2.internal"),
        ("host_203.0.113.5", "host_[IP]"),
        ("203.0.113.5_primary", "[IP]_primary"),
        ("2001:db8::1.", "[IP]."),
        ("(fe80::1:2)", "([IP])"),
        ("2001:db8::42:", "[IP]:"),
    ],
)
def test_padded_embedded_and_punctuated_ip_addresses_are_replaced(written, expected):
    assert scrubbed(f"server {written} down") == f"server {expected} down"


@pytest.mark.parametrize("text", ["Released on 2024.03.15 as 1.26.4", "ISBN 978-3-16-148410-0", "SN-20240311-0042",
                                  "chapters 1-2-3-4 of part 5", "build-2024-03-15-1", "ratio a :: b", "::"])
def test_look_alikes_of_ip_addresses_survive(text):
    assert scrubbed(text, with_roster=False) == text


# ---------------------------------------------------------------- properties

_FILLER = st.text(alphabet=string.ascii_letters + string.digits + " .,;!?()", max_size=30)
_ENCODE = {
    "plain": lambda s: s,
    "entity": lambda s: "".join(f"&#{ord(c)};" for c in s),
    "hex_entity_at": lambda s: s.replace("@", "&#x40;"),
    "named_entity": lambda s: s.replace("@", "&commat;").replace(".", "&period;"),
    "percent": lambda s: "".join(f"%{b:02X}" for b in s.encode()),
    "double_percent_at": lambda s: s.replace("@", "%2540"),
    "json": lambda s: "".join(f"\\u{ord(c):04x}" for c in s),
    "double_json": lambda s: "".join(f"\\\\u{ord(c):04x}" for c in s),
    "fullwidth": lambda s: "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in s),
    "obfuscated": lambda s: s.replace("@", " (at) ").replace(".", " (dot) ") if "@" in s else s,
    "spaced_at": lambda s: s.replace("@", " @ "),
}
_SECRETS = ["zelda.quintero@example.com", "jane.doe@mail.example.org", "zelda-q", "wangfang88", ACTOR, "王芳"]


def _fold(text: str) -> str:
    view = textnorm.decode(text)
    return (text if view is None else view.text).casefold()


@settings(max_examples=150, deadline=None)
@given(before=_FILLER, after=_FILLER, secret=st.sampled_from(_SECRETS), encoding=st.sampled_from(sorted(_ENCODE)),
       with_roster=st.booleans())
def test_a_planted_identifier_never_survives_in_any_decoded_form(before, after, secret, encoding, with_roster):
    if not with_roster and "@" not in secret and secret != ACTOR:
        with_roster = True  # without a roster only the actor and the detectors are known
    out = scrubbed(f"{before} {_ENCODE[encoding](secret)} {after}", with_roster)
    folded = _fold(out)
    for piece in (secret, secret.split("@")[0]) if "@" in secret else (secret,):
        assert piece.casefold() not in folded


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=string.ascii_letters + string.digits + " .,;:!?'\"()-_/\n", max_size=80))
def test_text_without_triggers_or_findings_is_unchanged(text):
    while "__" in text:  # "__x__" is Markdown emphasis, read through
        text = text.replace("__", "_")
    if lookalikes.EMPHASIS.search(text):
        text = text.replace("_", "-")  # so is "_x_" at the edges of words
    assert textnorm.decode(text) is None
    if not any(ch.isdigit() for ch in text) and "/" not in text and "at" not in text.lower():
        assert scrubbed(text, with_roster=False) == text


# ---------------------------------------------------------------- single-underscore emphasis


@pytest.mark.parametrize("written, expected", [
    ("thanks _Mark_ Young!", "thanks _[NAME]!"),
    ("thanks _Mark Young_!", "thanks _[NAME]_!"),
    ("ask _ymir_balder77_ or _ymir_", "ask {ymir} or {short}"),  # a username's underscores are its own
    ("snake_case, a_b_c and __init__ stay", "snake_case, a_b_c and __init__ stay"),
])
def test_a_single_underscore_at_word_edges_reads_as_emphasis(written, expected):
    """``_Mark_`` is Markdown italics: read through, so that a name whose parts are common words
    (found only whole) is found; a username with underscores is found as written."""
    roster = Roster([Person("7", ("_ymir_balder77_",), (), ("Mark Young",)), Person("8", ("_ymir_",))])
    anonymizer = Anonymizer(load_policy("research"), KEY, roster)

    def body(text: str) -> str:
        event = {"username": ACTOR, "event_type": "edx.forum.thread.created", "event_source": "server",
                 "context": {"course_id": "course-v1:X+Y+Z"}, "event": {"body": text}}
        return anonymizer.anonymize_event(event)["event"]["body"]

    ymir, short = (anonymizer.anonymize_event({"username": u, "event_type": "page_close", "event": ""})["username"] for u in ("_ymir_balder77_", "_ymir_"))
    assert body(written) == expected.format(ymir=ymir, short=short)


def test_verify_reads_a_single_underscore_emphasis_and_a_username_as_written():
    from anonymizer.verify.forms import normalize_text

    assert normalize_text('{"body": "thanks _Mark_ Young"}') == '{"body": "thanks mark young"}'
    assert normalize_text("_ymir_") == "_ymir_"  # a value that is all of it: a username, not emphasis
