"""Print the identifiers of the adversarial set that survive ``anonymizer run``, per class and policy.

Usage: ``python -m tests.adversarial.report [--seed S] [--out DIR] [--detail]``. With ``--detail``,
the survivors of each class are also counted by kind and by disguise. Exit code 1 when any
identifier survives.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

from .generator import CLASSES
from .harness import CONFIGS, run_all


def table(outcomes) -> str:
    header = f"{'class':16s}" + "".join(f"{config:>20s}" for config in CONFIGS)
    rows = [header, "-" * len(header)]
    totals = Counter()
    planted = Counter()
    for cls in CLASSES:
        cells = []
        for config in CONFIGS:
            outcome = outcomes[(cls, config)]
            totals[config] += len(outcome.survivors)
            planted[config] += outcome.planted
            cells.append(f"{len(outcome.survivors):>8d} / {outcome.planted:<9d}")
        rows.append(f"{cls:16s}" + "".join(f"{cell:>20s}" for cell in cells))
    rows.append("-" * len(header))
    rows.append(f"{'total':16s}" + "".join(f"{f'{totals[c]:>8d} / {planted[c]:<9d}':>20s}" for c in CONFIGS))
    return "\n".join(rows)


def detail(outcomes) -> str:
    lines = []
    for (cls, config), outcome in outcomes.items():
        if not outcome.survivors:
            continue
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(outcome.by_kind().items()))
        how = Counter(f"{p.kind}:{p.disguise}" for p in outcome.survivors)
        where = Counter(p.where.split(".")[0] if cls == "free_text" else p.where for p in outcome.survivors)
        lines.append(f"{cls} / {config}: {kinds}")
        lines.append("    by form: " + ", ".join(f"{k} {n}" for k, n in how.most_common(12)))
        lines.append("    by field: " + ", ".join(f"{k} {n}" for k, n in where.most_common(12)))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--out", type=Path, default=None, help="keep the packages in DIR (default: a temporary directory)")
    parser.add_argument("--detail", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        outcomes = run_all(args.out or Path(scratch), seed=args.seed)
    print("survivors / planted identifiers (names are judged only with a roster)")
    print(table(outcomes))
    if args.detail:
        print()
        print(detail(outcomes))
    return 1 if any(o.survivors for o in outcomes.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
