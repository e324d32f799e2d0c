"""Parquet output (``run --format parquet``): columns, DuckDB against the manifest, determinism,
verify, resumption, and the refusals."""

from __future__ import annotations

import gzip
import json
import shutil
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest

pa = pytest.importorskip("pyarrow", reason="pyarrow is in the test extra (pip install -e '.[test]')")
pq = pytest.importorskip("pyarrow.parquet")
duckdb = pytest.importorskip("duckdb", reason="duckdb is in the test extra (pip install -e '.[test]')")

import anonymizer.io.inputs as inputs_module  # noqa: E402
import anonymizer.io.parquet as parquet_module  # noqa: E402
from anonymizer import Anonymizer, UsageError, run  # noqa: E402
from anonymizer.io.parquet import convert, read_as_lines  # noqa: E402
from anonymizer.package.columns import TRACKING_COLUMNS, XAPI_COLUMNS, tracking_event, tracking_row, xapi_row  # noqa: E402
from anonymizer.package.manifest import MANIFEST_NAME  # noqa: E402
from anonymizer.package.signing import load_private_key, load_public_key, sign_manifest, write_signing_key_pair  # noqa: E402
from anonymizer.verify import verify_package  # noqa: E402

from support import CORPUS  # noqa: E402
from test_resume import interrupt_after, package_files  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
PIPELINE = CORPUS / "edx-analytics-pipeline" / "input"
XAPI_EXPECTED = CORPUS / "event-routing-backends" / "xapi-expected"
# Small inputs of the pipeline's acceptance tests, with several courses and days between them.
PIPELINE_LOGS = ("event_export_tracking.log", "student_forum_activity.log", "video_timeline.log")


def manifest_of(out: Path) -> dict:
    return orjson.loads((out / MANIFEST_NAME).read_bytes())


def fixture_logs() -> list[Path]:
    return sorted((FIXTURES / "families").glob("*.jsonl"))


# ------------------------------------------------------------------------------ DuckDB against the manifest


@pytest.fixture(scope="module")
def pipeline_package(tmp_path_factory, research, key) -> Path:
    """Inputs of the analytics pipeline's acceptance tests, in the course-day layout."""
    if not PIPELINE.is_dir():
        pytest.skip("../shared/corpus is not beside the project")
    out = tmp_path_factory.mktemp("parquet") / "course-day"
    run([PIPELINE / name for name in PIPELINE_LOGS], out, research, key, jobs=1, learn=False, layout="course-day", output_format="parquet")
    return out


@pytest.mark.parametrize("layout", ["input", pytest.param("course-day", marks=pytest.mark.corpus)])
def test_duckdb_reads_every_file_and_its_counts_equal_the_manifest(request, research, key, layout):
    # The fixture logs in the input layout; the corpus inputs in the course-day layout.
    out = request.getfixturevalue("made") / "input" if layout == "input" else request.getfixturevalue("pipeline_package")
    manifest = manifest_of(out)
    assert manifest["format"] == {"files": "parquet", "schema": "tracking-log", "schema_version": 1}
    assert manifest["files"] and all(entry["path"].endswith(".parquet") for entry in manifest["files"])
    on_disk = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.parquet"))
    assert on_disk == sorted(entry["path"] for entry in manifest["files"])
    con = duckdb.connect()
    for entry in manifest["files"]:
        rows = con.execute("select count(*) from read_parquet(?)", [str(out / entry["path"])]).fetchone()[0]
        assert rows == entry["events"], entry["path"]
    by_type = con.execute(
        "select event_type, event_source, count(*) from read_parquet(?) group by all", [str(out / "**" / "*.parquet")]
    ).fetchall()
    # The manifest counts by the policy's label of each type (a rule's glob, or the type itself).
    engine = Anonymizer(research, key)
    counted: Counter = Counter()
    for event_type, source, count in by_type:
        counted[engine.route(event_type, source).label] += count
    expected = {label: entry["written"] for label, entry in manifest["counts"]["event_types"].items() if entry.get("written")}
    assert dict(counted) == expected
    assert sum(counted.values()) == manifest["counts"]["written"] > 40
    assert len(manifest["files"]) > 1
    if layout == "course-day":  # each file holds the events of its course and day
        for entry in manifest["files"]:
            courses, days = con.execute(
                "select list(distinct course_id), list(distinct strftime(time, '%Y-%m-%d')) from read_parquet(?)",
                [str(out / entry["path"])],
            ).fetchone()
            assert [course or None for course in courses] == [entry["course"]] and days == [entry["day"]]


