"""Encrypted delivery: a finished package as an age-encrypted tar archive, and back.

``run --encrypt-to RECIPIENT`` leaves the package directory ``OUT`` as it is and writes beside it:

- ``OUT.tar.age``: the package (every file of ``OUT``, its manifest and ``manifest.sig`` included)
  as a tar archive, encrypted with age (``pyrage``) to every recipient. The tar is deterministic
  (members sorted by path, regular files only, mtime 0, owner 0, mode 0644), so the same package
  makes the same tar; the encrypted bytes differ from run to run (age draws a fresh file key).
- ``OUT.tar.age.sha256``: the archive's sha256, in the format of ``sha256sum``, so that a receiver
  can check what arrived before decrypting it (``sha256sum -c OUT.tar.age.sha256``).
- ``OUT.tar.age.sig``, with ``--sign-key``: the Ed25519 signature (base64, one line) of the exact
  bytes of ``OUT.tar.age.sha256``, which ``anonymizer decrypt --public-key`` checks first.

A recipient is an age public key (``age1…``), an SSH public key (``ssh-ed25519 …``, ``ssh-rsa …``),
or a file of them, one a line (``#`` starts a comment). ``decrypt`` takes an identity file: age
identities (``AGE-SECRET-KEY-1…``) or an unencrypted OpenSSH private key. It unpacks only plain
files with relative paths: an absolute path, a ``..`` part, a link or a device refuses the whole
archive before anything is written. No message quotes a key, an identity or a file's content.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..core.errors import AnonymizerError, KeyFileError, OutputError, UsageError, os_reason
from .manifest import MANIFEST_NAME

ARCHIVE_SUFFIX = ".tar.age"
SHA256_SUFFIX = ".sha256"
SIGNATURE_SUFFIX = ".sig"
_FILE_MODE = 0o644
_CHUNK = 1 << 20


class DecryptionError(AnonymizerError):
    """An archive cannot be checked, decrypted or unpacked (wrong identity, damaged, unsafe)."""


@dataclass(frozen=True)
class EncryptedPackage:
    archive: Path
    sha256_file: Path
    signature: Path | None
    sha256: str


def archive_paths(out_dir: Path) -> tuple[Path, Path, Path]:
    """``OUT.tar.age``, ``OUT.tar.age.sha256`` and ``OUT.tar.age.sig`` for the package directory OUT."""
    out_dir = Path(out_dir)
    archive = out_dir.with_name(out_dir.name + ARCHIVE_SUFFIX)
    return archive, archive.with_name(archive.name + SHA256_SUFFIX), archive.with_name(archive.name + SIGNATURE_SUFFIX)


def check_archive_targets(out_dir: Path, force: bool) -> None:
    """Refuse, before a run, to replace an existing archive without FORCE."""
    if force:
        return
    for path in archive_paths(out_dir):
        if path.exists():
            raise UsageError(f"{path}: already exists; remove it or pass --force to replace it")


# ------------------------------------------------------------------------------------ recipients


def parse_recipients(values: list[str]) -> list:
    """The pyrage recipients of VALUES: each an age or SSH public key, or a file of them."""
    import pyrage  # imported when used: only encrypted runs need it

    recipients = []
    for number, value in enumerate(values, 1):
        text = value.strip()
        if _looks_like_key(text) and not Path(value).is_file():
            recipients.append(_recipient(pyrage, text, f"--encrypt-to #{number}"))
            continue
        path = Path(value)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            raise UsageError(
                f"--encrypt-to #{number}: neither an age public key (age1…), an SSH public key (ssh-ed25519, ssh-rsa) nor an existing file"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            reason = os_reason(exc) if isinstance(exc, OSError) else "not UTF-8 text"
            raise UsageError(f"{path}: cannot read the recipients file ({reason})") from None
        found = 0
        for line_number, line in enumerate(lines, 1):
            line = line.strip()
            if line and not line.startswith("#"):
                recipients.append(_recipient(pyrage, line, f"{path}: line {line_number}"))
                found += 1
        if not found:
            raise UsageError(f"{path}: the recipients file names no recipient")
    if not recipients:
        raise UsageError("--encrypt-to: no recipient given")
    return recipients


def _looks_like_key(text: str) -> bool:
    return (text.startswith("age1") and " " not in text) or (text.startswith("ssh-") and " " in text)


def _recipient(pyrage, text: str, where: str):
    try:
        if text.startswith("age1"):
            return pyrage.x25519.Recipient.from_str(text)
        if text.startswith("ssh-ed25519 ") or text.startswith("ssh-rsa "):
            return pyrage.ssh.Recipient.from_str(text)
    except pyrage.RecipientError:
        pass
    # The library's words are not shown: they could repeat part of what was given.
    raise UsageError(f"{where}: not a valid age public key (age1…) or SSH public key (ssh-ed25519, ssh-rsa)")


def load_identities(path: Path) -> list:
    """The identities in PATH: age identities, one a line, or one unencrypted OpenSSH private key."""
    import pyrage  # imported when used: only encrypted runs and decrypt need it

    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{path}: identity file not found") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read the identity file ({os_reason(exc)})") from None
    bad = KeyFileError(
        f"{path}: not an age identity file (AGE-SECRET-KEY-1… lines) or an unencrypted OpenSSH private key"
    )
    if b"-----BEGIN" in data:
        try:
            return [pyrage.ssh.Identity.from_buffer(data)]
        except (pyrage.IdentityError, ValueError, TypeError):
            raise bad from None
    identities = []
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise bad from None
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            try:
                identities.append(pyrage.x25519.Identity.from_str(line))
            except (pyrage.IdentityError, ValueError):
                raise bad from None
    if not identities:
        raise bad
    return identities


# ------------------------------------------------------------------------------------ packing


def package_members(out_dir: Path) -> list[tuple[str, Path]]:
    """Every file of the package directory, by its relative POSIX path, sorted. Work files of a
    run (names starting with a dot) are not part of a package; a link or a special file is refused."""
    members = []
    for path in sorted(Path(out_dir).rglob("*")):
        relative = path.relative_to(out_dir)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.is_symlink() or not (path.is_dir() or path.is_file()):
            raise OutputError(f"{path}: not a regular file; a package holds only files and directories")
        if path.is_file():
            members.append((relative.as_posix(), path))
    members.sort(key=lambda member: member[0])
    return members


def write_tar(out_dir: Path, target) -> None:
    """The package in OUT_DIR as a deterministic tar, written to the binary file TARGET."""
    with tarfile.open(fileobj=target, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, path in package_members(out_dir):
            info = tarfile.TarInfo(name)
            info.size = path.stat().st_size
            info.mtime = 0
            info.mode = _FILE_MODE
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with open(path, "rb") as fh:
                tar.addfile(info, fh)


def _sha256_of(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.partial")
    try:
        with open(temporary, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def encrypt_package(out_dir: Path, recipients: list, sign_key: Ed25519PrivateKey | None = None) -> EncryptedPackage:
    """Write ``OUT.tar.age`` (the package in OUT_DIR encrypted to RECIPIENTS), its ``.sha256`` and,
    with SIGN_KEY, its ``.sig``. The files appear whole or not at all; stale ones are replaced."""
    import pyrage  # imported when used: only encrypted runs and decrypt need it

    out_dir = Path(out_dir)
    archive, sha256_file, signature_file = archive_paths(out_dir)
    for stale in (sha256_file, signature_file, archive):  # the check files first: never a check of another archive
        stale.unlink(missing_ok=True)
    temporary = archive.with_name(f".{archive.name}.partial")
    try:
        with tempfile.TemporaryFile(dir=archive.parent) as plain:
            write_tar(out_dir, plain)
            plain.seek(0)
            with open(temporary, "wb") as sealed:
                pyrage.encrypt_io(plain, sealed, recipients)
                sealed.flush()
                os.fsync(sealed.fileno())
        digest = _sha256_of(temporary)
        os.replace(temporary, archive)
        check = f"{digest}  {archive.name}\n".encode()
        _write_atomically(sha256_file, check)
        if sign_key is not None:
            _write_atomically(signature_file, base64.b64encode(sign_key.sign(check)) + b"\n")
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        for done in (sha256_file, signature_file, archive):
            done.unlink(missing_ok=True)
        raise OutputError(
            f"{exc.filename or archive}: cannot write the encrypted archive ({os_reason(exc)}); the package in {out_dir} is complete: "
            "run again with --force once the cause is fixed"
        ) from None
    except pyrage.EncryptError:
        temporary.unlink(missing_ok=True)
        raise OutputError(f"{archive}: encryption failed; the package in {out_dir} is complete and was not encrypted") from None
    return EncryptedPackage(archive, sha256_file, signature_file if sign_key is not None else None, digest)


# ------------------------------------------------------------------------------------ unpacking


def check_archive(archive: Path, public_key: Ed25519PublicKey | None = None) -> str:
    """Check ARCHIVE against ``ARCHIVE.sha256`` when it is there (required with PUBLIC_KEY, which
    must also verify ``ARCHIVE.sig``). Returns what was checked, in words."""
    archive = Path(archive)
    sha256_file = archive.with_name(archive.name + SHA256_SUFFIX)
    signature_file = archive.with_name(archive.name + SIGNATURE_SUFFIX)
    try:
        check = sha256_file.read_bytes()
    except FileNotFoundError:
        if public_key is not None:
            raise DecryptionError(f"{sha256_file}: not found; --public-key checks the archive's signed sha256 file") from None
        return "no sha256 file beside the archive: not checked before decrypting"
    except OSError as exc:
        raise DecryptionError(f"{sha256_file}: cannot be read ({os_reason(exc)})") from None
    if public_key is not None:
        try:
            signature = base64.b64decode(signature_file.read_bytes().strip(), validate=True)
            public_key.verify(signature, check)
        except FileNotFoundError:
            raise DecryptionError(f"{signature_file}: not found; the archive is not signed") from None
        except (OSError, binascii.Error, ValueError, InvalidSignature):
            raise DecryptionError(f"{signature_file}: the signature of {sha256_file.name} is not valid under the public key") from None
    fields = check.decode("ascii", "replace").split()
    if len(fields) != 2 or len(fields[0]) != 64:
        raise DecryptionError(f"{sha256_file}: not a sha256 line ('HEX  NAME')")
    try:
        actual = _sha256_of(archive)
    except FileNotFoundError:
        raise DecryptionError(f"{archive}: not found") from None
    except OSError as exc:
        raise DecryptionError(f"{archive}: cannot be read ({os_reason(exc)})") from None
    if actual != fields[0].lower():
        raise DecryptionError(f"{archive}: its sha256 differs from {sha256_file.name}: the archive is damaged or not the one sent")
    return "sha256 matches" + (", signature valid" if public_key is not None else "")


def _safe_name(member: tarfile.TarInfo, number: int, archive: Path) -> PurePosixPath:
    """MEMBER's path when it is a plain file with a clean relative path; else the archive is refused."""
    def refuse(why: str) -> DecryptionError:
        return DecryptionError(f"{archive}: member {number} {why}; nothing was unpacked")

    if not member.isreg():
        raise refuse("is not a plain file (a link, a directory or a device)")
    name = member.name
    if not name or name.startswith("/") or "\\" in name or "\x00" in name or (len(name) > 1 and name[1] == ":"):
        raise refuse("has an absolute or unusual path")
    path = PurePosixPath(name)
    if any(part in ("", ".", "..") for part in name.split("/")) or path.is_absolute():
        raise refuse("has a path that leaves the package ('..', '.' or an empty part)")
    return path


