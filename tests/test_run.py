"""`anonymizer run` and `anonymizer keygen`, end to end: the package, the manifest, the refusals."""

from __future__ import annotations

import gzip
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from anonymizer import InputError, Key, UsageError, load_key, run
from anonymizer.io.journal import JOURNAL_NAME
from anonymizer.package.manifest import MANIFEST_NAME, read_manifest

FIXTURES = Path(__file__).parent / "fixtures"
CLI = [sys.executable, "-m", "anonymizer.cli"]

EVENT = {
    "username": "QXalice_77",
    "event_type": "edx.forum.thread.created",
    "ip": "203.0.113.45",
    "agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/30.0.1599.101 Safari/537.36",
    "host": "lms.example",
    "event": {"body": "write to QXalice@example.com", "title": "hi", "target_username": "QXalice_77", "bogus_field": 1},
    "event_source": "server",
    "context": {"user_id": 918273645, "course_id": "course-v1:X+Y+Z", "org_id": "X", "path": "/courses/x"},
    "time": "2024-03-01T10:11:12.123456+00:00",
    "session": "57f6482141f1868ab2e4833efc17b5b8",
}
RAW_VALUES = ["QXalice", "203.0.113.45", "918273645", "57f6482141f1868ab2e4833efc17b5b8", "AppleWebKit"]


def write_log(path: Path, lines: list[bytes], compress: bool = False) -> Path:
    data = b"".join(line + b"\n" for line in lines)
    if compress:
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path


@pytest.fixture()
def logs(tmp_path) -> Path:
    directory = tmp_path / "logs"
    directory.mkdir()
    good = orjson.dumps(EVENT)
    unknown = orjson.dumps({**EVENT, "event_type": "some.future.event"})
    write_log(directory / "tracking.log", [good, b"", b'{"username": "QXalice_77", "event', unknown, b"[1, 2]"])
    write_log(directory / "tracking.log-20240301.gz", [good, good], compress=True)
    return directory


def read_package(directory: Path) -> str:
    return "".join(gzip.decompress(p.read_bytes()).decode() for p in sorted(directory.rglob("*.gz")))


def test_run_writes_gzip_files_and_a_manifest_that_accounts_for_every_line(logs, tmp_path, research, key):
    out = tmp_path / "package"
    result = run([logs], out, research, key)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert sorted(f["path"] for f in manifest["files"]) == ["tracking.log-20240301.gz", "tracking.log.gz"]
    counts = manifest["counts"]
    assert counts["read"] == 7
    assert counts["written"] == 3
    assert counts["dropped"] == {"event_type_not_in_policy": 1}
    assert counts["rejected"] == {"blank": 1, "invalid_json": 1, "not_an_object": 1}
    assert counts["dropped_fields"]["edx.forum.*"]["event.bogus_field"] == {"unnamed": 3}
    assert {"file": "tracking.log", "line": 3, "reason": "invalid_json"} in manifest["rejections"]
    assert result.stats.accounted()


def test_manifest_lists_size_hash_and_events_of_every_file(logs, tmp_path, research, key):
    import hashlib

    out = tmp_path / "package"
    run([logs], out, research, key)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    for entry in manifest["files"]:
        data = (out / entry["path"]).read_bytes()
        assert entry["bytes"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["events"] == len(gzip.decompress(data).splitlines())
    assert manifest["key_id"] == key.key_id
    assert manifest["policy"]["name"] == "research"
    assert manifest["policy"]["sha256"] == research.sha256
    assert manifest["tool"]["name"] == "anonymizer"


def test_no_raw_value_reaches_the_package_or_the_manifest(logs, tmp_path, research, key):
    out = tmp_path / "package"
    run([logs], out, research, key)
    everything = read_package(out) + (out / MANIFEST_NAME).read_text()
    for value in RAW_VALUES:
        assert value not in everything
    assert key.secret.hex() not in everything


def test_same_input_key_and_policy_give_byte_identical_files(logs, tmp_path, research, key):
    first, second = tmp_path / "a", tmp_path / "b"
    run([logs], first, research, key)
    run([logs], second, research, key)
    for path in sorted(first.glob("*.gz")):
        assert path.read_bytes() == (second / path.name).read_bytes()


def test_a_different_key_gives_different_pseudonyms(logs, tmp_path, research, key):
    run([logs], tmp_path / "a", research, key)
    run([logs], tmp_path / "b", research, Key(b"\x01" * 32))
    assert read_package(tmp_path / "a") != read_package(tmp_path / "b")


def test_output_keeps_the_top_level_shape_of_the_input(logs, tmp_path, research, key):
    out = tmp_path / "package"
    run([logs], out, research, key)
    event = json.loads(read_package(out).splitlines()[0])
    assert list(event) == [k for k in EVENT if k in event]
    assert isinstance(event["context"]["user_id"], int)
    assert event["username"].startswith("u_")
    assert event["ip"] == "203.0.113.0"


def test_a_non_empty_output_directory_is_refused(logs, tmp_path, research, key):
    out = tmp_path / "package"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="not empty"):
        run([logs], out, research, key)
    with pytest.raises(UsageError, match="previous package"):
        run([logs], out, research, key, force=True)
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_force_replaces_a_previous_package(logs, tmp_path, research, key):
    out = tmp_path / "package"
    run([logs], out, research, key)
    (logs / "tracking.log").unlink()
    run([logs], out, research, key, force=True)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert [f["path"] for f in manifest["files"]] == ["tracking.log-20240301.gz"]
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST_NAME, "README.md", "codebook.json", "tracking.log-20240301.gz"])


