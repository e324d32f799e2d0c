"""Field paths: ``answers.*``, ``submission.*.answer``, ``answer.parts[*].text``, ``[0]``.

A path is a dot-separated list of keys. ``*`` matches any key of a dict or any item of a
list; ``[*]`` is the same wildcard written list-style; ``[N]`` is list item N. A plain key
cannot contain ``.``, ``[``, ``]``, ``*`` or ``"``. A key that does (an xAPI extension is named by
a URL: ``https://w3id.org/xapi/video/extensions/time``) is written between double quotes:
``result.extensions."https://w3id.org/xapi/video/extensions/time"``; inside the quotes every
character but ``"`` stands for itself, and ``*`` is a key, not a wildcard.
"""

from __future__ import annotations

import re

WILDCARD = "*"
Token = str | int

_SEGMENT = re.compile(r"^([^.\[\]*\"]+|\*)?((?:\[(?:\d+|\*)\])*)$")
_QUOTED = re.compile(r'"([^"]+)"((?:\[(?:\d+|\*)\])*)(?:\.|$)')
_PLAIN = re.compile(r"([^.\"]*)(?:\.|$)")
_INDEX = re.compile(r"\[(\d+|\*)\]")
_NEEDS_QUOTES = re.compile(r"[.\[\]*\"]")


def _malformed(path: str) -> ValueError:
    return ValueError(
        f"malformed field path {path!r}: expected keys separated by '.', '*' for any key, '[N]' or '[*]' for list items, "
        "and a key holding '.', '[', ']' or '*' between double quotes"
    )


def parse_path(path: str) -> tuple[Token, ...]:
    """Split PATH into keys (str), list indexes (int) and wildcards; raise ValueError when malformed."""
    if not isinstance(path, str) or not path.strip():
        raise ValueError("a field path cannot be empty")
    text = path.strip()
    tokens: list[Token] = []
    position = 0
    while True:
        if text.startswith('"', position):
            quoted = _QUOTED.match(text, position)
            if quoted is None:
                raise _malformed(path)
            tokens.append(quoted.group(1))
            indexes = quoted.group(2)
            end = quoted.end()
        else:
            plain = _PLAIN.match(text, position)
            match = _SEGMENT.match(plain.group(1)) if plain is not None else None
            if not match or (not match.group(1) and not match.group(2)):
                raise _malformed(path)
            if match.group(1):
                tokens.append(match.group(1))
            indexes = match.group(2)
            end = plain.end()
        for index in _INDEX.findall(indexes):
            tokens.append(WILDCARD if index == "*" else int(index))
        if end >= len(text):
            if text.endswith("."):
                raise _malformed(path)
            return tuple(tokens)
        position = end


def format_path(tokens: tuple[Token, ...]) -> str:
    """The canonical text of a token tuple (a key that needs them between double quotes)."""
    out = ""
    for token in tokens:
        if isinstance(token, int):
            out += f"[{token}]"
        else:
            key = f'"{token}"' if token != WILDCARD and _NEEDS_QUOTES.search(token) else token
            out += ("." if out else "") + key
    return out
