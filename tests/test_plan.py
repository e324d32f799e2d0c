"""The plan as data: it round-trips through JSON, an engine built from the JSON alone does what
the policy says, the built-in policies' plans are pinned, and the schema's rules hold."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from anonymizer import Anonymizer, Key, parse_policy
from anonymizer.cli import app
from anonymizer.core.compiler import build_policy
from anonymizer.core.errors import PolicyError
from anonymizer.core.lowering import lower
from anonymizer.core.plan import PLAN_VERSION, Container, Decode, Op, Payload, PlanError, Skip, digest, from_data, from_json, to_json
from anonymizer.core.policy import builtin_policies, load_policy
from anonymizer.core.pseudonyms import Pseudonymizer
from anonymizer.core.roster import load_roster
from vectors.harness import FILES, Runner, load

HERE = Path(__file__).parent
SNAPSHOTS = HERE / "plans"
FAMILIES = sorted((HERE / "fixtures" / "families").glob("*.jsonl"))
EXAMPLES = HERE.parent / "examples"
KEY = Key(b"p" * 32)

# A policy that uses every node type: decode (json and query), wildcards under exact keys,
# list items, conditions, a node's own rule with children, a skip, a payload rule, envelope-only
# and dropped rules, sources and globs.
EVERY_NODE = b"""
name: every-node
unknown_events: envelope
identities:
  session: {format: text, prefix: s_}
envelope:
  event_type: keep
  event_source: {op: keep, shape: word}
  username: {op: pseudonymize, identity: username}
  context.*: {op: keep, shape: any}
  context.user_id: {op: pseudonymize, identity: user_id}
  context.path: scrub_url
  context.ip: mask_ip
  agent: generalize_agent
  session: {op: pseudonymize, identity: session}
