"""Property: whatever the event's shape, no value placed in an identifier field survives."""

from __future__ import annotations

import json
from urllib.parse import quote_plus

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anonymizer import Anonymizer, Key, load_policy
from anonymizer.core.text.detectors import TextScrubber
from anonymizer.core.operators.scrub_text import replace_username, username_pattern
from support import every_string

POLICY = load_policy("research")
ANONYMIZER = Anonymizer(POLICY, Key(b"\x07" * 32))

# Identifiers carry a marker (QX, any case) that nothing else in a generated event (or any
# pseudonym) contains. Usernames have the shapes of real handles: dots, capitals, hyphens,
# underscores, digits, non-ASCII letters.
_HANDLE_CHARS = "a-zA-Z0-9éøñüåçÉØÑÜ"
usernames = st.from_regex(rf"\A[Qq][Xx][{_HANDLE_CHARS}]{{2,8}}(?:[._\-][{_HANDLE_CHARS}]{{1,5}}){{0,2}}\Z")
user_ids = st.integers(min_value=100_000_000, max_value=9_999_999_999)
_octet = st.integers(1, 254)
ipv4 = st.tuples(_octet, _octet, _octet, _octet).map(lambda t: "%d.%d.%d.%d" % t)
ipv6 = st.tuples(*[st.integers(1, 0xFFFF)] * 8).map(lambda t: ":".join(f"{x:x}" for x in t))
sessions = st.from_regex(r"\A[0-9a-f]{32}\Z")


@st.composite
def ips(draw):
    """(value as logged, the addresses in it): v4, v6, IPv4-mapped, bracketed, forwarding chains."""
    one = st.one_of(
        ipv4.map(lambda a: (a, [a])),
        ipv6.map(lambda a: (a, [a])),
        ipv4.map(lambda a: (f"::ffff:{a}", [a])),
        ipv6.map(lambda a: (f"[{a}]", [a])),
        ipv6.map(lambda a: (a.upper(), [a])),
    )
    parts = draw(st.lists(one, min_size=1, max_size=3))
    separator = draw(st.sampled_from([", ", ","]))
    return separator.join(text for text, _ in parts), [address for _, found in parts for address in found]


_DESKTOP_OS = ["Windows NT 10.0; Win64; x64", "Windows NT 6.1; WOW64", "Macintosh; Intel Mac OS X 10_15_7", "X11; Linux x86_64", "X11; Ubuntu; Linux x86_64", "X11; CrOS x86_64 14541.0.0"]
_PHONES = ["iPhone; CPU iPhone OS 16_0 like Mac OS X", "iPad; CPU OS 15_4 like Mac OS X", "Linux; Android 13; Pixel 7", "Linux; Android 12; SM-T870", "Linux; Android 11; SM-A515F"]


@st.composite
def agents(draw):
    """A realistic generated agent: desktop and mobile browsers, the edX apps, bots and tools."""
    major, minor, build = draw(st.integers(1, 130)), draw(st.integers(0, 9)), draw(st.integers(0, 9999))
    desktop, phone = draw(st.sampled_from(_DESKTOP_OS)), draw(st.sampled_from(_PHONES))
    return draw(
        st.sampled_from(
            [
                f"Mozilla/5.0 ({desktop}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{major}.0.{build}.{minor} Safari/537.36",
                f"Mozilla/5.0 ({desktop}; rv:{major}.0) Gecko/20100101 Firefox/{major}.0",
                f"Mozilla/5.0 ({desktop}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{major}.0.0.0 Safari/537.36 Edg/{major}.0.{build}.{minor}",
                f"Mozilla/5.0 ({phone}) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{major % 18 + 1}.{minor} Mobile/15E148 Safari/604.1",
                f"Mozilla/5.0 ({phone}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{major}.0.{build}.{minor} Mobile Safari/537.36",
                f"edX/org.edx.mobile ({minor}.{build}; OS Version {major % 17 + 1}.0 (Build 16A366))",
                f"Dalvik/2.1.0 ({phone} Build/RP1A.200720.012) edX/org.edx.mobile/2.{minor}.{build}",
                f"Mozilla/5.0 (compatible; Googlebot/2.{minor}; +http://www.google.com/bot.html)",
                f"Mozilla/5.0 (compatible; bingbot/2.{minor}; +http://www.bing.com/bingbot.htm)",
                f"curl/{major % 9}.{minor}.{build % 10}",
                f"python-requests/2.{major}.{minor}",
            ]
        )
    )


