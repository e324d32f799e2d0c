"""``scrub_text``: remove personal data from free text, keeping the rest of the prose.

In this order, so that no step sees half of what an earlier one replaced:

1. Detectors (``email``, ``url``, ``ip``, ``phone``) replace what they find with typed
   placeholders (``[EMAIL]``, ``[URL]`` ...); phone numbers are checked against the numbering
   plans of ``phone_regions``.
2. With a roster (``--roster``) and ``roster`` (the default), every known person is found (see
   ``anonymizer.mentions``): usernames and ``@mentions`` become that person's username pseudonym,
   names ``[NAME]``, emails ``[EMAIL]``, user ids ``[USER_ID]``.
3. With ``actor_usernames`` (the default), the usernames the event itself names (its actor,
   ``context.username``) are replaced by their pseudonyms, matched case-insensitively and bounded
   by characters that cannot be part of a username, so ``_ymir_`` and ``zelda-q`` are found where
   ``\\b`` would fail. This finds actors that no roster lists.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from pydantic import BaseModel, ConfigDict, field_validator

from ..detectors import DEFAULT_PHONE_REGIONS, KINDS, TextScrubber
from ..errors import shown
from ..mentions import stands_alone
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
    """A case-insensitive pattern for USERNAME standing alone (not inside a longer handle or word)."""
    return re.compile(r"(?<![\w\-.])" + re.escape(username) + r"(?![\w\-]|\.\w)", re.IGNORECASE)


def replace_username(text: str, username: str, pseudonym: str) -> str:
    """TEXT with USERNAME, where ``username_pattern`` matches it, replaced by PSEUDONYM.

    For ASCII text and username, a scan of the lower-cased text, which finds exactly what the
    pattern finds (compiling a pattern costs far more than scrubbing a text); otherwise the
    pattern itself, whose case-insensitive matching also pairs ``ı``/``I``, ``ſ``/``s``, ``ς``/``σ``
    and others that lower-casing does not.
    """
    if not (text.isascii() and username.isascii()):
        pattern = username_pattern(username)
        return pattern.sub(lambda match: pseudonym, text) if pattern.search(text) else text
    low, needle = text.lower(), username.lower()
    out, done, size = [], 0, len(needle)
    start = low.find(needle)
    while start >= 0:
        end = start + size
        if stands_alone(text, start, end):
            out.append(text[done:start])
            out.append(pseudonym)
            done = end
            start = low.find(needle, end)
        else:
            start = low.find(needle, start + 1)
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)


_MEMO_ENTRIES = 1 << 15
_MEMO_TEXT_CHARS = 256  # long texts rarely recur; keeping them would only cost memory


@register
class ScrubText(Operator):
    name = "scrub_text"
    pure = False  # it reads the event's own usernames from the EventState
    Params = ScrubTextParams

    @classmethod
    def build(cls, params, ctx):
        scrub = TextScrubber(tuple(params.detectors), tuple(params.phone_regions)).scrub
        if params.roster and ctx.roster is not None and ctx.roster_rules is not None:
            finder = ctx.roster.finder(ctx.roster_rules)
            known = make_pseudonymizer(ctx.identity("username"), ctx.pseudonymizer)
            find_people = finder.scrub
            people_pseudonym = lambda username: str(known(username, None))  # noqa: E731
        else:
            find_people = None
        if params.actor_usernames and "username" in ctx.identities:
            to_pseudonym = make_pseudonymizer(ctx.identity("username"), ctx.pseudonymizer)
        else:
            to_pseudonym = None

        # The detectors and the roster depend on the text alone, so their result is memoized per
        # text (answers such as "choice_1" recur endlessly); the actor's usernames, which depend on
        # the event, are replaced afterwards.
        memo: dict[str, str] = {}

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
            result = memo.get(text)
            if result is None:
                result = scrub(text)
                if find_people is not None:
                    result = find_people(result, people_pseudonym)
                if len(text) <= _MEMO_TEXT_CHARS:
                    if len(memo) >= _MEMO_ENTRIES:
                        memo.clear()
                    memo[text] = result
            if to_pseudonym is not None:
                for username in state.actors:
                    if len(username) < 2:
                        continue
                    # Lower-casing is an exact test for ASCII; elsewhere the pattern decides.
                    if not (username.isascii() and result.isascii()) or username.lower() in result.lower():
                        result = replace_username(result, username, to_pseudonym(username, state))
            if kind is not str:
                return value if result == text else result
            return result

        return scrub_text
