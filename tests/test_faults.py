"""Faults a run must survive without crashing, hanging, orphaning workers or lying: strict JSON,
overlapping directories, OS errors, signals, garbage input, and the help and progress output."""

from __future__ import annotations

import errno
import gzip
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from anonymizer import InputError, UsageError, run
from anonymizer.core.errors import OutputError
from anonymizer.tools.inspect import inspect_inputs
from anonymizer.io.journal import JOURNAL_NAME
from anonymizer.package.manifest import MANIFEST_NAME
from anonymizer.tools.policy_check import check_policy
from anonymizer.io.progress import ProgressLine
from anonymizer.io.inputs import collect_inputs
from anonymizer.core.lines import parse_line
from anonymizer.io.runner import Progress
from anonymizer.core.strictjson import MAX_DEPTH, StrictJSONError, loads

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "anonymizer.cli"]
SETTINGS = {"event_type": "edx.user.settings.changed", "username": "QXbob", "event": {"setting": "time_zone", "old": "UTC", "new": "CET"}}
GOOD = orjson.dumps(SETTINGS)


def nested(depth: int, leaf: object = 1) -> object:
    """DEPTH dicts nested one inside the other."""
    value = leaf
    for _ in range(depth):  # DEPTH containers, one inside the other
        value = {"a": value}
    return value


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def manifest_of(out: Path) -> dict:
    return json.loads((out / MANIFEST_NAME).read_text())


# ------------------------------------------------------------------ strict JSON


@pytest.mark.parametrize(
    "text",
    [
        b'{"a":1,"a":2}',
        b'{"a":{"b":1,"c":{"d":1,"d":1}}}',
        b'{"a" :1,"a":2}',  # white space before the colon
        b'{"x":"\\":","a":1,"a":2}',  # an escaped quote and a colon inside a string
        b'{"a":"\\u0022:","a":2}',  # a quote written as an escape
        b'{"a\\\\":1,"a\\\\":2}',  # a key ending in an escaped backslash
        b'[{"k":1},{"k":1,"k":2}]',
        '{"é":1,"\\u00e9":2}'.encode(),  # the same key spelled two ways
    ],
)
def test_a_repeated_key_is_refused_at_any_depth(text):
    with pytest.raises(StrictJSONError) as caught:
        loads(text)
    assert caught.value.reason == "duplicate_key"
    with pytest.raises(StrictJSONError):
        loads(text.decode("utf-8"))


@pytest.mark.parametrize(
    "text",
    [
        b'{"a":1,"b":"\\":"}',
        b'{"event":"{\\"a\\": 1, \\"a\\": 2}"}',  # repeated keys inside a string are that string's business
        b'{"a":":x","b":"x\\\\\\":y"}',
        b'{"a": {"b": [1, {"c": 2}], "d": "e: f"}}',
    ],
)
def test_distinct_keys_pass(text):
    assert loads(text) == orjson.loads(text)


def test_depth_is_limited_to_max_depth():
    assert loads(orjson.dumps(nested(MAX_DEPTH)))
    assert loads(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is not None
    for text in (orjson.dumps(nested(MAX_DEPTH + 1)), b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1)):
        with pytest.raises(StrictJSONError) as caught:
            loads(text)
        assert caught.value.reason == "too_deep"


def test_the_reader_rejects_repeated_keys_and_depth_bombs():
    assert parse_line(b'{"event_type":"x","setting":"email","setting":"time_zone"}') == "duplicate_key"
    assert parse_line(b'{"event_type":"x","event":' + b"[" * 300 + b"]" * 300 + b"}") == "too_deep"
    assert parse_line(b"2024-03-01 INFO logger.py:41 - " + b'{"a":1,"a":1}') == "duplicate_key"


