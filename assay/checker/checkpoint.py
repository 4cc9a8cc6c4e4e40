"""Checkpoints of a search (`check --checkpoint DIR`), and resuming from one.

At the end of a level (every `every` seconds at most) each worker of the parallel search
(`parallel.py`; one worker without `--workers`) writes the states it owns — every one, encoded
as `portable.py` does, with its parent link — and its frontier to `DIR/next/shard-<i>`; the
driver then writes `meta.json` (what was checked, the counts, the depth) and swaps the new
checkpoint in by renames, so a crash at any point leaves a whole checkpoint: `DIR/current`,
or while swapping `DIR/previous`.  `check --checkpoint DIR` resumes from it when it is of
the same spec file (its bytes), system, parameters, fault budget, fairness, deadlock rule,
number of workers, symmetry setting, `--keep-going` and strategy; otherwise it refuses and
says what differs.  Every mode is saved: a reduced search keeps orbits' representatives
(`symmetry.StableSymmetry`: the same in every process), and `meta.json` notes `unreduced`
when a property was found not symmetric, so that the resumed search is unreduced too; a
search that keeps going has its findings so far in the workers' files; with liveness
properties the safety search is saved (the graph is rebuilt after it); a depth-first search
is saved by `dfs_checkpoint.py` into the same directory layout.  `meta.json` holds a MAC
of each worker's file, checked before a resume unpickles it (`verified`: the bytes are read
once, checked, then unpickled, so the file cannot be swapped between the two); and a MAC of
the rest of `meta.json` (its counts: a digit altered there would resume to wrong counts).

The files are pickles, and unpickling runs code: so the MACs are HMAC-SHA256 under a key of
this user's (`user_key`: 32 random bytes in ~/.config/assay/checkpoint.key, 0600, made on
first use).  A checkpoint resumes only if this user's assay wrote it: one damaged, edited,
copied from another user or machine, or planted in a directory others may write is refused
before anything of it is unpickled.  Whoever can read the key file is trusted as this user.
A resumed search ends with the same counts as one that was never stopped.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import IO, Any

from assay.errors import UsageError
from assay.model.load import modules_beside
from assay.outfile import sync_directory

FORMAT = 2          # 2: keyed MACs (`user_key`), not SHA-256
CURRENT, NEXT, PREVIOUS = "current", "next", "previous"


def identity(spec: str, system_name: str, params: dict[str, Any], faults: Any,
             fairness: str, deadlock: bool, workers: int, *, symmetry: bool | None = None,
             keep_going: bool = False, strategy: str = "bfs") -> dict[str, Any]:
    """What a checkpoint must match to be resumed.  `symmetry`: whether reduction was asked
    for (None: the system declares no symmetry).  An option at its default is left out, so
    that a checkpoint written before the option could be saved still resumes."""
    try:
        digest = hashlib.sha256(Path(spec).read_bytes()).hexdigest()
    except OSError as e:
        raise UsageError(f"--checkpoint: cannot read the spec {spec}: {e.strerror}") from None
    ident = {"format": FORMAT, "spec_sha256": digest, "system": system_name,
             "params": {k: params[k] for k in sorted(params)},
             "faults": faults.to_json() if faults is not None else None,
             "fairness": fairness, "deadlock": deadlock, "workers": workers}
    # the modules beside the spec that it imported: a change there changes the system as much
    # as one in the spec file (the states saved would be another system's)
    beside: dict[str, str | None] = {}
    for f in modules_beside(spec):
        try:
            beside[f.name if f.parent == Path(spec).resolve().parent else str(f)] = \
                hashlib.sha256(f.read_bytes()).hexdigest()
        except OSError:
            beside[str(f)] = None
    if beside:
        ident["beside_sha256"] = beside
    if symmetry is not None:
        ident["symmetry"] = symmetry
    if keep_going:
        ident["keep_going"] = True
    if strategy != "bfs":
        ident["strategy"] = strategy
    return ident


class Checkpoints:
    """The checkpoint directory of one check."""

    def __init__(self, path: str, ident: dict[str, Any], every: float) -> None:
        self.dir = Path(path)
        self.ident = ident
        self.every = every
        if self.dir.exists() and not self.dir.is_dir():
            raise UsageError(f"--checkpoint {path}: not a directory")
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UsageError(f"--checkpoint {path}: cannot create it: {e.strerror}") from None
        self._lock = self._take_lock()
        # what every meta.json of this search notes beyond its counts: "unreduced", why a
        # search with symmetry declared explores every state (a property not symmetric)
        self.extra: dict[str, Any] = {}
        self._found: tuple[dict[str, Any] | None] | None = None

    def _take_lock(self) -> IO[str] | None:
        """Hold DIR/lock for as long as this check runs: a second check in the same
        directory (another terminal) would swap its checkpoints in under this one's and
        remove the files this one is writing."""
        try:
            import fcntl
        except ImportError:                       # (not on this system: no lock)
            return None
        try:
            f = open(self.dir / "lock", "a")    # noqa: SIM115 (held until close)
        except OSError as e:
            raise UsageError(f"--checkpoint {self.dir}: cannot write in it: {e.strerror}"
                             ) from None
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            raise UsageError(f"--checkpoint {self.dir}: another check is using this "
                             "directory", notes=["wait for it to end, or give this one "
                                                 "another directory"]) from None
        except OSError:                           # a file system without locks
            f.close()
            return None
        return f

    def close(self) -> None:
        """Let another check use the directory (at the end of this one)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def found(self) -> dict[str, Any] | None:
        """The saved search to resume (its meta, with "path"), or None for a fresh start;
        a usage error when the checkpoint is of another check."""
        if self._found is None:
            self._found = (self._look(),)
        return self._found[0]

    def unreduced(self) -> str | None:
        """Why the saved search explores every state although symmetry reduction was asked
        for (it met a property that is not symmetric), or None."""
        found = self.found()
        return None if found is None else found.get("unreduced")

    def restart(self, **extra: Any) -> None:
        """Drop the saved search (the search starts over), and note `extra` in every
        checkpoint of the new one."""
        for name in (CURRENT, PREVIOUS, NEXT):
            shutil.rmtree(self.dir / name, ignore_errors=True)
        self.extra = extra
        self._found = (None,)

    def _look(self) -> dict[str, Any] | None:
        for name in (CURRENT, PREVIOUS):
            meta_file = self.dir / name / "meta.json"
            if meta_file.is_file():
                try:
                    meta = json.loads(meta_file.read_text())
                except (OSError, ValueError, RecursionError) as e:
                    # (RecursionError: JSON nested deeper than the parser goes; never written)
                    raise UsageError(f"--checkpoint {self.dir}: {meta_file} is unreadable: "
                                     f"{_reason(e)}",
                                     notes=["remove the directory to start over"]) from None
                if not isinstance(meta, dict):
                    raise UsageError(f"--checkpoint {self.dir}: {meta_file} is not a "
                                     "checkpoint's meta", notes=["remove the directory to "
                                                                  "start over"])
                self._unchanged(meta_file, meta)
                self._same(meta.get("identity") or {})
                self._whole(self.dir / name, meta.get("shards"))
                self.extra = {k: meta[k] for k in ("unreduced",) if k in meta}
                return {**meta, "path": str(self.dir / name)}
        return None

    def _same(self, saved: dict[str, Any]) -> None:
        def get(ident: dict[str, Any], k: str) -> Any:
            # left out: the default (and a checkpoint written before symmetry could be
            # saved is of an unreduced search)
            return ident.get(k, {"keep_going": False, "strategy": "bfs",
                                 "symmetry": False}.get(k))

        diff = [k for k in {**saved, **self.ident} if get(saved, k) != get(self.ident, k)]
        if not diff:
            return
        what = {"symmetry": "symmetry reduction (--no-symmetry) differs",
                "keep_going": "--keep-going differs",
                "strategy": "the search strategy differs (--dfs)",
                "spec_sha256": "the spec file changed", "workers": "--workers differs",
                "beside_sha256": "a module beside the spec that it imports changed",
                "params": "the parameters differ", "system": "another system",
                "faults": "the fault budget differs", "fairness": "the fairness differs",
                "deadlock": "--no-deadlock differs", "format": "another assay version"}
        def shown(k: str, v: Any) -> str:
            # "deadlock" is whether deadlocks are reported: the option says the opposite
            return ("given" if not v else "not given") if k == "deadlock" else repr(v)

        notes = [what.get(k, k) + (f" (it was {shown(k, get(saved, k))}, now "
                                   f"{shown(k, get(self.ident, k))})"
                                   if k not in ("spec_sha256", "beside_sha256") else "")
                 for k in diff]
        raise UsageError(f"--checkpoint {self.dir} holds a checkpoint of another check",
                         notes=[*notes, "use another directory, or remove this one to start "
                                "over"])

    def _unchanged(self, meta_file: Path, meta: dict[str, Any]) -> None:
        """A usage error unless `meta` is what `commit` wrote, with this user's key: its
        counts are not checked against the workers' files (a digit altered would resume to
        wrong counts)."""
        saved = meta.pop(META_DIGEST, None)
        if not isinstance(saved, str) or not hmac.compare_digest(saved, _meta_digest(meta)):
            raise UsageError(f"--checkpoint {self.dir}: {meta_file} is not the file that was "
                             "saved (damaged, edited by hand, or not written by this user's "
                             "assay)", notes=["a checkpoint resumes only where this user's "
                                              f"key ({key_path()}) made it",
                                              "remove the directory to start over"])

    def _whole(self, folder: Path, shards: Any) -> None:
        """A usage error unless every worker's file is there with the digest `commit` noted
        (a damaged or truncated file is refused before anything reads it)."""
        damaged = [] if isinstance(shards, dict) and shards else ["meta.json names no files"]
        for name, digest in (shards.items() if not damaged else ()):
            try:
                ok = isinstance(digest, str) and hmac.compare_digest(_digest(folder / name),
                                                                      digest)
            except OSError as e:
                damaged.append(f"{name}: {e.strerror}")
                continue
            if not ok:
                damaged.append(f"{name} is not the file that was saved (damaged or changed)")
        if damaged:
            raise UsageError(f"--checkpoint {self.dir}: the checkpoint in {folder} is damaged",
                             notes=[*damaged, "remove the directory to start over"])

    def begin(self) -> str:
        """A fresh directory for the workers' files of a new checkpoint."""
        tmp = self.dir / NEXT
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        return str(tmp)

    def commit(self, counts: dict[str, Any]) -> None:
        """Write the meta of the checkpoint in `next`, then make it the current one."""
        tmp = self.dir / NEXT
        shards = {p.name: _digest(p) for p in sorted(tmp.glob("shard-*"))}
        meta = {"identity": self.ident, **counts, **self.extra, "shards": shards}
        meta[META_DIGEST] = _meta_digest(meta)
        with open(tmp / "meta.json.tmp", "w") as f:
            json.dump(meta, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp / "meta.json.tmp", tmp / "meta.json")
        sync_directory(tmp)                     # the workers' renames and this one, on disk
        current, previous = self.dir / CURRENT, self.dir / PREVIOUS
        if current.exists():
            # `previous` goes only while `current` is whole: without one (a search resumed
            # from `previous`, after a stop between the two renames) it is the checkpoint
            shutil.rmtree(previous, ignore_errors=True)
            os.replace(current, previous)
        os.replace(tmp, current)
        sync_directory(self.dir)                # before the one it replaces is removed
        shutil.rmtree(previous, ignore_errors=True)


