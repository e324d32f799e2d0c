"""Selection (--course, --org, --since, --until, --event-type, --exclude-staff) and the course-day
layout: the files a run writes, what each holds, the order of its events, and the accounting."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

import anonymizer.io.inputs as inputs_module
from anonymizer import Anonymizer, NotSelected, Outcome, Selection, UsageError, parse_policy, run
from anonymizer.cli import app, main
from anonymizer.core.roster import load_roster
from anonymizer.package.layout import course_dir, course_dirs, file_path, is_layout_file
from anonymizer.package.manifest import MANIFEST_NAME

from support import CORPUS, CORPUS_MISSING, corpus_decision
from test_resume import package_files

COURSES = {
    "a1": "course-v1:OrgA+Alpha101+2024_T1",
    "a2": "course-v1:OrgA+Beta202+2024_T1",
    "b1": "course-v1:OrgB+Gamma303+2T2024",
    "old": "OrgA/Legacy9/2013_Spring",
}
DAYS = ["2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04", "2024-03-05"]
STAFF = ("staff_sam", 7)
LEARNERS = [("learner_lee", 1001), ("learner_kim", 1002), ("learner_ona", 1003)]
SELECT = dict(courses=["course-v1:OrgA+*", "OrgA/Legacy9/2013_Spring"], since="2024-03-02", until="2024-03-04")


def _event(n: int, course: str | None, day: str | None, user: tuple[str, int], kind: int, offset: int) -> dict:
    """An event; its time (unique: the minute and second encode N and OFFSET) identifies it in the output."""
    time = f"{day}T{10 + offset:02d}:{(n // 60) % 60:02d}:{n % 60:02d}.{n:06d}+00:00" if day else None
    context = {"user_id": user[1], "org_id": "", "path": "/event"}
    if course is not None and kind != 2:
        context["course_id"] = course
    event = {"username": user[0], "session": "0123456789abcdef0123456789abcdef", "ip": "203.0.113.9", "agent": "Mozilla/5.0",
             "host": "lms.example.org", "event_source": "server", "context": context, "page": None}
    if time is not None:
        event["time"] = time
    if kind == 0:
        event.update(event_type="problem_check", event={"problem_id": "block-v1:OrgA+Alpha101+2024_T1+type@problem+block@p1", "success": "correct"})
    elif kind == 1:
        event.update(event_type="play_video", event_source="browser", event=json.dumps({"id": "v1", "currentTime": 3}))
    else:  # an implicit event: its course only in the URL path
        path = f"/courses/{course}/courseware" if course is not None else "/dashboard"
        event.update(event_type=path, event=json.dumps({"GET": {}, "POST": {}}))
    return event


def make_input(path: Path, offset: int, count: int = 240) -> dict[str, dict]:
    """A multi-course, multi-day input (and blank, broken, unknown-type lines); returns what the
    test knows of each written event by its time: course, day, user, type kind, input."""
    known: dict[str, dict] = {}
    lines = []
    keys = [*COURSES.values(), None]
    for n in range(count):
        course = keys[n % len(keys)]
        day = DAYS[(n // 7) % len(DAYS)] if n % 23 else None
        user = STAFF if n % 5 == 0 else LEARNERS[n % len(LEARNERS)]
        kind = n % 3
        event = _event(n, course, day, user, kind, offset)
        lines.append(orjson.dumps(event))
        known[event.get("time") or f"none-{offset}-{n}"] = {"course": course, "day": day, "user": user, "kind": kind, "offset": offset, "n": n}
        if n % 50 == 7:
            lines.append(b"not json")
        if n % 61 == 3:
            lines.append(orjson.dumps({"event_type": "no.such.event", "time": f"{DAYS[0]}T00:00:00+00:00", "context": {"course_id": COURSES["a1"]}}))
    path.write_bytes(b"\n".join(lines) + b"\n")
    return known


def read_package(out: Path) -> dict[str, list[dict]]:
    """The events of every data file of a package, by relative path, in file order."""
    manifest = orjson.loads((out / MANIFEST_NAME).read_bytes())
    return {entry["path"]: [orjson.loads(line) for line in gzip.decompress((out / entry["path"]).read_bytes()).splitlines()] for entry in manifest["files"]}


def course_of_output(event: dict) -> str | None:
    course = (event.get("context") or {}).get("course_id")
    if course:
        return course
    found = re.match(r"/courses/([^/]+/[^/]+/[^/]+|[^/]+)/", event.get("event_type", ""))
    return found.group(1) if found else None


def selected(info: dict, courses=(), since=None, until=None) -> bool:
    course, day = info["course"], info["day"]
    if courses and not (course is not None and (course.startswith("course-v1:OrgA+") or course == COURSES["old"])):
        return False
    if since and (day is None or day < since):
        return False
    if until and (day is None or day > until):
        return False
    return True


@pytest.fixture()
def two_inputs(tmp_path) -> tuple[list[Path], dict[str, dict]]:
    """Two inputs given late first: input order, not time order, must rule within each file."""
    late, early = tmp_path / "in" / "late.log", tmp_path / "in" / "early.log"
    late.parent.mkdir()
    known = make_input(late, offset=8)
    known.update(make_input(early, offset=0))
    return [late, early], known


def test_course_day_with_course_since_and_until_writes_exactly_the_selected_events(two_inputs, tmp_path, research, key):
    paths, known = two_inputs
    selection = Selection.parse(**SELECT)
    out = tmp_path / "package"
    result = run(paths, out, research, key, jobs=1, learn=False, selection=selection, layout="course-day")
    manifest = result.manifest
    files = read_package(out)
    expected = Counter()
    for info in known.values():
        if selected(info, **{"courses": SELECT["courses"], "since": SELECT["since"], "until": SELECT["until"]}):
            expected[(info["course"], info["day"])] += 1
    names = course_dirs(course for course, _ in expected)
    assert set(files) == {file_path(names[course], day) for course, day in expected}
    assert all(is_layout_file(path) for path in files)
    for entry in manifest["files"]:
        events = files[entry["path"]]
        assert entry["events"] == len(events) == expected[(entry["course"], entry["day"])]
        for event in events:
            info = known[event["time"]]
            assert (info["course"], info["day"]) == (entry["course"], entry["day"])
            assert course_of_output(event) == entry["course"]
            assert event["time"][:10] == entry["day"] and SELECT["since"] <= entry["day"] <= SELECT["until"]
    counts = manifest["counts"]
    assert counts["read"] == counts["written"] + sum(counts["dropped"].values()) + sum(counts["rejected"].values()) + counts["not_selected"]
    assert counts["written"] == sum(expected.values())
    assert counts["not_selected"] == len(known) - sum(expected.values())
    assert counts["dropped"] == {"event_type_not_in_policy": 8} and counts["rejected"] == {"invalid_json": 10}
    assert manifest["layout"] == "course-day" and manifest["selection"]["since"] == "2024-03-02"
    listed = {entry["course"]: entry for entry in manifest["courses"]}
    assert set(listed) == {course for course, _ in expected}
    assert sum(entry["events"] for entry in manifest["courses"]) == counts["written"]


def test_events_keep_input_order_within_each_file_and_inputs_their_given_order(two_inputs, tmp_path, research, key):
    paths, known = two_inputs
    out = tmp_path / "package"
    run(paths, out, research, key, jobs=1, learn=False, layout="course-day")
    for path, events in read_package(out).items():
        timed = [known[e["time"]] for e in events if "time" in e]  # events without one: checked by count elsewhere
        order = [(0 if info["offset"] == 8 else 1, info["n"]) for info in timed]
        assert order == sorted(order), path  # late.log (given first) before early.log, lines in order
        assert len({o for o, _ in order}) == 2 or len(order) < 3, path


def test_events_without_course_or_day_have_their_own_files(two_inputs, tmp_path, research, key):
    paths, known = two_inputs
    out = tmp_path / "package"
    manifest = run(paths, out, research, key, jobs=1, learn=False, layout="course-day").manifest
    files = read_package(out)
    no_date = [entry for entry in manifest["files"] if entry["day"] is None]
    assert no_date and all(entry["path"].endswith("-events-_no_date.log.gz") for entry in no_date)
    assert all("time" not in event for entry in no_date for event in files[entry["path"]])
    no_course = [entry for entry in manifest["files"] if entry["course"] is None]
    assert {entry["path"].split("/")[0] for entry in no_course} == {"_no_course"}
    assert sum(entry["events"] for entry in no_course) == sum(1 for info in known.values() if info["course"] is None)


def test_course_day_output_is_byte_identical_with_one_or_two_jobs(two_inputs, tmp_path, research, key, monkeypatch):
    paths, _ = two_inputs
    monkeypatch.setattr(inputs_module, "BATCH_BYTES", 4000)  # many batches, so that two workers share them
    selection = Selection.parse(**SELECT)
    one, two = tmp_path / "one", tmp_path / "two"
    run(paths, one, research, key, jobs=1, learn=False, selection=selection, layout="course-day")
    run(paths, two, research, key, jobs=2, learn=False, selection=selection, layout="course-day")
    assert package_files(one) == package_files(two)
    members = gzip.decompress((one / read_manifest_first(one)).read_bytes())
    assert members  # several members per file, still one gzip stream


def read_manifest_first(out: Path) -> str:
    return orjson.loads((out / MANIFEST_NAME).read_bytes())["files"][0]["path"]


def test_per_type_day_ranges_merge_exactly_across_batches(two_inputs, tmp_path, research, key, monkeypatch):
    paths, known = two_inputs
    monkeypatch.setattr(inputs_module, "BATCH_BYTES", 3000)
    manifest = run(paths, tmp_path / "p", research, key, jobs=2, learn=False).manifest
    types = manifest["counts"]["event_types"]
    days = {"problem_check": [], "play_video": [], "/*": []}
    for info in known.values():
        if info["day"] is not None:
            days[["problem_check", "play_video", "/*"][info["kind"]]].append(info["day"])
    for label, seen in days.items():
        assert (types[label]["first_day"], types[label]["last_day"]) == (min(seen), max(seen))
    assert "first_day" not in types["<other>"]  # dropped events have no written range


def roster_file(tmp_path: Path, staff_column: bool = True) -> Path:
    path = tmp_path / "roster.csv"
    rows = ["id,username,email" + (",is_staff" if staff_column else "")]
    for username, user_id in [STAFF, *LEARNERS]:
        rows.append(f"{user_id},{username},{username}@example.org" + ((",1" if (username, user_id) == STAFF else ",0") if staff_column else ""))
    path.write_text("\n".join(rows) + "\n")
    return path


def test_exclude_staff_leaves_out_the_staff_events(two_inputs, tmp_path, research, key):
    paths, known = two_inputs
    people, _ = load_roster([roster_file(tmp_path)])
    everything = run(paths, tmp_path / "all", research, key, jobs=1, roster=people, learn=False, layout="course-day")
    staff_pseudonyms = {e["username"] for events in read_package(tmp_path / "all").values() for e in events if "time" in e and known[e["time"]]["user"] == STAFF}
    assert staff_pseudonyms
    selection = Selection.parse(exclude_staff=True, roster=people)
    result = run(paths, tmp_path / "nostaff", research, key, jobs=1, roster=people, learn=False, selection=selection, layout="course-day")
    events = [e for events in read_package(tmp_path / "nostaff").values() for e in events]
    assert events and not any(e["username"] in staff_pseudonyms for e in events)
    assert not any(known[e["time"]]["user"] == STAFF for e in events if "time" in e)
    staff_events = sum(1 for info in known.values() if info["user"] == STAFF)
    assert result.manifest["counts"]["not_selected"] == staff_events
    assert result.manifest["counts"]["written"] == everything.manifest["counts"]["written"] - staff_events


def test_exclude_staff_without_a_staff_column_is_an_error(tmp_path):
    people, _ = load_roster([roster_file(tmp_path, staff_column=False)])
    with pytest.raises(UsageError, match="--exclude-staff needs a roster with a staff or role column"):
        Selection.parse(exclude_staff=True, roster=people)
    with pytest.raises(UsageError, match="--exclude-staff"):
        Selection.parse(exclude_staff=True, roster=None)


def test_a_role_column_and_an_auth_user_export_name_staff(tmp_path):
    roles = tmp_path / "roles.csv"
    roles.write_text("user_id,username,role\n1,ann,Instructor\n2,bo,student\n3,cy,course staff\n")
    people, _ = load_roster([roles])
    staff = Selection.parse(exclude_staff=True, roster=people).staff
    assert staff.usernames == {"ann", "cy"} and staff.user_ids == {"1", "3"}
    auth_user = tmp_path / "auth_user.sql"
    auth_user.write_text("5\x01dee\x012024-01-01 00:00:00\x012023-01-01 00:00:00\x011\x010\x011\x01d@example.org\n"
                         "6\x01eve\x012024-01-01 00:00:00\x012023-01-01 00:00:00\x011\x010\x010\x01e@example.org\n")
    people, _ = load_roster([auth_user])
    assert Selection.parse(exclude_staff=True, roster=people).staff.user_ids == {"5"}


def test_the_batch_function_counts_not_selected_apart_from_policy_drops(research, key):
    selection = Selection.parse(courses=[COURSES["a1"]])
    anonymizer = Anonymizer(research, key, selection=selection)
    lines = [orjson.dumps(_event(1, COURSES["a1"], DAYS[0], LEARNERS[0], 0, 0)),
             orjson.dumps(_event(2, COURSES["b1"], DAYS[0], LEARNERS[0], 0, 0)),
             orjson.dumps({"event_type": "no.such.event", "context": {"course_id": COURSES["b1"]}}),
             orjson.dumps(_event(3, COURSES["a1"], DAYS[1], LEARNERS[0], 2, 0))]
    result = anonymizer.anonymize_batch(lines)
    assert [line.outcome for line in result.lines] == [Outcome.WRITTEN, Outcome.NOT_SELECTED, Outcome.DROPPED, Outcome.WRITTEN]
    assert isinstance(result.lines[1], NotSelected) and result.lines[1].route.course_id == COURSES["b1"]
    assert result.lines[3].route.course_id == COURSES["a1"]  # an implicit event, by its URL path
    stats = result.stats
    assert (stats.read, stats.written, stats.not_selected, sum(stats.dropped.values())) == (4, 2, 1, 1)
    assert stats.accounted()


def test_selection_never_reads_a_course_the_policy_drops(tmp_path, key):
    policy = parse_policy(b"name: no-course\nextends: research\nenvelope:\n  context.course_id: drop\n", "no-course.yaml")
    anonymizer = Anonymizer(policy, key, selection=Selection.parse(courses=[COURSES["a1"]]))
    explicit = orjson.dumps(_event(1, COURSES["a1"], DAYS[0], LEARNERS[0], 0, 0))
    implicit = orjson.dumps(_event(2, COURSES["a1"], DAYS[0], LEARNERS[0], 2, 0))
    result = anonymizer.anonymize_batch([explicit, implicit])
    # The first event's course is only in context.course_id, which the package drops: to the
    # selection (and the layout) it has none. The implicit one shows its course in its kept path.
    assert [line.outcome for line in result.lines] == [Outcome.NOT_SELECTED, Outcome.WRITTEN]
    assert result.lines[0].route.course_id is None
    placed = Anonymizer(policy, key).anonymize_batch([explicit]).lines[0]
    assert placed.outcome is Outcome.WRITTEN and placed.route.course_id is None


def test_org_and_event_type_select(two_inputs, tmp_path, research, key):
    paths, known = two_inputs
    selection = Selection.parse(orgs=["OrgB"], event_types=["problem_*", "/*"])
    manifest = run(paths, tmp_path / "p", research, key, jobs=1, learn=False, selection=selection, layout="course-day").manifest
    assert {entry["course"] for entry in manifest["files"]} == {COURSES["b1"]}
    events = [e for events in read_package(tmp_path / "p").values() for e in events]
    assert events and all(e["event_type"] == "problem_check" or e["event_type"].startswith("/courses/") for e in events)
    assert len(events) == sum(1 for i in known.values() if i["course"] == COURSES["b1"] and i["kind"] in (0, 2))


def test_a_course_day_run_that_was_interrupted_needs_force(two_inputs, tmp_path, research, key, monkeypatch):
    paths, _ = two_inputs
    out = tmp_path / "package"
    reference = tmp_path / "reference"
    run(paths, reference, research, key, jobs=1, learn=False, layout="course-day")

    def stop(name, stats):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(paths, out, research, key, jobs=1, learn=False, layout="course-day", on_file_done=stop)
    assert not (out / MANIFEST_NAME).exists()
    with pytest.raises(UsageError, match="cannot be resumed.*--force"):
        run(paths, out, research, key, jobs=1, learn=False, layout="course-day")
    with pytest.raises(UsageError, match="another layout"):
        run(paths, out, research, key, jobs=1, learn=False)
    run(paths, out, research, key, jobs=1, learn=False, layout="course-day", force=True)
    assert package_files(out) == package_files(reference)


def test_course_directory_names():
    assert course_dir("course-v1:MITx+6.002x+2024_T1") == "MITx-6.002x-2024_T1"
    assert course_dir("MITx/6.002x/2024_T1") == "MITx-6.002x-2024_T1"
    assert course_dir("ccx-v1:MITx+6.002x+2024_T1+ccx@3") == "MITx-6.002x-2024_T1-ccx_3"
    assert course_dir(".hidden/x/y") == "_hidden-x-y"
    assert course_dir(None) == "_no_course"
    names = course_dirs(["course-v1:MITx+6.002x+2024_T1", "MITx/6.002x/2024_T1", "course-v1:A+B+C", None])
    assert names["course-v1:A+B+C"] == "A-B-C" and names[None] == "_no_course"
    clashing = {names["course-v1:MITx+6.002x+2024_T1"], names["MITx/6.002x/2024_T1"]}
    assert len(clashing) == 2 and all(re.fullmatch(r"MITx-6\.002x-2024_T1-[0-9a-f]{8}", name) for name in clashing)
    assert names == course_dirs(reversed(list(names)))  # the set of courses decides, not their order
    assert file_path("A-B-C", "2024-03-01") == "A-B-C/events/A-B-C-events-2024-03-01.log.gz"
    assert file_path("A-B-C", None) == "A-B-C/events/A-B-C-events-_no_date.log.gz"


@pytest.mark.parametrize(
    "args, option",
    [
        (["--since", "2024-13-45"], "--since"),
        (["--until", "yesterday"], "--until"),
        (["--since", "2024-03-05", "--until", "2024-03-01"], "--since"),
        (["--course", "course-v1:Org+Num+Run", "--course", "not a course; rm"], "--course"),
        (["--org", "Org A"], "--org"),
        (["--event-type", "bad type"], "--event-type"),
        (["--layout", "per-learner"], "--layout"),
        (["--exclude-staff"], "--exclude-staff"),
    ],
)
def test_bad_options_name_the_option_and_never_the_value(two_inputs, tmp_path, key_file, capsys, monkeypatch, args, option):
    paths, _ = two_inputs
    monkeypatch.setattr("sys.argv", ["anonymizer", "run", *map(str, paths), "--out", str(tmp_path / "o"), "--key-file", str(key_file), *args])
    with pytest.raises(SystemExit) as stopped:
        main()
    assert stopped.value.code == 2
    message = capsys.readouterr().err
    assert option in message
    for value in args[1::2] if option != "--exclude-staff" else ():
        if value != "course-v1:Org+Num+Run" and not value.startswith("--"):
            assert value not in message


def test_the_command_line_builds_a_course_day_package(two_inputs, tmp_path, key_file):
    paths, _ = two_inputs
    out = tmp_path / "cli"
    result = CliRunner().invoke(app, ["run", *map(str, paths), "--out", str(out), "--key-file", str(key_file), "--no-learn", "--jobs", "1",
                                      "--layout", "course-day", "--course", "course-v1:OrgA+*", "--course", COURSES["old"],
                                      "--since", "2024-03-02", "--until", "2024-03-04"])
    assert result.exit_code == 0, result.output
    assert "not selected" in result.output
    manifest = orjson.loads((out / MANIFEST_NAME).read_bytes())
    assert {entry["course"] for entry in manifest["files"]} == {COURSES["a1"], COURSES["a2"], COURSES["old"]}
    assert {entry["day"] for entry in manifest["files"]} == {"2024-03-02", "2024-03-03", "2024-03-04"}


def test_course_day_on_the_fixtures_and_corpus(tmp_path, research, key):
    decision = corpus_decision(CORPUS.is_dir())
    if decision == "skip":
        pytest.skip(CORPUS_MISSING)
    assert decision == "run", CORPUS_MISSING
    sources = [Path(__file__).parent / "fixtures" / "families", CORPUS / "edx-analytics-pipeline" / "input"]
    whole = run(sources, tmp_path / "all", research, key, jobs=1, learn=False, layout="course-day").manifest
    placed = Counter({(e["course"], e["day"]): e["events"] for e in whole["files"] if e["course"] and e["day"]})
    assert len(placed) > 3  # several courses and days to choose from
    busiest_course, busiest_day = placed.most_common(1)[0][0]
    selection = Selection.parse(courses=[busiest_course], since=busiest_day, until=busiest_day)
    part = run(sources, tmp_path / "part", research, key, jobs=2, learn=False, selection=selection, layout="course-day").manifest
    counts = part["counts"]
    assert counts["read"] == counts["written"] + sum(counts["dropped"].values()) + sum(counts["rejected"].values()) + counts["not_selected"]
    assert counts["read"] == whole["counts"]["read"] and counts["dropped"] == whole["counts"]["dropped"]
    assert [(e["course"], e["day"]) for e in part["files"]] == [(busiest_course, busiest_day)]
    expected = next(e for e in whole["files"] if (e["course"], e["day"]) == (busiest_course, busiest_day))
    assert part["files"][0]["sha256"] == expected["sha256"]  # the same events, bytes and order
    for event in read_package(tmp_path / "part")[part["files"][0]["path"]]:
        assert course_of_output(event) == busiest_course and event["time"][:10] == busiest_day


def test_a_time_the_policy_refuses_names_no_day(research, key):
    # The basic ISO form is a readable time, but not the shape the research policy keeps: the
    # written event has no time, so its route (and its file) names no day either.
    event = _event(1, COURSES["a1"], DAYS[0], LEARNERS[0], 0, 0)
    event["time"] = "20240302T100000Z"
    line = Anonymizer(research, key).anonymize_batch([orjson.dumps(event)]).lines[0]
    assert line.outcome is Outcome.WRITTEN and "time" not in orjson.loads(line.output)
    assert (line.route.course_id, line.route.date) == (COURSES["a1"], None)
    dated = Anonymizer(research, key, selection=Selection.parse(since="2024-03-01")).anonymize_batch([orjson.dumps(event)]).lines[0]
    assert dated.outcome is Outcome.NOT_SELECTED  # selected only by what the package shows
    assert dated.route.date is None
