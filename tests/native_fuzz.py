"""The long differential mode (``make fuzz-diff``): N generated events through both engines.

Events are the fixture families' and the adversarial generator's, mutated at random (values
replaced by strings, numbers, floats, nested values, identifiers; keys added; payloads written as
JSON strings, with spaces or with ``\\u`` escapes; lines broken), in batches, under both built-in
policies, with and without a roster. Every batch must give the same bytes, outcomes and ``Stats``;
the first difference stops the run and is written to ``build/fuzz-diff/difference-seed<S>.jsonl``.

    python tests/native_fuzz.py --events 1000000 [--seed 1] [--batch 500]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from anonymizer.core import native  # noqa: E402
from anonymizer.core.engine import Anonymizer  # noqa: E402
from anonymizer.core.keys import Key  # noqa: E402
from anonymizer.core.policy import load_policy  # noqa: E402
from anonymizer.core.roster import load_roster  # noqa: E402
from tests.adversarial.generator import base_events, generate  # noqa: E402

STRINGS = ["", " ", "alice", "Bob.Smith", "bob@example.com", "10.0.0.7", "2001:db8::1", "Mozilla/5.0 (Windows NT 10.0)", "course-v1:edX+DemoX+T1",
           "block-v1:edX+DemoX+T1+type@problem+block@abc123", "https://courses.example.org/courses/course-v1:a+b+c/jump_to/x?user=alice", "a=1&b=alice&b=2",
           "{\"a\": 1}", " [1, {\"b\": \"alice\"}] ", "{not json", "call me at +1 650 253 0000", "caf\u00e9 \u2028 \U0001F600", "\\u00e9", "0", "-0", "1e5", "42",
           "2024-02-03T04:05:06.789+00:00", "2024-02-03 04:05:06", "true", "null", "x" * 70, "input_2_1", "0123456789abcdef0123"]


def leaf(rng: random.Random):
    pick = rng.random()
    if pick < 0.45:
        return rng.choice(STRINGS)
    if pick < 0.6:
        return rng.choice([0, 1, -1, 42, 2**53, 2**63 - 1, -(2**63), 2**64 - 1, 12345678901])
    if pick < 0.72:
        return rng.choice([0.0, -0.0, 1.5, 1e16, 1e-7, 0.1, 123.456, 2.5e-5, 1e300, rng.uniform(-1e6, 1e6), rng.random() * 10 ** rng.randint(-12, 22)])
    if pick < 0.8:
        return rng.choice([None, True, False])
    if pick < 0.9:
        return "".join(rng.choice("ab \u00e9\u4e2d\\\"/\n\t\x01@.:+=&{}[]0123") for _ in range(rng.randint(0, 12)))
    return {rng.choice(["a", "user_id", "username", "answer", "x.y", "input_1_2_1"]): leaf(rng)} if rng.random() < 0.5 else [leaf(rng), leaf(rng)]


def mutate(value, rng: random.Random, depth: int = 0):
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if rng.random() < 0.05:
                continue
            out[key] = leaf(rng) if rng.random() < 0.12 else mutate(item, rng, depth + 1)
        if rng.random() < 0.15:
            out[rng.choice(["extra", "username", "user_id", "ip", "agent", "email", "input_3_1", "zz" * 10])] = leaf(rng)
        return out
    if isinstance(value, list):
        return [mutate(item, rng, depth + 1) for item in value if rng.random() > 0.05]
    return leaf(rng) if rng.random() < 0.1 else value


def encode(event: dict, rng: random.Random) -> bytes:
    if "event" in event and isinstance(event["event"], (dict, list)) and rng.random() < 0.3:
        event["event"] = orjson.dumps(event["event"]).decode() if rng.random() < 0.7 else json.dumps(event["event"])
    how = rng.random()
    if how < 0.7:
        line = orjson.dumps(event)
    elif how < 0.85:
        line = json.dumps(event).encode()  # spaces, \u escapes
    else:
        line = json.dumps(event, ensure_ascii=False, indent=None, separators=(", ", " : ")).encode()
    if rng.random() < 0.01:  # a broken line now and then
        line = rng.choice([line[: len(line) // 2], b"   " + line, b"2024-01-01 INFO tracking - " + line, line + b"\r", line.replace(b'"', b"'", 1)])
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args(argv)
    if not native.available():
        print("fuzz-diff: the native engine is not built (make venv builds it when cargo is on PATH)", file=sys.stderr)
        return 2
    rng = random.Random(args.seed)
    seeds = base_events() + [orjson.loads(line) for line in generate(args.seed, per_disguise=2).lines]
    key = Key(bytes(rng.randrange(256) for _ in range(32)))
    roster, _ = load_roster([ROOT / "examples" / "roster.csv"])
    pairs = []
    for policy in ("research", "strict"):
        for people in (None, roster):
            loaded = load_policy(policy)
            pairs.append((policy, people is not None, Anonymizer(loaded, key, people), native.NativeAnonymizer(loaded, key, people)))
    done = 0
    started = time.monotonic()
    while done < args.events:
        size = min(args.batch, args.events - done)
        data = b"".join(encode(mutate(rng.choice(seeds), rng), rng) + b"\n" for _ in range(size))
        policy, with_roster, python, fast = pairs[(done // args.batch) % len(pairs)]
        expected = python.anonymize_batch(data, done + 1, name="fuzz")
        got = fast.anonymize_batch(data, done + 1, name="fuzz")
        if got.lines != expected.lines or got.stats != expected.stats or list(got.stats.rejections) != list(expected.stats.rejections):
            out = ROOT / "build" / "fuzz-diff"
            out.mkdir(parents=True, exist_ok=True)
            found = out / f"difference-seed{args.seed}.jsonl"
            found.write_bytes(data)
            print(f"fuzz-diff: the engines differ on a batch of {size} events ({policy}, roster: {with_roster}); the batch is in {found}", file=sys.stderr)
            return 1
        done += size
        if done % 100_000 < args.batch:
            print(f"fuzz-diff: {done:,} events, no difference ({time.monotonic() - started:.0f} s)", flush=True)
    print(f"fuzz-diff: {done:,} generated events through both engines, no difference")
    return 0


if __name__ == "__main__":
    sys.exit(main())
