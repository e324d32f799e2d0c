"""The codebook: what a package holds and what was done to each field, for the researchers who use it.

Every package carries ``codebook.json`` and ``README.md`` (the same content, for programs and for
people), made from the plan the run executed and the manifest's counts, and written before the
manifest so that the manifest lists both with their sha256 and the signature covers them.

Every word about a field is derived from its operator and that operator's parameters (the prefix
length, the shapes a ``keep`` accepts, the placeholders text scrubbing writes), never written per
policy. Nothing in a codebook comes from the logs beyond what the manifest already names: course
keys, event type labels and counts.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Iterator

import orjson

from ..core.operators.scrub_url import EMAIL as URL_EMAIL
from ..core.operators.scrub_url import SECRET as URL_SECRET
from ..core.plan import Cases, Container, Decode, EmptyPayload, Op, Payload, Plan, Rule, Skip
from ..core.pseudonyms import NUMBER_BITS, TEXT_HEX_CHARS
from ..core.suppression import RARE
from ..core.text.detectors import PLACEHOLDERS as DETECTOR_PLACEHOLDERS
from ..core.text.mentions import PLACEHOLDERS as ROSTER_PLACEHOLDERS
from ..core.url_routes import PSEUDONYM_KINDS
from .columns import EVENTS_FORMATS, describe as describe_columns

CODEBOOK_JSON = "codebook.json"
CODEBOOK_README = "README.md"
CODEBOOK_FILES = (CODEBOOK_README, CODEBOOK_JSON)
CODEBOOK_VERSION = 1

# What each named shape of ``keep`` accepts, in a researcher's words (``anonymizer.core.operators.keep.SHAPES``).
SHAPE_WORDS = {
    "course_key": "a course key",
    "usage_key": "a block (usage) key",
    "org": "an organization code",
    "slug": "a slug (letters, digits, `_ . -`)",
    "hostname": "a host name",
    "uuid": "a UUID",
    "hex_id": "a hexadecimal id",
    "number": "a number",
    "iso_time": "an ISO 8601 time",
    "word": "a short word (an identifier such as a mode or a component name)",
    "boolean": "a boolean",
    "language": "a language tag",
    "time_zone": "a time zone name",
    "b64_digest": "a base64 digest",
    "grade_letter": "a letter grade",
    "mime_type": "a media type",
    "scalar": "a string, number, boolean or null (never an object or a list)",
}
DETECTOR_WORDS = {"email": "emails", "url": "URLs", "ip": "IP addresses", "phone": "phone numbers"}
# identity -> (what the pseudonym is made from, who it stands for)
IDENTITY_WORDS = {
    "username": ("username", "learner"),
    "user_id": ("user id", "learner"),
    "session": ("session id", "session"),
    "forum_post": ("forum post id (a thread, response or comment: one id space)", "forum post"),
    "submission": ("ORA2 submission UUID", "submission"),
}
DROP_REASONS = {
    "event_type_dropped_by_rule": "the policy drops this event type",
    "event_type_not_in_policy": "no rule of the policy names this event type (what a policy does not name is dropped)",
    "not_selected": "left out by the run's selection (courses, dates, event types, staff)",
}
FIELD_DROP_REASONS = {
    "unnamed": "no rule names the field (what a policy does not name is dropped)",
    "invalid_value": "the value did not have the shape its rule accepts (e.g. an address that is not one)",
    "condition_not_met": "the field is kept only under a condition on its siblings, which did not hold",
    "unsafe_key": "a key that is data did not pass the key check (it could carry a person)",
    "unparseable": "a payload that could not be decoded was emptied, never copied",
}


# ---------------------------------------------------------------- what one operator does


# What the run knew of people: ROSTER is one of these.
NO_PEOPLE, LEARNED, LISTED = 0, 1, 2  # none; learned from the logs only; a roster given (--roster)


def describe_op(op: Op, plan: Plan, *, roster: int = NO_PEOPLE) -> str:
    """What OP, with its parameters, does to a value, in words (ROSTER: what the run knew of people)."""
    params = op.params
    describe = _DESCRIBERS.get(op.op)
    if describe is None:
        shown = ", ".join(f"{name}={orjson.dumps(value).decode()}" for name, value in sorted(params.items()))
        return f"operator `{op.op}`" + (f" ({shown})" if shown else "")
    return describe(params, plan, roster)


def _pseudonymize(params: dict, plan: Plan, roster: int) -> str:
    identity = params["identity"]
    namespace = plan.namespaces.get(identity)
    source, who = IDENTITY_WORDS.get(identity, (f"`{identity}` value", f"`{identity}` value"))
    same = f"the same {who} has the same pseudonym in every field and every file of this package"
    if namespace is None:
        return f"pseudonym of the {source}; {same}"
    case = ", whatever its case" if namespace.fold else ""
    if namespace.format == "number":
        text = (
            f"pseudonym: a positive integer below 2^{NUMBER_BITS} (a keyed HMAC-SHA256 of the {source}{case}); integers stay "
            f"integers, numeric strings stay strings; {same}"
        )
    else:
        text = f"pseudonym: `{namespace.prefix}` + {TEXT_HEX_CHARS} hex digits (a keyed HMAC-SHA256 of the {source}{case}); {same}"
    if identity == "username":
        text += "; an email typed where a username belongs gets a pseudonym of its own"
        if roster == LISTED:
            text += "; a person listed in the roster with a user id gets the prefix followed by their user-id pseudonym, so the two join"
    return text


def _mask_ip(params: dict, plan: Plan, roster: int) -> str:
    text = (
        f"IP address truncated to its network: IPv4 to /{params['ipv4_prefix']}, IPv6 to /{params['ipv6_prefix']} "
        "(the host bits set to zero); a forwarding chain is masked address by address; a value that is not an address is dropped"
    )
    return text + _suppressed(params, "network")


def _generalize_agent(params: dict, plan: Plan, roster: int) -> str:
    browser = "browser family and major version" if params.get("browser_version", True) else "browser family only (no version)"
    text = (
        f"user agent reduced to {browser}, OS family and device class (desktop, mobile, tablet, bot, other), written "
        "`browser / OS / device`; a name outside the parser's own vocabulary becomes `Other`"
    )
    return text + _suppressed(params, "generalized agent")


def _suppressed(params: dict, what: str) -> str:
    size = params.get("min_group_size") or 0
    if size <= 1:
        return ""
    return (
        f"; a {what} shared by fewer than {size} learners in the whole package is replaced by `{RARE}` "
        "(counted over all inputs before writing)"
    )


def _scrub_text(params: dict, plan: Plan, roster: int) -> str:
    found = [f"{DETECTOR_WORDS.get(kind, kind)} by {DETECTOR_PLACEHOLDERS[kind]}" for kind in params["detectors"] if kind in DETECTOR_PLACEHOLDERS]
    text = "free text, kept with " + (", ".join(found) + " replaced" if found else "nothing detected in it")
    if "phone" in params["detectors"]:
        text += f" (phone numbers checked against the numbering plans of {len(params['phone_regions'])} regions)"
    if params.get("actor_usernames", True):
        text += "; the acting learner's username replaced by their pseudonym"
    if params.get("roster", True) and roster:
        names = ROSTER_PLACEHOLDERS
        text += (
            f"; the people of the roster and of the logs found in it: names by {names['name']}, emails by {names['email']}, "
            f"user ids by {names['user_id']}, usernames by their pseudonym"
        )
    return text


def _scrub_url(params: dict, plan: Plan, roster: int) -> str:
    text = (
        "URL or path: scheme and host kept (a host that is an IP address becomes [IP]); query, fragment, user info and "
        "`;name=value` path parameters removed; a path segment is kept only when it is known to be safe (a route word, a "
        "course, block or asset key, a static file name, an id where a known route puts one); people in paths become their "
        f"pseudonym, emails {URL_EMAIL}, anything else {URL_SECRET}"
    )
    posts = plan.namespaces.get(PSEUDONYM_KINDS["forum_post"])
    if posts is not None:
        text += f"; a forum thread, response or comment id where a forum route puts one becomes its `{posts.prefix}` pseudonym, the one the events' post-id fields get"
    else:
        text += f"; a forum thread, response or comment id becomes {URL_SECRET} (the policy has no `forum_post` identity)"
    extra = []
    if params.get("safe_words"):
        extra.append(f"{len(params['safe_words'])} more route word(s) from the policy")
    if params.get("routes"):
        extra.append(f"{len(params['routes'])} more route template(s) from the policy")
    if params.get("user_markers") is not None or params.get("secret_markers") is not None:
        extra.append("the policy's own user and secret markers")
    if extra:
        text += " (with " + ", ".join(extra) + ")"
    if params.get("event_names"):
        text += f"; a value that is not a URL or path is an event name, kept when it is a plain name, else {URL_SECRET}"
    return text


def _keep(params: dict, plan: Plan, roster: int) -> str:
    shapes = list(params.get("shape") or ("scalar",))
    if "any" in shapes:
        return "copied as it is, whatever it holds"
    words = " or ".join(SHAPE_WORDS.get(shape, f"of shape `{shape}`") for shape in shapes)
    text = f"kept when it is {words}; any other value is dropped (counted as invalid_value)"
    if params.get("authored"):
        text += "; the policy marks it as text written by the course team or the platform, not by learners"
    return text


def _truncate_time(params: dict, plan: Plan, roster: int) -> str:
    return f"timestamp truncated to the {params['unit']} (its time zone offset as written); a value that is not a timestamp is dropped"


def _primary_language(params: dict, plan: Plan, roster: int) -> str:
    return "only the first language tag of the header (such as `en-US`); the other languages and weights removed"


def _redact(params: dict, plan: Plan, roster: int) -> str:
    return f"replaced by the fixed value {orjson.dumps(params.get('value')).decode()}, whatever it held"


def _drop(params: dict, plan: Plan, roster: int) -> str:
    return "dropped"


def _generalize_year(params: dict, plan: Plan, roster: int) -> str:
    width = params["width"]
    return (
        f"year generalized to a band of {width} years starting at a multiple of {width}, written `FIRST-LAST` with both "
        "years included; a value that is not a year is dropped"
    )


_DESCRIBERS = {
    "pseudonymize": _pseudonymize,
    "mask_ip": _mask_ip,
    "generalize_agent": _generalize_agent,
    "scrub_text": _scrub_text,
    "scrub_url": _scrub_url,
    "keep": _keep,
    "truncate_time": _truncate_time,
    "primary_language": _primary_language,
    "redact": _redact,
    "drop": _drop,
    "generalize_year": _generalize_year,
}


# ---------------------------------------------------------------- walking a rule's tree


def _join(path: str, token: str) -> str:
    if token.startswith("["):
        return path + token
    return f"{path}.{token}" if path else token


def _when(when: dict | None) -> str:
    if not when:
        return "otherwise"
    parts = [f"`{sibling}` is " + " or ".join(orjson.dumps(v).decode() for v in values) for sibling, values in when.items()]
    return "when " + " and ".join(parts)


def field_entries(node: Any, path: str, plan: Plan, roster: int, decoded: tuple[str, ...] = ()) -> Iterator[dict]:
    """One entry per field position under NODE (at PATH): its path, operator, parameters and description.
    A field dropped by its rule has the operator ``drop``. DECODED: the encodings of the strings it is inside."""
    base = {"decoded": list(decoded)} if decoded else {}
    if node is None:
        return
    if isinstance(node, Op):
        yield {"path": path, "op": node.op, "params": node.params, "description": describe_op(node, plan, roster=roster), **base}
    elif isinstance(node, Skip):
        yield {"path": path, "op": "drop", "params": {}, "description": "dropped by the policy", **base}
    elif isinstance(node, Decode):
        yield from field_entries(node.value, path, plan, roster, decoded + (node.encoding,))
    elif isinstance(node, Cases):
        parts, ops = [], []
        for case in node.cases:
            if isinstance(case.rule, Op):
                parts.append(f"{_when(case.when)}: {describe_op(case.rule, plan, roster=roster)}")
                ops.append({"when": _plain_when(case.when), "op": case.rule.op, "params": case.rule.params})
            else:
                parts.append(f"{_when(case.when)}: dropped")
                ops.append({"when": _plain_when(case.when), "op": "drop", "params": {}})
        if not any(case.when is None for case in node.cases):
            parts.append("otherwise: dropped")
        yield {"path": path, "op": "cases", "cases": ops, "description": "; ".join(parts), **base}
    elif isinstance(node, Container):
        if node.own is not None:
            yield from field_entries(node.own, path, plan, roster, decoded)
        for key in node.keys:
            entries = list(field_entries(key.rule, _join(path, key.key), plan, roster, decoded))
            if key.when:
                for entry in entries:
                    entry["description"] = f"kept only {_when(key.when)}; " + entry["description"]
            yield from entries
        for item in node.items:
            yield from field_entries(item.rule, _join(path, f"[{item.index}]"), plan, roster, decoded)
        if node.any is not None:
            yield from field_entries(node.any, _join(path, "*"), plan, roster, decoded)
    elif isinstance(node, Payload):
        if node.value is None:
            yield {"path": path, "op": "drop", "params": {}, "description": "emptied: nothing of the payload is kept", **base}
        else:
            yield from field_entries(node.value, path, plan, roster, decoded)
    elif isinstance(node, EmptyPayload):
        yield {"path": path, "op": "drop", "params": {}, "description": "emptied: the policy keeps only the envelope of these events", **base}


def _plain_when(when: dict | None) -> dict | None:
    return {sibling: list(values) for sibling, values in when.items()} if when else None


# ---------------------------------------------------------------- event types present


def _rule_of(plan: Plan, label: str) -> Rule | None:
    """The rule the manifest's event-type LABEL was counted under (an exact name or the glob that matched)."""
    for match in plan.dispatch:
        if match.pattern == label:
            return plan.rules[match.rule]
    return None