# Emails of many shapes: capitals, dots, plus-tags, subdomains, other top-level domains.
emails = st.from_regex(
    r"\A[Qq][Xx][A-Za-z0-9]{2,8}(?:[._][A-Za-z0-9]{1,6})?(?:\+[a-z0-9]{1,6})?@(?:[A-Za-z0-9]{1,8}\.){0,2}[A-Za-z][A-Za-z0-9\-]{0,8}[A-Za-z0-9]\.(?:com|org|ie|co\.uk|edu|io|de|ac\.jp)\Z"
)
_WORDS = ["the", "answer", "is", "I", "think", "thanks", "for", "help", "video", "see", "lecture", "problem", "Mark", "my", "words", "Will", "this", "work", "étude", "naïve", "数学", "ok"]
_PUNCTUATION = [",", ".", "!", "?", ":", ";", "(", ")", "-", "'", '"', "...", "—"]
_URLS = ["https://example.org/page", "http://lms.example/courses/x/info?a=1", "www.example.com/help", "https://youtu.be/abc123"]
prose = st.lists(
    st.one_of(
        st.sampled_from(_WORDS),
        st.sampled_from(_PUNCTUATION),
        st.integers(0, 99999).map(str),
        st.decimals(0, 1000, places=2).map(str),
        st.sampled_from(_URLS),
    ),
    max_size=12,
).map(" ".join)


@st.composite
def events(draw):
    username = draw(usernames)
    user_id = draw(user_ids)
    email = draw(emails)
    ip, addresses = draw(ips())
    text = f"{draw(prose)} mail me at {email}, I am {username.upper()} ({username})"
    family = draw(st.sampled_from(["forum", "problem_browser", "problem_graded", "server_problem", "grades", "enrollment", "implicit", "rescore", "ora_saved"]))
    if family == "forum":
        event_type, source = "edx.forum.thread.created", "server"
        payload = {"body": text, "title": text, "target_username": username, "user_id": str(user_id), "url": f"https://lms.example/u/{username}?email={email}"}
    elif family == "problem_browser":
        event_type, source = "problem_check", "browser"
        payload = f"input_abc_2_1={quote_plus(text)}&input_abc_3_1%5B%5D=choice_1"
    elif family == "problem_graded":
        event_type, source = "problem_graded", "browser"
        payload = [f"input_abc_2_1={quote_plus(text)}", f"<div>{username} {email}</div>"]
    elif family == "server_problem":
        event_type, source = "problem_check", "server"
        payload = {"answers": {"abc_2_1": text}, "submission": {"abc_2_1": {"answer": text, "question": "Q?"}}, "correct_map": {"abc_2_1": {"msg": text, "queuestate": {"key": username}}}}
    elif family == "grades":
        event_type, source = "edx.grades.problem.submitted", "server"
        payload = {"user_id": draw(st.sampled_from([user_id, str(user_id)])), "weighted_earned": 1.0}
    elif family == "enrollment":
        event_type, source = "edx.course.enrollment.activated", "server"
        payload = {"user_id": user_id, "username": username, "email": email, "mode": "audit"}
    elif family == "implicit":
        event_type, source = f"/courses/course-v1:X+Y+Z/u/{username}/", "server"
        payload = json.dumps({"POST": {"email": [email], "username": [username]}, "GET": {}})
    elif family == "rescore":
        event_type, source = "problem_rescore", "server"
        payload = {"student": username, "problem_id": "p1", "new_score": 1}
    else:
        event_type, source = "openassessmentblock.save_submission", "browser"
        payload = {"saved_response": json.dumps({"parts": [{"text": text}]})}
    if draw(st.booleans()) and not isinstance(payload, str):
        payload = json.dumps(payload)
    event = {
        "username": username,
        "event_type": event_type,
        "ip": ip,
        "agent": draw(agents()),
        "host": "lms.example",
        "referer": f"https://lms.example/u/{username}/?session={draw(sessions)}",
        "accept_language": "en-US,en;q=0.8",
        "event": payload,
        "event_source": source,
        "context": {"user_id": draw(st.sampled_from([user_id, str(user_id)])), "username": username, "course_id": "course-v1:X+Y+Z", "path": f"/u/{username}", "ip": ip},
        "time": "2024-03-01T10:00:00.000000+00:00",
        "page": None,
        "session": draw(sessions),
    }
    secrets = {username, str(user_id), email, *addresses, event["session"], event["agent"], event["referer"]}
    return event, secrets


