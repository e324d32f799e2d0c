"""Finding the people of a roster in free text: usernames, @mentions, names, emails and user ids.

Every identifier of every person goes into one Aho-Corasick automaton, built once per run, so a
text is searched for 100,000 people in one pass. Text and keys are compared in a folded form:
NFC, case-folded one character for one (offsets still point into the text), and every character
that is not a letter or digit turned into a space, with a space added at each end. Keys carry
those spaces too, so the automaton reports only whole-word occurrences: ``ana`` is never found
inside ``banana``. What the folding loses is checked afterwards on the text itself:

- a **username** must equal the text exactly, ignoring case, and not be glued to a letter or
  digit of the same kind on either side (verify's boundary, ``glue``): punctuation around it,
  ``_``, ``-`` and ``.`` included, does not hide it, nor do Chinese, Japanese or Cyrillic
  letters (``请联系zelda-q谢谢``; the folded text has a space wherever two scripts meet) (``Sample_ann.lee_2``; ``_ymir_`` and ``zelda-q`` are found where
  ``\\b`` fails);
  A username is also found written with other separators or none (``ymir-balder77``,
  ``ymir balder77``, ``ymirbalder77`` for ``_ymir_balder77_``) when it is distinctive enough
  (``anonymizer.core.text.variants``);
- an **email** must equal the text, ignoring case; its local part alone (``zq.1999``) is an
  email too when it is distinctive (``variants.local_parts``); Only the addresses the email detector would
  miss need keys: it runs first and finds every well-formed one;
- a **name** matches whatever separates its words (``O'Brien-Kelly``, ``O’Brien Kelly``), also
  without accents (``Oyvind Aero``) and without apostrophes (``OBrien``).

Names are matched by part (``Zelda``, ``Quintero``; ``O'Brien-Kelly``, ``O'Brien`` and ``Kelly``),
and whole (``Grace Park``, also without middle names) when some part is not found alone. A part
is matched alone only when it is identifying: at least ``name_min_length`` letters or digits, and
not a common word (``anonymizer/data/common_words.txt`` plus the policy's own). Names in scripts
written without spaces (Chinese, Japanese, Korean, Thai) match from two characters, anywhere.

``@handle`` is replaced when the handle is a known username, whatever its length. Digit runs of
at least ``user_id_min_digits`` digits that equal a roster user id (also zero-padded), standing
alone as ``glue.number_alone`` reads a number (``#530114``, ``uid:530114``, ``No.530114``; not part
of a decimal, a version, a price, a longer number or an identifier), become ``[USER_ID]``.

Where hits overlap, the leftmost wins, then the longest, then mention, username, email, user id, name.
"""

from __future__ import annotations

import gc
import re
from bisect import bisect_left
import unicodedata
from functools import lru_cache
from importlib import resources
from typing import Callable

import ahocorasick_rs

from . import variants
from .detectors import EMAIL_PATTERN
from .glue import number_alone, splits, stands_alone, unspaced

NAME = "name"
USERNAME = "username"
MENTION = "mention"
EMAIL = "email"
USER_ID = "user_id"
VARIANT = "username variant"  # a key's entry only: its hits are usernames
PLACEHOLDERS = {NAME: "[NAME]", EMAIL: "[EMAIL]", USER_ID: "[USER_ID]"}
_PRIORITY = {MENTION: 0, USERNAME: 1, EMAIL: 2, USER_ID: 3, NAME: 4}

