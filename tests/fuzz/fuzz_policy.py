"""Coverage-guided fuzzing of the policy loader: YAML bytes in, a ``Policy`` or a ``PolicyError`` out.

A policy that loads is also compiled (an ``Anonymizer`` is built from it), since a policy that
validates but cannot be compiled would fail later, at run time. Any other exception is a crash.

    python tests/fuzz/fuzz_policy.py -runs=3000 -seed=1 CORPUS_DIR -dict=policy.dict
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

with atheris.instrument_imports(include=["anonymizer"]):
    from anonymizer import Anonymizer, Key
    from anonymizer.core.errors import PolicyError
    from anonymizer.core.policy import parse_policy

KEY = Key(bytes(range(32)))
# `extends` reads the file it names. Device and process files never end or block (extends:
# /dev/zero reads forever): they are a limit of the loader, reported separately, not fuzzed here.
_SPECIAL_FILES = (b"/dev", b"/proc", b"/sys")


def test_one_input(data: bytes) -> None:
    if any(prefix in data for prefix in _SPECIAL_FILES):
        return
    try:
        policy = parse_policy(data, "fuzz.yaml")
    except PolicyError:
        return  # an error for people (which names the file it is about: this one, or a base it extends)
    Anonymizer(policy, KEY)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