def _event_types(plan: Plan, counts: dict) -> list[dict]:
    out = []
    for label, outcome in sorted((counts.get("event_types") or {}).items()):
        rule = _rule_of(plan, label)
        entry = {
            "name": label,
            "written": int(outcome.get("written", 0)),
            "dropped": int(outcome.get("dropped", 0)),
            "rule": rule.index if rule is not None else None,
            "envelope": rule.envelope if rule is not None else (plan.fallback.envelope if plan.fallback.action != "drop" else None),
        }
        for bound in ("first_day", "last_day"):
            if isinstance(outcome.get(bound), str):
                entry[bound] = outcome[bound]
        out.append(entry)
    return out


def _dropped(counts: dict) -> dict:
    events = {reason: {"count": count, "why": DROP_REASONS.get(reason, reason)} for reason, count in (counts.get("dropped") or {}).items()}
    if isinstance(counts.get("not_selected"), int) and counts["not_selected"]:  # when selection counts it beside the drops
        events.setdefault("not_selected", {"count": counts["not_selected"], "why": DROP_REASONS["not_selected"]})
    fields = {}
    for label, paths in sorted((counts.get("dropped_fields") or {}).items()):
        for path, reasons in sorted(paths.items()):
            for reason, count in sorted(reasons.items()):
                fields.setdefault(reason, {"why": FIELD_DROP_REASONS.get(reason, reason), "count": 0, "by_event_type": {}})
                fields[reason]["count"] += count
                fields[reason]["by_event_type"].setdefault(label, {})[path] = count
    return {"events": events, "fields": fields}


