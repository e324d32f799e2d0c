"""The native engine's line filter for ``verify``: the scan reads only the lines it flags, and
reports exactly what it reports reading every line.

Each case scans the same chunks twice, with ``engine="native"`` (the filter) and
``engine="python"`` (every line read), and compares the findings (file, line, path, kind, form,
class), their total and their counts by kind and class. The chunks mix lines full of disguised
identifiers (the adversarial set) with clean package lines, so that the filter both flags and
skips.
"""

from __future__ import annotations

import gzip
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anonymizer import run
from anonymizer.core.keys import Key
from anonymizer.core.policy import load_policy
from anonymizer.verify.harvest import Identifiers, harvest_inputs
from anonymizer.verify.package import identifier_fields
from anonymizer.verify.scan import Scanner, _LineFilter

from tests.adversarial.disguises import disguises_for
from tests.adversarial.generator import generate
from tests.adversarial.people import PEOPLE

pytestmark = pytest.mark.skipif(_LineFilter is None, reason="the native engine's extension is not installed (needs cargo)")


@pytest.fixture(autouse=True)
def _flagged_lines_only(monkeypatch):
    """Read the flagged lines only, however many there are (a chunk most of whose lines are
    flagged is otherwise read whole, which would hide a line the filter missed)."""
    monkeypatch.setattr("anonymizer.verify.scan.WHOLE_CHUNK_SHARE", 2.0)


def _outcome(scanner: Scanner) -> tuple:
    findings = [(f.file, f.line, f.path, f.kind, f.source, f.form, f.origin, f.leak_class) for f in scanner.findings]
    return findings, scanner.total, dict(scanner.by_kind), dict(scanner.by_class)


