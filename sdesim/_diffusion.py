"""Noise models: the diffusion matrix ``D(x)`` of ``dx = b dt + sqrt(2 beta^-1 D) dW``.

Every model is an :class:`equinox.Module` (a PyTree) that provides

* ``matrix(x)``      -> ``D(x)``, shape ``(dim, dim)`` (for inspection; the
  integrators never need it for the constant and low-rank models);
* ``apply(x, z)``    -> ``L(x) z`` with ``L L^T = D``, ``z`` of shape
  ``(noise_dim,)``; with ``z ~ N(0, I)`` the result has covariance ``D(x)``;
* ``divergence(x)``  -> the matrix divergence of ``D``, shape ``(dim,)``.

Divergence convention (used everywhere in sdesim, for ``D`` and for ``Q``)::

    (div M)_i = sum_j  d M_ij / d x_j        (divergence of each row)

This is the only choice for which the A-type SDE
``dx = -(D+Q) grad Phi dt + sqrt(2 beta^-1 D) dW`` has the Itô drift
``-(D+Q) grad Phi + beta^-1 div(D+Q)`` and stationary density exp(-beta Phi)
for a state-dependent antisymmetric ``Q``: its stationary flux is then
``J_i = beta^-1 sum_j d_j (Q_ij rho)``, divergence-free because
``sum_ij d_i d_j (Q_ij rho) = 0`` for antisymmetric ``Q``. With the other
index (``sum_j d_j M_ji``) the ``Q`` part of the correction changes sign and
the flux acquires a source term. See ``docs/conventions.md``.
"""

from __future__ import annotations

import abc
from typing import Callable, Optional

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

__all__ = [
    "AbstractDiffusion",
    "Isotropic",
    "Diagonal",
    "Dense",
    "LowRankDiagonal",
    "StateDependent",
    "matrix_divergence",
    "as_diffusion",
]


def matrix_divergence(
    matrix_fn: Callable[[Array], Array], x: Float[Array, " dim"]
) -> Float[Array, " dim"]:
    """Row-wise divergence ``(div M)_i = sum_j dM_ij/dx_j`` by forward-mode autodiff."""
    jac = jax.jacfwd(matrix_fn)(x)  # jac[i, j, k] = d M_ij / d x_k
    return jnp.einsum("ijj->i", jac)


class AbstractDiffusion(eqx.Module):
    """A diffusion-matrix field ``D(x)`` (symmetric positive semi-definite)."""

    #: True when ``D`` does not depend on ``x`` (additive noise).
    is_constant: eqx.AbstractClassVar[bool]

    @property
    @abc.abstractmethod
    def dim(self) -> int: ...

    @property
    @abc.abstractmethod
    def noise_dim(self) -> int:
        """Number of independent standard normals consumed per step."""

    @abc.abstractmethod
    def matrix(self, x: Float[Array, " dim"]) -> Float[Array, "dim dim"]: ...

    @abc.abstractmethod
    def apply(
        self, x: Float[Array, " dim"], z: Float[Array, " noise_dim"]
    ) -> Float[Array, " dim"]:
        """Return ``L(x) z`` where ``L L^T = D(x)``."""

    def noise_factor(self, x: Float[Array, " dim"]) -> Float[Array, "dim noise_dim"]:
        """``L(x)`` as a ``(dim, noise_dim)`` matrix (:meth:`apply` to the identity's columns)."""
        e = jnp.eye(self.noise_dim, dtype=x.dtype)
        return jax.vmap(lambda z: self.apply(x, z), in_axes=1, out_axes=1)(e)

    def divergence(self, x: Float[Array, " dim"]) -> Float[Array, " dim"]:
        if self.is_constant:
            return jnp.zeros_like(x)
        return matrix_divergence(self.matrix, x)

    def mean_eigenvalue(self) -> float:
        """``tr D / dim`` at a constant model (used to match SGLD noise power)."""
        x = jnp.zeros((self.dim,))
        return float(jnp.trace(self.matrix(x))) / self.dim


