r"""Strict JSON: the one place where a line or a JSON-string payload is parsed.

orjson is fast but lenient in two ways that matter here: it keeps the last of two equal keys
silently (``{"setting": "email", ..., "setting": "time_zone"}`` would let a field condition see
``time_zone``), and it nests up to its own recursion limit, deeper than the rest of the tool
(and orjson's own serializer, which stops at 254) can follow. ``loads`` refuses both, with
``StrictJSONError`` naming the reason (``duplicate_key``, ``too_deep``); text that is not JSON
raises ``orjson.JSONDecodeError`` as before.

Depth: a value nests at most as many containers as its text holds ``{`` and ``[`` bytes, so only
a text with more than ``MAX_DEPTH`` of them is walked. Duplicate keys: every key in a text ends
with a quote and a colon, so the ``":`` pairs whose quote is not escaped by a single backslash
count the keys written, plus a few from strings whose content holds such a pair. orjson's
rewriting of the parsed value holds the same strings minus those of any lost (repeated) key,
spelled the same way, so the two counts are equal exactly when no key was lost. Where that
argument does not hold (white space before a colon; a quote, backslash or colon written as a
``\u`` escape) or the counts differ, the text is parsed again with the standard library, which
sees every key.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

# Real tracking events nest about 8 levels (event > correct_map > id > hint...); 64 is far above
# that and far below orjson's serializer limit (254) and Python's recursion limit.
MAX_DEPTH = 64

DUPLICATE_KEY = "duplicate_key"
TOO_DEEP = "too_deep"

_SPACED_COLON = re.compile(rb'"[ \t\r\n]+:')
# A quote, backslash or colon written as a \u escape: the text and orjson's rewriting of it would
# then spell that character differently, and the counts below could not be compared.
_ESCAPED_SIGN = re.compile(rb"\\u00(?:22|5[cC]|3[aA])")


class StrictJSONError(ValueError):
    """Valid JSON that the tool refuses; ``reason`` is the rejection word (never a value)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def loads(text: bytes | str) -> Any:
    """TEXT parsed as JSON; raises ``orjson.JSONDecodeError`` when it is not JSON and
    ``StrictJSONError`` when it repeats a key or nests deeper than ``MAX_DEPTH``."""
    value = orjson.loads(text)
    kind = type(value)
    if kind is dict or kind is list:
        check(text, value)
    return value


def check(text: bytes | str, value: Any) -> None:
    """Raise ``StrictJSONError`` when VALUE, parsed from TEXT, nests too deep or lost a repeated key."""
    if type(text) is str:
        text = text.encode("utf-8", "surrogatepass")
    if text.count(b"{") + text.count(b"[") > MAX_DEPTH:
        count_keys(value)  # raises when too deep
    # Raw tabs, CRs and newlines are only ever white space between tokens in JSON text.
    spaced = b" :" in text or b"\t" in text or b"\r" in text or b"\n" in text
    if spaced and _SPACED_COLON.search(text):
        _exact_duplicate_check(text)
    elif b"\\u00" in text and _ESCAPED_SIGN.search(text):
        _exact_duplicate_check(text)
    elif _key_signs(text) != _key_signs(orjson.dumps(value)):
        _exact_duplicate_check(text)


def _key_signs(text: bytes) -> int:
    """The ``":`` pairs of TEXT whose quote is not escaped by a single backslash: each key written
    counts once, and a string whose content starts with a colon or holds ``\\":`` adds one."""
    signs = text.count(b'":')
    escaped = text.count(b'\\":')
    if escaped:
        signs -= escaped
        if b"\\\\" in text:  # a key may end with an escaped backslash: count those back in
            signs += text.count(b'\\\\":')
    return signs


def count_keys(value: Any) -> int:
    """How many keys VALUE's dicts hold, at any depth; raises ``StrictJSONError`` (``too_deep``)
    when containers nest deeper than ``MAX_DEPTH``."""
    keys = 0
    stack = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        if type(node) is dict:
            keys += len(node)
            children = node.values()
        else:
            children = node
        for child in children:
            kind = type(child)
            if kind is dict or kind is list:
                if depth >= MAX_DEPTH:
                    raise StrictJSONError(TOO_DEEP)
                push((child, depth + 1))
    return keys


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise StrictJSONError(DUPLICATE_KEY)
    return result


def _exact_duplicate_check(text: bytes | str) -> None:
    """Parse TEXT again, seeing every key; the slow path, taken only when the counts cannot decide."""
    try:
        json.loads(text, object_pairs_hook=_refuse_duplicates)
    except RecursionError:  # pragma: no cover (depth is checked first)
        raise StrictJSONError(TOO_DEEP) from None
    except ValueError as exc:
        if isinstance(exc, StrictJSONError):
            raise
        # orjson accepted the text; the standard library is the more lenient of the two, so this
        # is not expected. Without an exact count of keys, the line cannot be trusted.
        raise StrictJSONError("invalid_json") from None
