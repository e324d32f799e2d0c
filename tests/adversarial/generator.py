"""The adversarial set: events of every family of the fixtures with identifiers of known people
planted in every field, key, URL path, kept subtree and disguise, each plant tagged with its class.

The base events are the fixture families (``tests/fixtures/families``); each generated event has
one of ``PEOPLE`` as its actor (so that a run can learn them from the input) and a time of its own
(an hour per event, so that a package line is traced back to its event under any policy).

Classes (the numbers are those of the leak classes of the project's issue list):

- ``url_path`` (1): a person in a URL path segment, from the platform's route templates;
- ``dict_key`` (2): a person as a key of a payload dict or a GET-string parameter name;
- ``identity_field`` (3): another person, in other case or as an email, in an identity field;
- ``kept_subtree`` (4): a person inside containers a policy may keep whole;
- ``duplicate_key`` (5): a person in a field whose condition reads a later duplicate key;
- ``disguised`` (6): entities, fullwidth, percent-encoding, JSON escapes, obfuscated addresses,
  prefixed phones, padded and embedded IP addresses;
- ``free_text``: a person written plainly into every string field (the baseline);
- ``bare_value``: a person's value as the whole of a string field, nothing around it (what a
  person types into a field that holds an id, a code or a word), and shaped like the field's own
  values (``America/<username>`` in a time zone, ``<username>=`` where a digest stands);
- ``settings_value``: a person's value as the ``old`` or ``new`` of every account setting (and of
  one the policy does not know), whatever the setting's values normally look like;
- ``escaped_line``: a person in a string field of the raw line written with JSON ``\\uXXXX``
  escapes, so that the line's bytes never hold the value as typed;
- ``learned_elsewhere``: a person's full name given where the inputs name their account outside
  identifier fields (an account setting's ``new``, a registration form's ``POST``), then written
  in a forum post of another event: a run without a roster must learn it there (judged under
  every configuration, not only with a roster);
- ``escape_glued``: a person's value right after a ``%``, in a GET-parameter payload and in text,
  so that the text as written shows the value while its percent-decoded form does not
  (``%739026`` decodes to ``s9026``): rules that read only the decoded form miss it.
- ``authored_id``: the id of a forum thread a person started, in the forum events' id fields and
  in the platform's forum routes (any case), and of their ORA2 submission in the ORA2 events'
  UUID fields: each opens the post or submission, and so names its author.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote_plus

from .disguises import LATE_DISGUISES, disguises_for
from .people import PEOPLE, Person, authored

FAMILIES = Path(__file__).resolve().parents[1] / "fixtures" / "families"
CLASSES = (
    "url_path",
    "dict_key",
    "identity_field",
    "kept_subtree",
    "duplicate_key",
    "disguised",
    "free_text",
    "bare_value",
    "settings_value",
    "escaped_line",
    "escape_glued",
    "authored_id",
    "learned_elsewhere",
)
# Account settings of the platform (and one it does not have), for ``settings_value``.
SETTINGS = (
    "name", "email", "username", "bio", "goals", "location", "city", "mailing_address", "phone_number",
    "country", "year_of_birth", "gender", "level_of_education", "language", "pref-lang", "dark-lang",
    "time_zone", "account_privacy", "is_active", "is_staff", "social_links", "password", "favourite_colour",
)  # fmt: skip
# Values shaped like the ids and words a field holds, with a person inside.
_SHAPED = (
    ("time_zone", lambda v: f"America/{v}"),
    ("digest", lambda v: f"{v}="),
    ("grade", lambda v: f"{v}+"),
    ("media_type", lambda v: f"image/{v}"),
    ("language", lambda v: f"en-{v}"),
    ("slug", lambda v: f"{v}-study-group"),
)
EPOCH = datetime(2023, 1, 1, tzinfo=timezone.utc)
COURSE = "course-v1:NorthwindX+Astro101+2024_T1"
BLOCK = "block-v1:NorthwindX+Astro101+2024_T1+type@problem+block@b33cd53142feb18718a15bc13456a1e9"
HOST = "https://lms.learn.example.org"
# Leaves that must stay as they are for the event to be routed and traced.
_FIXED_LEAVES = {("time",), ("timestamp",), ("event_type",), ("event_source",), ("name",)}

# Route templates of the platform whose segments carry a person (see the URL route catalogue).
ROUTES = (
    "/api/enrollment/v1/enrollment/{username},{course}",
    "/api/bookmarks/v1/bookmarks/{username},{block}/",
    "/api/team/v0/team_membership/astro-team-1,{username}",
    "/api/profile_images/v1/{username}/upload",
    "/api/user/v1/accounts/{username}/image",
    "/api/user/v1/preferences/{username}/pref-lang",
    "/api/mobile/v1/users/{username}/course_enrollments/",
    "/api/certificates/v0/certificates/{username}/courses/{course}/",
    "/api/completion/v1/subsection-completion/{username}/{course}/{block}",
    "/api/cohorts/v1/courses/{course}/cohorts/3/users/{username}",
    "/u/{username}",
    "/U/{username}",
    "/Users/{username}/",
    "/u//{username}",
    "/profile/{username}",
    "/courses/{course}/submission_history/{email}/{block}",
    "/support/manage_user/{email}",
    "/course_team/{course}/{email}",
    "/{course}/learners/{username}/posts",
    "/certificates/user/{user_id}/course/{course}",
    "/api/course_home/v1/progress/{course}/{user_id}",
    "/courses/{course}/progress/{user_id}/",
    "/courses/{course}/discussion/forum/users/{user_id}",
    "/admin/auth/user/{user_id}/change/",
    "/api/user/v1/users/{user_id}/",
    "/courses/{course}/xqueue/{user_id}/{block}/score_update",
    "/courses/{course}/courseware?username={username}&email={email}",
    "/courses/{course}/instructor/api/get_student_progress_url?unique_student_identifier={email}",
)
_URL_LEAVES = ("page", "referer", "url", "target_url", "current_url", "path")
# Forum routes that hold a post's id (a thread's, a response's or a comment's), for ``authored_id``.
POST_ROUTES = (
    "/courses/{course}/discussion/forum/8b22e514eabc2f0c24485fe4174dd699/threads/{post}",
    "/courses/{course}/discussion/threads/{post}/upvote",
    "/courses/{course}/discussion/comments/{post}/reply",
    "/api/discussion/v1/threads/{post}/",
    "/api/discussion/v1/comments/{post}",
    "/{course}/posts/{post}",
    "/{course}/topics/8b22e514eabc2f0c24485fe4174dd699/posts/{post}/edit",
    "/{course}/learners/{username}/posts/{post}",
)
# Where forum and ORA2 events name a post or a submission by its id.
_POST_FIELDS = (("id",), ("discussion", "id"), ("response", "id"), ("thread_id",), ("parent_id",))
_SUBMISSION_FIELDS = (("submission_uuid",), ("submission_returned_uuid",))
_IDENTITY_PATHS = (
    ("event", "student"),
    ("event", "username"),
    ("event", "user_id"),
    ("event", "target_username"),
    ("event", "instructor"),
    ("event", "user"),
    ("context", "username"),
    ("username",),
)


@dataclass(frozen=True)
class Plant:
    """One identifier planted in one event: its class, whose it is and how it was written."""

    index: int  # the event's position in the generated set
    cls: str
    person: int  # index into PEOPLE
    kind: str
    disguise: str
    where: str


@dataclass
class Generated:
    """The generated events (one raw JSON line each) and what was planted in them."""

    lines: list[str]
    plants: list[Plant]

    def of_class(self, cls: str) -> tuple[list[str], list[Plant]]:
        """The lines of the events with a plant of CLS, and those plants (which keep their index)."""
        keep = sorted({p.index for p in self.plants if p.cls == cls})
        return [self.lines[i] for i in keep], [p for p in self.plants if p.cls == cls]


def base_events() -> list[dict]:
    """Every fixture event, parsed (the two broken fixture lines are not in the families)."""
    events = []
    for path in sorted(FAMILIES.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                events.append(json.loads(line))
    return events


def time_of(index: int) -> str:
    """The time given to event INDEX: an hour of its own, so that truncation keeps it apart."""
    return (EPOCH + timedelta(hours=index, minutes=17, seconds=3)).isoformat()


def index_of(time: str) -> int | None:
    """The event index a (possibly truncated) time belongs to."""
    try:
        moment = datetime.fromisoformat(time.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None
    return int((moment - EPOCH).total_seconds() // 3600)


# ---------------------------------------------------------------- walking and setting leaves

_JSON = "<json>"  # a path step that decodes a JSON-string value


def string_leaves(value, path=()):
    """Paths of the string leaves of VALUE; a string holding a JSON object is walked into."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from string_leaves(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from string_leaves(item, path + (index,))
    elif isinstance(value, str):
        if value[:1] == "{":
            try:
                decoded = json.loads(value)
            except ValueError:
                decoded = None
            if isinstance(decoded, dict):
                yield from string_leaves(decoded, path + (_JSON,))
                return
        yield path


