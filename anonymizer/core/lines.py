"""One line of a tracking log read as an event, or the reason it cannot be.

A line is parsed as JSON after its logger prefix (``2023-05-23 ... logger.py:41 - {``) is cut
off; the prefix is never copied. A line that cannot be parsed gives a ``RejectReason``, never
its content.
"""

from __future__ import annotations

import orjson

from .outcomes import RejectReason
from .strictjson import StrictJSONError
from .strictjson import loads as strict_loads

_BOM = b"\xef\xbb\xbf"

# Byte-order marks of encodings other than UTF-8, longest first (UTF-32 LE starts like UTF-16 LE).
_FOREIGN_BOMS = (
    (b"\xff\xfe\x00\x00", RejectReason.UTF32_BOM),
    (b"\x00\x00\xfe\xff", RejectReason.UTF32_BOM),
    (b"\xff\xfe", RejectReason.UTF16_BOM),
    (b"\xfe\xff", RejectReason.UTF16_BOM),
)


def parse_line(line: bytes) -> dict | RejectReason:
    """The event on LINE, or the reason it was rejected (``BLANK``, ``INVALID_UTF8``,
    ``INVALID_JSON``, ``NOT_AN_OBJECT``, ``DUPLICATE_KEY``, ``TOO_DEEP``, ``UTF16_BOM``,
    ``UTF32_BOM``, ``UTF16_OR_UTF32`` for the lines after the mark, mostly NUL bytes).

    A UTF-8 byte-order mark is skipped (editors on some systems add one); a UTF-16 or UTF-32 one
    names the encoding, so that a file saved in the wrong encoding says so.
    """
    if line.startswith(_BOM):
        line = line[3:]
    elif line[:1] in (b"\xff", b"\xfe", b"\x00"):
        for bom, reason in _FOREIGN_BOMS:
            if line.startswith(bom):
                return reason
    start = 0
    if line[:1] != b"{":
        line = line.strip()
        if not line:
            return RejectReason.BLANK
        if line[:1] != b"{":
            try:
                orjson.loads(line)
            except orjson.JSONDecodeError:
                pass
            else:
                return RejectReason.NOT_AN_OBJECT  # valid JSON, but an array, string or number
        start = line.find(b"{")
        if start < 0:
            return _undecodable(line)
    try:
        event = strict_loads(line[start:] if start else line)
    except orjson.JSONDecodeError:
        return _undecodable(line)
    except StrictJSONError as exc:
        return RejectReason(exc.reason)
    if type(event) is not dict:
        return RejectReason.NOT_AN_OBJECT
    return event


def event_key(event: dict) -> tuple[str, str] | None:
    """(event type, event source) as policy rules are keyed: the type is ``event_type``, else
    ``name``; the source is ``event_source``, or "" when it is missing. None when there is no type
    (the line is then rejected as ``MISSING_EVENT_TYPE``)."""
    event_type = event.get("event_type")
    if event_type is None:
        event_type = event.get("name")
    if type(event_type) is not str or not event_type:
        return None
    source = event.get("event_source")
    return event_type, source if type(source) is str else ""


def _undecodable(line: bytes) -> RejectReason:
    if line.count(b"\x00") * 4 >= len(line):
        return RejectReason.UTF16_OR_UTF32  # every second or fourth byte zero: text in a wider encoding
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return RejectReason.INVALID_UTF8
    return RejectReason.INVALID_JSON