def _both(identifiers, fields, chunks: list[bytes], *, phones: bool) -> tuple[tuple, tuple]:
    outcomes = []
    for engine in ("native", "python"):
        scanner = Scanner(identifiers, fields, phones=phones, engine=engine)
        assert scanner.engine == engine
        first = 1
        for chunk in chunks:
            scanner.scan("part.log", chunk, first)
            first += chunk.count(b"\n")
        outcomes.append(_outcome(scanner))
    return outcomes[0], outcomes[1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """(identifiers harvested from the adversarial set and its people, its raw lines, the lines
    of the package the research policy makes of them)."""
    workdir = tmp_path_factory.mktemp("filter")
    generated = generate(seed=5, per_disguise=1, leaves_per_event=3)
    raw = workdir / "raw.log"
    raw.write_text("".join(line + "\n" for line in generated.lines))
    fields = identifier_fields(load_policy("research"))
    identifiers = harvest_inputs([raw], fields)
    for person in PEOPLE:
        for kind, value in person.values().items():
            identifiers.add(value, kind, "roster", "roster")
    package = workdir / "package"
    run([raw], package, load_policy("research"), Key(bytes(range(32))))
    clean = [line for path in sorted(package.rglob("*.gz")) for line in gzip.open(path).read().splitlines()]
    assert clean
    return identifiers, fields, [line.encode() for line in generated.lines], clean


def _chunks(lines: list[bytes], rng: random.Random) -> list[bytes]:
    chunks, at = [], 0
    while at < len(lines):
        size = rng.randint(1, 40)
        chunks.append(b"".join(line + b"\n" for line in lines[at : at + size]))
        at += size
    return chunks


@pytest.mark.parametrize("phones", [False, True], ids=["against inputs", "detectors alone"])
def test_the_filter_changes_no_finding(corpus, phones):
    identifiers, fields, dirty, clean = corpus
    rng = random.Random(7)
    lines = clean + rng.sample(dirty, min(len(dirty), 400))
    rng.shuffle(lines)
    native, python = _both(identifiers if not phones else [], fields, _chunks(lines, rng), phones=phones)
    assert python[1] > 100  # the lines hold findings, and the clean ones none
    assert native == python


def test_the_filter_skips_clean_lines(corpus):
    identifiers, fields, _, clean = corpus
    scanner = Scanner(identifiers, fields, phones=False, engine="native")
    chunk = b"".join(line + b"\n" for line in clean)
    scanner.scan("part.log", chunk, 1)  # masked values are learned on first sight
    flagged = scanner._filter.lines(chunk)
    assert len(flagged) < len(clean) / 2


def test_a_finding_keeps_its_line_number_when_other_lines_are_skipped(corpus):
    identifiers, fields, _, clean = corpus
    person = PEOPLE[0]
    leak = b'{"event_type":"x","event":"write to ' + person.email.encode() + b'"}'
    lines = clean[:50] + [leak] + clean[50:100]
    native, python = _both(identifiers, fields, [b"".join(line + b"\n" for line in lines)], phones=False)
    assert native == python
    assert 51 in {finding[1] for finding in native[0]}


_PIECES = st.sampled_from(
    [
        b'{"username":"', b'","ip":"', b'203.0.113.0', b'203.0.113.45', b'2001:db8:85a3::', b'2002:cb00:712d::',
        b'"', b'\\"', b'\\u0040', b'%40', b'@', b' at ', b'&amp;', b'<b>', b'**', b'__', b'/u/', b'/users/', b'/',
        b'+1 617 555 0143', b'(617) 555-0143', b'2024-03-01T10:11:12', b'tel:', b' ', b',', b':', b'.', b'-', b'_',
        b'0', b'7', b'1234567', b'\n', b'\xc3\xa9', b'\xef\xbc\xa0', b'"user_id":', b'"user_id\\":', b'"ip":"',
        b'\\"ip\\":\\"', b'::', b'.1.2.', b'example.org', b'}',
        # what the normalized reading undoes, and what the filter reads itself or leaves to the scan
        b'&', b'&notes=1', b'&#64;', b'&amp', b'&lt;', b'&b=2', b'%5C', b'%2540', b'%C3%A9', b'%4', b'+',
        b'\\/', b'\\n', b'\\!', b'\\', b'<br>', b'*', b'~~', b'__', b'(at)', b'[dot]', b' dot ', b'\x1c',
        b' _', b'"_', b'_', b'a__b', b'(_',
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pieces=st.lists(st.one_of(_PIECES, st.sampled_from([None])), max_size=60), phones=st.booleans(), seed=st.integers(0, 1 << 16))
def test_the_filter_agrees_on_arbitrary_lines(corpus, pieces, phones, seed):
    identifiers, fields, _, _ = corpus
    rng = random.Random(seed)
    values = [v.encode() for person in PEOPLE[:3] for v in person.values().values()]
    text = b"".join(piece if piece is not None else rng.choice(values) for piece in pieces)
    native, python = _both(identifiers if not phones else [], fields, [text], phones=phones)
    assert native == python


def test_each_disguise_planted_in_a_clean_line(corpus):
    """Every disguise of every value of a few people, planted alone in a clean package line (so
    that nothing else on the line flags it): the same findings either way, and the scan finds
    most of them (the plants are leaks)."""
    identifiers, fields, _, clean = corpus
    rng = random.Random(11)
    lines = []
    for person in PEOPLE[:4]:
        for kind, value in person.values().items():
            for _, disguise in disguises_for(kind, value):
                text = disguise(value, rng).replace("\\", "\\\\").replace('"', '\\"')
                line = rng.choice(clean)
                lines.append(line.replace(b'"event_type":"', b'"note":"hi, ' + text.encode() + b' here","event_type":"', 1))
    lines += clean[:200]
    rng.shuffle(lines)
    native, python = _both(identifiers, fields, _chunks(lines, rng), phones=False)
    assert python[1] > len(lines) // 4
    assert native == python


def test_an_address_written_with_at_and_dot_is_read_by_the_filter(corpus):
    """A local part too short to be searched alone (``zq``) is found only in the reading of
    ``(at)`` and ``dot``: the filter makes that reading too."""
    _, fields, _, clean = corpus
    identifiers = Identifiers()
    identifiers.add("zq@example.org", "email", "roster", "roster")
    plants = [b"zq (at) example (dot) org", b"zq at example dot org", b"zq [at] example [dot] org", b"zq @ example.org"]
    lines = [line.replace(b'"event_type":"', b'"note":"write ' + plant + b'","event_type":"', 1) for plant, line in zip(plants, clean)]
    lines += clean[10:60]
    native, python = _both(identifiers, fields, [b"".join(line + b"\n" for line in lines)], phones=False)
    assert python[1] == len(plants)
    assert native == python


def test_a_name_in_single_underscore_emphasis_beside_an_ampersand(corpus):
    """``_zelda_ quintero`` reads as the name once its emphasis is undone: the filter leaves
    such a line (one with ``&``, which it would otherwise read itself) to the scan."""
    _, fields, _, clean = corpus
    identifiers = Identifiers()
    identifiers.add("Zelda Quintero", "name", "roster", "roster")
    plants = [b"ask _zelda_ quintero & co", b"q&a: (_zelda_ quintero)"]
    lines = [line.replace(b'"event_type":"', b'"note":"' + plant + b'","event_type":"', 1) for plant, line in zip(plants, clean)]
    lines += clean[10:60]
    native, python = _both(identifiers, fields, [b"".join(line + b"\n" for line in lines)], phones=False)
    assert python[1] == len(plants)
    assert native == python
