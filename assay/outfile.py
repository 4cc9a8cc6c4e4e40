"""Files assay writes for a person or a later command: trace files, diagrams, explorer pages.

Each is written whole or not at all (a temporary file beside it, flushed to disk, renamed over
it), so a full disk, a size limit or Ctrl-C partway never leaves a file that looks whole but
is cut short: `assay replay` of a cut trace would fail, a cut page would show part of a run.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import stat


def write_whole(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` (UTF-8) to `path`: afterwards `path` holds its old content or all of the
    new one, never a part, and no temporary file is left.  An `OSError` is raised as is."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = _temporary(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            with contextlib.suppress(OSError):   # the mode of the file it replaces
                os.fchmod(f.fileno(), stat.S_IMODE(os.stat(path).st_mode))
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:                      # (Ctrl-C too: no half file left behind)
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    sync_directory(directory)


def sync_directory(directory: str | os.PathLike[str]) -> None:
    """Flush `directory`'s entries to disk, so that a rename into it survives a crash of the
    machine too (best effort: not every system lets a directory be synced)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def check_writable(path: str | os.PathLike[str]) -> str | None:
    """Why `path` cannot be written by `write_whole` (None: it can), found by making and
    removing a temporary file beside it: permissions alone do not tell (a read-only file
    system, /proc, or root, whom permissions do not stop)."""
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        return f"directory {parent} does not exist"
    if os.path.isdir(path):
        return "it is a directory"
    if os.path.exists(path) and not os.access(path, os.W_OK):
        return "permission denied"             # a read-only file: not to be replaced
    try:
        fd, tmp = _temporary(path)
    except OSError as e:
        return e.strerror or str(e)
    os.close(fd)
    with contextlib.suppress(OSError):
        os.remove(tmp)
    return None


def same_file(path: str | os.PathLike[str], other: str | os.PathLike[str]) -> bool:
    """Whether `path` and `other` name one file (through links, `..`, or another spelling);
    a file not made yet is the same as another only by its resolved path."""
    try:
        return os.path.samefile(path, other)
    except OSError:
        return os.path.realpath(path) == os.path.realpath(other)


def _temporary(path: str) -> tuple[int, str]:
    """A new file beside `path`, open for writing, with the mode the umask gives a new file
    (`tempfile.mkstemp` would make it 0600)."""
    directory, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(directory, f".{name[:100]}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
