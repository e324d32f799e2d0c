"""Write the expected values of the known-answer vectors from the code as it is.

    python tests/vectors/generate.py              # every file
    python tests/vectors/generate.py mask_ip      # one file: pseudonyms, mask_ip, agents, urls or text

The inputs are defined here; the expected values are whatever the code gives today. Run it only
when a vector file is created or a vector is added: **changing an expected value is a breaking
change** (packages made before and after no longer join). The script refuses to change an
existing expected value unless ``PSEUDONYM_VERSION`` in ``anonymizer/pseudonyms.py`` has been
raised above the version the file records; then it rewrites the file under the new version, and
the CHANGELOG must say what changed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from harness import FILES, HERE, Runner  # noqa: E402

from anonymizer.core.pseudonyms import PSEUDONYM_VERSION  # noqa: E402

KEY_HEX = bytes(range(32)).hex()
OTHER_KEY_HEX = (b"\x07" * 32).hex()
IDENTITIES = {
    "username": {"format": "text", "prefix": "u_"},
    "user_id": {"format": "number"},
    "session": {"format": "text", "prefix": "s_"},
    "anonymous_id": {"format": "text", "prefix": "a_"},
    "team": {"format": "text", "prefix": "t_"},
    "forum_post": {"format": "text", "prefix": "fp_", "case": "insensitive"},
    "submission": {"format": "text", "prefix": "sub_", "case": "insensitive"},
}
ROSTER = {
    "columns": ["id", "username", "email", "name"],
    "rows": [
        ["530114", "zelda-q", "zelda.quintero@example.org", "Zelda Quintero"],
        ["77", "ymir_balder77", "ymir@example.net", "Ymir Balder"],
        [None, "noid.person", "noid@example.com", "Nadia Oidwell"],
    ],
}

USERNAME = {"op": "pseudonymize", "identity": "username"}
USER_ID = {"op": "pseudonymize", "identity": "user_id"}
SESSION = {"op": "pseudonymize", "identity": "session"}
ANONYMOUS_ID = {"op": "pseudonymize", "identity": "anonymous_id"}
TEAM = {"op": "pseudonymize", "identity": "team"}
FORUM_POST = {"op": "pseudonymize", "identity": "forum_post"}
SUBMISSION = {"op": "pseudonymize", "identity": "submission"}


def v(name: str, rule, value, **extra) -> dict:
    return {"name": name, "rule": rule, "input": value, **extra}


def pseudonym_cases() -> list[dict]:
    hmacs = [
        ("username", "zelda-q"),
        ("username", ""),
        ("username", "øyvind.ærø"),
        ("username", " Zelda-Q\t"),  # the HMAC takes the value as given: stripping is the operator's
        ("user_id", "530114"),
        ("user_id", "42"),
        ("session", "2b1d9a6c0f5e4e8a9c3b7d1e6f0a2c4b"),
        ("anonymous_id", "5afe5d9bb03796557ee2614f5c9611fb"),
        ("team", "Zelda-s-Study-Group-7f3a"),
        ("forum_post", "5eadf5ec7c1f2d81018cb156"),
        ("submission", "c1794c38-b6ed-4bee-9311-c7dd359fef9b"),
        ("email", "zelda.quintero@example.org"),
        ("roster", "530114\x1fzelda-q\x1fzelda.quintero@example.org\x1fZelda Quintero"),
    ]
    cases = [{"name": f"hmac {ns} {value!r}", "hmac": {"namespace": ns, "value": value}} for ns, value in hmacs]
    cases.append({"name": "hmac under another key", "hmac": {"namespace": "username", "value": "zelda-q"}, "key_hex": OTHER_KEY_HEX})
    cases.append({"name": "key id", "key_id": True})
    cases.append({"name": "key id of another key", "key_id": True, "key_hex": OTHER_KEY_HEX})
    cases += [
        v("username", USERNAME, "zelda-q"),
        v("username with surrounding spaces (stripped)", USERNAME, "  zelda-q\t"),
        v("username with dots, underscores, digits", USERNAME, "ymir_balder77.x"),
        v("username with capitals (lower-cased first: the pseudonym of zelda-q)", USERNAME, "Zelda-Q"),
        v("username in upper case, non-ASCII (lower-cased first)", USERNAME, "ØYVIND.ÆRØ"),
        v("username with non-ASCII letters", USERNAME, "øyvind.ærø"),
        v("username in CJK", USERNAME, "用户名"),
        v("an email in a username field, no roster (the email namespace, lower-cased)", USERNAME, "Zelda.Quintero@Example.org"),
        v("username given as an integer", USERNAME, 42),
        v("username empty (unchanged)", USERNAME, ""),
        v("username null (unchanged)", USERNAME, None),
        v("username only spaces (unchanged)", USERNAME, "   "),
        v("username float (dropped)", USERNAME, 4.5),
        v("username boolean (dropped)", USERNAME, True),
        v("username list (each item)", USERNAME, ["zelda-q", "ymir_balder77", None]),
        v("username under another key", USERNAME, "zelda-q", key_hex=OTHER_KEY_HEX),
        v("user_id integer", USER_ID, 530114),
        v("user_id numeric string (stays a string)", USER_ID, "530114"),
        v("user_id numeric string with spaces and leading zeros", USER_ID, " 000530114 "),
        v("user_id small integer", USER_ID, 42),
        v("user_id zero", USER_ID, 0),
        v("user_id negative integer", USER_ID, -7),
        v("user_id negative numeric string (not decimal: text)", USER_ID, "-7"),
        v("user_id float with integer value", USER_ID, 530114.0),
        v("user_id float with a fraction (dropped)", USER_ID, 530114.5),
        v("user_id large integer", USER_ID, 9007199254740993),
        v("user_id non-numeric string (text, no prefix)", USER_ID, "abc"),
        v("user_id non-ASCII digits (text)", USER_ID, "٥٣٠١١٤"),
        v("user_id empty (unchanged)", USER_ID, ""),
        v("user_id null (unchanged)", USER_ID, None),
        v("user_id boolean (dropped)", USER_ID, True),
        v("session", SESSION, "2b1d9a6c0f5e4e8a9c3b7d1e6f0a2c4b"),
        v("session integer", SESSION, 12345),
        v("anonymous_id", ANONYMOUS_ID, "5afe5d9bb03796557ee2614f5c9611fb"),
        v("team id (a slug: case kept)", TEAM, "Zelda-s-Study-Group-7f3a"),
        v("forum post id (an ObjectId)", FORUM_POST, "5eadf5ec7c1f2d81018cb156"),
        v("forum post id in upper case (the same post)", FORUM_POST, "5EADF5EC7C1F2D81018CB156"),
        v("forum post id of the MySQL backend (an integer)", FORUM_POST, 4242),
        v("ORA2 submission uuid", SUBMISSION, "c1794c38-b6ed-4bee-9311-c7dd359fef9b"),
        v("ORA2 submission uuid in upper case (the same submission)", SUBMISSION, "C1794C38-B6ED-4BEE-9311-C7DD359FEF9B"),
        v("roster: username of a person with an id is u_ + user-id pseudonym", USERNAME, "zelda-q", roster=True),
        v("roster: the person's user id, same number", USER_ID, 530114, roster=True),
        v("roster: username in another case finds the person", USERNAME, "ZELDA-Q", roster=True),
        v("roster: email of a person links", USERNAME, "Zelda.Quintero@Example.org", roster=True),
        v("roster: second person", USERNAME, "ymir_balder77", roster=True),
        v("roster: person without an id keeps the plain pseudonym", USERNAME, "noid.person", roster=True),
        v("roster: stranger keeps the plain pseudonym", USERNAME, "stranger", roster=True),
    ]
    return cases


MASK = "mask_ip"
MASK_16_64 = {"op": "mask_ip", "ipv4_prefix": 16, "ipv6_prefix": 64}


def mask_ip_cases() -> list[dict]:
    values = [
        ("IPv4", "203.0.113.77"),
        ("IPv4 with spaces", " 203.0.113.77 "),
        ("IPv4 zero", "0.0.0.0"),
        ("IPv4 broadcast", "255.255.255.255"),
        ("IPv6 full", "2001:db8:85a3:1234:5678:8a2e:370:7334"),
        ("IPv6 upper case, compressed", "2001:DB8:85A3::1"),
        ("IPv6 loopback", "::1"),
        ("IPv6 unspecified", "::"),
        ("IPv4-mapped IPv6 dotted", "::ffff:203.0.113.77"),
        ("IPv4-mapped IPv6 hex", "::ffff:cb00:714d"),
        ("IPv4-compatible IPv6 (deprecated form, IPv6)", "::203.0.113.77"),
        ("bracketed IPv6", "[2001:db8:85a3::1]"),
        ("IPv6 with zone id", "fe80::1%eth0"),
        ("chain of two IPv4", "203.0.113.77, 198.51.100.9"),
        ("chain without spaces, mixed", "203.0.113.77,2001:db8:85a3::1"),
        ("chain of three with a mapped address", "10.1.2.3, ::ffff:198.51.100.9, 172.16.5.4"),
        ("chain with an invalid element (dropped)", "203.0.113.77, unknown"),
        ("chain with an empty element (dropped)", "203.0.113.77, "),
        ("IPv4 with a port (dropped)", "203.0.113.77:8080"),
        ("bracketed IPv6 with a port (dropped)", "[2001:db8::1]:443"),
        ("octet over 255 (dropped)", "256.1.2.3"),
        ("octet with a leading zero (dropped)", "010.1.2.3"),
        ("three octets (dropped)", "203.0.113"),
        ("a word (dropped)", "unknown"),
        ("a host name (dropped)", "lms.example.org"),
        ("integer (dropped)", 3405803853),
        ("empty (unchanged)", ""),
        ("null (unchanged)", None),
    ]
    cases = [v(name, MASK, value) for name, value in values]
    cases += [
        v("IPv4 /16", MASK_16_64, "203.0.113.77"),
        v("IPv6 /64", MASK_16_64, "2001:db8:85a3:1234:5678:8a2e:370:7334"),
        v("IPv4-mapped takes the IPv4 prefix", MASK_16_64, "::ffff:203.0.113.77"),
        v("IPv4 /32 keeps the address", {"op": "mask_ip", "ipv4_prefix": 32}, "203.0.113.77"),
        v("IPv4 /0", {"op": "mask_ip", "ipv4_prefix": 0}, "203.0.113.77"),
        v("IPv4 /20 cuts inside an octet", {"op": "mask_ip", "ipv4_prefix": 20}, "203.0.127.77"),
        v("list of addresses (each item; items that are not addresses are removed)", MASK, ["203.0.113.77", "nope", "2001:db8::1"]),
    ]
    return cases


AGENTS = [
    ("Chrome on Windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"),
    ("Chrome on Mac", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_2) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/45.0.2454.85 Safari/537.36"),
    ("Firefox on Linux", "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"),
    ("Safari on Mac", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15"),
    ("Edge on Windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91"),
    ("Internet Explorer 11", "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko"),
    ("Safari on iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 16_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.0 Mobile/15E148 Safari/604.1"),
    ("Safari on iPad", "Mozilla/5.0 (iPad; CPU OS 15_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/15.4 Mobile/15E148 Safari/604.1"),
    ("Chrome on Android phone", "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/116.0.0.0 Mobile Safari/537.36"),
    ("Chrome on Android tablet", "Mozilla/5.0 (Linux; Android 12; SM-T870) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/115.0.0.0 Safari/537.36"),
    ("Samsung Internet", "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36"),
    ("edX iOS app", "edX/org.edx.mobile (2.0; OS Version 9.0 (Build 16A366))"),
    ("edX Android app", "Dalvik/2.1.0 (Linux; U; Android 11; SM-A515F Build/RP1A.200720.012) edX/org.edx.mobile/2.26.1"),
    ("Googlebot", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
    ("bingbot", "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"),
    ("curl", "curl/8.4.0"),
    ("python-requests", "python-requests/2.31.0"),
    ("Chrome OS", "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/114.0.0.0 Safari/537.36"),
    ("an unknown agent naming a person", "zelda-q's homemade client (zelda.quintero@example.org)"),
    ("a single word", "Mozilla"),
]


def agent_cases() -> list[dict]:
    cases = [v(name, "generalize_agent", value) for name, value in AGENTS]
    cases += [
        v("without browser version: Chrome on Mac", {"op": "generalize_agent", "browser_version": False}, AGENTS[1][1]),
        v("without browser version: Safari on iPhone", {"op": "generalize_agent", "browser_version": False}, AGENTS[6][1]),
        v("empty (unchanged)", "generalize_agent", ""),
        v("null (unchanged)", "generalize_agent", None),
        v("integer (dropped)", "generalize_agent", 5),
    ]
    return cases


# Only URLs whose every path segment is a platform route word, a course key or a block id: what
# is pinned here is the removal of query, fragment, user info and path parameters, and IP hosts.
COURSE = "course-v1:MITx+6.002x+2024_T1"
BLOCK = "block-v1:MITx+6.002x+2024_T1+type@problem+block@7a3f9c2d1e8b4a6f9d0c5b2e1a7f3c9d"


def url_cases() -> list[dict]:
    values = [
        ("course page", f"https://courses.example.org/courses/{COURSE}/courseware"),
        ("query removed", f"https://courses.example.org/courses/{COURSE}/courseware?email=zelda.quintero%40example.org&activate=1"),
        ("fragment removed", f"https://courses.example.org/courses/{COURSE}/info#zelda-q"),
        ("query and fragment removed", "https://courses.example.org/dashboard?next=/u/zelda-q#top"),
        ("user info removed", "https://zelda-q:secret@courses.example.org/dashboard"),
        ("user info without password removed", "https://zelda-q@courses.example.org/dashboard"),
        ("port kept", "http://localhost:8000/dashboard"),
        ("host case kept", "https://Courses.Example.org/dashboard"),
        ("jump_to a block", f"https://courses.example.org/courses/{COURSE}/jump_to/{BLOCK}"),
        ("xblock handler", f"https://courses.example.org/courses/{COURSE}/xblock/{BLOCK}/handler/xmodule_handler/problem_check"),
        ("forum thread page (the thread id is its forum_post pseudonym)", f"https://courses.example.org/courses/{COURSE}/discussion/forum/8b22e514eabc2f0c24485fe4174dd699/threads/5eadf5ec7c1f2d81018cb156"),
        ("forum API thread in upper case (the same pseudonym)", "/api/discussion/v1/threads/5EADF5EC7C1F2D81018CB156/"),
        ("forum reply to a comment", f"/courses/{COURSE}/discussion/comments/b37c6a26c25934ec2f983731/reply"),
        ("path parameter with a value removed", "https://courses.example.org/dashboard;jsessionid=1A2B3C4D5E6F"),
        ("IPv4 host", "http://203.0.113.77/dashboard"),
        ("IPv4 host with a port", "http://203.0.113.77:8000/dashboard"),
        ("IPv6 host", "http://[2001:db8::1]/dashboard"),
        ("scheme-relative URL", "//courses.example.org/dashboard?x=1"),
        ("bare path", f"/courses/{COURSE}/courseware"),
        ("bare path with a query", "/dashboard?email=zelda.quintero@example.org"),
        ("host only", "https://courses.example.org"),
        ("host only with a query", "https://courses.example.org?user=zelda-q"),
        ("port out of range (dropped)", "http://courses.example.org:99999/dashboard"),
        ("host that is not a host name (dropped)", "https://cour ses.example.org/dashboard"),
        ("integer (dropped)", 42),
        ("empty (unchanged)", ""),
        ("null (unchanged)", None),
    ]
    cases = [v(name, "scrub_url", value) for name, value in values]
    cases.append(v("roster: a URL that names no one (unchanged)", "scrub_url", f"https://courses.example.org/courses/{COURSE}/courseware", roster=True))
    cases.append(v("roster: query removed", "scrub_url", "https://courses.example.org/dashboard?u=zelda-q", roster=True))
    return cases


def text_cases() -> list[dict]:
    scrub = "scrub_text"
    only_email = {"op": "scrub_text", "detectors": ["email"]}
    no_actor = {"op": "scrub_text", "actor_usernames": False}
    no_roster = {"op": "scrub_text", "roster": False}
    return [
        v("an email", scrub, "write to zelda.quintero@example.org please"),
        v("an email with a plus tag and subdomain", scrub, "Zelda.Q+edx@mail.cs.example.ac.uk wrote"),
        v("an email written with %40", scrub, "mail zelda%40example.org now"),
        v("a US phone number", scrub, "call me at (617) 555-0123 tonight"),
        v("an international phone number", scrub, "whatsapp +44 20 7946 0958"),
        v("an IPv4 address", scrub, "my server is 203.0.113.77"),
        v("an IPv6 address", scrub, "from 2001:db8:85a3::8a2e:370:7334 today"),
        v("a URL", scrub, "see https://example.org/page?u=zelda for details"),
        v("several kinds", scrub, "zelda.quintero@example.org, +1 617 555 0123, 198.51.100.9"),
        v("plain prose (unchanged)", scrub, "I think the answer is 42, see lecture 3."),
        v("an integer (unchanged)", scrub, 42),
        v("an integer that is a phone number", scrub, 6175550123),
        v("a boolean (unchanged)", scrub, True),
        v("the actor's username", scrub, "thanks, i am zelda-q here", actors=["zelda-q"]),
        v("the actor's username from context.username", scrub, "posted by ymir_balder77 today", actors=[None, "ymir_balder77"]),
        v("actor usernames off", no_actor, "thanks, i am zelda-q here", actors=["zelda-q"]),
        v("only the email detector", only_email, "mail zelda.quintero@example.org or call (617) 555-0123"),
        v("roster: name, mention, email", scrub, "thanks Zelda Quintero and @ymir_balder77, mail zelda.quintero@example.org", roster=True),
        v("roster: a username standing alone", scrub, "ask zelda-q about it", roster=True),
        v("roster: a user id", scrub, "my id is 530114", roster=True),
        v("roster: a person without an id", scrub, "noid.person said so", roster=True),
        v("roster off", no_roster, "thanks Zelda Quintero", roster=True),
        v("roster: text with no one in it (unchanged)", scrub, "the answer is 42", roster=True),
    ]


CASES = {"pseudonyms": pseudonym_cases, "mask_ip": mask_ip_cases, "agents": agent_cases, "urls": url_cases, "text": text_cases}
ABOUT = {
    "pseudonyms": "Pseudonyms: the raw HMAC per namespace, the key id, and the pseudonymize operator for every identity kind, with and without the roster.",
    "mask_ip": "mask_ip: IPv4, IPv6, IPv4-mapped, bracketed, zone ids, forwarding chains, prefixes; values that are not addresses are dropped.",
    "agents": "generalize_agent: desktop, mobile, tablet, app and bot agents.",
    "urls": "scrub_url: query, fragment, user info and path parameters removed, IP hosts, route words, course keys and block ids kept.",
    "text": "scrub_text: emails, phones, IP addresses, URLs, the actor's username, and people of the inline roster.",
}


def generate(name: str) -> dict:
    cases = CASES[name]()
    data = {
        "file": name,
        "about": ABOUT[name],
        "pseudonym_version": PSEUDONYM_VERSION,
        "key_hex": KEY_HEX,
        "identities": IDENTITIES,
        "roster": ROSTER if any(case.get("roster") for case in cases) else None,
        "vectors": [],
    }
    names = [case["name"] for case in cases]
    if len(set(names)) != len(names):
        raise SystemExit(f"{name}: two vectors share a name")
    with tempfile.TemporaryDirectory() as tmp:
        runner = Runner(data, Path(tmp))
        for case in cases:
            data["vectors"].append({**case, **runner.result(case)})
    path = HERE / f"{name}.json"
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        before = {vector["name"]: {k: vector.get(k) for k in ("expected", "dropped")} for vector in old["vectors"]}
        changed = [
            vector["name"]
            for vector in data["vectors"]
            if vector["name"] in before and before[vector["name"]] != {k: vector.get(k) for k in ("expected", "dropped")}
        ]
        if changed and old["pseudonym_version"] >= PSEUDONYM_VERSION:
            raise SystemExit(
                f"{path.name}: {len(changed)} expected value(s) would change ({', '.join(changed[:5])}): a breaking change. "
                "Raise PSEUDONYM_VERSION in anonymizer/pseudonyms.py first and say what changed in CHANGELOG.md."
            )
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", metavar="FILE", help=f"vector files to write, of {', '.join(FILES)} (default: all)")
    args = parser.parse_args()
    unknown = [name for name in args.files if name not in FILES]
    if unknown:
        parser.error(f"unknown vector file(s) {', '.join(unknown)}; expected some of {', '.join(FILES)}")
    for name in args.files or FILES:
        data = generate(name)
        print(f"{name}.json: {len(data['vectors'])} vectors, pseudonym_version {data['pseudonym_version']}")


if __name__ == "__main__":
    main()
