"""Resuming an interrupted run from its journal: same package as an uninterrupted run, or a refusal."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest

import anonymizer.io.pool as pipeline
import anonymizer.core.stats as stats_module
from anonymizer import Key, UsageError, run
from anonymizer.io.journal import JOURNAL_NAME
from anonymizer.package.manifest import MANIFEST_NAME
from anonymizer.core.roster import Person, Roster

FIXTURES = Path(__file__).parent / "fixtures"


def package_files(directory: Path) -> dict[str, bytes]:
    """Every file of a package by relative path, the manifest without its ``created``."""
    files = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            if path.name == MANIFEST_NAME:
                manifest = orjson.loads(data)
                manifest.pop("created")
                data = orjson.dumps(manifest, option=orjson.OPT_SORT_KEYS)
            files[path.relative_to(directory).as_posix()] = data
    return files


@pytest.fixture()
def logs(tmp_path) -> Path:
    return make_logs(tmp_path / "logs")


def make_logs(directory: Path) -> Path:
    """Five inputs from the fixtures (one gzip, one in a subdirectory), each with rejected lines."""
    (directory / "sub").mkdir(parents=True)
    families = sorted((FIXTURES / "families").glob("*.jsonl"))
    for number in range(5):
        lines = b"".join(path.read_bytes() for path in families[number::5]) + b"not json\n\n[1]\n"
        name = f"tracking-{number}.log"
        if number == 1:
            (directory / (name + ".gz")).write_bytes(gzip.compress(lines, mtime=0))
        elif number == 3:
            (directory / "sub" / name).write_bytes(lines)
        else:
            (directory / name).write_bytes(lines)
    return directory


def interrupt_after(monkeypatch, finished_files: int) -> None:
    """Make the next run raise KeyboardInterrupt once FINISHED_FILES files are done."""
    original = pipeline.OutputFile.close
    count = {"n": 0}

    def close(self):
        if count["n"] == finished_files:
            raise KeyboardInterrupt
        count["n"] += 1
        original(self)

    monkeypatch.setattr(pipeline.OutputFile, "close", close)


@pytest.mark.parametrize("finished", [0, 1, 3, 4])
def test_a_run_interrupted_after_some_files_resumes_to_the_same_package(logs, tmp_path, research, key, monkeypatch, finished):
    reference = tmp_path / "reference"
    run([logs], reference, research, key, jobs=1)
    out = tmp_path / "package"
    with monkeypatch.context() as patch:
        interrupt_after(patch, finished)
        with pytest.raises(KeyboardInterrupt):
            run([logs], out, research, key, jobs=1)
    assert not (out / MANIFEST_NAME).exists()
    assert (out / JOURNAL_NAME).exists()
    result = run([logs], out, research, key, jobs=1)
    assert result.resumed == finished
    assert package_files(out) == package_files(reference)
    assert not (out / JOURNAL_NAME).exists()


def test_resumed_rejection_lists_match_past_the_listing_limit(logs, tmp_path, research, key, monkeypatch):
    monkeypatch.setattr(stats_module, "MAX_REJECTIONS_LISTED", 4)  # the files reject 3 or more lines each
    reference = tmp_path / "reference"
    run([logs], reference, research, key, jobs=1)
    manifest = orjson.loads((reference / MANIFEST_NAME).read_bytes())
    assert len(manifest["rejections"]) == 4 and manifest["rejections_not_listed"] > 10
    out = tmp_path / "package"
    with monkeypatch.context() as patch:
        interrupt_after(patch, 2)
        with pytest.raises(KeyboardInterrupt):
            run([logs], out, research, key, jobs=1)
    run([logs], out, research, key, jobs=1)
    assert package_files(out) == package_files(reference)


def interrupted(logs, out, policy, key, monkeypatch, finished=2, **kwargs) -> None:
    with monkeypatch.context() as patch:
        interrupt_after(patch, finished)
        with pytest.raises(KeyboardInterrupt):
            run([logs], out, policy, key, jobs=1, **kwargs)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ("key", "another key"),
        ("policy", "another policy"),
        ("roster", "no roster"),
        ("inputs", "other input files"),
    ],
)
def test_an_unfinished_run_of_something_else_is_refused_with_a_pointer_to_force(logs, tmp_path, research, strict, key, monkeypatch, change, named):
    out = tmp_path / "package"
    interrupted(logs, out, research, key, monkeypatch)
    other = {"key": key, "policy": research, "roster": None, "inputs": [logs]}
    other[change] = {
        "key": Key(bytes(range(1, 33))),
        "policy": strict,
        "roster": Roster([Person("1234567", ("someone_x",))]),
        "inputs": [logs / "tracking-0.log", logs / "tracking-2.log"],
    }[change]
    with pytest.raises(UsageError) as caught:
        run(other["inputs"], out, other["policy"], other["key"], jobs=1, roster=other["roster"])
    assert named in str(caught.value) and "--force" in str(caught.value)
    # --force discards the unfinished run and makes the new package from scratch.
    result = run(other["inputs"], out, other["policy"], other["key"], jobs=1, roster=other["roster"], force=True)
    assert result.resumed == 0
    expected = tmp_path / "expected"
    run(other["inputs"], expected, other["policy"], other["key"], jobs=1, roster=other["roster"])
    assert package_files(out) == package_files(expected)


def test_a_changed_input_or_a_damaged_output_is_made_again(logs, tmp_path, research, key, monkeypatch):
    out = tmp_path / "package"
    interrupted(logs, out, research, key, monkeypatch, finished=3)
    with (logs / "tracking-0.log").open("ab") as fh:
        fh.write(b"[2]\n")  # the input grew since
    damaged = out / "tracking-1.log.gz"
    whole = damaged.read_bytes()
    damaged.write_bytes(whole[:-1] + bytes([whole[-1] ^ 1]))
    result = run([logs], out, research, key, jobs=1)
    assert result.resumed == 1  # sub/tracking-3.log: the only one still as recorded
    reference = tmp_path / "reference"
    run([logs], reference, research, key, jobs=1)
    assert package_files(out) == package_files(reference)


def test_a_file_that_is_no_part_of_the_run_stops_the_resumption(logs, tmp_path, research, key, monkeypatch):
    out = tmp_path / "package"
    interrupted(logs, out, research, key, monkeypatch)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="no part of it"):
        run([logs], out, research, key, jobs=1)
    assert (out / "notes.txt").read_text() == "mine"
    # --force clears the run's own files but never one it did not write.
    with pytest.raises(UsageError):
        run([logs], out, research, key, jobs=1, force=True)
    assert (out / "notes.txt").read_text() == "mine"


def test_force_clears_an_unfinished_run_with_its_unjournaled_output(logs, tmp_path, research, key, monkeypatch):
    out = tmp_path / "package"
    interrupted(logs, out, research, key, monkeypatch)
    (out / ".partial").mkdir(exist_ok=True)
    (out / ".partial" / "000002.gz").write_bytes(b"\x1f\x8b half")  # as a kill -9 leaves it
    (out / "tracking-2.log.gz").write_bytes(b"moved into place, not journaled yet")
    result = run([logs], out, research, key, jobs=1, force=True)
    assert result.resumed == 0
    reference = tmp_path / "reference"
    run([logs], reference, research, key, jobs=1)
    assert package_files(out) == package_files(reference)


def test_a_torn_last_journal_line_is_ignored_and_a_damaged_journal_refused(logs, tmp_path, research, key, monkeypatch):
    out = tmp_path / "package"
    interrupted(logs, out, research, key, monkeypatch, finished=3)
    journal = out / JOURNAL_NAME
    whole = journal.read_bytes()
    journal.write_bytes(whole[: whole.rindex(b"\n", 0, len(whole) - 1) + 20])  # the third entry cut short
    result = run([logs], out, research, key, jobs=1)
    assert result.resumed == 2
    reference = tmp_path / "reference"
    run([logs], reference, research, key, jobs=1)
    assert package_files(out) == package_files(reference)

    again = tmp_path / "again"
    interrupted(logs, again, research, key, monkeypatch)
    (again / JOURNAL_NAME).write_bytes(b'{"journal": 1}\n{not json\n{"x": 1}\n')
    with pytest.raises(UsageError, match="damaged.*--force"):
        run([logs], again, research, key, jobs=1)


def test_the_journal_holds_no_raw_value(tmp_path, research, key, monkeypatch):
    logs = tmp_path / "logs"
    logs.mkdir()
    raw = (FIXTURES / "families" / "forum.jsonl").read_bytes()
    for number in range(3):
        (logs / f"t{number}.log").write_bytes(raw + b'{"username": "QXraw_value_77", "event\n')
    out = tmp_path / "package"
    interrupted(logs, out, research, key, monkeypatch)
    journal = (out / JOURNAL_NAME).read_text()
    assert journal.count("\n") == 3  # the header and two finished files
    for value in ("QXraw_value_77", "siobhan_obk", "192.0.2.77", key.secret.hex()):
        assert value not in journal


def test_cli_says_how_many_files_it_resumed(logs, tmp_path, research, key, key_file, monkeypatch):
    from typer.testing import CliRunner

    from anonymizer.cli import app

    out = tmp_path / "package"
    interrupted(logs, out, research, key, monkeypatch, finished=2)
    result = CliRunner().invoke(app, ["run", str(logs), "--out", str(out), "--key-file", str(key_file), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    assert "resumed an interrupted run: kept 2 of 5 finished file(s)" in result.output
