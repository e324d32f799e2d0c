"""Every URL path of the real fixtures, the family fixtures and the example log through ``scrub_url``:
which segments fail closed, and that no course key, block id, thread id or route word is lost."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from anonymizer.core.operators import DROP
from anonymizer.core.lines import parse_line
from anonymizer.core.policy import IdentityRule
from tests.test_operators import apply, build

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
_URL = re.compile(r"(?:[a-zA-Z][a-zA-Z0-9+.\-]*://[^/\s]*)?(/[^\s?#\"']*)")

# Segments that become "[REDACTED]" (or a pseudonym, for the person positions), each because it
# can carry a person or a secret, or stands in a path no route describes (another site's page).
EXPECTED_SCRUBBED = {
    # profile pages and account APIs: usernames, pseudonymized
    "_ymir_balder77_", "aiko.fuji", "aiko4267", "elena_mwangi", "learner3284", "mehsmi559", "ngozi-",
    "siobhan_obk", "ravi-", "aerwyn-mullersato", "gupta_", "laralv661", "rbecker",
    "staff",  # submission_history/{username}: an account named "staff"
    # a staff view of a learner's progress: user ids, pseudonymized
    "299", "681", "2502", "4222", "5469", "530114", "7197314",
    # activation, e-mail confirmation, password reset and certificate verification: secrets
    "332a4abf405345fab0a513c0392d9024", "9252c9f5bc7c40088c49886267686657", "9f62173e5ede01ff81bf8dd6c231d5b2",
    "c375495e51944f7f949f56d178f97eae", "f976d98fd5ad4311acaaa1e7b28e77ce", "4b02d0a5d0a07074f2c82e7324ff5814",
    "0aa33089f6c08edc050444206caaeb21", "684078e99c79c679670a81ce91443cf6", "f55b4f85d0407615f940bf07bce541ad",
    "1ec-49a4c00039b6b06a21d5-15bb7874945ef29cc27a", "1sv-9ad4cd471f3da7baadca-1c9d0f3c53f0ee87f53b",
    "1xi-7e5c9283942ac14cb6c3-dc8acb1194994020f08a", "3aq-ea565778bd947c951f1e-9b2d46ab779e35fd88a9",
    "3aq-ed92230b98ad4eb7895a-d428529c683e62f3aa33", "3xd-a0f98c87a3fbc2682ada-570bfbed65e111c69563",
    "ix-1733594d6f451b560ef5-cc8837f05bc970daa839",
    # exam attempts (joinable to a person) and a proctoring session recording
    "1", "41", "B9F22FA1-1B68-4B47-A079-DDDEA925FFD6", "recordings", "session.mp4",
    # a team slug (made from a name learners type) and a badge assertion (one person's badge)
    "red-giants-7c83a2cb", "10805fdc-1cd4-43a5-a8fd-e8ee9f159e56.json", "10805fdc-1cd4-43a5-a8fd-e8ee9f159e56",
    # a grade report file and pages of other sites, whose routes say nothing of their segments
    "NorthwindX_Astro101_2024_T1_grade_report_2024-03-13-0915.csv", "in", "siobhan-obrien-kelly", "j",
    "8200689139", "a", "astro101", "internal-page", "internal", "math", "statistics-probability",
}
# Forum thread, response and comment ids: their pseudonyms (the research policy's identity).
FORUM = {"forum_post": IdentityRule(format="text", prefix="fp_")}
# What research needs from paths, by shape: keys, block and thread ids, route and handler words.
_RESEARCH = re.compile(r"(?:course|block|ccx|ccx-block|asset)-v1:.*|i4x:.*|[0-9a-f]{24}|[0-9a-f]{32}|[0-9a-f]{40}")


def _inputs() -> list[Path]:
    found = sorted((ROOT / "tests" / "fixtures" / "families").glob("*.jsonl")) + [ROOT / "examples" / "tracking.log"]
    if CORPUS.is_dir():
        found += sorted(p for p in CORPUS.rglob("*.log") if "expected-output" not in p.parts)
        found += sorted((CORPUS / "event-routing-backends" / "processed-events").glob("*.json"))
    return found


def _strings(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        text = value.strip()
        if text[:1] in "{[":
            try:
                yield from _strings(json.loads(text))
                return
            except ValueError:
                pass
        yield text


def corpus_urls() -> set[str]:
    """Every string of the inputs that is a URL or an absolute path, at any depth."""
    urls = set()
    for path in _inputs():
        lines = [path.read_bytes()] if path.suffix == ".json" else path.read_bytes().splitlines()
        for line in lines:
            event = parse_line(line)
            if not isinstance(event, dict):
                continue
            for text in _strings(event):
                if text.startswith("/") or re.match(r"https?://", text):
                    urls.add(text)
    return urls


def _segments(url: str) -> list[str]:
    match = _URL.match(url)
    return match.group(1).split("/") if match else []


@pytest.fixture(scope="module")
def scrubbed() -> dict[str, str]:
    fn = build("scrub_url", identities=FORUM)
    return {url: apply(fn, url) for url in corpus_urls()}


_post = build("pseudonymize", identity="forum_post", identities=FORUM)


def post(segment: str) -> str:
    """The pseudonym a forum post's id gets."""
    return apply(_post, segment)


def test_corpus_urls_are_found():
    assert len(corpus_urls()) > (900 if CORPUS.is_dir() else 20)


def test_only_segments_that_may_carry_a_person_are_scrubbed(scrubbed):
    lost, posts = set(), set()
    for url, out in scrubbed.items():
        if out is DROP:
            continue
        kept = set(_segments(out))
        for segment in _segments(url):
            if segment and segment not in kept:
                (posts if post(segment) in kept else lost).add(segment)
    if not CORPUS.is_dir():
        assert lost <= EXPECTED_SCRUBBED
    else:
        assert lost == EXPECTED_SCRUBBED
    # Forum thread, response and comment ids (the fixtures' forum family has some) became their
    # pseudonyms, and nothing else did.
    assert posts and all(re.fullmatch(r"[0-9a-f]{24}", segment) for segment in posts)


def test_no_key_block_id_or_thread_id_is_lost(scrubbed):
    for url, out in scrubbed.items():
        for segment in _segments(url):
            if _RESEARCH.fullmatch(segment) and segment not in EXPECTED_SCRUBBED:
                # Kept as written, or, a forum post's id, as the pseudonym its events' fields get.
                assert segment in out or post(segment) in out, (segment, out)