def test_the_columns_have_their_documented_types(made):
    out = made / "input"
    path = out / manifest_of(out)["files"][1]["path"]
    parquet = pq.ParquetFile(path)
    schema = parquet.schema_arrow
    assert schema.names == [column.name for column in TRACKING_COLUMNS]
    for column in TRACKING_COLUMNS:
        expected = pa.timestamp("us", tz="UTC") if column.kind == "timestamp" else pa.string()
        assert schema.field(column.name).type == expected, column.name
    assert schema.metadata[b"anonymizer.schema"] == b"tracking-log/1"
    assert parquet.metadata.row_group(0).column(0).compression == "ZSTD"
    described = duckdb.connect().execute("describe select * from read_parquet(?)", [str(path)]).fetchall()
    types = {name: kind for name, kind, *_ in described}
    assert types["time"] == "TIMESTAMP WITH TIME ZONE" and types["user_id"] == "VARCHAR" and types["event"] == "VARCHAR"
    # The JSON columns are JSON text that DuckDB's json functions read.
    found = duckdb.connect().execute(
        "select count(*) filter (where json_valid(context)), count(*) filter (where user_id is not null), count(*) from read_parquet(?)",
        [str(path)],
    ).fetchone()
    assert found[0] == found[2] > 0 and found[1] > 0


@pytest.mark.corpus
def test_the_codebook_documents_the_columns(pipeline_package):
    out = pipeline_package
    codebook = orjson.loads((out / "codebook.json").read_bytes())
    assert [c["name"] for c in codebook["format"]["columns"]] == [c.name for c in TRACKING_COLUMNS]
    readme = (out / "README.md").read_text()
    assert "## Columns of the Parquet files" in readme and "| `user_id` | string |" in readme
    assert "Each `.parquet` file holds one event per row" in readme


# ------------------------------------------------------------------------------ determinism


def small_pieces(patch) -> None:
    """Many batches (shared by two workers) and row groups that cut across them."""
    patch.setattr(inputs_module, "BATCH_BYTES", 4000)
    patch.setattr(parquet_module, "ROW_GROUP_ROWS", 3)


@pytest.fixture(scope="module")
def made(tmp_path_factory, research, key) -> Path:
    """The fixture logs as JSON lines and as Parquet in both layouts, one job, in small pieces."""
    base = tmp_path_factory.mktemp("made")
    with pytest.MonkeyPatch.context() as patch:
        small_pieces(patch)
        run(fixture_logs(), base / "jsonl", research, key, jobs=1, learn=False)
        for layout in ("input", "course-day"):
            run(fixture_logs(), base / layout, research, key, jobs=1, learn=False, layout=layout, output_format="parquet")
    return base


@pytest.mark.parametrize("layout", ["input", "course-day"])
def test_parquet_is_byte_identical_for_one_and_two_jobs(made, tmp_path, research, key, monkeypatch, layout):
    small_pieces(monkeypatch)
    run(fixture_logs(), tmp_path / "two", research, key, jobs=2, learn=False, layout=layout, output_format="parquet")
    assert package_files(tmp_path / "two") == package_files(made / layout)
    biggest = max((made / layout).rglob("*.parquet"), key=lambda p: pq.ParquetFile(p).metadata.num_rows)
    metadata = pq.ParquetFile(biggest).metadata
    sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    assert len(sizes) > 1 and set(sizes[:-1]) == {3} and 0 < sizes[-1] <= 3
    assert metadata.created_by.startswith("parquet-cpp-arrow")


def test_rows_keep_the_order_of_the_json_lines(made):
    for log in fixture_logs():
        lines = gzip.decompress((made / "jsonl" / (log.name + ".gz")).read_bytes()).splitlines()
        table = pq.read_table(made / "input" / (log.name + ".parquet"))
        assert table.num_rows == len(lines)
        assert table.column("event_type").to_pylist() == [json.loads(line).get("event_type") for line in lines]
        assert table.column("event").to_pylist() == [tracking_row(json.loads(line)).get("event") for line in lines]
    manifest = manifest_of(made / "input")
    assert manifest["counts"]["written"] == sum(entry["events"] for entry in manifest["files"]) > 50


# ------------------------------------------------------------------------------ rows


def test_every_field_the_policy_writes_is_in_a_column_or_in_extra(made):
    checked = 0
    for path in (made / "jsonl").glob("*.gz"):
        for line in gzip.decompress(path.read_bytes()).splitlines():
            event = json.loads(line)
            assert tracking_event(tracking_row(event)) == normalized(event)
            checked += 1
    assert checked > 100


