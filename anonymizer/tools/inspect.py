"""What a set of logs holds, without a value from it: the starting point for writing a policy.

Event types are counted by their label (URL paths as ``<url>``), payload encodings by name, field
paths (envelope and decoded payload, as a policy names them) with the kinds of value they hold,
and rejected lines by reason. A kind is a type (``string``, ``integer`` …) or a shape that says
nothing about the value itself (``email-like``, ``ip-like``, ``iso-time`` …). Data-like keys are
reported as ``*``, as in the manifest.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import orjson

from ..io.inputs import collect_inputs, open_lines
from ..core.lines import event_key, parse_line
from ..core.outcomes import RejectReason
from ..core.plan import decode_payload, safe_key
from ..core.strictjson import StrictJSONError
from ..core.stats import RejectionList, event_type_label

FORMAT_VERSION = 1
MAX_DEPTH = 16  # deeper values are counted as the container they are, not walked
MAX_PATHS_PER_EVENT_TYPE = 2000  # beyond this, new paths are only counted (data-like keys that look like names)
MAX_REJECTIONS_LISTED = 100
LONG_TEXT = 200  # characters; the only length a kind reveals is "more than this"

_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
_NUMERIC = re.compile(r"^[+-]?\d+(\.\d+)?([eE][+-]?\d+)?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://\S+$")
_HEX_ID = re.compile(r"^(?:[0-9a-fA-F]{16,}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")
_IP_CHARS = re.compile(r"^[0-9a-fA-F:.,\s]+$")
_QUERY = re.compile(r"^[\w.%+\-\[\]]+=[^\s&]*(?:&[\w.%+\-\[\]]+=[^\s&]*)*$")
_HEXISH = re.compile(r"[0-9a-fA-F]{16,}")
_WHITESPACE = re.compile(r"\s")

# Every kind a report can hold, in the order they are tried for strings.
KINDS = (
    "null", "boolean", "integer", "float", "object", "array", "empty-string",
    "json-string", "iso-time", "numeric-string", "ip-like", "email-like", "url", "url-path",
    "hex-id", "query-string", "long-text", "text", "string",
)  # fmt: skip


def _is_ip_like(text: str) -> bool:
    """An address, or a forwarding chain of them (``a, b``)."""
    if not _IP_CHARS.match(text) or ("." not in text and ":" not in text):
        return False
    try:
        for part in text.split(","):
            ipaddress.ip_address(part.strip())
    except ValueError:
        return False
    return True


def string_kind(text: str) -> str:
    """The kind of a string: a shape when the whole string has one, else ``text`` (it has
    spaces), ``long-text`` (more than 200 characters) or ``string``."""
    if not text:
        return "empty-string"
    first = text[0]
    if first in "{[":
        try:
            decoded = orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
        else:
            if type(decoded) is dict or type(decoded) is list:
                return "json-string"
    if first.isdigit():
        if _ISO_TIME.match(text):
            return "iso-time"
        if _NUMERIC.match(text):
            return "numeric-string"
    elif first in "+-" and _NUMERIC.match(text):
        return "numeric-string"
    if _is_ip_like(text):
        return "ip-like"
    if _HEX_ID.match(text):
        return "hex-id"
    if "@" in text and _EMAIL.match(text):
        return "email-like"
    if _URL.match(text):
        return "url"
    if first == "/" and not _WHITESPACE.search(text):
        return "url-path"
    if "=" in text and _QUERY.match(text):
        return "query-string"
    if len(text) > LONG_TEXT:
        return "long-text"
    if _WHITESPACE.search(text):
        return "text"
    return "string"


def value_kind(value: Any) -> str:
    """The kind of any JSON value."""
    kind = type(value)
    if kind is str:
        return string_kind(value)
    if value is None:
        return "null"
    if kind is bool:
        return "boolean"
    if kind is int:
        return "integer"
    if kind is float:
        return "float"
    if kind is dict:
        return "object"
    if kind is list:
        return "array"
    return "string"


def _key(key: Any) -> str:
    """A key as the report names it: ``safe_key``, and ``*`` too for keys that hold a long hex run
    (problem input ids such as ``<32 hex digits>_2_1``), so that each problem is not a path of its own."""
    key = safe_key(key)
    return "*" if _HEXISH.search(key) else key


_JOINED: dict[tuple[str, Any], str] = {}


def _join(path: str, key: Any) -> str:
    joined = _JOINED.get((path, key))
    if joined is None:
        name = _key(key)
        joined = f"{path}{name}" if name == "[*]" else (f"{path}.{name}" if path else name)
        if len(_JOINED) > 100_000:  # data-like keys are unbounded; their paths are not
            _JOINED.clear()
        _JOINED[(path, key)] = joined
    return joined


@dataclass
class EventTypeInventory:
    """What the events of one event type (label) hold."""

    events: int = 0
    sources: Counter = field(default_factory=Counter)
    encodings: Counter = field(default_factory=Counter)
    fields: dict[str, Counter] = field(default_factory=dict)
    fields_not_listed: int = 0

    def _note(self, path: str, kind: str) -> None:
        kinds = self.fields.get(path)
        if kinds is None:
            if len(self.fields) >= MAX_PATHS_PER_EVENT_TYPE:
                self.fields_not_listed += 1
                return
            kinds = self.fields[path] = Counter()
        kinds[kind] += 1

    def walk(self, value: Any, path: str, depth: int = 0) -> None:
        """Count the kind of VALUE at PATH, and of everything under it (nested JSON strings decoded)."""
        kind = value_kind(value)
        self._note(path, kind)
        if depth >= MAX_DEPTH:
            return
        if kind == "json-string":
            value = orjson.loads(value)
        if type(value) is dict:
            for key, item in value.items():
                self.walk(item, _join(path, key), depth + 1)
        elif type(value) is list:
            for item in value:
                self.walk(item, _join(path, 0), depth + 1)

    def as_dict(self) -> dict:
        return {
            "events": self.events,
            "sources": dict(sorted(self.sources.items())),
            "encodings": dict(sorted(self.encodings.items())),
            "fields": {path: _sorted_kinds(kinds) for path, kinds in sorted(self.fields.items())},
            "fields_not_listed": self.fields_not_listed,
        }


def _sorted_kinds(kinds: Counter) -> dict[str, int]:
    return dict(sorted(kinds.items(), key=lambda item: (-item[1], item[0])))


def _source_label(source: Any) -> str:
    return event_type_label(source) if isinstance(source, str) and source else "<missing>"


@dataclass
class Inventory:
    """What a set of logs holds: counts, kinds and reasons, never a value."""

    inputs: list[tuple[str, int]] = field(default_factory=list)  # (name, lines)
    lines: int = 0
    events: int = 0
    rejected: Counter = field(default_factory=Counter)
    rejections: RejectionList = field(default_factory=lambda: RejectionList(limit=MAX_REJECTIONS_LISTED))
    encodings: Counter = field(default_factory=Counter)
    event_types: dict[str, EventTypeInventory] = field(default_factory=dict)

    def add_line(self, line: bytes, file: str = "<input>", line_number: int = 0) -> None:
        """Count one raw line."""
        self.lines += 1
        parsed = parse_line(line)
        if type(parsed) is not dict:
            self._reject(file, line_number, parsed.value)
            return
        key = event_key(parsed)
        if key is None:
            self._reject(file, line_number, RejectReason.MISSING_EVENT_TYPE.value)  # as the anonymizer rejects it
            return
        try:
            self.add_event(parsed, key[0])
        except StrictJSONError as exc:  # its JSON-string payload repeats a key or nests too deep
            self._reject(file, line_number, exc.reason)

    def add_event(self, event: dict, event_type: str) -> None:
        """Count one parsed event of EVENT_TYPE."""
        # Decoded first: a payload that the run would reject the line for raises before anything is counted.
        encoding, decoded = decode_payload(event["event"]) if "event" in event else decode_payload()
        self.events += 1
        label = event_type_label(event_type)
        inventory = self.event_types.get(label)
        if inventory is None:
            inventory = self.event_types[label] = EventTypeInventory()
        inventory.events += 1
        inventory.sources[_source_label(event.get("event_source"))] += 1
        for key, value in event.items():
            if key != "event":
                inventory.walk(value, _join("", key))
        self.encodings[encoding] += 1
        inventory.encodings[encoding] += 1
        if encoding in ("dict", "list", "json-string", "query-string"):
            if type(decoded) is dict:
                for key, item in decoded.items():
                    inventory.walk(item, _join("event", key))
            elif type(decoded) is list:
                for item in decoded:
                    inventory.walk(item, "event[*]")
        elif encoding in ("string", "scalar"):
            inventory.walk(decoded, "event")

    @property
    def rejections_not_listed(self) -> int:
        return self.rejections.not_listed

    def _reject(self, file: str, line_number: int, reason: str) -> None:
        self.rejected[reason] += 1
        self.rejections.add(file, line_number, reason)

    def as_dict(self) -> dict:
        """The JSON report."""
        return {
            "format_version": FORMAT_VERSION,
            "inputs": [{"path": name, "lines": lines} for name, lines in self.inputs],
            "lines": self.lines,
            "events": self.events,
            "rejected": dict(sorted(self.rejected.items())),
            "rejections": [{"file": f, "line": n, "reason": r} for f, n, r in self.rejections],
            "rejections_not_listed": self.rejections_not_listed,
            "encodings": dict(sorted(self.encodings.items())),
            "event_types": {
                label: inventory.as_dict()
                for label, inventory in sorted(self.event_types.items(), key=lambda item: (-item[1].events, item[0]))
            },
        }


def inspect_lines(lines: Iterable[bytes], name: str = "<input>", inventory: Inventory | None = None) -> Inventory:
    """Count LINES (raw bytes, one event each) into INVENTORY, or into a new one."""
    inventory = inventory if inventory is not None else Inventory()
    before = inventory.lines
    for number, line in enumerate(lines, start=1):
        inventory.add_line(line, name, number)
    inventory.inputs.append((name, inventory.lines - before))
    return inventory


def inspect_inputs(inputs: list[Path]) -> Inventory:
    """What the files and directories INPUTS hold (plain or gzip, as ``run`` reads them)."""
    inventory = Inventory()
    for path, name in collect_inputs(inputs, packages=True):
        inspect_lines(open_lines(path), name, inventory)
    return inventory


def format_inventory(inventory: Inventory, *, fields: bool = True) -> str:
    """The inventory as text for people."""
    out = [
        f"{len(inventory.inputs)} file(s), {inventory.lines} lines: {inventory.events} events "
        f"of {len(inventory.event_types)} event type(s), {sum(inventory.rejected.values())} rejected"
    ]
    if inventory.rejected:
        out.append("rejected lines: " + ", ".join(f"{reason} {count}" for reason, count in sorted(inventory.rejected.items())))
        shown = inventory.rejections[:10]
        for file, line, reason in shown:
            out.append(f"  {file}:{line}: {reason}")
        more = len(inventory.rejections) - len(shown) + inventory.rejections_not_listed
        if more:
            out.append(f"  … and {more} more (all of them with --json)")
    if inventory.encodings:
        out.append("encodings of event: " + ", ".join(f"{enc} {count}" for enc, count in _by_count(inventory.encodings)))
    if not inventory.event_types:
        return "\n".join(out) + "\n"
    ordered = sorted(inventory.event_types.items(), key=lambda item: (-item[1].events, item[0]))
    width = min(60, max(len(label) for label, _ in ordered))
    out.append("")
    out.append(f"{'events':>8}  {'event type':<{width}}  sources; encodings of event")
    for label, inv in ordered:
        sources = ", ".join(f"{s} {n}" for s, n in _by_count(inv.sources))
        encodings = ", ".join(f"{e} {n}" for e, n in _by_count(inv.encodings))
        out.append(f"{inv.events:>8}  {label:<{width}}  {sources}; {encodings}")
    if fields:
        for label, inv in ordered:
            out.append("")
            out.append(f"{label} ({inv.events} events)")
            path_width = min(50, max((len(p) for p in inv.fields), default=0))
            for path, kinds in sorted(inv.fields.items()):
                described = ", ".join(f"{kind} {count}" for kind, count in _sorted_kinds(kinds).items())
                out.append(f"  {path:<{path_width}}  {described}")
            if inv.fields_not_listed:
                out.append(f"  ({inv.fields_not_listed} values under further paths not listed)")
    return "\n".join(out) + "\n"


def _by_count(counter: Counter) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))