def assert_no_identifier_survives(case):
    event, secrets = case
    status, line = ANONYMIZER.anonymize_line(orjson.dumps(event))
    assert status == "written"
    out = line.decode()
    # Look through every encoding the output can hold: raw, JSON-escaped, URL-encoded.
    haystacks = [out, out.lower(), json.loads(out).__repr__()]
    for secret in secrets:
        for haystack in haystacks:
            assert secret not in haystack
            assert secret.lower() not in haystack.lower()
            assert quote_plus(secret) not in haystack


# CI runs hypothesis's default number of examples; `make test-slow` runs the long versions.
CI_SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW_SETTINGS = settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@CI_SETTINGS
@given(events())
def test_no_identifier_survives_anywhere_in_the_output(case):
    assert_no_identifier_survives(case)


@pytest.mark.slow
@SLOW_SETTINGS
@given(events())
def test_no_identifier_survives_anywhere_in_the_output_long(case):
    assert_no_identifier_survives(case)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events())
def test_the_same_event_always_gives_the_same_bytes(case):
    # A fresh anonymizer per example (compiling the policy is the costly part: few examples).
    event, _ = case
    first = Anonymizer(POLICY, Key(b"\x07" * 32)).anonymize_line(orjson.dumps(event))
    second = ANONYMIZER.anonymize_line(orjson.dumps(event))
    assert first == second


# ---------------------------------------------------------------- fields no rule names

UNNAMED = "zq_unnamed_"  # no rule names a key with this prefix, and nothing else contains it
_unnamed_keys = st.from_regex(r"\A[a-z]{1,6}\Z").map(lambda k: UNNAMED + k)
_unnamed_values = st.recursive(
    st.one_of(st.from_regex(r"\AZQV[0-9a-f]{6}\Z"), st.integers(10**9, 10**10).map(lambda n: f"ZQV{n}")),
    lambda inner: st.one_of(st.lists(inner, min_size=1, max_size=3), st.dictionaries(_unnamed_keys, inner, min_size=1, max_size=3)),
    max_leaves=5,
)
# Where a field no rule names can sit: the envelope, context, context.client, the payload, the
# payload's nested objects and lists, and a JSON string inside the payload.
_PLACES = ["top", "context", "context.client", "payload", "payload.nested", "payload.list", "json_string"]


@st.composite
def events_with_unnamed_fields(draw):
    event, _ = draw(events())
    planted = []
    for _ in range(draw(st.integers(1, 4))):
        key, value, place = draw(_unnamed_keys), draw(_unnamed_values), draw(st.sampled_from(_PLACES))
        planted.append(value)
        payload = event["event"]
        decoded = json.loads(payload) if isinstance(payload, str) and payload[:1] == "{" else payload
        if place == "top":
            event[key] = value
        elif place == "context":
            event["context"][key] = value
        elif place == "context.client":
            event["context"].setdefault("client", {})[key] = value
        elif isinstance(decoded, dict) and event["event_type"] != "problem_check":
            # Payload places only where the rule names fields (problem_check's server rule keeps
            # whole answer maps, the browser rule scrubs the whole payload).
            if place == "payload":
                decoded[key] = value
            elif place == "payload.nested":
                decoded[key] = {UNNAMED + "inner": [value]}
            elif place == "payload.list":
                decoded[key] = [value, {UNNAMED + "inner": value}]
            elif "saved_response" in decoded:
                inner = json.loads(decoded["saved_response"])
                inner[key] = value
                inner["parts"].append({UNNAMED + "part": value})
                decoded["saved_response"] = json.dumps(inner)
            else:
                decoded[key] = json.dumps({UNNAMED + "inner": value})
            event["event"] = json.dumps(decoded) if isinstance(payload, str) else decoded
        else:
            event[key] = value
    return event, planted


