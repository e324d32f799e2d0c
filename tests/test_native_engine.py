"""Choosing the engine: ``--engine``, ``make_anonymizer``, and the manifest's record of it."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from anonymizer.core import native
from anonymizer.core.engine import Anonymizer
from anonymizer.core.errors import UsageError
from anonymizer.core.keys import Key
from anonymizer.core.policy import load_policy
from anonymizer.io.runner import run

ROOT = Path(__file__).resolve().parent.parent
KEY = Key(bytes(range(32)))


def test_python_engine_is_the_reference_class():
    made = native.make_anonymizer(load_policy("research"), KEY, engine="python")
    assert type(made) is Anonymizer
    assert native.engine_name(made) == "python"


def test_auto_is_native_exactly_when_the_extension_imports():
    made = native.make_anonymizer(load_policy("research"), KEY)
    assert native.engine_name(made) == ("native" if native.available() else "python")


def test_native_without_the_extension_is_a_usage_error(monkeypatch):
    monkeypatch.setattr(native, "_ext", None)
    with pytest.raises(UsageError, match="--engine python"):
        native.make_anonymizer(load_policy("research"), KEY, engine="native")
    assert type(native.make_anonymizer(load_policy("research"), KEY)) is Anonymizer  # auto falls back


def test_an_unknown_engine_is_refused():
    with pytest.raises(UsageError, match="auto, native, python"):
        native.make_anonymizer(load_policy("research"), KEY, engine="fast")


@pytest.mark.parametrize("engine", ["python", "native"])
def test_the_manifest_records_the_engine(tmp_path, engine):
    if engine == "native" and not native.available():
        pytest.skip("the native engine is not built (`make venv` builds it when cargo is on PATH)")
    result = run([ROOT / "examples" / "tracking.log"], tmp_path / "package", load_policy("research"), KEY, jobs=1, engine=engine)
    assert orjson.loads((tmp_path / "package" / "manifest.json").read_bytes())["engine"] == engine
    assert result.stats.accounted()


def test_both_engines_write_the_same_package(tmp_path):
    if not native.available():
        pytest.skip("the native engine is not built (`make venv` builds it when cargo is on PATH)")
    outputs = {}
    for engine in ("python", "native"):
        run([ROOT / "examples" / "tracking.log"], tmp_path / engine, load_policy("research"), KEY, jobs=2, engine=engine)
        outputs[engine] = (tmp_path / engine / "tracking.log.gz").read_bytes()
    assert outputs["python"] == outputs["native"]
