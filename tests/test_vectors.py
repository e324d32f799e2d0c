"""Known-answer vectors: every pseudonym, mask, agent, URL and text result pinned to its value.

The vectors live in ``tests/vectors/*.json`` (the format is in ``tests/vectors/harness.py`` and the
README's "Pseudonyms, exactly"), so that any engine can run them. A failure here means the
derivation changed: packages made before and after would no longer join. That is a breaking
change: raise ``PSEUDONYM_VERSION``, regenerate the file, say so in the CHANGELOG.
"""

from __future__ import annotations

import importlib.util
import json

import pytest

from anonymizer import run
from anonymizer.core.keys import Key
from anonymizer.package.manifest import read_manifest
from anonymizer.core.policy import load_policy
from anonymizer.core.pseudonyms import PSEUDONYM_VERSION
from vectors.harness import FILES, HERE, Runner, load

VECTORS = [(name, vector) for name in FILES for vector in load(name)["vectors"]]


@pytest.fixture(scope="module")
def runners(tmp_path_factory):
    return {name: Runner(load(name), tmp_path_factory.mktemp(name)) for name in FILES}


@pytest.mark.parametrize(("file", "vector"), VECTORS, ids=[f"{file}: {vector['name']}" for file, vector in VECTORS])
def test_vector(runners, file, vector):
    got = runners[file].result(vector)
    if vector.get("dropped"):
        assert got == {"dropped": True}
    else:
        assert got == {"expected": vector["expected"]}
        # JSON types are part of the answer: 42 and "42" are different outputs.
        assert type(got["expected"]) is type(vector["expected"])


@pytest.mark.parametrize("file", FILES)
def test_every_vector_file_is_of_the_current_pseudonym_version(file):
    data = load(file)
    assert data["file"] == file
    assert data["pseudonym_version"] == PSEUDONYM_VERSION, "PSEUDONYM_VERSION changed: regenerate the vectors (tests/vectors/generate.py)"
    assert data["vectors"], "a vector file with no vectors pins nothing"
    names = [vector["name"] for vector in data["vectors"]]
    assert len(names) == len(set(names))
    for vector in data["vectors"]:
        assert ("expected" in vector) != bool(vector.get("dropped")), vector["name"]


def _generator():
    spec = importlib.util.spec_from_file_location("vectors_generate", HERE / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("file", FILES)
def test_the_files_hold_exactly_the_cases_the_generator_defines(file):
    """A vector removed or edited by hand in the JSON is noticed."""
    cases = _generator().CASES[file]()
    stored = [{k: v for k, v in vector.items() if k not in ("expected", "dropped")} for vector in load(file)["vectors"]]
    assert stored == json.loads(json.dumps(cases))


def test_the_vectors_cover_every_identity_of_the_shipped_policies():
    identities = {name for policy in ("research", "strict") for name in load_policy(policy).identities}
    rules = [vector.get("rule") for vector in load("pseudonyms")["vectors"]]
    covered = {rule["identity"] for rule in rules if isinstance(rule, dict) and rule.get("op") == "pseudonymize"}
    assert identities <= covered
    namespaces = {vector["hmac"]["namespace"] for vector in load("pseudonyms")["vectors"] if "hmac" in vector}
    assert identities | {"roster"} <= namespaces


def test_the_generator_refuses_to_change_a_vector_without_a_new_version(tmp_path, monkeypatch):
    generator = _generator()
    monkeypatch.setattr(generator, "HERE", tmp_path)
    stored = load("mask_ip")
    stored["vectors"][0]["expected"] = "198.51.100.0"
    (tmp_path / "mask_ip.json").write_text(json.dumps(stored), encoding="utf-8")
    with pytest.raises(SystemExit, match="breaking change"):
        generator.generate("mask_ip")
    stored["pseudonym_version"] = PSEUDONYM_VERSION - 1  # as if the constant had just been raised
    (tmp_path / "mask_ip.json").write_text(json.dumps(stored), encoding="utf-8")
    assert generator.generate("mask_ip")["vectors"] == load("mask_ip")["vectors"]


def test_the_manifest_records_the_pseudonym_version(tmp_path, research):
    log = tmp_path / "in.log"
    log.write_text('{"event_type": "page_close", "username": "zelda-q", "event": "{}", "event_source": "browser"}\n')
    run([log], tmp_path / "package", research, Key(bytes(range(32))))
    assert read_manifest(tmp_path / "package")["pseudonym_version"] == PSEUDONYM_VERSION

