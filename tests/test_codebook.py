"""The codebook every package carries: checked against the policy it describes, covered by the
manifest and the signature, and free of values from the logs."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import orjson
import pytest

from anonymizer.core.lowering import lower
from anonymizer.core.plan import Cases, Container, Decode, Op, Payload
from anonymizer.core.policy import load_policy, parse_policy
from anonymizer.core.text.detectors import PLACEHOLDERS
from anonymizer.io.runner import run
from anonymizer.package.codebook import CODEBOOK_JSON, CODEBOOK_README, SHAPE_WORDS, build_codebook, codebook, describe_op
from anonymizer.package.manifest import MANIFEST_NAME
from anonymizer.package.signing import Ed25519PrivateKey, sign_manifest
from anonymizer.verify import verify_package

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "tracking.log"


@pytest.fixture(scope="module")
def package(tmp_path_factory, key):
    out = tmp_path_factory.mktemp("codebook") / "package"
    run([EXAMPLE], out, load_policy("research"), key, jobs=1)
    return out


def _ops(node, path: str = ""):
    """(path, Op) of every operator in a plan node, walked independently of the codebook."""
    if node is None:
        return
    if isinstance(node, Op):
        yield path, node
    elif isinstance(node, Decode):
        yield from _ops(node.value, path)
    elif isinstance(node, Payload):
        yield from _ops(node.value, path)
    elif isinstance(node, Cases):
        for case in node.cases:
            yield from _ops(case.rule, path)
    elif isinstance(node, Container):
        join = lambda token: f"{path}{token}" if token.startswith("[") else (f"{path}.{token}" if path else token)  # noqa: E731
        yield from _ops(node.own, path)
        for key in node.keys:
            yield from _ops(key.rule, join(key.key))
        for item in node.items:
            yield from _ops(item.rule, join(f"[{item.index}]"))
        yield from _ops(node.any, join("*"))


def _names_its_parameters(op: Op, plan, description: str) -> list[str]:
    """What DESCRIPTION should say of OP's parameters and does not."""
    params, missing = op.params, []
    need: list[str] = []
    if op.op == "mask_ip":
        need = [f"/{params['ipv4_prefix']}", f"/{params['ipv6_prefix']}"]
    elif op.op == "pseudonymize":
        namespace = plan.namespaces[params["identity"]]
        need = [f"`{namespace.prefix}` + 20 hex digits"] if namespace.format == "text" else ["integer"]
    elif op.op == "keep" and "any" not in params["shape"]:
        need = [SHAPE_WORDS[shape] for shape in params["shape"]]
    elif op.op == "truncate_time":
        need = [f"to the {params['unit']}"]
    elif op.op == "scrub_text":
        need = [PLACEHOLDERS[kind] for kind in params["detectors"]]
        missing += [f"{p} (not a detector of this rule)" for kind, p in PLACEHOLDERS.items() if kind not in params["detectors"] and p in description]
    elif op.op == "generalize_agent":
        need = ["major version" if params["browser_version"] else "no version"]
    return missing + [word for word in need if word not in description]


@pytest.mark.parametrize("policy_name", ["research", "strict"])
def test_the_codebook_describes_every_field_of_every_event_type_present_with_its_parameters(package, policy_name):
    policy = load_policy(policy_name)
    plan = lower(policy)
    manifest = json.loads((package / MANIFEST_NAME).read_text())
    book = build_codebook(plan, manifest)
    present = [t for t in book["event_types"] if t["written"]]
    assert len(present) > 20
    envelopes = {int(index): {(e["path"], e["op"]): e for e in entries} for index, entries in book["envelopes"].items()}
    problems = []
    for entry in present:
        rule = plan.rules[entry["rule"]]
        described = envelopes[rule.envelope]
        for path, op in _ops(plan.envelopes[rule.envelope]):
            found = described.get((path, op.op))
            if found is None:
                problems.append(f"{entry['name']}: envelope {path} ({op.op}) not described")
            elif op.op != "drop":
                problems += [f"{path}: {word}" for word in _names_its_parameters(op, plan, found["description"])]
        payload = {(e["path"], e.get("op")): e for e in entry["payload"]}
        cases = {e["path"]: e for e in entry["payload"] if e["op"] == "cases"}
        for path, op in _ops(rule.payload, "event"):
            found = payload.get((path, op.op))
            if found is None and path in cases:
                continue  # an operator of one case: the field's entry names each case
            if found is None:
                problems.append(f"{entry['name']}: {path} ({op.op}) not described")
            elif op.op != "drop":
                problems += [f"{entry['name']}: {path}: {word}" for word in _names_its_parameters(op, plan, found["description"])]
    assert problems == []