def normalized(event: dict) -> dict:
    """EVENT as a row gives it back: the time in UTC, a payload held as JSON text decoded, and no
    field that is null (a null column is an absent field)."""
    out = {}
    for name, value in event.items():
        if value is None and name != "event":
            continue
        if name == "time" and isinstance(value, str):
            parsed = datetime.fromisoformat(value)
            value = (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).astimezone(timezone.utc).isoformat()
        if name == "event" and isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                pass
        out[name] = value
    return out


def test_risk_reads_a_parquet_package_as_it_reads_json_lines(made):
    from anonymizer.tools.risk import risk_report

    as_parquet, as_json_lines = risk_report(made / "input"), risk_report(made / "jsonl")
    assert as_parquet.pop("package") != as_json_lines.pop("package")
    assert as_parquet == as_json_lines and as_parquet["learners"] > 0 and as_parquet["events_with_a_learner"] > 50


def test_tracking_row_maps_user_id_to_text_and_keeps_odd_values_in_extra():
    row = tracking_row({
        "time": "2024-03-01T10:00:00.5+01:00", "username": "u_1", "ip": 7, "page": None, "event": '{"a": 1}',
        "context": {"user_id": 12345, "course_id": "course-v1:A+B+C", "org_id": "A"}, "label": "x",
    })
    assert row["time"] == datetime(2024, 3, 1, 9, 0, 0, 500000, tzinfo=timezone.utc)
    assert row["user_id"] == "12345" and row["course_id"] == "course-v1:A+B+C" and row["org_id"] == "A"
    assert row["event"] == '{"a": 1}'  # a payload held as a string stays that string
    assert json.loads(row["extra"]) == {"ip": 7, "label": "x"}  # a number is no address: kept, out of its column
    assert "page" not in row and "ip" not in row
    assert tracking_row({"context": {"user_id": "u_9f"}})["user_id"] == "u_9f"
    assert tracking_row({"context": {"user_id": True}}).get("user_id") is None
    odd = tracking_row({"time": "yesterday", "event": {"b": [1, 2]}})
    assert odd["time"] is None and json.loads(odd["extra"]) == {"time": "yesterday"} and odd["event"] == '{"b":[1,2]}'
    assert tracking_row({"time": "2024-03-01T10:00:00"})["time"] == datetime(2024, 3, 1, 10, tzinfo=timezone.utc)


def statements() -> list[dict]:
    found = []
    for path in sorted(XAPI_EXPECTED.glob("*.json")):
        data = json.loads(path.read_text())
        found.extend(data if isinstance(data, list) else [data])
    return found


@pytest.mark.corpus
def test_xapi_rows_of_the_event_routing_backends_statements():
    every = statements()
    assert len(every) > 77
    for statement in every:
        row = xapi_row(statement)
        assert set(row) == {column.name for column in XAPI_COLUMNS}
        assert row["event_id"] == statement["id"] and row["verb_id"] == statement["verb"]["id"]
        assert row["actor_id"] == statement["actor"]["account"]["name"]
        assert row["object_id"] == statement["object"].get("id")
        assert row["object_type"] == statement["object"].get("definition", {}).get("type")
        assert row["emission_time"] == datetime.fromisoformat(statement["timestamp"]).astimezone(timezone.utc)
        assert json.loads(row["statement"]) == statement
        response = statement.get("result", {}).get("response")
        assert row["response"] == (response if isinstance(response, str) or response is None else json.dumps(response, separators=(",", ":")))
        if "-v1:" in (row["object_id"] or "") or row["course_id"] is not None:
            assert row["course_id"].split(":")[0] in ("course-v1", "ccx-v1")
            assert row["org"] == row["course_id"].split(":")[1].split("+")[0]
    enrollment = xapi_row(json.loads((XAPI_EXPECTED / "edx.course.enrollment.activated.json").read_text()))
    assert enrollment["course_id"] == "course-v1:edX+DemoX+Demo_Course" and enrollment["org"] == "edX"
    assert sum(1 for statement in every if xapi_row(statement)["response"] is not None) > 5
    # Every statement names its course, but the one whose object has no id.
    assert [s["id"] for s in every if xapi_row(s)["course_id"] is None] == [s["id"] for s in every if "id" not in s["object"]]
    question = next(s for s in every if _parent_type(s) == "GroupActivity")  # a question of a problem: the grouping's course
    assert xapi_row(question)["course_id"] == "course-v1:edX+DemoX+Demo_Course"


