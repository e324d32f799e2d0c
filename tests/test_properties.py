"""Property: whatever the event's shape, no value placed in an identifier field survives."""

from __future__ import annotations

import json
from urllib.parse import quote_plus

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anonymizer import Anonymizer, Key, detectors, load_policy
from anonymizer.detectors import TextScrubber
from anonymizer.operators.scrub_text import replace_username, username_pattern

POLICY = load_policy("research")
ANONYMIZER = Anonymizer(POLICY, Key(b"\x07" * 32))

# Identifiers carry a marker that nothing else in a generated event (or any pseudonym) contains.
usernames = st.from_regex(r"\AQX[a-z0-9]{3,8}(?:[_\-][a-z0-9]{1,5})?\Z")
user_ids = st.integers(min_value=100_000_000, max_value=9_999_999_999)
ipv4 = st.tuples(*[st.integers(1, 254)] * 4).map(lambda t: "%d.%d.%d.%d" % t)
ipv6 = st.tuples(*[st.integers(1, 0xFFFF)] * 8).map(lambda t: ":".join(f"{x:x}" for x in t))
sessions = st.from_regex(r"\A[0-9a-f]{32}\Z")
agents = st.sampled_from(
    [
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/30.0.1599.101 Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 16_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.0 Mobile/15E148 Safari/604.1",
        "edX/org.edx.mobile (2.0; OS Version 9.0 (Build 16A366))",
    ]
)
emails = st.from_regex(r"\AQX[a-z]{3,8}\.[a-z]{2,6}@example\.(?:com|org|ie)\Z")
prose = st.sampled_from(["Thanks for the help", "I think the answer is 42", "see the video at 3:15", ""])


@st.composite
def events(draw):
    username = draw(usernames)
    user_id = draw(user_ids)
    email = draw(emails)
    ip = draw(st.one_of(ipv4, ipv6))
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
        "agent": draw(agents),
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
    secrets = {username, str(user_id), email, ip, event["session"], event["agent"], event["referer"]}
    return event, secrets


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events())
def test_no_identifier_survives_anywhere_in_the_output(case):
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


@settings(max_examples=100, deadline=None)
@given(events())
def test_the_same_event_always_gives_the_same_bytes(case):
    event, _ = case
    first = Anonymizer(POLICY, Key(b"\x07" * 32)).anonymize_line(orjson.dumps(event))
    second = ANONYMIZER.anonymize_line(orjson.dumps(event))
    assert first == second


# The actor-username scan of scrub_text must find exactly what the username pattern finds.
_HANDLE_TEXT = st.text(alphabet="aAbBiIsSzZ09_-.@ ,é'\nıİſςσΣK", max_size=40)


@settings(max_examples=600, deadline=None)
@given(text=_HANDLE_TEXT, username=st.text(alphabet="aAbBiIsS09_-.éıſςσ", min_size=2, max_size=6))
def test_the_username_scan_agrees_with_the_username_pattern(text, username):
    planted = text[: len(text) // 2] + username.upper() + text[len(text) // 2 :]
    for candidate in (text, planted):
        assert replace_username(candidate, username, "<P>") == username_pattern(username).sub("<P>", candidate)


# The detectors run only the branches whose hint is present: a hint must never hide a finding.
_DETECTABLE = st.text(alphabet="0123456789٣.:@/+-_() abcfiowxW\n", max_size=60)


@settings(max_examples=500, deadline=None)
@given(text=_DETECTABLE)
def test_the_detector_hints_never_hide_a_finding(text):
    scrubber = TextScrubber()
    every_branch = detectors._pattern(tuple(detectors._ALTERNATIVES))
    if not detectors.obfuscated_emails(text):  # found outside the pattern, and merged with it
        assert scrubber.scrub(text) == every_branch.sub(scrubber._replace, text)


def test_the_detector_hints_on_known_shapes():
    scrubber = TextScrubber()
    for text in ("call 0300 123 4567", "from fe80::1 today", "1:2:3:4:5:6:7:8", "at 10.0.0.7", "٠٣٠٠ ١٢٣ ٤٥٦٧"):
        every_branch = detectors._pattern(tuple(detectors._ALTERNATIVES))
        assert scrubber.scrub(text) == every_branch.sub(scrubber._replace, text)
    assert scrubber.scrub("from fe80::1 today") == "from [IP] today"
    assert scrubber.scrub("1:2:3:4:5:6:7:8") == "[IP]"
