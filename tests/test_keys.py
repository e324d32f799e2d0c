"""Pseudonymization keys: writing, loading, the public key id, and messages that never show a key."""

from __future__ import annotations

import stat

import pytest

from anonymizer.core.errors import KeyFileError
from anonymizer.core.keys import KEY_ENV_VAR, Key, generate_key, load_key, write_key
from anonymizer.core.pseudonyms import Pseudonymizer

SECRET = bytes(range(32))


def test_generated_keys_are_32_random_bytes():
    first, second = generate_key(), generate_key()
    assert len(first.secret) == 32
    assert first.secret != second.secret


def test_write_key_creates_the_file_with_mode_0600(tmp_path):
    path = tmp_path / "secret.key"
    write_key(generate_key(), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_write_key_writes_hex_and_a_newline(tmp_path):
    path = tmp_path / "secret.key"
    write_key(Key(SECRET), path)
    assert path.read_bytes() == SECRET.hex().encode() + b"\n"


def test_write_key_refuses_to_overwrite(tmp_path):
    path = tmp_path / "secret.key"
    path.write_bytes(b"precious")
    with pytest.raises(KeyFileError, match="already exists"):
        write_key(generate_key(), path)
    assert path.read_bytes() == b"precious"


def test_keygen_command_writes_a_0600_key_and_prints_only_its_id(tmp_path):
    from typer.testing import CliRunner

    from anonymizer.cli import app

    path = tmp_path / "new.key"
    result = CliRunner().invoke(app, ["keygen", "--out", str(path)])
    assert result.exit_code == 0, result.output
    key = load_key(path)
    assert result.output.strip() == key.key_id
    assert key.secret.hex() not in result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_keygen_command_refuses_to_overwrite(tmp_path):
    from typer.testing import CliRunner

    from anonymizer.cli import app

    path = tmp_path / "new.key"
    path.write_bytes(b"precious")
    result = CliRunner().invoke(app, ["keygen", "--out", str(path)])
    assert result.exit_code != 0
    assert isinstance(result.exception, KeyFileError)
    assert path.read_bytes() == b"precious"


def test_written_key_loads_back(tmp_path):
    path = tmp_path / "secret.key"
    write_key(Key(SECRET), path)
    assert load_key(path).secret == SECRET


def test_key_id_is_stable():
    assert Key(SECRET).key_id == Key(bytes(SECRET)).key_id
    assert Key(SECRET).key_id == "k1-" + Key(SECRET).key_id[3:]


def test_key_id_differs_between_keys():
    assert Key(SECRET).key_id != Key(b"k" * 32).key_id


def test_key_id_does_not_contain_the_key():
    key = Key(SECRET)
    key_hex = key.secret.hex()
    assert all(key_hex[i : i + 8] not in key.key_id for i in range(len(key_hex) - 7))


def test_key_repr_does_not_show_the_key():
    assert SECRET.hex() not in repr(Key(SECRET))
    assert repr(SECRET) not in repr(Key(SECRET))


def test_pseudonymizer_repr_does_not_show_the_key():
    assert SECRET.hex() not in repr(Pseudonymizer(Key(SECRET)))


def test_key_shorter_than_32_bytes_is_refused():
    with pytest.raises(KeyFileError, match="31 bytes long; at least 32"):
        Key(b"s" * 31)


def test_short_hex_key_file_is_refused_without_showing_the_key(tmp_path):
    path = tmp_path / "short.key"
    path.write_text("0123456789abcdef0123456789abcdef\n")  # 16 bytes
    with pytest.raises(KeyFileError) as caught:
        load_key(path)
    message = str(caught.value)
    assert str(path) in message
    assert "32 hex digits, not 64" in message
    assert "keygen --out FILE" in message
    assert "0123456789abcdef" not in message


@pytest.mark.parametrize(
    "content",
    [
        b"hunter2-password",
        b"correct horse battery staple, long enough\n",  # a passphrase of more than 32 bytes
        bytes(range(200, 232)) + b"\x00\xff",  # raw bytes
        b"a" * 65 + b"\n",  # one hex digit too many
        b"",
        b"g" * 64,
        SECRET.hex().encode()[:32] + b" " + SECRET.hex().encode()[32:],  # white space inside the digits
    ],
    ids=["short-passphrase", "long-passphrase", "raw-bytes", "65-hex-digits", "empty", "not-hex", "split-digits"],
)
def test_anything_but_64_hex_digits_is_refused_with_how_to_make_a_key(tmp_path, content):
    path = tmp_path / "bad.key"
    path.write_bytes(content)
    with pytest.raises(KeyFileError) as caught:
        load_key(path)
    message = str(caught.value)
    assert str(path) in message and "anonymizer keygen --out FILE" in message
    assert "hunter2" not in message and "horse" not in message and "aaaa" not in message


def test_hex_key_file_loads(tmp_path):
    path = tmp_path / "hex.key"
    path.write_text(SECRET.hex() + "\n")
    assert load_key(path).secret == SECRET


@pytest.mark.parametrize("text", [SECRET.hex().upper(), "  " + SECRET.hex() + "\r\n\n", "\t" + SECRET.hex()])
def test_hex_key_in_any_case_with_white_space_around_it_loads(tmp_path, text):
    path = tmp_path / "hex.key"
    path.write_text(text)
    assert load_key(path).secret == SECRET


def test_a_key_file_readable_by_others_loads_with_a_warning(tmp_path):
    path = tmp_path / "open.key"
    path.write_text(SECRET.hex() + "\n")
    path.chmod(0o644)
    warnings: list[str] = []
    assert load_key(path, warn=warnings.append).secret == SECRET
    assert len(warnings) == 1 and "readable by its group or by others" in warnings[0] and "chmod 600" in warnings[0]
    assert SECRET.hex() not in warnings[0]
    path.chmod(0o600)
    warnings.clear()
    load_key(path, warn=warnings.append)
    assert warnings == []


def test_missing_key_file_is_named(tmp_path):
    path = tmp_path / "absent.key"
    with pytest.raises(KeyFileError, match="key file not found") as caught:
        load_key(path)
    assert str(path) in str(caught.value)


def test_key_file_from_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "env.key"
    path.write_text(SECRET.hex() + "\n")
    monkeypatch.setenv(KEY_ENV_VAR, str(path))
    assert load_key(None).secret == SECRET


def test_no_key_file_and_no_environment_variable(monkeypatch):
    monkeypatch.delenv(KEY_ENV_VAR, raising=False)
    with pytest.raises(KeyFileError) as caught:
        load_key(None)
    message = str(caught.value)
    assert "ANONYMIZER_KEY_FILE" in message
    assert "--key-file" in message
    assert "keygen" in message


def test_empty_environment_variable_is_no_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV_VAR, "")
    with pytest.raises(KeyFileError, match="ANONYMIZER_KEY_FILE"):
        load_key(None)
