"""Problems: a loss gradient, a noise model, and (optionally) the A-type pair (Phi, Q).

Conventions (see ``docs/conventions.md``):

* Itô SDE (SGD's continuous limit, time ``t = k * lr``)::

      dx = -grad f(x) dt + sqrt(2 beta^-1 D(x)) dW

* A-type SDE (Chaudhari & Soatto 2018, Thm. 22)::

      dx = -(D + Q) grad Phi dt + sqrt(2 beta^-1 D) dW     (A-type integral)

  Its exact Itô conversion has drift ``-(D+Q) grad Phi + beta^-1 div(D+Q)``
  (row-wise divergence, see :mod:`sdesim.diffusion`), and its stationary
  density is ``exp(-beta Phi) / Z``. The two SDEs are the same process iff::

      grad f = (D + Q) grad Phi - beta^-1 div(D + Q)

  which holds at one temperature ``beta_inv_ref`` for problems whose f was
  built from (Phi, Q) (``None`` = holds at every temperature, e.g. D = I, Q = 0).

* Leftover force ``j = -grad f + D grad Phi - beta^-1 div D``; stationary current
  ``J = j rho_ss``.
"""

from __future__ import annotations

import abc
from typing import Callable, Optional

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._diffusion import AbstractDiffusion, matrix_divergence

__all__ = ["AbstractProblem", "Custom", "OrnsteinUhlenbeck", "RotatingDoubleWell", "AnisotropicDoubleWell", "FORMS"]

#: Drift interpretations understood by :meth:`AbstractProblem.drift`.
FORMS = ("ito", "atype", "atype_naive")


class AbstractProblem(eqx.Module):
    """An SGD-as-SDE problem. Subclasses provide ``grad_f`` and ``diffusion``.

    Problems that know their potential also provide ``phi`` and ``q_matrix``
    (then ``has_atype`` is True and ``form="atype"`` is available).
    """

    diffusion: eqx.AbstractVar[AbstractDiffusion]

    @property
    def dim(self) -> int:
        return self.diffusion.dim

    @abc.abstractmethod
    def grad_f(self, x: Float[Array, " dim"]) -> Float[Array, " dim"]: ...

    # -- A-type data (optional) -------------------------------------------
    @property
    def has_atype(self) -> bool:
        return False

    @property
    def beta_inv_ref(self) -> Optional[float]:
        """Temperature at which the Itô and A-type forms are the same process."""
        return None

    def phi(self, x: Float[Array, " dim"]) -> Float[Array, ""]:
        raise NotImplementedError(f"{type(self).__name__} does not carry a potential Phi")

    def q_matrix(self, x: Float[Array, " dim"]) -> Float[Array, "dim dim"]:
        return jnp.zeros((self.dim, self.dim), dtype=jnp.result_type(x))

    # -- derived quantities --------------------------------------------------
    def diffusion_matrix(self, x: Float[Array, " dim"]) -> Float[Array, "dim dim"]:
        return self.diffusion.matrix(x)

    def grad_phi(self, x: Float[Array, " dim"]) -> Float[Array, " dim"]:
        return jax.grad(self.phi)(x)

    def div_q(self, x: Float[Array, " dim"]) -> Float[Array, " dim"]:
        return matrix_divergence(self.q_matrix, x)

    def drift(self, x: Float[Array, " dim"], beta_inv, form: str = "ito") -> Float[Array, " dim"]:
        """Itô drift ``b(x)`` of the chosen form (``form`` is static)."""
        if form == "ito":
            return -self.grad_f(x)
        if form in ("atype", "atype_naive"):
            M = self.diffusion.matrix(x) + self.q_matrix(x)
            b = -M @ self.grad_phi(x)
            if form == "atype":
                b = b + beta_inv * (self.diffusion.divergence(x) + self.div_q(x))
            return b
        raise ValueError(f"form: expected one of {FORMS}, got {form!r}")

    def atype_residual(self, x: Float[Array, " dim"], beta_inv) -> Float[Array, " dim"]:
        """``grad f - [(D+Q) grad Phi - beta^-1 div(D+Q)]``; zero when the forms agree."""
        return self.grad_f(x) + self.drift(x, beta_inv, "atype")

    def leftover_force(self, x: Float[Array, " dim"], beta_inv) -> Float[Array, " dim"]:
        """``j = -grad f + D grad Phi - beta^-1 div D`` (Lemma 7; docs/paper.md §1)."""
        D = self.diffusion.matrix(x)
        return -self.grad_f(x) + D @ self.grad_phi(x) - beta_inv * self.diffusion.divergence(x)