def _parent_type(statement: dict):
    parents = statement.get("context", {}).get("contextActivities", {}).get("parent") or [{}]
    return parents[0].get("objectType")


def test_xapi_course_from_the_parent_course_activity_and_actor_fallbacks():
    statement = {
        "actor": {"mbox_sha1sum": "abc"},
        "object": {"id": "http://lms/xblock/block-v1:X+Y+Z+type@problem+block@1"},
        "context": {"contextActivities": {"parent": [{"id": "http://lms/course/course-v1:Org1+N+R", "definition": {"type": "http://adlnet.gov/expapi/activities/course"}}]}},
        "result": {"response": ["a", "b"]},
        "timestamp": "not a time",
    }
    row = xapi_row(statement)
    assert row["course_id"] == "course-v1:Org1+N+R" and row["org"] == "Org1"
    assert row["actor_id"] == "abc" and row["response"] == '["a","b"]' and row["emission_time"] is None
    assert xapi_row({"actor": {"account": {"name": ""}, "mbox": "mailto:x"}})["actor_id"] == "mailto:x"
    assert xapi_row({"object": {"id": "http://lms/other"}})["course_id"] is None
    block = xapi_row({"object": {"id": "http://lms/xblock/block-v1:O+N+R+type@video+block@v"}})
    assert block["course_id"] == "course-v1:O+N+R" and block["org"] == "O"


@pytest.mark.corpus
def test_xapi_statements_convert_to_parquet_that_duckdb_reads(tmp_path):
    every = statements()
    source = tmp_path / "statements.gz"
    source.write_bytes(gzip.compress(b"".join(orjson.dumps(s) + b"\n" for s in every), mtime=0))
    target = tmp_path / "statements.parquet"
    sha256, size, rows = convert(source, target, "xapi")
    assert rows == len(every) and size == target.stat().st_size and len(sha256) == 64
    con = duckdb.connect()
    types = {name: kind for name, kind, *_ in con.execute("describe select * from read_parquet(?)", [str(target)]).fetchall()}
    assert list(types) == [column.name for column in XAPI_COLUMNS]
    assert types["emission_time"] == "TIMESTAMP WITH TIME ZONE" and types["statement"] == "VARCHAR"
    verbs = dict(con.execute("select verb_id, count(*) from read_parquet(?) group by 1", [str(target)]).fetchall())
    assert verbs == dict(Counter(s["verb"]["id"] for s in every))


# ------------------------------------------------------------------------------ verify


def findings(report) -> set[tuple]:
    """Each finding by input, line, kind and class (the data file's name without its ending)."""
    return {(f.file.rsplit(".", 1)[0], f.line, f.kind, f.leak_class) for f in report.findings}


def test_verify_reads_the_rows_and_finds_a_planted_identifier(made, tmp_path):
    out = tmp_path / "package"
    shutil.copytree(made / "input", out)
    private, public = write_signing_key_pair(tmp_path / "signer")[:2]
    sign_manifest(out, load_private_key(private))
    public_key = load_public_key(public)
    logs = fixture_logs()
    # Without a learned roster, a few usernames stay in free text: the rows of the Parquet files
    # give exactly the findings of the JSON lines, at the same lines.
    report = verify_package(out, against=logs, public_key=public_key)
    assert report.integrity == [] and report.signature.startswith("valid")
    assert report.scanned["lines"] >= manifest_of(out)["counts"]["written"] > 0
    as_json_lines = verify_package(made / "jsonl", against=logs)
    assert findings(report) == findings(as_json_lines) and len(findings(report)) > 3
    raw = raw_username(logs)
    target = max(out.glob("*.parquet"), key=lambda p: pq.ParquetFile(p).metadata.num_rows)
    table = pq.read_table(target)
    # Planted in the JSON text of the payload of the last row, in the last row group.
    events = table.column("event").to_pylist()
    events[-1] = json.dumps({"note": f"written by {raw} today"})
    table = table.set_column(table.schema.get_field_index("event"), "event", pa.array(events, pa.string()))
    pq.write_table(table, target, compression="zstd", row_group_size=3)
    planted = (target.name.rsplit(".", 1)[0], table.num_rows, "username", "free_text")
    assert planted not in findings(report)
    again = verify_package(out, against=logs, public_key=public_key)
    assert not again.ok and findings(again) == findings(report) | {planted}
    assert any("sha256" in p.problem for p in again.integrity if p.file == target.name)


