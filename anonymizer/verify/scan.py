"""The scan: searching the bytes of a package for harvested identifiers and with the detectors.

- *Harvested identifiers* searched as substrings (long enough and not common words): every form
  of each (``forms``) in one Aho-Corasick automaton over a folded copy of the output, in which
  every byte that is not an ASCII letter or digit is 0, so that a match must stand alone.
- *Short or common values* are compared with the whole value of the output's identifier fields
  of their kind; user ids of any length also as a URL path segment after a route word that names
  a person, and from 5 digits alone in text.
- *Normalized reading*: a line with an entity, a percent sign, a JSON escape, a character
  outside ASCII or an address written with "at" is also read normalized and searched with a
  second automaton of every identifier normalized alike.
- *Masked fields* (the fields the policy masks as IP addresses) must hold their own mask.
- *Detectors* find email and IP addresses always, phones when no raw input is given.
"""

from __future__ import annotations

import hashlib
import html.entities
import hmac
import re
import secrets
from bisect import bisect_right
from collections import Counter

import ahocorasick_rs

try:  # the native engine's extension is optional: without it every line is read here
    from anonymizer_native import LineFilter as _LineFilter
except ImportError:  # pragma: no cover - depends on the installation
    _LineFilter = None

from ..core.errors import UsageError
from ..core.native import ENGINES, NativeUnavailable
from ..core.text.detectors import TextScrubber
from ..core.ipmask import make_ip_masker
from .classify import format_where, leak_class, locate, locate_field, locate_normalized
from .forms import AT_MARKERS, LOCAL_PART_MIN, NON_ASCII, READING_KIND, SUSPECT_MARKERS, deobfuscate, extra_forms, field_value_key, forms_of, normalize_text, searched_as_substring, space_phone_separators, stands_alone
from .harvest import EMAIL_ANCHORS, Identifier, IdentifierFields, Identifiers, email_at
from .report import Finding

_ALNUM = bytes(1 if (48 <= b <= 57 or 97 <= b <= 122 or 65 <= b <= 90) else 0 for b in range(256))
# Folds bytes for the automaton: ASCII letters to lower case, digits kept, everything else 0.
_FOLD = bytes(b + 32 if 65 <= b <= 90 else (b if _ALNUM[b] else 0) for b in range(256))
_NEWLINE = re.compile(b"\n")
# Anchors that begin with a literal (which the regular expression engine skips to fast) and use
# possessive repeats (which fail without backtracking); each candidate is confirmed afterwards.
_IPV4_ANCHOR = rb"\.\d{1,3}+\.\d{1,3}+\."
_IPV6_ANCHOR = re.compile(rb"::|:[0-9a-f]{1,4}+:[0-9a-f]{1,4}+:[0-9a-f]{1,4}+:")
_KEY_BEFORE = re.compile(rb'\\?"([a-z0-9_]+)\\?"\s*:\s*\\?"$')
_NUMBER = re.compile(rb"[-+0-9.e]*")
# Keys too general to be identifier fields on their own (``context.client.device.id``).
_GENERIC_KEYS = frozenset({"id", "name"})
# The route words after which a path segment names a person (see the URL route catalogue):
# /u/{username}, /users/{user_id}, /admin/auth/user/{id}/, /progress/{course_id}/{user_id} ...
_PERSON_SEGMENT = re.compile(
    rb"/(?:u|users?|user_id|learners?|students?|profile|accounts?|retire_user|retire_backend_user|demographics"
    rb"|\[redacted\]|(?:progress|xqueue)(?:/[^/\"\\?#\s]+)?)/+(\d{1,9})(?=[/?#\",;\\\n]|$)"
)
# Where a phone can begin, as the detector reads it: a digit, ``+`` or ``(`` not after a word
# character or ``+-.,/:``, then the detector's own hint of a phone, 7 digits with short
# separators. The first byte is a set, so that the engine skips to it fast.
_PHONE_HINT = rb"(?:[ .\-()+/_]{0,3}+\d){6}"
_PHONE_START = re.compile(rb"[\d+(](?<=[^\w+\-.,/:][\d+(])(?:(?<=\d)|\d)" + _PHONE_HINT)
_PHONE_START_AT = re.compile(rb"[+(]?\d" + _PHONE_HINT)  # at the very start of the chunk
_PHONE_AFTER_LABEL = re.compile(rb"(?i:tel|phone):(?=[+(]?\d" + _PHONE_HINT + rb")")
_OCTET = rb"(?:25[0-5]|2[0-4]\d|[01]?\d?\d)"
# Two places that begin no phone although they look like one, and are on every line: an ISO
# timestamp (a date followed by a letter is no phone, nor what follows ":" or ".") and a whole
# IPv4 address in a string (an address is reported as one, never as a phone).
_NO_PHONE = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d|" + _OCTET + rb"(?:\." + _OCTET + rb"){3}\\?\"")
_PHONE_BEFORE = 8  # "phone:" before a phone, and the character the detector looks behind
_PHONE_LONGEST = 112  # the longest phone the detector reads, with an extension and its lookahead
USER_ID_MIN_DIGITS = 5  # as the policies' text rules: shorter numbers alone in text are too common
ID_IN_TEXT = "alone in text"
TRUNCATED = "truncated address"
MAX_LISTED = 1000
# A chunk with this share of its lines flagged or more is read whole: the same findings, without
# copying the flagged lines out.
WHOLE_CHUNK_SHARE = 0.25


