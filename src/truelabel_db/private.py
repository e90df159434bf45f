"""Files that hold production data or keys: private to their owner, or refused.

A snapshot of the legacy file, a decrypted backup or a replica's password file *is* production
data; left 0644 in a 0755 folder, every account on the machine can read it. So such files are
created 0600 from the start (a ``chmod`` after writing leaves a window) in folders created 0700.
A folder that already exists is the operator's: its mode is left alone, and the files in it are
still 0600. A key file that other users can read is refused, as ssh refuses such a private key:
its secret may already have leaked, and the operator has to know.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

PRIVATE_FILE = 0o600
PRIVATE_FOLDER = 0o700
OTHERS = 0o077


def private_folder(path: Path) -> Path:
    """``path`` as a folder; the folders this creates (``path`` and missing parents) are 0700."""
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_FOLDER)
        except FileExistsError:
            continue  # made meanwhile by someone else: theirs, left as it is
        os.chmod(folder, PRIVATE_FOLDER)  # the umask may have taken bits away, never added any
    if not path.is_dir():
        raise NotADirectoryError(f"{path} is not a folder")
    return path


def create_private_file(path: Path) -> Path:
    """A new, empty file readable and writable by its owner only (an existing one is an error)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    return path


def open_private(path: Path) -> BinaryIO:
    """``path`` opened for writing from empty, 0600 whether it was new or not."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    os.fchmod(fd, PRIVATE_FILE)
    return os.fdopen(fd, "wb")


def write_private(path: Path, data: bytes) -> Path:
    with open_private(path) as fh:
        fh.write(data)
    return path


def open_to_others(path: Path) -> int:
    """The permission bits that let group or world in (0 for a private file)."""
    return stat.S_IMODE(path.stat().st_mode) & OTHERS


def unsafe_key_file_message(path: Path, what: str) -> str | None:
    """Why ``path`` must not be used as a key file, or None when only its owner can read it."""
    if not open_to_others(path):
        return None
    return (f"the {what} {path} can be read by other users (mode {stat.S_IMODE(path.stat().st_mode):04o}); "
            f"like ssh with a private key, truelabel-db refuses it: chmod 600 it")