META_DIGEST = "meta_mac"          # in meta.json: the MAC of the rest of it
KEY_BYTES = 32


def key_path() -> str:
    """Where this user's checkpoint key is: $ASSAY_KEY_FILE, else checkpoint.key in
    $XDG_CONFIG_HOME/assay (~/.config/assay)."""
    given = os.environ.get("ASSAY_KEY_FILE")
    if given:
        return given
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"),
                                                                ".config")
    return os.path.join(config, "assay", "checkpoint.key")


def user_key() -> bytes:
    """This user's key for checkpoint MACs, made (0600, in a directory made 0700) on first
    use; a usage error naming the file if it cannot be read or made, or is not a key."""
    from assay.runtime.private import FILE_MODE, private_dir

    path = key_path()
    try:
        try:
            with open(path, "rb") as f:
                key = f.read(KEY_BYTES + 1)
        except FileNotFoundError:
            private_dir(os.path.dirname(os.path.abspath(path)))
            tmp = f"{path}.{os.getpid()}.{secrets.token_hex(4)}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            try:
                os.write(fd, secrets.token_bytes(KEY_BYTES))
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, path)             # (another process made one meanwhile: theirs)
            except FileExistsError:
                pass
            finally:
                os.remove(tmp)
            with open(path, "rb") as f:
                key = f.read(KEY_BYTES + 1)
    except OSError as e:
        raise UsageError(f"--checkpoint: cannot read or make the checkpoint key {path}: "
                         f"{e.strerror}", notes=["set ASSAY_KEY_FILE to a file this user "
                                                 "may write"]) from None
    if len(key) != KEY_BYTES:
        raise UsageError(f"--checkpoint: the checkpoint key {path} is not {KEY_BYTES} bytes",
                         notes=["remove it (checkpoints written with it will not resume), "
                                "and it is made again"])
    return key


