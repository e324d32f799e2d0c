"""Fault injection: kill -9 and SIGTERM at random points, a full disk, inputs that vanish or fail,
a corrupt gzip member. After each, no manifest is written, and a rerun resumes to the package an
uninterrupted run makes, byte for byte (apart from the manifest's ``created``)."""

from __future__ import annotations

import errno
import gzip
import os
import random
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

import anonymizer.io.inputs as inputs
import anonymizer.io.journal as journal_module
import anonymizer.io.pool as pipeline
from anonymizer import InputError, run
from anonymizer.core.errors import OutputError
from anonymizer.io.journal import JOURNAL_NAME
from anonymizer.package.manifest import MANIFEST_NAME
from test_resume import make_logs, package_files

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "anonymizer.cli", "run"]
SEED = 20240301
# Generated events per input file: five files, two of them gzip in many members, one larger than
# a batch (so that it is cut into several), so that kills land between and within files.
FILE_EVENTS = [1500, 4000, 1000, 3500, 2000]


@pytest.fixture(scope="module")
def big_logs(tmp_path_factory) -> Path:
    """About 16 MB of generated logs in five files (bench/generate.py, seeded: the same bytes
    every time)."""
    directory = tmp_path_factory.mktemp("big")
    whole = directory / "all.log"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "generate.py"), "--events", str(sum(FILE_EVENTS)), "--seed", "7",
         "--roster-size", "300", "--jobs", "1", "--out", str(whole)],
        check=True, capture_output=True,
    )
    lines = whole.read_bytes().splitlines(keepends=True)
    whole.unlink()
    inputs = directory / "logs"
    inputs.mkdir()
    start = 0
    for number, count in enumerate(FILE_EVENTS):
        part = lines[start:start + count]
        start += count
        if number in (1, 3):
            members = [gzip.compress(b"".join(part[i:i + 500]), mtime=0) for i in range(0, len(part), 500)]
            (inputs / f"tracking.log-2024030{number}.gz").write_bytes(b"".join(members))
        else:
            (inputs / f"tracking.log-2024030{number}").write_bytes(b"".join(part))
    return inputs


def cli_run(logs: Path, out: Path, key_file: Path, jobs: int) -> subprocess.Popen:
    # A session of its own, so that the test can kill the run with its workers.
    return subprocess.Popen(
        CLI + [str(logs), "--out", str(out), "--key-file", str(key_file), "--jobs", str(jobs), "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, cwd=ROOT,
    )


def kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def journal_entries(out: Path) -> int:
    """Complete entries in the journal (a torn last line does not count)."""
    try:
        data = (out / JOURNAL_NAME).read_bytes()
    except FileNotFoundError:
        return 0
    return max(0, data.count(b"\n") - 1)


@pytest.fixture(scope="module")
def reference(big_logs, tmp_path_factory) -> tuple[Path, float]:
    """The uninterrupted package, and how long its run took (to choose kill points within it)."""
    key_file = tmp_path_factory.mktemp("key") / "k.key"
    key_file.write_text("ab" * 32 + "\n")
    key_file.chmod(0o600)
    out = tmp_path_factory.mktemp("reference") / "package"
    started = time.monotonic()
    process = cli_run(big_logs, out, key_file, 2)
    _, err = process.communicate()
    assert process.returncode == 0, err.decode()
    return out, time.monotonic() - started, key_file


def finish(big_logs: Path, out: Path, key_file: Path, jobs: int, expected: Path) -> None:
    """Rerun to the end and compare with the uninterrupted package."""
    kept = journal_entries(out) if not (out / MANIFEST_NAME).exists() else None
    if kept is None:  # the kill came after the manifest: the run had finished
        # A kill between the manifest and the journal's removal leaves the journal behind.
        assert {k: v for k, v in package_files(out).items() if k != JOURNAL_NAME} == package_files(expected)
        return
    process = cli_run(big_logs, out, key_file, jobs)
    stdout, stderr = process.communicate()
    assert process.returncode == 0, stderr.decode()
    if kept:
        assert f"kept {kept} of {len(FILE_EVENTS)} finished file(s)" in stdout.decode()
    else:
        assert "resumed" not in stdout.decode()
    assert package_files(out) == package_files(expected)


def kill_at(process: subprocess.Popen, out: Path, files: int, extra: float) -> bool:
    """Kill the run (and its workers) once FILES files are journaled and EXTRA seconds more have
    passed; False when it ended first."""
    while journal_entries(out) < files and process.poll() is None:
        time.sleep(0.01)
    try:
        process.wait(timeout=extra)
        return False
    except subprocess.TimeoutExpired:
        kill_group(process)
        process.wait()
        return True
    finally:
        process.stdout.close()
        process.stderr.close()


@pytest.mark.parametrize("jobs", [1, 2])
def test_kill_9_at_random_points_then_rerun_gives_the_same_package(big_logs, reference, tmp_path, jobs):
    expected, seconds, key_file = reference
    rng = random.Random(SEED + jobs)
    per_file = seconds / len(FILE_EVENTS)
    for round_ in range(2):
        out = tmp_path / f"package-{round_}"
        # A kill after 0 to 3 finished files and part of the next, then a second kill during the
        # resumed run, then a run to the end.
        first = rng.randint(0, 3)
        assert kill_at(cli_run(big_logs, out, key_file, jobs), out, first, rng.uniform(0, 0.3) * per_file)
        assert not (out / MANIFEST_NAME).exists()
        assert journal_entries(out) >= first
        kill_at(cli_run(big_logs, out, key_file, jobs), out, rng.randint(first, 4), rng.uniform(0, 0.5) * per_file)
        finish(big_logs, out, key_file, jobs, expected)


def test_sigterm_stops_the_run_without_a_manifest_and_a_rerun_resumes(big_logs, reference, tmp_path):
    expected, seconds, key_file = reference
    out = tmp_path / "package"
    process = cli_run(big_logs, out, key_file, 2)
    try:
        deadline = time.monotonic() + 20 * seconds + 60
        while journal_entries(out) < 1 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)  # the parent only, as a service manager would
        process.wait(timeout=120)
    finally:
        kill_group(process)  # workers the parent may have left behind
        process.stdout.close()
        process.stderr.close()
    # Stopped as Ctrl-C stops a run: its own exit status and message, and no manifest.
    assert process.returncode == 143
    assert not (out / MANIFEST_NAME).exists()
    finish(big_logs, out, key_file, 2, expected)


