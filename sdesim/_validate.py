"""Input checks shared by the Python API and the command line.

Every check raises :class:`ValueError` whose message starts with the name of
the offending field, so the CLI can print it as one line and exit with code 2.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "check_positive",
    "check_positive_int",
    "check_nonneg_int",
    "check_finite_array",
    "check_initial_state",
    "check_divergence_bound",
    "check_square",
    "check_spd",
    "check_stable",
]


def check_positive(value, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a positive number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name}: expected a positive finite number, got {value!r}")
    return v


def check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def check_nonneg_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name}: expected a non-negative integer, got {value!r}")
    return int(value)


def check_save_every(save_every, n_steps: int) -> int:
    """Steps between snapshots: ``n_steps`` for ``None``, else a positive divisor of ``n_steps``."""
    if save_every is None:
        return n_steps
    every = check_positive_int(save_every, "save_every")
    if n_steps % every:
        raise ValueError(f"save_every: must divide n_steps={n_steps}, got {every}")
    return every


def check_finite_array(value, name: str, *, ndim=None, shape=None) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a numeric array, got {value!r}") from None
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimension(s), got shape {arr.shape}")
    if shape is not None and arr.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains NaN or inf")
    return arr


def check_initial_state(value, name: str, n_particles: int, dim: int) -> np.ndarray:
    """Initial states as ``(n_particles, dim)`` float64 (a read-only broadcast view for a shared state).

    Accepts ``(dim,)`` (every particle), ``(n_particles, dim)``, and for ``dim == 1``
    a scalar (the same as shape ``(1,)``).
    """
    arr = check_finite_array(value, name)
    if arr.ndim == 0 and dim == 1:
        arr = arr.reshape(1)
    if arr.shape == (dim,):
        return np.broadcast_to(arr, (n_particles, dim))
    if arr.shape != (n_particles, dim):
        scalar = "a scalar, " if dim == 1 else ""
        raise ValueError(f"{name}: expected {scalar}shape ({dim},) or ({n_particles}, {dim}), got {arr.shape}")
    return arr


def check_divergence_bound(value, name: str = "divergence_bound") -> float:
    """A positive bound on ``|x_i|``; ``inf`` allowed (then only NaN and inf count as diverged)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a positive number or inf, got {value!r}") from None
    if isinstance(value, bool) or math.isnan(v) or v <= 0:
        raise ValueError(f"{name}: expected a positive number or inf, got {value!r}")
    return v


def check_square(value, name: str, *, dim=None) -> np.ndarray:
    arr = check_finite_array(value, name)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise ValueError(f"{name}: expected a square matrix, got shape {arr.shape}")
    if dim is not None and arr.shape[0] != dim:
        raise ValueError(f"{name}: expected shape ({dim}, {dim}), got {arr.shape}")
    return arr


def check_spd(value, name: str, *, dim=None, strict: bool = False) -> np.ndarray:
    """Symmetric positive semi-definite (``strict``: definite) matrix."""
    arr = check_square(value, name, dim=dim)
    scale = max(1.0, float(np.max(np.abs(arr))))
    if not np.allclose(arr, arr.T, atol=1e-10 * scale, rtol=1e-8):
        raise ValueError(f"{name}: matrix must be symmetric")
    w = np.linalg.eigvalsh((arr + arr.T) / 2)
    tol = 1e-10 * scale * arr.shape[0]
    if w.min() < -tol or (strict and w.min() <= tol):
        kind = "positive definite" if strict else "positive semi-definite"
        raise ValueError(f"{name}: matrix must be {kind} (smallest eigenvalue {w.min():.3g})")
    return arr


def check_stable(F, name: str) -> np.ndarray:
    """``dx = -F x dt`` must be stable: every eigenvalue of F has positive real part."""
    arr = check_square(F, name)
    ev = np.linalg.eigvals(arr)
    if np.min(ev.real) <= 0:
        raise ValueError(
            f"{name}: -F must be stable (all eigenvalues of F with positive real part) "
            f"for a stationary state; min Re eig(F) = {np.min(ev.real):.3g}"
        )
    return arr
