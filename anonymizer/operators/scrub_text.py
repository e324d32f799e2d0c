"""``scrub_text``: remove personal data from free text, keeping the rest of the prose.

Detectors (``email``, ``url``, ``ip``, ``phone``) replace what they find with typed
placeholders (``[EMAIL]``, ``[URL]`` ...). With ``actor_usernames`` (the default), the
usernames the event itself names (its actor, ``context.username``) are replaced by their
pseudonyms, matched case-insensitively and bounded by characters that cannot be part of a
username, so ``_ymir_`` and ``zelda-q`` are found where ``\\b`` would fail.
"""

from __future__ import annotations

import re
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, field_validator

from ..detectors import KINDS, TextScrubber
from ..errors import shown
from .base import DROP, Operator, register
from .pseudonymize import make_pseudonymizer


class ScrubTextParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    detectors: list[str] = list(KINDS)
    actor_usernames: bool = True

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


@register
class ScrubText(Operator):
    name = "scrub_text"
    pure = False  # it reads the event's own usernames from the EventState
    Params = ScrubTextParams

    @classmethod
    def build(cls, params, ctx):
        scrub = TextScrubber(tuple(params.detectors)).scrub
        if params.actor_usernames and "username" in ctx.identities:
            to_pseudonym = make_pseudonymizer(ctx.identity("username"), ctx.pseudonymizer)
        else:
            to_pseudonym = None

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
            result = scrub(text)
            if to_pseudonym is not None:
                for username in state.actors:
                    if len(username) >= 2 and username.lower() in result.lower():
                        pseudonym = to_pseudonym(username, state)
                        # A function, not a template: the pseudonym's prefix is policy text and may hold "\\".
                        result = username_pattern(username).sub(lambda match: pseudonym, result)
            if kind is not str:
                return value if result == text else result
            return result

        return scrub_text
