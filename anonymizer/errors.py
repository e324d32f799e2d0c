"""Errors for people: each names a file, line, field or policy key, never a value from the logs or the key."""

from __future__ import annotations


class AnonymizerError(Exception):
    """Base class for every error the tool reports to its user."""

    exit_code = 1


class UsageError(AnonymizerError):
    """The command was called in a way that cannot work (bad paths, conflicting options)."""

    exit_code = 2


class PolicyError(AnonymizerError):
    """A policy file is missing, not YAML, or does not validate."""

    exit_code = 2


class KeyFileError(AnonymizerError):
    """A key file is missing, unreadable, or too short."""

    exit_code = 2
