"""Field paths: ``answers.*``, ``submission.*.answer``, ``answer.parts[*].text``, ``[0]``.

A path is a dot-separated list of keys. ``*`` matches any key of a dict or any item of a
list; ``[*]`` is the same wildcard written list-style; ``[N]`` is list item N. Keys cannot
contain ``.``, ``[``, ``]`` or ``*``: name such fields with a wildcard.
"""

from __future__ import annotations

import re

WILDCARD = "*"
Token = str | int

_SEGMENT = re.compile(r"^([^.\[\]*]+|\*)?((?:\[(?:\d+|\*)\])*)$")
_INDEX = re.compile(r"\[(\d+|\*)\]")


def parse_path(path: str) -> tuple[Token, ...]:
    """Split PATH into keys (str), list indexes (int) and wildcards; raise ValueError when malformed."""
    if not isinstance(path, str) or not path.strip():
        raise ValueError("a field path cannot be empty")
    tokens: list[Token] = []
    for segment in path.strip().split("."):
        match = _SEGMENT.match(segment)
        if not match or (not match.group(1) and not match.group(2)):
            raise ValueError(
                f"malformed field path {path!r}: expected keys separated by '.', '*' for any key, '[N]' or '[*]' for list items"
            )
        if match.group(1):
            tokens.append(match.group(1))
        for index in _INDEX.findall(match.group(2)):
            tokens.append(WILDCARD if index == "*" else int(index))
    return tuple(tokens)


def format_path(tokens: tuple[Token, ...]) -> str:
    """The canonical text of a token tuple."""
    out = ""
    for token in tokens:
        if isinstance(token, int):
            out += f"[{token}]"
        else:
            out += ("." if out else "") + token
    return out