# ---------------------------------------------------------------------------------- in-process


@pytest.fixture()
def logs(tmp_path) -> Path:
    return make_logs(tmp_path / "logs")


def reference_package(logs: Path, tmp_path: Path, policy, key) -> Path:
    out = tmp_path / "reference"
    run([logs], out, policy, key, jobs=1)
    return out


def assert_no_package(out: Path) -> None:
    assert not (out / MANIFEST_NAME).exists()
    # Nothing in progress is left: an empty .partial/ (beside the journal) only marks the run unfinished.
    assert not (out / ".partial").exists() or not any((out / ".partial").iterdir())


@pytest.mark.parametrize("where", ["output", "journal"])
def test_a_full_disk_leaves_no_manifest_and_a_later_run_completes(logs, tmp_path, research, key, monkeypatch, where):
    calls = {"n": 0}

    def full(original):
        def write(self, *args):
            calls["n"] += 1
            if calls["n"] == 2:  # once the first file is finished
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return original(self, *args)
        return write

    out = tmp_path / "package"
    with monkeypatch.context() as patch:
        if where == "output":
            patch.setattr(pipeline.OutputFile, "_write", full(pipeline.OutputFile._write))
        else:
            patch.setattr(journal_module.Journal, "record", full(journal_module.Journal.record))
        # A user error naming the path and the reason, not an internal one.
        with pytest.raises(OutputError, match="No space left on device"):
            run([logs], out, research, key, jobs=1)
    assert_no_package(out)
    result = run([logs], out, research, key, jobs=1)
    assert result.resumed == 1
    assert package_files(out) == package_files(reference_package(logs, tmp_path, research, key))


def test_an_input_that_disappears_mid_run_stops_it_and_a_rerun_resumes(logs, tmp_path, research, key):
    victim = logs / "tracking-4.log"
    saved = victim.read_bytes()

    def vanish(name, stats):
        victim.unlink(missing_ok=True)

    out = tmp_path / "package"
    with pytest.raises(InputError) as caught:
        run([logs], out, research, key, jobs=1, on_file_done=vanish)
    assert "tracking-4.log" in str(caught.value)
    assert "siobhan" not in str(caught.value)
    assert_no_package(out)
    victim.write_bytes(saved)
    result = run([logs], out, research, key, jobs=1)
    assert result.resumed == 4
    assert package_files(out) == package_files(reference_package(logs, tmp_path, research, key))


class _FailingFile:
    """A file whose reads fail with EIO after its first bytes, as a failing disk does."""

    def __init__(self, raw) -> None:
        self._raw = raw

    def read(self, size=-1):
        if self._raw.tell() > 0:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return self._raw.read(min(size, 100) if size and size > 0 else 100)

    def __getattr__(self, name):
        return getattr(self._raw, name)


def test_an_input_that_becomes_unreadable_mid_file_stops_the_run_naming_it(logs, tmp_path, research, key, monkeypatch):
    real_open = open

    def failing_open(path, mode="r", *args, **kwargs):
        handle = real_open(path, mode, *args, **kwargs)
        return _FailingFile(handle) if Path(path).name == "tracking-2.log" else handle

    out = tmp_path / "package"
    with monkeypatch.context() as patch:
        patch.setattr(inputs, "open", failing_open, raising=False)
        with pytest.raises(InputError, match=r"tracking-2\.log: it cannot be read \(Input/output error\)"):
            run([logs], out, research, key, jobs=1)
    assert_no_package(out)
    result = run([logs], out, research, key, jobs=1)
    assert result.resumed == 3  # sub/tracking-3.log, tracking-0.log, tracking-1.log.gz came before it
    assert package_files(out) == package_files(reference_package(logs, tmp_path, research, key))


@pytest.mark.parametrize("damage", ["crc", "deflate"])
def test_a_corrupt_gzip_member_in_the_middle_stops_the_run_naming_the_file(logs, tmp_path, key_file, damage):
    lines = (logs / "tracking-0.log").read_bytes().splitlines(keepends=True)
    members = [gzip.compress(b"".join(lines[i::3]), mtime=0) for i in range(3)]
    middle = bytearray(members[1])
    if damage == "crc":
        middle[-8] ^= 0xFF  # the member's CRC-32
    else:
        middle[len(middle) // 2] ^= 0x55  # its compressed data
    target = logs / "tracking-5.log.gz"
    target.write_bytes(members[0] + bytes(middle) + members[2])
    with pytest.raises((OSError, EOFError, zlib.error)):  # the damage is real
        gzip.decompress(bytes(middle))
    out = tmp_path / "package"
    process = subprocess.run(
        CLI + [str(logs), "--out", str(out), "--key-file", str(key_file), "--jobs", "1", "--no-progress"],
        capture_output=True, cwd=ROOT,
    )
    assert process.returncode == 1
    stderr = process.stderr.decode()
    assert "tracking-5.log.gz" in stderr and "gzip" in stderr
    assert "siobhan" not in stderr and "internal error" not in stderr
    assert_no_package(out)
    assert not (out / "tracking-5.log.gz").exists()