def _mac(data: bytes) -> str:
    return hmac.new(user_key(), data, hashlib.sha256).hexdigest()


def _meta_digest(meta: dict[str, Any]) -> str:
    return _mac(json.dumps(meta, sort_keys=True, separators=(",", ":")).encode())


def _digest(path: Path) -> str:
    h = hmac.new(user_key(), digestmod=hashlib.sha256)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verified(folder: str, index: int) -> bytes:
    """The bytes of worker `index`'s file of the checkpoint in `folder`, read once and
    checked against the MAC its `meta.json` notes (`UsageError` if they differ): what a
    resume unpickles, never the file read again."""
    name = f"shard-{index}"
    try:
        meta = json.loads(Path(folder, "meta.json").read_text())
        data = Path(folder, name).read_bytes()
    except (OSError, ValueError, RecursionError) as e:
        raise UsageError(f"--checkpoint: cannot read the checkpoint in {folder}: {_reason(e)}",
                         notes=["remove the directory to start over"]) from None
    saved = meta.get(META_DIGEST) if isinstance(meta, dict) else None
    rest = {k: v for k, v in meta.items() if k != META_DIGEST} if isinstance(meta, dict) else {}
    shards = rest.get("shards")
    want = shards.get(name) if isinstance(shards, dict) else None
    if not (isinstance(saved, str) and hmac.compare_digest(saved, _meta_digest(rest))
            and isinstance(want, str) and hmac.compare_digest(want, _mac(data))):
        raise UsageError(f"--checkpoint: the checkpoint in {folder} changed while it was "
                         f"resumed: {name} is not the file that was saved",
                         notes=["remove the directory to start over"])
    return data


def _reason(e: BaseException) -> str:
    """Why a checkpoint file could not be read, in a few words."""
    return "nested too deeply to be a checkpoint's" if isinstance(e, RecursionError) else \
        e.strerror or str(e) if isinstance(e, OSError) else str(e)


def shard_file(path: str, index: int) -> str:
    return os.path.join(path, f"shard-{index}")
