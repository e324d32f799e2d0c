"""``scrub_text``: remove personal data from free text, keeping the rest of the prose.

In this order, so that no step sees half of what an earlier one replaced:

1. Detectors (``email``, ``url``, ``ip``, ``phone``) replace what they find with typed
   placeholders (``[EMAIL]``, ``[URL]`` ...); phone numbers are checked against the numbering
   plans of ``phone_regions``.
2. With a roster (``--roster``) and ``roster`` (the default), every known person is found (see
   ``anonymizer.core.text.mentions``): usernames and ``@mentions`` become that person's username pseudonym,
   names ``[NAME]``, emails ``[EMAIL]``, user ids ``[USER_ID]``.
3. With ``actor_usernames`` (the default), the usernames the event itself names (its actor,
   ``context.username``) are replaced by their pseudonyms, matched case-insensitively and not glued
   to a letter or digit of the same kind (``anonymizer.core.text.glue``), so ``_ymir_`` and
   ``zelda-q`` are found where ``\\b`` would fail, and also in Chinese or Japanese text. This finds
   actors that no roster lists.

Disguised text (HTML entities, percent-encoding, JSON escapes, fullwidth and other compatibility
forms, invisible characters, look-alike letters, Markdown escapes and emphasis, HTML tags, see
``anonymizer.core.text.textnorm``) is decoded into a view; all three steps run on the view, and
what they find is replaced in the original text, never in the view, which is not output. A text
that decodes to itself takes the direct path, at no extra cost.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from pydantic import BaseModel, ConfigDict, field_validator

from ..text import textnorm, variants
from ..text.detectors import DEFAULT_PHONE_REGIONS, KINDS, TextScrubber
from ..errors import shown
from ..text.glue import stands_alone
from ..text.mentions import default_common_words, fold
from .base import DROP, Operator, register
from .pseudonymize import make_pseudonymizer


class ScrubTextParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    detectors: list[str] = list(KINDS)
    actor_usernames: bool = True
    roster: bool = True
    phone_regions: list[str] = list(DEFAULT_PHONE_REGIONS)

    @field_validator("phone_regions")
    @classmethod
    def _regions(cls, value: list[str]) -> list[str]:
        unknown = [shown(region) for region in value if region not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            raise ValueError(f"unknown phone region(s) {', '.join(unknown)}; expected two-letter region codes such as 'US', 'GB', 'IN'")
        return value

    @field_validator("detectors")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [shown(kind) for kind in value if kind not in KINDS]
        if unknown:
            raise ValueError(f"unknown detector(s) {', '.join(unknown)}; expected some of {list(KINDS)}")
        return value


@lru_cache(maxsize=65536)
def username_pattern(username: str) -> re.Pattern[str]:
    """A case-insensitive pattern for USERNAME anywhere; ``username_spans`` keeps the places
    where it stands alone (``glue.stands_alone``)."""
    return re.compile(re.escape(username), re.IGNORECASE)


def username_spans(text: str, username: str, common: frozenset[str] = frozenset()) -> list[tuple[int, int]]:
    """(start, end) of each place where USERNAME stands alone in TEXT, ignoring case, and of
    each of its variants with other separators (``anonymizer.core.text.variants``; COMMON: the
    words too common to count), leftmost first, not overlapping.

    The boundary is ``verify``'s (``glue.stands_alone``): an underscore, dot or hyphen next to a
    username does not make it another word, so ``Sample_ann.lee_2`` and ``ann.lee.org`` give
    ``ann.lee`` away; a letter or digit of the same kind next to an end of the username that is
    itself a letter or digit does (the username is part of a longer word, and is left alone),
    a character of a script written without spaces (``请联系zelda-q谢谢``) or of another script
    does not. For ASCII text and username, a scan of the lower-cased text (compiling a pattern
    costs far more than scrubbing a text); otherwise the pattern, whose case-insensitive
    matching also pairs ``ı``/``I``, ``ſ``/``s``, ``ς``/``σ`` and others that lower-casing does not.
    """
    spans = _exact_spans(text, username)
    found = variants.runs(username, common)
    if found is None or (text.isascii() and variants.squeezed("".join(found)) not in variants.squeezed(text)):
        return spans
    more = _pattern_spans(text, variants.pattern(found))
    if not more:
        return spans
    chosen, end = [], -1
    for start, stop in sorted(spans + more, key=lambda span: (span[0], -span[1])):
        if start >= end:
            chosen.append((start, stop))
            end = stop
    return chosen


def _pattern_spans(text: str, pattern: re.Pattern[str]) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    search = pattern.search
    match = search(text)
    while match is not None:
        start, end = match.span()
        if stands_alone(text, start, end):
            spans.append((start, end))
            match = search(text, end)
        else:
            match = search(text, start + 1)
    return spans


def _exact_spans(text: str, username: str) -> list[tuple[int, int]]:
    """(start, end) of each place where USERNAME itself stands alone in TEXT, ignoring case."""
    if not (text.isascii() and username.isascii()):
        return _pattern_spans(text, username_pattern(username))
    spans: list[tuple[int, int]] = []
    low, needle = text.lower(), username.lower()
    size = len(needle)
    start = low.find(needle)
    while start >= 0:
        end = start + size
        if stands_alone(text, start, end):
            spans.append((start, end))
            start = low.find(needle, end)
        else:
            start = low.find(needle, start + 1)
    return spans


def may_hold(text: str, username: str) -> bool:
    """Whether TEXT may hold USERNAME or a variant of it: a quick test, exact for ASCII (the
    username lower-cased in the text so read, or each of its runs of letters and digits, which
    every variant holds). The native engine asks for the actors' step more widely still: where
    the username's letters and digits, without separators, are in the text so read."""
    if not (username.isascii() and text.isascii()):
        return True
    low = text.lower()
    if username.lower() in low:
        return True
    found = _variant_runs(username)
    return found is not None and all(run in low for run in found)


