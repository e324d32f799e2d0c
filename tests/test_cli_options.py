"""Every command-line option, at least once, through the installed command (a subprocess, as a
user runs it): what each one promises, in its simplest form."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from anonymizer import __version__
from anonymizer.io.progress import ProgressLine, _duration, _size
from anonymizer.io.runner import Progress

CLI = [sys.executable, "-m", "anonymizer.cli"]
EVENT = {
    "username": "QXoptions_user",
    "event_type": "play_video",
    "event_source": "browser",
    "ip": "203.0.113.77",
    "time": "2024-03-01T10:00:00+00:00",
    "context": {"user_id": 530114, "course_id": "course-v1:X+Y+Z"},
    "event": json.dumps({"id": "v1", "currentTime": 3}),
}


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env={**os.environ, **(env or {})})


@pytest.fixture()
def log(tmp_path) -> Path:
    path = tmp_path / "in" / "tracking.log"
    path.parent.mkdir()
    path.write_text("\n".join(json.dumps({**EVENT, "context": {**EVENT["context"], "n": n}}) for n in range(50)) + "\n")
    return path


def events_in(package: Path) -> list[dict]:
    return [json.loads(line) for line in gzip.decompress((package / "tracking.log.gz").read_bytes()).splitlines()]


@pytest.mark.parametrize("command", [[], ["run"], ["inspect"], ["keygen"], ["verify"], ["policy"], ["policy", "check"]])
def test_every_command_has_help(command):
    result = cli(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout


def test_version():
    result = cli("--version")
    assert result.returncode == 0
    assert __version__ in result.stdout


def test_keygen_out_and_signing(tmp_path):
    result = cli("keygen", "--out", str(tmp_path / "k.key"))
    assert result.returncode == 0 and result.stdout.startswith("k1-")
    result = cli("keygen", "--signing", "--out", str(tmp_path / "s"))
    assert result.returncode == 0 and result.stdout.startswith("s1-")
    assert (tmp_path / "s.key").is_file() and (tmp_path / "s.pub").is_file()


def test_run_quiet_short_option_prints_nothing(log, tmp_path, key_file):
    result = cli("run", str(log), "--out", str(tmp_path / "p"), "--key-file", str(key_file), "-q")
    assert result.returncode == 0, result.stderr
    loud = cli("run", str(log), "--out", str(tmp_path / "loud"), "--key-file", str(key_file))
    assert loud.stdout and result.stdout == ""
    assert own_lines(result.stderr) == []


def own_lines(stderr: str) -> list[str]:
    """STDERR without the warnings of a coverage measurement (`make coverage` runs the command
    under coverage, which may warn on stderr): what the command itself printed."""
    lines = stderr.splitlines()
    return [line for index, line in enumerate(lines) if "Warning" not in line and not (index and "Warning" in lines[index - 1])]


def test_run_jobs_short_option_gives_the_same_bytes(log, tmp_path, key_file):
    for jobs in ("1", "2"):
        assert cli("run", str(log), "--out", str(tmp_path / jobs), "--key-file", str(key_file), "-j", jobs, "-q").returncode == 0
    assert (tmp_path / "1" / "tracking.log.gz").read_bytes() == (tmp_path / "2" / "tracking.log.gz").read_bytes()


def test_run_force_replaces_a_previous_package(log, tmp_path, key_file):
    out = tmp_path / "p"
    assert cli("run", str(log), "--out", str(out), "--key-file", str(key_file), "-q").returncode == 0
    refused = cli("run", str(log), "--out", str(out), "--key-file", str(key_file), "-q")
    assert refused.returncode == 2 and "--force" in refused.stderr
    forced = cli("run", str(log), "--out", str(out), "--key-file", str(key_file), "-q", "--force", "--policy", "strict")
    assert forced.returncode == 0, forced.stderr
    assert json.loads((out / "manifest.json").read_text())["policy"]["name"] == "strict"


def test_run_progress_shows_counts_and_no_progress_shows_none(log, tmp_path, key_file):
    shown = cli("run", str(log), "--out", str(tmp_path / "a"), "--key-file", str(key_file), "--progress")
    assert shown.returncode == 0, shown.stderr
    hidden = cli("run", str(log), "--out", str(tmp_path / "b"), "--key-file", str(key_file), "--no-progress")
    assert hidden.returncode == 0, hidden.stderr
    assert "\r" not in hidden.stderr
    assert "lines/s" in shown.stderr  # drawn at least once, then cleared
    assert "QXoptions_user" not in shown.stderr + shown.stdout


def test_run_roster_and_sign_key_then_verify_with_public_key(log, tmp_path, key_file):
    roster = tmp_path / "roster.csv"
    roster.write_text("id,username,email,name\n530114,QXoptions_user,qx.options@example.org,Options User\n")
    assert cli("keygen", "--signing", "--out", str(tmp_path / "sig")).returncode == 0
    out = tmp_path / "p"
    result = cli("run", str(log), "--out", str(out), "--key-file", str(key_file), "--roster", str(roster), "--sign-key", str(tmp_path / "sig.key"), "-q")
    assert result.returncode == 0, result.stderr
    first = events_in(out)[0]
    assert first["username"] == f"u_{first['context']['user_id']}"  # the roster links the two
    assert (out / "manifest.sig").is_file()
    report = tmp_path / "verify.json"
    checked = cli(
        "verify", str(out), "--against", str(log), "--roster", str(roster),
        "--public-key", str(tmp_path / "sig.pub"), "--require-signature", "--max-findings", "5", "--json", str(report),
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    data = json.loads(report.read_text())
    assert data["ok"] is True
    assert data["scanned"]["lines"] >= 50


def test_verify_max_findings_limits_the_list_not_the_count(log, tmp_path, key_file):
    out = tmp_path / "p"
    assert cli("run", str(log), "--out", str(out), "--key-file", str(key_file), "-q").returncode == 0
    path = out / "tracking.log.gz"
    lines = gzip.decompress(path.read_bytes()).splitlines()
    leaked = [json.dumps({**json.loads(line), "note": "QXoptions_user"}).encode() for line in lines]
    path.write_bytes(gzip.compress(b"\n".join(leaked) + b"\n"))
    report = tmp_path / "verify.json"
    result = cli("verify", str(out), "--against", str(log), "--max-findings", "2", "--json", str(report))
    assert result.returncode == 1
    data = json.loads(report.read_text())
    assert len(data["findings"]) == 2
    assert "QXoptions_user" not in result.stdout + result.stderr


def test_inspect_no_fields_and_json(log, tmp_path):
    with_fields = cli("inspect", str(log))
    without = cli("inspect", str(log), "--no-fields")
    assert with_fields.returncode == without.returncode == 0
    assert "context.user_id" in with_fields.stdout and "context.user_id" not in without.stdout
    assert "play_video" in without.stdout
    to_stdout = cli("inspect", str(log), "--json", "-")
    assert json.loads(to_stdout.stdout)["events"] == 50


def test_policy_check_json_to_stdout(log):
    result = cli("policy", "check", "research", "--sample", str(log), "--strict-fields", "--json", "-")
    data = json.loads(result.stdout)
    assert data["policy"]["valid"] is True
    assert data["sample"]["events"] == 50
    assert result.returncode == (1 if data["unnamed_fields"] else 0)


# ---------------------------------------------------------------- the progress line itself


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_shows_counts_and_clears_itself_on_a_terminal():
    stream = _Terminal()
    line = ProgressLine(stream, interval=0)
    line(Progress(lines=1500, events_written=1400, bytes_done=2_500_000, bytes_total=10_000_000, files_done=0, files_total=2))
    text = stream.getvalue()
    assert text.startswith("\r") and " 25.0%" in text
    assert "2.5 MB of 10.0 MB" in text and "file 1/2" in text and "1,500 lines" in text and "left " in text
    line.finish()
    assert stream.getvalue().endswith("\r")


def test_progress_into_a_file_is_plain_lines_without_carriage_returns():
    stream = io.StringIO()
    line = ProgressLine(stream, interval=0)
    line(Progress(lines=1500, events_written=1400, bytes_done=2_500_000, bytes_total=10_000_000, files_done=0, files_total=2))
    line.finish()
    text = stream.getvalue()
    assert "\r" not in text and " 25.0%" in text and text.endswith("\n")


def test_progress_line_waits_for_its_interval():
    stream = io.StringIO()
    line = ProgressLine(stream, interval=3600)
    line(Progress(lines=1, events_written=1, bytes_done=1, bytes_total=0, files_done=0, files_total=1))
    drawn = stream.getvalue()
    line(Progress(lines=2, events_written=2, bytes_done=2, bytes_total=0, files_done=0, files_total=1))
    assert stream.getvalue() == drawn  # the second call comes before the interval has passed


def test_progress_sizes_and_durations():
    assert _size(999) == "999 B"
    assert _size(1500) == "1.5 kB"
    assert _size(3e12) == "3.0 TB"
    assert _size(5e15) == "5000.0 TB"
    assert _duration(3725) == "1:02:05"
