"""``scrub_url``: keep a URL's scheme, host and path; drop user info, query, fragment and path
parameters with a value (``;jsessionid=…``); a host that is an IP address becomes ``[IP]``.

Path segments that identify a learner are pseudonymized: the segment after ``/u/``,
``/accounts/``, ``/users/``, ``/progress/`` and the other markers in ``user_markers`` becomes
the user-id pseudonym when it is numeric and the username pseudonym otherwise. The segment after
a ``secret_markers`` entry (activation keys, certificate verification ids, exam attempt codes)
becomes ``[REDACTED]``. A segment that holds an email becomes ``[EMAIL]``. Works on absolute URLs and on bare paths (``context.path``,
implicit event types).
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict

from ..detectors import EMAIL_PATTERN
from .base import DROP, Operator, register
from .pseudonymize import make_pseudonymizer

DEFAULT_USER_MARKERS = [
    "u",
    "users",
    "accounts",
    "preferences",
    "profile_images",
    "progress",
    "student",
    "students",
    "learner_profile",
    "submission_history",
]
DEFAULT_SECRET_MARKERS = [
    "activate",
    "email_confirm",
    "password_reset_confirm",
    "certificates",
    "attempt",
    "unsubscribe",
    "verify_student",
    # Team ids are slugs of the names learners give their teams (the policy pseudonymizes them).
    "teams",
    "team_membership",
]
SECRET = "[REDACTED]"
# A path parameter with a value (``;jsessionid=…``): servlet-style session ids ride there. Bare
# ``;`` runs stay: old Open edX location ids escape ``/`` as ``;_`` (``i4x:;_;_edX;_…``).
_PATH_PARAM = re.compile(r";[^/;=]*=[^/;]*")
_HOST = re.compile(r"(?:[A-Za-z0-9\-._~]*|\[[0-9A-Fa-f:.]+\])(?::(?P<port>\d{1,5}))?\Z")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*\Z")


class ScrubUrlParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_markers: list[str] = DEFAULT_USER_MARKERS
    secret_markers: list[str] = DEFAULT_SECRET_MARKERS


_DOTTED = frozenset("0123456789.")


def _without_parameters(path: str) -> str:
    """PATH without its ``;name=value`` parameters (a path only: user info may hold ``;`` too)."""
    return _PATH_PARAM.sub("", path) if ";" in path else path


def _is_ip_host(host: str) -> bool:
    # Only a bracketed host or one of digits and dots can be an address: the parse (which raises
    # for anything else) is left for those.
    if not host.startswith("[") and not _DOTTED.issuperset(host):
        return False
    try:
        ipaddress.ip_address(host[1:-1] if host.startswith("[") else host)
    except ValueError:
        return False
    return True


@register
class ScrubUrl(Operator):
    name = "scrub_url"
    Params = ScrubUrlParams

    @classmethod
    def build(cls, params, ctx):
        markers = frozenset(params.user_markers)
        secret_markers = frozenset(params.secret_markers)
        username = make_pseudonymizer(ctx.identity("username"), ctx.pseudonymizer)
        user_id = make_pseudonymizer(ctx.identity("user_id"), ctx.pseudonymizer)

        any_marker = markers | secret_markers
        # With a roster, a segment that names a known person (a profile slug such as
        # /in/zelda-quintero/) is scrubbed like free text; numbers are left to the markers.
        people = ctx.roster.finder(ctx.roster_rules) if ctx.roster is not None and ctx.roster_rules is not None else None

        def person_pseudonym(name: str) -> str:
            return str(username(name, None))

        def scrub_path(path: str) -> str:
            segments = path.split("/")
            named = people is not None and bool(people.find(unquote(path), user_ids=False))
            if not named and "@" not in path and "%" not in path and any_marker.isdisjoint(segments):
                return path
            after_user = after_secret = False
            for index, segment in enumerate(segments):
                decoded = unquote(segment)
                if after_secret and decoded:
                    segments[index] = SECRET
                elif after_user and decoded:
                    segments[index] = str(user_id(decoded, None)) if decoded.isdecimal() else username(decoded, None)
                elif "@" in decoded and EMAIL_PATTERN.search(decoded):
                    segments[index] = "[EMAIL]"
                elif named and decoded and (scrubbed := people.scrub(decoded, person_pseudonym, user_ids=False)) != decoded:
                    segments[index] = scrubbed
                after_user = decoded in markers
                after_secret = decoded in secret_markers
            return "/".join(segments)

        def scrub(value: str) -> str | None:
            # Plain string cuts rather than urlsplit: the query and fragment go, the user info
            # goes, and everything else is kept exactly as written (host case and port included),
            # so a URL with and without a query scrubs to the same string.
            text = value.strip()
            for mark in ("#", "?"):
                cut = text.find(mark)
                if cut >= 0:
                    text = text[:cut]
            scheme_end = text.find("://")
            if scheme_end > 0 and _SCHEME.match(text, 0, scheme_end):
                prefix, rest = text[: scheme_end + 3], text[scheme_end + 3 :]
            elif text.startswith("//"):
                prefix, rest = "//", text[2:]
            else:
                return scrub_path(_without_parameters(text))
            slash = rest.find("/")
            netloc, path = (rest, "") if slash < 0 else (rest[:slash], _without_parameters(rest[slash:]))
            netloc = netloc.rpartition("@")[2]
            host = _HOST.match(netloc)
            if host is None or (host.group("port") and int(host.group("port")) > 65535):
                return None  # not a host name: whatever it is, it is not kept
            if _is_ip_host(netloc[: host.start("port") - 1] if host.group("port") else netloc):
                # A server addressed by IP (a development LMS, a learner's own machine): an IP
                # address is an identifier wherever it stands.
                netloc = "[IP]" + (f":{host.group('port')}" if host.group("port") else "")
            return prefix + netloc + scrub_path(path)

        def scrub_url(value, state):
            if type(value) is not str:
                return DROP
            found = scrub(value)  # memoized per value by the compiler, as every pure operator is
            return DROP if found is None else found

        return scrub_url
