"""Errors for people: each names a file, line, field or policy key, never a value from the logs or the key."""

from __future__ import annotations

import re


class AnonymizerError(Exception):
    """Base class for every error the tool reports to its user."""

    exit_code = 1


class UsageError(AnonymizerError):
    """The command was called in a way that cannot work (bad paths, conflicting options)."""

    exit_code = 2


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: stop as on Ctrl-C (the same clean-up), and exit with 143 rather than 130."""


class InputError(AnonymizerError):
    """An input file cannot be read to its end (a truncated or corrupt gzip file, a read error)."""


class OutputError(AnonymizerError):
    """The package cannot be written (permission denied, no space left, a read-only file system)."""


def os_reason(exc: OSError) -> str:
    """The operating system's words for EXC (``No space left on device``), never a value from the logs."""
    return exc.strerror or type(exc).__name__


class PolicyError(AnonymizerError):
    """A policy file is missing, not YAML, or does not validate."""

    exit_code = 2


class KeyFileError(AnonymizerError):
    """A key file is missing, unreadable, or too short."""

    exit_code = 2


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,47}$")


def shown(value: object) -> str:
    """VALUE quoted for a message when it is a plain name; anything else (a value pasted into a
    policy by mistake could be data) is described, not repeated."""
    return repr(value) if isinstance(value, str) and _NAME.match(value) else "(a value that is not a plain name; not repeated)"