def bad_payload_lines() -> list[bytes]:
    deep = '{"a":' * 300 + "1" + "}" * 300  # deeper than orjson can serialize (254)
    return [
        # a JSON-string payload with a repeated key
        orjson.dumps({**SETTINGS, "event": '{"setting":"email","old":"QXold@example.com","new":"x","setting":"time_zone"}'}),
        # a kept or scrubbed field holding a depth bomb (the line itself is deep)
        b'{"event_type": "openassessmentblock.save_submission", "event": {"saved_response": ' + deep.encode() + b"}}",
        # a decode: json field whose string is a depth bomb
        orjson.dumps({"event_type": "openassessmentblock.save_submission", "event": {"saved_response": deep}}),
        # a decode: json field whose string repeats a key
        orjson.dumps({"event_type": "openassessmentblock.save_submission", "event": {"saved_response": '{"text":"a","text":"QXsecret"}'}}),
        # a JSON-string event payload that is a depth bomb
        orjson.dumps({**SETTINGS, "event": deep}),
    ]


def test_one_bad_line_never_stops_a_run(tmp_path, research, key):
    lines = bad_payload_lines()
    log = write_lines(tmp_path / "in.log", [GOOD, *lines, GOOD])
    out = tmp_path / "package"
    run([log], out, research, key, jobs=1)
    counts = manifest_of(out)["counts"]
    assert counts["read"] == len(lines) + 2
    assert counts["written"] == 2
    assert counts["rejected"] == {"duplicate_key": 2, "too_deep": 3}
    written = gzip.decompress((out / "in.log.gz").read_bytes())
    assert b"QXold" not in written and b"QXsecret" not in written


def test_policy_check_and_inspect_count_bad_lines_without_crashing(tmp_path, research):
    log = write_lines(tmp_path / "in.log", [GOOD, *bad_payload_lines()])
    check = check_policy(research, [log])
    assert check.rejected == {"duplicate_key": 2, "too_deep": 3}
    inventory = inspect_inputs([log])
    assert inventory.rejected["too_deep"] >= 2 and inventory.rejected["duplicate_key"] >= 1
    assert sum(inventory.rejected.values()) + inventory.events == 6


# ------------------------------------------------------------------ directories


def test_an_output_directory_inside_an_input_directory_is_refused(tmp_path, research, key):
    logs = tmp_path / "logs"
    logs.mkdir()
    write_lines(logs / "a.log", [GOOD])
    for out in (logs, logs / "package", logs / "deeper" / "package"):
        with pytest.raises(UsageError) as caught:
            run([logs], out, research, key)
        assert str(out) in str(caught.value) and str(logs) in str(caught.value)
    with pytest.raises(UsageError, match="inside the output directory"):
        run([logs / "a.log"], logs, research, key, force=True)
    assert (logs / "a.log").exists()


def test_discovery_skips_manifests_partial_directories_and_packages(tmp_path, research, key):
    logs = tmp_path / "logs"
    logs.mkdir()
    write_lines(logs / "a.log", [GOOD])
    run([logs], tmp_path / "old", research, key)
    os.replace(tmp_path / "old", logs / "old-package")  # a package moved under the inputs
    (logs / ".partial").mkdir()
    (logs / ".partial" / "000000.gz").write_bytes(b"x")
    (logs / "manifest.sig").write_bytes(b"sig")
    assert [name for _, name in collect_inputs([logs])] == ["a.log"]
    with pytest.raises(UsageError, match="anonymized package"):
        collect_inputs([logs / "old-package"])
    with pytest.raises(UsageError, match="not a tracking log"):
        collect_inputs([logs / "old-package" / MANIFEST_NAME])
    # inspect and policy check may look into a package's data files, never its manifest
    assert [name for _, name in collect_inputs([logs / "old-package"], packages=True)] == ["a.log.gz"]
    assert [name for _, name in collect_inputs([logs], packages=True)] == ["a.log", "old-package/a.log.gz"]


def test_two_inputs_with_one_name_get_a_whole_sentence(tmp_path):
    for sub in ("x", "y"):
        (tmp_path / sub).mkdir()
        write_lines(tmp_path / sub / "t.log", [GOOD])
    with pytest.raises(UsageError) as caught:
        collect_inputs([tmp_path / "x" / "t.log", tmp_path / "y" / "t.log"])
    assert str(caught.value).endswith("rename one of them, or anonymize them in separate runs")


