"""Ordered splits: many readers of one file make exactly the batches one reader makes."""

from __future__ import annotations

import random

import pytest

from anonymizer import load_policy
from anonymizer.io import inputs, splits
from anonymizer.io.inputs import Batch, FileEnd, batches
from anonymizer.io.learn import Learner
from anonymizer.io.spark import GroupRecorder, replay
from anonymizer.io.splits import count_split, plan_splits, split_batches

BLOCK = 64  # a tiny read block, so that a small file has many splits and long lines span several


@pytest.fixture()
def tiny_blocks(monkeypatch):
    monkeypatch.setattr(inputs, "READ_BLOCK", BLOCK)
    monkeypatch.setattr(inputs, "BATCH_BYTES", BLOCK)
    monkeypatch.setattr(splits, "READ_BLOCK", BLOCK)


def _random_file(rng: random.Random) -> bytes:
    lines = []
    for _ in range(rng.randrange(0, 60)):
        length = rng.choice([0, 1, 5, 30, 63, 64, 65, 130, 400])
        lines.append(bytes(rng.choice(b"abc{}\" ") for _ in range(length)))
    data = b"\n".join(lines)
    if lines and rng.random() < 0.7:
        data += b"\n"
    return data


def _one_reader(path) -> tuple[list[tuple[int, bytes]], FileEnd]:
    made = list(batches(0, "f", path))
    return [(b.first_line, b.data) for b in made if isinstance(b, Batch)], made[-1]


def _many_readers(path, split_bytes: int) -> tuple[list[tuple[int, bytes]], int]:
    planned = plan_splits([(path, "f")], split_bytes)
    counts = [count_split(s) for s in planned]
    found, line = [], 1
    for split, count in zip(planned, counts):
        found.extend((b.first_line, b.data) for b in split_batches(split, line) if isinstance(b, Batch))
        line += count.newlines
    lines = line - 1 + (1 if counts[-1].last_without_newline else 0)
    return found, lines


@pytest.mark.parametrize("seed", range(40))
def test_splits_make_the_batches_one_reader_makes(tmp_path, tiny_blocks, seed):
    rng = random.Random(seed)
    path = tmp_path / "f.log"
    path.write_bytes(_random_file(rng))
    expected, end = _one_reader(path)
    for blocks_per_split in (1, 2, 3):
        found, lines = _many_readers(path, blocks_per_split * BLOCK)
        assert found == expected, (seed, blocks_per_split)
        assert lines == end.lines


def test_a_large_file_is_cut_into_several_splits_and_a_gzip_file_is_one(tmp_path, tiny_blocks):
    plain = tmp_path / "a.log"
    plain.write_bytes(b"x" * 10 * BLOCK)
    packed = tmp_path / "b.log.gz"
    import gzip

    packed.write_bytes(gzip.compress(b"y\n" * 10 * BLOCK))
    planned = plan_splits([(plain, "a.log"), (packed, "b.log.gz")], 2 * BLOCK)
    assert [(s.file_index, s.start, s.end) for s in planned] == [
        (0, 0, 2 * BLOCK), (0, 2 * BLOCK, 4 * BLOCK), (0, 4 * BLOCK, 6 * BLOCK), (0, 6 * BLOCK, 8 * BLOCK), (0, 8 * BLOCK, None),
        (1, 0, None),
    ]
    assert planned[-1].gzipped


def test_the_recorded_groups_replayed_in_order_learn_what_one_pass_learns(tmp_path, tiny_blocks):
    policy = load_policy("research")
    source = tmp_path / "t.log"
    from pathlib import Path

    source.write_bytes((Path(__file__).parents[1] / "examples" / "tracking.log").read_bytes())
    one = Learner(policy)
    one.add_lines(inputs.open_lines(source))
    many = Learner(policy)
    for split in plan_splits([(source, "t.log")], 3 * BLOCK):
        recorder = GroupRecorder(policy)
        count_split(split, [recorder])
        replay(many, recorder.groups)
    assert many.roster().people == one.roster().people
    assert many.summary() == one.summary()
    assert one.summary()["usernames"] > 0  # the sample names people: the comparison is not empty