def raw_username(logs: list[Path]) -> str:
    for path in logs:
        for line in path.read_bytes().splitlines():
            try:
                name = json.loads(line).get("username")
            except (ValueError, AttributeError):
                continue
            if isinstance(name, str) and len(name) >= 6:
                return name
    raise AssertionError("no username in the logs")


def test_verify_reports_a_parquet_file_it_cannot_read(made, tmp_path, monkeypatch):
    out = tmp_path / "package"
    shutil.copytree(made / "course-day", out)
    first = out / manifest_of(out)["files"][0]["path"]
    first.write_bytes(b"PAR1 not really")
    report = verify_package(out)
    assert not report.ok
    relative = first.relative_to(out).as_posix()
    assert any(p.file == relative and "not a readable Parquet file" in p.problem for p in report.integrity)
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if pyarrow were not installed
    report = verify_package(out)
    assert any("pyarrow" in p.problem and "[parquet]" in p.problem for p in report.integrity)
    assert not report.ok


def test_read_as_lines_gives_every_column_and_the_file_metadata(made):
    path = max((made / "input").glob("*.parquet"), key=lambda p: pq.ParquetFile(p).metadata.num_rows)
    lines = b"".join(read_as_lines(path)).splitlines()
    rows = [orjson.loads(line) for line in lines[:-1]]
    assert len(rows) == pq.ParquetFile(path).metadata.num_rows > 0
    assert all(isinstance(row["context"], dict) for row in rows)  # JSON columns decoded into fields
    assert orjson.loads(lines[-1])["parquet_metadata"]["anonymizer.schema"] == "tracking-log/1"


# ------------------------------------------------------------------------------ resumption and refusals


def test_an_interrupted_parquet_run_resumes_to_the_same_package(made, tmp_path, research, key, monkeypatch):
    small_pieces(monkeypatch)
    out = tmp_path / "package"
    with monkeypatch.context() as patch:
        interrupt_after(patch, 5)
        with pytest.raises(KeyboardInterrupt):
            run(fixture_logs(), out, research, key, jobs=1, learn=False, output_format="parquet")
    assert not (out / MANIFEST_NAME).exists() and len(list(out.rglob("*.parquet"))) == 5
    with pytest.raises(UsageError, match=r"another output format \(--format parquet\).*--force"):
        run(fixture_logs(), out, research, key, jobs=1, learn=False)
    result = run(fixture_logs(), out, research, key, jobs=1, learn=False, output_format="parquet")
    assert result.resumed == 5
    assert package_files(out) == package_files(made / "input")


def test_an_interrupted_course_day_parquet_run_needs_force(made, tmp_path, research, key, monkeypatch):
    small_pieces(monkeypatch)
    out = tmp_path / "package"

    def stop(name, stats):
        raise KeyboardInterrupt

    options = {"jobs": 1, "learn": False, "layout": "course-day", "output_format": "parquet"}
    with pytest.raises(KeyboardInterrupt):
        run(fixture_logs(), out, research, key, on_file_done=stop, **options)
    with pytest.raises(UsageError, match="cannot be resumed.*--force"):
        run(fixture_logs(), out, research, key, **options)
    run(fixture_logs(), out, research, key, force=True, **options)
    assert package_files(out) == package_files(made / "course-day")


def test_without_pyarrow_parquet_is_refused_with_how_to_install(tmp_path, research, key, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(UsageError, match=r"pyarrow.*pip install 'edx-log-anonymizer\[parquet\]'"):
        run(fixture_logs()[:1], tmp_path / "p", research, key, jobs=1, output_format="parquet")
    assert not (tmp_path / "p").exists()  # refused before any work
    with pytest.raises(UsageError, match="--format: expected one of jsonl, parquet"):
        run(fixture_logs()[:1], tmp_path / "p", research, key, jobs=1, output_format="csv")


def test_the_command_line_writes_parquet_and_spark_run_refuses_it(tmp_path, key_file):
    from typer.testing import CliRunner

    from anonymizer.cli import app

    log = fixture_logs()[0]
    runner = CliRunner()
    result = runner.invoke(app, ["run", str(log), "--out", str(tmp_path / "p"), "--key-file", str(key_file), "--format", "parquet", "-q", "-j", "1"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "p" / (log.name + ".parquet")).is_file()
    refused = runner.invoke(app, ["spark-run", str(log), "--out", str(tmp_path / "s"), "--key-file", str(key_file), "--format", "parquet"])
    assert isinstance(refused.exception, UsageError) and "--format jsonl" in str(refused.exception)
    assert not (tmp_path / "s").exists()
