"""Adversarial URLs: every route template of the platform's catalogue and of the shipped route data,
with people and secrets planted in every person and secret position and in random other places.
None may survive ``scrub_url``, in any case; the course and block keys must."""

from __future__ import annotations

import random
import re
from urllib.parse import unquote
from pathlib import Path

import pytest

from anonymizer.core.compiler import _Compiler
from anonymizer.core.operators import BuildContext, Identity, EventState
from anonymizer.core.policy import FieldRule
from anonymizer.core.pseudonyms import Pseudonymizer
from anonymizer.core.roster import Person, Roster
from anonymizer.core.url_routes import Unit, default_data, default_rules
from tests.test_operators import KEY

CATALOGUE = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "edx-url-routes.md"

USERNAME, USER_ID, EMAIL, SECRET = "Zq_Planted.Learner7", "5550123987", "zq.planted@example.org", "SeCrEt0Tok3nPlanted"
ANONYMOUS = "a9f3c0de5b7e4d2a8c1f0e9d7b6a5c4f"
PLANTED = (USERNAME, EMAIL, SECRET, ANONYMOUS)
ROSTER = Roster([Person(USER_ID, (USERNAME,), (EMAIL,), ("Zora Planted",))])

PERSON = {"username", "user_id", "email", "username_or_email", "anonymous_id"}
SECRETS = {"token", "uidb36"}
_PLACEHOLDER = re.compile(r"\{([a-z_0-9]+)\}")


def scrubber(roster: Roster | None):
    identities = {
        "username": Identity("username", "text", "u_"),
        "user_id": Identity("user_id", "number"),
        "forum_post": Identity("forum_post", "text", "fp_", True),
    }
    ctx = BuildContext(pseudonymizer=Pseudonymizer(KEY), identities=identities, roster=roster)
    fn = _Compiler(ctx, "test").operator(FieldRule.model_validate({"op": "scrub_url"}), "field")
    return lambda url: fn(url, EventState())


def catalogue_templates() -> list[str]:
    """The path templates of the catalogue: backticked paths, with optional parts both ways."""
    found = []
    for raw in re.findall(r"`([^`\s]*\{[^`\s]*|/[^`\s]*)`", CATALOGUE.read_text(encoding="utf-8")):
        text = raw.replace("...", "").replace(":token", "{token}")
        if not (text.startswith("/") or text.startswith("C/")):
            continue
        variants = [text]
        while any("[" in v for v in variants):
            expanded = []
            for v in variants:
                m = re.search(r"\[([^\[\]]*)\]", v)
                expanded += [v[: m.start()] + m.group(1) + v[m.end():], v[: m.start()] + v[m.end():]] if m else [v]
            variants = expanded
        found += [v for v in variants if "{" in v]
    return sorted(set(found))


def shipped_templates() -> list[str]:
    return list(default_data()["templates"])


def _course_key(rng: random.Random, old_allowed: bool) -> str:
    choice = rng.randrange(4 if old_allowed else 3)
    return ["course-v1:OrgX+Num101+2024_T1", "ccx-v1:OrgX+Num101+2024_T1+ccx@7", "course-v1:OrgX%2BNum101%2B2024_T1", "OrgX/Num101/2024_T1"][choice]


def _usage_key(rng: random.Random) -> str:
    return rng.choice(["block-v1:OrgX+Num101+2024_T1+type@problem+block@0123456789abcdef0123456789abcdef", "i4x://OrgX/Num101/problem/week1_q1"])


def fill(template: str, rng: random.Random, person: str) -> tuple[str, list[str]]:
    """TEMPLATE with its placeholders filled: people and secrets planted, keys that must survive."""
    text = "/courses/{course_id}/" + template[2:] if template.startswith("C/") else template
    keys: list[str] = []

    def value(match: re.Match) -> str:
        kind = match.group(1)
        before = text[: match.start()]
        if kind in ("username", "username_or_email", "email"):
            return EMAIL if kind == "email" else person
        if kind == "user_id":
            return USER_ID
        if kind == "anonymous_id":
            return ANONYMOUS
        if kind in SECRETS:
            return SECRET
        if kind == "course_id":
            key = _course_key(rng, before.endswith("/courses/") and "," not in text[match.end(): match.end() + 1])
            if "/" not in key and "%" not in key:
                keys.append(key)
            return key
        if kind == "usage_key":
            key = _usage_key(rng)
            if "i4x" not in key:
                keys.append(key)
            return key
        if kind == "path":
            return f"{USERNAME}/{SECRET}"
        return {"hex_id": "5f3e2d1c0b9a8f7e6d5c4b3a", "int_id": "3", "block_id": "week_1", "slug": "topic-1", "word": "v1", "org": "OrgX", "num": "Num101", "run": "2024_T1"}.get(kind, "v1")

    return _PLACEHOLDER.sub(value, text), keys


def _assert_clean(url: str, out, keys: list[str]) -> None:
    assert isinstance(out, str), url
    folded = out.casefold()
    for planted in PLANTED:
        assert planted.casefold() not in folded, (url, out)
    assert USER_ID not in re.split(r"[/,]", out), (url, out)
    for key in keys:
        assert key in out, (key, url, out)