def test_descriptions_come_from_the_parameters_not_from_the_policy_name(tmp_path):
    policy = parse_policy(
        b"""
name: custom
identities:
  username: {format: text, prefix: "learner-"}
envelope:
  username: {op: pseudonymize, identity: username}
  ip: {op: mask_ip, ipv4_prefix: 16, ipv6_prefix: 32}
  agent: {op: generalize_agent, browser_version: false, min_group_size: 7}
  time: {op: truncate_time, unit: day}
  label: {op: scrub_text, detectors: [email]}
  host: {op: keep, shape: [number, uuid]}
""",
        "custom.yaml",
    )
    plan = lower(policy)
    described = {e["path"]: e["description"] for e in build_codebook(plan, {"counts": {"event_types": {}}})["envelopes"].get("0", [])}
    assert described == {}  # no event type present: no field described
    fields = {key.key: key.rule for key in plan.envelopes[0].keys}
    text = {name: describe_op(rule, plan) for name, rule in fields.items()}
    assert "`learner-` + 20 hex digits" in text["username"]
    assert "/16" in text["ip"] and "/32" in text["ip"] and "/24" not in text["ip"]
    assert "no version" in text["agent"] and "fewer than 7 learners" in text["agent"] and "[RARE]" in text["agent"]
    assert "truncated to the day" in text["time"]
    assert "[EMAIL]" in text["label"] and "[PHONE]" not in text["label"] and "[URL]" not in text["label"]
    assert "a number or a UUID" in text["host"]


def test_the_package_lists_the_codebook_and_verify_accepts_it(package):
    manifest = json.loads((package / MANIFEST_NAME).read_text())
    listed = {entry["path"] for entry in manifest["documents"]}
    assert listed == {CODEBOOK_README, CODEBOOK_JSON}
    assert (package / CODEBOOK_README).read_text().startswith("# Research data package")
    book = json.loads((package / CODEBOOK_JSON).read_text())
    assert sum(t["written"] for t in book["event_types"]) == manifest["counts"]["written"] == book["counts"]["written"]
    report = verify_package(package, against=[EXAMPLE])
    assert report.ok, report.describe()


def test_verify_detects_a_changed_or_unlisted_codebook(package, tmp_path):
    changed = tmp_path / "changed"
    shutil.copytree(package, changed)
    readme = changed / CODEBOOK_README
    readme.write_text(readme.read_text().replace("pseudonym", "plain value", 1))
    problems = [(p.file, p.problem) for p in verify_package(changed).integrity]
    assert (CODEBOOK_README, "has a sha256 other than the manifest lists") in problems

    unlisted = tmp_path / "unlisted"
    shutil.copytree(package, unlisted)
    manifest = json.loads((unlisted / MANIFEST_NAME).read_text())
    manifest["documents"] = [e for e in manifest["documents"] if e["path"] != CODEBOOK_JSON]
    (unlisted / MANIFEST_NAME).write_text(json.dumps(manifest))
    problems = [(p.file, p.problem) for p in verify_package(unlisted).integrity]
    assert (CODEBOOK_JSON, "is not listed in the manifest") in problems


