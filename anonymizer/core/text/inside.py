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
a value it searches as a substring: ``edx``, ``demo`` are too short), is not one of the words of
the logs themselves (``course``, ``problem``, ``staff``: ``PLATFORM_WORDS``), not a route word or block type of the URL
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

from ..url_routes import default_rules
from .mentions import fold

# verify's lengths (``verify.forms``, ``verify.scan``; a test keeps them in step): a username
# shorter than MIN_LENGTH (a CJK character counts three) is searched as a whole value only, and
# a user id shorter than ID_MIN_DIGITS too.
MIN_LENGTH = 6
NUMERIC_MIN_LENGTH = 10  # a username of digits only: shorter ones are numbers of every kind
ID_MIN_DIGITS = 5
# Words of the logs themselves (enrollment modes, roles, event sources, device classes,
# placeholders) that verify checks in identifier fields only, as usernames: a test keeps this
# list a superset of verify's.
PLATFORM_WORDS = frozenset(
    """
    honor audit verified professional credit masters executive-education no-id-professional
    staff student learner instructor admin administrator teacher beta_tester moderator
    anonymous unknown other none null true false test tester demo guest user username
    server browser mobile desktop tablet robot bot android iphone ipad windows linux
    chrome firefox safari edge opera course problem video forum default
    """.split()
)
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
                _long_enough(core) and not {folded, core} & self._words and core not in PLATFORM_WORDS
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


def _long_enough(username: str) -> bool:
    """As verify counts a value it searches as a substring: a CJK character says about as much
    as a syllable, so it counts three."""
    if username.isascii():
        return len(username) >= (NUMERIC_MIN_LENGTH if username.isdigit() else MIN_LENGTH)
    return sum(3 if ord(ch) >= 0x2E80 else 1 for ch in username) >= MIN_LENGTH


def people_inside(roster, rules, words: frozenset[str] | None = None) -> PeopleInside | None:
    """The check for ROSTER's people under the policy's roster RULES, or None when the run knows
    no one (then nothing is searched and nothing costs)."""
    if roster is None or rules is None or not len(roster):
        return None
    return PeopleInside(roster, rules, words)