def check_engine(engine: str) -> None:
    """Raise a ``UsageError`` when ENGINE is not one the scan can run."""
    if engine not in ENGINES:
        raise UsageError(f"--engine {engine}: expected one of {', '.join(ENGINES)}")
    if engine == "native" and _LineFilter is None:
        raise NativeUnavailable("the native engine is not installed: build it with `make venv` (needs cargo), or use --engine python")


def _value_after(data: bytes, at: int) -> bytes:
    """The JSON value that begins at AT (after ``"key":``), for the field check: a string's text up
    to its closing quote on the same line (also when escaped inside a JSON string), or a number."""
    while data[at : at + 1] == b" ":
        at += 1
    first = data[at : at + 1]
    if first == b'"':
        start, close = at + 1, data.find(b'"', at + 1)
    elif first == b"\\":
        start, close = at + 2, data.find(b"\\", at + 2)
    else:
        return _NUMBER.match(data, at).group()
    return data[start:close] if close >= 0 and data.find(b"\n", start, close) < 0 else b""


class Scanner:
    """Searches output bytes for a set of identifiers and the detectors; collects findings.

    One Aho-Corasick automaton holds every form of every identifier searched as a substring and
    the keys of the identifier fields (``"username":``) whose values are compared with the
    identifiers checked as whole values. Masked-IP fields and the detectors are read with
    regular expressions that begin with a literal. Build it once; ``scan`` whole lines.
    """

    def __init__(
        self,
        identifiers: Identifiers,
        fields: IdentifierFields,
        *,
        phones: bool,
        max_listed: int = MAX_LISTED,
        engine: str = "auto",
    ) -> None:
        check_engine(engine)
        self.identifiers: list[Identifier] = list(identifiers)
        self.fields = fields
        self.max_listed = max_listed
        self.findings: list[Finding] = []
        self.total = 0
        self.by_kind: Counter = Counter()
        self.by_class: Counter = Counter()
        self._fingerprint_key = secrets.token_bytes(32)
        self._masker = make_ip_masker(fields.ipv4_prefix, fields.ipv6_prefix)
        self._masked_cache: dict[bytes, bool] = {}
        self._unmasked_seen: set[bytes] = set()
        self._ip_scrubber = TextScrubber(("ip",))
        self._phone_scrubber = TextScrubber(("phone",)) if phones else None
        self._field_keys = frozenset(k for k in fields.keys if k not in _GENERIC_KEYS)
        self._field_keys_lower = {k.lower().encode() for k in self._field_keys}
        self._masked_keys = {k.lower().encode() for k in fields.masked_ip_keys}
        self._masked_prefixes = tuple(
            prefix
            for key in self._masked_keys
            for prefix in (b'"' + key + b'":"', b'\\"' + key + b'\\":\\"', b'"' + key + b'": "')
        )
        # An IPv4 address that is the plain value of a masked field is judged by the masked-field
        # check instead: skip it without leaving the regular expression engine. The assertions
        # follow the leading literal and a lookahead, so that the engine still skips to the literal.
        skip = b"".join(
            b"(?<!" + re.escape(prefix) + b"\\d" * digits + b"\\.)" for prefix in self._masked_prefixes for digits in (1, 2, 3)
        )
        self._ipv4_anchor = re.compile(rb"\.(?=\d{1,3}+\.\d{1,3}+\.)" + skip)
        # (pattern, a literal that must be present for it to match: a quick test first)
        self._masked_fields = [
            pair
            for key in sorted(self._masked_keys)
            for pair in (
                (re.compile(rb'"' + re.escape(key) + rb'":[^\S\n]*"([^"\n]*)"'), b'"' + key + b'":'),
                (re.compile(rb'\\"' + re.escape(key) + rb'\\":[^\S\n]*\\"([^"\\\n]*)\\"'), b'\\"' + key + b'\\":'),
            )
        ]

        # Most forms are searched in a folded copy of the output in which every byte that is not
        # an ASCII letter or digit is 0, with a 0 added to each alphanumeric edge of the form: the
        # boundary rule is then part of the pattern, and the automaton never starts a match in
        # the middle of a word (hex identifiers and pseudonyms would otherwise keep it busy).
        # Every match is confirmed on the output itself. Forms with fewer than 2 ASCII letters
        # and digits (names in other scripts) are searched in the output as it is.
        folded: dict[bytes, list[tuple[int, str, bytes, int, int]]] = {}
        verbatim: dict[bytes, list[tuple[int, str]]] = {}
        self._field_values: dict[bytes, list[int]] = {}
        # User ids too short to be searched everywhere: as a path segment after a route word
        # that names a person (/user/7/), and from USER_ID_MIN_DIGITS digits alone in text.
        self._short_ids: dict[bytes, list[int]] = {}
        normal: dict[str, list[tuple[int, str]]] = {}
        self.substring_count = 0
        for index, identifier in enumerate(self.identifiers):
            value = identifier.value
            if not searched_as_substring(value):
                self._field_values.setdefault(field_value_key(value), []).append(index)
                if identifier.kind == "user_id" and value.isascii() and value.isdigit():
                    self._short_ids.setdefault(value.encode(), []).append(index)
                    if len(value) >= USER_ID_MIN_DIGITS:
                        # Also zero-padded (0530114), as a spreadsheet or a form may write it.
                        for padded in (value, "0" + value, "00" + value):
                            pattern = b"\0" + padded.encode() + b"\0"
                            folded.setdefault(pattern, []).append((index, ID_IN_TEXT, padded.encode(), 1, 1))
                            normal.setdefault(padded, []).append((index, ID_IN_TEXT))
                continue
            self.substring_count += 1
            normal.setdefault(normalize_text(value), []).append((index, "normalized"))
            forms = forms_of(value) + extra_forms(identifier.kind, value)
            if identifier.kind == "email":
                local = value.split("@")[0]
                if len(local) >= LOCAL_PART_MIN:
                    forms.append((TRUNCATED, local.encode("utf-8").lower() + b"@"))
                    normal.setdefault(normalize_text(local) + "@", []).append((index, TRUNCATED))
            for form in (f for _, f in extra_forms(identifier.kind, value)):
                normal.setdefault(normalize_text(form.decode("utf-8")), []).append((index, "normalized"))
            for label, form in forms:
                pattern = form.translate(_FOLD)
                if len(pattern) - pattern.count(0) < 2:
                    verbatim.setdefault(form, []).append((index, label))
                    continue
                left = 1 if _ALNUM[form[0]] else 0
                right = 1 if _ALNUM[form[-1]] else 0
                pattern = b"\0" * left + pattern + b"\0" * right
                folded.setdefault(pattern, []).append((index, label, form, left, right))
        # The whole values are read from the fields of their kinds: "username": for usernames.
        kinds = {self.identifiers[i].kind for indexes in self._field_values.values() for i in indexes}
        key_kinds = [(path[-1], kind) for path, kind in fields.envelope.items()] + list(fields.payload.items())
        marker_keys = sorted({key.lower().encode() for key, kind in key_kinds if kind in kinds and key not in _GENERIC_KEYS})
        self.field_check_keys = [key.decode() for key in marker_keys]
        patterns = list(folded)
        self._pattern_info = list(folded.values())
        self._marker_base = len(patterns)
        # A key is preceded by "{" or ",": two 0 bytes before it keep "target_username": from
        # matching the marker of "username":, and cover the escaped form (\"username\":) too.
        self._markers: list[bytes] = []
        for key in marker_keys:
            patterns.append(b"\0\0" + key.translate(_FOLD) + b"\0\0")
            self._markers.append(key)
        self._automaton = ahocorasick_rs.BytesAhoCorasick(patterns, matchkind=ahocorasick_rs.MatchKind.Standard) if patterns else None
        self._verbatim_info = list(verbatim.values())
        self._verbatim_forms = list(verbatim)
        self._verbatim = (
            ahocorasick_rs.BytesAhoCorasick(self._verbatim_forms, matchkind=ahocorasick_rs.MatchKind.Standard) if verbatim else None
        )
        # The normalized reading of suspect lines: every identifier normalized the same way.
        normal.pop("", None)
        self._normal_info = list(normal.values())
        self._normal_patterns = list(normal)
        self._normal = ahocorasick_rs.AhoCorasick(self._normal_patterns, matchkind=ahocorasick_rs.MatchKind.Standard) if normal else None
        self._has_emails = any(i.kind == "email" for i in self.identifiers)
        self._has_phones = any(i.kind == "phone" for i in self.identifiers)
        self._newly_masked: list[bytes] = []
        self._filter = self._line_filter(patterns[: self._marker_base]) if engine != "python" else None
        self.engine = "python" if self._filter is None else "native"

    def _line_filter(self, folded: list[bytes]):
        """The native engine's line filter (``native/src/verify.rs``): which lines of a chunk can
        hold a finding, so that only those are read here. None without the extension, or when an
        identifier holds a line break (a form that only two lines together could show)."""
        if _LineFilter is None:
            return None
        forms = [info[2] for infos in self._pattern_info for info in infos]
        if any(b"\n" in value for value in (*forms, *self._verbatim_forms, *self._field_values)):
            return None
        return _LineFilter(
            folded,
            self._markers,
            list(self._field_values),
            self._verbatim_forms,
            list(self._short_ids),
            sorted(self._masked_keys),
            self.fields.ipv4_prefix,
            self.fields.ipv6_prefix,
            [pattern.encode("utf-8", "surrogatepass") for pattern in self._normal_patterns],
            [name.encode() for name in html.entities.html5],
            self._has_phones,
            self._has_emails,
            self._phone_scrubber is not None,
        )

    # -------------------------------------------------------------- one chunk of whole lines

    def scan(self, file: str, chunk: bytes, first_line: int) -> None:
        """Search CHUNK (whole lines of FILE, the first numbered FIRST_LINE). Each line is judged on
        its own: with the line filter, only the lines it flags are read, and the findings are the same."""
        numbers = None
        if self._filter is not None:
            flagged = self._filter.lines(chunk)
            if not flagged:
                return
            if len(flagged) < WHOLE_CHUNK_SHARE * chunk.count(b"\n"):
                numbers = [first_line + index for index, _, _ in flagged]
                chunk = b"\n".join([chunk[start:end] for _, start, end in flagged])
        self._scan(file, chunk, first_line, numbers)
        if self._newly_masked:
            if self._filter is not None:
                self._filter.add_masked(self._newly_masked)
            self._newly_masked = []

    def _scan(self, file: str, chunk: bytes, first_line: int, numbers: list[int] | None) -> None:
        lowered = chunk.lower()
        context = _Chunk(file, chunk, lowered, first_line, numbers)
        if self._automaton is not None:
            hits = []
            values = self._field_values
            markers = self._markers
            base = self._marker_base
            starts = lowered.startswith
            # Offsets in the folded copy are one more than in the output (its leading 0).
            for match in self._automaton.find_matches_as_indexes(b"\0" + chunk.translate(_FOLD) + b"\0", overlapping=True):
                pattern = match[0]
                if pattern < base:
                    hits.append(match)
                    continue
                # A key marker: confirm it (its 0 bytes stand for quotes and colon), read the value.
                # The key's opening quote is at the match's start (the folded copy is one longer).
                key = markers[pattern - base]
                quote = match[1]
                if starts(b'"' + key + b'":', quote):
                    end = quote + len(key) + 3
                elif starts(b'"' + key + b'\\":', quote) and lowered[quote - 1 : quote] == b"\\":
                    end = quote + len(key) + 4
                else:
                    continue
                value = _value_after(lowered, end)
                if value in values:
                    self._field_hit(context, end, values[value])
                elif b"\\" in value and value[: value.find(b"\\")] in values:
                    self._field_hit(context, end, values[value[: value.find(b"\\")]])
            if hits:
                self._folded_hits(context, hits)
        if self._verbatim is not None:
            self._verbatim_hits(context, self._verbatim.find_matches_as_indexes(lowered, overlapping=True))
        if self._short_ids:
            self._person_segments(context)
        if self._normal is not None:
            self._normalized_pass(context)
        self._check_masked_fields(context)
        self._detect(context)

    def _person_segments(self, context: _Chunk) -> None:
        """User ids of any length as the path segment after a route word that names a person."""
        lowered = context.lowered
        if b"/" not in lowered:
            return
        for match in _PERSON_SEGMENT.finditer(lowered):
            for index in self._short_ids.get(match.group(1), ()):
                identifier = self.identifiers[index]
                self._report(context, match.start(1), identifier.kind, identifier.source, "path segment", identifier.origin, identifier.value, match.group(1))

    def _normalized_pass(self, context: _Chunk) -> None:
        """Read each suspect line normalized (entities, percent-encoding, JSON escapes, NFKC, case)
        and search it for every identifier normalized alike."""
        chunk = context.chunk
        lines: dict[int, tuple[int, int]] = {}
        obfuscated: set[int] = set()
        for marker in SUSPECT_MARKERS + (AT_MARKERS if self._has_emails else ()):
            at = chunk.find(marker)
            while at >= 0:
                line_index, start, end = context.line_of(at)
                lines[line_index] = (start, end)
                if marker in AT_MARKERS:
                    obfuscated.add(line_index)
                at = chunk.find(marker, end)
        if not chunk.isascii():
            match = NON_ASCII.search(chunk)
            while match is not None:
                line_index, start, end = context.line_of(match.start())
                lines[line_index] = (start, end)
                match = NON_ASCII.search(chunk, end)
        for line_index in sorted(lines):
            start, end = lines[line_index]
            self._normalized_line(context, line_index, chunk[start:end], line_index in obfuscated)

    def _normalized_line(self, context: _Chunk, line_index: int, raw: bytes, obfuscated: bool) -> None:
        text = normalize_text(raw.decode("utf-8", "replace"))
        readings = [(text, "normalized")]
        if obfuscated or (self._has_emails and "\uff20" in raw.decode("utf-8", "replace")):
            unmasked = deobfuscate(text)
            if unmasked != text:
                readings.append((unmasked, "obfuscated address"))
        if self._has_phones:
            spaced = space_phone_separators(text)
            if spaced != text:
                readings.append((spaced, "phone separators"))
        lowered_line = None
        for reading, how in readings:
            matches = self._normal.find_matches_as_indexes(reading, overlapping=True)
            # Whole addresses before the local parts that stand for cut ones.
            matches.sort(key=lambda m: self._normal_info[m[0]][0][1] == TRUNCATED)
            for pattern, start, end in matches:
                if not stands_alone(reading, start, end):
                    continue
                for index, label in self._normal_info[pattern]:
                    identifier = self.identifiers[index]
                    if how != "normalized" and identifier.kind != READING_KIND[how]:
                        continue
                    if label == ID_IN_TEXT and not _id_in_text(reading, start, end):
                        continue
                    if identifier.kind == "ip":
                        # As written, an address is judged by the byte scan (masked fields hold their own mask).
                        lowered_line = raw.lower() if lowered_line is None else lowered_line
                        if identifier.value.lower().encode() in lowered_line:
                            continue
                    form = how if label == "normalized" else label
                    needle = reading[start:end]
                    where = locate_normalized(raw, needle, how)
                    self._report_line(context, line_index, identifier.kind, identifier.source, form, identifier.origin, identifier.value, None, where)

    def _folded_hits(self, context: _Chunk, matches: list) -> None:
        lowered = context.lowered
        deferred = []
        for pattern, start, end in matches:
            for index, label, form, left, right in self._pattern_info[pattern]:
                begin = start - 1 + left
                if lowered[begin : begin + len(form)] != form:
                    continue
                if label == ID_IN_TEXT and not _id_in_text(lowered, begin, begin + len(form)):
                    continue
                if label == TRUNCATED:
                    deferred.append((index, label, begin, begin + len(form)))
                    continue
                self._identifier_hit(context, index, label, begin, begin + len(form))
        # A whole address is reported as such: its local part alone only where the rest is gone.
        for index, label, begin, end in deferred:
            self._identifier_hit(context, index, label, begin, end)

    def _verbatim_hits(self, context: _Chunk, matches: list) -> None:
        lowered = context.lowered
        size = len(lowered)
        for pattern, start, end in matches:
            form = self._verbatim_forms[pattern]
            if _ALNUM[form[0]] and start and _ALNUM[lowered[start - 1]]:
                continue
            if _ALNUM[form[-1]] and end < size and _ALNUM[lowered[end]]:
                continue
            for index, label in self._verbatim_info[pattern]:
                self._identifier_hit(context, index, label, start, end)

    def _identifier_hit(self, context: _Chunk, index: int, label: str, start: int, end: int) -> None:
        identifier = self.identifiers[index]
        if identifier.kind == "ip" and self._is_masked_ip(context, start, end):
            return
        self._report(context, start, identifier.kind, identifier.source, label, identifier.origin, identifier.value, context.lowered[start:end])

    def _check_masked_fields(self, context: _Chunk) -> None:
        """Every value of a field the policy masks must be what masking writes: a network address."""
        lowered = context.lowered
        cache = self._masked_cache
        for regex, literal in self._masked_fields:
            if literal not in lowered:
                continue
            found = regex.findall(lowered)
            if not found:
                continue
            unmasked = set()
            # Networks recur from chunk to chunk: only values not seen before are judged.
            for value in set(found).difference(cache):
                if len(cache) > 262144:
                    cache.clear()
                cache[value] = masked = self._masked_value(value)
                if masked:
                    self._newly_masked.append(value)
                else:
                    unmasked.add(value)
            unmasked.update(value for value in self._unmasked_seen.intersection(found))
            if unmasked:
                self._unmasked_seen.update(unmasked)
                for match in regex.finditer(lowered):
                    value = match.group(1)
                    if value in unmasked:
                        # Not what the policy's masking writes: a raw address, or one from another policy.
                        self._report(context, match.start(1), "ip", "detector", "unmasked in a masked field", None, value.decode("latin-1"), value)

    def _masked_value(self, value: bytes) -> bool:
        text = value.decode("utf-8", "replace")
        parts = [part.strip() for part in text.split(",")]
        # What does not parse as an address is not an address: the detectors judge it elsewhere.
        return all(self._masker(part) in (part, None) for part in parts)

    def _field_hit(self, context: _Chunk, offset: int, indexes: list[int]) -> None:
        line_index, _, _ = context.line_of(offset)
        for index in indexes:
            identifier = self.identifiers[index]
            path = locate_field(context.line(line_index), self._field_keys, identifier.value.lower())
            if path is None:
                continue  # the value only began like the identifier
            if identifier.kind == "ip" and path[1] in self.fields.masked_ip_keys and self._masker(identifier.value) == identifier.value:
                continue
            self._report_line(context, line_index, identifier.kind, identifier.source, "field value", identifier.origin, identifier.value, None, path[0])

    def _detect(self, context: _Chunk) -> None:
        lowered = context.lowered
        for anchors in EMAIL_ANCHORS:
            if anchors is EMAIL_ANCHORS[1] and b"%40" not in lowered:
                continue  # a quick test first: URL-encoded addresses are rare
            for anchor in anchors.finditer(lowered):
                _, line_start, line_end = context.line_of(anchor.start())
                email = email_at(lowered, anchor.start(), line_start, line_end)
                if email is not None:
                    self._report(context, anchor.start(), "email", "detector", "detected", None, email, email.lower().encode())
        for anchor_re in (self._ipv4_anchor, _IPV6_ANCHOR):
            previous_end = -1
            for anchor in anchor_re.finditer(lowered):
                start = anchor.start()
                if start < previous_end or (self._masked_prefixes and self._looks_masked(lowered, start)):
                    continue
                _, line_start, line_end = context.line_of(start)
                low = max(line_start, start - 48)
                window = lowered[low : min(line_end, anchor.end() + 48)].decode("latin-1")
                for _, found_start, found_end in self._ip_scrubber.find(window):
                    begin, end = low + found_start, low + found_end
                    if not (begin <= start < end):
                        continue
                    previous_end = end
                    if self._is_masked_ip(context, begin, end):
                        continue
                    address = window[found_start:found_end]
                    self._report(context, begin, "ip", "detector", "detected", None, address, address.encode())
        if self._phone_scrubber is not None:
            self._detect_phones(context)

    def _detect_phones(self, context: _Chunk) -> None:
        """Phone numbers, read only around the places that can begin one (see ``_phone_windows``)."""
        chunk = context.chunk
        for window_start, window_end, line_start, line_end in self._phone_windows(context):
            text = chunk[window_start:window_end].decode("utf-8", "replace")
            found = self._phone_scrubber.find(text)
            # What begins or ends too near a cut edge was read without its context: it is read
            # again, whole, in the window of the place that begins it.
            low = 0 if window_start == line_start else _PHONE_BEFORE
            high = len(text) if window_end == line_end else len(text) - 2
            found = [item for item in found if item[1] >= low and item[2] <= high]
            if found:
                self._phones_in(context, text, found, window_start, line_start)

    def _phone_windows(self, context: _Chunk) -> list[tuple[int, int, int, int]]:
        """(start, end, line start, line end) of the pieces of the chunk to read for phones.

        A phone has 7 digits or more, joined by short separators, and begins where the detector
        allows one to begin (not after a letter, digit, ``+-.,/:``; or after ``tel:``, ``phone:``):
        each such place is read with what may precede it and the longest phone after it. A line
        with bytes outside ASCII (digits of other scripts) is read whole."""
        chunk = context.chunk
        windows: list[list[int]] = []
        no_phone = _NO_PHONE.match
        starts = [match.start() for match in _PHONE_START.finditer(chunk) if not no_phone(chunk, match.start())]
        if _PHONE_START_AT.match(chunk):
            starts.insert(0, 0)
        if b"tel:" in context.lowered or b"phone:" in context.lowered:
            starts = sorted(set(starts) | {match.end() for match in _PHONE_AFTER_LABEL.finditer(chunk)})
        for at in starts:
            _, line_start, line_end = context.line_of(at)
            start = max(line_start, at - _PHONE_BEFORE)
            end = min(line_end, at + _PHONE_LONGEST)
            if windows and start <= windows[-1][1] and windows[-1][2] == line_start:
                windows[-1][1] = max(end, windows[-1][1])
            else:
                windows.append([start, end, line_start, line_end])
        if not chunk.isascii():
            lines = {}
            match = NON_ASCII.search(chunk)
            while match is not None:
                _, line_start, line_end = context.line_of(match.start())
                lines[line_start] = line_end
                match = NON_ASCII.search(chunk, line_end)
            windows = [w for w in windows if w[2] not in lines] + [[start, end, start, end] for start, end in lines.items()]
            windows.sort()
        return [tuple(w) for w in windows]

    def _phones_in(self, context: _Chunk, text: str, found: list, offset: int, line_start: int) -> None:
        """Report the phones FOUND in TEXT, the piece of the chunk at byte OFFSET."""
        chunk = context.chunk
        ascii_text = len(text) == len(chunk[offset : offset + len(text)]) and text.isascii()
        addresses = None
        for _, start, end in found:
            value = text[start:end]
            if "." in value or ":" in value:
                # An IP address is reported as one, not a second time as a phone.
                if addresses is None:
                    addresses = [(a, b) for _, a, b in self._ip_scrubber.find(text)]
                if any(a < end and start < b for a, b in addresses):
                    continue
            at = offset + (start if ascii_text else len(text[:start].encode("utf-8")))
            stop = at + len(value.encode("utf-8"))
            before = chunk[max(line_start, at - 8) : at].rstrip()[-1:]
            _, _, line_end = context.line_of(at)
            after = chunk[stop : min(stop + 8, line_end)].lstrip()[:1]
            if before in (b":", b",", b"[", b"") and after in (b",", b"}", b"]", b"", b"\n") and value.isdigit():
                continue  # a JSON number or a whole CSV cell, such as a numeric pseudonym, is not text
            key = _KEY_BEFORE.search(chunk[max(line_start, at - 64) : at].lower())
            if key is not None and key.group(1) in self._field_keys_lower and value.isdigit():
                continue  # the whole value of an identifier field: a pseudonym written as a string
            line_index, _, _ = context.line_of(at)
            if any(seen[0] == line_index and seen[1] == "ip" and value in seen[2] for seen in context.reported):
                continue  # the digits of an IP address found on this line: one finding, not two
            self._report_line(context, line_index, "phone", "detector", "detected", None, value, value.lower().encode("utf-8"))

    def _looks_masked(self, lowered: bytes, anchor_start: int) -> bool:
        """A quick test for the common case: the anchor is in a masked-IP field's plain value,
        which the field check reads (on the anchor's line)."""
        low = max(0, anchor_start - 48)
        low = lowered.rfind(b"\n", low, anchor_start) + 1 or low
        quote_at = lowered.rfind(b'"', low, anchor_start)
        if quote_at < 0 or not lowered.endswith(self._masked_prefixes, 0, quote_at + 1):
            return False
        return not lowered[quote_at + 1 : anchor_start].translate(None, b"0123456789abcdef:.")

    def _is_masked_ip(self, context: _Chunk, start: int, end: int) -> bool:
        """Whether [START, END) is a whole address in a field the policy masks, and is its own mask."""
        lowered = context.lowered
        _, line_start, line_end = context.line_of(start)
        quote_at = lowered.rfind(b'"', max(line_start, start - 64), start)
        if quote_at < 0:
            return False
        head = lowered[max(line_start, quote_at - 64) : quote_at + 1]
        match = _KEY_BEFORE.search(head)
        if match is None or match.group(1) not in self._masked_keys:
            return False
        close = lowered.find(b'"', end, line_end)
        if close < 0:
            return False
        value = lowered[quote_at + 1 : close].rstrip(b"\\").decode("latin-1")
        address = lowered[start:end].decode("latin-1")
        parts = [part.strip() for part in value.split(",")]
        return address in parts and self._masker(address) == address

    # -------------------------------------------------------------- findings

    def _report(self, context: _Chunk, offset: int, kind, source, form, origin, value, needle) -> None:
        line_index, _, _ = context.line_of(offset)
        self._report_line(context, line_index, kind, source, form, origin, value, needle)

    def _report_line(self, context: _Chunk, line_index: int, kind, source, form, origin, value, needle, where=False) -> None:
        """Count a finding (once per line, kind and value), sort it into its class, and list it
        while under the limit."""
        key = (line_index, kind, value.lower())
        if key in context.reported:
            return
        context.reported.add(key)
        self.total += 1
        self.by_kind[kind] += 1
        line = context.line(line_index)
        if where is False:
            needles = ([needle] if needle else []) + [form for _, form in forms_of(value)]
            where = locate(line, needles)
        cls = leak_class(line, where, form, self._field_keys)
        self.by_class[cls] += 1
        if len(self.findings) >= self.max_listed:
            return
        path = format_where(where)
        digest = hmac.new(self._fingerprint_key, f"{kind}\x00{value.lower()}".encode("utf-8", "replace"), hashlib.sha256)
        self.findings.append(
            Finding(
                file=context.file,
                line=context.number(line_index),
                path=path,
                kind=kind,
                source=source,
                form=form,
                origin=origin,
                fingerprint="fp:" + digest.hexdigest()[:12],
                leak_class=cls,
            )
        )


