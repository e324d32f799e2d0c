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

from .operators.base import EventState

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
_SAFE, _CHECK, _UNSAFE = 0, 1, 2  # small ints: one object each, compared with `is`
_MEMO_LIMIT = 1 << 16
_GROUP_LIMIT = 1 << 12  # key sets remembered, of at most _GROUP_KEYS keys each
_GROUP_KEYS = 64
_NO_ACTORS = EventState(actors=())  # what a key is judged with before any event's actors


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
    """``check(key, state)``: whether KEY may be copied; SCRUB is the text scrubber's function.

    Keys recur endlessly (every event of a family has the same ones), so the verdict is memoized
    per key string. The scrubber reads two things: the key itself with the run's roster (fixed
    for the checker's life), and the event's actors (its own usernames). Only the first part is
    memoized: a key that passes it is checked against each event's actors again, exactly as the
    scrubber would, and any case the quick test cannot decide calls the scrubber itself.
    """
    # key -> _SAFE, _UNSAFE, or the lower-cased key when it passes the scrubber without actors
    # and is ASCII (then an actor changes it only when the actor is in it), or _CHECK otherwise.
    verdicts: dict[str, object] = {}

    def verdict(key: str) -> object:
        shape = key_shape(key)
        if shape != _CHECK:
            return shape
        if scrub(key, _NO_ACTORS) != key:
            return _UNSAFE
        # ASCII keys of this shape have nothing a decoder would change, so the scrubber looks
        # for actors in the plain lower-cased key (see ``scrub_text``).
        return key.lower() if key.isascii() else _CHECK

    # The actors of the event last seen, lower-cased for the quick test (None when one of them is
    # not ASCII: then the scrubber decides). Holding the state keeps it alive, so that no later
    # event's state can take its identity.
    last: list = [None, None]

    def needles(state) -> tuple[str, ...] | None:
        if state is not last[0]:
            found: list[str] | None = []
            for username in state.actors:
                if len(username) < 2:
                    continue  # the scrubber skips them too
                if not username.isascii():
                    found = None
                    break
                found.append(username.lower())
            last[0], last[1] = state, (tuple(found) if found is not None else None)
        return last[1]

    def check(key, state) -> bool:
        if type(key) is not str:
            return True  # list positions
        found = verdicts.get(key)
        if found is None:
            found = verdict(key)
            if len(verdicts) >= _MEMO_LIMIT:
                verdicts.clear()
            verdicts[key] = found
        if found is _SAFE:
            return True
        if found is _UNSAFE:
            return False
        if found is not _CHECK:
            actors = needles(state)
            if actors is not None:
                for actor in actors:
                    if actor in found:
                        break
                else:
                    return True  # no actor in it: the scrubber would leave it as it is
        return scrub(key, state) == key

    # The keys of one dict, checked together: a dict's key set recurs as often as its keys do.
    # Per key set: the keys that always fail, those the scrubber must see, and the lower-cased
    # keys that only an actor of the event could change, joined so that one search per actor
    # tells whether any of them holds it (a hit only sends those keys back to ``check``).
    groups: dict[frozenset, tuple[frozenset, tuple, tuple, str]] = {}

    def group(keys: frozenset) -> tuple[frozenset, tuple, tuple, str]:
        unsafe, undecided, lowered = set(), [], []
        for key in keys:
            if type(key) is not str:
                continue
            if not check(key, _NO_ACTORS):
                unsafe.add(key)
                continue
            found = verdicts.get(key)
            if found is _CHECK or found is None:
                undecided.append(key)
            elif found is not _SAFE:
                lowered.append((key, found))
        return frozenset(unsafe), tuple(undecided), tuple(lowered), "\n".join(low for _, low in lowered)

    def rejected(keys, state) -> frozenset | set:
        """The keys among KEYS that may not be copied (as ``check`` decides them one by one)."""
        if len(keys) > _GROUP_KEYS:  # a large dict of data keys: judged key by key, not kept
            return {key for key in keys if not check(key, state)}
        sig = keys if type(keys) is frozenset else frozenset(keys)
        found = groups.get(sig)
        if found is None:
            found = group(sig)
            if len(groups) >= _GROUP_LIMIT:
                groups.clear()
            groups[sig] = found
        unsafe, undecided, lowered, joined = found
        if not undecided and not lowered:
            return unsafe
        bad = set(unsafe)
        for key in undecided:
            if not check(key, state):
                bad.add(key)
        if lowered:
            actors = needles(state)
            if actors is None or any(actor in joined for actor in actors):
                for key, _ in lowered:
                    if not check(key, state):
                        bad.add(key)
        return bad

    check.rejected = rejected
    return check
