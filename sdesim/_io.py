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
           "fsync_replace"]

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
