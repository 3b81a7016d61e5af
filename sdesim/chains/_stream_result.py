"""The typed result of :func:`sdesim.chains.stream_chains`: what a stream directory holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

__all__ = ["ChainStream"]


@dataclass(frozen=True)
class ChainStream:
    """A streamed chain run on disk, frozen: its parameters and how to read it back.

    The fields are those of the stream's ``manifest.json`` (which stays the
    on-disk record; :meth:`manifest` gives it back as a dict). The snapshots
    themselves are not held in memory: :meth:`load` reads the committed
    chunks, each checked against its SHA-256. Like every chain result the
    snapshots exclude the initial state (``includes_initial = False``): save
    ``i`` is the state after ``burn_in + (i + 1) * save_every`` steps.

    Attributes:
        out_dir: the stream directory.
        kernel: the kernel's name (``ChainKernel.name``, e.g. ``"sgd-replacement"``).
        lr, beta_inv: the kernel's step size and temperature (``beta_inv`` is
            ``None`` for SGD, whose noise comes from sampling).
        dim: dimension of the chain state (weights).
        n_chains, n_steps, save_every, burn_in, seed: the run's parameters.
        chunk_saves, n_saves, n_chunks: snapshots per chunk file, in total,
            and the number of chunk files.
        dtype: the snapshots' dtype name.
        observe: whether ``obs_*.npy`` observables were streamed.
        batching: ``"vmap"`` or ``"map"`` over chains.
        complete: whether every chunk has been committed.
        run_s: compute time summed over the sessions that wrote the stream.
        meta: the kernel's metadata (batch, sampling, ...).
        config: the caller's record of how the run was made.
    """

    out_dir: str
    kernel: str
    lr: float
    beta_inv: Optional[float]
    dim: int
    n_chains: int
    n_steps: int
    save_every: int
    burn_in: int
    seed: int
    chunk_saves: int
    n_saves: int
    n_chunks: int
    dtype: str
    observe: bool
    batching: str
    complete: bool = False
    run_s: Optional[float] = None
    meta: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    includes_initial: bool = False

    @classmethod
    def from_manifest(cls, out_dir: str, manifest: dict) -> "ChainStream":
        """Build from a ``manifest.json`` dict (as written by ``stream_chains``)."""
        names = {f for f in cls.__dataclass_fields__ if f not in ("out_dir", "includes_initial")}
        return cls(out_dir=str(out_dir), **{k: manifest[k] for k in names if k in manifest})

    @classmethod
    def open(cls, out_dir: str) -> "ChainStream":
        """The stream in ``out_dir`` (``ValueError`` naming ``out_dir`` if there is none)."""
        from ._chains import _read_manifest

        return cls.from_manifest(out_dir, _read_manifest(str(out_dir)))

    def manifest(self) -> dict[str, Any]:
        """The fields as the plain dict ``manifest.json`` holds."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in ("out_dir", "includes_initial")}

    def load(self, *, chain: Optional[int] = None, what: str = "x") -> np.ndarray:
        """The committed snapshots, ``(n_saved, n_chains, dim)`` (or one ``chain``); see ``load_stream``."""
        from ._chains import load_stream

        return load_stream(self.out_dir, chain=chain, what=what)