def _courses_and_days(manifest: dict) -> dict:
    """The courses and days of the package's files, when the manifest records them."""
    courses: dict[str, int] = {}
    days: set[str] = set()
    for entry in manifest.get("files") or ():
        course, day = entry.get("course"), entry.get("day")
        if isinstance(course, str):
            courses[course] = courses.get(course, 0) + int(entry.get("events") or 0)
        if isinstance(day, str):
            days.add(day)
    out: dict[str, Any] = {}
    if courses:
        out["courses"] = [{"course": course, "events": events} for course, events in sorted(courses.items())]
    if days:
        out["days"] = {"first": min(days), "last": max(days), "count": len(days)}
    return out


# ---------------------------------------------------------------- the codebook


def build_codebook(plan: Plan, manifest: dict) -> dict:
    """The codebook of a package: PLAN (what the run executed) and MANIFEST (its counts and files,
    before the codebook's own entries are added) as a JSON-ready dict. Pure: same inputs, same dict."""
    counts = manifest.get("counts") or {}
    roster = LISTED if manifest.get("roster") else (LEARNED if any((manifest.get("learned_roster") or {}).values()) else NO_PEOPLE)
    types = _event_types(plan, counts)
    envelopes = sorted({t["envelope"] for t in types if t["written"] and t["envelope"] is not None})
    payloads = {}
    for entry in types:
        if not entry["written"] or entry["rule"] is None:
            continue
        rule = plan.rules[entry["rule"]]
        entry["payload"] = list(field_entries(rule.payload, "event", plan, roster))
        payloads[entry["name"]] = entry["payload"]
    if any(t["written"] and t["rule"] is None for t in types) and plan.fallback.action == "envelope":
        for entry in types:
            if entry["rule"] is None:
                entry["payload"] = list(field_entries(plan.fallback.payload, "event", plan, roster))
    policy = manifest.get("policy") or {}
    codebook = {
        "codebook_version": CODEBOOK_VERSION,
        "policy": {"name": plan.policy, "sha256": policy.get("sha256")},
        "key_id": manifest.get("key_id"),
        "pseudonym_version": manifest.get("pseudonym_version"),
        "counts": {"read": counts.get("read", 0), "written": counts.get("written", 0), "files": len(manifest.get("files") or ())},
        "event_types": types,
        "envelopes": {str(index): list(field_entries(plan.envelopes[index], "", plan, roster)) for index in envelopes},
        "dropped": _dropped(counts),
        "verify": {
            "command": "anonymizer verify PACKAGE --public-key SIGNER.pub",
            "what": "checks every file against the sha256 the manifest lists (this codebook included), refuses files it does not "
            "list, checks manifest.sig with the public key of whoever signed the package, and scans every byte for identifiers",
        },
    }
    if plan.events_format != "tracking-log":  # named only for statements: a tracking-log codebook reads as before
        codebook["events"] = plan.events_format
    codebook.update(_courses_and_days(manifest))
    parquet = _parquet(manifest)
    if parquet is not None:
        codebook["format"] = parquet
    if manifest.get("pseudonyms") == PER_COURSE:
        codebook["pseudonyms"] = PER_COURSE
        codebook = _per_course(codebook)
    return codebook