def test_an_interrupted_run_leaves_no_manifest_and_an_empty_partial_marker(logs, tmp_path, research, key, monkeypatch):
    import anonymizer.io.inputs as inputs
    import anonymizer.io.pool as pipeline

    calls = {"n": 0}
    original = pipeline.process_batch

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(pipeline, "process_batch", failing)
    monkeypatch.setattr(inputs, "BATCH_BYTES", 256)  # several batches
    monkeypatch.setattr(inputs, "READ_BLOCK", 128)
    out = tmp_path / "package"
    with pytest.raises(KeyboardInterrupt):
        run([logs], out, research, key, jobs=1)
    assert calls["n"] == 2
    assert not (out / MANIFEST_NAME).exists()
    # Only the journal, from which a rerun resumes, and the empty .partial/: no file in progress is left.
    assert sorted(p.name for p in out.iterdir()) == [JOURNAL_NAME, ".partial"]
    assert list((out / ".partial").iterdir()) == []


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda whole: whole[: len(whole) // 2], "the gzip data ends early"),  # still being written
        (lambda whole: whole[:-8] + b"\0\0\0\0" + whole[-4:], "the gzip data fails its checksum"),
        (lambda whole: whole + b"\x1f\x8b\x08\x00junkjunkjunk", "the gzip data fails its checksum"),  # a bad second member
    ],
)
def test_a_damaged_gzip_input_stops_the_run_with_an_error_naming_the_file(tmp_path, research, key, damage, problem):
    logs = tmp_path / "logs"
    logs.mkdir()
    whole = gzip.compress(b"".join(orjson.dumps({**EVENT, "session": f"{i:032x}"}) + b"\n" for i in range(50)))
    (logs / "tracking.log-20240301.gz").write_bytes(damage(whole))
    with pytest.raises(InputError, match=rf"^tracking.log-20240301.gz: {problem}.*, within its first \d+ MB\. Repair"):
        run([logs], tmp_path / "package", research, key, jobs=1)
    assert not (tmp_path / "package" / MANIFEST_NAME).exists()


def test_output_is_byte_identical_for_one_and_two_workers(tmp_path, research, key, monkeypatch):
    import anonymizer.io.inputs as inputs

    monkeypatch.setattr(inputs, "BATCH_BYTES", 2048)  # many small batches, so both workers get some
    monkeypatch.setattr(inputs, "READ_BLOCK", 1024)
    logs = tmp_path / "logs"
    logs.mkdir()
    lines = [orjson.dumps({**EVENT, "session": f"{i:032x}", "event": {**EVENT["event"], "body": f"post {i}"}}) for i in range(400)]
    lines[17] = b"not json"
    write_log(logs / "big.log", lines)
    write_log(logs / "small.log.gz", lines[:5], compress=True)
    one = run([logs], tmp_path / "one", research, key, jobs=1)
    two = run([logs], tmp_path / "two", research, key, jobs=2)
    for entry in one.manifest["files"]:
        assert (tmp_path / "one" / entry["path"]).read_bytes() == (tmp_path / "two" / entry["path"]).read_bytes()
    assert one.manifest["files"] == two.manifest["files"]
    assert one.manifest["counts"] == two.manifest["counts"]
    assert one.manifest["rejections"] == two.manifest["rejections"] == [{"file": "big.log", "line": 18, "reason": "invalid_json"}]
    assert len(gzip.decompress((tmp_path / "two" / "big.log.gz").read_bytes()).splitlines()) == 399