class _Chunk:
    """Whole lines of one file, with line lookup built on first use (most chunks have no finding)."""

    __slots__ = ("file", "chunk", "lowered", "first_line", "numbers", "_starts", "reported")

    def __init__(self, file: str, chunk: bytes, lowered: bytes, first_line: int, numbers: list[int] | None = None) -> None:
        self.file = file
        self.chunk = chunk
        self.lowered = lowered
        self.first_line = first_line
        self.numbers = numbers  # the line number of each line, when they are not consecutive
        self._starts: list[int] | None = None
        self.reported: set = set()

    def number(self, index: int) -> int:
        """The line number, in its file, of the line at INDEX in the chunk."""
        return self.first_line + index if self.numbers is None else self.numbers[index]

    def line_of(self, offset: int) -> tuple[int, int, int]:
        """(index of the line within the chunk, its start offset, its end offset) for OFFSET."""
        if self._starts is None:
            self._starts = [0] + [m.end() for m in _NEWLINE.finditer(self.chunk)]
        index = bisect_right(self._starts, offset) - 1
        start = self._starts[index]
        end = self._starts[index + 1] - 1 if index + 1 < len(self._starts) else len(self.chunk)
        return index, start, end

    def line(self, index: int) -> bytes:
        if self._starts is None:
            self.line_of(0)
        start = self._starts[index]
        end = self._starts[index + 1] if index + 1 < len(self._starts) else len(self.chunk)
        return self.chunk[start:end]