def test_force_clears_stray_files_of_a_package(tmp_path, research, key):
    log = write_lines(tmp_path / "in.log", [GOOD])
    out = tmp_path / "package"
    run([log], out, research, key)
    (out / "stray.gz").write_bytes(b"left over")
    (out / "sub").mkdir()
    (out / "sub" / "old.gz").write_bytes(b"left over")
    run([log], out, research, key, force=True)
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "codebook.json", "in.log.gz", MANIFEST_NAME]


def test_force_clears_an_unfinished_package(tmp_path, research, key):
    log = write_lines(tmp_path / "in.log", [GOOD])
    out = tmp_path / "package"
    out.mkdir()
    (out / "in.log.gz").write_bytes(b"finished before the kill")
    (out / ".partial").mkdir()
    (out / ".partial" / "000001.gz").write_bytes(b"half")
    with pytest.raises(UsageError, match="not empty"):
        run([log], out, research, key)
    run([log], out, research, key, force=True)
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "codebook.json", "in.log.gz", MANIFEST_NAME]


# ------------------------------------------------------------------ OS errors


def test_a_full_disk_keeps_finished_files_for_a_resume_and_writes_no_manifest(tmp_path, research, key, monkeypatch):
    import anonymizer.io.pool as pipeline

    first = write_lines(tmp_path / "a.log", [GOOD])
    second = write_lines(tmp_path / "b.log", [GOOD])
    calls = {"n": 0}
    original = pipeline.OutputFile._write

    def full(self, data):
        calls["n"] += 1
        if calls["n"] == 2:  # the first file is written and in place; the second one fails
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        original(self, data)

    monkeypatch.setattr(pipeline.OutputFile, "_write", full)
    out = tmp_path / "package"
    with pytest.raises(OutputError) as caught:
        run([first, second], out, research, key, jobs=1)
    assert "No space left on device" in str(caught.value) and str(out) in str(caught.value)
    # The file in progress and any manifest go; the finished file stays, journaled, for a resume.
    assert sorted(p.name for p in out.iterdir()) == [JOURNAL_NAME, ".partial", "a.log.gz"]
    assert list((out / ".partial").iterdir()) == []
    monkeypatch.setattr(pipeline.OutputFile, "_write", original)
    result = run([first, second], out, research, key, jobs=1)
    assert result.resumed == 1
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "a.log.gz", "b.log.gz", "codebook.json", MANIFEST_NAME]


def test_an_unwritable_manifest_is_a_user_error_and_no_manifest_is_left(tmp_path, research, key, monkeypatch):
    import anonymizer.io.runner as runner

    def read_only(path, data):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(runner, "write_json_atomically", read_only)
    out = tmp_path / "package"
    with pytest.raises(OutputError, match="Read-only file system"):
        run([write_lines(tmp_path / "a.log", [GOOD])], out, research, key)
    assert MANIFEST_NAME not in [p.name for p in out.iterdir()]


def test_an_input_that_vanishes_mid_run_is_named(tmp_path, research, key):
    first = write_lines(tmp_path / "a.log", [GOOD])
    second = write_lines(tmp_path / "b.log", [GOOD])
    with pytest.raises(InputError) as caught:
        run([first, second], tmp_path / "package", research, key, jobs=1, on_file_done=lambda name, stats: second.unlink())
    assert str(second) in str(caught.value) and "No such file or directory" in str(caught.value)


def test_cli_reports_os_errors_with_exit_1_and_the_reason(tmp_path, key_file):
    log = write_lines(tmp_path / "a.log", [GOOD])
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = subprocess.run([*CLI, "run", str(log), "--out", str(blocker / "package"), "--key-file", str(key_file), "-q"],
                            capture_output=True, text=True)
    assert result.returncode == 1, result.stderr
    assert "Not a directory" in result.stderr and str(blocker) in result.stderr
    assert "internal error" not in result.stderr


# ------------------------------------------------------------------ garbage in