class Isotropic(AbstractDiffusion):
    """``D = scale * I``."""

    scale: Float[Array, ""]
    _dim: int = eqx.field(static=True)
    is_constant = True

    def __init__(self, dim: int, scale: float = 1.0):
        self._dim = int(dim)
        self.scale = jnp.asarray(scale, dtype=float)

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def noise_dim(self) -> int:
        return self._dim

    def matrix(self, x):
        return self.scale * jnp.eye(self._dim, dtype=jnp.result_type(x))

    def apply(self, x, z):
        return jnp.sqrt(self.scale).astype(z.dtype) * z


class Diagonal(AbstractDiffusion):
    """``D = diag(diag)``."""

    diag: Float[Array, " dim"]
    is_constant = True

    def __init__(self, diag):
        self.diag = jnp.asarray(diag, dtype=float)

    @property
    def dim(self) -> int:
        return self.diag.shape[0]

    @property
    def noise_dim(self) -> int:
        return self.diag.shape[0]

    def matrix(self, x):
        return jnp.diag(self.diag).astype(jnp.result_type(x))

    def apply(self, x, z):
        return jnp.sqrt(self.diag).astype(z.dtype) * z


class Dense(AbstractDiffusion):
    """Constant dense ``D = L L^T`` stored as its factor ``L`` (dim, k).

    Build from a matrix with :meth:`Dense.from_matrix` (Cholesky when ``D`` is
    positive definite, a symmetric square root otherwise).
    """

    factor: Float[Array, "dim k"]
    is_constant = True

    def __init__(self, factor):
        self.factor = jnp.asarray(factor, dtype=float)

    @classmethod
    def from_matrix(cls, D) -> "Dense":
        D = np.asarray(D, dtype=np.float64)
        try:
            L = np.linalg.cholesky(D)
        except np.linalg.LinAlgError:
            w, V = np.linalg.eigh(D)
            L = V * np.sqrt(np.clip(w, 0.0, None))
        return cls(L)

    @property
    def dim(self) -> int:
        return self.factor.shape[0]

    @property
    def noise_dim(self) -> int:
        return self.factor.shape[1]

    def matrix(self, x):
        return (self.factor @ self.factor.T).astype(jnp.result_type(x))

    def apply(self, x, z):
        return self.factor.astype(z.dtype) @ z


class LowRankDiagonal(AbstractDiffusion):
    """``D = U U^T + diag(s)`` with ``U`` of shape (dim, rank) and ``s >= 0``.

    The shape of deep-network gradient noise (rank ~ 1 % of dim). The noise is
    applied as ``U z_1 + sqrt(s) * z_2`` -- two thin products, never a
    ``dim x dim`` matrix. ``diag=None`` means ``s = 0`` (pure low rank; then
    only ``rank`` normals are drawn per step).
    """

    factor: Float[Array, "dim rank"]
    diag: Optional[Float[Array, " dim"]]
    is_constant = True

    def __init__(self, factor, diag=None):
        self.factor = jnp.asarray(factor, dtype=float)
        self.diag = None if diag is None else jnp.asarray(diag, dtype=float)

    @property
    def dim(self) -> int:
        return self.factor.shape[0]

    @property
    def rank(self) -> int:
        return self.factor.shape[1]

    @property
    def noise_dim(self) -> int:
        return self.rank + (0 if self.diag is None else self.dim)

    def matrix(self, x):
        M = self.factor @ self.factor.T
        if self.diag is not None:
            M = M + jnp.diag(self.diag)
        return M.astype(jnp.result_type(x))

    def apply(self, x, z):
        r = self.rank
        out = self.factor.astype(z.dtype) @ z[:r]
        if self.diag is not None:
            out = out + jnp.sqrt(self.diag).astype(z.dtype) * z[r:]
        return out

    def mean_eigenvalue(self) -> float:
        tr = float(jnp.sum(self.factor**2))
        if self.diag is not None:
            tr += float(jnp.sum(self.diag))
        return tr / self.dim