# Where a route puts an author-made id (a chapter's url_name, a discussion topic id), the segment is
# kept as written: an unknown string there survives by design. A known person never does.
AUTHOR_IDS = {"block_id", "slug"}


def _plant_elsewhere(url: str, rng: random.Random, roster: Roster | None) -> tuple[str, bool]:
    """URL with a username, email or secret as an extra segment at a random place of its path, and
    whether it must be scrubbed (False only for an unknown string where a route puts an author id)."""
    segments = url.split("/")
    index = rng.randrange(1, len(segments) + 1)
    planted = rng.choice([USERNAME, EMAIL, SECRET, USERNAME.upper(), f"{USERNAME},{SECRET}"])
    segments.insert(index, planted)
    # Where the planted segment lands by the routes (an old Org/Num/Run id read as one segment).
    plain, where = [], index
    position = 0
    while position < len(segments):
        if segments[position : position + 3] == ["OrgX", "Num101", "2024_T1"]:
            plain.append(Unit("course-v1:OrgX+Num101+2024_T1", "course-v1:OrgX+Num101+2024_T1"))
            where -= 2 if index > position + 2 else 0
            position += 3
            continue
        plain.append(Unit(segments[position], unquote(segments[position])))
        position += 1
    kinds = default_rules().kinds(plain, 1)
    known = roster is not None and planted in (USERNAME, EMAIL, USERNAME.upper())
    # The three segments after /courses/ are an old Org/Num/Run course id: author-made too.
    # So are the parts of an old i4x://Org/Num/category/name block id.
    in_old_id = any(s.casefold() in ("courses", "course") for s in segments[max(0, index - 3) : index]) or any(
        s.casefold() == "i4x:" for s in segments[max(0, index - 5) : index]
    )
    return "/".join(segments), known or (kinds[where] not in AUTHOR_IDS and not in_old_id)


@pytest.mark.parametrize("roster", [None, ROSTER], ids=["no-roster", "roster"])
def test_no_planted_person_or_secret_survives_the_shipped_templates(roster):
    scrub = scrubber(roster)
    rng = random.Random(7)
    templates = shipped_templates()
    assert len(templates) > 250
    checked = 0
    for template in templates:
        for person in (USERNAME, EMAIL, USERNAME.swapcase()):
            url, keys = fill(template, rng, person)
            _assert_clean(url, scrub(url), keys)
            _assert_clean(url, scrub("https://lms.example.org" + url + "?user=" + USERNAME), keys)
            moved, must_go = _plant_elsewhere(url, rng, roster)
            if must_go:
                _assert_clean(moved, scrub(moved), [])
                checked += 1
    assert checked > 2 * len(templates)


@pytest.mark.skipif(not CATALOGUE.is_file(), reason="the route catalogue (../shared/reference/edx-url-routes.md) is not beside the project")
@pytest.mark.parametrize("roster", [None, ROSTER], ids=["no-roster", "roster"])
def test_no_planted_person_or_secret_survives_the_catalogue_templates(roster):
    scrub = scrubber(roster)
    rng = random.Random(11)
    templates = catalogue_templates()
    assert len(templates) > 200
    checked = 0
    for template in templates:
        for person in (USERNAME, EMAIL):
            url, keys = fill(template, rng, person)
            _assert_clean(url, scrub(url), keys)
            moved, must_go = _plant_elsewhere(url, rng, roster)
            if must_go:
                _assert_clean(moved, scrub(moved), [])
                checked += 1
    assert checked > len(templates)


def test_with_a_roster_a_known_person_in_a_loose_safe_position_is_pseudonymized():
    # A handler name or a discussion topic is author text: kept, unless it names a known person.
    scrub = scrubber(ROSTER)
    out = scrub(f"/courses/course-v1:OrgX+Num101+2024_T1/discussion/forum/{USERNAME}/threads/5f3e2d1c0b9a8f7e6d5c4b3a")
    assert USERNAME.casefold() not in out.casefold()
    # The thread id after it is still read as one: its pseudonym, not the id.
    assert out.endswith("/threads/fp_" + Pseudonymizer(KEY).text("forum_post", "5f3e2d1c0b9a8f7e6d5c4b3a"))


@pytest.mark.parametrize(
    "url",
    [f"/U/{USERNAME}", f"/Users/{USERNAME}", f"/u//{USERNAME}", f"/API/User/V1/Accounts/{USERNAME}", f"/u/{USERNAME.upper()}/plugin",
     f"/api/user/v1/accounts/{EMAIL}", f"/api/user/v1/accounts/{EMAIL.replace('@', '%40')}", f"/profile/{USERNAME}",
     f"/api/enrollment/v1/enrollment/{USERNAME},course-v1:OrgX+Num101+2024_T1", f"/api/team/v0/team_membership/team-{USERNAME},{USERNAME}"],
)
def test_markers_in_any_case_and_after_empty_segments(url):
    for roster in (None, ROSTER):
        out = scrubber(roster)(url)
        assert USERNAME.casefold() not in out.casefold() and EMAIL not in out and "%40" not in out, out
