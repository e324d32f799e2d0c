"""Ways people and browsers write an identifier so that a scan of the text as written misses it.

Each disguise takes a value and a random generator and returns the disguised text; ``applies``
says for which kinds of value it makes sense.
"""

from __future__ import annotations

import base64
import json
import random
import re
from urllib.parse import quote

_ENTITY_NAMES = {"@": "&commat;", ".": "&period;", "ë": "&euml;", "é": "&eacute;", "č": "&ccaron;", "_": "&lowbar;", "-": "&hyphen;"}


def entity_decimal(value: str, rng: random.Random) -> str:
    return "".join(f"&#{ord(c)};" if not c.isalnum() or not c.isascii() else c for c in value)


def entity_hex(value: str, rng: random.Random) -> str:
    return "".join(f"&#x{ord(c):x};" if rng.random() < 0.5 or not c.isascii() else c for c in value)


def entity_named(value: str, rng: random.Random) -> str:
    return "".join(_ENTITY_NAMES.get(c, c) for c in value)


def fullwidth(value: str, rng: random.Random) -> str:
    """Fullwidth forms of ASCII (``＠``), which NFKC folds back."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in value)


def percent(value: str, rng: random.Random) -> str:
    return quote(value, safe="")


def percent_all(value: str, rng: random.Random) -> str:
    return "".join(f"%{b:02X}" for b in value.encode("utf-8"))


def percent_double(value: str, rng: random.Random) -> str:
    return quote(quote(value, safe=""), safe="")


def json_escaped(value: str, rng: random.Random) -> str:
    """The value inside a JSON document kept as a string (a JSInput answer), every non-alphanumeric
    and non-ASCII character written ``\\uXXXX``."""
    escaped = "".join(c if c.isascii() and c.isalnum() else f"\\u{ord(c):04x}" for c in value)
    return '{"answer": "' + escaped + '", "state": "{}"}'


def json_escaped_twice(value: str, rng: random.Random) -> str:
    return json.dumps({"payload": json_escaped(value, rng)})


def upper(value: str, rng: random.Random) -> str:
    return value.upper()


def title(value: str, rng: random.Random) -> str:
    return value.title()


def mixed_case(value: str, rng: random.Random) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in value)


def at_dot_parenthesised(value: str, rng: random.Random) -> str:
    local, _, host = value.partition("@")
    return f"{local} (at) {host.replace('.', ' (dot) ')}"


def at_dot_bracketed(value: str, rng: random.Random) -> str:
    local, _, host = value.partition("@")
    return f"{local}[at]{host.replace('.', '[dot]')}"


def at_dot_words(value: str, rng: random.Random) -> str:
    local, _, host = value.partition("@")
    return f"{local} at {host.replace('.', ' dot ')}"


def spaced_at(value: str, rng: random.Random) -> str:
    return value.replace("@", " @ ")


def truncated(value: str, rng: random.Random) -> str:
    """An address cut off where a text was truncated (the tail of the domain lost)."""
    local, _, host = value.partition("@")
    return f"write to me at {local}@{host[: max(3, len(host) // 2)]}"


def scheme_less_profile(value: str, rng: random.Random) -> str:
    return f"see example.net/u/{value} or linkedin.com/in/{value}"


def phone_tel(value: str, rng: random.Random) -> str:
    return "tel:" + re.sub(r"[\s()]", "", value)


def phone_prefixed(value: str, rng: random.Random) -> str:
    return f"Phone: {value} ext. 12"


def phone_nbsp(value: str, rng: random.Random) -> str:
    return value.replace(" ", "\u00a0")


def phone_en_dash(value: str, rng: random.Random) -> str:
    return value.replace(" ", "\u2013").replace("-", "\u2013")


def _phone_groups(value: str) -> tuple[str, list[str]]:
    """The country code written with ``+`` (or nothing) and the other digit groups of VALUE."""
    groups = re.findall(r"\d+", value)
    if value.lstrip().startswith("+"):
        return f"+{groups[0]} ", groups[1:]
    return "", groups


def phone_slash(value: str, rng: random.Random) -> str:
    """A slash after the area code, as German numbers are written (``030/1234567``)."""
    country, groups = _phone_groups(value)
    if country:
        return country + groups[0] + "/" + "".join(groups[1:])
    return "/".join(groups)


def phone_spaced_dash(value: str, rng: random.Random) -> str:
    country, groups = _phone_groups(value)
    return country + " - ".join(groups)


def phone_underscore(value: str, rng: random.Random) -> str:
    country, groups = _phone_groups(value)
    return country + "_".join(groups)


def ip_padded(value: str, rng: random.Random) -> str:
    return ".".join(part.zfill(3) for part in value.split("."))


def ip_ec2_host(value: str, rng: random.Random) -> str:
    return "ec2-" + value.replace(".", "-") + ".compute-1.amazonaws.com"


def ip_internal_host(value: str, rng: random.Random) -> str:
    return "ip-" + value.replace(".", "-") + ".ec2.internal"


def ip_underscore_host(value: str, rng: random.Random) -> str:
    return "host_" + value


def ip_followed_by_punctuation(value: str, rng: random.Random) -> str:
    return f"from {value}; then ({value})."


def ip_defanged(value: str, rng: random.Random) -> str:
    """As security reports write an address so that it is not a link: ``203[.]0[.]113[.]45``."""
    return value.replace(".", rng.choice(("[.]", "(.)", "[dot]")))


def ip_spaced(value: str, rng: random.Random) -> str:
    return value.replace(".", " . ")


def base64_in_query(value: str, rng: random.Random) -> str:
    """The value base64-encoded in a link's query, as tracking and single-sign-on links carry it."""
    token = base64.urlsafe_b64encode(value.encode("utf-8")).decode("ascii")
    return f"https://lms.learn.example.org/courses/course-v1:NorthwindX+Astro101+2024_T1/jump?ref={token}&utm_source=mail"


