"""Leak classes: where in a line a finding is (its JSON path, found by parsing the line), and the
class that its place and form give it."""

from __future__ import annotations

import json
import re
from typing import Iterator

import orjson

from ..core.paths import format_path
from .forms import deobfuscate, normalize_text, space_phone_separators

# The classes a finding is sorted into, from where and in which form it was found (most
# specific first): the issue tracker's classes of leak.
LEAK_CLASSES = ("duplicate_key", "identity_field", "url_path", "dict_key", "kept_subtree", "disguised", "free_text")
# Containers that a policy may keep whole although they can carry text that people typed.
_KEPT_CONTAINERS = frozenset({"correct_map", "course_user_tags", "note_text", "results", "team_id", "answervariable", "highlighted_content", "tags"})
_URL_LIKE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|/|[\w-]+(?:\.[\w-]+)+/)", re.IGNORECASE)
_PLAIN_FORMS = frozenset({"as written", "detected", "field value", "unmasked in a masked field", "alone in text", "path segment"})


def _duplicate_keys(line: bytes) -> bool:
    """Whether LINE, or a JSON string inside it, has an object with the same key twice."""

    def pairs(items):
        keys = [key for key, _ in items]
        if len(keys) != len(set(keys)):
            raise _Duplicate
        return dict(items)

    def check(value, depth=0) -> None:
        if depth > 32:
            return
        if type(value) is dict:
            for item in value.values():
                check(item, depth + 1)
        elif type(value) is list:
            for item in value:
                check(item, depth + 1)
        elif type(value) is str and value[:1] in ("{", "[") and len(value) > 1:
            try:
                check(json.loads(value, object_pairs_hook=pairs), depth + 1)
            except ValueError:
                return

    try:
        check(json.loads(line, object_pairs_hook=pairs))
    except _Duplicate:
        return True
    except ValueError:
        return False
    return False


class _Duplicate(Exception):
    pass


def leak_class(line: bytes, where: tuple | None, form: str, identity_keys: frozenset[str]) -> str:
    """The class of a finding on LINE at WHERE ((path tokens, is a key, the string that holds it)),
    found in FORM."""
    if b'":' in line and _duplicate_keys(line):
        return "duplicate_key"
    if form == "field value":
        return "identity_field"
    if where is None:
        return "disguised" if form not in _PLAIN_FORMS else "free_text"
    path, is_key, leaf = where
    text = leaf if type(leaf) is str else ""
    if _URL_LIKE.match(text):
        return "url_path"
    if is_key:
        return "dict_key"
    last = path[-1] if path else None
    if last in identity_keys:
        return "identity_field"
    if any(step in _KEPT_CONTAINERS for step in path if type(step) is str):
        return "kept_subtree"
    if form not in _PLAIN_FORMS:
        return "disguised"
    return "free_text"


def _walk(value, path: tuple, depth: int = 0) -> Iterator[tuple[tuple, object, object]]:
    """(path, key, leaf) for every leaf of VALUE, JSON strings decoded; keys are leaves too."""
    if depth > 32:
        return
    if type(value) is dict:
        for key, item in value.items():
            yield path + (key,), None, key
            yield from _walk(item, path + (key,), depth + 1)
    elif type(value) is list:
        for index, item in enumerate(value):
            yield from _walk(item, path + (index,), depth + 1)
    else:
        yield path, path[-1] if path else None, value
        if type(value) is str and value[:1] in ("{", "[") and len(value) > 1:
            try:
                decoded = orjson.loads(value)
            except orjson.JSONDecodeError:
                return
            yield from _walk(decoded, path, depth + 1)


def _parse(line: bytes):
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return None


def locate(line: bytes, needles: list[bytes]) -> tuple | None:
    """(JSON path, whether it is a key, the string or number) of the deepest value or key in LINE
    that holds one of NEEDLES; inside a JSON string that holds JSON, the path goes on into it."""
    return _deepest(line, lambda text: any(needle in text.encode("utf-8", "replace").lower() for needle in needles))


def locate_normalized(line: bytes, needle: str, how: str) -> tuple | None:
    """As ``locate``, for a NEEDLE found in the normalized reading HOW."""

    def holds(text: str) -> bool:
        reading = normalize_text(text)
        if how == "obfuscated address":
            reading = deobfuscate(reading)
        elif how == "phone separators":
            reading = space_phone_separators(reading)
        return needle in reading

    return _deepest(line, holds)


def _deepest(line: bytes, holds) -> tuple | None:
    parsed = _parse(line)
    if parsed is None:
        return None
    best: tuple | None = None
    for path, key, leaf in _walk(parsed, ()):
        if type(leaf) is bool or leaf is None:
            continue
        if holds(leaf if type(leaf) is str else str(leaf)):
            is_key = key is None and type(leaf) is str and bool(path) and path[-1] == leaf
            if best is None or len(path) > len(best[0]):
                best = (path, is_key, leaf)
    return best


def format_where(where: tuple | None) -> str | None:
    if where is None:
        return None
    text = format_path(where[0]) or "(line)"
    return text + " (key)" if where[1] else text



def locate_field(line: bytes, keys: frozenset[str], folded: str) -> tuple[tuple, str] | None:
    """((path, False, value), key) of an identifier field in LINE whose whole value is FOLDED, ignoring case."""
    parsed = _parse(line)
    if parsed is None:
        return None
    for path, key, leaf in _walk(parsed, ()):
        if key in keys and type(leaf) in (str, int) and str(leaf).strip().lower() == folded:
            return (path, False, leaf), key
    return None


