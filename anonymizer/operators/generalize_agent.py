"""``generalize_agent``: reduce a user-agent string to browser family and major version, OS family
and device class, e.g. ``Chrome 45 / Mac OS X / desktop``. Nothing else of the raw string survives:
even the parser's family names are only used when they match a known, closed vocabulary shape.
"""

from __future__ import annotations

import re
from functools import lru_cache

from pydantic import BaseModel, ConfigDict

from .base import DROP, Operator, register

_MOBILE_OS = {"iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS", "Firefox OS", "HarmonyOS"}
_DESKTOP_OS = {"Windows", "Mac OS X", "Linux", "Ubuntu", "Chrome OS", "Fedora", "Debian", "FreeBSD", "OpenBSD", "macOS"}
_TABLET_HINT = re.compile(r"iPad|Tablet|Kindle|Nexus (?:7|9|10)|SM-T|Tab", re.I)
_SAFE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9 .\-]{0,39}$")


class GeneralizeAgentParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    browser_version: bool = True


def _safe(name: str | None) -> str:
    # Parser families come from a rules file, but for unknown agents some rules echo the input;
    # only a short plain name is trusted.
    return name if name and _SAFE_NAME.match(name) else "Other"


@lru_cache(maxsize=8192)
def generalize(agent: str, browser_version: bool = True) -> str:
    """The generalized form of AGENT."""
    from ua_parser import parse

    if "org.edx.mobile" in agent or agent.startswith("edX/"):
        os_family = "Android" if "Android" in agent else ("iOS" if re.search(r"iOS|iPhone|iPad|CFNetwork", agent) else "Other")
        return f"edX app / {os_family} / {'tablet' if 'iPad' in agent else 'mobile'}"
    result = parse(agent)
    ua, os_, device = result.user_agent, result.os, result.device
    browser = _safe(ua.family if ua else None)
    if browser_version and ua and ua.major and ua.major.isdigit() and browser != "Other":
        browser = f"{browser} {int(ua.major)}"
    os_family = _safe(os_.family if os_ else None)
    device_family = device.family if device else ""
    if device_family == "Spider" or re.search(r"bot|crawl|spider", agent, re.I):
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
    def build(cls, params, ctx):
        with_version = params.browser_version

        def generalize_agent(value, state):
            if type(value) is not str:
                return DROP
            return generalize(value, with_version) if value.strip() else value

        return generalize_agent