@lru_cache(maxsize=65536)
def _variant_runs(username: str) -> tuple[str, ...] | None:
    """The runs of USERNAME if it may have variants (whatever the common words: the spans decide)."""
    return variants.runs(username)


def replace_username(text: str, username: str, pseudonym: str, common: frozenset[str] = frozenset()) -> str:
    """TEXT with USERNAME and its variants, where they stand alone (``username_spans``), replaced by PSEUDONYM."""
    spans = username_spans(text, username, common)
    return textnorm.apply(text, [(start, end, pseudonym) for start, end in spans]) if spans else text


_MEMO_ENTRIES = 1 << 15
_MEMO_TEXT_CHARS = 256  # long texts rarely recur; keeping them would only cost memory


@register
class ScrubText(Operator):
    name = "scrub_text"
    data = ("common_words",)  # with a roster: words too common to find a person by
    pure = False  # it reads the event's own usernames from the EventState
    Params = ScrubTextParams

    @classmethod
    def build(cls, params, ctx):
        detectors = TextScrubber(tuple(params.detectors), tuple(params.phone_regions))
        scrub, detector_spans = detectors.scrub, detectors.spans
        if params.roster and ctx.roster is not None and ctx.roster_rules is not None:
            finder = ctx.roster.finder(ctx.roster_rules)
            known = make_pseudonymizer(ctx.identity("username"), ctx.pseudonymizer)
            find_people, people_spans = finder.scrub, finder.replacements
            people_pseudonym = lambda username: str(known(username, None))  # noqa: E731
        else:
            find_people = people_spans = None
        if params.actor_usernames and "username" in ctx.identities:
            to_pseudonym = make_pseudonymizer(ctx.identity("username"), ctx.pseudonymizer)
        else:
            to_pseudonym = None
        # Words too common for a username's variants to count: the roster's rule, or the shipped list.
        rules = ctx.roster_rules
        common = frozenset(default_common_words()) if rules is None or rules.default_common_words else frozenset()
        if rules is not None:
            common |= frozenset(fold(w.strip()) for w in rules.common_words)

        def scrub_view(text: str, view: textnorm.View) -> str:
            """TEXT with what the detectors and the roster find in its decoded VIEW replaced."""
            found = detector_spans(view.text)
            replacements = [(*view.origin(start, end), new) for start, end, new in found]
            if people_spans is not None:
                # The roster reads the view with the detectors' findings in place, as it reads
                # the plain text, so that it never sees half of an address.
                seen = textnorm.rebuild(view, found) if found else view
                replacements += [(*seen.origin(start, end), new) for start, end, new in people_spans(seen.text, people_pseudonym)]
            return textnorm.apply(text, replacements)

        def replace_actors_in_view(text: str, actors, state) -> str:
            """TEXT with the ACTORS' usernames, found in its decoded view, replaced."""
            view = textnorm.decode(text) or textnorm.identity(text)
            replacements = []
            for username in actors:
                if len(username) >= 2:
                    pseudonym = to_pseudonym(username, state)
                    replacements += [(*view.origin(start, end), pseudonym) for start, end in username_spans(view.text, username, common)]
            return textnorm.apply(text, replacements)

        # The detectors and the roster depend on the text alone, so their result is memoized per
        # text (answers such as "choice_1" recur endlessly), with whether the text was disguised;
        # the actor's usernames, which depend on the event, are replaced afterwards.
        memo: dict[str, tuple[str, bool]] = {}

        def text_part(text: str) -> tuple[str, bool]:
            """TEXT with what the detectors and the roster find replaced, and whether it was
            disguised: what depends on the text alone (the event's actors are replaced after)."""
            entry = memo.get(text)
            if entry is None:
                view = textnorm.decode(text)
                if view is None:
                    result = scrub(text)
                    if find_people is not None:
                        result = find_people(result, people_pseudonym)
                else:
                    # The decoded view and the text as written can read differently (is ``\\t``
                    # an escape or a backslash before a ``t``?): both are scrubbed.
                    result = scrub(scrub_view(text, view))
                    if find_people is not None:
                        result = find_people(result, people_pseudonym)
                entry = (result, view is not None)
                if len(text) <= _MEMO_TEXT_CHARS:
                    if len(memo) >= _MEMO_ENTRIES:
                        memo.clear()
                    memo[text] = entry
            return entry

        def scrub_text(value, state):
            kind = type(value)
            if kind is str:
                text = value
            elif kind is int or kind is float:
                text = str(value)
            elif kind is bool:
                return value
            else:
                return DROP
            result, disguised = text_part(text)
            if to_pseudonym is not None and state.actors:
                if disguised:
                    result = replace_actors_in_view(result, state.actors, state)
                for username in state.actors:  # in the text as written (and, above, as decoded)
                    if len(username) < 2:
                        continue
                    # A quick test, exact for ASCII; elsewhere the pattern decides.
                    if may_hold(result, username):
                        result = replace_username(result, username, to_pseudonym(username, state), common)
            if kind is not str:
                return value if result == text else result
            return result

        # For the native engine, which runs the actors' step itself where it is a plain search.
        scrub_text.text_part = text_part
        scrub_text.replaces_actors = to_pseudonym is not None
        scrub_text.memo_text_chars = _MEMO_TEXT_CHARS
        return scrub_text
