#!/usr/bin/env python3
"""The verification benchmark: how fast ``anonymizer verify`` reads a package, on one core.

It generates a seeded log and a roster of R people (``bench/generate.py``), anonymizes the log
with the research policy and the roster, then runs ``anonymizer verify`` as a whole process in
two ways:

* **release**: ``--against`` the raw log and ``--roster`` the roster (by default 100,000 people,
  so some 300,000 identifiers plus those harvested from the log), the way a release pipeline
  runs it;
* **detectors**: no inputs and no roster, so that the pattern detectors (with phone numbers) do
  all the work.

The speed is the decompressed size of the package divided by the seconds of the scan (reading,
hashing, decompressing and searching every file); the seconds spent harvesting identifiers and
building the automaton once are reported beside it. Verification runs on one core.

Usage: ``python bench/verify_bench.py [--events N] [--seed S] [--roster-size R] [--out DIR]``;
``measure(workdir)`` returns the same figures to a harness.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inputs import generate  # noqa: E402  (a sibling module of this script)

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
TARGET_MB_PER_S = 300.0  # of the scan, per core, with the native engine's line filter


def _cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "anonymizer.cli", *args], capture_output=True, text=True, check=check)


def _verify(package: Path, report: Path, *extra: str) -> dict:
    started = time.perf_counter()
    result = _cli("verify", str(package), "--json", str(report), *extra, check=False)
    wall = time.perf_counter() - started
    if result.returncode not in (0, 1):
        raise RuntimeError(f"verify failed with exit code {result.returncode}: {result.stderr.strip()}")
    data = json.loads(report.read_text())
    megabytes = data["scanned"]["bytes"] / 1e6
    return {
        "mb": round(megabytes, 1),
        "identifiers": data["scanned"]["identifiers"],
        "scan_seconds": data["seconds"]["scan"],
        "setup_seconds": round(data["seconds"]["harvest"] + data["seconds"]["build"], 2),
        "wall_seconds": round(wall, 2),
        "mb_per_s": round(megabytes / data["seconds"]["scan"], 1) if data["seconds"]["scan"] else None,
        "scan_cpu_seconds": data["seconds"].get("scan_cpu"),
        "mb_per_cpu_s": round(megabytes / data["seconds"]["scan_cpu"], 1) if data["seconds"].get("scan_cpu") else None,
        "engine": data["checks"].get("engine"),
        "findings": data["findings_total"],
        "exit": result.returncode,
    }


def measure(workdir: Path, events: int = 300_000, seed: int = 7, roster_size: int = 100_000) -> dict:
    """Build the package in WORKDIR (reusing generated input) and time both kinds of verification."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    log, roster = generate(events, seed, roster_size, workdir)
    key = workdir / "verify-bench.key"
    if not key.exists():
        _cli("keygen", "--out", str(key))
    package = workdir / f"verify-package-{events}-{seed}-{roster_size}"
    if not (package / "manifest.json").exists():
        _cli("run", str(log), "--out", str(package), "--key-file", str(key), "--roster", str(roster), "--force", "--quiet")
    figures: dict = {"verify_target_mb_per_s": TARGET_MB_PER_S}
    # The native engine's line filter where it is installed (auto), and the Python scan beside it.
    for suffix, engine in (("", "auto"), ("_python", "python")):
        release = _verify(package, workdir / f"verify-release{suffix}.json", "--against", str(log), "--roster", str(roster), "--engine", engine)
        detectors = _verify(package, workdir / f"verify-detectors{suffix}.json", "--engine", engine)
        figures[f"verify_mb_per_s{suffix}"] = release["mb_per_s"]
        figures[f"verify_release{suffix}"] = release
        figures[f"verify_detectors_mb_per_s{suffix}"] = detectors["mb_per_s"]
        figures[f"verify_detectors{suffix}"] = detectors
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--roster-size", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=BENCH / "out")
    args = parser.parse_args(argv)
    figures = measure(args.out, args.events, args.seed, args.roster_size)
    for label in ("verify_release", "verify_detectors", "verify_release_python", "verify_detectors_python"):
        row = figures[label]
        print(
            f"{label:24s} {row['engine']:7s} {row['mb']:8.1f} MB  {row['identifiers']:7d} identifiers  scan {row['scan_seconds']:6.2f} s "
            f"= {row['mb_per_s']:6.1f} MB/s ({row['mb_per_cpu_s']} MB per CPU s)  (setup {row['setup_seconds']:.1f} s, "
            f"whole process {row['wall_seconds']:.1f} s, {row['findings']} findings)"
        )
    verdict = "meets" if (figures["verify_mb_per_s"] or 0) >= TARGET_MB_PER_S else "MISSES"
    print(f"release verification {verdict} the target of {TARGET_MB_PER_S:.0f} MB/s per core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
