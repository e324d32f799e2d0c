"""Manifest signatures: `keygen --signing`, `run --sign-key`, and `verify --public-key`."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from anonymizer import KeyFileError, UsageError, run
from anonymizer.package.signing import INVALID, MISSING, SIGNATURE_NAME, VALID, load_private_key, load_public_key, sign_manifest, verify_signature, write_signing_key_pair
from anonymizer.verify import verify_package

CLI = [sys.executable, "-m", "anonymizer.cli"]
EVENT = {"username": "sigrid_88", "event_type": "page_close", "event": "", "time": "2024-03-01T10:00:00+00:00"}


@pytest.fixture()
def pair(tmp_path) -> tuple[Path, Path]:
    private, public, _ = write_signing_key_pair(tmp_path / "release")
    return private, public


@pytest.fixture()
def signed(tmp_path, pair, research, key) -> Path:
    log = tmp_path / "tracking.log"
    log.write_bytes(orjson.dumps(EVENT) + b"\n")
    out = tmp_path / "package"
    run([log], out, research, key, sign_key=load_private_key(pair[0]))
    return out


def test_keygen_writes_a_private_key_readable_by_its_owner_only_and_a_public_key(tmp_path):
    private, public, key_id = write_signing_key_pair(tmp_path / "release")
    assert (private.name, public.name) == ("release.key", "release.pub")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in private.read_bytes() and b"PUBLIC KEY" in public.read_bytes()
    assert key_id.startswith("s1-")


def test_keygen_never_overwrites_a_key(tmp_path, pair):
    before = pair[0].read_bytes()
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        write_signing_key_pair(tmp_path / "release")
    assert pair[0].read_bytes() == before


def test_run_with_a_signing_key_writes_a_valid_signature(signed, pair):
    assert (signed / SIGNATURE_NAME).exists()
    assert verify_signature(signed, load_public_key(pair[1])) == VALID


def test_the_signature_is_one_line_of_base64_of_64_bytes(signed):
    text = (signed / SIGNATURE_NAME).read_text()
    assert text.endswith("\n") and text.count("\n") == 1
    assert len(base64.b64decode(text.strip(), validate=True)) == 64


def test_a_changed_manifest_breaks_the_signature(signed, pair):
    manifest = signed / "manifest.json"
    manifest.write_bytes(manifest.read_bytes().replace(b'"research"', b'"Research"', 1))
    assert verify_signature(signed, load_public_key(pair[1])) == INVALID


def test_a_corrupted_signature_is_rejected(signed, pair):
    signature = base64.b64decode((signed / SIGNATURE_NAME).read_text())
    (signed / SIGNATURE_NAME).write_text(base64.b64encode(bytes([signature[0] ^ 1]) + signature[1:]).decode() + "\n")
    report = verify_package(signed, public_key=load_public_key(pair[1]))
    assert report.signature == INVALID
    assert [p.file for p in report.integrity] == [SIGNATURE_NAME]


def test_another_key_pair_does_not_verify_the_signature(signed, tmp_path):
    _, other_public, _ = write_signing_key_pair(tmp_path / "other")
    assert verify_signature(signed, load_public_key(other_public)) == INVALID


def test_an_unsigned_package_fails_when_a_public_key_is_given(signed, pair):
    (signed / SIGNATURE_NAME).unlink()
    report = verify_package(signed, public_key=load_public_key(pair[1]), require_signature=True)
    assert report.signature == MISSING
    assert not report.ok


def test_require_signature_without_a_public_key_is_a_usage_error(signed):
    with pytest.raises(UsageError, match="--public-key"):
        verify_package(signed, require_signature=True)


def test_a_signed_package_verifies_and_reports_a_valid_signature(signed, pair):
    report = verify_package(signed, public_key=load_public_key(pair[1]))
    assert report.ok and report.signature == VALID


def test_signing_again_replaces_the_signature_atomically(signed, pair):
    sign_manifest(signed, load_private_key(pair[0]))
    assert sorted(p.name for p in signed.iterdir()) == sorted(["README.md", "codebook.json", "manifest.json", SIGNATURE_NAME, "tracking.log.gz"])


def test_a_public_key_given_as_the_private_key_file_is_refused_with_a_hint(pair):
    with pytest.raises(KeyFileError, match="pass PREFIX.pub"):
        load_public_key(pair[0])


def test_a_file_that_is_not_a_key_is_refused_without_quoting_it(tmp_path):
    bogus = tmp_path / "bogus.key"
    bogus.write_text("sigrid_88 secret words\n")
    with pytest.raises(KeyFileError) as caught:
        load_private_key(bogus)
    assert "sigrid" not in str(caught.value)


def test_force_removes_the_old_signature_with_the_old_package(signed, tmp_path, research, key):
    run([tmp_path / "tracking.log"], signed, research, key, force=True)
    assert not (signed / SIGNATURE_NAME).exists()


def test_the_cli_signs_and_verifies(tmp_path, key_file):
    log = tmp_path / "tracking.log"
    log.write_bytes(orjson.dumps(EVENT) + b"\n")
    env = {**os.environ}
    made = subprocess.run([*CLI, "keygen", "--signing", "--out", str(tmp_path / "rel")], capture_output=True, text=True, env=env)
    assert made.returncode == 0 and made.stdout.startswith("s1-")
    assert "BEGIN" not in made.stdout + made.stderr
    ran = subprocess.run(
        [*CLI, "run", str(log), "--out", str(tmp_path / "p"), "--key-file", str(key_file), "--sign-key", str(tmp_path / "rel.key"), "-q"],
        capture_output=True, text=True, env=env,
    )
    assert ran.returncode == 0, ran.stderr
    checked = subprocess.run(
        [*CLI, "verify", str(tmp_path / "p"), "--public-key", str(tmp_path / "rel.pub"), "--require-signature"],
        capture_output=True, text=True, env=env,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "signature: valid" in checked.stdout


def test_the_cli_exits_1_on_a_bad_signature_and_2_on_a_bad_key_file(signed, pair, tmp_path):
    (signed / SIGNATURE_NAME).write_text(base64.b64encode(b"\x00" * 64).decode() + "\n")
    bad = subprocess.run([*CLI, "verify", str(signed), "--public-key", str(pair[1])], capture_output=True, text=True)
    assert bad.returncode == 1
    assert "INTEGRITY manifest.sig" in bad.stdout
    (tmp_path / "junk.pub").write_text("junk")
    junk = subprocess.run([*CLI, "verify", str(signed), "--public-key", str(tmp_path / "junk.pub")], capture_output=True, text=True)
    assert junk.returncode == 2