def base64_in_path(value: str, rng: random.Random) -> str:
    """The value base64-encoded as a path segment of a link (another site's, or an unknown route)."""
    token = base64.urlsafe_b64encode(value.encode("utf-8")).decode("ascii").rstrip("=")
    return f"https://lms.learn.example.org/api/unknown/v1/{token}/profile"


def _inside(value: str, rng: random.Random) -> int:
    """A position strictly inside VALUE (after its first character, before its last)."""
    return rng.randrange(1, len(value)) if len(value) > 1 else len(value)


def zero_width(value: str, rng: random.Random) -> str:
    """A zero-width space (or joiner, word joiner, byte-order mark) inside, as copy-paste leaves it."""
    at = _inside(value, rng)
    return value[:at] + rng.choice("\u200b\u200c\u200d\u2060\ufeff") + value[at:]


def soft_hyphen(value: str, rng: random.Random) -> str:
    """Soft hyphens (U+00AD, invisible unless a line breaks there) inside each word."""
    return " ".join(_soft(word, rng) for word in value.split(" "))


def _soft(word: str, rng: random.Random) -> str:
    at = _inside(word, rng)
    return word[:at] + "\u00ad" + word[at:]


_HOMOGLYPHS = {"a": "\u0430", "e": "\u0435", "o": "\u043e", "p": "\u0440", "c": "\u0441", "x": "\u0445", "y": "\u0443",
               "i": "\u0456", "M": "\u041c", "T": "\u0422", "K": "\u039a", "O": "\u039f", "B": "\u0392"}  # fmt: skip


def homoglyph(value: str, rng: random.Random) -> str:
    """Latin letters written with their Cyrillic or Greek look-alikes (``е`` U+0435 for ``e``)."""
    return "".join(_HOMOGLYPHS.get(c, c) if rng.random() < 0.6 else c for c in value)


def markdown_escaped(value: str, rng: random.Random) -> str:
    """Punctuation backslash-escaped, as a Markdown editor makes people write ``\\_`` for ``_``."""
    return re.sub(r"([_\-.*+@])", r"\\\1", value)


def html_tags_inside(value: str, rng: random.Random) -> str:
    """HTML tags inside the value (``zel<b>da</b>-q``), or around and between the words of a name."""
    if " " in value:
        first, _, rest = value.partition(" ")
        return rng.choice((f"<b>{first}</b> <i>{rest}</i>", f"{first}<br>{rest}", f"<p>{first}</p><p>{rest}</p>"))
    at = _inside(value, rng)
    return rng.choice((f"{value[:at]}<b>{value[at:]}</b>", f'{value[:at]}<span class="x">{value[at:]}</span>', f"{value[:at]}<!-- -->{value[at:]}"))


