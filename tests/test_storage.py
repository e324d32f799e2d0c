"""URIs for spark-run (``anonymizer.io.storage``): listed as local directories are, and a missing
library named before any work."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from anonymizer import load_policy
from anonymizer.core.errors import UsageError
from anonymizer.io import storage
from anonymizer.io.inputs import collect_inputs, collect_locations


def _tree(root: Path) -> None:
    for name in ("a/b.log", "a.b.log", "a/c/d.log.gz", ".hidden/x.log", "a/.h.log", "pkg/manifest.json", "pkg/x.log.gz", "z.log"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"{}\n")


def test_a_uri_prefix_is_walked_as_the_local_directory_is(tmp_path):
    _tree(tmp_path)
    local = [name for _, name in collect_inputs([tmp_path])]
    found = collect_locations([f"file://{tmp_path}"])
    assert [name for _, name in found] == local
    assert local == ["a/b.log", "a/c/d.log.gz", "a.b.log", "z.log"]  # part by part: a/ before a.b.log
    assert all(storage.is_uri(location) and location.endswith(name) for location, name in found)


def test_a_uri_that_is_a_package_or_missing_is_refused(tmp_path):
    _tree(tmp_path)
    with pytest.raises(UsageError, match="anonymized package"):
        collect_locations([f"file://{tmp_path}/pkg"])
    with pytest.raises(UsageError, match="no such file"):
        collect_locations([f"file://{tmp_path}/nothing"])
    with pytest.raises(UsageError, match="both be written"):
        collect_locations([f"file://{tmp_path}/z.log", tmp_path / "z.log"])


def test_a_missing_library_is_named_before_any_work(tmp_path, key, monkeypatch):
    from anonymizer.io.spark import spark_run  # noqa: PLC0415  (pyspark is imported only by a session)

    monkeypatch.setitem(sys.modules, "gcsfs", None)  # as if not installed: importing it fails

    class NoSpark:
        def __getattr__(self, name):
            raise AssertionError("the Spark session was used before the check")

    out = tmp_path / "out"
    with pytest.raises(UsageError) as caught:
        spark_run(NoSpark(), ["gs://bucket/logs/"], out, load_policy("research"), key)
    assert "gs://bucket/logs/" in str(caught.value) and "pip install gcsfs" in str(caught.value)
    assert not out.exists()
    with pytest.raises(UsageError, match="not a storage scheme"):
        storage.require(["nosuchscheme://bucket/x"])


def test_uris_and_paths_are_told_apart_and_joined():
    assert storage.is_uri("s3a://bucket/logs") and storage.is_uri("abfss://c@a.dfs.core.windows.net/x")
    assert not storage.is_uri("/data/logs") and not storage.is_uri(Path("s3a://bucket"))  # a Path is local
    assert storage.join("gs://bucket/out/", ".partial", "x.part") == "gs://bucket/out/.partial/x.part"
    assert storage.overlaps("file:///data/in/out", "file:///data/in") and not storage.overlaps("file:///data/input", "file:///data/in")
    assert not storage.overlaps("file:///data/in/out", "/data/in")  # a URI and a path are not compared


def test_the_command_line_takes_uris_and_names_a_missing_library_before_spark_starts(tmp_path, key_file):
    import importlib.util  # noqa: PLC0415
    import subprocess  # noqa: PLC0415

    if importlib.util.find_spec("gcsfs") is not None:
        pytest.skip("gcsfs is installed here, so gs:// is not a missing library")
    done = subprocess.run(
        [sys.executable, "-m", "anonymizer.cli", "spark-run", "gs://bucket/logs/", "--out", "gs://bucket/package", "--key-file", str(key_file)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "gs://bucket/logs/: gs:// needs the gcsfs package" in done.stderr  # the URI kept whole, the package named
    assert "pyspark" not in done.stderr.lower() and "java" not in done.stderr.lower()  # no Spark was started