def test_random_bytes_and_utf16_are_named_and_warned_about(tmp_path, key_file):
    noise = tmp_path / "noise.log"
    noise.write_bytes(bytes((i * 7919 + 13) % 256 for i in range(20000)))
    wide = tmp_path / "wide.log"
    wide.write_bytes(("\n".join([GOOD.decode()] * 5) + "\n").encode("utf-16"))
    out = tmp_path / "package"
    result = subprocess.run([*CLI, "run", str(noise), str(wide), "--out", str(out), "--key-file", str(key_file), "-q"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "warning: noise.log:" in result.stderr and "warning: wide.log:" in result.stderr
    manifest = manifest_of(out)
    assert len(manifest["warnings"]) == 2
    assert manifest["counts"]["rejected"]["utf16_bom"] == 1
    assert manifest["counts"]["rejected"]["utf16_or_utf32"] >= 4
    assert all(entry["rejected"] > entry["lines"] / 2 for entry in manifest["inputs"])


def test_max_rejected_fraction_fails_the_run(tmp_path, key_file):
    log = write_lines(tmp_path / "a.log", [GOOD, b"not json", b"not json either"])
    base = [*CLI, "run", str(log), "--key-file", str(key_file), "-q"]
    failed = subprocess.run([*base, "--out", str(tmp_path / "p"), "--max-rejected-fraction", "0.5"], capture_output=True, text=True)
    assert failed.returncode == 1
    assert "2 of 3 lines rejected" in failed.stderr and "--max-rejected-fraction" in failed.stderr
    assert not (tmp_path / "p" / MANIFEST_NAME).exists()
    passed = subprocess.run([*base, "--out", str(tmp_path / "q"), "--max-rejected-fraction", "0.7"], capture_output=True, text=True)
    assert passed.returncode == 0, passed.stderr
    assert "warning: a.log: 2 of 3 lines rejected" in passed.stderr


# ------------------------------------------------------------------ signals and workers


@pytest.fixture(scope="module")
def big_log(tmp_path_factory) -> Path:
    """About 60 MB of generated events: a --jobs 2 run over it lasts long enough to be interrupted."""
    directory = tmp_path_factory.mktemp("big")
    part = directory / "part.log"
    subprocess.run([sys.executable, str(ROOT / "bench" / "generate.py"), "--events", "4000", "--seed", "5", "--out", str(part)],
                   check=True, capture_output=True)
    data = part.read_bytes()
    big = directory / "big.log"
    with open(big, "wb") as fh:
        for _ in range(max(1, (60 << 20) // len(data))):
            fh.write(data)
    part.unlink()
    return big


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                found.update(int(child) for child in fh.read().split())
    except OSError:
        pass
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def _start_and_wait_for_workers(big_log: Path, out: Path, key_file: Path) -> tuple[subprocess.Popen, set[int]]:
    process = subprocess.Popen([*CLI, "run", str(big_log), "--out", str(out), "--key-file", str(key_file), "--jobs", "2", "-q"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    workers: set[int] = set()
    for _ in range(600):  # a liveness wait, not a timing: the run is mid-way once workers exist
        workers = _children(process.pid)
        if len(workers) >= 2 and (out / ".partial").is_dir():
            break
        if process.poll() is not None:
            pytest.fail(f"the run ended before it could be interrupted: {process.stderr.read()}")
        time.sleep(0.1)
    assert len(workers) >= 2
    return process, workers


def _wait_until_gone(pids: set[int]) -> set[int]:
    """The PIDS still alive after a liveness wait; those are then killed, so that no test leaves orphans."""
    for _ in range(300):
        alive = {pid for pid in pids if _alive(pid)}
        if not alive:
            return alive
        time.sleep(0.1)
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    return alive


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads worker processes from /proc")
def test_workers_exit_when_the_parent_is_killed(big_log, tmp_path, key_file):
    process, workers = _start_and_wait_for_workers(big_log, tmp_path / "package", key_file)
    process.kill()
    process.wait()
    assert _wait_until_gone(workers) == set()
    assert not (tmp_path / "package" / MANIFEST_NAME).exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads worker processes from /proc")
def test_sigterm_stops_a_run_like_ctrl_c(big_log, tmp_path, key_file):
    out = tmp_path / "package"
    process, workers = _start_and_wait_for_workers(big_log, out, key_file)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate()
    assert process.returncode == 143, stderr
    assert "terminated (SIGTERM)" in stderr and "no manifest" in stderr
    assert _wait_until_gone(workers) == set()
    assert not (out / MANIFEST_NAME).exists()
    assert list((out / ".partial").iterdir()) == []
    # What it left is an unfinished package: --force replaces it.
    assert sorted(p.name for p in out.iterdir() if p.name not in (".partial", JOURNAL_NAME)) in ([], ["big.log.gz"])


def test_a_signal_while_workers_start_is_held_and_delivered_after():
    """An interrupt that lands while the pool forks a worker is not lost: it is handled once the
    step is over, by the handler that was in place."""
    from anonymizer.io.signals import held_signals

    seen: list[object] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        with held_signals():
            signal.raise_signal(signal.SIGTERM)
            seen.append("inside")  # the handler has not run yet
        assert seen == ["inside", signal.SIGTERM]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        with pytest.raises(KeyboardInterrupt):
            with held_signals():
                signal.raise_signal(signal.SIGINT)
                seen.append("still inside")  # Ctrl-C did not raise inside the block
        assert seen[-1] == "still inside"
    finally:
        signal.signal(signal.SIGTERM, previous)


# ------------------------------------------------------------------ help and progress


@pytest.mark.parametrize("command", [["run"], ["inspect"], ["verify"], ["keygen"], ["policy", "check"]])
def test_help_pages_show_metavars_not_python_types(command):
    result = subprocess.run([*CLI, *command, "--help"], capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0
    usage = next(line for line in result.stdout.splitlines() if "Usage:" in line)
    assert "{" not in usage
    for python_type in ("<bool>", "<list[Path]>", "<path>", "<str>", "<int"):
        assert python_type not in result.stdout


def test_progress_into_a_file_writes_plain_lines_and_never_zero_left_before_the_end():
    stream = io.StringIO()
    display = ProgressLine(stream, interval=0)
    display.started -= 100
    display._last = -1e9
    display(Progress(lines=10, events_written=10, bytes_done=999_999, bytes_total=1_000_000, files_done=0, files_total=1))
    display.finish()
    text = stream.getvalue()
    assert "\r" not in text and text.endswith("\n")
    assert "left 0:00:01" in text  # not done, so never 0:00:00


def test_progress_does_not_reach_the_end_before_the_last_batch(tmp_path, monkeypatch):
    import anonymizer.io.inputs as pipeline

    monkeypatch.setattr(pipeline, "BATCH_BYTES", 1000)
    monkeypatch.setattr(pipeline, "READ_BLOCK", 1500)
    log = write_lines(tmp_path / "a.log", [GOOD] * 100)
    items = [item for item in pipeline.batches(0, "a.log", log) if isinstance(item, pipeline.Batch)]
    assert len(items) > 3
    assert all(item.raw_end < log.stat().st_size for item in items[:-1])
    assert items[-1].raw_end == log.stat().st_size
    assert [item.raw_end for item in items] == sorted(item.raw_end for item in items)


# ------------------------------------------------------------------ verify


@pytest.mark.parametrize("address", ["198.51.100.123", "172.16.254.101"])
def test_verify_counts_a_raw_ip_in_text_once(tmp_path, research, key, address):
    import hashlib

    from anonymizer.verify import verify_package

    log = write_lines(tmp_path / "in.log", [orjson.dumps({"event_type": "edx.forum.thread.created", "event": {"body": "hello", "title": "t"}})])
    out = tmp_path / "package"
    run([log], out, research, key)
    # Plant a raw address in the text after the run, and make the manifest match the file again.
    event = orjson.loads(gzip.decompress((out / "in.log.gz").read_bytes()))
    event["event"]["body"] = f"my server is {address} ok"
    data = gzip.compress(orjson.dumps(event) + b"\n", mtime=0)
    (out / "in.log.gz").write_bytes(data)
    manifest = manifest_of(out)
    manifest["files"][0].update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    (out / MANIFEST_NAME).write_text(json.dumps(manifest))
    report = verify_package(out)
    assert dict(report.findings_by_kind) == {"ip": 1}
