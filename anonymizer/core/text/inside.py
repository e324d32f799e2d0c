"""Known people *inside* a value that a shape or a URL rule keeps as written.

``keep`` and ``scrub_url`` keep ids, keys, host names and event names when they have the shape of
one. A shape says nothing of who is named inside it: ``block-v1:Org+C+R+type@problem+block@zelda-q_1``
is a valid usage key, ``zelda-q.example.org`` a valid host name, ``i4x:zelda-q`` a valid segment.
``PeopleInside`` tells whether such a value names a known person (of the roster or learned from
the inputs) in one of its parts, so that the operator fails closed on the whole value:

- a **username**, found by the roster's Aho-Corasick automaton (``mentions.PeopleFinder``) with
  the boundary ``verify`` uses: not glued to a letter or digit on either side; ``_``, ``-``,
  ``.``, ``+``, ``@``, ``:`` and ``/`` around it do not hide it;
- a **user id** of ``ID_MIN_DIGITS`` digits or more, not glued to an ASCII letter or digit, as
  ``verify`` reads an id alone in text.

The guard, so that course words do not make every key "hold a person": a username is searched
*inside* a value only when it is at least ``MIN_LENGTH`` characters long (``verify``'s rule for
a value it searches as a substring: ``edx``, ``demo`` are too short), is not one of ``verify``'s
common words (``course``, ``problem``, ``staff``), not a route word or block type of the URL
vocabulary (``anonymizer/data/url_routes.yaml``: ``courseware``, ``discussion``, ``html``), and
not one of the text scrubber's common words or the policy's ``roster.common_words`` (those are
not in the automaton at all). Such a username is still matched when it is the *whole* value, as
before. A policy whose course keys hold an organization code that is also a learner's username
keeps those keys by adding the code to ``roster.common_words``.

Verdicts are memoized per distinct value (bounded): ids and keys recur in every event.
"""

from __future__ import annotations

import re
import unicodedata

from ...verify.forms import COMMON_WORDS, searched_as_substring
from ..url_routes import default_rules
from .mentions import fold

# verify's lengths: a username shorter than this (ASCII characters; a CJK character counts three)
# is searched as a whole value only, and a user id shorter than ID_MIN_DIGITS too.
MIN_LENGTH = 6
ID_MIN_DIGITS = 5
_ID = re.compile(rf"(?<![A-Za-z0-9])[0-9]{{{ID_MIN_DIGITS},}}(?![A-Za-z0-9])")
_MEMO_LIMIT = 1 << 16


class PeopleInside:
    """Whether a kept value names a known person in one of its parts; built once per operator."""

    def __init__(self, roster, rules, words: frozenset[str] | None = None) -> None:
        self._finder = roster.finder(rules)
        self._by_id = roster.by_id
        self._words = default_rules().words if words is None else words
        self._searched: dict[str, bool] = {}  # canonical username -> whether the guard lets it count inside
        self._memo: dict[str, bool] = {}

    def searched_inside(self, username: str) -> bool:
        """Whether USERNAME counts when it is a part of a value, not the whole (the guard above)."""
        found = self._searched.get(username)
        if found is None:
            folded = fold(username)
            core = folded.strip("_-.")
            found = self._searched[username] = (
                searched_as_substring(core)
                and folded not in self._words
                and core not in self._words
                and core not in COMMON_WORDS
            )
        return found

    def __call__(self, text: str) -> bool:
        """Whether TEXT holds a known username or user id standing alone in it."""
        found = self._memo.get(text)
        if found is None:
            found = self._holds(text)
            if len(self._memo) >= _MEMO_LIMIT:
                self._memo.clear()
            self._memo[text] = found
        return found

    def _holds(self, text: str) -> bool:
        if self._by_id and any(match.group() in self._by_id for match in _ID.finditer(text)):
            return True
        if not text.isascii():
            text = unicodedata.normalize("NFC", text)
        return any(self.searched_inside(username) for username in self._finder.usernames_in(text))


def people_inside(roster, rules, words: frozenset[str] | None = None) -> PeopleInside | None:
    """The check for ROSTER's people under the policy's roster RULES, or None when the run knows
    no one (then nothing is searched and nothing costs)."""
    if roster is None or rules is None or not len(roster):
        return None
    return PeopleInside(roster, rules, words)