def _parquet(manifest: dict) -> dict | None:
    """The files' format and columns, for a Parquet package (``run --format parquet``)."""
    described = manifest.get("format")
    if not isinstance(described, dict) or described.get("files") != "parquet":
        return None
    events = described.get("schema") if described.get("schema") in EVENTS_FORMATS else EVENTS_FORMATS[0]
    return {"files": "parquet", "schema": events, "schema_version": described.get("schema_version"), "columns": describe_columns(events)}


PER_COURSE = "per-course"
_EVERYWHERE = "in every field and every file of this package"
_PER_COURSE = (
    "in every field and every file within one course of this package; in another course the same person has another "
    "pseudonym (per-course pseudonyms: learners cannot be followed from one course to another)"
)


def _per_course(value: Any) -> Any:
    """VALUE with every pseudonym's description saying it holds within one course (``run
    --pseudonyms per-course``): the descriptions are written for the global mode."""
    if isinstance(value, str):
        return value.replace(_EVERYWHERE, _PER_COURSE)
    if isinstance(value, list):
        return [_per_course(item) for item in value]
    if isinstance(value, dict):
        return {key: _per_course(item) for key, item in value.items()}
    return value


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(codebook: dict) -> str:
    """The codebook as the package's README.md."""
    parquet = codebook.get("format")
    statements = codebook.get("events") == "xapi"
    event = "xAPI statement" if statements else "event"
    holds = (
        f"Each `.parquet` file holds one {event} per row, in the columns listed below."
        if parquet else f"Each `.gz` file holds one JSON {event} per line."
    )
    lines = [
        "# Research data package",
        "",
        f"Pseudonymized Open edX {'xAPI statements' if statements else 'tracking logs'}, made by `anonymizer` under the policy `{codebook['policy']['name']}` "
        f"(sha256 `{codebook['policy']['sha256']}`) with the key id `{codebook['key_id']}`. {holds} "
        "`codebook.json` holds what this page says, for programs; `manifest.json` lists every file with its "
        "sha256 and accounts for every input line.",
        "",
        f"{codebook['counts']['written']} events written from {codebook['counts']['read']} lines read, in "
        f"{codebook['counts']['files']} file(s).",
        "",
    ]
    if parquet:
        lines += _columns_markdown(parquet)
    if "courses" in codebook or "days" in codebook:
        lines += ["## Courses and days", ""]
        for course in codebook.get("courses", ()):
            lines.append(f"- `{course['course']}`: {course['events']} events")
        if "days" in codebook:
            days = codebook["days"]
            lines.append(f"- {days['count']} day(s), from {days['first']} to {days['last']} (UTC)")
        lines.append("")
    lines += ["## Event types", "", "| event type | written | dropped | first day | last day |", "|---|---:|---:|---|---|"]
    for entry in codebook["event_types"]:
        lines.append(
            f"| `{_md_escape(entry['name'])}` | {entry['written']} | {entry['dropped']} | {entry.get('first_day', '')} | {entry.get('last_day', '')} |"
        )
    lines += [
        "",
        "An event type is named as itself when a rule of the policy names it exactly, under the pattern that matched it "
        "(`/*`: implicit events, whose type is a URL path), else as `<other>`.",
        "",
    ]
    users = {index: [f"`{t['name']}`" for t in codebook["event_types"] if t["written"] and str(t["envelope"]) == index] for index in codebook["envelopes"]}
    common = max(users, key=lambda index: len(users[index]), default=None)
    others = [name for index in users if index != common for name in users[index]]
    notes: dict[str, int] = {}  # a treatment's full text -> its number, each written once
    for index in sorted(codebook["envelopes"], key=lambda index: index != common):
        fields = codebook["envelopes"][index]
        if index == common:
            title = "## Fields of every event" + (f" (but {', '.join(others)}: below)" if others else "")
        else:
            title = f"## Fields of the events {', '.join(users[index])}"
        lines += [title, ""] + _field_table(fields, notes) + [""]
    lines += ["## Fields of each event type's payload (`event`)", ""]
    for entry in codebook["event_types"]:
        if "payload" in entry:
            lines += [f"### `{_md_escape(entry['name'])}`", ""] + _field_table(entry["payload"], notes) + [""]
    if notes:
        lines += ["## Notes on the treatments", "", "The tables above give the first words of each treatment; here it is in full.", ""]
        lines += [f"{number}. {_md_escape(text)}" for text, number in notes.items()] + [""]
    lines += _dropped_markdown(codebook["dropped"])
    lines += [
        "## How to verify this package",
        "",
        "```sh",
        codebook["verify"]["command"],
        "```",
        "",
        codebook["verify"]["what"][0].upper() + codebook["verify"]["what"][1:] + ". Without `--public-key`, the hashes are "
        "still checked but not who made them. The data owner can add `--against RAW_LOGS` to search the package for every "
        "identifier of the raw logs.",
        "",
    ]
    return "\n".join(lines)