def test_the_signature_covers_the_codebook(package, tmp_path):

    signed = tmp_path / "signed"
    shutil.copytree(package, signed)
    private = Ed25519PrivateKey.generate()
    sign_manifest(signed, private)
    assert verify_package(signed, public_key=private.public_key()).ok
    # A codebook swapped together with its manifest entry breaks the signature.
    text = b"# Research data package\n\nnothing was pseudonymized\n"
    (signed / CODEBOOK_README).write_bytes(text)
    manifest = json.loads((signed / MANIFEST_NAME).read_text())
    for entry in manifest["documents"]:
        if entry["path"] == CODEBOOK_README:
            entry.update(sha256=hashlib.sha256(text).hexdigest(), bytes=len(text))
    (signed / MANIFEST_NAME).write_text(json.dumps(manifest))
    report = verify_package(signed, public_key=private.public_key())
    assert not report.ok
    assert any(problem.file == "manifest.sig" for problem in report.integrity)


def _raw_values(path: Path) -> set[str]:
    """Every string of the raw log that is not a course key, an event type or a plain word."""
    values: set[str] = set()

    def walk(value):
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str) and len(value) >= 6:
            values.add(value)

    for line in path.read_bytes().splitlines():
        try:
            walk(orjson.loads(line))
        except orjson.JSONDecodeError:
            continue
    return values


def test_the_codebook_holds_no_value_of_the_logs_but_course_keys_and_event_types(package):
    manifest = json.loads((package / MANIFEST_NAME).read_text())
    allowed = set(manifest["counts"]["event_types"]) | {c for f in manifest["files"] if isinstance(c := f.get("course"), str)}
    text = (package / CODEBOOK_README).read_text() + (package / CODEBOOK_JSON).read_text()
    policy_text = (Path(__file__).resolve().parents[1] / "policies" / "research.yaml").read_text()  # the policy's own words
    leaked = sorted(v for v in _raw_values(EXAMPLE) - allowed if v in text and v not in policy_text and not re.fullmatch(r"[a-z_.]+", v))
    assert leaked == []
    assert re.search(r"u_[0-9a-f]{20}", text) is None  # no pseudonym either


def test_the_codebook_reads_day_ranges_and_courses_when_the_manifest_has_them():
    plan = lower(load_policy("research"))
    manifest = {
        "policy": {"sha256": "0" * 64},
        "counts": {"read": 3, "written": 3, "event_types": {"play_video": {"written": 3, "first_day": "2024-03-01", "last_day": "2024-03-04"}}},
        "files": [
            {"path": "a.gz", "events": 2, "course": "course-v1:Org+Num+Run", "day": "2024-03-01"},
            {"path": "b.gz", "events": 1, "course": "course-v1:Org+Num+Run", "day": "2024-03-04"},
        ],
    }
    data, text = codebook(plan, manifest)
    (entry,) = data["event_types"]
    assert (entry["first_day"], entry["last_day"]) == ("2024-03-01", "2024-03-04")
    assert data["courses"] == [{"course": "course-v1:Org+Num+Run", "events": 3}]
    assert data["days"] == {"first": "2024-03-01", "last": "2024-03-04", "count": 2}
    assert "| `play_video` | 3 | 0 | 2024-03-01 | 2024-03-04 |" in text and "`course-v1:Org+Num+Run`: 3 events" in text
    data, _ = codebook(plan, {**manifest, "counts": {"event_types": {"play_video": {"written": 3}}}, "files": []})
    assert "first_day" not in data["event_types"][0] and "courses" not in data and "days" not in data


def test_the_codebook_is_the_same_whatever_the_number_of_workers(tmp_path, key):
    policy = load_policy("research")
    one = run([EXAMPLE], tmp_path / "one", policy, key, jobs=1)
    two = run([EXAMPLE], tmp_path / "two", policy, key, jobs=2)
    assert one.manifest["documents"] == two.manifest["documents"]


def test_a_per_course_package_says_its_pseudonyms_hold_within_one_course():
    plan = lower(load_policy("research"))
    manifest = {"counts": {"read": 1, "written": 1, "event_types": {"problem_check": {"written": 1}}}, "files": [], "pseudonyms": "per-course"}
    book = build_codebook(plan, manifest)
    text = json.dumps(book)
    assert book["pseudonyms"] == "per-course"
    assert "within one course of this package" in text
    assert "in every field and every file of this package" not in text
    global_text = json.dumps(build_codebook(plan, {**manifest, "pseudonyms": "global"}))
    assert "in every field and every file of this package" in global_text  # the global wording it replaces