class Custom(AbstractProblem):
    """A problem from user callables. Build it with :func:`sdesim.problems.custom`."""

    grad_f_fn: Callable = eqx.field(static=True)
    diffusion: AbstractDiffusion
    phi_fn: Optional[Callable] = eqx.field(static=True, default=None)
    q_fn: Optional[Callable] = eqx.field(static=True, default=None)
    ref_beta_inv: Optional[float] = eqx.field(static=True, default=None)

    def grad_f(self, x):
        return self.grad_f_fn(x)

    @property
    def has_atype(self) -> bool:
        return self.phi_fn is not None

    @property
    def beta_inv_ref(self):
        return self.ref_beta_inv

    def phi(self, x):
        if self.phi_fn is None:
            return super().phi(x)
        return self.phi_fn(x)

    def q_matrix(self, x):
        if self.q_fn is None:
            return super().q_matrix(x)
        return self.q_fn(x)


class OrnsteinUhlenbeck(AbstractProblem):
    """``grad f = F x`` with constant ``D`` (an OU process); ``F`` need not be symmetric.

    ``Phi = x^T U x / 2`` and ``Q`` from the decomposition ``F = (D + Q) U``
    (Lemma 20) are attached when ``F`` is stable, so ``form="atype"`` works.
    """

    F: Float[Array, "dim dim"]
    diffusion: AbstractDiffusion
    U: Optional[Float[Array, "dim dim"]]
    Q: Optional[Float[Array, "dim dim"]]

    def grad_f(self, x):
        return self.F.astype(x.dtype) @ x

    @property
    def has_atype(self) -> bool:
        return self.U is not None

    def phi(self, x):
        # U = beta^-1 S^-1 does not depend on beta (S is linear in beta^-1).
        return 0.5 * x @ (self.U.astype(x.dtype) @ x)

    def q_matrix(self, x):
        return self.Q.astype(x.dtype)


class RotatingDoubleWell(AbstractProblem):
    r"""Example 19 of Chaudhari & Soatto (2018): a double well with rotation, ``D = I``.

    ``Phi(x) = (x1^2 - 1)^2 / 4 + x2^2 / 2``, ``J_ss(x) = exp(-r^4/4) (-x2, x1)``,
    ``j = lam exp(Phi) J_ss``, drift ``-grad f = -grad Phi + j`` (beta = 1).

    The antisymmetric ``Q = q(x) [[0, 1], [-1, 0]]`` is recovered from a stream
    function of the stationary current: with ``rho = exp(-Phi)`` (unnormalised)
    we need ``J_i = sum_j d_j (Q_ij rho)``, i.e. ``J = (d_2 psi, -d_1 psi)`` for
    ``psi = q rho``. With ``s = r^2``, ``psi = g(s)`` and ``g'(s) = -(lam/2) exp(-s^2/4)``::

        psi = (lam sqrt(pi) / 2) erfc(r^2 / 2),   q = psi exp(Phi)

    Then ``grad f = (I + Q) grad Phi - div Q`` exactly at beta = 1
    (``beta_inv_ref = 1``), so both forms have stationary density exp(-Phi).
    """

    lam: Float[Array, ""]
    diffusion: AbstractDiffusion

    @property
    def beta_inv_ref(self):
        return 1.0

    @property
    def has_atype(self) -> bool:
        return True

    def phi(self, x):
        return (x[0] ** 2 - 1.0) ** 2 / 4.0 + x[1] ** 2 / 2.0

    def _phi_minus_r4(self, x):
        # Phi - r^4/4, simplified so it never overflows: bounded above by 1/4.
        x1s, x2s = x[0] ** 2, x[1] ** 2
        return (1.0 - 2.0 * x1s) / 4.0 + x2s / 2.0 - x1s * x2s / 2.0 - x2s**2 / 4.0

    def rotation(self, x):
        """``j(x) = lam exp(Phi - r^4/4) (-x2, x1)``."""
        w = self.lam * jnp.exp(self._phi_minus_r4(x))
        return w * jnp.stack([-x[1], x[0]])

    def grad_f(self, x):
        gphi = jnp.stack([x[0] * (x[0] ** 2 - 1.0), x[1]])
        return gphi - self.rotation(x)

    def q_matrix(self, x):
        s = x[0] ** 2 + x[1] ** 2
        # erfc(s/2) exp(Phi) = erfcx(s/2) exp(Phi - s^2/4); erfcx by a stable branch
        q = 0.5 * self.lam * jnp.sqrt(jnp.pi) * _erfcx(s / 2.0) * jnp.exp(self._phi_minus_r4(x))
        zero = jnp.zeros_like(q)
        return jnp.stack([jnp.stack([zero, q]), jnp.stack([-q, zero])])