_NON_WORD = re.compile(r"[\W_]")
_APOSTROPHES = str.maketrans("", "", "'’ʼ‘`´")
# Letters that NFKD leaves alone, spelled the way people type them without the key.
_TRANSLITERATE = str.maketrans({"ø": "o", "æ": "ae", "œ": "oe", "ß": "ss", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ı": "i"})
_MENTION = re.compile(r"(?<![\w.+\-])@([\w.\-]+)")
_DIGIT = re.compile(r"\d")
_WORD_RUN = re.compile(r"[^\W_]{2,}")
_PLACEHOLDER_TEXT = {"[NAME]", "[EMAIL]", "[USER_ID]", "[PHONE]", "[URL]", "[IP]"}


def fold(text: str) -> str:
    """TEXT case-folded one character for one, so that offsets still point into TEXT."""
    folded = text.casefold()
    if len(folded) == len(text):  # every character folds to at least one: equal length means one each
        return folded
    out = []
    for ch in text:
        for candidate in (ch.casefold(), ch.lower()):
            if len(candidate) == 1:
                out.append(candidate)
                break
        else:
            out.append(ch)
    return "".join(out)


def strip_accents(text: str) -> str:
    """Øyvind Ærø → oyvind aero (on folded text)."""
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text.translate(_TRANSLITERATE))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _words(text: str) -> str:
    return _NON_WORD.sub(" ", text)


def _alnum_count(text: str) -> int:
    return len(text) - len(_NON_WORD.findall(text))


@lru_cache(maxsize=1)
def default_common_words() -> frozenset[str]:
    """The shipped list of words too common to identify anyone alone."""
    text = resources.files("anonymizer").joinpath("data/common_words.txt").read_text(encoding="utf-8")
    words = set()
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        words.update(fold(w) for w in line.split())
    return frozenset(words)


class PeopleFinder:
    """Finds the identifiers of a roster's people in text; built once, used from many threads."""

    def __init__(self, roster, rules) -> None:
        self.roster = roster
        self.min_length = rules.name_min_length
        common = set(default_common_words()) if rules.default_common_words else set()
        common.update(fold(w.strip()) for w in rules.common_words)
        self.common = frozenset(common)
        self.all_usernames = rules.usernames == "all"
        # A user id in text: a whole run of digits that equals a roster id, also zero-padded
        # (``0530114``), standing alone as ``glue.number_alone`` reads a number.
        self.id_min_digits = rules.user_id_min_digits
        self.id_pattern = (
            re.compile(rf"(?<![0-9])[0-9]{{{rules.user_id_min_digits},}}(?![0-9])")
            if rules.user_id_min_digits > 0 and roster.by_id
            else None
        )
        collecting = gc.isenabled()
        gc.disable()  # hundreds of thousands of small objects: collections would only slow the build
        try:
            self._build()
        finally:
            if collecting:
                gc.enable()

    # ---------------------------------------------------------------- building

    def identifying(self, part: str) -> bool:
        """Whether a name part (or a username) may be matched on its own."""
        folded = fold(part)
        if all(unspaced(ch) for ch in folded if not ch.isspace()):
            return _alnum_count(folded) >= 2
        if _alnum_count(folded) < self.min_length:
            return False
        squeezed = folded.translate(_APOSTROPHES)
        return not ({folded, squeezed, strip_accents(folded), strip_accents(squeezed)} & self.common) and not (
            squeezed.isdecimal() and len(squeezed) < 6
        )

    def _build(self) -> None:
        names: set[str] = set()  # folded keys of names: a hit needs no further check
        others: dict[str, dict] = {}  # folded key → {(kind, verify): canonical} for usernames and emails

        def keys_of(text: str, whole: bool) -> tuple[str, ...]:
            folded = fold(unicodedata.normalize("NFC", text))
            if not folded.strip():
                return ()
            if not folded.isascii() and all(unspaced(ch) for ch in folded if not ch.isspace()):
                return (_words(folded).strip(),) if _alnum_count(folded) >= 2 else ()
            variants = {folded, folded.translate(_APOSTROPHES)}
            variants |= {strip_accents(v) for v in variants}
            return tuple(_key(_words(v)) for v in variants if (whole or self.identifying(v)) and _alnum_count(v))

        def add(key: str, kind: str, verify: str, canonical: str | None = None) -> None:
            if key.strip():
                others.setdefault(key, {}).setdefault((kind, verify), canonical)

        # Distinct strings first: first names and surnames recur across thousands of people.
        wholes: set[str] = set()
        part_keys: dict[str, tuple[str, ...]] = {}
        strip_chars = ".,;:()[]{}\"'*“”‘’"
        for person in self.roster.people:
            for name in person.names:
                tokens = name.split()
                found_alone = True
                for token in tokens:
                    token = token.strip(strip_chars)
                    keys = part_keys.get(token)
                    if keys is None:
                        keys = part_keys[token] = keys_of(token, False)
                    if "-" in token:
                        for piece in token.split("-"):
                            if piece not in part_keys:
                                part_keys[piece] = keys_of(piece, False)
                    found_alone = found_alone and bool(keys)
                # A whole name is a key of its own only when some part of it is not found alone
                # ("Grace Park"): otherwise its parts already cover it.
                if len(tokens) > 1 and not found_alone:
                    wholes.add(name)
                    if len(tokens) > 2:
                        wholes.add(f"{tokens[0]} {tokens[-1]}")
        for keys in part_keys.values():
            names.update(keys)
        for whole in wholes:
            names.update(keys_of(whole, True))
        for person in self.roster.people:
            for username in person.usernames:
                folded = fold(unicodedata.normalize("NFC", username))
                if self.all_usernames or self.identifying(folded.strip("_-.")):
                    add(_key(_words(folded)), USERNAME, folded, username)
                    core = folded.strip("_-.")
                    if core != folded and core:
                        # ``_ann_`` glued to letters (``x_ann_y``): its core is keyed, and a hit
                        # counts when the edges around the core are the username's own.
                        add(_key(_words(core)), USERNAME, folded, username)
                    found = variants.runs(folded, self.common)
                    if found is not None:
                        # Written with other separators or none (``ymir-balder77``, ``ymirbalder77``).
                        pattern = variants.pattern(found)
                        add(_key(" ".join(found)), VARIANT, pattern, username)
                        if variants.joinable(found):
                            add(_key("".join(found)), VARIANT, pattern, username)
            for external in person.external_ids:
                # An external id (an xAPI actor's account name) names the person as a username
                # does: it becomes their username pseudonym, or [EMAIL] for a person without one.
                folded = fold(external.strip())
                if _alnum_count(folded) >= 8:
                    if person.usernames:
                        add(_key(_words(folded)), USERNAME, folded, person.usernames[0])
                    else:
                        add(" " + _words(folded) + " ", EMAIL, folded)
            for email in person.emails:
                # The email detector runs first and finds every well-formed address (also with
                # %40 for @); only the addresses it would miss need keys of their own.
                if not EMAIL_PATTERN.fullmatch(email):
                    folded = fold(email)
                    add(" " + _words(folded) + " ", EMAIL, folded)
                # Its local part alone (``zq.1999``), when distinctive (``variants.local_parts``).
                for local in variants.local_parts(fold(unicodedata.normalize("NFC", email)), self.common):
                    add(_key(_words(local)), EMAIL, local)
        # Value of each key, by its index: (whether the key carries a boundary space before,
        # after, is it a name, other entries).
        keys: list[str] = []
        values: list[tuple[bool, bool, bool, tuple]] = []
        for key in names:
            if key not in others:
                keys.append(key)
                values.append((key[0] == " ", key[-1] == " ", True, ()))
        for key, entries in others.items():
            listed = tuple((kind, verify, canonical) for (kind, verify), canonical in entries.items())
            keys.append(key)
            values.append((key[0] == " ", key[-1] == " ", key in names, listed))
        self.keys = len(keys)
        self._values = values
        self._automaton = ahocorasick_rs.AhoCorasick(keys, matchkind=ahocorasick_rs.MatchKind.Standard) if keys else None

    # ---------------------------------------------------------------- matching

    def _hits(self, text: str, user_ids: bool = True) -> list[tuple[int, int, str, str | None]]:
        """(start, end, kind, canonical username) of every candidate hit in TEXT (already NFC)."""
        hits: list[tuple[int, int, str, str | None]] = []
        if "@" in text:
            person_for = self.roster.person_for
            for match in _MENTION.finditer(text):
                handle = match.group(1)
                while handle:
                    person = person_for(handle)
                    if person is not None and person.usernames:
                        folded = handle.casefold()
                        canonical = next((u for u in person.usernames if u.casefold() == folded), person.usernames[0])
                        hits.append((match.start(), match.start() + 1 + len(handle), MENTION, canonical))
                        break
                    if handle[-1] not in ".-_":
                        break
                    handle = handle[:-1]
        if self._automaton is not None:
            folded = fold(text)
            padded, inserted = _padded(text, folded)
            length = len(text)
            values = self._values
            # Offsets in PADDED are one more than in TEXT (its leading space), and one more
            # again after each space inserted at a boundary between scripts.
            for index, start, stop in self._automaton.find_matches_as_indexes(padded, overlapping=True):
                lead, trail, is_name, entries = values[index]
                # the key's inner span (without its boundary spaces)
                start, stop = start + lead, stop - trail
                if inserted:
                    start, stop = start - bisect_left(inserted, start), stop - bisect_left(inserted, stop - 1)
                start, stop = start - 1, stop - 1
                if start < 0 or stop > length or start >= stop:
                    continue
                if start > 0 and stop < length and text[start - 1] == "[" and text[stop] == "]" and f"[{text[start:stop]}]" in _PLACEHOLDER_TEXT:
                    continue
                if is_name:
                    hits.append((start, stop, NAME, None))
                for kind, verify, canonical in entries:
                    if kind == VARIANT:
                        if verify.fullmatch(folded, start, stop) and stands_alone(text, start, stop):
                            hits.append((start, stop, USERNAME, canonical))
                        continue
                    if folded[start:stop] == verify:
                        if kind == USERNAME and not stands_alone(text, start, stop):
                            continue
                        hits.append((start, stop, kind, canonical))
                    elif kind == USERNAME and len(verify) > stop - start:
                        lead = len(verify) - len(verify.lstrip("_-."))
                        begin, finish = start - lead, start - lead + len(verify)
                        if begin >= 0 and folded[begin:finish] == verify and stands_alone(text, begin, finish):
                            hits.append((begin, finish, kind, canonical))
        if user_ids and self.id_pattern is not None and _DIGIT.search(text):
            by_id = self.roster.by_id
            for match in self.id_pattern.finditer(text):
                digits = match.group().lstrip("0")
                if len(digits) >= self.id_min_digits and digits in by_id and number_alone(text, *match.span()):
                    hits.append((match.start(), match.end(), USER_ID, None))
        return hits

    def usernames_in(self, text: str) -> set[str]:
        """The canonical usernames found in TEXT (NFC) standing alone or as an ``@mention``:
        for ``inside``, which judges a kept id by the usernames inside it."""
        return {canonical for _, _, kind, canonical in self._hits(text, False) if kind in (USERNAME, MENTION)}

    def find(self, text: str, user_ids: bool = True) -> list[tuple[str, int, int]]:
        """(kind, start, end) of what would be replaced, in the NFC form of TEXT, leftmost first.
        Without USER_IDS, digit runs are not looked at (URL paths are full of numbers)."""
        text = unicodedata.normalize("NFC", text)
        return [(kind, start, end) for start, end, kind, _ in _resolve(self._hits(text, user_ids))]

    def scrub(self, text: str, username_pseudonym: Callable[[str], str], user_ids: bool = True) -> str:
        """TEXT with every hit replaced: usernames by USERNAME_PSEUDONYM(username), names by
        ``[NAME]``, emails by ``[EMAIL]``, user ids by ``[USER_ID]``. Unchanged when nothing is found."""
        if not unicodedata.is_normalized("NFC", text):
            normalized = unicodedata.normalize("NFC", text)
        else:
            normalized = text
        hits = self._hits(normalized, user_ids)
        if not hits:
            return text
        out = []
        position = 0
        for start, end, kind, canonical in _resolve(hits):
            out.append(normalized[position:start])
            if kind == MENTION:
                out.append("@" + username_pseudonym(canonical))
            elif kind == USERNAME:
                out.append(username_pseudonym(canonical))
            else:
                out.append(PLACEHOLDERS[kind])
            position = end
        out.append(normalized[position:])
        return "".join(out)


    def replacements(self, text: str, username_pseudonym: Callable[[str], str], user_ids: bool = True) -> list[tuple[int, int, str]]:
        """(start, end, replacement) of what ``scrub`` would replace in TEXT, which must be NFC
        already: for callers that replace the spans in another text that TEXT is a view of."""
        out = []
        for start, end, kind, canonical in _resolve(self._hits(text, user_ids)):
            if kind == MENTION:
                out.append((start, end, "@" + username_pseudonym(canonical)))
            elif kind == USERNAME:
                out.append((start, end, username_pseudonym(canonical)))
            else:
                out.append((start, end, PLACEHOLDERS[kind]))
        return out


def _key(words: str) -> str:
    """The automaton's key for WORDS: a boundary space at each end, except beside a character of
    a script written without spaces, which needs none (``王芳_wf`` in ``电话王芳_wf吗``)."""
    before = "" if words[:1] and unspaced(words[0]) else " "
    after = "" if words[-1:] and unspaced(words[-1]) else " "
    return before + words + after


def _padded(text: str, folded: str) -> tuple[str, list[int]]:
    """FOLDED with every character that is not a letter or digit turned into a space, a space
    at each end, and a space inserted where two letters or digits of TEXT meet that do not glue
    (``请联系zelda`` → `` 请联系 zelda ``: see ``glue``); with the padded offsets of the
    inserted spaces, in order."""
    words = _words(folded)
    if text.isascii():
        return " " + words + " ", []
    cuts = []
    for run in _WORD_RUN.finditer(text):
        token = run.group()
        if token.isascii():
            continue
        base = run.start()
        for offset in range(1, len(token)):
            before, after = token[offset - 1], token[offset]
            if (not before.isascii() or not after.isascii()) and splits(before, after):
                cuts.append(base + offset)
    if not cuts:
        return " " + words + " ", []
    pieces, inserted, previous = [" "], [], 0
    for number, cut in enumerate(cuts):
        pieces.append(words[previous:cut])
        pieces.append(" ")
        inserted.append(cut + 1 + number)
        previous = cut
    pieces.append(words[previous:])
    pieces.append(" ")
    return "".join(pieces), inserted


def _resolve(hits: list[tuple[int, int, str, str | None]]) -> list[tuple[int, int, str, str | None]]:
    """Non-overlapping hits: leftmost first, then longest, then by kind."""
    hits.sort(key=lambda hit: (hit[0], hit[0] - hit[1], _PRIORITY[hit[2]]))
    chosen = []
    end = -1
    for hit in hits:
        if hit[0] >= end:
            chosen.append(hit)
            end = hit[1]
    return chosen
