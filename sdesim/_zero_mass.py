r"""The A-type SDE by its definition: the zero-mass limit of an underdamped system.

Theorem 22 (docs/paper.md) reads ``dx = -(D + Q) grad Phi dt + sqrt(2 beta^-1 D) dW``
with Ao's A-type integral, *defined* (Ao; Yuan & Ao 2012) as the ``m -> 0``
limit of::

    dx = v dt
    m dv = -(S + A) v dt - grad Phi(x) dt + sqrt(2 beta^-1 S) dW,
    (S + A)^-1 = D + Q,  S = S^T,  A = -A^T          (both may depend on x)

Facts used and tested here (derivations in ``docs/potential.md``):

* **Exact at every m > 0.** The Gibbs law
  ``rho(x, v) ∝ exp(-beta (Phi(x) + m |v|^2 / 2))`` is stationary for any
  ``S(x)`` and ``A(x)``: the Hamiltonian part preserves it, the friction
  ``-(S+A) v`` balances the noise ``2 beta^-1 S`` (``S`` is the symmetric part
  of the friction -- "noise matched to S"), and the antisymmetric ``A`` does
  no work (``v^T A v = 0``). Hence x ~ exp(-beta Phi), v ~ N(0, beta^-1/m I),
  x and v independent, and the stationary *x-current* ``E[v | x] rho(x)`` is
  exactly **zero** at every m.
* **Only as m -> 0.** The x-process converges (Smoluchowski--Kramers with
  state-dependent friction, Hottovy et al. 2015) to the Itô SDE with drift
  ``-(D+Q) grad Phi + beta^-1 div(D+Q)`` (row-wise divergence) and diffusion
  ``(D+Q) 2 beta^-1 S (D+Q)^T = 2 beta^-1 D`` -- the Itô conversion of the
  A-type SDE (``form="atype"``), whose stationary current
  ``J = beta^-1 div(Q rho)`` is **not** zero. The limit is singular for the
  instantaneous current and for the unwrapped winding angle (their mean is
  zero at every m > 0: fast small velocity loops around the centre carry the
  difference; the winding angle is not uniformly integrable), so convergence
  is measured on a two-time statistic that is continuous in law
  (:func:`sdesim.analysis.lag_wedge`):

      L(tau) = E[ x(t) ∧ x(t + tau) ],   a ∧ b = a_1 b_2 - a_2 b_1

  (the antisymmetric part of the lag-tau cross-covariance; positive for
  counter-clockwise circulation). ``L_m(tau) -> L_0(tau)`` with an ``O(m)``
  error for fixed ``tau`` (``>> m``).

Integrator (:func:`simulate_zero_mass`): a BAOAB splitting with an *exact*
Ornstein--Uhlenbeck step for the matrix friction::

    B: v += -(h / 2m) grad Phi(x)        A: x += (h/2) v
    O: v  = E v + chol(beta^-1/m (I - E E^T)) xi,   E = exp(-(S+A)(x) h / m)
    A: x += (h/2) v                       B: v += -(h / 2m) grad Phi(x)

The O step leaves N(0, beta^-1/m I) exactly invariant at any ``x``, so the
velocity law is exact for any step; the x-dynamics need ``h`` a fraction of
``m / |S + A|`` (the noise-induced drift comes from the velocity sampling
the varying friction on the ``m`` time scale). Noise follows the randomness
contract of :mod:`sdesim.noise` (initial velocities use step index 2^32 - 1);
the run is float64 when JAX's x64 mode is on, and then so are its normals
(52-bit uniforms, tails to 8.2 sigma). There is no divergence bookkeeping:
snapshots are returned as computed.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from . import _noise
from ._diffusion import _chol2
from ._problem import AbstractProblem
from ._validate import check_initial_state, check_positive, check_positive_int, check_save_every

__all__ = ["ZeroMassEnsemble", "simulate_zero_mass"]

_INIT_STEP = 0xFFFFFFFF


@dataclasses.dataclass(frozen=True)
class ZeroMassEnsemble:
    """Result of :func:`simulate_zero_mass`, frozen; field names as :class:`sdesim.Ensemble`'s.

    Attributes:
        x: positions ``(n_saved, n_particles, dim)``; the initial state IS the
           first snapshot (``includes_initial`` is True).
        v: velocities, same shape.
        t: times ``(n_saved,)``.
        finite: ``(n_particles,)`` bool, False for particles with a non-finite
           position or velocity at some snapshot; ``n_diverged`` counts them.
    """

    x: np.ndarray
    v: np.ndarray
    t: np.ndarray
    mass: float
    dt: float
    beta_inv: float
    seed: int

    #: The initial state is the first snapshot.
    includes_initial = True

    @property
    def finite(self) -> np.ndarray:
        ok = np.isfinite(self.x).all(axis=(0, 2)) & np.isfinite(self.v).all(axis=(0, 2))
        return np.asarray(ok)

    @property
    def n_diverged(self) -> int:
        return int((~self.finite).sum())


def _expm_neg(G, s):
    """``exp(-G s)``: closed form for 2x2 (stable for large ``s``), Padé otherwise."""
    if G.shape != (2, 2):
        return jax.scipy.linalg.expm(-G * s)
    M = -G * s
    half = 0.5 * (M[0, 0] + M[1, 1])
    N = M - half * jnp.eye(2, dtype=M.dtype)
    delta = N[0, 0] ** 2 + N[0, 1] * N[1, 0]  # N @ N = delta I
    r = jnp.sqrt(jnp.abs(delta))
    rs = jnp.where(r > 1e-6, r, 1.0)
    # delta >= 0: e^half cosh r, e^half sinh(r)/r  written without overflow
    ep, em = jnp.exp(half + r), jnp.exp(half - r)
    c_pos = 0.5 * (ep + em)
    s_pos = jnp.where(r > 1e-6, 0.5 * (ep - em) / rs, jnp.exp(half) * (1.0 + delta / 6.0))
    eh = jnp.exp(half)
    c_neg = eh * jnp.cos(r)
    s_neg = jnp.where(r > 1e-6, eh * jnp.sin(r) / rs, eh * (1.0 + delta / 6.0))
    c = jnp.where(delta >= 0, c_pos, c_neg)
    sc = jnp.where(delta >= 0, s_pos, s_neg)
    return c * jnp.eye(2, dtype=M.dtype) + sc * N


def _chol(C):
    if C.shape == (2, 2):
        return _chol2(C)
    return jnp.linalg.cholesky(C)


def _friction(problem, x):
    """``Gamma = (D + Q)^-1`` at x (its symmetric part is S, antisymmetric A)."""
    M = problem.diffusion_matrix(x) + problem.q_matrix(x)
    return jnp.linalg.inv(M)


def _run(problem, x, v, kd, beta_inv, mass, h, every, *, n_out):
    dim = x.shape[1]
    eye = jnp.eye(dim, dtype=x.dtype)
    kick = h / (2.0 * mass)
    vscale = beta_inv / mass

    def one_step(xp, vp, key, s):
        vp = vp - kick * problem.grad_phi(xp)
        xp = xp + 0.5 * h * vp
        E = _expm_neg(_friction(problem, xp), h / mass)
        C = vscale * (eye - E @ E.T)
        C = 0.5 * (C + C.T)
        z = _noise.step_normals(key, s, dim, x.dtype)
        vp = E @ vp + _chol(C) @ z
        xp = xp + 0.5 * h * vp
        vp = vp - kick * problem.grad_phi(xp)
        return xp, vp

    step_all = jax.vmap(one_step, in_axes=(0, 0, 0, None))

    def outer(carry, i):
        def body(k, c):
            xx, vv = c
            s = (i * every + k.astype(jnp.uint32)).astype(jnp.uint32)
            return step_all(xx, vv, kd, s)

        carry = jax.lax.fori_loop(jnp.uint32(0), every, body, carry)
        return carry, carry

    _, (xs, vs) = jax.lax.scan(outer, (x, v), jnp.arange(n_out, dtype=jnp.uint32))
    return xs, vs


_run_jit = eqx.filter_jit(_run)


def simulate_zero_mass(
    problem: AbstractProblem,
    *,
    beta_inv: float,
    mass: float,
    n_particles: int,
    n_steps: int,
    dt: float,
    seed: int = 0,
    x0=None,
    v0=None,
    save_every: Optional[int] = None,
) -> ZeroMassEnsemble:
    """Integrate ``m x'' = -(S + A) x' - grad Phi + sqrt(2 beta^-1 S) xi`` with ``(S+A)^-1 = D+Q``.

    Args:
        problem: a problem with ``has_atype`` (``phi``, ``q_matrix``); ``D(x)``
            and ``Q(x)`` may depend on x.
        beta_inv: temperature ``beta^-1``.
        mass: ``m > 0``; the A-type SDE is the limit ``m -> 0``.
        n_particles, n_steps, dt: ensemble size, steps, step ``h`` (take
            ``h <~ m / 10`` for the x-dynamics; the velocity law is exact).
        seed: noise seed (noise depends only on seed, particle, step).
        x0: ``(dim,)`` or ``(n_particles, dim)`` (a scalar for ``dim == 1``); default zeros.
        v0: same shapes; default Maxwell ``N(0, beta^-1/m I)`` (the exact
            stationary velocity law).
        save_every: steps between snapshots (default: only initial and final).

    Returns:
        :class:`ZeroMassEnsemble` with ``x``, ``v`` of shape
        ``(n_saved, n_particles, dim)`` including the initial state.
    """
    if not isinstance(problem, AbstractProblem):
        raise ValueError("problem: expected an sdesim problem")
    if not problem.has_atype:
        raise ValueError(f"problem: {type(problem).__name__} carries no Phi and Q (has_atype is False)")
    beta_inv = check_positive(beta_inv, "beta_inv")
    mass = check_positive(mass, "mass")
    dt = check_positive(dt, "dt")
    n_particles = check_positive_int(n_particles, "n_particles")
    n_steps = check_positive_int(n_steps, "n_steps")
    every = check_save_every(save_every, n_steps)
    dim = problem.dim
    dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32

    def state(val, name):
        return jnp.asarray(check_initial_state(val, name, n_particles, dim), dtype)

    x = jnp.zeros((n_particles, dim), dtype) if x0 is None else state(x0, "x0")
    kd = _noise.particle_keys(int(seed), 0, n_particles)
    if v0 is None:
        z = jax.vmap(lambda k: _noise.step_normals(k, jnp.uint32(_INIT_STEP), dim, dtype))(kd)
        v = z * jnp.sqrt(jnp.asarray(beta_inv / mass, dtype))
    else:
        v = state(v0, "v0")
    xs, vs = _run_jit(
        problem, x, v, kd, jnp.asarray(beta_inv, dtype), jnp.asarray(mass, dtype),
        jnp.asarray(dt, dtype), jnp.asarray(every, jnp.uint32), n_out=n_steps // every,
    )
    X = np.concatenate([np.asarray(x)[None], np.asarray(xs)])
    V = np.concatenate([np.asarray(v)[None], np.asarray(vs)])
    t = dt * every * np.arange(X.shape[0])
    return ZeroMassEnsemble(x=X, v=V, t=t, mass=mass, dt=dt, beta_inv=beta_inv, seed=int(seed))