def _erfcx(z):
    """Scaled complementary error function ``exp(z^2) erfc(z)`` for z >= 0, stable.

    Direct formula below a dtype-dependent switch (before erfc underflows), the
    asymptotic series above it (relative truncation error < 1e-9 in float32's
    range z >= 9 and < 1e-20 in float64's range z >= 25).
    """
    cut = 25.0 if jnp.result_type(z) == jnp.float64 else 9.0
    small = z < cut
    zs = jnp.where(small, z, 0.0)
    direct = jnp.exp(zs * zs) * jax.scipy.special.erfc(zs)
    zl = jnp.where(small, cut, z)
    iz2 = 1.0 / (2.0 * zl * zl)
    # 1/(z sqrt(pi)) sum_k (-1)^k (2k-1)!! / (2 z^2)^k
    series = 1.0 - iz2 + 3.0 * iz2**2 - 15.0 * iz2**3 + 105.0 * iz2**4
    asym = series / (zl * jnp.sqrt(jnp.pi))
    return jnp.where(small, direct, asym)


class AnisotropicDoubleWell(AbstractProblem):
    r"""2D problem with state-dependent, non-diagonal ``D(x)`` and state-dependent ``Q(x)``.

    Built backwards from a chosen potential so that its stationary density is
    known exactly at ``beta_inv_ref``::

        Phi(x)  = (x1^2 - 1)^2 / 4 + x2^2 / 2 + a x1 x2 / 2
        D(x)    = [[1 + 0.5 tanh(x2)^2,  0.4 tanh(x1)],
                   [0.4 tanh(x1),        0.6 + 0.3 x1^2 / (1 + x1^2)]]
        Q(x)    = q(x) [[0, 1], [-1, 0]],  q(x) = q0 + q1 sin(x1) cos(x2)
        grad f  = (D + Q) grad Phi - beta_ref^-1 div(D + Q)

    ``D`` is SPD everywhere (``det D >= 0.6 - 0.16 > 0``). Because ``grad f``
    contains ``beta_ref^-1 div(D+Q)``, the minima of ``f`` differ from those
    of ``Phi`` -- the shift is linear in ``beta_ref^-1`` (Thm. 22, Remark 26).
    """

    beta_inv: Float[Array, ""]
    a: Float[Array, ""]
    q0: Float[Array, ""]
    q1: Float[Array, ""]
    diffusion: AbstractDiffusion

    @property
    def beta_inv_ref(self):
        return float(self.beta_inv)

    @property
    def has_atype(self) -> bool:
        return True

    def phi(self, x):
        return (x[0] ** 2 - 1.0) ** 2 / 4.0 + x[1] ** 2 / 2.0 + 0.5 * self.a * x[0] * x[1]

    def q_matrix(self, x):
        q = self.q0 + self.q1 * jnp.sin(x[0]) * jnp.cos(x[1])
        zero = jnp.zeros_like(q)
        return jnp.stack([jnp.stack([zero, q]), jnp.stack([-q, zero])])

    def grad_f(self, x):
        """``(D + Q) grad Phi - beta_ref^-1 div(D + Q)`` written out (derivatives by hand).

        With ``t_i = tanh x_i``, ``(div M)_i = sum_j d_j M_ij``:
        ``div D = (0, 0.4 (1 - t_1^2))``, ``div Q = (d_2 q, -d_1 q)
        = (-q1 sin x1 sin x2, -q1 cos x1 cos x2)``. Plain elementwise
        arithmetic, so a vmapped ensemble compiles to straight vector code
        (the autodiff form of the same identity is 6x slower on CPU);
        ``tests/test_problems.py`` checks it against autodiff to 1e-10.
        """
        x1, x2 = x[0], x[1]
        t1, t2 = jnp.tanh(x1), jnp.tanh(x2)
        s1, c1, s2, c2 = jnp.sin(x1), jnp.cos(x1), jnp.sin(x2), jnp.cos(x2)
        x1s = x1 * x1
        d11, d12, d22 = 1.0 + 0.5 * t2 * t2, 0.4 * t1, 0.6 + 0.3 * x1s / (1.0 + x1s)
        a, q0, q1 = (v.astype(x.dtype) for v in (self.a, self.q0, self.q1))
        b = self.beta_inv.astype(x.dtype)
        q = q0 + q1 * s1 * c2
        g1, g2 = x1 * (x1s - 1.0) + 0.5 * a * x2, x2 + 0.5 * a * x1
        f1 = d11 * g1 + (d12 + q) * g2 + b * q1 * s1 * s2
        f2 = (d12 - q) * g1 + d22 * g2 - b * (0.4 * (1.0 - t1 * t1) - q1 * c1 * c2)
        return jnp.stack([f1, f2])


def anisotropic_matrix(x):
    """``D(x)`` of :class:`AnisotropicDoubleWell`."""
    t1, t2 = jnp.tanh(x[0]), jnp.tanh(x[1])
    x1s = x[0] ** 2
    return jnp.stack(
        [
            jnp.stack([1.0 + 0.5 * t2**2, 0.4 * t1]),
            jnp.stack([0.4 * t1, 0.6 + 0.3 * x1s / (1.0 + x1s)]),
        ]
    )
