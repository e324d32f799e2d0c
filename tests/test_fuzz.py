"""Short, seeded runs of the fuzz targets (``make fuzz`` runs long ones); see tests/fuzz/."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

atheris = pytest.importorskip("atheris", reason="atheris (the fuzz extra) has wheels for Linux x86-64 only")

sys.path.insert(0, str(Path(__file__).parent))
from fuzz import seeds  # noqa: E402

FUZZ = Path(__file__).parent / "fuzz"


def fuzz(target: str, corpus: list[bytes], tokens: list[bytes], tmp_path: Path, *options: str) -> tuple[str, dict]:
    """Run TARGET over CORPUS with a fixed seed; its libFuzzer output and its report."""
    corpus_dir = seeds.write_corpus(tmp_path / "corpus", corpus)
    dictionary = seeds.write_dictionary(tmp_path / "tokens.dict", tokens)
    report = tmp_path / "report.json"
    process = subprocess.run(
        [sys.executable, str(FUZZ / target), "-seed=1", f"-dict={dictionary}", f"-artifact_prefix={tmp_path}/", *options, str(corpus_dir)],
        capture_output=True, env={"FUZZ_REPORT": str(report), "PATH": "/usr/bin:/bin"}, timeout=1800,
    )
    output = process.stderr.decode(errors="replace")
    assert process.returncode == 0, output[-3000:]
    assert not list(tmp_path.glob("crash-*")) and not list(tmp_path.glob("timeout-*"))
    return output, json.loads(report.read_text()) if report.exists() else {}


def test_the_line_target_runs_thousands_of_inputs_without_a_crash(tmp_path):
    corpus = seeds.line_seeds()[::8]  # a tenth of the seeds: the bounded run spends its time mutating
    output, report = fuzz("fuzz_line.py", corpus, seeds.line_tokens(), tmp_path, "-runs=3000", "-max_len=4096")
    done = re.search(r"Done (\d+) runs", output)
    assert done and int(done.group(1)) >= 3000
    assert report["inputs"] >= 3000
    assert report["written"] and report["rejected"]  # both paths were reached


def test_the_policy_target_runs_without_a_crash(tmp_path):
    output, _ = fuzz("fuzz_policy.py", seeds.policy_seeds(), seeds.policy_tokens(), tmp_path, "-runs=300", "-max_len=2048")
    done = re.search(r"Done (\d+) runs", output)
    assert done and int(done.group(1)) >= 300


def test_the_line_target_fails_on_output_that_is_not_json(tmp_path):
    """The harness's checks can fail: an anonymizer that writes a broken line is a crash."""
    script = (
        "import sys; sys.argv = ['x']; sys.path.insert(0, %r)\n"
        "import fuzz_line\n"
        "real = fuzz_line.ANONYMIZER.anonymize_line\n"
        "fuzz_line.ANONYMIZER.anonymize_line = lambda *a: (real(*a), (fuzz_line.WRITTEN, b'{\"a\": \\n'))[1]\n"
        "fuzz_line.test_one_input(b'{}')\n"
    ) % str(FUZZ)
    process = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert process.returncode != 0
    assert b"JSONDecodeError" in process.stderr


def test_the_line_target_counts_a_planted_identifier_that_survives(tmp_path):
    script = (
        "import sys, json; sys.path.insert(0, %r)\n"
        "import fuzz_line\n"
        "real = fuzz_line.ANONYMIZER.anonymize_line\n"
        "fuzz_line.ANONYMIZER.anonymize_line = lambda *a: (real(*a), (fuzz_line.WRITTEN, b'{\"u\": \"/u/Zelda-Q\"}\\n'))[1]\n"
        "fuzz_line.test_one_input(b'{}')\n"
        "print(json.dumps(fuzz_line.report['classes']))\n"
    ) % str(FUZZ)
    process = subprocess.run([sys.executable, "-c", script], capture_output=True, check=True)
    assert json.loads(process.stdout.decode().splitlines()[-1]) == {"case@url-or-path": 1}