def _columns_markdown(parquet: dict) -> list[str]:
    """The columns of the Parquet files, and how the fields below map to them."""
    lines = [
        f"## Columns of the Parquet files ({parquet['schema']} schema, version {parquet['schema_version']})",
        "",
        "| column | type | from |",
        "|---|---|---|",
    ]
    lines += [f"| `{c['name']}` | {c['type']} | {_md_escape(c['from'])} |" for c in parquet["columns"]]
    lines += [
        "",
        "The fields below are named by their path in the event; in the Parquet files, each is in its column, or inside "
        "the JSON text of `event`, `context`, `extra` or `statement`. A null is a field the event does not have (or, "
        "in a tracking-log package, one whose value is in `extra`, as the table says).",
        "",
    ]
    return lines


def _field_table(fields: list[dict], notes: dict[str, int]) -> list[str]:
    """A table of FIELDS: a treatment's first clause, and the number of its full text in NOTES
    (a long description repeated for every field would bury the table)."""
    if not fields:
        return ["Nothing is kept."]
    out = ["| field | what was done |", "|---|---|"]
    for entry in fields:
        inside = f" (inside a {' and '.join(entry['decoded'])} string)" if entry.get("decoded") else ""
        text = entry["description"]
        summary, _, rest = text.partition("; ")
        if rest:
            number = notes.setdefault(text, len(notes) + 1)
            summary += f" (note {number})"
        out.append(f"| `{_md_escape(entry['path'] or '(whole value)')}`{inside} | {_md_escape(summary)} |")
    return out


