"""The shapes of ``keep``: a kept value that does not look like what the rule names is dropped."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from anonymizer.core.operators import DROP, REGISTRY, BuildContext, EventState
from anonymizer.core.operators.keep import SHAPES, KeepParams
from anonymizer.core.keys import Key
from anonymizer.core.pseudonyms import Pseudonymizer
from anonymizer.core.roster import Person, Roster

ACCEPTED = {
    "course_key": ["course-v1:edX+DemoX+Demo_2014", "ccx-v1:edX+DemoX+Demo+ccx@3", "library-v1:MITx+Lib1", "MITx/6.002x/2012_Fall"],
    "usage_key": [
        "block-v1:edX+DemoX+Demo+type@problem+block@0d759dee4f9d459c8956136dbde55f02",
        "ccx-block-v1:edX+DemoX+Demo+ccx@3+type@video+block@intro",
        "i4x://MITx/6.002x/problem/Sample_Problem",
        "i4x-MITx-6_002x-problem-Sample_Problem_2_1",
    ],
    "org": ["edX", "MITx", "Harvard_X.1-a", "1.2.3"],
    "slug": ["topic-7", "mechanics_basics.v2", "2.0.1.4.5", "1.2.3"],
    "hostname": ["courses.edx.org", "lms.example.org:8000", "localhost:18000"],
    "uuid": ["0b9e3947-7cf3-4507-a7a4-8f74be381fdd", "0b9e39477cf34507a7a48f74be381fdd"],
    "hex_id": ["5a3b2c1d4e5f60718293a4b5", "deadbeef"],
    "number": ["42", "-3.5", "1e-3"],
    "iso_time": ["2024-03-01T10:11:12.123456+00:00", "2024-03-01T10:11:12Z", "2024-03-01"],
    "word": ["server", "browser", "verified", "edx.video.played", "xblock:problem"],
    "boolean": ["true", "False"],
    "language": ["en", "nb", "zh-hans", "es-419", "pt_BR", "zh-Hant-TW"],
    "time_zone": ["Asia/Tokyo", "America/Argentina/Buenos_Aires", "Etc/GMT+5", "America/Port-au-Prince", "UTC", "GMT+05:30", "EST5EDT"],
    "b64_digest": ["2HDb6cWz6xgUQ8b9YhsgN5sukP0=", "q2Yc3nW0tZ1nR8sA5kD7fH9jL4o=", "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU="],
    "grade_letter": ["A", "B+", "C-", "Pass", "Fail"],
    "mime_type": ["image/png", "application/vnd.ms-excel", "application/pdf", "text/x-python"],
}
REFUSED = {
    "course_key": ["bob.smith@example.org", "call +44 20 7946 0321", "course-v1:edX+Demo X+1", "a/b", "course-v1:" + "x+" * 200 + "y", "course-v1:a+b+" + "c" * 300],
    "usage_key": ["block-v1:edX+D+R+type@problem+block@a b", "bob@example.org", "zelda-q", "i4x://MITx/problem"],
    "org": ["bob@example.org", "two words", "x" * 65, "203.0.113.77", "192.168.001.023"],
    "slug": ["a@b", "with space", "x" * 129, "203.0.113.77", "10.0.0.1"],
    "hostname": ["bob.smith@example.org", "203.0.113.77", "203.0.113.77:80", "::1", "zelda-q", "a b.org",
                 # a host that holds an IP address: dashed or dotted in a name, one number, hex, octal
                 "ec2-203-0-113-45.compute-1.amazonaws.com:8888", "203-0-113-45.nip.io", "203.0.113.45.nip.io",
                 "3405803821", "0xcb00712d", "0313.0.0161.055", "2001-db8-85a3--8a2e-370-7334.ipv6-literal.net"],
    "uuid": ["0b9e3947-7cf3-4507-a7a4-8f74be381fd", "bob@example.org", "zzzzzzzz-7cf3-4507-a7a4-8f74be381fdd"],
    "hex_id": ["5a3b2c1d4e5f60718293a4bg", "x" * 10, "0" * 65],
    "number": ["+44 20 7946 0321", "12a", "１２"],
    "iso_time": ["yesterday", "2024-03-01 bob", "２０２４-03-01"],
    "word": ["zelda q", "bob@example.org", "9lives", "x" * 65, "fe80::1", "abcd:ef01::7334", "fe80:0:0:0:0:0:0:1"],
    "boolean": ["yes", "1", "truly", "note: zelda_q"],
    "language": ["english", "BeatrizQ", "zelda_q", "en-US,en;q=0.8", "x", "Mar.Tina-K"],
    "time_zone": ["Tokyo", "zelda_q", "Asia/zelda q", "note: Asia/Tokyo", "Europe/bob@example.org", "BeatrizQ", "utc", "Asia"],
    "b64_digest": ["zelda_q", "BeatrizQ", "2HDb6cWz6xgUQ8b9YhsgN5sukP0", "2HDb6cWz6xgUQ 8b9YhsgN5sukP0=", "Mar.Tina-K=", "a" * 28],
    "grade_letter": ["A grade", "zelda_q", "Mar.Tina-K", "x" * 17, "B++"],
    "mime_type": ["image", "bob@example.org/png", "image/png; name=zelda q", "Image/PNG"],
}


def keep(shape, roster=None):
    params = KeepParams.model_validate({"shape": shape})
    ctx = BuildContext(pseudonymizer=Pseudonymizer(Key(bytes(32))), identities={}, roster=roster)
    fn = REGISTRY["keep"].build(params, ctx)
    return lambda value: fn(value, EventState())


def test_every_shape_has_examples():
    assert set(ACCEPTED) == set(SHAPES) == set(REFUSED)


@pytest.mark.parametrize("shape, value", [(s, v) for s, values in ACCEPTED.items() for v in values])
def test_a_value_of_the_shape_is_kept(shape, value):
    assert keep(shape)(value) == value


@pytest.mark.parametrize("shape, value", [(s, v) for s, values in REFUSED.items() for v in values])
def test_a_value_of_another_shape_is_dropped(shape, value):
    assert keep(shape)(value) is DROP


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("value", [{"username": "zelda-q"}, ["course-v1:a+b+c"], True, 1.5j])
def test_named_string_shapes_refuse_containers_and_booleans(shape, value):
    if shape == "boolean" and value is True:
        assert keep(shape)(value) is True
        return
    assert keep(shape)(value) is DROP


def test_boolean_takes_json_booleans_but_not_numbers():
    fn = keep("boolean")
    assert fn(True) is True and fn(False) is False
    assert fn(1) is DROP and fn(0) is DROP and fn(1.0) is DROP
    assert keep(["number", "boolean"])(1) == 1 and keep(["number", "boolean"])(False) is False


def test_narrow_shapes_refuse_a_person_the_wide_ones_admit():
    """What a person can type, with no space: a username, a name. The shapes made for settings
    values, grades and hashes refuse it where ``word`` or ``scalar`` would copy it."""
    for value in ("quinn_harrow", "Mar.Tina-K", "o.okonkwo-2"):
        assert keep("word")(value) == value
        for shape in ("language", "time_zone", "b64_digest", "grade_letter", "mime_type", "boolean"):
            assert keep(shape)(value) is DROP, (shape, value)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_null_and_empty_strings_are_kept_whatever_the_shape(shape):
    assert keep(shape)(None) is None
    assert keep(shape)("") == ""


def test_number_takes_json_numbers_but_not_booleans():
    fn = keep("number")
    assert fn(3) == 3 and fn(2.5) == 2.5
    assert fn(True) is DROP


def test_scalar_is_the_default_and_refuses_containers():
    assert KeepParams().shape == ("scalar",)
    fn = keep("scalar")
    for value in ("any text at all", 1, 1.5, False, None):
        assert fn(value) == value
    assert fn({"a": 1}) is DROP and fn([]) is DROP


def test_any_copies_containers():
    value = {"a": [{"b": "c"}]}
    assert keep("any")(value) is value


def test_a_list_of_shapes_takes_a_value_that_fits_one():
    fn = keep(["usage_key", "hex_id"])
    assert fn("5a3b2c1d4e5f60718293a4b5") == "5a3b2c1d4e5f60718293a4b5"
    assert fn("i4x-MITx-6_002x-video-intro") == "i4x-MITx-6_002x-video-intro"
    assert fn("hello there") is DROP


def test_a_known_person_is_dropped_even_when_the_shape_fits():
    roster = Roster([Person("70001", ("zelda_q", "vid.eo"), ("zelda@example.org",))])
    assert keep("word", roster)("zelda_q") is DROP
    assert keep("word", roster)("ZELDA_Q") is DROP
    assert keep("hostname", roster)("vid.eo") is DROP
    assert keep("hex_id", roster)("70001") is DROP
    assert keep("word", roster)("server") == "server"
    assert keep("word")("zelda_q") == "zelda_q"  # without a roster nothing says it is a person


def test_an_unknown_shape_is_refused_at_load():
    with pytest.raises(ValidationError, match="unknown shape 'mail'"):
        KeepParams.model_validate({"shape": "mail"})
    with pytest.raises(ValidationError):
        KeepParams.model_validate({"shape": []})


@pytest.mark.parametrize("name", ["research", "strict"])
def test_the_shipped_policies_keep_nothing_without_a_narrow_shape(name):
    """Every `keep` of a shipped policy names what its values look like: with `scalar` (the
    default) or `any`, a person typed into the field would be copied whatever they typed."""
    from anonymizer import load_policy
    from anonymizer.core.policy import _all_rules

    unshaped = [loc for loc, rule in _all_rules(load_policy(name)) if rule.op == "keep" and {"scalar", "any"} & set(rule.params.shape)]
    assert unshaped == []
