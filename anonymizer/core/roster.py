"""A roster of known people: who the learners and staff are, read from exports of the platform.

A roster lets a run find every known person in free text (not only the event's actor) and give
each person one pseudonym: a username pseudonym that a researcher can join with the user-id
pseudonym. It is read from CSV or TSV files with a header naming any of ``id`` (or ``user_id``),
``username``, ``email``, ``name`` (or ``first_name`` and ``last_name``), ``external_id`` (or
``external_user_id``), which covers the ``auth_user``, ``auth_userprofile`` and
``external_user_id`` tables of an Open edX data package, and from the older
headerless exports separated by ``\\x01``. Rows of every file are joined on the user id.

Nothing read from a roster is ever printed: a bad row is reported by file, line and reason.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from .errors import UsageError

# Column names recognised in a header row, and what they hold.
_ID_COLUMNS = ("user_id", "id")  # auth_userprofile has both: its `id` is the profile's own id
_NULLS = {"", "NULL", "\\N", "None", "null"}
# The headerless exports of the old research pipeline (columns as it selected them).
AUTH_USER_COLUMNS = ("id", "username", "last_login", "date_joined", "is_active", "is_superuser", "is_staff", "email")
AUTH_USERPROFILE_COLUMNS = ("user_id", "name", "gender", "year_of_birth", "level_of_education")
# A staff or role column: a true flag (is_staff, is_superuser, staff) or a role of these names.
_STAFF_FLAGS = ("is_staff", "is_superuser", "staff")
_TRUE = {"1", "true", "t", "yes", "y"}
STAFF_ROLES = frozenset({
    "staff", "instructor", "admin", "administrator", "superuser", "course_staff", "course_admin", "course_instructor",
    "limited_staff", "ta", "teaching_assistant", "beta_tester", "data_researcher", "finance_admin", "sales_admin",
})
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}")
MAX_BAD_ROWS_LISTED = 100


class RosterError(UsageError):
    """A roster file cannot be read at all (missing, empty, or of no known shape)."""


@dataclass(frozen=True)
class Person:
    """One person. ``id`` is a whole number written in decimal, or None when no file gave one;
    a person can have several usernames, emails and names (renamed accounts, joined files)."""

    id: str | None
    usernames: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    # From a roster file (True), or only learned from the inputs (False): only listed people's
    # username pseudonyms are linked to their user id.
    listed: bool = True
    # A row of a file with a staff or role column says this person is staff (run --exclude-staff).
    staff: bool = False
    # The person's external ids (the platform's ``external_user_id`` table): the actor of an xAPI
    # statement is named by one.
    external_ids: tuple[str, ...] = ()

    @property
    def username(self) -> str | None:
        return self.usernames[0] if self.usernames else None

    @property
    def email(self) -> str | None:
        return self.emails[0] if self.emails else None

    @property
    def name(self) -> str | None:
        return self.names[0] if self.names else None


class Roster:
    """The people of a run, with lookups by user id, username and email.

    Pickles as its people: the text matcher is rebuilt where it is needed.
    """

    def __init__(self, people: Iterable[Person], files: Iterable[str] = (), bad_rows: int = 0, staff_known: bool = False) -> None:
        self.people: tuple[Person, ...] = tuple(people)
        self.staff_known = staff_known  # a file had a staff or role column: ``Person.staff`` means something
        self.files: tuple[str, ...] = tuple(files)
        self.bad_rows = bad_rows  # rows of the files that were skipped, for the manifest
        self.by_id: dict[str, Person] = {}
        self.by_username: dict[str, Person] = {}
        self._by_folded_username: dict[str, Person | None] = {}
        self.by_email: dict[str, Person] = {}
        self.by_external_id: dict[str, Person] = {}  # lower-cased: a UUID in either case is one id
        for person in self.people:
            for external in person.external_ids:
                self.by_external_id.setdefault(external.strip().lower(), person)
            if person.id is not None:
                self.by_id.setdefault(person.id, person)
            for username in person.usernames:
                self.by_username.setdefault(username, person)
                folded = username.casefold()
                found = self._by_folded_username.get(folded, person)
                # Two people whose usernames differ only in case: neither wins a case-blind lookup.
                self._by_folded_username[folded] = person if found is person else None
            for email in person.emails:
                self.by_email.setdefault(email.casefold(), person)
        self._finders: dict = {}

    def __reduce__(self):
        return (Roster, (self.people, self.files, self.bad_rows, self.staff_known))

    def __len__(self) -> int:
        return len(self.people)

    def folded_usernames(self) -> Iterable[str]:
        """Every username case-folded, as ``person_for`` looks a value up ignoring case."""
        return self._by_folded_username.keys()

    def person_for(self, value: str) -> Person | None:
        """The person a username (exactly, then ignoring case) or an email names, or None."""
        person = self.by_username.get(value)
        if person is not None:
            return person
        folded = value.casefold()
        person = self._by_folded_username.get(folded)
        if person is not None:
            return person
        return self.by_email.get(folded) if "@" in value else None

    def canonical(self) -> bytes:
        """The roster as normalized bytes, independent of file order and format: for fingerprints."""
        lines = sorted(
            "\x1f".join([p.id or "", "\x1e".join(sorted(p.usernames)), "\x1e".join(sorted(e.casefold() for e in p.emails)), "\x1e".join(sorted(p.names))])
            # External ids only when there are some: a roster without them keeps its fingerprint.
            + ("\x1f" + "\x1e".join(sorted(x.lower() for x in p.external_ids)) if p.external_ids else "")
            for p in self.people
        )
        return "\n".join(lines).encode("utf-8", "surrogatepass")

    def fingerprint(self, pseudonymizer) -> str:
        """A keyed fingerprint of the roster: equal for equal rosters under one key.

        Keyed, not a plain sha256: a plain hash of a small roster could confirm a guess at who is in it.
        """
        return pseudonymizer.digest("roster", self.canonical().decode("utf-8", "surrogatepass")).hex()

    def summary(self, pseudonymizer) -> dict:
        """What the manifest says of the roster: file names, how many people and skipped rows, the
        keyed fingerprint."""
        return {
            "files": list(self.files),
            "people": len(self.people),
            "bad_rows": self.bad_rows,
            "hmac_sha256": self.fingerprint(pseudonymizer),
        }

    def finder(self, rules):
        """The text matcher for RULES (see ``anonymizer.core.text.mentions``), built once per roster and rules."""
        from .text.mentions import PeopleFinder  # imported here: the matcher is only needed with free text

        signature = rules.model_dump_json() if hasattr(rules, "model_dump_json") else repr(rules)
        found = self._finders.get(signature)
        if found is None:
            found = self._finders[signature] = PeopleFinder(self, rules)
        return found


@dataclass
class BadRow:
    file: str
    line: int
    reason: str


@dataclass
class FileReport:
    name: str
    format: str  # "csv", "tsv", "auth_user (\\x01)", "auth_userprofile (\\x01)"
    rows: int = 0
    bad: int = 0


@dataclass
class RosterReport:
    """What loading found: per file, rows read and rows skipped; bad rows by file, line and reason."""

    files: list[FileReport] = field(default_factory=list)
    bad_rows: list[BadRow] = field(default_factory=list)
    bad_not_listed: int = 0
    people: int = 0
    staff_known: bool = False  # a file had a staff or role column

    @property
    def bad(self) -> int:
        return sum(f.bad for f in self.files)

    def add_bad(self, file: str, line: int, reason: str) -> None:
        if len(self.bad_rows) < MAX_BAD_ROWS_LISTED:
            self.bad_rows.append(BadRow(file, line, reason))
        else:
            self.bad_not_listed += 1

    def describe(self, limit: int = 10) -> list[str]:
        """Lines for people: a summary, then the first LIMIT bad rows (never their values)."""
        rows = sum(f.rows for f in self.files)
        people = "1 person" if self.people == 1 else f"{self.people} people"
        lines = [f"roster: {people} from {rows} rows in {len(self.files)} file(s)"]
        if self.bad:
            lines[0] += f"; {self.bad} bad row(s) skipped"
            for bad in self.bad_rows[:limit]:
                lines.append(f"  {bad.file}: line {bad.line}: {bad.reason}")
            more = self.bad - min(limit, len(self.bad_rows))
            if more > 0:
                lines.append(f"  … and {more} more")
        return lines


def join_rosters(listed: Roster | None, learned: Roster | None) -> Roster | None:
    """The people of LISTED (a roster from files) and LEARNED (from the inputs) as one roster.

    A learned person is joined to a listed one on the user id, else on a username (ignoring
    case) or an email; what they add (another username, an email, a name) is added to the listed person.
    The others follow, in the order they were learned. Deterministic: the result depends only on
    the two rosters.
    """
    if learned is None or not learned.people:
        return listed
    if listed is None or not listed.people:
        return learned
    merged: list[dict] = [
        {"id": p.id, "usernames": list(p.usernames), "emails": list(p.emails), "names": list(p.names), "listed": True,
         "external_ids": p.external_ids}
        for p in listed.people
    ]
    where: dict[tuple[str, str], int] = {}

    def index(i: int, person: dict) -> None:
        if person["id"] is not None:
            where.setdefault(("id", person["id"]), i)
        for username in person["usernames"]:
            where.setdefault(("username", username.casefold()), i)
        for email in person["emails"]:
            where.setdefault(("email", email.casefold()), i)

    for i, person in enumerate(merged):
        index(i, person)
    for person in learned.people:
        keys = ([("id", person.id)] if person.id is not None else []) + [("username", u.casefold()) for u in person.usernames]
        keys += [("email", e.casefold()) for e in person.emails]
        found = next((where[k] for k in keys if k in where), None)
        if found is None or (person.id is not None and merged[found]["id"] not in (None, person.id)):
            found = len(merged)
            merged.append({"id": person.id, "usernames": [], "emails": [], "names": [], "listed": False, "external_ids": ()})
        target = merged[found]
        if target["id"] is None and person.id is not None and ("id", person.id) not in where:
            target["id"] = person.id
        for mine, theirs in ((target["usernames"], person.usernames), (target["emails"], person.emails), (target["names"], person.names)):
            folded = {v.casefold() for v in mine}
            mine.extend(v for v in theirs if v.casefold() not in folded)
        index(found, target)
    people = [
        Person(p["id"], tuple(p["usernames"]), tuple(p["emails"]), tuple(p["names"]), p["listed"], external_ids=tuple(p["external_ids"]))
        for p in merged
    ]
    return Roster(people, listed.files, listed.bad_rows)


# ---------------------------------------------------------------- reading


@dataclass
class _Row:
    line: int
    id: str | None
    usernames: list[str]
    emails: list[str]
    names: list[str]
    staff: bool = False
    external_ids: list[str] = field(default_factory=list)


def _clean(value: str | None) -> str:
    if value is None:
        return ""
    value = value.strip()
    return "" if value in _NULLS else value


def _name(value: str) -> str:
    return " ".join(value.split())


def _user_id(value: str) -> str | None | bool:
    """The id as canonical decimal text; None when empty; False when it is not a whole number."""
    value = _clean(value)
    if not value:
        return None
    if value.isascii() and value.isdecimal():
        return str(int(value))
    return False


_SURROGATE = re.compile("[\udc80-\udcff]")


def _has_surrogates(values: Iterable[str]) -> bool:
    return any(_SURROGATE.search(value) for value in values)


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.decode("utf-8", "surrogateescape")


def _headerless_table(name: str, first_fields: list[str]) -> tuple[str, tuple[str, ...]]:
    lowered = name.lower()
    if "userprofile" in lowered:
        return "auth_userprofile", AUTH_USERPROFILE_COLUMNS
    if "auth_user" in lowered:
        return "auth_user", AUTH_USER_COLUMNS
    if len(first_fields) >= len(AUTH_USER_COLUMNS) and (_DATETIME.match(first_fields[2]) or "@" in first_fields[7]):
        return "auth_user", AUTH_USER_COLUMNS
    if len(first_fields) == len(AUTH_USERPROFILE_COLUMNS):
        return "auth_userprofile", AUTH_USERPROFILE_COLUMNS
    raise RosterError(
        f"{name}: a \\x01-separated export, but neither of auth_user ({len(AUTH_USER_COLUMNS)} columns: "
        f"{', '.join(AUTH_USER_COLUMNS)}) nor of auth_userprofile ({len(AUTH_USERPROFILE_COLUMNS)} columns: "
        f"{', '.join(AUTH_USERPROFILE_COLUMNS)}); name the file after its table"
    )


def _columns(header: list[str], name: str) -> dict[str, int | tuple[int, int]]:
    """Where each known column is in HEADER; errors name what was expected."""
    names = [h.strip().strip('"').strip().lower() for h in header]
    where: dict[str, int | tuple[int, int]] = {}
    for column in _ID_COLUMNS:
        if column in names:
            where["id"] = names.index(column)
            break
    for column in ("username", "email", "name"):
        if column in names:
            where[column] = names.index(column)
    for column in ("external_id", "external_user_id"):
        if column in names:
            where["external_id"] = names.index(column)
            break
    staff = tuple(names.index(c) for c in _STAFF_FLAGS if c in names)
    if staff or "role" in names:
        where["_staff"] = (staff, names.index("role") if "role" in names else None)
    if "name" not in where and ("first_name" in names or "last_name" in names):
        first = names.index("first_name") if "first_name" in names else -1
        last = names.index("last_name") if "last_name" in names else -1
        where["name"] = (first, last)
    if not {"username", "email", "name", "external_id"} & set(where):
        raise RosterError(
            f"{name}: the first line is not a header naming any of username, email, name (or first_name, "
            "last_name), external_id (or external_user_id), with id or user_id; expected a CSV or TSV file with a header row, or an auth_user or "
            "auth_userprofile export"
        )
    where["_width"] = len(names)
    return where


def _pick(fields: list[str], where: dict, column: str) -> str:
    index = where.get(column)
    if index is None:
        return ""
    if isinstance(index, tuple):
        parts = [_clean(fields[i]) for i in index if i >= 0]
        return " ".join(p for p in parts if p)
    return _clean(fields[index])


def _row(
    fields: list[str], where: dict, line: int, file: str, report: RosterReport, stats: FileReport, undecodable: bool = True
) -> _Row | None:
    def bad(reason: str) -> None:
        stats.bad += 1
        report.add_bad(file, line, reason)

    stats.rows += 1
    if len(fields) != where["_width"]:
        bad(f"expected {where['_width']} fields, found {len(fields)}")
        return None
    if undecodable and _has_surrogates(fields):
        bad("not valid UTF-8")
        return None
    user_id = _user_id(fields[where["id"]]) if "id" in where else None
    if user_id is False:
        bad("the user id is not a whole number")
        return None
    username = _pick(fields, where, "username")
    email = _pick(fields, where, "email")
    name = _name(_pick(fields, where, "name"))
    external = _pick(fields, where, "external_id")
    if not (username or email or name or external):
        if user_id is None:
            bad("no id, username, email or name")
            return None
        return None  # an id alone (an account without a profile name) adds nothing to find
    staff = False
    if "_staff" in where:
        flags, role = where["_staff"]
        staff = any(_clean(fields[i]).lower() in _TRUE for i in flags)
        staff = staff or (role is not None and _clean(fields[role]).lower().replace(" ", "_") in STAFF_ROLES)
    return _Row(line, user_id, [username] if username else [], [email] if email else [], [name] if name else [], staff, [external] if external else [])


def _split_lines(text: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if line.strip():
            yield number, line


def _read_file(path: Path, report: RosterReport) -> Iterator[_Row]:
    name = path.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RosterError(f"{path}: cannot read the roster ({exc.strerror or 'unreadable'})") from None
    text = _decode(data)
    undecodable = _SURROGATE.search(text) is not None  # checked row by row only when the file has any
    lines = _split_lines(text)
    first = next(lines, None)
    if first is None:
        raise RosterError(f"{path}: the roster file is empty")
    first_number, first_line = first
    if "\x01" in first_line:
        table, columns = _headerless_table(name, first_line.split("\x01"))
        stats = FileReport(name, f"{table} (\\x01)")
        report.files.append(stats)
        where = _columns(list(columns), name)
        report.staff_known |= "_staff" in where
        for number, line in [first, *lines]:
            fields = line.split("\x01")
            if len(fields) > len(columns):
                fields = fields[: len(columns)]  # later exports add columns at the end
            row = _row(fields, where, number, name, report, stats, undecodable)
            if row is not None:
                yield row
        return
    if "\t" in first_line:
        stats = FileReport(name, "tsv")
        report.files.append(stats)
        where = _columns(first_line.split("\t"), name)
        report.staff_known |= "_staff" in where
        for number, line in lines:
            row = _row(line.split("\t"), where, number, name, report, stats, undecodable)
            if row is not None:
                yield row
        return
    stats = FileReport(name, "csv")
    report.files.append(stats)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except csv.Error:
        raise RosterError(f"{path}: the header line is not valid CSV") from None
    where = _columns(header, name)
    report.staff_known |= "_staff" in where
    while True:
        line = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error:
            stats.rows += 1
            stats.bad += 1
            report.add_bad(name, line, "not valid CSV")
            continue
        if not fields or not any(f.strip() for f in fields):
            continue
        row = _row(fields, where, line, name, report, stats, undecodable)
        if row is not None:
            yield row


def load_roster(paths: Iterable[str | Path]) -> tuple[Roster, RosterReport]:
    """Read roster files and join their rows on the user id.

    Rows without an id are people of their own. Bad rows are skipped and listed in the report by
    file, line and reason; a file that cannot be read at all raises ``RosterError``.
    """
    report = RosterReport()
    by_id: dict[str, _Row] = {}
    order: list[_Row] = []
    files: list[str] = []
    for path in paths:
        path = Path(path)
        files.append(path.name)
        for row in _read_file(path, report):
            if row.id is None:
                order.append(row)
                continue
            known = by_id.get(row.id)
            if known is None:
                by_id[row.id] = row
                order.append(row)
                continue
            for mine, theirs in (
                (known.usernames, row.usernames), (known.emails, row.emails), (known.names, row.names), (known.external_ids, row.external_ids)
            ):
                mine.extend(v for v in theirs if v not in mine)
            known.staff = known.staff or row.staff
    people = [Person(r.id, tuple(r.usernames), tuple(r.emails), tuple(r.names), staff=r.staff, external_ids=tuple(r.external_ids)) for r in order]
    report.people = len(people)
    return Roster(people, files, report.bad, staff_known=report.staff_known), report
