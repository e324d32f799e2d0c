#!/usr/bin/env python3
"""What strict JSON parsing (repeated keys, depth) costs per line, on generated events.

    python bench/strict_json.py [--events 20000] [--repeat 5]

Generates events with ``bench/generate.py`` and times, interleaved and best of REPEAT, on the
same lines: ``orjson.loads`` against ``anonymizer.strictjson.loads``, and a whole
``anonymize_line`` with strict parsing against the same with plain ``orjson.loads`` swapped in.
Figures are ratios measured in one run, so a busy machine shifts them less than absolute times.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from anonymizer.core import compiler, strictjson
from anonymizer.core import lines as line_reader
from anonymizer.core.engine import Anonymizer
from anonymizer.core.keys import generate_key
from anonymizer.core.policy import load_policy


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "events.log"
        subprocess.run([sys.executable, str(Path(__file__).with_name("generate.py")), "--events", str(args.events), "--seed", "7", "--out", str(log)],
                       check=True, capture_output=True)
        lines = [line.rstrip(b"\n") for line in log.open("rb")]
    anonymizer = Anonymizer(load_policy("research"), generate_key())
    strict = strictjson.loads

    def parse(loads):
        def go():
            for line in lines:
                try:
                    loads(line)
                except (orjson.JSONDecodeError, strictjson.StrictJSONError):
                    pass
        return go

    def whole(loads):
        def go():
            line_reader.strict_loads = compiler.strict_loads = loads
            anonymizer.anonymize_batch(lines, name="bench")
        return go

    timings = {"loads": [], "strict": [], "plain run": [], "strict run": []}
    for _ in range(args.repeat):  # interleaved, so that load on the machine hits both sides alike
        timings["loads"].append(best(parse(orjson.loads), 1))
        timings["strict"].append(best(parse(strict), 1))
        timings["plain run"].append(best(whole(orjson.loads), 1))
        timings["strict run"].append(best(whole(strict), 1))
    line_reader.strict_loads = compiler.strict_loads = strict
    per_line = {name: min(values) / len(lines) * 1e6 for name, values in timings.items()}
    print(f"{len(lines)} lines, {sum(map(len, lines)) / len(lines):.0f} bytes each on average")
    print(f"parse: orjson.loads {per_line['loads']:.2f} us, strict loads {per_line['strict']:.2f} us "
          f"(+{per_line['strict'] - per_line['loads']:.2f} us, x{per_line['strict'] / per_line['loads']:.2f})")
    print(f"anonymize_line: plain {per_line['plain run']:.1f} us, strict {per_line['strict run']:.1f} us "
          f"(+{per_line['strict run'] - per_line['plain run']:.1f} us, x{per_line['strict run'] / per_line['plain run']:.3f})")


if __name__ == "__main__":
    main()
