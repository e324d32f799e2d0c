"""The URL rules as data: templates, the words a policy adds, and errors that name the template."""

from __future__ import annotations

import pytest

from anonymizer import Key, load_policy
from anonymizer.core.engine import Anonymizer
from anonymizer.core.errors import PolicyError
from anonymizer.core.policy import parse_policy
from anonymizer.core.url_routes import RouteError, default_rules, parse_template
from tests.test_operators import apply, build, username_pseudonym, user_id_pseudonym

COURSE = "course-v1:edX+DemoX+T1"


def test_the_shipped_rules_load_and_hold_the_catalogue():
    rules = default_rules()
    assert {"courseware", "xblock", "problem", "flagabuse"} <= rules.words
    assert "u" in rules.user_markers and "activate" in rules.secret_markers


@pytest.mark.parametrize(
    ("template", "message"),
    [("/api/{nobody}", "unknown kind 'nobody'"), ("/api/{path}/x", "stands alone, as the last segment"), ("/api//x", "empty segment"), ("/api/x{username}", "neither a word")],
)
def test_a_bad_template_is_an_error_that_names_it(template, message):
    with pytest.raises(RouteError, match=message):
        parse_template(template)


def test_a_policy_with_a_bad_route_fails_at_load_time_naming_the_template():
    text = b"name: t\nextends: research\nenvelope:\n  page: {op: scrub_url, routes: ['/api/{nobody}']}\n"
    with pytest.raises(PolicyError, match=r"envelope\.page.*'/api/\{nobody\}'.*unknown kind"):
        parse_policy(text, "t.yaml")


def test_a_policy_adds_words_and_routes():
    fn = build("scrub_url", safe_words=["my_handler"], routes=["/api/my_plugin/v1/people/{username}/notes", "/api/my_plugin/v1/reports/{course_id}/{int_id}"])
    assert apply(fn, f"/courses/{COURSE}/xblock/block-v1:edX+DemoX+T1+type@x+block@y/handler/my_handler") == (
        f"/courses/{COURSE}/xblock/block-v1:edX+DemoX+T1+type@x+block@y/handler/my_handler"
    )
    assert apply(fn, "/api/my_plugin/v1/people/alice/notes") == f"/api/my_plugin/v1/people/{username_pseudonym('alice')}/notes"
    assert apply(fn, f"/api/my_plugin/v1/reports/{COURSE}/42") == f"/api/my_plugin/v1/reports/{COURSE}/42"
    # Without the policy's additions, the same segments fail closed.
    plain = build("scrub_url")
    assert apply(plain, "/api/my_plugin/v1/reports/x/42").count("[REDACTED]") == 3


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/api/enrollment/v1/enrollment/alice,course-v1:edX+DemoX+T1", "/api/enrollment/v1/enrollment/{alice},course-v1:edX+DemoX+T1"),
        ("/api/bookmarks/v1/bookmarks/alice,block-v1:edX+DemoX+T1+type@html+block@abc/", "/api/bookmarks/v1/bookmarks/{alice},block-v1:edX+DemoX+T1+type@html+block@abc/"),
        ("/api/team/v0/team_membership/team-alice,alice", "/api/team/v0/team_membership/[REDACTED],{alice}"),
        ("/api/profile_images/v1/alice/upload", "/api/profile_images/v1/{alice}/upload"),
        ("/certificates/user/42/course/course-v1:edX+DemoX+T1", "/certificates/user/{42}/course/course-v1:edX+DemoX+T1"),
        ("/api/course_home/v1/progress/course-v1:edX+DemoX+T1/42", "/api/course_home/v1/progress/course-v1:edX+DemoX+T1/{42}"),
        ("/admin/auth/user/42/change/", "/admin/auth/user/{42}/change/"),
        ("/profile/alice", "/profile/{alice}"),
        ("/Users/alice", "/Users/{alice}"),
        ("/u//alice", "/u//{alice}"),
        ("/activate/0123456789abcdef0123456789abcdef", "/activate/[REDACTED]"),
        ("/certificates/course-v1:edX+DemoX+T1", "/certificates/course-v1:edX+DemoX+T1"),
        ("/courses/edX/DemoX/Demo_Course/courseware/week_1/lesson_2/3", "/courses/edX/DemoX/Demo_Course/courseware/week_1/lesson_2/3"),
        # A thread id, without a forum_post identity to pseudonymize it (tests/test_forum_ids.py has one): redacted.
        ("/courses/course-v1:edX+DemoX+T1/discussion/forum/topic-1/threads/5f3e2d1c0b9a8f7e6d5c4b3a", "/courses/course-v1:edX+DemoX+T1/discussion/forum/topic-1/threads/[REDACTED]"),
        ("/courses/course-v1:edX+DemoX+T1/xblock/block-v1:edX+DemoX+T1+type@problem+block@p1/handler/xmodule_handler/alice", "/courses/course-v1:edX+DemoX+T1/xblock/block-v1:edX+DemoX+T1+type@problem+block@p1/handler/xmodule_handler/[REDACTED]"),
        ("/some/unknown/path", "/[REDACTED]/[REDACTED]/[REDACTED]"),
        ("/some/unknown/dashboard", "/[REDACTED]/[REDACTED]/dashboard"),
        ("/static/js/main.js", "/static/js/main.js"),
    ],
)
def test_person_and_secret_positions_of_the_routes(url, expected):
    expected = expected.replace("{alice}", username_pseudonym("alice")).replace("{42}", str(user_id_pseudonym("42")))
    assert apply(build("scrub_url"), url) == expected


def test_event_names_keep_plain_names_and_scrub_paths():
    fn = build("scrub_url", event_names=True)
    assert apply(fn, "edx.video.played") == "edx.video.played"
    assert apply(fn, "alice@example.com") == "[REDACTED]"
    assert apply(fn, "/u/alice") == f"/u/{username_pseudonym('alice')}"


@pytest.mark.parametrize("policy", ["research", "strict"])
def test_a_name_that_is_a_path_is_scrubbed_under_the_shipped_policies(policy):
    anonymizer = Anonymizer(load_policy(policy), Key(b"\x05" * 32))
    out = anonymizer.anonymize_event({"event_type": "problem_check", "name": "/u/alice", "event_source": "server", "event": {}})
    assert "alice" not in out["name"] and out["event_type"] == "problem_check"
    out = anonymizer.anonymize_event({"name": "/api/user/v1/accounts/alice", "event_source": "server", "event": "{}"})
    assert "alice" not in out["name"] and out["name"].startswith("/api/user/v1/accounts/")
