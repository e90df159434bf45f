#!/usr/bin/env python3
"""PostgreSQL's ``archive_command`` and ``restore_command``: WAL into the backup repository, and back.

The plan's ``test ! -f /archive/%f && cp %p /archive/%f`` fails on a retry after a crash between
copy and acknowledgement (the segment is there, identical, and archiving stalls forever), and
its ``cp`` can leave a half-written segment that a later recovery trusts. This command:

* writes the segment to a temporary name, fsyncs it, and links it into place (never replaces);
* accepts a segment that is already archived with identical bytes (PostgreSQL retries after a
  crash), and refuses, loudly and with a non-zero exit, one with different bytes;
* refuses a segment from another cluster (its header names another system identifier), so two
  clusters can never mix their WAL in one archive;
* fsyncs the folder, and exits non-zero on any error, so PostgreSQL keeps the segment and
  retries instead of recycling WAL that was never stored.

It uses the standard library only, because it runs as the server's system user with the
system's Python, outside truelabel-db's environment. ``pitr setup`` copies it into the repository.

    archive_wal.py push %p %f ARCHIVE_DIR [SYSTEM_IDENTIFIER]
    archive_wal.py fetch %f %p ARCHIVE_DIR
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import struct
import sys

SEGMENT_NAME = re.compile(r"^[0-9A-F]{24}$")
LONG_HEADER = struct.Struct("=HHIQI4xQII")
XLP_LONG_HEADER = 0x0002

EXIT_REFUSED = 3


def _digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def segment_system_id(path: str) -> int | None:
    """The system identifier in a WAL segment's first page header (None if not a long header)."""
    with open(path, "rb") as fh:
        head = fh.read(LONG_HEADER.size)
    if len(head) < LONG_HEADER.size:
        return None
    _, info, _, _, _, sysid, _, _ = LONG_HEADER.unpack(head)
    return sysid if info & XLP_LONG_HEADER else None


def _fsync_dir(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def push(source: str, name: str, archive: str, system_id: int | None = None) -> int:
    if "/" in name or name.startswith("."):
        print(f"archive_wal: refusing a suspicious file name {name!r}", file=sys.stderr)
        return EXIT_REFUSED
    if system_id is not None and SEGMENT_NAME.match(name):
        found = segment_system_id(source)
        if found is not None and found != system_id:
            print(f"archive_wal: {name} belongs to cluster {found}, this archive holds cluster {system_id}; "
                  "refusing to mix clusters", file=sys.stderr)
            return EXIT_REFUSED
    target = os.path.join(archive, name)
    if os.path.exists(target):
        return _already_there(source, target, name)
    temporary = os.path.join(archive, f".{name}.{os.getpid()}.tmp")
    try:
        with open(source, "rb") as src, open(temporary, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
            dst.flush()
            os.fsync(dst.fileno())
        try:
            os.link(temporary, target)
        except FileExistsError:
            return _already_there(source, target, name)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    _fsync_dir(archive)
    return 0


def _already_there(source: str, target: str, name: str) -> int:
    if _digest(source) == _digest(target):
        print(f"archive_wal: {name} was already archived with identical contents", file=sys.stderr)
        return 0
    print(f"archive_wal: {name} is already archived with DIFFERENT contents; refusing to overwrite it",
          file=sys.stderr)
    return EXIT_REFUSED


def fetch(name: str, destination: str, archive: str) -> int:
    source = os.path.join(archive, name)
    if not os.path.isfile(source):
        return 1  # the normal answer at the end of the archive: recovery goes on from there
    temporary = destination + ".tmp"
    shutil.copyfile(source, temporary)
    os.replace(temporary, destination)
    return 0


def main(argv: list[str]) -> int:
    try:
        if len(argv) in (4, 5) and argv[0] == "push":
            return push(argv[1], argv[2], argv[3], int(argv[4]) if len(argv) == 5 else None)
        if len(argv) == 4 and argv[0] == "fetch":
            return fetch(argv[1], argv[2], argv[3])
    except OSError as exc:
        print(f"archive_wal: {exc}", file=sys.stderr)
        return 1
    print("usage:\n" + "\n".join(__doc__.strip().splitlines()[-2:]), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
