"""Files and directories only the user running a node may read: its state (SQLite stores, with
their -wal and -shm files) and its step logs hold every persistent field and every message a
node handled, so they are created 0600 in directories created 0700, whatever the umask.

Existing files and directories keep their modes: a directory the user chose (`--state-dir .`)
is theirs to set.
"""
from __future__ import annotations

import os
from typing import IO

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: str | os.PathLike[str]) -> None:
    """Create the directory `path`, and each missing parent, with mode 0700 (`os.makedirs`
    gives the parents the umask's mode); an existing one is left as it is."""
    missing: list[str] = []
    p = os.path.abspath(os.fspath(path))
    while not os.path.isdir(p):
        missing.append(p)
        parent = os.path.dirname(p)
        if parent == p:
            break
        p = parent
    for d in reversed(missing):
        try:
            os.mkdir(d, DIR_MODE)
        except FileExistsError:        # made meanwhile (by another node of the deployment)
            if not os.path.isdir(d):
                raise


def _opener(path: str, flags: int) -> int:
    return os.open(path, flags, FILE_MODE)


def private_open(path: str | os.PathLike[str], mode: str) -> IO[str]:
    """`open(path, mode)` for text, creating the file 0600 if it does not exist."""
    return open(path, mode, opener=_opener)   # noqa: SIM115 - the caller closes it


def create_private(path: str | os.PathLike[str]) -> None:
    """Create the file `path` empty with mode 0600 unless it exists: SQLite then gives its
    -wal and -shm files the same mode as the database."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
