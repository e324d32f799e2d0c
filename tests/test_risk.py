"""The quasi-identifier report (``anonymizer risk``) and rare-value suppression (``min_group_size``)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from anonymizer.core.policy import load_policy, parse_policy
from anonymizer.core.suppression import RARE
from anonymizer.io.runner import run
from anonymizer.tools.risk import format_report, risk_report
from anonymizer.verify import verify_package

COURSE = "course-v1:Org+Num+Run"
CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{}.0.0.0 Safari/537.36"


def _event(username: str, agent: str, ip: str, language: str = "en-US,en;q=0.9") -> dict:
    return {
        "event_type": "play_video",
        "event_source": "browser",
        "username": username,
        "time": "2024-03-01T10:00:00+00:00",
        "agent": agent,
        "ip": ip,
        "accept_language": language,
        "context": {"course_id": COURSE, "user_id": None, "org_id": "Org"},
        "event": {"id": "abc", "currentTime": 1},
    }


@pytest.fixture()
def planted(tmp_path) -> Path:
    """Twelve learners alike, and one (``planted_learner``) whose browser version no one else has."""
    lines = []
    for number in range(12):
        for _ in range(2):
            lines.append(_event(f"learner{number:02d}", CHROME.format(120), f"10.1.2.{number + 1}"))
    lines.append(_event("planted_learner", CHROME.format(99), "10.1.2.200"))
    path = tmp_path / "raw" / "tracking.log"
    path.parent.mkdir()
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_risk_finds_the_planted_unique_combination_and_the_generalization_that_fixes_it(planted, tmp_path, key):
    out = tmp_path / "package"
    run([planted], out, load_policy("research"), key)
    report = risk_report(out, k=5)
    assert report["learners"] == 13 and report["quasi_identifiers"] == ["agent", "ip", "language", "courses"]
    (course,) = report["courses"]
    assert course["course"] == COURSE and course["learners"] == 13
    by_fields = {tuple(c["fields"]): c for c in course["combinations"]}
    assert by_fields[("agent",)] == {"fields": ["agent"], "groups_below_k": 1, "learners_below_k": 1}
    assert by_fields[("ip",)]["learners_below_k"] == 0  # one /24 for all
    assert by_fields[("language",)]["learners_below_k"] == 0
    assert course["learners_below_k_all_fields"] == 1
    best = course["suggestions"][0]
    assert best["learners_below_k"] == 0
    assert {s["change"] for s in course["suggestions"] if s["learners_below_k"] == 0} >= {"agent without the browser version", "drop agent"}
    assert course["greedy"] == [{"change": "agent without the browser version", "learners_below_k": 0}]  # coarser before dropped
    # The report names no value of the rare group and no pseudonym, in JSON or as text.
    text = json.dumps(report) + format_report(report)
    for value in ("Chrome", "99", "10.1.2", "u_", "en-US", "planted"):
        assert value not in text.replace(str(out), ""), value


def test_risk_with_a_larger_k_counts_more_learners_below_it(planted, tmp_path, key):
    out = tmp_path / "package"
    run([planted], out, load_policy("research"), key)
    (course,) = risk_report(out, k=13)["courses"]
    assert course["learners_below_k_all_fields"] == 13  # 12 alike and 1 alone: both groups below 13
    (course,) = risk_report(out, k=2)["courses"]
    assert course["learners_below_k_all_fields"] == 1


def test_risk_refuses_what_is_not_a_package(tmp_path):
    from anonymizer.core.errors import UsageError  # noqa: PLC0415  (only this test needs it)

    with pytest.raises(UsageError):
        risk_report(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="manifest"):
        risk_report(tmp_path / "empty")


SUPPRESSING = b"""
name: research-suppressed
extends: research
envelope:
  agent: {op: generalize_agent, min_group_size: 3}
  context.agent: {op: generalize_agent, min_group_size: 3}
  ip: {op: mask_ip, ipv4_prefix: 24, min_group_size: 3}
  context.ip: {op: mask_ip, ipv4_prefix: 24, min_group_size: 3}
