"""Atomic file writes: a reader sees the old file or the new one, never a part.

Every writer in sdesim goes through :func:`atomic_write`: write a temporary
file next to the target, flush and ``fsync`` it, ``os.replace`` it over the
target (atomic on POSIX and Windows), then ``fsync`` the directory so that the
rename itself survives a crash. A run killed at any moment (SIGKILL included)
leaves complete files only (and perhaps a stray ``*.tmp``).
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Callable, Union

import numpy as np

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "atomic_write_json", "atomic_save_npy",
           "fsync_replace", "CheckpointError", "write_checked_npz", "read_checked_npz"]

PathLike = Union[str, os.PathLike]


def fsync_replace(tmp: PathLike, path: PathLike) -> None:
    """``fsync`` the finished file ``tmp``, rename it to ``path``, ``fsync`` the directory."""
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    try:
        dfd = os.open(Path(path).parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:  # pragma: no cover - platforms without directory fsync
        pass


def atomic_write(path: PathLike, write: Callable[[io.BufferedWriter], None]) -> Path:
    """Call ``write(fh)`` on a binary temporary file, then move it atomically to ``path``."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        write(fh)
        fh.flush()
    fsync_replace(tmp, path)
    return path


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda fh: fh.write(data))


def atomic_write_text(path: PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: PathLike, obj, *, default=None, indent: int = 1) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=indent, default=default))


def atomic_save_npy(path: PathLike, arr) -> Path:
    return atomic_write(path, lambda fh: np.save(fh, np.asarray(arr)))


# --------------------------------------------------------------------------- checked files


class CheckpointError(ValueError):
    """A checkpoint (or a file it vouches for) is missing, damaged or altered; it is never loaded.

    The message is ``problem`` (starting ``checkpoint:``), then ``; fix`` --
    what to do, which depends on the front end (:meth:`with_fix` swaps it).
    """

    def __init__(self, problem: str, fix: str | None = None):
        self.problem, self.fix = problem, fix
        super().__init__(problem if not fix else f"{problem}; {fix}")

    def with_fix(self, fix: str) -> "CheckpointError":
        return CheckpointError(self.problem, fix)


def _checked_digest(arrays: dict, meta: dict) -> str:
    """SHA-256 over every array's dtype, shape and bytes (by name) and the JSON of ``meta``."""
    import hashlib

    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.asarray(arrays[name], order="C")
        h.update(json.dumps([name, a.dtype.str, list(a.shape)]).encode())
        h.update(a.tobytes())
    h.update(json.dumps(meta, sort_keys=True).encode())
    return h.hexdigest()


def write_checked_npz(path, arrays: dict, meta: dict) -> None:
    """Atomic, SHA-256-checked ``.npz``: write ``path.tmp``, fsync, rename.

    ``arrays`` (name -> array) are stored as they are, ``meta`` (JSON-able)
    as the string ``meta`` together with ``sha256`` over both; read back
    with :func:`read_checked_npz`, which refuses anything altered.
    """
    path = Path(path)
    arrays = {k: np.asarray(v, order="C") for k, v in arrays.items()}
    if "meta" in arrays:
        raise ValueError("arrays: the name 'meta' is reserved")
    meta = json.loads(json.dumps(meta))  # exactly what will be read back
    meta["sha256"] = _checked_digest(arrays, meta)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, meta=np.array(json.dumps(meta)), **arrays)
    fsync_replace(tmp, path)


def read_checked_npz(path, *, fix: str = "delete it to start over") -> tuple[dict, dict]:
    """``(arrays, meta)`` of a file from :func:`write_checked_npz`, verified.

    A missing, truncated, altered or unchecked file raises
    :class:`CheckpointError` (a ``ValueError``) whose message starts with
    ``checkpoint:`` and ends with ``fix``; nothing of it is returned.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            arrays = {k: z[k] for k in z.files if k != "meta"}
        want = meta.pop("sha256")
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint: {path} is missing", fix) from None
    except Exception as e:  # noqa: BLE001 - any failure to read means a bad checkpoint
        raise CheckpointError(f"checkpoint: {path} is corrupted or partial ({type(e).__name__})", fix) from None
    if want != _checked_digest(arrays, meta):
        raise CheckpointError(f"checkpoint: {path} fails its checksum", fix)
    return arrays, meta
