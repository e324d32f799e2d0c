"""The fuzzer's planted seeds leave nothing: every identifier of the cast that ``planted_lines``
puts where the research policy must clean it is gone from the output, as the line target's own
oracle reads it (see tests/fuzz/)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parent / "fuzz"


def test_no_planted_seed_leaves_a_finding():
    pytest.importorskip("atheris", reason="the line target's oracle runs under atheris (the test extra, Linux x86-64)")
    script = (
        "import sys, json; sys.argv = ['x']; sys.path[:0] = [%r, %r]\n"
        "import fuzz_line\n"
        "from fuzz.seeds import planted_lines\n"
        "lines = planted_lines()\n"
        "for line in lines:\n"
        "    fuzz_line.test_one_input(line)\n"
        "print(json.dumps([len(lines), fuzz_line.report['written'], fuzz_line.report['classes']]))\n"
    ) % (str(FUZZ), str(FUZZ.parent))
    process = subprocess.run([sys.executable, "-c", script], capture_output=True, check=True)
    planted, written, classes = json.loads(process.stdout.decode().splitlines()[-1])
    assert written >= planted * 0.9  # the planted events are written, not merely dropped
    assert classes == {}