def emphasis(value: str, rng: random.Random) -> str:
    """Markdown emphasis inside the value or around one word of a name (``**Mark** Young``)."""
    marker = rng.choice(("*", "**", "***", "~~"))
    if " " in value:
        first, _, rest = value.partition(" ")
        return f"{marker}{first}{marker} {rest}"
    at = _inside(value, rng)
    return f"{value[:at]}{marker}{value[at:]}{marker}"


_COURSE = "course-v1:NorthwindX+Astro101+2024_T1"
_BLOCK = "block-v1:NorthwindX+Astro101+2024_T1+type@problem+block@"


def punctuation_glued(value: str, rng: random.Random) -> str:
    """The value glued to punctuation (``_``, ``-``, ``.``, ``+``, ``@``) inside an id-shaped value:
    a block id, a course run, an input id, a host name, a team slug."""
    shapes = (
        f"{_BLOCK}{value}_q1",
        f"course-v1:NorthwindX+Astro101+{value}",
        f"input_{value}-2_1",
        f"{value}.lms.example.org",
        f"team+{value}@2024",
        f"i4x-NorthwindX-Astro101-problem-{value}.1",
    )
    return rng.choice(shapes)


def path_segment_in_text(value: str, rng: random.Random) -> str:
    """The value as a part of a URL path segment or of a usage or course key in a link."""
    part = quote(value, safe="._-~")
    shapes = (
        f"https://lms.learn.example.org/courses/{_COURSE}/courseware/i4x:{part}/1",
        f"https://lms.learn.example.org/courses/{_COURSE}/xblock/{_BLOCK}{part}_v2/handler/xmodule_handler/problem_get",
        f"/courses/NorthwindX/{part}/2024_T1/about",
        f"https://{part}.example.org/courses/{_COURSE}/about",
        f"i4x://NorthwindX/Astro101/problem/{part}_1",
    )
    return rng.choice(shapes)


def cjk_glued(value: str, rng: random.Random) -> str:
    """The value inside Chinese or Japanese prose, which puts no spaces between words."""
    shapes = (f"请联系{value}谢谢", f"学号{value}。", f"{value}さんへ", f"电话{value}吗", f"{value}님 안녕")
    return rng.choice(shapes)


def other_script_glued(value: str, rng: random.Random) -> str:
    """The value glued to a word of another script (Cyrillic, Greek) typed without a space."""
    shapes = (f"спроси{value}", f"{value}спасибо", f"ρώτα{value}")
    return rng.choice(shapes)


def id_prefixed(value: str, rng: random.Random) -> str:
    """A user id as people write one: after ``#``, ``uid:``, ``ID:``, ``user-``, ``No.``, zero-padded, as a float."""
    shapes = (f"user #{value}", f"uid:{value}", f"ID:{value}", f"user-{value}", f"No.{value}", f"0{value}", f"{value}.0")
    return rng.choice(shapes)


_RUNS = re.compile(r"[^\W_]+")


def other_separators(value: str, rng: random.Random) -> str:
    """A username retyped with another separator between its runs of letters and digits
    (``quinn-harrow``, ``quinn.harrow``, ``quinn harrow`` for ``quinn_harrow``)."""
    runs = _RUNS.findall(value)
    used = set(re.sub(r"[^\W_]+", "", value))
    return rng.choice([sep for sep in "_-. " if sep not in used] or [" "]).join(runs)


def separators_removed(value: str, rng: random.Random) -> str:
    """A username retyped without its separators (``quinnharrow``)."""
    return "".join(_RUNS.findall(value))


def separated(value: str) -> bool:
    """Whether a username has runs to separate otherwise: two or more, six letters and digits in all."""
    runs = _RUNS.findall(value)
    return len(runs) >= 2 and len("".join(runs)) >= 6


def local_part_alone(value: str, rng: random.Random) -> str:
    """An address's local part written alone (``zq.1999`` for ``zq.1999@example.org``)."""
    return value.partition("@")[0]


