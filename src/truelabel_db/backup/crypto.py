"""Streamed authenticated encryption of backup files: AES-256-GCM in framed chunks.

The plan's ``openssl enc -aes-256-cbc -k`` puts the key on a command line and authenticates
nothing: a flipped bit restores as garbage. Here each file gets its own key (HKDF from the master
key and a random salt), is cut into 1 MiB chunks, and each chunk is sealed with AES-256-GCM under
a nonce made of its position and a "last chunk" flag, with the file header as associated data.
So a changed byte, a reordered or dropped chunk, a cut-off tail or bytes appended after the end
all fail to decrypt, and memory stays flat however large the file.

Layout: ``magic(8) key_id(8) salt(16)`` then frames ``flag(1) length(4) ciphertext+tag``.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from truelabel_db.backup.errors import BackupIntegrityError, BackupKeyError
from truelabel_db.backup.keys import key_id
from truelabel_db.private import open_private, private_folder

MAGIC = b"TLBKENC1"
CHUNK = 1 << 20
TAG = 16
SALT = 16
HEADER = struct.Struct(">8s8s16s")
FRAME = struct.Struct(">BI")
FINAL, MORE = 1, 0


@dataclass(frozen=True)
class SealedFile:
    """What was written: the encrypted size and digest (for the manifest) and the plain size."""

    size: int
    sha256: str
    plain_size: int


def _file_cipher(key: bytes, salt: bytes) -> AESGCM:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt,
                   info=b"truelabel-backup-file-v1").derive(key)
    return AESGCM(derived)


def _nonce(counter: int, flag: int) -> bytes:
    return counter.to_bytes(11, "big") + bytes([flag])


class _HashingWriter:
    def __init__(self, dst: BinaryIO) -> None:
        self.dst, self.digest, self.size = dst, hashlib.sha256(), 0

    def write(self, data: bytes) -> None:
        self.dst.write(data)
        self.digest.update(data)
        self.size += len(data)


def encrypt_stream(src: BinaryIO, dst: BinaryIO, key: bytes) -> SealedFile:
    """Encrypt all of ``src`` into ``dst``; returns the sizes and the digest of what was written."""
    out = _HashingWriter(dst)
    header = HEADER.pack(MAGIC, bytes.fromhex(key_id(key)[:16]), os.urandom(SALT))
    cipher = _file_cipher(key, header[16:])
    out.write(header)
    plain, counter = 0, 0
    current = src.read(CHUNK)
    while True:
        following = src.read(CHUNK)
        flag = MORE if following else FINAL
        sealed = cipher.encrypt(_nonce(counter, flag), current, header)
        out.write(FRAME.pack(flag, len(sealed)) + sealed)
        plain += len(current)
        if flag == FINAL:
            return SealedFile(out.size, out.digest.hexdigest(), plain)
        current, counter = following, counter + 1


def decrypt_stream(src: BinaryIO, dst: BinaryIO, key: bytes, name: str = "backup file") -> int:
    """Decrypt ``src`` into ``dst``, refusing anything that is not exactly what was sealed."""
    header = src.read(HEADER.size)
    if len(header) != HEADER.size or header[:8] != MAGIC:
        raise BackupIntegrityError(f"{name} is not a truelabel-db encrypted file (bad header)")
    expected_id = header[8:16].hex()
    if expected_id != key_id(key):
        raise BackupKeyError(f"wrong backup key for {name}: it was encrypted with key id "
                             f"{expected_id}, the key given has id {key_id(key)}")
    cipher = _file_cipher(key, header[16:])
    counter, plain = 0, 0
    while True:
        frame = src.read(FRAME.size)
        if len(frame) < FRAME.size:
            raise BackupIntegrityError(f"{name} is truncated: it ends before its last chunk")
        flag, length = FRAME.unpack(frame)
        if flag not in (MORE, FINAL) or length > CHUNK + TAG:
            raise BackupIntegrityError(f"{name} is damaged: chunk {counter} has a bad frame")
        sealed = src.read(length)
        try:
            data = cipher.decrypt(_nonce(counter, flag), sealed, header)
        except InvalidTag:
            raise BackupIntegrityError(f"{name} is damaged or was altered: chunk {counter} "
                                       "fails authentication") from None
        dst.write(data)
        plain += len(data)
        if flag == FINAL:
            if src.read(1):
                raise BackupIntegrityError(f"{name} has bytes after its last chunk")
            return plain
        counter += 1


def encrypt_file(source: Path, destination: Path, key: bytes) -> SealedFile:
    """Encrypt a file to ``destination`` (written aside, fsynced, then renamed into place)."""
    partial = destination.with_name(destination.name + ".partial")
    destination.parent.mkdir(parents=True, exist_ok=True)
    with source.open("rb") as src, open_private(partial) as dst:
        sealed = encrypt_stream(src, dst, key)
        dst.flush()
        os.fsync(dst.fileno())
    os.replace(partial, destination)
    return sealed


def decrypt_file(source: Path, destination: Path, key: bytes, name: str | None = None) -> int:
    """Decrypt a file, readable by its owner only; on any failure nothing is left at ``destination``."""
    private_folder(destination.parent)
    partial = destination.with_name(destination.name + ".partial")
    try:
        with source.open("rb") as src, open_private(partial) as dst:
            size = decrypt_stream(src, dst, key, name or source.name)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, destination)
    return size


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()
