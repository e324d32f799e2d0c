"""Other spellings of a known identifier: a username written with other separators, and an
email's local part written alone.

A username written with other separators: ``_ymir_balder77_`` as ``ymir-balder77``,
``ymir.balder77``, ``Ymir Balder77`` or ``ymirbalder77``.

People retype a handle the way they would say it. A username is split into its runs of letters
and digits at ``_``, ``-``, ``.`` and spaces (the separators the platform allows); a *variant*
joins the same runs, in order and ignoring case, with any one of those separators or none at
each junction (with none only where the runs joined are distinctive on their own: a digit among
them, or ``MIN_JOINED`` letters: ``ana.lee`` is not ``Analee``, a name of its own). Variants are
matched only for a username that is distinctive enough:

- two runs or more (a single run has no other spelling);
- at least ``MIN_CORE`` letters and digits in all (``a_b`` as ``ab`` would be found everywhere);
- not digits only (``12-34-56`` is a date or a phone as often as a username);
- the runs joined are not a common word, and not every run is one (``will_power``'s ``will
  power`` is prose; ``mark_young77`` is not): ``anonymizer/data/common_words.txt`` plus the
  policy's own.

An email's local part alone (``zq.1999`` for ``zq.1999@example.org``; also ``q.harrow`` for
``q.harrow+edx@…``) is found when it is distinctive on its own: at least ``MIN_CORE`` letters
and digits, a digit or a separator (``.``, ``_``, ``-``, ``+``) among them, no other character
(``input_2_1=send`` is a query that ran into an address), not digits only, and not a common
word with its separators removed (``local_parts``).

The boundary is ``glue.stands_alone``'s, as for the username itself. Shared by the roster's
matcher (``mentions``), the event's own usernames (``scrub_text``) and ``verify`` (``forms``).
"""

from __future__ import annotations

import re
from functools import lru_cache

MIN_CORE = 6
MIN_JOINED = 8
SEPARATORS = "_-. "
_RUNS = re.compile(r"[^\W_]+")
_ONLY_SEPARATORS = re.compile(r"[_\-. ]*")
_LOCAL = re.compile(r"[\w.+\-]{1,64}")


def runs(username: str, common: frozenset[str] = frozenset()) -> tuple[str, ...] | None:
    """The runs of letters and digits of USERNAME (case-folded) when its variants are matched
    (see the module's docstring), else None. COMMON: case-folded words too common to count."""
    folded = username.casefold()
    found = tuple(_RUNS.findall(folded))
    if len(found) < 2:
        return None
    # Every character between the runs must be a separator: ``a+b`` or ``a@b`` has no variants.
    gaps = _RUNS.split(folded)
    if not all(_ONLY_SEPARATORS.fullmatch(gap) for gap in gaps):
        return None
    core = "".join(found)
    if len(core) < MIN_CORE or core.isdigit():
        return None
    if core in common or all(run in common for run in found):
        return None
    return found


def joinable(found: tuple[str, ...]) -> bool:
    """Whether the runs FOUND are also matched with nothing between them."""
    core = "".join(found)
    return len(core) >= MIN_JOINED or any(ch.isdigit() for ch in core)


@lru_cache(maxsize=65536)
def _pattern(found: tuple[str, ...]) -> re.Pattern[str]:
    junction = "[_\\-. ]?" if joinable(found) else "[_\\-. ]"
    return re.compile(junction.join(re.escape(run) for run in found), re.IGNORECASE)


def pattern(found: tuple[str, ...]) -> re.Pattern[str]:
    """A case-insensitive pattern for every variant of the username whose runs are FOUND."""
    return _pattern(found)


def squeezed(text: str) -> str:
    """TEXT lower-cased (ASCII) without separators: a variant's squeezed form is its runs joined,
    so a text that does not hold it squeezed holds no variant (the native engine's quick test)."""
    return text.lower().translate(_SQUEEZE)


_SQUEEZE = str.maketrans("", "", SEPARATORS)


def spellings(found: tuple[str, ...]) -> list[str]:
    """The variants with one separator throughout (or none, when ``joinable``): what ``verify`` searches."""
    return [sep.join(found) for sep in ("_", "-", ".", " ", "") if sep or joinable(found)]


def local_parts(email: str, common: frozenset[str] = frozenset()) -> list[str]:
    """The local parts of EMAIL (the whole, and the part before a ``+`` tag) that are found alone
    in text: see the module's docstring. Case-folded."""
    local = email.rpartition("@")[0].casefold()
    if not _LOCAL.fullmatch(local):
        return []  # "=", "/", "!" ...: a query or a path that ran into an address, not a name
    found = []
    for part in dict.fromkeys((local, local.partition("+")[0])):
        core = "".join(_RUNS.findall(part))
        if len(core) < MIN_CORE or core.isdigit() or core in common:
            continue
        if core != part.strip("_-.+") or any(ch.isdigit() for ch in core):
            found.append(part)
    return found
