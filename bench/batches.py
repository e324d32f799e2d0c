"""CPU time of the engines' batch function alone, in process, against orjson on the same batches.

No file is read or written and nothing is compressed: the bench log (``bench/inputs.py``) is cut
into batches of about 1 MB of whole lines, and each pass times, with ``time.process_time`` (CPU
time of this process, which other work on a shared machine disturbs less than wall time):

* the baseline: orjson ``loads`` + ``dumps`` of every line;
* ``anonymize_batch`` of the Python engine and of the native engine (when installed), research
  policy, and the same with ``bench/keep-everything.yaml`` (the floor) and with the roster.

Each figure is the best of ``--repeats`` passes, after one pass that warms the engines' caches
(so it is the steady state of a long run, where most values have been seen before). Usage:
``python bench/batches.py [--events N] [--repeats R] [--engines native,python] [--policies research,floor,roster]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inputs import generate  # noqa: E402  (a sibling module of this script)

ROOT = Path(__file__).resolve().parents[1]
BATCH_BYTES = 1 << 20


def batches(data: bytes) -> list[bytes]:
    """DATA cut into batches of whole lines of about BATCH_BYTES each."""
    out, start = [], 0
    while start < len(data):
        end = data.find(b"\n", start + BATCH_BYTES)
        end = len(data) if end < 0 else end + 1
        out.append(data[start:end])
        start = end
    return out


def best(work, repeats: int) -> float:
    """The least CPU seconds of REPEATS passes of WORK (after one pass that warms it)."""
    work()
    found = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        work()
        found = min(found, time.process_time() - started)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--roster-size", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--engines", default="native,python")
    parser.add_argument("--policies", default="research,floor,roster")
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "out" / "work")
    args = parser.parse_args()

    from anonymizer.core import native
    from anonymizer.core.keys import Key
    from anonymizer.core.policy import load_policy
    from anonymizer.core.roster import load_roster

    args.work.mkdir(parents=True, exist_ok=True)
    log, roster_path = generate(args.events, args.seed, args.roster_size, args.work)
    data = log.read_bytes()
    cut = batches(data)
    lines = data.splitlines()

    def baseline() -> None:
        loads, dumps = orjson.loads, orjson.dumps
        for line in lines:
            try:
                dumps(loads(line))
            except orjson.JSONDecodeError:
                pass

    base = best(baseline, args.repeats)
    print(f"{len(lines):,} lines, {len(data) / 1e6:.1f} MB in {len(cut)} batches; baseline {base:.3f} CPU s")
    key = Key(bytes(range(32)))
    roster, _ = load_roster([roster_path])
    cases = [("research", load_policy("research"), None), ("floor", load_policy(str(ROOT / "bench" / "keep-everything.yaml")), None), ("roster", load_policy("research"), roster)]
    print(f"{'engine':<10}{'policy':<10}{'CPU s':>8}{'ratio':>8}")
    for engine in args.engines.split(","):
        if engine == "native" and not native.available():
            print("native: not installed, skipped")
            continue
        for label, policy, people in cases:
            if label not in args.policies.split(","):
                continue
            anonymizer = native.make_anonymizer(policy, key, people, engine=engine)

            def run(anonymizer=anonymizer) -> None:
                for batch in cut:
                    anonymizer.anonymize_batch(batch)

            seconds = best(run, args.repeats)
            print(f"{engine:<10}{label:<10}{seconds:>8.3f}{base / seconds:>8.3f}")


if __name__ == "__main__":
    main()
