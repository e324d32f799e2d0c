"""Running the adversarial set through ``anonymizer run`` and counting what survives, per class.

Each class is run on its own (so that a learned roster only knows what that input shows), under
a configuration: a policy, with or without the roster of the planted people. A package line is
traced back to its event by its time (every event has an hour of its own).
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from anonymizer import Key, load_policy, run
from anonymizer.core.roster import load_roster

from .generator import CLASSES, Generated, Plant, generate, index_of
from .people import write_roster
from .search import Searcher

KEY = Key(bytes(range(32)))
CONFIGS = ("research", "research+roster", "strict")


@dataclass
class Outcome:
    """What one class and one configuration gave: the plants, those that survive, and where."""

    cls: str
    config: str
    planted: int = 0
    events: int = 0
    written: int = 0
    survivors: list[Plant] = field(default_factory=list)
    package: Path | None = None
    raw: Path | None = None
    roster: Path | None = None
    lines_with_survivors: set[int] = field(default_factory=set)  # package line numbers, from 1

    def by_kind(self) -> Counter:
        return Counter(p.kind for p in self.survivors)


# Classes whose names the inputs themselves give away: a run learns them without a roster.
NAMES_LEARNED = {"learned_elsewhere"}


def judged(plants: list[Plant], config: str) -> list[Plant]:
    """The plants a configuration is held to: a full name is known only from a roster, or where
    the inputs give it (``NAMES_LEARNED``)."""
    if config.endswith("+roster"):
        return plants
    return [p for p in plants if p.kind != "name" or p.cls in NAMES_LEARNED]


def run_class(generated: Generated, cls: str, config: str, workdir: Path, searcher: Searcher | None = None) -> Outcome:
    """Run the events of CLS under CONFIG in WORKDIR and find the plants that survive."""
    lines, plants = generated.of_class(cls)
    workdir = Path(workdir) / f"{cls}-{config}"
    raw_dir = workdir / "raw"
    raw_dir.mkdir(parents=True, exist_ok=True)
    raw = raw_dir / "tracking.log"
    raw.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    roster_path = write_roster(workdir / "roster.csv") if config.endswith("+roster") else None
    roster = load_roster([roster_path])[0] if roster_path else None
    policy = load_policy(config.split("+")[0])
    package = workdir / "package"
    run([raw], package, policy, KEY, force=True, jobs=1, roster=roster)
    plants = judged(plants, config)
    outcome = Outcome(cls, config, planted=len(plants), events=len(lines), package=package, raw=raw, roster=roster_path)
    searcher = searcher or Searcher()
    by_event: dict[int, list[tuple[int, str]]] = {}
    for number, line in enumerate(package_lines(package), start=1):
        outcome.written += 1
        found = searcher.find(line)
        if not found:
            continue
        index = _event_index(line)
        by_event.setdefault(index, []).append((number, found))
    for plant in plants:
        for number, found in by_event.get(plant.index, ()):
            if (plant.person, plant.kind) in found:
                outcome.survivors.append(plant)
                outcome.lines_with_survivors.add(number)
                break
    return outcome


def package_lines(package: Path) -> list[str]:
    lines = []
    for path in sorted(package.glob("*.gz")):
        lines += gzip.decompress(path.read_bytes()).decode("utf-8").splitlines()
    return lines


def _event_index(line: str) -> int | None:
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict):
        return None
    time = event.get("time") or event.get("timestamp")
    return index_of(time) if isinstance(time, str) else None


def run_all(workdir: Path, seed: int = 9, classes=CLASSES, configs=CONFIGS, **scale) -> dict[tuple[str, str], Outcome]:
    """Every class under every configuration (SCALE: see ``generate``)."""
    generated = generate(seed, **scale)
    searcher = Searcher()
    return {(cls, config): run_class(generated, cls, config, workdir, searcher) for cls in classes for config in configs}
