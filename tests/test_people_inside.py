"""Known people inside values that a shape or URL rule keeps (``anonymizer.core.text.inside``):
the leak is closed in ``keep`` and ``scrub_url``, verify then finds nothing, and usernames that
are course or platform words do not make every course key "hold a person"."""

from __future__ import annotations

import json

import pytest

from anonymizer import Anonymizer, Key, load_policy, run
from anonymizer.core.operators.keep import shape_check
from anonymizer.core.policy import RosterRules
from anonymizer.core.roster import Person, Roster
from anonymizer.core.text.inside import ID_MIN_DIGITS, MIN_LENGTH, PLATFORM_WORDS, PeopleInside, people_inside
from anonymizer.verify import verify_package
from anonymizer.verify.forms import COMMON_WORDS, SUBSTRING_MIN_LENGTH, searched_as_substring

KEY = Key(bytes(range(32)))
ZELDA = Person("530114", ("zelda-q",), ("zelda.quintero@example.com",), ("Zelda Quintero",))
# Learned usernames that are course and platform words: an org, a block type, a route word, short ones.
WORDY = [
    Person(str(100 + n), (name,), (), ())
    for n, name in enumerate(("edx", "demo", "course", "problem", "html", "courseware", "DemoX", "T1", "2024", "video", "staff"))
]
ROSTER = Roster([ZELDA, *WORDY])
KEYS = ("usage_key", "course_key", "hostname", "word", "slug")

LEAKS = [
    "block-v1:Org+C+R+type@problem+block@zelda-q_1",  # a block id
    "course-v1:Org+C+zelda-q",  # a course key's run
    "i4x://Org/zelda-q/problem/x",  # a problem id
    "i4x-Org-C-problem-zelda-q.1",
    "zelda-q.example.org",  # a host
    "lms.ZELDA-Q.example.org",  # in other case
    "problem.zelda-q",  # a word (an event name, a setting)
    "course-v1:Org+530114+R",  # a user id between "+"
    "block-v1:Org+C+R+type@problem+block@530114",  # a user id after "@"
]
# Course keys of the corpus and fixtures, and words that hold the wordy usernames as parts.
SAFE = [
    "course-v1:edX+DemoX+Demo_Course",
    "block-v1:edX+DemoX+Demo_Course+type@problem+block@d0d804e8863c4a95a659c04d8a2b2bc0",
    "block-v1:edX+DemoX+Demo_Course+type@html+block@030e35c4756a4ddc8d40b95fbbfff4d4",
    "i4x://edX/DemoX/problem/Sample_Algebraic_Problem",
    "edX/DemoX/Demo_Course",
    "courses.edx.org",
    "problem_check",
    "edx.video.played",
    "demo-course",
    "course-v1:edX+DemoX+2024_T1",
    "block-v1:Org+C+R+type@problem+block@zelda-qq",  # glued to a letter: another word
    "block-v1:Org+C+R+type@problem+block@x530114",  # glued to a letter: another id
]


@pytest.fixture(scope="module")
def fits():
    return shape_check(KEYS, ROSTER, RosterRules())


@pytest.mark.parametrize("value", LEAKS)
def test_keep_drops_a_value_with_a_known_person_inside(fits, value):
    assert not fits(value)


@pytest.mark.parametrize("value", SAFE)
def test_usernames_that_are_course_words_do_not_cost_course_keys(fits, value):
    assert fits(value)


def test_course_words_still_count_as_the_whole_value(fits):
    """The guard is for parts only: a value that is the whole username is still a person."""
    assert not fits("problem")
    assert not fits("DEMOX")


def test_the_guard():
    inside = PeopleInside(ROSTER, RosterRules())
    assert inside.searched_inside("zelda-q")
    for name in ("edx", "demo", "T1", "course", "problem", "html", "courseware", "staff", "video"):
        assert not inside.searched_inside(name), name
    # verify's rules: as long as its substring search, its words, its ids alone in text.
    assert MIN_LENGTH == SUBSTRING_MIN_LENGTH
    assert COMMON_WORDS <= PLATFORM_WORDS
    for name in ("zelda-q", "王芳_wf", "王芳", "abcde", "abcdef", "Mar.Tina-K", "123456", "browser"):
        assert PeopleInside(Roster([Person("1", (name,), (), ())]), RosterRules(), frozenset()).searched_inside(name) <= searched_as_substring(name), name
    from anonymizer.verify.scan import USER_ID_MIN_DIGITS

    assert ID_MIN_DIGITS == USER_ID_MIN_DIGITS
    assert not inside("course-v1:Org+C+R+type@problem+block@1234")  # short ids are not searched inside


def test_a_policy_common_word_keeps_keys_that_hold_it():
    roster = Roster([Person("9", ("NorthwindX",), (), ())])
    assert people_inside(roster, RosterRules())("course-v1:NorthwindX+Astro101+2024_T1")
    assert not people_inside(roster, RosterRules(common_words=["northwindx"]))("course-v1:NorthwindX+Astro101+2024_T1")


def test_nothing_is_searched_without_people():
    assert people_inside(None, RosterRules()) is None
    assert people_inside(Roster([]), RosterRules()) is None
    assert shape_check(KEYS, None, RosterRules())("i4x://Org/zelda-q/problem/x")


