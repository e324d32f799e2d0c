"""``scrub_url``: keep a URL's scheme, host and the path segments known to be safe; drop user info,
query, fragment and path parameters with a value (``;jsessionid=…``); a host that is or holds an IP
address (``203.0.113.45``, ``ec2-203-0-113-45.compute-1.amazonaws.com``, ``3405803821``,
``0xcb00712d``) becomes ``[IP]``.

Paths fail closed. A segment is kept only when it is a route word or block type, a course, block
or asset key (``course-v1:…``, ``block-v1:…``, an old ``Org/Num/Run`` course id or ``i4x://`` id), a
static file name, or when a route template (``anonymizer/data/url_routes.yaml``) says its position
holds something safe of that shape (a block id, a page number, a handler name). A position the
template gives to a person becomes the pseudonym (digits: the user-id pseudonym, otherwise the
username pseudonym); a forum thread, response or comment id becomes the pseudonym of the policy's
``forum_post`` identity (``[REDACTED]`` when the policy has none); a secret position becomes
``[REDACTED]``. Where no template reaches, the segment after a user marker (``/u/``, ``/users/``,
``/accounts/`` …, in any case) is a person and the one after a secret marker (``/activate/`` …) a
secret. A segment that holds an email
becomes ``[EMAIL]``; one that names a person of the roster becomes their pseudonym; anything else
becomes ``[REDACTED]``. Works on absolute URLs and on bare paths (``context.path``, implicit event
types); with ``event_names``, a value that is not a URL or path is an event name (kept when plain).

A segment, key, host name or event name that would be kept as written is kept only when no known
person (roster or learned) is a *part* of it (``i4x:zelda-q``, ``block-v1:…+block@zelda-q_1``,
``zelda-q.example.org``): otherwise it becomes ``[REDACTED]``. The boundary and the guard against
usernames that are course words are those of ``anonymizer.core.text.inside``.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, field_validator

from ..ipmask import host_holds_ip
from ..text.detectors import EMAIL_PATTERN
from ..url_routes import FILE, OLD_KEY_PART, PERSON_KINDS, PSEUDONYM_KINDS, SECRET_KINDS, STATIC_FILE, RouteError, Unit, default_rules, is_key, parse_template
from .base import DROP, Operator, register
from .pseudonymize import make_pseudonymizer

SECRET = "[REDACTED]"
EMAIL = "[EMAIL]"
# What an event name may look like to be kept as written (``edx.video.played``, ``problem_check``).
_EVENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.:\-]{0,99}\Z")
_HOST = re.compile(r"(?:[A-Za-z0-9\-._~]*|\[[0-9A-Fa-f:.]+\])(?::(?P<port>\d{1,5}))?\Z")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*\Z")


class ScrubUrlParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Markers replace the shipped ones when given (``anonymizer/data/url_routes.yaml``).
    user_markers: list[str] | None = None
    secret_markers: list[str] | None = None
    safe_words: list[str] = []  # more route words, kept wherever they stand
    routes: list[str] = []  # more route templates, in the notation of url_routes.yaml
    event_names: bool = False  # a value that is not a URL or path is an event name

    @field_validator("routes")
    @classmethod
    def _routes(cls, value: list[str]) -> list[str]:
        for template in value:
            try:
                parse_template(template)
            except RouteError as error:
                raise ValueError(str(error)) from None
        return value

    @field_validator("safe_words")
    @classmethod
    def _words(cls, value: list[str]) -> list[str]:
        for word in value:
            if not word or "/" in word or "@" in word:
                raise ValueError(f"safe word {word!r}: expected one path segment without '/' or '@'")
        return value


# A path parameter with a value (``;jsessionid=…``): servlet-style session ids ride there. Bare
# ``;`` runs stay: old Open edX location ids escape ``/`` as ``;_`` (``i4x:;_;_edX;_…``).
_PATH_PARAM = re.compile(r";[^/;=]*=[^/;]*")


def _without_parameters(path: str) -> str:
    """PATH without its ``;name=value`` parameters (a path only: user info may hold ``;`` too)."""
    return _PATH_PARAM.sub("", path) if ";" in path else path


@register
class ScrubUrl(Operator):
    name = "scrub_url"
    Params = ScrubUrlParams
    data = ("url_routes",)

    @classmethod
    def build(cls, params, ctx):
        rules = default_rules()
        if params.safe_words or params.routes or params.user_markers is not None or params.secret_markers is not None:
            rules = rules.extended(params.safe_words, params.routes, params.user_markers, params.secret_markers)
        words, user_markers, secret_markers = rules.words, rules.user_markers, rules.secret_markers
        username = make_pseudonymizer(ctx.identity("username"), ctx.pseudonymizer)
        user_id = make_pseudonymizer(ctx.identity("user_id"), ctx.pseudonymizer)
        # A forum post's id in its page's path gets the pseudonym its payload field gets (the same
        # identity), so a page view joins to its thread; a policy without the identity: redacted.
        pseudonyms = {
            kind: make_pseudonymizer(ctx.identities[name], ctx.pseudonymizer)
            for kind, name in PSEUDONYM_KINDS.items()
            if name in ctx.identities
        }
        roster = ctx.roster
        by_id = getattr(roster, "by_id", None) or {}
        event_names = params.event_names
        inside = None
        if roster is not None and ctx.roster_rules is not None:
            from ..text.inside import people_inside  # only with a roster: it builds the automaton

            inside = people_inside(roster, ctx.roster_rules, words)

        def holds(text: str) -> bool:
            """Whether TEXT, to be kept as written, has a known person as a part of it."""
            return inside is not None and inside(text)

        def kept(raw: str, text: str) -> str:
            """RAW, a key or file name of the right shape, unless a known person is inside it."""
            return SECRET if holds(text) else raw

        def known(text: str) -> str | None:
            """The pseudonym of the roster's person that TEXT names exactly (username in any case,
            or user id), or None."""
            if roster is None:
                return None
            if text.isdecimal():
                return str(user_id(text, None)) if text in by_id else None
            return str(username(text, None)) if roster.person_for(text) is not None else None

        def is_email(text: str) -> bool:
            return "@" in text and EMAIL_PATTERN.search(text) is not None

        def person(text: str) -> str:
            if is_email(text):
                # A username may look like an email: a known one links to its person.
                return str(username(text, None)) if roster is not None and roster.person_for(text) is not None else EMAIL
            if text.isdecimal() and text.isascii():
                return str(user_id(text, None))
            return str(username(text, None))

        def unknown(raw: str, text: str) -> str:
            """A segment no template places: kept only when it is safe on its own."""
            if text.casefold() in words:
                return raw
            if is_email(text):
                return EMAIL
            found = known(text)
            if found is not None:
                return found
            if is_key(text) or STATIC_FILE.match(text):
                return kept(raw, text)
            if "," in text:
                return ",".join(unknown(part, part) for part in text.split(","))
            return SECRET

        def placed(raw: str, text: str, kind: str) -> str:
            """A segment in a position a template gives KIND."""
            if kind == "":
                return raw
            if kind in PERSON_KINDS:
                # A key (with ":", which no username holds) where a route may also take a person.
                return kept(raw, text) if ":" in text and is_key(text) else person(text)
            if kind in SECRET_KINDS:
                return (known(text) or SECRET) if kind == "user_text" else SECRET
            if kind in PSEUDONYM_KINDS:
                pseudonym = pseudonyms.get(kind)
                return SECRET if pseudonym is None else str(pseudonym(text, None))
            if kind == "course_id" or kind == "usage_key":
                return kept(raw, text)  # the template matched it as a key: no "@" but the key's own markers
            if "," in kind:
                first_kind, second_kind = kind.split(",")
                first, _, second = text.rpartition(",") if first_kind == "user_text" else text.partition(",")
                return placed(first, first, first_kind) + "," + placed(second, second, second_kind)
            if kind == "path":
                return unknown(raw, text)
            if is_email(text):
                return EMAIL
            if (kind == "asset" and not FILE.match(text)) or (kind == "word" and text.casefold() not in words):
                # A handler, view or version word is one of the vocabulary: anything else in that
                # place is judged as a segment no template places.
                return unknown(raw, text)
            # A number here is a block id, a position or a page: a short one is kept even when it
            # equals a user id; one of 5 digits or more that equals a known user id is read as the
            # id (verify reads "/123456" so) and goes, as a key with a person inside does.
            return kept(raw, text) if text.isdecimal() else (known(text) or kept(raw, text))

        def units_of(path: str) -> list[Unit]:
            segments = path.split("/")
            if "4x:" not in path and "ourse" not in path and "OURSE" not in path:
                # No old course id or i4x id can be in it: one unit per segment.
                return [Unit(raw, unquote(raw) if "%" in raw else raw, False) for raw in segments]
            count = len(segments)
            units: list[Unit] = []
            index = 0
            after_courses = False
            while index < count:
                raw = segments[index]
                text = unquote(raw) if "%" in raw else raw
                if after_courses and index + 2 < count:
                    parts = [unquote(p) for p in segments[index : index + 3]]
                    # Org/Num/Run: author-made, unless one of them names a known person.
                    if all(OLD_KEY_PART.match(p) and p.casefold() not in words and known(p) is None for p in parts) and not holds("/".join(parts)):
                        joined = "/".join(segments[index : index + 3])
                        units.append(Unit(joined, unquote(joined), True))
                        index += 3
                        after_courses = False
                        continue
                if text[-1:] == ":" and index + 5 < count and segments[index + 1] == "" and text.casefold() in ("i4x:", "c4x:"):
                    parts = [unquote(p) for p in segments[index + 2 : index + 6]]
                    if (
                        parts[2].casefold() in words
                        and all(OLD_KEY_PART.match(p.removesuffix("@draft")) and known(p) is None for p in parts)
                        and not holds("/".join(parts))
                    ):
                        joined = "/".join(segments[index : index + 6])
                        units.append(Unit(joined, unquote(joined), True))
                        index += 6
                        continue
                units.append(Unit(raw, text, False))
                after_courses = len(text) in (6, 7) and text.casefold() in ("courses", "course")
                index += 1
            return units

        rendered: dict[tuple[str, str], str] = {}  # (segment, its place) -> what it becomes

        def render(raw: str, text: str, place: str) -> str:
            if place == "<user>":
                return kept(raw, text) if is_key(text) else person(text)
            if place == "<secret>":
                return kept(raw, text) if is_key(text) else SECRET
            if place == "<none>":
                return unknown(raw, text)
            return placed(raw, text, place)

        paths: dict[str, str] = {}  # path -> scrubbed: URLs that differ in host, query or fragment share it

        def scrub_path(path: str) -> str:
            found = paths.get(path)
            if found is None:
                found = scrub_units(path) if path not in ("", "/") else path
                if len(paths) >= 1 << 16:
                    paths.clear()
                paths[path] = found
            return found

        def scrub_units(path: str) -> str:
            units = units_of(path)
            start = 1 if units[0].text == "" else 0
            kinds = rules.kinds(units, start)
            out: list[str] = []
            previous = ""
            for (raw, text, key), kind in zip(units, kinds):
                if not text or key:
                    out.append(raw)
                    if text:
                        previous = ""
                    continue
                if kind is not None and kind != "path":
                    place = kind
                elif previous in user_markers:
                    place = "<user>"
                elif previous in secret_markers:
                    place = "<secret>"
                else:
                    place = "<none>"
                found = rendered.get((raw, place))
                if found is None:
                    found = render(raw, text, place)
                    if len(rendered) >= 1 << 16:
                        rendered.clear()
                    rendered[(raw, place)] = found
                out.append(found)
                previous = text.casefold()
            return "/".join(out)

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
            elif event_names and not text.startswith("/"):
                # An event name (``edx.video.played``), not a URL: kept when it looks like one
                # and names no known person, whole or as a part.
                if not _EVENT_NAME.match(text):
                    return SECRET
                return known(text) or kept(text, text)
            else:
                return scrub_path(_without_parameters(text))
            slash = rest.find("/")
            netloc, path = (rest, "") if slash < 0 else (rest[:slash], _without_parameters(rest[slash:]))
            netloc = netloc.rpartition("@")[2]
            host = _HOST.match(netloc)
            if host is None or (host.group("port") and int(host.group("port")) > 65535):
                return None  # not a host name: whatever it is, it is not kept
            name = netloc[: host.start("port") - 1] if host.group("port") else netloc
            if host_holds_ip(name):
                # A server addressed by IP (a development LMS, a learner's own machine), or named
                # after one (``ec2-203-0-113-45.…``, ``3405803821``): an IP address is an
                # identifier wherever it stands.
                netloc = "[IP]" + (f":{host.group('port')}" if host.group("port") else "")
            elif holds(name):
                # A host named after a person (``zelda-q.example.org``, a learner's own server).
                netloc = SECRET + (f":{host.group('port')}" if host.group("port") else "")
            return prefix + netloc + scrub_path(path)

        def scrub_url(value, state):
            if type(value) is not str:
                return DROP
            found = scrub(value)  # memoized per value by the compiler, as every pure operator is
            return DROP if found is None else found

        return scrub_url
