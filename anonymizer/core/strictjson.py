r"""Strict JSON: the one place where a line or a JSON-string payload is parsed.

orjson is fast but lenient in two ways that matter here: it keeps the last of two equal keys
silently (``{"setting": "email", ..., "setting": "time_zone"}`` would let a field condition see
``time_zone``), and it nests up to its own recursion limit, deeper than the rest of the tool
(and orjson's own serializer, which stops at 254) can follow. ``loads`` refuses both, with
``StrictJSONError`` naming the reason (``duplicate_key``, ``too_deep``); text that is not JSON
raises ``orjson.JSONDecodeError`` as before.

Both checks share one pass over the text, which keeps only its ``{``, ``[``, ``:`` and ``\`` bytes.
Depth: a value nests at most as many containers as its text holds ``{`` and ``[`` bytes, so only a
text with more than ``MAX_DEPTH`` of them is walked. Duplicate keys: in JSON text every key is
followed by exactly one colon, and every other colon lies inside a string. orjson writes the
parsed value back with one colon after each key and the colons of every string as they are, so
the text holds as many colons as orjson's rewriting exactly when no string was lost, that is when
no key was repeated (a repeated key and its first value are what orjson drops). This holds when
the text writes its colons as colons: when a ``\u003a`` escape may be present (only a text
with a backslash is searched for one), or the counts differ, the text is parsed again with the
standard library, which sees every key.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

# Real tracking events nest about 8 levels (event > correct_map > id > hint...); 64 is far above
# that and far below orjson's serializer limit (254) and Python's recursion limit.
MAX_DEPTH = 64

DUPLICATE_KEY = "duplicate_key"
TOO_DEEP = "too_deep"

# Every byte but the three that the checks count, and the backslash that starts an escape.
_NOT_MARKS = bytes(b for b in range(256) if b not in b"{[:\\")


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
    marks = text.translate(None, _NOT_MARKS)  # one pass; the counts below run on a few bytes
    if marks.count(b"{") + marks.count(b"[") > MAX_DEPTH:
        count_keys(value)  # raises when too deep
    # A backslash among the marks says an escape may be present; only then is it looked for.
    if marks.count(b":") != orjson.dumps(value).count(b":") or (b"\\" in marks and b"\\u003" in text):
        _exact_duplicate_check(text)


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