def decrypt_package(archive: Path, identity_file: Path, out_dir: Path, public_key: Ed25519PublicKey | None = None) -> tuple[int, str]:
    """Check ARCHIVE (see ``check_archive``), decrypt it with the identities in IDENTITY_FILE, and
    unpack it into OUT_DIR (new or empty). Returns the number of files and what was checked."""
    import pyrage  # imported when used: only encrypted runs and decrypt need it

    archive, out_dir = Path(archive), Path(out_dir)
    identities = load_identities(identity_file)
    checked = check_archive(archive, public_key)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise UsageError(f"{out_dir}: exists and is not an empty directory; choose a new directory")
    parent = out_dir.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=parent) as plain:
        try:
            with open(archive, "rb") as sealed:
                pyrage.decrypt_io(sealed, plain, identities)
        except FileNotFoundError:
            raise DecryptionError(f"{archive}: not found") from None
        except pyrage.DecryptError as exc:
            if "no matching keys" in str(exc).lower():
                raise DecryptionError(f"{archive}: none of the identities in {identity_file} can decrypt it (it was encrypted to other recipients)") from None
            raise DecryptionError(f"{archive}: not an age-encrypted archive, or damaged") from None
        except OSError:
            raise DecryptionError(f"{archive}: damaged (decryption stopped before its end)") from None
        plain.seek(0)
        return _unpack(plain, archive, out_dir), checked


def _unpack(plain, archive: Path, out_dir: Path) -> int:
    """Unpack the tar in the file PLAIN into OUT_DIR, after checking every member."""
    try:
        with tarfile.open(fileobj=plain, mode="r:") as tar:
            members = tar.getmembers()
            names = [_safe_name(member, number, archive) for number, member in enumerate(members, 1)]
            if len(set(names)) != len(names):
                raise DecryptionError(f"{archive}: a file is in the archive twice; nothing was unpacked")
            if PurePosixPath(MANIFEST_NAME) not in names:
                raise DecryptionError(f"{archive}: holds no {MANIFEST_NAME}; it is not a package")
            out_dir.mkdir(parents=True, exist_ok=True)
            try:
                for member, name in zip(members, names):
                    target = out_dir.joinpath(*name.parts)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    source = tar.extractfile(member)
                    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
                    with os.fdopen(fd, "wb") as fh:
                        shutil.copyfileobj(source, fh, _CHUNK)
            except BaseException:
                shutil.rmtree(out_dir, ignore_errors=True)  # half a package is not a package
                raise
    except tarfile.TarError:
        raise DecryptionError(f"{archive}: decrypted, but what it holds is not a tar archive of a package") from None
    return len(members)

