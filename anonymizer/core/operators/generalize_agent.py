"""``generalize_agent``: reduce a user-agent string to browser family and major version, OS family
and device class, e.g. ``Chrome 45 / Mac OS X / desktop``. Nothing else of the raw string survives:
even the parser's family names are only used when they belong to a closed vocabulary, the names its
rules spell out (many rules echo part of an unknown agent, which can be anything). With
``min_group_size: N`` (N > 1), a generalized agent shared by fewer than N learners of the package is
written as ``[RARE]`` (see ``anonymizer.core.suppression``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from re import _constants as sre
from re import _parser as sre_parse

from pydantic import BaseModel, ConfigDict, Field, model_serializer

from ..suppression import group_key, keep_only, without_unset_size

from .base import DROP, Operator, register

_MOBILE_OS = {"iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS", "Firefox OS", "HarmonyOS"}
_DESKTOP_OS = {"Windows", "Mac OS X", "Linux", "Ubuntu", "Chrome OS", "Fedora", "Debian", "FreeBSD", "OpenBSD", "macOS"}
_TABLET_HINT = re.compile(r"iPad|Tablet|Kindle|Nexus (?:7|9|10)|SM-T|Tab", re.I)
_SAFE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9 .\-]{0,39}$")


class GeneralizeAgentParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    browser_version: bool = True
    # 0 or 1: off. Otherwise the fewest learners a generalized agent must have to be written as it is.
    min_group_size: int = Field(0, ge=0, le=1_000_000)

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        return without_unset_size(handler(self))


_MAX_NAMES = 512


def _spelled(items) -> set[str] | None:
    """Every string the parsed regex ITEMS matches, or None when that set is open or too large."""
    out = {""}
    for op, arg in items:
        if op is sre.LITERAL:
            choices = {chr(arg)}
        elif op is sre.IN and all(kind is sre.LITERAL for kind, _ in arg):
            choices = {chr(code) for _, code in arg}
        elif op is sre.SUBPATTERN:
            choices = _spelled(arg[-1])
        elif op is sre.BRANCH:
            # A branch that spells an open set adds nothing: what it matches is not a fixed name.
            choices = set().union(*(found for branch in arg[1] if (found := _spelled(branch))))
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT) and arg[1] <= 1:
            inner = _spelled(arg[2])
            choices = None if inner is None else ({""} | inner if arg[0] == 0 else inner)
        elif op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT):
            choices = {""}
        else:
            return None
        if not choices:
            return None
        out = {a + b for a in out for b in choices}
        if len(out) > _MAX_NAMES:
            return None
    return out


def _group_one(items):
    for op, arg in items:
        if op is sre.SUBPATTERN:
            if arg[0] == 1:
                return arg[-1]
            found = _group_one(arg[-1])
        elif op is sre.BRANCH:
            found = next((g for branch in arg[1] if (g := _group_one(branch)) is not None), None)
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            found = _group_one(arg[2])
        else:
            found = None
        if found is not None:
            return found
    return None


def _names(matchers) -> set[str]:
    """The family names the rules can produce that are spelled out in the rules themselves."""
    names = set()
    for matcher in matchers:
        family = matcher.family or "$1"
        if "$" not in family:
            names.add(family)
            continue
        if re.search(r"\$[02-9]", family) or getattr(matcher, "flags", 0):
            continue
        try:
            group = _group_one(sre_parse.parse(matcher.regex))
        except Exception:  # noqa: BLE001  (a rule this reader cannot follow names nothing)
            continue
        for spelled in (_spelled(group) if group is not None else None) or ():
            names.add(family.replace("$1", spelled).strip())
    return names


@lru_cache(maxsize=1)
def _vocabulary() -> tuple[frozenset[str], frozenset[str]]:
    """Browser and OS family names the parser's rules spell out: a closed vocabulary."""
    try:  # on first use, as below
        from ua_parser_builtins.lazy import MATCHERS
    except ImportError:  # without the rules, nothing is trusted
        return frozenset(), frozenset()
    return frozenset(_names(MATCHERS[0])), frozenset(_names(MATCHERS[1]))


def _safe(name: str | None, vocabulary: frozenset[str]) -> str:
    # For unknown agents many rules echo part of the input (a bot's or an app's name, which can
    # be anything, a learner's name included): only names the rules spell out are kept.
    return name if name and name in vocabulary and _SAFE_NAME.match(name) else "Other"


# "bot" ending a word (Googlebot/2.1, Slackbot-LinkExpanding, AhrefsBot), but not the phone maker
# Cubot (Cubot NOTE 20); crawlers and spiders by name.
_BOT = re.compile(r"(?<!cu)bot\b|crawl|spider", re.IGNORECASE)


@lru_cache(maxsize=8192)
def generalize(agent: str, browser_version: bool = True) -> str:
    """The generalized form of AGENT."""
    # Imported on first use: loading the parser and its rules takes about a second, which the
    # commands and runs that never meet an agent should not pay.
    from ua_parser import parse

    if "org.edx.mobile" in agent or agent.startswith("edX/"):
        os_family = "Android" if "Android" in agent else ("iOS" if re.search(r"iOS|iPhone|iPad|CFNetwork", agent) else "Other")
        return f"edX app / {os_family} / {'tablet' if 'iPad' in agent else 'mobile'}"
    result = parse(agent)
    ua, os_, device = result.user_agent, result.os, result.device
    browsers, systems = _vocabulary()
    browser = _safe(ua.family if ua else None, browsers)
    if browser_version and ua and ua.major and ua.major.isdigit() and browser != "Other":
        browser = f"{browser} {int(ua.major)}"
    os_family = _safe(os_.family if os_ else None, systems)
    device_family = device.family if device else ""
    if device_family == "Spider" or _BOT.search(agent):
        device_class = "bot"
    elif _TABLET_HINT.search(device_family or "") or ("Android" == os_family and "Mobile" not in agent):
        device_class = "tablet"
    elif os_family in _MOBILE_OS:
        device_class = "mobile"
    elif os_family in _DESKTOP_OS:
        device_class = "desktop"
    else:
        device_class = "other"
    return f"{browser} / {os_family} / {device_class}"


@register
class GeneralizeAgent(Operator):
    name = "generalize_agent"
    Params = GeneralizeAgentParams

    @classmethod
    def carries(cls, params):
        return "agent"

    @classmethod
    def build(cls, params, ctx):
        with_version = params.browser_version
        rare = keep_only((ctx.groups or {}).get(group_key(cls.name, params.model_dump(mode="json")))) if params.min_group_size > 1 else None

        def generalize_agent(value, state):
            if type(value) is not str:
                return DROP
            if not value.strip():
                return value
            found = generalize(value, with_version)
            return found if rare is None else rare(found)

        return generalize_agent
