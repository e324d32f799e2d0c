"""Write the plans of the built-in policies to tests/plans/NAME.json (``test_plan`` pins them).

Run it after a change that is meant to change what a built-in policy does, and review the diff:
    .venv/bin/python tests/plans/update.py
"""

from __future__ import annotations

from pathlib import Path

from anonymizer.core.lowering import lower
from anonymizer.core.plan import to_json
from anonymizer.core.policy import builtin_policies, load_policy

HERE = Path(__file__).parent


def main() -> None:
    for stale in HERE.glob("*.json"):
        if stale.stem not in builtin_policies():
            stale.unlink()
    for name in builtin_policies():
        path = HERE / f"{name}.json"
        text = to_json(lower(load_policy(name)))
        if not path.is_file() or path.read_bytes() != text:
            path.write_bytes(text)
            print(f"{path.name}: written")
        else:
            print(f"{path.name}: unchanged")


if __name__ == "__main__":
    main()
