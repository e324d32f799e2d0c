"""Keys that are data: the keys of payload dicts that no policy rule names.

``answers`` and ``student_answers`` are keyed by input id, a GET-string payload by parameter
name, ``correct_map`` by input id, a survey by question; a key there is whatever the page sent,
so an email or a name used as a key would otherwise leave with it. Every key that reaches the
output without a rule naming it (a key matched by ``*``, a key under a container rule, a key of
a dict that a leaf operator such as ``scrub_text`` walks) is checked like a value:

- **safe as it is**: an input id of hex digits (``<hex32>_2_1``, with ``[]`` for checkbox
  lists), a hex id, a number of at most 4 digits, or a word of ``anonymizer/data/safe_keys.txt``;
- **checked as text**: ids whose parts an author chose (``i4x-…``, ``input_…``, block, usage and
  course keys: a name can stand inside one), and any other key made of letters, digits and
  ``_ - . : [ ]`` (at most 64) go
  through the text scrubber (detectors, the roster and the learned roster, the event's actor).
  When the scrubber would change it, the key names someone: the whole entry is dropped (its value
  is about that person) and counted as ``unsafe_key``. Dropping, not replacing, means two keys
  can never collide into one, and no placeholder key appears in data a reader expects to hold
  input ids;
- **dropped**: anything else (spaces, ``@``, long keys) is dropped and counted as ``unsafe_key``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from typing import Callable

UNSAFE_KEY = "unsafe_key"
_SAFE_SHAPES = re.compile(
    r"""(?x)^(?:
        (?:input_)?[0-9a-fA-F]{32}(?:_\d+)*(?:_[a-z]+)?       # an input id: <hex32>_2_1, _comment, _dynamath
      | [0-9a-fA-F]{16,64}                                     # a hex id
      | \d{1,4}                                                # a choice index, a small number
    )(?:\[\])?$"""
)
# Ids whose parts are names an author or a page chose: their shape is the platform's, but a name
# can stand inside one (``i4x-…-Sample_ann_lee_2_1``), so they are checked as text as well.
_STRUCTURED = re.compile(
    r"""(?x)^(?:
        (?:input_)?i4x-[A-Za-z0-9_.\-]+                        # an old-style input id
      | input_[A-Za-z0-9_.\-:+]+                               # any platform input id
      | (?:block-v1|course-v1|i4x):[A-Za-z0-9_.\-:+@/]+        # a block, usage or course key
      | i4x://[A-Za-z0-9_.\-/]+
    )(?:\[\])?$"""
)
_WORDLIKE = re.compile(r"^[\w.\-:\[\]]{1,64}$")
_SAFE, _CHECK, _UNSAFE = 0, 1, 2
_MEMO_LIMIT = 1 << 16


@lru_cache(maxsize=1)
def safe_words() -> frozenset[str]:
    """The shipped vocabulary of keys the platform itself uses."""
    text = resources.files("anonymizer").joinpath("data/safe_keys.txt").read_text(encoding="utf-8")
    return frozenset(word for line in text.splitlines() for word in line.split("#", 1)[0].split())


def key_shape(key: str) -> int:
    """``_SAFE``, ``_CHECK`` (check as text) or ``_UNSAFE`` for a dict key."""
    # Browser payloads are sometimes a GET string inside a JSON string: the first key then
    # begins with the quote, which is no part of the input id.
    bare = key.strip('"')
    if bare in safe_words() or _SAFE_SHAPES.match(bare):
        return _SAFE
    return _CHECK if _STRUCTURED.match(bare) or _WORDLIKE.match(bare) else _UNSAFE


def key_checker(scrub: Callable) -> Callable[[object, object], bool]:
    """``check(key, state)``: whether KEY may be copied; SCRUB is the text scrubber's function."""
    shapes: dict[str, int] = {}

    def check(key, state) -> bool:
        if type(key) is not str:
            return True  # list positions
        shape = shapes.get(key)
        if shape is None:
            shape = key_shape(key)
            if len(shapes) >= _MEMO_LIMIT:
                shapes.clear()
            shapes[key] = shape
        if shape == _SAFE:
            return True
        if shape == _UNSAFE:
            return False
        return scrub(key, state) == key

    return check
