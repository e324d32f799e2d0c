"""Turn raw Open edX tracking logs into pseudonymized research data packages.

The Python API mirrors the command line::

    from anonymizer import Anonymizer, load_key, load_policy, run

    policy = load_policy("research")          # or a path to a YAML policy
    key = load_key("secret.key")
    anonymizer = Anonymizer(policy, key)
    anonymizer.anonymize_event(event_dict)    # -> dict, or None when the policy drops it
    anonymizer.anonymize_line(raw_bytes)      # -> ("written", bytes) | ("dropped"|"rejected", reason)
    run([Path("logs/")], Path("package/"), policy, key)
"""

__version__ = "0.1.0"

from .engine import Anonymizer  # noqa: E402
from .errors import AnonymizerError, InputError, KeyFileError, PolicyError, UsageError  # noqa: E402
from .keys import Key, generate_key, load_key, write_key  # noqa: E402
from .policy import Policy, builtin_policies, load_policy, parse_policy  # noqa: E402
from .runner import RunResult, run  # noqa: E402

__all__ = [
    "Anonymizer",
    "AnonymizerError",
    "InputError",
    "Key",
    "KeyFileError",
    "Policy",
    "PolicyError",
    "RunResult",
    "UsageError",
    "__version__",
    "builtin_policies",
    "generate_key",
    "load_key",
    "load_policy",
    "parse_policy",
    "run",
    "write_key",
]
