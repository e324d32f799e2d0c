"""Phone numbers in free text: confirmed with libphonenumber's metadata for the configured regions."""

from __future__ import annotations

import pytest

from anonymizer import PolicyError, parse_policy
from anonymizer.core.text.detectors import TextScrubber


@pytest.mark.parametrize(
    "phone",
    [
        "+4791234567", "+1-415-555-0132", "+49 (0)30 1234 5678", "+33 6 12 34 56 78", "06 12 34 56 78",
        "03-1234-5678", "(11) 91234-5678", "0803 123 4567", "612 345 678", "07700 900123", "6175550199",
    ],
)
def test_international_and_national_formats_are_found(phone):
    assert TextScrubber().scrub(f"call {phone} now") == "call [PHONE] now"


@pytest.mark.parametrize("text", ["1 000 000", "12.345.678", "Invoice 12-3-4567", "x 1 2 3 4 5 6 7 8"])
def test_grouped_numbers_and_single_digit_groups_are_not_phones(text):
    assert TextScrubber().scrub(text) == text


def test_a_national_number_is_found_only_for_the_configured_regions():
    assert TextScrubber(phone_regions=("IL",)).scrub("(04) 123 1234") == "[PHONE]"
    assert TextScrubber(phone_regions=("US",)).scrub("(04) 123 1234") == "(04) 123 1234"


def test_a_number_with_a_country_code_is_found_whatever_the_regions():
    assert TextScrubber(phone_regions=("US",)).scrub("+47 912 34 567") == "[PHONE]"


def test_phone_regions_are_validated_when_the_policy_loads():
    text = b"name: t\nenvelope: {event_type: keep}\nevents:\n  - match: x\n    fields:\n      body: {op: scrub_text, phone_regions: [US, XX]}\n"
    with pytest.raises(PolicyError, match="unknown phone region"):
        parse_policy(text, "t.yaml")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("tel:+1-415-555-0132", "tel:[PHONE]"),
        ("TEL:+14155550132", "TEL:[PHONE]"),
        ("Phone:(415) 555-0132", "Phone:[PHONE]"),
        ("call 415-555-0132 x123 now", "call [PHONE] now"),
        ("call 415-555-0132x123 now", "call [PHONE] now"),
        ("call +44 20 7946 0958 ext. 12 now", "call [PHONE] now"),
        ("call 0803 123 4567 extension 7", "call [PHONE]"),
    ],
)
def test_a_prefix_before_or_an_extension_after_a_phone_does_not_hide_it(text, expected):
    assert TextScrubber().scrub(text) == expected


@pytest.mark.parametrize("text", ["ratio:1234567", "id:4155550132", "x123 and ext. 12 alone", "Box 7, ext. 12"])
def test_other_prefixes_and_a_lone_extension_are_not_phones(text):
    assert TextScrubber().scrub(text) == text


@pytest.mark.parametrize(
    "text",
    ["030/1234567", "0171/1234567", "089 / 12345678", "617/555/0143", "617/555-0143", "617 - 555 - 0143",
     "617_555_0143", "+49 30/1234567", "+55 11/912345678", "+48 512 - 345 - 678", "+44 20_7946_0321"],
)
def test_slash_underscore_and_spaced_separators_are_phone_separators(text):
    assert TextScrubber().scrub(f"ruf an: {text} bitte") == "ruf an: [PHONE] bitte"


@pytest.mark.parametrize(
    "text",
    ["on 2024/03/11 and 11/03/2024", "the 2019/2020/2021 cohorts", "from 2020/21 to 2023/24", "ratio 1234/5678",
     "weeks 03/11 - 03/15", "10/12/2024 - 15/12/2024", "pages 120 - 145 - 160", "report_2024_03_11.pdf",
     "scores 3/4 and 12/15", "1/2 cup", "12 - 15 - 2024"],
)
def test_dates_ratios_and_ranges_with_these_separators_are_not_phones(text):
    assert TextScrubber().scrub(text) == text