"""


def _written(package: Path) -> list[dict]:
    return [json.loads(line) for line in gzip.decompress((package / "tracking.log.gz").read_bytes()).splitlines()]


def test_min_group_size_replaces_values_fewer_learners_share(planted, tmp_path, key):
    policy = parse_policy(SUPPRESSING, "suppressed.yaml")
    # The planted learner also has a network of their own.
    lines = planted.read_text().splitlines()
    odd = json.loads(lines[-1])
    odd["ip"] = "192.0.2.7"
    planted.write_text("\n".join(lines[:-1] + [json.dumps(odd)]) + "\n")
    one = run([planted], tmp_path / "one", policy, key, jobs=1)
    two = run([planted], tmp_path / "two", policy, key, jobs=2)
    assert (tmp_path / "one" / "tracking.log.gz").read_bytes() == (tmp_path / "two" / "tracking.log.gz").read_bytes()
    events = _written(tmp_path / "one")
    assert [e["agent"] for e in events].count(RARE) == 1 and events[-1]["agent"] == RARE and events[-1]["ip"] == RARE
    assert {e["agent"] for e in events[:-1]} == {"Chrome 120 / Windows / desktop"} and {e["ip"] for e in events[:-1]} == {"10.1.2.0"}
    assert one.manifest["suppressed"] == {
        "generalize_agent": {"values_kept": 1, "values_suppressed": 1},
        "mask_ip": {"values_kept": 1, "values_suppressed": 1},
    }
    assert one.manifest["counts"] == two.manifest["counts"]
    readme = (tmp_path / "one" / "README.md").read_text()
    assert f"fewer than 3 learners in the whole package is replaced by `{RARE}`" in readme
    assert verify_package(tmp_path / "one", against=[planted]).ok


def test_min_group_size_without_counts_suppresses_everything(key):
    from anonymizer import Anonymizer  # noqa: PLC0415  (the Python API, as a caller without a run uses it)

    policy = parse_policy(SUPPRESSING, "suppressed.yaml")
    out = Anonymizer(policy, key).anonymize_event(_event("someone", CHROME.format(120), "10.1.2.3"))
    assert out["agent"] == RARE and out["ip"] == RARE  # fail closed: nothing was counted


def test_min_group_size_is_checked_when_the_policy_loads():
    from anonymizer.core.errors import PolicyError  # noqa: PLC0415  (only this test needs it)

    with pytest.raises(PolicyError, match="min_group_size"):
        parse_policy(b"name: x\nenvelope:\n  ip: {op: mask_ip, min_group_size: -1}\n", "x.yaml")


def test_the_risk_command_prints_counts_and_writes_json(planted, tmp_path, key_file):
    import subprocess  # noqa: PLC0415  (only this test runs the command as a user does)
    import sys  # noqa: PLC0415  (as above)

    cli = [sys.executable, "-m", "anonymizer.cli"]
    out = tmp_path / "package"
    made = subprocess.run([*cli, "run", str(planted), "--out", str(out), "--key-file", str(key_file), "-q"], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    shown = subprocess.run([*cli, "risk", str(out), "--k", "5"], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert f"{COURSE}: 13 learners" in shown.stdout and "1 learner(s) in 1 group(s) smaller than 5" in shown.stdout
    assert "suggestion: agent without the browser version: 0 learner(s) left below 5" in shown.stdout
    as_json = subprocess.run([*cli, "risk", str(out), "--json", "-"], capture_output=True, text=True)
    assert json.loads(as_json.stdout)["courses"][0]["learners_below_k_all_fields"] == 1
    refused = subprocess.run([*cli, "risk", str(out), "--k", "1"], capture_output=True, text=True)
    assert refused.returncode == 2
