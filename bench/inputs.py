"""The benchmark inputs: a generated log and its roster, made once per (events, seed, roster size)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def generate(events: int, seed: int, roster_size: int, workdir: Path) -> tuple[Path, Path]:
    """The log and roster for these arguments, generated with bench/generate.py unless present."""
    log = workdir / f"tracking-{events}-{seed}.log"
    roster = workdir / f"roster-{roster_size}-{seed}.csv"
    if not (log.exists() and roster.exists()):
        subprocess.run(
            [sys.executable, str(BENCH / "generate.py"), "--events", str(events), "--seed", str(seed),
             "--out", str(log), "--roster-out", str(roster), "--roster-size", str(roster_size)],
            check=True,
        )
    return log, roster
