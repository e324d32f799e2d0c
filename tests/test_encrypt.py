"""Encrypted delivery: ``run --encrypt-to`` and ``anonymizer decrypt``, then ``verify`` on the result."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile
from pathlib import Path

import pyrage
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from anonymizer import KeyFileError, UsageError, run
from anonymizer.package.encrypt import DecryptionError, archive_paths, decrypt_package, parse_recipients, write_tar
from anonymizer.package.signing import load_private_key, load_public_key, write_signing_key_pair
from anonymizer.verify import verify_package
from test_resume import package_files

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_LOG = ROOT / "examples" / "tracking.log"
CLI = [sys.executable, "-m", "anonymizer.cli"]


@pytest.fixture()
def age_identity(tmp_path):
    """An age identity file (as age-keygen writes it, comments included) and its recipient."""
    identity = pyrage.x25519.Identity.generate()
    path = tmp_path / "identity.txt"
    path.write_text(f"# created: today\n# public key: {identity.to_public()}\n{identity}\n")
    return path, str(identity.to_public()), str(identity)


@pytest.fixture()
def signing(tmp_path):
    private, public, _ = write_signing_key_pair(tmp_path / "signer")
    return private, public


@pytest.fixture()
def sealed(tmp_path, research, key, age_identity, signing):
    out = tmp_path / "package"
    result = run([EXAMPLE_LOG], out, research, key, jobs=1, encrypt_to=[age_identity[1]], sign_key=load_private_key(signing[0]))
    return out, result


def test_encrypt_then_decrypt_gives_back_the_package_and_verify_passes(tmp_path, sealed, age_identity, signing):
    out, result = sealed
    archive, sha_file, sig_file = archive_paths(out)
    assert result.encrypted.archive == archive and archive.name == "package.tar.age"
    assert sha_file.read_text() == f"{hashlib.sha256(archive.read_bytes()).hexdigest()}  package.tar.age\n"
    assert sig_file.is_file()
    received = tmp_path / "received"
    files, checked = decrypt_package(archive, age_identity[0], received, load_public_key(signing[1]))
    assert checked == "sha256 matches, signature valid"
    assert files == 5  # the data file, README.md, codebook.json, manifest.json, manifest.sig
    assert package_files(received) == package_files(out)
    report = verify_package(received, against=[EXAMPLE_LOG], roster=[], public_key=load_public_key(signing[1]), require_signature=True)
    assert report.ok, report.describe()


def test_the_tar_inside_is_deterministic(sealed, tmp_path):
    out, _ = sealed
    first, second = io.BytesIO(), io.BytesIO()
    write_tar(out, first)
    write_tar(out, second)
    assert first.getvalue() == second.getvalue()
    with tarfile.open(fileobj=io.BytesIO(first.getvalue())) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert {(m.mtime, m.uid, m.gid, m.mode, m.uname) for m in members} == {(0, 0, 0, 0o644, "")}


def test_cli_round_trip_with_an_ssh_key(tmp_path, key_file):
    private = ed25519.Ed25519PrivateKey.generate()
    (tmp_path / "id_ed25519").write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()))
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    (tmp_path / "id_ed25519.pub").write_text(public + " researcher@example\n")
    out = tmp_path / "pkg"
    made = subprocess.run([*CLI, "run", str(EXAMPLE_LOG), "--out", str(out), "--key-file", str(key_file), "-j", "1",
                           "--encrypt-to", str(tmp_path / "id_ed25519.pub")], capture_output=True, text=True, cwd=ROOT)
    assert made.returncode == 0, made.stderr
    assert "encrypted archive:" in made.stdout
    opened = subprocess.run([*CLI, "decrypt", str(tmp_path / "pkg.tar.age"), "--identity", str(tmp_path / "id_ed25519"), "--out", str(tmp_path / "got")],
                            capture_output=True, text=True, cwd=ROOT)
    assert opened.returncode == 0, opened.stderr
    assert "sha256 matches" in opened.stdout
    checked = subprocess.run([*CLI, "verify", str(tmp_path / "got"), "--against", str(EXAMPLE_LOG)], capture_output=True, text=True, cwd=ROOT)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_wrong_identity_is_a_clean_error_that_quotes_no_key(tmp_path, sealed):
    out, _ = sealed
    other = pyrage.x25519.Identity.generate()
    (tmp_path / "other.txt").write_text(f"{other}\n")
    result = subprocess.run([*CLI, "decrypt", str(archive_paths(out)[0]), "-i", str(tmp_path / "other.txt"), "--out", str(tmp_path / "got")],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 1
    assert "package.tar.age" in result.stderr and "none of the identities" in result.stderr
    assert "Traceback" not in result.stderr and str(other) not in result.stderr + result.stdout
    assert not (tmp_path / "got").exists()


def test_a_damaged_archive_is_refused_before_and_without_its_sha256(tmp_path, sealed, age_identity):
    out, _ = sealed
    archive, sha_file, sig_file = archive_paths(out)
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 1
    archive.write_bytes(bytes(data))
    with pytest.raises(DecryptionError) as caught:
        decrypt_package(archive, age_identity[0], tmp_path / "got")
    assert "sha256 differs" in str(caught.value) and str(archive) in str(caught.value)
    sha_file.unlink()
    with pytest.raises(DecryptionError) as caught:
        decrypt_package(archive, age_identity[0], tmp_path / "got")
    assert "damaged" in str(caught.value)
    assert not (tmp_path / "got").exists()
    archive.write_bytes(b"not age at all\n")
    with pytest.raises(DecryptionError, match="not an age-encrypted archive"):
        decrypt_package(archive, age_identity[0], tmp_path / "got")


def test_a_bad_signature_or_a_missing_one_is_refused(tmp_path, sealed, age_identity):
    out, _ = sealed
    archive, sha_file, sig_file = archive_paths(out)
    _, stranger = write_signing_key_pair(tmp_path / "stranger")[:2]
    with pytest.raises(DecryptionError, match="not valid"):
        decrypt_package(archive, age_identity[0], tmp_path / "got", load_public_key(stranger))
    sig_file.unlink()
    with pytest.raises(DecryptionError, match="not signed"):
        decrypt_package(archive, age_identity[0], tmp_path / "got", load_public_key(stranger))


def sealed_tar(tmp_path: Path, recipient: str, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path = tmp_path / "evil.tar.age"
    path.write_bytes(pyrage.encrypt(buffer.getvalue(), [pyrage.x25519.Recipient.from_str(recipient)]))
    return path


def _file(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def _link(name: str, target: str, kind=tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


@pytest.mark.parametrize(
    "bad",
    [
        _file("../escaped.txt"),
        _file("sub/../../escaped.txt"),
        _file("/tmp/escaped.txt"),
        _file("./manifest.json"),
        _file("C:\\escaped.txt"),
        _link("data.gz", "/etc/passwd"),
        _link("data.gz", "manifest.json", tarfile.LNKTYPE),
        _file("dir/"),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "dot", "windows", "symlink", "hardlink", "directory-name"],
)
def test_decrypt_refuses_members_that_leave_the_package_and_writes_nothing(tmp_path, age_identity, bad):
    if bad.name == "dir/":
        bad.type = tarfile.DIRTYPE
    archive = sealed_tar(tmp_path, age_identity[1], [(_file("manifest.json"), b"{}"), (bad, b"x")])
    out = tmp_path / "work" / "got"
    with pytest.raises(DecryptionError) as caught:
        decrypt_package(archive, age_identity[0], out)
    assert "member 2" in str(caught.value) and "nothing was unpacked" in str(caught.value)
    assert not out.exists() and not (tmp_path / "work" / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()


def test_decrypt_refuses_a_duplicate_member_an_archive_without_manifest_and_a_full_directory(tmp_path, age_identity):
    twice = sealed_tar(tmp_path, age_identity[1], [(_file("manifest.json"), b"{}"), (_file("manifest.json"), b"{}")])
    with pytest.raises(DecryptionError, match="twice"):
        decrypt_package(twice, age_identity[0], tmp_path / "a")
    nothing = sealed_tar(tmp_path, age_identity[1], [(_file("data.gz"), b"x")])
    with pytest.raises(DecryptionError, match="no manifest.json"):
        decrypt_package(nothing, age_identity[0], tmp_path / "b")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("x")
    with pytest.raises(UsageError, match="not an empty directory"):
        decrypt_package(nothing, age_identity[0], tmp_path / "full")


def test_bad_recipients_and_identities_are_named_not_quoted(tmp_path):
    secretish = "age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"
    with pytest.raises(UsageError) as caught:
        parse_recipients([secretish])
    assert "--encrypt-to #1" in str(caught.value) and secretish not in str(caught.value)
    with pytest.raises(UsageError, match="neither an age public key"):
        parse_recipients([str(tmp_path / "missing.pub")])
    listed = tmp_path / "recipients.txt"
    listed.write_text("# the team\n" + str(pyrage.x25519.Identity.generate().to_public()) + "\nssh-ed25519 AAAAnotakey\n")
    with pytest.raises(UsageError) as caught:
        parse_recipients([str(listed)])
    assert f"{listed}: line 3" in str(caught.value) and "AAAAnotakey" not in str(caught.value)
    named_like_a_key = tmp_path / "ssh-team-keys"  # a file, however it is named
    named_like_a_key.write_text(str(pyrage.x25519.Identity.generate().to_public()) + "\n")
    assert len(parse_recipients([str(named_like_a_key)])) == 1
    identity = tmp_path / "identity.txt"
    identity.write_text("AGE-SECRET-KEY-1NOTAREALKEYATALL\n")
    with pytest.raises(KeyFileError) as caught:
        decrypt_package(tmp_path / "x.tar.age", identity, tmp_path / "got")
    assert str(identity) in str(caught.value) and "NOTAREALKEY" not in str(caught.value)


def test_an_existing_archive_is_replaced_only_with_force(tmp_path, research, key, age_identity):
    out = tmp_path / "package"
    archive = archive_paths(out)[0]
    archive.write_bytes(b"older")
    with pytest.raises(UsageError, match="--force"):
        run([EXAMPLE_LOG], out, research, key, jobs=1, encrypt_to=[age_identity[1]])
    assert not out.exists() and archive.read_bytes() == b"older"
    run([EXAMPLE_LOG], out, research, key, jobs=1, encrypt_to=[age_identity[1]], force=True)
    assert archive.read_bytes() != b"older" and not archive_paths(out)[2].exists()  # unsigned: no .sig