def dict_nodes(value, path=()):
    """Paths of every dict inside VALUE (JSON-string payloads walked into)."""
    if isinstance(value, dict):
        yield path
        for key, item in value.items():
            yield from dict_nodes(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from dict_nodes(item, path + (index,))
    elif isinstance(value, str) and value[:1] == "{":
        try:
            decoded = json.loads(value)
        except ValueError:
            return
        if isinstance(decoded, dict):
            yield from dict_nodes(decoded, path + (_JSON,))


def get_at(value, path):
    for step in path:
        value = json.loads(value) if step == _JSON else value[step]
    return value


def set_at(value, path, new):
    """VALUE with the leaf at PATH replaced by NEW (JSON strings on the way re-encoded)."""
    if not path:
        return new
    step, rest = path[0], path[1:]
    if step == _JSON:
        return json.dumps(set_at(json.loads(value), rest, new))
    value[step] = set_at(value[step], rest, new) if rest else new
    return value


def show(path) -> str:
    return ".".join("(json)" if step == _JSON else str(step) for step in path)


# ---------------------------------------------------------------- the generator


class _Builder:
    def __init__(self, seed: int, leaves_per_event: int | None) -> None:
        self.rng = random.Random(seed)
        # The disguised class draws from its own generator, so that adding a disguise does not
        # change what the classes after it plant.
        self.disguise_rng = random.Random(f"{seed}-disguised")
        self.leaves_per_event = leaves_per_event
        self.bases = base_events()
        self.lines: list[str] = []
        self.plants: list[Plant] = []

    def base(self, number: int) -> dict:
        """A copy of base event NUMBER with an actor from PEOPLE and the next event's time."""
        event = json.loads(json.dumps(self.bases[number % len(self.bases)]))
        actor = PEOPLE[len(self.lines) % len(PEOPLE)]
        index = len(self.lines)
        if "time" in event or "timestamp" not in event:
            event["time"] = time_of(index)
        if "timestamp" in event:
            event["timestamp"] = time_of(index)
        if "username" in event:
            event["username"] = actor.username
        if isinstance(event.get("context"), dict):
            context = event["context"]
            if "user_id" in context:
                context["user_id"] = actor.id
            if isinstance(context.get("traits"), dict):
                context["traits"].update(username=actor.username, userId=str(actor.id), email=actor.email)
        if "userId" in event:
            event["userId"] = str(actor.id)
        return event

    def add(self, event: dict | str, plants: list[tuple[str, int, str, str, str]]) -> None:
        index = len(self.lines)
        line = event if isinstance(event, str) else json.dumps(event, ensure_ascii=False)
        self.lines.append(line)
        for cls, person, kind, disguise, where in plants:
            self.plants.append(Plant(index, cls, person, kind, disguise, where))

    def pick(self, kinds=("username", "email", "user_id", "name", "phone", "ip")) -> tuple[int, Person, str, str]:
        number = self.rng.randrange(len(PEOPLE))
        person = PEOPLE[number]
        kind = self.rng.choice(kinds)
        return number, person, kind, person.values()[kind]

    # -------------------------------------------------------------- classes

    def free_text(self) -> None:
        """Every string leaf of every base event, in turn, holds a person written plainly."""
        for number in range(len(self.bases)):
            paths = [p for p in string_leaves(self.bases[number]) if p not in _FIXED_LEAVES]
            if self.leaves_per_event is not None and len(paths) > self.leaves_per_event:
                paths = self.rng.sample(paths, self.leaves_per_event)
            for path in paths:
                event = self.base(number)
                who, person, kind, value = self.pick()
                set_at(event, path, f"note: {value}, see you")
                self.add(event, [("free_text", who, kind, "plain", show(path))])

    def bare_value(self) -> None:
        """The whole value of string fields is a person's value, bare or shaped like the field's."""
        for number in range(len(self.bases)):
            paths = [p for p in string_leaves(self.bases[number]) if p not in _FIXED_LEAVES]
            if self.leaves_per_event is not None and len(paths) > self.leaves_per_event:
                paths = self.rng.sample(paths, self.leaves_per_event)
            for path in paths:
                event = self.base(number)
                who, person, kind, value = self.pick()
                while kind == "user_id" and len(value) < 5:  # a short number alone in text is no one, by design
                    who, person, kind, value = self.pick()
                label = "bare"
                if kind in ("username", "name") and self.rng.random() < 0.5:
                    label, shape = self.rng.choice(_SHAPED)
                    value = shape(value)
                set_at(event, path, value)
                self.add(event, [("bare_value", who, kind, label, show(path))])

    def settings_value(self) -> None:
        """Every setting's old or new value is a person's value (the setting named, the rest as logged)."""
        numbers = [n for n, b in enumerate(self.bases) if b.get("event_type") == "edx.user.settings.changed" and isinstance(b.get("event"), dict)]
        for setting in SETTINGS:
            for kind in ("username", "email", "user_id", "name", "phone", "ip"):
                event = self.base(numbers[len(self.lines) % len(numbers)])
                who, person, _, _ = self.pick(("username",))
                value = person.values()[kind]
                field = self.rng.choice(("old", "new"))
                label = "bare"
                if kind == "username" and self.rng.random() < 0.5:
                    label, shape = self.rng.choice(_SHAPED)
                    value = shape(value)
                event["event"].update({"setting": setting, field: value})
                self.add(event, [("settings_value", who, kind, label, f"event.{field} ({setting})")])

    def escaped_line(self) -> None:
        """A person in a string field, every character but ASCII letters and digits written as a
        JSON escape in the raw line (top-level strings: nested JSON strings are ``disguised``)."""
        for number in range(len(self.bases)):
            paths = [p for p in string_leaves(self.bases[number]) if p not in _FIXED_LEAVES and _JSON not in p]
            if self.leaves_per_event is not None and len(paths) > self.leaves_per_event:
                paths = self.rng.sample(paths, self.leaves_per_event)
            for path in paths:
                event = self.base(number)
                who, person, kind, value = self.pick()
                text = f"note: {value}, see you"
                set_at(event, path, text)
                line = json.dumps(event, ensure_ascii=False)
                plain = json.dumps(text, ensure_ascii=False)[1:-1]
                escaped = "".join(c if c.isascii() and c.isalnum() else f"\\u{ord(c):04x}" for c in text)
                if line.count(plain) != 1:
                    continue
                self.add(line.replace(plain, escaped), [("escaped_line", who, kind, "json_escapes", show(path))])

    def escape_glued(self) -> None:
        """A person's value glued after a ``%`` (a percent-escape when its first two characters
        are hex digits): in every parameter of every GET-string payload, and in string fields."""
        kinds = ("user_id", "username", "email")
        for number, base in enumerate(self.bases):
            payload = base.get("event")
            if isinstance(payload, str) and "=" in payload and payload[:1] not in "{[":
                params = payload.split("&")
                for at, param in enumerate(params):
                    name = param.partition("=")[0]
                    event = self.base(number)
                    who, person, kind, value = self.pick(kinds)
                    while kind == "user_id" and len(value) < 5:  # a short number alone is no one, by design
                        who, person, kind, value = self.pick(kinds)
                    glued = params[:at] + [f"{name}=note+%{quote_plus(value)}+x"] + params[at + 1:]
                    event["event"] = "&".join(glued)
                    self.add(event, [("escape_glued", who, kind, "after_percent", f"event.(query).{name}")])
            paths = [p for p in string_leaves(base) if p not in _FIXED_LEAVES]
            if self.leaves_per_event is not None and len(paths) > self.leaves_per_event:
                paths = self.rng.sample(paths, self.leaves_per_event)
            for path in paths:
                event = self.base(number)
                who, person, kind, value = self.pick(kinds)
                while kind == "user_id" and len(value) < 5:
                    who, person, kind, value = self.pick(kinds)
                set_at(event, path, f"up 5%{value} today")
                self.add(event, [("escape_glued", who, kind, "after_percent", show(path))])

    def identity_field(self) -> None:
        for number in range(len(self.bases)):
            for path in _IDENTITY_PATHS:
                event = self.base(number)
                if not isinstance(event.get("event"), dict) and path[0] == "event":
                    continue
                who, person, kind, value = self.pick(("username", "email", "user_id"))
                variant, label = {
                    "username": (self.rng.choice([value.upper(), value.title(), value.swapcase()]), "other_case"),
                    "email": (self.rng.choice([value, value.upper()]), "email_in_identity_field"),
                    "user_id": (value, "id_as_string"),
                }[kind]
                parent = event
                for step in path[:-1]:
                    parent = parent.setdefault(step, {})
                parent[path[-1]] = variant
                self.add(event, [("identity_field", who, kind, label, show(path))])

    def url_path(self) -> None:
        for number in range(len(self.bases)):
            for route in self.rng.sample(ROUTES, 6):
                event = self.base(number)
                who, person, _, _ = self.pick(("username",))
                kind = "user_id" if "{user_id}" in route else "email" if "{email}" in route and "{username}" not in route else "username"
                path = route.format(username=person.username, user_id=person.id, email=person.email, course=COURSE, block=BLOCK)
                targets = [p for p in string_leaves(event) if p and p[-1] in _URL_LEAVES]
                where = "page"
                if targets:
                    leaf = self.rng.choice(targets)
                    set_at(event, leaf, (HOST + path) if leaf[-1] != "path" else path)
                    where = show(leaf)
                else:
                    event["page"] = HOST + path
                if self.rng.random() < 0.3:
                    event["event_type"] = path  # an implicit event: the path is the type
                    event["name"] = path
                    where += ", event_type, name"
                self.add(event, [("url_path", who, kind, "route", where)])
        self.ip_hosts()

    def ip_hosts(self) -> None:
        """A person's IPv4 address as the host of a URL (a learner's own server), in the forms a
        browser reads as that address or that name it: dashed in a name, one number, octal octets."""
        for who, person in enumerate(PEOPLE):
            if ":" in person.ip:
                continue
            octets = [int(part) for part in person.ip.split(".")]
            number = int.from_bytes(bytes(octets), "big")
            forms = (
                ("ip_in_host_dashed", f"ec2-{person.ip.replace('.', '-')}.compute-1.amazonaws.com:8888"),
                ("ip_in_host_dotted", f"{person.ip}.nip.io"),
                ("ip_integer_host", str(number)),
                ("ip_hex_host", f"0x{number:08x}"),
                ("ip_octal_host", ".".join(f"0{o:o}" if o else "0" for o in octets)),
            )
            for label, host in forms:
                number_of_base = self.rng.randrange(len(self.bases))
                event = self.base(number_of_base)
                targets = [p for p in string_leaves(event) if p and p[-1] in _URL_LEAVES and p[-1] != "path"]
                leaf = self.rng.choice(targets) if targets else ("referer",)
                set_at(event, leaf, f"http://{host}/tree")
                self.add(event, [("url_path", who, "ip", label, show(leaf))])

    def dict_key(self) -> None:
        for number in range(len(self.bases)):
            base = self.base(number)
            payload = base.get("event")
            nodes = [p for p in dict_nodes(base) if p[:1] == ("event",)]
            for path in nodes or [("event",)]:
                event = self.base(number)
                who, person, kind, value = self.pick(("username", "email", "name"))
                node = get_at(event, path) if nodes else None
                if isinstance(node, dict):
                    set_at(event, path, {**node, value: "choice_1"})
                    where = show(path) + " (key)"
                elif isinstance(payload, str):
                    event["event"] = f"{quote_plus(value)}=1&" + payload
                    where = "event (GET parameter name)"
                else:
                    continue
                self.add(event, [("dict_key", who, kind, "key", where)])
            event = self.base(number)
            who, person, kind, value = self.pick(("username", "email"))
            if isinstance(event.get("context"), dict):
                event["context"]["course_user_tags"] = {value: "A"}
                self.add(event, [("dict_key", who, kind, "key", "context.course_user_tags (key)")])

    def kept_subtree(self) -> None:
        for number in range(len(self.bases)):
            event = self.base(number)
            who, person, kind, value = self.pick(("username", "email", "name"))
            plants = []
            if isinstance(event.get("context"), dict):
                event["context"]["course_user_tags"] = {"study_group": f"group of {value}"}
                plants.append(("kept_subtree", who, kind, "plain", "context.course_user_tags.study_group"))
            payload = event.get("event")
            if isinstance(payload, dict):
                for input_id, entry in (payload.get("correct_map") or {}).items():
                    if isinstance(entry, dict):
                        entry["answervariable"] = f"answer by {value}"
                        entry["msg"] = f"<p>Well done {value}</p>"
                        plants.append(("kept_subtree", who, kind, "plain", f"event.correct_map.{input_id}"))
                if "note_text" in payload or str(event.get("event_type", "")).startswith("edx.course.student_notes"):
                    payload["results"] = [{"note_text": f"ask {value}", "tags": [value], "highlighted_content": value}]
                    plants.append(("kept_subtree", who, kind, "plain", "event.results[].note_text"))
                if "team_id" in payload or str(event.get("event_type", "")).startswith("edx.team"):
                    slug = person.name.lower().replace(" ", "-") + "-study-team"
                    payload["team_id"] = slug
                    plants.append(("kept_subtree", who, "name", "slug", "event.team_id"))
            if plants:
                self.add(event, plants)

    def duplicate_key(self) -> None:
        for who, person in enumerate(PEOPLE):
            for number in range(len(self.bases)):
                base = self.bases[number]
                if base.get("event_type") != "edx.user.settings.changed":
                    continue
                event = self.base(number)
                event.pop("event", None)
                head = json.dumps(event, ensure_ascii=False)[:-1]
                payload = json.dumps({"setting": "email", "old": None, "new": person.email, "user_id": person.id, "table": "auth_user"})
                duplicated = payload[:-1] + ', "setting": "time_zone"}'
                self.add(head + ', "event": ' + duplicated + "}", [("duplicate_key", who, "email", "duplicate_setting", "event.new")])
                event = self.base(number)
                event.pop("event", None)
                head = json.dumps(event, ensure_ascii=False)[:-1]
                self.add(head + ', "event": ' + json.dumps(duplicated) + "}", [("duplicate_key", who, "email", "duplicate_setting_in_json_string", "event.(json).new")])
                break

    def disguised(self, per_disguise: int = 4, late: bool = False) -> None:
        """Every disguise planted PER_DISGUISE times per person and value in a drawn string field;
        the disguises added later (``LATE_DISGUISES``) in a second pass at the end (LATE), so that
        adding one leaves every earlier plant of the set as it was."""
        leaves_by_base = [[p for p in string_leaves(b) if p not in _FIXED_LEAVES] for b in self.bases]
        # Forum posts, where people type most of what they disguise: each disguise once in a body too.
        posts = [n for n, b in enumerate(self.bases) if isinstance(b.get("event"), dict) and isinstance(b["event"].get("body"), str)]
        if not late:
            for who, person in enumerate(PEOPLE):
                for kind, value in person.values().items():
                    for label, disguise in disguises_for(kind, value):
                        if posts and label not in LATE_DISGUISES:
                            event = self.base(posts[(who + len(label)) % len(posts)])
                            event["event"]["body"] = f"hi, {disguise(value, self.disguise_rng)} here"
                            self.add(event, [("disguised", who, kind, label, "event.body")])
        if late:  # the late ones are ways of writing in prose: planted where people write prose
            leaves_by_base = [[p for p in leaves if p and p[-1] in _PROSE] for leaves in leaves_by_base]
        for who, person in enumerate(PEOPLE):
            for kind, value in person.values().items():
                for label, disguise in disguises_for(kind, value):
                    if (label in LATE_DISGUISES) is not late:
                        continue
                    for _ in range(per_disguise):
                        number = self.disguise_rng.randrange(len(self.bases))
                        if not leaves_by_base[number]:
                            continue
                        event = self.base(number)
                        path = self.disguise_rng.choice(leaves_by_base[number])
                        set_at(event, path, f"hi, {disguise(value, self.disguise_rng)} here")
                        self.add(event, [("disguised", who, kind, label, show(path))])
        if late and posts:
            # Each late disguise once in a forum post too (few drawn fields hold prose): after
            # the draws above, so that these leave them as they were.
            for who, person in enumerate(PEOPLE):
                for kind, value in person.values().items():
                    for label, disguise in disguises_for(kind, value):
                        if label in LATE_DISGUISES:
                            event = self.base(posts[(who + len(label)) % len(posts)])
                            event["event"]["body"] = f"hi, {disguise(value, self.disguise_rng)} here"
                            self.add(event, [("disguised", who, kind, label, "event.body")])


    def learned_elsewhere(self) -> None:
        """Each person's name given in an account setting or a registration form, then written in
        a forum post by someone else (each pair in events of its own)."""
        settings = [n for n, b in enumerate(self.bases) if b.get("event_type") == "edx.user.settings.changed" and isinstance(b.get("event"), dict)]
        forms = [n for n, b in enumerate(self.bases) if b.get("event_type") == "/user_api/v1/account/registration/"]
        posts = [n for n, b in enumerate(self.bases) if isinstance(b.get("event"), dict) and isinstance(b["event"].get("body"), str)]
        for who, person in enumerate(PEOPLE):
            event = self.base(settings[who % len(settings)])
            event["event"].update({"setting": "name", "old": None, "new": person.name, "user_id": person.id})
            self.add(event, [("learned_elsewhere", who, "name", "account_setting", "event.new (name)")])
            event = self.base(forms[who % len(forms)])
            post = {"email": [person.email], "name": [person.name], "username": [person.username], "password": "********"}
            event["event"] = json.dumps({"GET": {}, "POST": post})
            self.add(event, [("learned_elsewhere", who, "name", "registration_form", "event.POST.name")])
            event = self.base(posts[who % len(posts)])
            event["event"]["body"] = f"thanks {person.name} for the notes"
            self.add(event, [("learned_elsewhere", who, "name", "named_elsewhere", "event.body")])



    def authored_id(self) -> None:
        """A person's forum post id in every id field of a forum event and in a forum route; their
        submission's UUID in the UUID fields of an ORA2 event."""
        for number, base in enumerate(self.bases):
            event_type = base.get("event_type") or ""
            if event_type.startswith("edx.forum.") and event_type != "edx.forum.searched":
                for route in self.rng.sample(POST_ROUTES, 4):
                    event = self.base(number)
                    who, person, _, _ = self.pick(("username",))
                    post = authored(who).forum_post
                    post = post.upper() if self.rng.random() < 0.25 else post  # an ObjectId in either case
                    payload = event["event"]
                    fields = []
                    for path in _POST_FIELDS:
                        # The post's own id always; its thread and response where the event has
                        # them; thread_id and parent_id (other platform versions) now and then.
                        if len(path) == 2 and isinstance(payload.get(path[0]), dict):
                            payload[path[0]][path[1]] = post
                        elif len(path) == 1 and (path == ("id",) or self.rng.random() < 0.3):
                            payload[path[0]] = post
                        else:
                            continue
                        fields.append(show(("event",) + path))
                    path = route.format(course=COURSE, post=post, username=person.username)
                    targets = [p for p in string_leaves(event) if p and p[-1] in _URL_LEAVES]
                    leaf = self.rng.choice(targets) if targets else ("page",)
                    set_at(event, leaf, (HOST + path) if leaf[-1] != "path" else path)
                    self.add(event, [("authored_id", who, "forum_post", "route", ", ".join(fields + [show(leaf)]))])
            elif event_type.startswith("openassessment"):
                paths = [p for p in _SUBMISSION_FIELDS if p[0] in base.get("event", {})]
                if not paths:
                    continue
                for _ in range(3):
                    event = self.base(number)
                    who, _, _, _ = self.pick(("username",))
                    submission = authored(who).submission
                    for path in paths:
                        set_at(event, ("event",) + path, submission.upper() if self.rng.random() < 0.25 else submission)
                    self.add(event, [("authored_id", who, "submission", "field", ", ".join(show(("event",) + p) for p in paths))])


# The fields of the base events where people write prose (forum posts, notes, answers, searches).
_PROSE = frozenset({"text", "body", "title", "query", "note_text", "answer", "search_string"})


def generate(seed: int = 9, *, per_disguise: int = 4, leaves_per_event: int | None = None) -> Generated:
    """The adversarial set for SEED (the same seed gives the same lines): every disguise planted
    PER_DISGUISE times per person and value, and a plain value in every string field of every
    base event (or in LEAVES_PER_EVENT of them, drawn)."""
    builder = _Builder(seed, leaves_per_event)
    builder.free_text()
    builder.identity_field()
    builder.url_path()
    builder.dict_key()
    builder.kept_subtree()
    builder.duplicate_key()
    builder.disguised(per_disguise)
    builder.bare_value()
    builder.settings_value()
    builder.escaped_line()
    builder.escape_glued()
    builder.disguised(per_disguise, late=True)
    builder.authored_id()
    builder.learned_elsewhere()
    return Generated(builder.lines, builder.plants)