def _id_in_text(text, start: int, end: int) -> bool:
    """Whether the digits at [START, END) of TEXT (bytes or str) are a number standing alone in
    text or a URL path segment, not a JSON number, a decimal, a version, a date or a time: the
    scrubber's reading (``glue.number_alone``; ``#530114``, ``uid:530114``, ``No.530114`` and
    ``530114.0`` are ids, ``0.530114`` and ``$530114`` are not). Only the line the digits are on
    is read."""
    newline = b"\n" if isinstance(text, bytes) else "\n"
    line_start = text.rfind(newline, 0, start) + 1
    line_end = text.find(newline, end)
    if line_start or line_end >= 0:
        text = text[line_start : line_end if line_end >= 0 else len(text)]
        start, end = start - line_start, end - line_start
    before = text[start - 1 : start] if start else text[:0]
    ahead = text[max(0, start - 2) : max(0, start - 1)] if start > 1 else text[:0]
    after = text[end : end + 1]
    following = text[end + 1 : end + 2]
    rest = text[end + 1 : end + 24]
    # A member's value after white space (`"events": 299687,` in an indented document such as the
    # manifest) is a JSON number too; in prose ("my id: 299687, thanks") the colon follows a word.
    before_word = text[max(0, start - 16) : start].rstrip()[-2:]
    after_word = text[end : end + 16].lstrip()[:1]
    if isinstance(text, bytes):
        before, ahead, after, following = (part.decode("latin-1") for part in (before, ahead, after, following))
        rest, before_word, after_word = rest.decode("latin-1"), before_word.decode("latin-1"), after_word.decode("latin-1")
    if before == "/":
        return True
    if before in (":", ",", "[") and after in (",", "}", "]", ""):
        return False  # a JSON number
    if before_word == '":' and after_word in (",", "}", "]", ""):
        return False  # a JSON number, indented
    if before and before in "+$@":
        return False
    if before and before in ",.-:" and ahead.isdigit():
        return False  # part of a decimal, a version, a range, a date or time, a grouped number
    if after and after in ".,-:" and following.isdigit():
        # Another number's separator and digit, unless a float of the integer (530114.0).
        return after == "." and not rest.lstrip("0")[:1].isdigit()
    return True