def _dropped_markdown(dropped: dict) -> list[str]:
    lines = [
        "## What was dropped, and why",
        "",
        "What the policy does not name is dropped: fields no rule names, and event types no rule names. Fields marked "
        "\"dropped by the policy\" above are removed from every event without being counted.",
        "",
    ]
    if dropped["events"]:
        lines += ["| events dropped | count | why |", "|---|---:|---|"]
        for reason, entry in sorted(dropped["events"].items()):
            lines.append(f"| {reason} | {entry['count']} | {entry['why']} |")
        lines.append("")
    if dropped["fields"]:
        lines += ["| fields dropped | count | why |", "|---|---:|---|"]
        for reason, entry in sorted(dropped["fields"].items()):
            lines.append(f"| {reason} | {entry['count']} | {entry['why']} |")
        lines += ["", "`codebook.json` and `manifest.json` break these counts down by event type and field path.", ""]
    return lines


def codebook(plan: Plan, manifest: dict) -> tuple[dict, str]:
    """(codebook.json's content, README.md's text) for PLAN and MANIFEST."""
    data = build_codebook(plan, manifest)
    return data, render_markdown(data)


def write_codebook(directory: Path, plan: Plan, manifest: dict) -> list[dict]:
    """Write README.md and codebook.json into DIRECTORY; their manifest entries (path, sha256, bytes)."""
    data, text = codebook(plan, manifest)
    return write_documents(directory, data, text)


def write_documents(directory: Path, data: dict, text: str) -> list[dict]:
    """Write a codebook (DATA as codebook.json, TEXT as README.md) into DIRECTORY; their manifest entries."""
    entries = []
    for name, content in (
        (CODEBOOK_README, text.encode("utf-8")),
        (CODEBOOK_JSON, orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE)),
    ):
        path = Path(directory) / name
        temporary = path.with_name(f".{name}.partial")
        with open(temporary, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        entries.append({"path": name, "sha256": hashlib.sha256(content).hexdigest(), "bytes": len(content)})
    return entries