def test_an_empty_input_gives_an_empty_but_valid_gzip_file(tmp_path, research, key):
    (tmp_path / "empty.log").write_bytes(b"")
    result = run([tmp_path / "empty.log"], tmp_path / "out", research, key)
    assert gzip.decompress((tmp_path / "out" / "empty.log.gz").read_bytes()) == b""
    assert result.manifest["inputs"][0]["lines"] == 0


def test_inputs_with_the_same_name_are_refused(tmp_path, research, key):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        write_log(tmp_path / sub / "tracking.log", [orjson.dumps(EVENT)])
    with pytest.raises(UsageError, match="would both be written"):
        run([tmp_path / "a" / "tracking.log", tmp_path / "b" / "tracking.log"], tmp_path / "out", research, key)


def test_strict_policy_truncates_time_and_drops_ip_and_text(logs, tmp_path, strict, key):
    out = tmp_path / "package"
    run([logs], out, strict, key)
    event = json.loads(read_package(out).splitlines()[0])
    assert event["time"] == "2024-03-01T10:00:00+00:00"
    assert "ip" not in event and "session" not in event
    assert "body" not in event["event"] and "title" not in event["event"]


# ---------------------------------------------------------------- the command line


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env={**os.environ, **(env or {})})


def test_keygen_writes_an_owner_only_key_and_prints_only_its_id(tmp_path):
    path = tmp_path / "new.key"
    result = cli("keygen", "--out", str(path))
    assert result.returncode == 0, result.stderr
    secret = path.read_text().strip()
    assert len(bytes.fromhex(secret)) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secret not in result.stdout + result.stderr
    assert result.stdout.strip().startswith("k1-")


def test_cli_run_takes_the_key_from_the_environment(logs, tmp_path, key_file, key):
    result = cli("run", str(logs), "--out", str(tmp_path / "p"), "--quiet", env={"ANONYMIZER_KEY_FILE": str(key_file)})
    assert result.returncode == 0, result.stderr
    assert read_manifest(tmp_path / "p")["key_id"] == load_key(key_file).key_id == key.key_id


def test_cli_run_without_a_key_fails_with_a_usage_error(logs, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "ANONYMIZER_KEY_FILE"}
    result = subprocess.run([*CLI, "run", str(logs), "--out", str(tmp_path / "p")], capture_output=True, text=True, env=env)
    assert result.returncode == 2
    assert "--key-file" in result.stderr


def test_cli_refuses_a_short_key_without_printing_it(logs, tmp_path):
    short = tmp_path / "short.key"
    short.write_text("abcdef0123456789\n")
    result = cli("run", str(logs), "--out", str(tmp_path / "p"), "--key-file", str(short))
    assert result.returncode == 2
    assert "16 hex digits, not 64" in result.stderr and "keygen --out FILE" in result.stderr
    assert "abcdef0123456789" not in result.stderr + result.stdout


def test_cli_names_a_builtin_policy_and_reports_a_bad_one(logs, tmp_path, key_file):
    ok = cli("run", str(logs), "--out", str(tmp_path / "p"), "--key-file", str(key_file), "--policy", "strict", "--quiet")
    assert ok.returncode == 0, ok.stderr
    assert json.loads((tmp_path / "p" / MANIFEST_NAME).read_text())["policy"]["name"] == "strict"
    bad = cli("run", str(logs), "--out", str(tmp_path / "q"), "--key-file", str(key_file), "--policy", "nonesuch")
    assert bad.returncode == 2
    assert "built-in" in bad.stderr


def test_cli_output_never_contains_raw_values(logs, tmp_path, key_file):
    result = cli("run", str(logs), "--out", str(tmp_path / "p"), "--key-file", str(key_file))
    assert result.returncode == 0, result.stderr
    for value in RAW_VALUES:
        assert value not in result.stdout + result.stderr


def test_an_unexpected_error_names_its_type_and_place_but_never_its_message(logs, tmp_path, key_file, monkeypatch, capsys):
    import anonymizer.cli as cli

    def boom(*args, **kwargs):
        raise ValueError("QXalice@example.com leaked into an exception")

    monkeypatch.setattr(cli, "run_package", boom)
    monkeypatch.setattr(sys, "argv", ["anonymizer", "run", str(logs), "--out", str(tmp_path / "p"), "--key-file", str(key_file)])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 70
    captured = capsys.readouterr()
    assert "ValueError" in captured.err and "test_run.py" in captured.err
    assert "QXalice" not in captured.err + captured.out