def assert_unnamed_fields_are_dropped(case):
    event, planted = case
    status, line = ANONYMIZER.anonymize_line(orjson.dumps(event))
    assert status == "written"
    out = every_string(line)
    assert UNNAMED not in out, "a key no rule names was kept"
    assert "zqv" not in out, "a value under a key no rule names was kept"


@CI_SETTINGS
@given(events_with_unnamed_fields())
def test_fields_no_rule_names_are_dropped(case):
    assert_unnamed_fields_are_dropped(case)


@pytest.mark.slow
@SLOW_SETTINGS
@given(events_with_unnamed_fields())
def test_fields_no_rule_names_are_dropped_long(case):
    assert_unnamed_fields_are_dropped(case)


# The actor-username scan of scrub_text must find exactly what the username pattern finds.
_HANDLE_TEXT = st.text(alphabet="aAbBiIsSzZ09_-.@ ,é'\nıİſςσΣK", max_size=40)


@settings(max_examples=600, deadline=None)
@given(text=_HANDLE_TEXT, username=st.text(alphabet="aAbBiIsS09_-.éıſςσ", min_size=2, max_size=6))
def test_the_username_scan_agrees_with_the_username_pattern(text, username):
    """The pattern finds the username anywhere, ignoring case; of its matches, those that stand
    alone are replaced (the first that does, then on after it): the scan of lower-cased ASCII text
    must replace exactly those."""
    from anonymizer.core.text.glue import stands_alone

    def by_pattern(candidate: str) -> str:
        out, at, search = [], 0, username_pattern(username).search
        match = search(candidate)
        while match is not None:
            start, end = match.span()
            if stands_alone(candidate, start, end):
                out += [candidate[at:start], "<P>"]
                at = end
                match = search(candidate, end)
            else:
                match = search(candidate, start + 1)
        return "".join(out) + candidate[at:]

    planted = text[: len(text) // 2] + username.upper() + text[len(text) // 2 :]
    for candidate in (text, planted):
        assert replace_username(candidate, username, "<P>") == by_pattern(candidate)


# What the detectors promise: a planted email, address or phone number, whatever text surrounds
# it, is gone from the result and its placeholder is there.
_AROUND = st.text(alphabet="abcxyz ,.;:()!?\n", max_size=30)
_PHONE_NUMBERS = ["+1 617 555 0123", "(617) 555-0123", "+44 20 7946 0958", "020 7946 0958", "+49 30 901820", "+33 1 42 68 53 00", "+91 98765 43210"]
_PLANTED = st.one_of(
    emails.map(lambda e: (e, "[EMAIL]")),
    ipv4.map(lambda a: (a, "[IP]")),
    ipv6.map(lambda a: (a, "[IP]")),
    st.sampled_from(_PHONE_NUMBERS).map(lambda p: (p, "[PHONE]")),
)


def assert_planted_item_is_replaced(before, planted, after):
    value, placeholder = planted
    result = TextScrubber().scrub(f"{before} {value} {after}")
    assert value not in result
    assert placeholder in result


@CI_SETTINGS
@given(before=_AROUND, planted=_PLANTED, after=_AROUND)
def test_a_planted_email_address_or_phone_is_replaced(before, planted, after):
    assert_planted_item_is_replaced(before, planted, after)


@pytest.mark.slow
@SLOW_SETTINGS
@given(before=_AROUND, planted=_PLANTED, after=_AROUND)
def test_a_planted_email_address_or_phone_is_replaced_long(before, planted, after):
    assert_planted_item_is_replaced(before, planted, after)


def test_the_detectors_on_known_shapes():
    scrubber = TextScrubber()
    assert scrubber.scrub("call 0300 123 4567") == "call [PHONE]"
    assert scrubber.scrub("from fe80::1 today") == "from [IP] today"
    assert scrubber.scrub("1:2:3:4:5:6:7:8") == "[IP]"
    assert scrubber.scrub("at 10.0.0.7") == "at [IP]"
    assert scrubber.scrub("version 1.2.3 of 2024") == "version 1.2.3 of 2024"
