"""Turn raw Open edX tracking logs into pseudonymized research data packages.

The Python API mirrors the command line::

    from anonymizer import Anonymizer, load_key, load_policy, run

    policy = load_policy("research")          # or a path to a YAML policy
    key = load_key("secret.key")
    anonymizer = Anonymizer(policy, key)
    result = anonymizer.anonymize_batch(raw_bytes_of_whole_lines, first_line=1)
    result.lines                              # one Written | Dropped | Rejected per line, with its Route
    result.stats                              # the batch's counts, as the manifest counts them
    anonymizer.anonymize_event(event_dict)    # -> dict, or None when the policy drops it
    anonymizer.anonymize_line(raw_bytes)      # -> (Outcome.WRITTEN, bytes) | (DROPPED | REJECTED, reason)
    run([Path("logs/")], Path("package/"), policy, key)
    selection = Selection.parse(courses=["course-v1:MITx+*"], since="2024-01-01", until="2024-06-30")
    run([Path("logs/")], Path("package/"), policy, key, selection=selection, layout="course-day")
"""

from .core.engine import Anonymizer
from .core.errors import AnonymizerError, InputError, KeyFileError, PolicyError, UsageError
from .core.keys import Key, generate_key, load_key, write_key
from .core.outcomes import AccountingError, BatchResult, Dropped, DropReason, NotSelected, Outcome, Rejected, RejectReason, Route, Written
from .core.selection import Selection
from .core.policy import Policy, builtin_policies, load_policy, parse_policy
from .io.runner import RunResult, run
from .version import __version__

__all__ = [
    "AccountingError",
    "Anonymizer",
    "AnonymizerError",
    "BatchResult",
    "DropReason",
    "Dropped",
    "NotSelected",
    "Outcome",
    "RejectReason",
    "Rejected",
    "Route",
    "Written",
    "InputError",
    "Key",
    "KeyFileError",
    "Policy",
    "PolicyError",
    "RunResult",
    "Selection",
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