def _chol2(D: Float[Array, "2 2"]) -> Float[Array, "2 2"]:
    """Closed-form Cholesky factor of a 2x2 SPD matrix (no LAPACK call)."""
    a = jnp.sqrt(D[0, 0])
    b = D[1, 0] / a
    c = jnp.sqrt(jnp.maximum(D[1, 1] - b * b, 0.0))
    zero = jnp.zeros_like(a)
    return jnp.stack([jnp.stack([a, zero]), jnp.stack([b, c])])


class StateDependent(AbstractDiffusion):
    """``D(x)`` given as a callable ``x (dim,) -> (dim, dim)`` (SPD).

    Noise by a per-particle factor: ``factor_fn(x)`` when given (any ``L`` with
    ``L L^T = D(x)``, e.g. a low-rank factor), the closed-form 2x2 Cholesky in
    two dimensions, a general Cholesky otherwise. ``div D`` by autodiff.
    """

    fn: Callable = eqx.field(static=True)
    _dim: int = eqx.field(static=True)
    factor_fn: Optional[Callable] = eqx.field(static=True, default=None)
    is_constant = False

    def __init__(self, fn: Callable, dim: int, factor_fn: Optional[Callable] = None):
        self.fn = fn
        self._dim = int(dim)
        self.factor_fn = factor_fn

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def noise_dim(self) -> int:
        if self.factor_fn is not None:
            shape = jax.eval_shape(self.factor_fn, jax.ShapeDtypeStruct((self._dim,), jnp.float32))
            return shape.shape[1]
        return self._dim

    def matrix(self, x):
        return self.fn(x)

    def factor(self, x):
        if self.factor_fn is not None:
            return self.factor_fn(x)
        D = self.fn(x)
        if self._dim == 2:
            return _chol2(D)
        return jnp.linalg.cholesky(D)

    def apply(self, x, z):
        return self.factor(x) @ z

    def mean_eigenvalue(self, x=None) -> float:
        x = jnp.zeros((self._dim,)) if x is None else x
        return float(jnp.trace(self.fn(x))) / self._dim


def as_diffusion(diffusion, dim: int, *, name: str = "diffusion") -> AbstractDiffusion:
    """Turn a user value into a noise model.

    Accepts an :class:`AbstractDiffusion`, a scalar ``c`` (``c I``), a vector
    (diagonal), a constant ``(dim, dim)`` SPD matrix, or a callable
    ``x -> D(x)``. Raises ``ValueError`` naming ``name`` on bad input.
    """
    from ._validate import check_spd

    if isinstance(diffusion, AbstractDiffusion):
        if diffusion.dim != dim:
            raise ValueError(f"{name}: dimension {diffusion.dim} does not match dim={dim}")
        return diffusion
    if callable(diffusion):
        out = jax.eval_shape(diffusion, jax.ShapeDtypeStruct((dim,), jnp.float32))
        if out.shape != (dim, dim):
            raise ValueError(
                f"{name}: callable must map x ({dim},) to D(x) ({dim}, {dim}), got shape {out.shape}"
            )
        return StateDependent(diffusion, dim)
    arr = np.asarray(diffusion, dtype=float)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains NaN or inf")
    if arr.ndim == 0:
        if arr <= 0:
            raise ValueError(f"{name}: scalar diffusion must be > 0, got {float(arr)}")
        return Isotropic(dim, float(arr))
    if arr.ndim == 1:
        if arr.shape[0] != dim:
            raise ValueError(f"{name}: diagonal has length {arr.shape[0]}, expected {dim}")
        if np.any(arr < 0):
            raise ValueError(f"{name}: diagonal entries must be >= 0")
        return Diagonal(arr)
    check_spd(arr, name, dim=dim)
    return Dense.from_matrix(arr)
