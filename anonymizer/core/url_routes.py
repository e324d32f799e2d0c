"""The platform's URL routes as data: which path segments are safe, which hold a person or a secret.

``anonymizer/data/url_routes.yaml`` lists route words, block types, markers and route templates
(``/api/enrollment/v1/enrollment/{username},{course_id}``). ``RouteRules`` compiles them once
into sets and a trie of templates; ``RouteRules.kinds(units)`` says, for the segments of one path,
which kind each segment has by the template that fits the path best. ``scrub_url`` decides what
each kind becomes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple
from functools import lru_cache
from importlib import resources

import yaml

# Kinds of segment. A person kind is replaced by a pseudonym, a secret kind by "[REDACTED]", a safe
# kind is kept when the segment has its shape; remainders cover every segment after them.
PERSON_KINDS = frozenset({"username", "user_id", "username_or_email", "email"})
SECRET_KINDS = frozenset({"token", "anonymous_id", "user_text"})
SAFE_KINDS = frozenset({"course_id", "usage_key", "locator", "block_id", "hex_id", "int_id", "slug", "word", "lang"})
# Ids of things a person made (a forum thread, response or comment, whose page shows its author):
# replaced by the pseudonym of the policy's identity of that name, the one the payload's field gets,
# and "[REDACTED]" when the policy has no such identity. Matched where a hex_id would be.
PSEUDONYM_KINDS = {"forum_post": "forum_post"}  # kind -> identity
REMAINDER_KINDS = frozenset({"path", "asset"})
KINDS = PERSON_KINDS | SECRET_KINDS | SAFE_KINDS | frozenset(PSEUDONYM_KINDS) | REMAINDER_KINDS
# Where two templates with as many literal words fit, the one whose variable segments are the most
# specific wins (``/certificates/{course_id}`` over ``/certificates/{token}`` for a course key).
_LOOSE = frozenset({"word", "slug", "block_id"})
_SPECIFICITY = {"course_id": 4, "usage_key": 4, "locator": 3, "int_id": 2, "hex_id": 2, "forum_post": 2, "lang": 2, "word": 1, "block_id": 1, "slug": 1}

# Opaque keys of the platform: course, CCX, library, block and asset keys (``course-v1:Org+Num+Run``,
# ``block-v1:…+type@problem+block@…``) and old escaped locations (``i4x:;_;_Org;_Num;_problem;_x``).
# A username cannot hold ":" (the platform allows letters, digits, space and ``.@_+-``).
KEY = re.compile(r"(?:[a-z][a-z\-]*-v\d+|i4x|c4x|lib|lb|lct|location):[\w.\-~+:;@]+\Z")
OLD_KEY_PART = re.compile(r"[\w.\-~]+\Z")  # one of Org, Num, Run of an old course id, or of an i4x location
I4X_DASHED = re.compile(r"i4x-[\w.\-]+\Z")  # i4x-Org-Num-problem-name, the form used in input ids
KEY_MARKERS = re.compile(r"(?:type|block|ccx|version|branch)@")
LOCATOR = re.compile(r"[\w\-~]+\.[\w\-~]+\.[\w\-~]+\Z")  # old Studio course locators, Org.Num.Run
HEX_ID = re.compile(r"(?:[0-9a-fA-F]{6,}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|\d+)\Z")
BLOCK_ID = re.compile(r"[\w.\-~]+\Z")
WORD = re.compile(r"[A-Za-z_][\w\-.]*\Z")
LANG = re.compile(r"[a-zA-Z]{2,3}(?:[_\-][A-Za-z0-9]{2,4})?\Z")
# Platform and course files (scripts, styles, images, fonts, course handouts): kept in static and
# asset routes; elsewhere only scripts, styles and the site's own images and fonts.
_EXTENSIONS = "pdf|png|jpe?g|gif|svg|webp|ico|js|css|map|html?|txt|csv|tsv|xml|json|zip|gz|tar|mp3|mp4|webm|ogg|vtt|srt|sjson|docx?|pptx?|xlsx?|odt|ods|odp|ipynb|py|r|m|woff2?|ttf|eot"
FILE = re.compile(rf"[\w.\-~+ ()]+\.(?:{_EXTENSIONS})\Z", re.IGNORECASE)
STATIC_FILE = re.compile(r"[A-Za-z][\w\-.]*\.(?:js|css|map|png|gif|svg|ico|woff2?|ttf|eot)\Z", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}(?:,\{([a-z_]+)\})?\Z")


class RouteError(ValueError):
    """A template that cannot be read; the message names the template and what is wrong."""


@lru_cache(maxsize=1 << 16)
def is_key(text: str) -> bool:
    """A course, block, asset or library key, or an old location id, in one segment."""
    return (KEY.match(text) is not None or I4X_DASHED.match(text) is not None) and "@" not in KEY_MARKERS.sub("", text)


def _matches(pattern: re.Pattern[str]):
    match = pattern.match
    return lambda text: match(text) is not None


# Whether a decoded segment has the shape of a kind (person and secret kinds take anything).
_FITS = {
    "course_id": is_key,
    "usage_key": is_key,
    "locator": _matches(LOCATOR),
    "hex_id": _matches(HEX_ID),
    "int_id": lambda text: text.isdecimal() and text.isascii(),
    "block_id": _matches(BLOCK_ID),
    "slug": _matches(BLOCK_ID),
    "word": _matches(WORD),
    "lang": _matches(LANG),
}
_FITS["forum_post"] = _FITS["hex_id"]  # a 24-hex ObjectId, or a number with the MySQL forum backend


_FIT_BITS = tuple((1 << index, fits) for index, fits in enumerate(dict.fromkeys(_FITS.values())))
_KEY_UNIT = ("<key>",)


def _anything(text: str) -> bool:
    return True


def _fits(kind: str, text: str) -> bool:
    return _FITS.get(kind, _anything)(text)


@dataclass
class _Node:
    literals: dict[str, _Node] = field(default_factory=dict)
    slots: dict[tuple[str, ...], _Node] = field(default_factory=dict)  # (kind,) or (kind, kind) for "a,b"
    remainder: str | None = None  # a remainder kind that covers everything from here
    terminal: bool = False  # a template ends here


def parse_template(template: str) -> list[str | tuple[str, ...]]:
    """TEMPLATE as tokens: a literal word (folded), or a tuple of one or two kinds."""
    if not isinstance(template, str) or not template.strip():
        raise RouteError(f"route {template!r}: expected a path such as '/api/x/{{username}}'")
    text = template.strip()
    if text.startswith("C/"):
        text = "/courses/{course_id}/" + text[2:]
    tokens: list[str | tuple[str, ...]] = []
    parts = [p for p in text.strip("/").split("/")]
    for index, part in enumerate(parts):
        if not part:
            raise RouteError(f"route {template!r}: empty segment")
        if "{" not in part:
            tokens.append(part.casefold())
            continue
        match = _PLACEHOLDER.match(part)
        if match is None:
            raise RouteError(f"route {template!r}: segment {part!r} is neither a word nor '{{kind}}' or '{{kind}},{{kind}}'")
        kinds = tuple(k for k in match.groups() if k)
        for kind in kinds:
            if kind not in KINDS:
                raise RouteError(f"route {template!r}: unknown kind {kind!r} (known: {', '.join(sorted(KINDS))})")
            if kind in REMAINDER_KINDS and (len(kinds) > 1 or index != len(parts) - 1):
                raise RouteError(f"route {template!r}: {{{kind}}} stands alone, as the last segment")
        tokens.append(kinds)
    return tokens


class Unit(NamedTuple):
    """One segment of a path, or several joined (an old ``Org/Num/Run`` course id, an ``i4x://`` id)."""

    raw: str  # as written, to be kept or replaced
    text: str  # decoded: what is judged
    key: bool = False  # a course or usage key spanning several segments


class RouteRules:
    """The route data compiled: words, block types, markers and the template trie."""

    def __init__(self, words, block_types, user_markers, secret_markers, templates) -> None:
        self.words = frozenset(w.casefold() for w in words) | frozenset(b.casefold() for b in block_types)
        self.user_markers = frozenset(m.casefold() for m in user_markers)
        self.secret_markers = frozenset(m.casefold() for m in secret_markers)
        self.root = _Node()
        self._literals: set[str] = set()
        self._tokens: dict[str, object] = {}  # segment -> what matching needs to know of it
        self._kinds: dict[tuple, list] = {}  # tokens of a path -> kinds
        for template in templates:
            self._add(parse_template(template))

    def _add(self, tokens) -> None:
        node = self.root
        for token in tokens:
            if isinstance(token, str):
                self._literals.add(token)
                node = node.literals.setdefault(token, _Node())
            elif token[0] in REMAINDER_KINDS:
                node.remainder = token[0]
                break
            else:
                node = node.slots.setdefault(token, _Node())
        node.terminal = True

    def extended(self, words=(), templates=(), user_markers=None, secret_markers=None) -> RouteRules:
        """These rules with more words and templates (and, if given, other markers)."""
        copy = RouteRules((), (), user_markers if user_markers is not None else self.user_markers,
                          secret_markers if secret_markers is not None else self.secret_markers, ())
        copy.words = self.words | frozenset(w.casefold() for w in words)
        copy.root = self.root
        copy._literals = set(self._literals)
        if templates:
            copy.root = _copy_trie(self.root)
            for template in templates:
                copy._add(parse_template(template))
        return copy

    def _token(self, unit: Unit) -> object:
        """What matching needs of UNIT: the literal word it is, and which kinds it fits (a bit
        mask); a segment with a comma, or a multi-segment key, stands for itself."""
        if unit.key:
            return _KEY_UNIT
        text = unit.text
        token = self._tokens.get(text)
        if token is None:
            if "," in text or not text:
                token = (text,)
            else:
                folded = text.casefold()
                mask = 0
                for bit, fits in _FIT_BITS:
                    if fits(text):
                        mask |= bit
                token = (folded if folded in self._literals else None, mask)
            if len(self._tokens) >= 1 << 16:
                self._tokens.clear()
            self._tokens[text] = token
        return token

    def kinds(self, units: list[Unit], start: int) -> list[str | None]:
        """For each unit, its kind by the best template ("" for a literal word), or None where no
        template reaches. Units before START (the empty root of an absolute path) are not matched.
        Paths of one shape (words in the same places, ids of the same kinds) share one answer."""
        get, token = self._tokens.get, self._token
        key = (start, *[_KEY_UNIT if unit.key else (get(unit.text) or token(unit)) for unit in units])
        found = self._kinds.get(key)
        if found is None:
            found = self._match(units, start)
            if len(self._kinds) >= 1 << 14:
                self._kinds.clear()
            self._kinds[key] = found
        return found

    def _match(self, units: list[Unit], start: int) -> list[str | None]:
        best: list = [(-1, -1), []]

        def walk(node: _Node, index: int, literals: int, specificity: int, found: list) -> None:
            # A template may cover a path that stops short of its end, but not where the last
            # segment matched only a loose shape (a word, a slug): that needs the template's end.
            confirmed = node.terminal or not found or found[-1] not in _LOOSE
            if (literals or specificity >= 4) and confirmed:
                if (literals, specificity) > best[0] or ((literals, specificity) == best[0] and len(found) > len(best[1])):
                    best[0], best[1] = (literals, specificity), list(found)
            if index >= len(units):
                return
            unit = units[index]
            if not unit.text:
                return  # an empty segment ends what a template can say
            if node.remainder is not None:
                rest = found + [node.remainder] * (len(units) - index)
                walk(_LEAF, len(units), literals, specificity, rest)
            child = node.literals.get(unit.text.casefold()) if not unit.key else None
            if child is not None:
                walk(child, index + 1, literals + 1, specificity, found + [""])
            if not node.slots:
                return
            for slot, child in node.slots.items():
                if len(slot) == 2:
                    if "," not in unit.text:
                        continue
                    kind = ",".join(slot)
                    first, _, second = (unit.text.rpartition(",") if slot[0] == "user_text" else unit.text.partition(","))
                    if not (_fits(slot[0], first) and _fits(slot[1], second)):
                        continue
                    gain = _SPECIFICITY.get(slot[0], 0) + _SPECIFICITY.get(slot[1], 0)
                else:
                    kind = slot[0]
                    if unit.key and kind not in ("course_id", "usage_key"):
                        continue
                    if not unit.key and not _FITS.get(kind, _anything)(unit.text):
                        continue
                    gain = _SPECIFICITY.get(kind, 0)
                walk(child, index + 1, literals, specificity + gain, found + [kind])

        walk(self.root, start, 0, 0, [])
        found = best[1]
        return [None] * start + found + [None] * (len(units) - start - len(found))


_LEAF = _Node()


def _copy_trie(node: _Node) -> _Node:
    return _Node(
        {k: _copy_trie(v) for k, v in node.literals.items()},
        {k: _copy_trie(v) for k, v in node.slots.items()},
        node.remainder,
        node.terminal,
    )


@lru_cache(maxsize=1)
def default_data() -> dict:
    """The shipped route data, read once."""
    text = resources.files("anonymizer").joinpath("data/url_routes.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


@lru_cache(maxsize=1)
def default_rules() -> RouteRules:
    """The shipped route data, compiled once per process."""
    data = default_data()
    return RouteRules(data["words"], data["block_types"], data["user_markers"], data["secret_markers"], data["templates"])