# (label, function, kinds it applies to)
DISGUISES = (
    ("entity_decimal", entity_decimal, {"email", "username", "name"}),
    ("entity_hex", entity_hex, {"email", "username", "name"}),
    ("entity_named", entity_named, {"email", "username", "name"}),
    ("fullwidth", fullwidth, {"email", "username", "user_id", "phone", "ip"}),
    ("percent", percent, {"email", "username", "name"}),
    ("percent_all", percent_all, {"email", "username", "name", "user_id"}),
    ("percent_double", percent_double, {"email", "username", "name"}),
    ("json_escaped", json_escaped, {"email", "username", "name"}),
    ("json_escaped_twice", json_escaped_twice, {"email", "username", "name"}),
    ("upper", upper, {"email", "username", "name"}),
    ("title", title, {"email", "username"}),
    ("mixed_case", mixed_case, {"email", "username"}),
    ("at_dot_parenthesised", at_dot_parenthesised, {"email"}),
    ("at_dot_bracketed", at_dot_bracketed, {"email"}),
    ("at_dot_words", at_dot_words, {"email"}),
    ("spaced_at", spaced_at, {"email"}),
    ("truncated", truncated, {"email"}),
    ("scheme_less_profile", scheme_less_profile, {"username"}),
    ("phone_tel", phone_tel, {"phone"}),
    ("phone_prefixed", phone_prefixed, {"phone"}),
    ("phone_nbsp", phone_nbsp, {"phone"}),
    ("phone_en_dash", phone_en_dash, {"phone"}),
    ("phone_slash", phone_slash, {"phone"}),
    ("phone_spaced_dash", phone_spaced_dash, {"phone"}),
    ("phone_underscore", phone_underscore, {"phone"}),
    ("ip_padded", ip_padded, {"ip"}),
    ("ip_defanged", ip_defanged, {"ip"}),
    ("ip_spaced", ip_spaced, {"ip"}),
    ("ip_ec2_host", ip_ec2_host, {"ip"}),
    ("ip_internal_host", ip_internal_host, {"ip"}),
    ("ip_underscore_host", ip_underscore_host, {"ip"}),
    ("ip_followed_by_punctuation", ip_followed_by_punctuation, {"ip"}),
    ("base64_in_query", base64_in_query, {"email", "username", "name"}),
    ("base64_in_path", base64_in_path, {"email", "username", "name"}),
    ("punctuation_glued", punctuation_glued, {"username"}),
    ("zero_width", zero_width, {"email", "username", "name", "user_id"}),
    ("soft_hyphen", soft_hyphen, {"email", "username", "name", "user_id"}),
    ("homoglyph", homoglyph, {"email", "username", "name"}),
    ("markdown_escaped", markdown_escaped, {"email", "username"}),
    ("html_tags_inside", html_tags_inside, {"email", "username", "name", "user_id"}),
    ("emphasis", emphasis, {"email", "username", "name"}),
    ("path_segment_in_text", path_segment_in_text, {"username"}),
    ("cjk_glued", cjk_glued, {"username", "name", "user_id", "ip", "phone"}),
    # (not user ids: a digit glues to a letter of any script written with spaces, as in `id530114`)
    ("other_script_glued", other_script_glued, {"username", "name"}),
    ("id_prefixed", id_prefixed, {"user_id"}),
    ("other_separators", other_separators, {"username"}),
    ("separators_removed", separators_removed, {"username"}),
    ("local_part_alone", local_part_alone, {"email"}),
)


# Planted after every other class, so that adding them changed no earlier plant of the set.
LATE_DISGUISES = frozenset({"cjk_glued", "other_script_glued", "id_prefixed", "other_separators", "separators_removed", "local_part_alone"})
SEPARATOR_DISGUISES = ("other_separators", "separators_removed")


def disguises_for(kind: str, value: str) -> list[tuple[str, object]]:
    """The disguises that apply to a value of KIND (IPv6 addresses only take the punctuation one)."""
    found = [(label, fn) for label, fn, kinds in DISGUISES if kind in kinds]
    if kind == "ip" and ":" in value:
        found = [(label, fn) for label, fn in found if label in ("ip_followed_by_punctuation", "fullwidth", "cjk_glued")]
    if kind == "user_id" and len(value) < 5:
        found = [(label, fn) for label, fn in found if label not in ("cjk_glued", "other_script_glued", "id_prefixed")]
    if kind == "username" and not separated(value):
        found = [(label, fn) for label, fn in found if label not in SEPARATOR_DISGUISES]
    return found