def _url(value: str) -> str:
    from anonymizer.core.operators.base import BuildContext
    from anonymizer.core.operators.scrub_url import ScrubUrl

    policy = load_policy("research")
    anonymizer = Anonymizer(policy, KEY, ROSTER)
    event = {"event_type": "edx.ui.lms.link_clicked", "event_source": "browser", "time": "2024-03-01T10:11:12+00:00",
             "page": value, "event": {"current_url": value, "target_url": value}}  # fmt: skip
    out = anonymizer.anonymize_event(event)
    return out["event"]["target_url"]


@pytest.mark.parametrize(
    "url",
    [
        "https://lms.example.org/courses/course-v1:Org+C+R/courseware/i4x:zelda-q/1",
        "https://lms.example.org/courses/course-v1:Org+C+R/xblock/block-v1:Org+C+R+type@problem+block@zelda-q_2/handler/x",
        "https://lms.example.org/courses/Org/zelda-q/2024/about",
        "https://zelda-q.example.org/courses/course-v1:Org+C+R/about",
        "https://lms.example.org/courses/course-v1:Org+C+zelda-q/about",
        "https://lms.example.org/static/zelda-q.js",
        "https://lms.example.org/courses/course-v1:Org+C+R/courseware/week_1/basics/530114",  # a position that is a user id
    ],
)
def test_scrub_url_redacts_a_segment_or_host_with_a_person_inside(url):
    out = _url(url)
    assert "zelda" not in out.casefold() and "530114" not in out
    assert "[REDACTED]" in out


def test_scrub_url_keeps_short_positions_that_equal_a_user_id():
    url = "https://lms.example.org/courses/course-v1:Org+C+R/courseware/week_1/basics/101"
    assert _url(url) == url


def test_scrub_url_keeps_corpus_keys_and_hosts_with_wordy_people():
    url = "https://courses.edx.org/courses/course-v1:edX+DemoX+Demo_Course/xblock/block-v1:edX+DemoX+Demo_Course+type@problem+block@d0d804e8863c4a95a659c04d8a2b2bc0/handler/xmodule_handler/problem_check"
    assert _url(url) == url


def test_verify_finds_nothing_after_the_run(tmp_path):
    """Every leak of the class, in the fields that keep ids, event names and URLs: `run` leaves
    none, and verify, given the roster and the inputs, agrees."""
    roster_file = tmp_path / "people.csv"
    roster_file.write_text("id,username,email,name\n530114,zelda-q,zelda.quintero@example.com,Zelda Quintero\n", encoding="utf-8")
    from anonymizer.core.roster import load_roster

    roster = load_roster([roster_file])[0]
    lines = []
    for number, value in enumerate(LEAKS):
        lines.append(
            {
                "event_type": "problem_check", "event_source": "server", "time": f"2024-03-01T10:11:{number:02d}+00:00",
                "host": "zelda-q.example.org", "username": "zelda-q", "page": f"https://lms.example.org/courses/{value}/about",
                "context": {"course_id": value, "org_id": value, "path": f"/courses/{value}/xblock/{value}/handler/x", "user_id": 530114},
                "event": {"problem_id": value, "attempts": 1},
            }
        )  # fmt: skip
        lines.append(
            {
                "event_type": "edx.ui.lms.outline.selected", "event_source": "browser", "name": value,
                "time": f"2024-03-01T11:11:{number:02d}+00:00", "page": f"https://{value}/x", "event": {"target_url": f"https://lms.example.org/{value}"},
            }
        )  # fmt: skip
    raw = tmp_path / "raw" / "tracking.log"
    raw.parent.mkdir()
    raw.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    package = tmp_path / "package"
    run([raw], package, load_policy("research"), KEY, force=True, jobs=1, roster=roster)
    report = verify_package(package, against=[raw], roster=[roster_file], max_listed=10**6)
    assert report.findings == []
    text = "".join(path.read_bytes().decode("latin-1") for path in package.glob("*.gz"))
    assert text  # the package was written


def test_a_user_id_between_plus_signs_in_text_is_found():
    """``+`` is the space of a query string, as verify reads it: ``a+530114+b`` names the id."""
    finder = ROSTER.finder(RosterRules())
    assert finder.find("answer=a+530114+b") == [("user_id", 9, 15)]
    # a decimal, a version, a range, a price: no id; after a letter and "-", as in user-530114: the id
    assert finder.find("1.530114 and v1.530114 and 2024-530114 and $530114") == []
    assert finder.find("v-530114") == [("user_id", 2, 8)]


def test_times_and_hex_ids_are_compared_whole_not_searched():
    """Shapes of digits, hex digits and fixed separators hold no username, and verify reads no id
    after their ".", "-" or ":": they are not searched inside (they are distinct in every event)."""
    fits = shape_check(("iso_time", "uuid", "hex_id"), ROSTER, RosterRules())
    assert fits("2024-03-01T10:11:12.530114+00:00")
    assert fits("00000000-0000-0000-0000-000000530114")
    assert not fits("530114")  # the whole value is still a known id