events:
  - match: [problem_check]
    source: [server]
    fields:
      answers: {op: keep, shape: any}
      answers.*: scrub_text
      state.student_answers.*: {op: redact}
      state.done: drop
      grade: {op: keep, when: {kind: [graded, 1, true]}}
      kind: keep
      parts[0]: keep
      parts[*].text: scrub_text
  - match: [problem_check, "problem_*"]
    payload: {decode: query, fields: {"*": scrub_text, student: {op: pseudonymize, identity: username}}}
  - match: "edx.forum.*"
    fields:
      body: {decode: json, fields: {text: scrub_text, author: {op: pseudonymize, identity: username}}}
      meta: {op: drop}
      meta.title: keep
  - match: /courses/*
    action: envelope
  - match: [edx.secret.*]
    action: drop
"""


def _every_node():
    return parse_policy(EVERY_NODE, "every-node.yaml")


def _policies():
    return [load_policy(name) for name in builtin_policies()] + [_every_node()]


@pytest.mark.parametrize("policy", _policies(), ids=lambda p: p.name)
def test_a_plan_round_trips_through_json(policy):
    plan = lower(policy)
    text = to_json(plan)
    again = from_json(text)
    assert again == plan
    assert to_json(again) == text
    assert json.loads(text)["version"] == PLAN_VERSION


def test_the_every_node_policy_uses_every_node_type():
    plan = lower(_every_node())
    kinds: set[str] = set()

    def walk(node):
        if node is None:
            return
        kinds.add(node.node)
        if isinstance(node, Container):
            for key in node.keys:
                walk(key.rule)
            for item in node.items:
                walk(item.rule)
            walk(node.any)
            walk(node.own)
        elif isinstance(node, (Decode, Payload)):
            walk(node.value)

    for envelope in plan.envelopes:
        walk(envelope)
    for rule in plan.rules:
        walk(rule.payload)
    assert kinds == {"container", "op", "skip", "decode", "payload", "empty_payload"}
    assert [rule.action for rule in plan.rules] == ["anonymize", "anonymize", "anonymize", "envelope", "drop"]
    assert plan.unknown_events == "envelope"


def _lines() -> list[bytes]:
    lines = [line for path in FAMILIES for line in path.read_bytes().splitlines()]
    lines += (EXAMPLES / "tracking.log").read_bytes().splitlines()
    assert len(lines) > 200, "the fixture families are the differential's input"
    return lines


def _statement_lines() -> list[bytes]:
    """xAPI statements of every verb the xapi-research policy rules, for the policies of that format."""
    from test_xapi import statement

    verbs = [pattern for rule in load_policy("xapi-research").events for pattern in rule.match]
    return [orjson.dumps(statement(verb=verb, timestamp=f"2024-02-{day:02d}T10:00:00+00:00")) for verb in verbs for day in range(1, 6)]


@pytest.mark.parametrize("policy", _policies(), ids=lambda p: p.name)
def test_an_engine_built_from_the_plans_json_alone_writes_the_same_bytes(policy):
    roster, _ = load_roster([EXAMPLES / "roster.csv"])
    direct = Anonymizer(policy, KEY, roster)
    rebuilt = Anonymizer(policy, KEY, roster)
    # Replace the functions compiled from the policy with those built from the plan's JSON.
    rebuilt._compiled = build_policy(from_json(to_json(lower(policy))), Pseudonymizer(KEY), roster)
    lines = _statement_lines() if policy.events_format == "xapi" else _lines()
    for number, line in enumerate(lines, start=1):
        assert rebuilt.anonymize_line(line, "f", number) == direct.anonymize_line(line, "f", number), number
    assert rebuilt.stats.as_dict() == direct.stats.as_dict()
    assert direct.stats.written > 100


class _PlanRunner(Runner):
    """The vector runner, with each anonymizer's functions built from its plan's JSON."""

    def _anonymizer(self, vector):
        anonymizer = super()._anonymizer(vector)
        if not getattr(anonymizer, "_from_plan", False):
            plan = from_json(to_json(lower(anonymizer.policy)))
            anonymizer._compiled = build_policy(plan, Pseudonymizer(anonymizer.key), anonymizer.roster)
            anonymizer._from_plan = True
        return anonymizer


@pytest.mark.parametrize("file", FILES)
def test_the_vectors_hold_for_an_engine_built_from_a_round_tripped_plan(file, tmp_path):
    data = load(file)
    runner = _PlanRunner(data, tmp_path)
    for vector in data["vectors"]:
        if "rule" not in vector:
            continue
        expected = {"dropped": True} if vector.get("dropped") else {"expected": vector["expected"]}
        got = runner.result(vector)
        assert got == expected, vector["name"]
        if "expected" in got:
            assert type(got["expected"]) is type(vector["expected"]), vector["name"]


@pytest.mark.parametrize("name", builtin_policies())
def test_the_built_in_policies_plans_are_pinned(name):
    snapshot = SNAPSHOTS / f"{name}.json"
    assert snapshot.is_file(), f"no snapshot of the {name} plan: run tests/plans/update.py"
    assert to_json(lower(load_policy(name))) == snapshot.read_bytes(), (
        f"the plan of the {name} policy changed: if that is meant, run tests/plans/update.py and review the diff"
    )


def test_every_built_in_policy_has_a_snapshot_and_no_snapshot_is_stale():
    assert sorted(p.stem for p in SNAPSHOTS.glob("*.json")) == builtin_policies()


def test_an_engine_refuses_a_plan_of_another_version():
    data = orjson.loads(to_json(lower(load_policy("strict"))))
    data["version"] = PLAN_VERSION + 1
    with pytest.raises(PlanError, match="plan version"):
        from_data(data)


def test_an_unknown_node_type_is_refused():
    data = orjson.loads(to_json(lower(_every_node())))
    data["envelopes"][0]["keys"][0]["rule"] = {"node": "teleport"}
    with pytest.raises(PlanError, match="unknown node type 'teleport'"):
        from_data(data)


def test_the_digest_is_the_hash_of_the_json_and_follows_the_meaning():
    plan = lower(_every_node())
    assert digest(plan) == digest(from_json(to_json(plan)))
    changed = parse_policy(EVERY_NODE.replace(b"ip: mask_ip", b"ip: {op: mask_ip, ipv4_prefix: 16}"), "every-node.yaml")
    assert digest(lower(changed)) != digest(plan)
    # A comment changes the policy's bytes, not what it does.
    commented = parse_policy(b"# a comment\n" + EVERY_NODE, "every-node.yaml")
    assert digest(lower(commented)) == digest(plan)


def test_precedence_is_resolved_in_the_plan():
    plan = lower(_every_node())
    problem = plan.rules[0]
    payload = problem.payload.value
    keys = {key.key: key for key in payload.keys}
    # An exact key with children keeps its own rule and gains the wildcard's (answers.*).
    assert keys["answers"].rule.own.params["shape"] == ["any"]
    assert keys["answers"].rule.any.op == "scrub_text"
    assert keys["answers"].rule.any.apply == "leaves"
    assert isinstance(keys["state"].rule.keys[1].rule, Skip)
    assert keys["grade"].when == {"kind": ("graded", 1, True)}
    assert [item.index for item in payload.items] == [] and payload.any is None
    # parts[0] keeps its own rule and inherits what parts[*] says of its members (.text).
    first = keys["parts"].rule.items[0].rule
    assert first.own.op == "keep" and [key.key for key in first.keys] == ["text"]
    assert keys["parts"].rule.any.keys[0].key == "text" and keys["parts"].rule.any.own is None
    # context.*: keep whole, copied without a call; context.user_id, an exact key, is pseudonymized.
    envelope = plan.envelopes[problem.envelope]
    context = {key.key: key for key in envelope.keys}["context"].rule
    assert context.any.apply == "copy"
    assert {key.key: key.rule.op for key in context.keys} == {"user_id": "pseudonymize", "path": "scrub_url", "ip": "mask_ip"}
    assert context.path == "context"


def test_dispatch_ranks_exact_names_then_source_then_file_order():
    plan = lower(_every_node())
    ranked = [(m.pattern, m.glob, m.rule) for m in plan.dispatch]
    assert ranked == [
        ("problem_check", False, 0),  # a rule with a source before one without
        ("problem_check", False, 1),
        ("problem_*", True, 1),
        ("edx.forum.*", True, 2),
        ("/courses/*", True, 3),
        ("edx.secret.*", True, 4),
    ]


def test_identities_name_the_fields_that_carry_people():
    plan = lower(_every_node())
    found = {(i.scope, i.path, i.kind) for i in plan.identities}
    assert ("envelope", (("username",),), "username") in found
    assert ("envelope", (("context", "user_id"),), "user_id") in found
    assert ("envelope", (("session",),), "session") in found
    assert ("envelope", (("context", "ip"),), "ip") in found
    assert ("envelope", (("agent",),), "agent") in found
    assert ("payload", ((), ("student",)), "username") in found  # inside the decoded query payload
    assert ("payload", (("body",), ("author",)), "username") in found  # inside a JSON string
    masked = [i for i in plan.identities if i.kind == "ip"]
    assert masked[0].params == {"ipv4_prefix": 24, "ipv6_prefix": 48, "country": "off"}
    research = {(i.scope, i.path, i.kind) for i in lower(load_policy("research")).identities}
    assert ("envelope", (("context", "user_id"),), "user_id") in research


def test_lowering_reports_what_validation_cannot_see():
    bad = EVERY_NODE.replace(b"parts[0]: keep", b"parts[0]: {op: keep, when: {kind: [x]}}")
    with pytest.raises(PolicyError, match=r"every-node.yaml: events\[0\]: field 'event.parts\[\*\]': 'when' applies to named fields"):
        lower(parse_policy(bad, "every-node.yaml"))


def test_the_policy_plan_command_prints_the_plan_and_its_digest():
    runner = CliRunner()
    result = runner.invoke(app, ["policy", "plan", "--policy", "strict"])
    assert result.exit_code == 0, result.output
    assert from_json(result.stdout_bytes) == lower(load_policy("strict"))
    result = runner.invoke(app, ["policy", "plan", "--policy", "strict", "--digest"])
    assert result.exit_code == 0
    assert result.output.strip() == digest(lower(load_policy("strict")))


def test_ops_carry_validated_parameters_with_defaults():
    plan = lower(_every_node())
    ops: list[Op] = []

    def walk(node):
        if isinstance(node, Op):
            ops.append(node)
        elif isinstance(node, Container):
            for child in [k.rule for k in node.keys] + [i.rule for i in node.items] + [node.any, node.own]:
                walk(child)
        elif isinstance(node, (Decode, Payload)):
            walk(node.value)

    for envelope in plan.envelopes:
        walk(envelope)
    by_name = {op.op: op for op in ops}
    assert by_name["scrub_url"].params == {"user_markers": None, "secret_markers": None, "safe_words": [], "routes": [], "event_names": False}
    assert by_name["scrub_url"].data == ("url_routes",)
    assert set(by_name["scrub_url"].data) <= set(plan.data)
    assert by_name["pseudonymize"].memo is True and by_name["keep"].apply in ("value", "copy")
    assert plan.namespaces["session"].prefix == "s_" and plan.namespaces["username"].fold is True
