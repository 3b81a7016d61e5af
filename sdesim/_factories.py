"""Built-in problems and constructors, re-exported by :mod:`sdesim.problems`.

Each returns an :class:`~sdesim.AbstractProblem` (an ``equinox.Module``).
Parameters are stored as arrays, so calling :func:`sdesim.simulate` with a new
``lam`` or ``F`` of the same shape reuses the compiled program.
"""

from __future__ import annotations

from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from ._diffusion import AbstractDiffusion, Isotropic, StateDependent, as_diffusion
from ._problem import (
    AbstractProblem,
    AnisotropicDoubleWell,
    Custom,
    OrnsteinUhlenbeck,
    RotatingDoubleWell,
    anisotropic_matrix,
)
from ._validate import check_finite_array, check_positive, check_square

__all__ = ["custom", "linear", "rotating_double_well", "anisotropic_double_well"]


def custom(
    grad_f: Callable,
    diffusion,
    dim: int,
    *,
    phi: Optional[Callable] = None,
    Q: Optional[Callable] = None,
    beta_inv_ref: Optional[float] = None,
) -> AbstractProblem:
    """A problem from ``grad_f: x (dim,) -> (dim,)`` and a diffusion.

    ``diffusion`` is a constant SPD ``(dim, dim)`` matrix, a scalar, a diagonal
    vector, a noise model (:class:`~sdesim.diffusion.AbstractDiffusion`, e.g.
    :class:`~sdesim.diffusion.LowRankDiagonal`), or a callable ``x -> D(x)``.
    Optionally ``phi: x -> Phi(x)`` and ``Q: x -> Q(x)`` (antisymmetric) enable
    ``form="atype"``.
    """
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim <= 0:
        raise ValueError(f"dim: expected a positive integer, got {dim!r}")
    if not callable(grad_f):
        raise ValueError("grad_f: expected a callable x -> grad f(x)")
    out = jax.eval_shape(grad_f, jax.ShapeDtypeStruct((dim,), jnp.float32))
    if getattr(out, "shape", None) != (dim,):
        raise ValueError(f"grad_f: must map x ({dim},) to ({dim},), got {getattr(out, 'shape', out)}")
    if phi is not None:
        if not callable(phi):
            raise ValueError("phi: expected a callable x -> Phi(x)")
        if jax.eval_shape(phi, jax.ShapeDtypeStruct((dim,), jnp.float32)).shape != ():
            raise ValueError("phi: must return a scalar")
    if Q is not None:
        if not callable(Q):
            raise ValueError("Q: expected a callable x -> Q(x)")
        if jax.eval_shape(Q, jax.ShapeDtypeStruct((dim,), jnp.float32)).shape != (dim, dim):
            raise ValueError(f"Q: must return a ({dim}, {dim}) matrix")
    diff = as_diffusion(diffusion, int(dim))
    return Custom(grad_f_fn=grad_f, diffusion=diff, phi_fn=phi, q_fn=Q, ref_beta_inv=beta_inv_ref)


def linear(F, D) -> AbstractProblem:
    """OU problem ``grad f = F x`` with constant ``D`` (``F`` need not be symmetric).

    When ``-F`` is stable the Lemma-20 pair ``(U, Q)`` is attached, so
    ``form="atype"`` integrates ``dx = -(D + Q) U x dt + ...``.
    """
    from ._linear import linear_decomposition

    F = check_square(F, "F")
    d = F.shape[0]
    diff = as_diffusion(D, d, name="D")
    U = Q = None
    if np.min(np.linalg.eigvals(F).real) > 0:
        try:
            U, Q = linear_decomposition(F, np.asarray(diff.matrix(jnp.zeros(d))))
        except ValueError:
            U = Q = None
    return OrnsteinUhlenbeck(
        F=jnp.asarray(F, dtype=float),
        diffusion=diff,
        U=None if U is None else jnp.asarray(U, dtype=float),
        Q=None if Q is None else jnp.asarray(Q, dtype=float),
    )


def rotating_double_well(lam: float = 1.5) -> AbstractProblem:
    """Example 19 (Fig. 4): ``Phi = (x1^2-1)^2/4 + x2^2/2``, ``D = I``, beta = 1."""
    lam = float(check_finite_array(lam, "lam", ndim=0))
    return RotatingDoubleWell(lam=jnp.asarray(lam, dtype=float), diffusion=Isotropic(2, 1.0))


def anisotropic_double_well(
    beta_inv: float = 0.5, *, a: float = 0.3, q0: float = 0.5, q1: float = 0.3
) -> AbstractProblem:
    """2D double well with state-dependent non-diagonal ``D(x)`` and ``Q(x)``.

    ``f`` is built from ``(Phi, D, Q)`` at ``beta_inv`` so that the Itô SDE at
    that temperature has stationary density ``exp(-Phi / beta_inv)`` exactly.
    See :class:`sdesim.AnisotropicDoubleWell` for the formulas.
    """
    beta_inv = check_positive(beta_inv, "beta_inv")
    for name, v in (("a", a), ("q0", q0), ("q1", q1)):
        check_finite_array(v, name, ndim=0)
    return AnisotropicDoubleWell(
        beta_inv=jnp.asarray(beta_inv, dtype=float),
        a=jnp.asarray(a, dtype=float),
        q0=jnp.asarray(q0, dtype=float),
        q1=jnp.asarray(q1, dtype=float),
        diffusion=StateDependent(anisotropic_matrix, 2),
    )
