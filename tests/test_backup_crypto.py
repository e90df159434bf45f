"""Streamed encryption: what was sealed comes back exactly, and nothing else comes back at all."""

from __future__ import annotations

import io
import os
import secrets

import pytest

from truelabel_db.backup.crypto import (
    CHUNK,
    FRAME,
    HEADER,
    TAG,
    decrypt_stream,
    encrypt_stream,
)
from truelabel_db.backup.errors import BackupIntegrityError, BackupKeyError
from truelabel_db.backup.keys import decode_key, key_id, load_key, new_key_text

KEY = secrets.token_bytes(32)


def seal(data: bytes, key: bytes = KEY) -> bytes:
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(data), out, key)
    return out.getvalue()


def unseal(blob: bytes, key: bytes = KEY) -> bytes:
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(blob), out, key)
    return out.getvalue()


def frames(blob: bytes) -> list[bytes]:
    """The sealed chunks of a file, each with its frame header."""
    out, at = [], HEADER.size
    while at < len(blob):
        _, length = FRAME.unpack(blob[at:at + FRAME.size])
        out.append(blob[at:at + FRAME.size + length])
        at += FRAME.size + length
    return out


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17])
def test_what_is_sealed_comes_back_exactly(size: int) -> None:
    data = os.urandom(size)
    blob = seal(data)
    assert unseal(blob) == data
    assert len(blob) == HEADER.size + max(1, -(-size // CHUNK)) * (FRAME.size + TAG) + size


def test_the_same_file_sealed_twice_differs() -> None:
    assert seal(b"same rows") != seal(b"same rows")


def test_a_flipped_byte_is_refused() -> None:
    blob = bytearray(seal(os.urandom(2 * CHUNK + 5)))
    blob[HEADER.size + CHUNK + 100] ^= 0x01
    with pytest.raises(BackupIntegrityError, match="chunk 1 fails authentication"):
        unseal(bytes(blob))


def test_a_changed_header_is_refused() -> None:
    blob = bytearray(seal(b"rows"))
    blob[20] ^= 0x01  # inside the salt, which is also the chunks' associated data
    with pytest.raises(BackupIntegrityError):
        unseal(bytes(blob))


def test_a_file_cut_after_a_whole_chunk_is_refused_as_truncated() -> None:
    blob = seal(os.urandom(2 * CHUNK + 5))
    first_two = blob[:HEADER.size] + b"".join(frames(blob)[:2])
    with pytest.raises(BackupIntegrityError, match="truncated"):
        unseal(first_two)


def test_reordered_chunks_are_refused() -> None:
    blob = seal(os.urandom(3 * CHUNK))
    a, b, c = frames(blob)
    with pytest.raises(BackupIntegrityError, match="chunk 0 fails authentication"):
        unseal(blob[:HEADER.size] + b + a + c)


def test_bytes_after_the_last_chunk_are_refused() -> None:
    with pytest.raises(BackupIntegrityError, match="after its last chunk"):
        unseal(seal(b"rows") + b"x")


def test_a_final_chunk_relabelled_as_not_final_is_refused() -> None:
    blob = bytearray(seal(b"rows"))
    blob[HEADER.size] = 0  # claim more chunks follow
    with pytest.raises(BackupIntegrityError):
        unseal(bytes(blob))


def test_a_wrong_key_is_named_as_such_not_as_damage() -> None:
    other = secrets.token_bytes(32)
    with pytest.raises(BackupKeyError, match=f"key id {key_id(KEY)}.*has id {key_id(other)}"):
        unseal(seal(b"rows"), other)


def test_a_file_that_is_not_ours_is_refused() -> None:
    with pytest.raises(BackupIntegrityError, match="bad header"):
        unseal(b"PGDMP" + os.urandom(100))


def test_the_key_comes_from_the_environment_or_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    text = new_key_text()
    monkeypatch.setenv("TRUELABEL_BACKUP_KEY", text)
    monkeypatch.delenv("TRUELABEL_BACKUP_KEY_FILE", raising=False)
    assert load_key() == decode_key(text, "test")
    other = new_key_text()
    (tmp_path / "key").write_text(other + "\n")
    (tmp_path / "key").chmod(0o600)
    assert load_key(tmp_path / "key") == decode_key(other, "test")


@pytest.mark.parametrize("text, message", [("", "no backup key"), ("not base64!", "not base64"),
                                           ("c2hvcnQ=", "5 bytes; it must be 32")])
def test_a_missing_or_malformed_key_is_one_clear_error(text: str, message: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUELABEL_BACKUP_KEY", text)
    monkeypatch.delenv("TRUELABEL_BACKUP_KEY_FILE", raising=False)
    with pytest.raises(BackupKeyError, match=message):
        load_key()
