r"""Solvers for :func:`sdesim.simulate`: one ``equinox.Module`` per scheme.

A solver advances the state ``x (dim, n)`` of a block of particles (laid out
particle-last, see :func:`sdesim.simulate`) by one step ``h = dt`` of

    dx = b(x) dt + sqrt(2 beta^-1 D(x)) dW,     L(x) L(x)^T = D(x),

and owns its noise: which stream of :mod:`sdesim.noise` it reads and how the
step's noise variables ``xi (noise_dim, n)`` are drawn. The compiled loop
calls ``state = solver.init(keys, pidx, s0, noise_dim, dtype)`` at the start of
every stretch of steps and ``x, state = solver.step(x, s, state, ...)`` for
step ``s``; nothing else in the loop depends on the scheme.

``scale = sqrt(2 beta^-1 h)``, so ``scale * L(x) xi`` has covariance
``2 beta^-1 D h``.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar

import equinox as eqx
import jax

from . import _noise

__all__ = ["AbstractSolver", "Euler", "WeakEuler", "Heun", "Diffrax", "as_solver", "SOLVER_NAMES"]


class AbstractSolver(eqx.Module):
    """A one-step scheme with its noise. Subclasses state their orders and noise requirements.

    Attributes (class constants):
        strong_order, weak_order: convergence orders (``None`` where none holds).
        stream: the noise stream of :mod:`sdesim.noise` (``"gaussian"`` or ``"two_point"``).
        additive_noise_only: the scheme's order needs ``D`` constant.
        name: the config-file string (``simulation.method``).
    """

    strong_order: ClassVar[Any] = None
    weak_order: ClassVar[Any] = None
    stream: ClassVar[str] = "gaussian"
    additive_noise_only: ClassVar[bool] = False
    name: ClassVar[str] = ""

    def init(self, keys, pidx, s0, noise_dim: int, dtype):
        """Noise state carried through a stretch of steps starting at step ``s0`` (default: none)."""
        return ()

    def noise(self, keys, pidx, s, state, noise_dim: int, dtype):
        """``(xi (noise_dim, n), state)`` for step ``s``."""
        raise NotImplementedError

    def step(self, x, s, state, *, drift: Callable, noise: Callable, dt, scale, keys, pidx, noise_dim: int, dtype):
        """One step: ``(x', state')``. ``drift(x)`` and ``noise(x, xi) = L(x) xi`` act on ``(dim, n)``."""
        xi, state = self.noise(keys, pidx, s, state, noise_dim, dtype)
        return x + drift(x) * dt + scale * noise(x, xi), state


class Euler(AbstractSolver):
    """Euler--Maruyama with Gaussian increments: ``x' = x + b(x) h + sqrt(2 beta^-1 h) L(x) xi``.

    Strong order 1/2 (1 for additive noise), weak order 1; any ``D(x)``.
    Noise: ``xi ~ N(0, I)`` from the Gaussian stream, one Threefry call per two
    normals.
    """

    strong_order: ClassVar[Any] = 0.5
    weak_order: ClassVar[Any] = 1
    name: ClassVar[str] = "euler"

    def noise(self, keys, pidx, s, state, noise_dim, dtype):
        return _noise.normals(keys, pidx, s, noise_dim, dtype), state


class Heun(AbstractSolver):
    """Stochastic Heun for additive noise: predictor ``x~ = x + b h + g``, ``x' = x + (b(x) + b(x~)) h/2 + g``.

    ``g = sqrt(2 beta^-1 h) L xi`` with Gaussian ``xi``. Weak order 2 and strong
    order 1 when ``D`` is constant (refused otherwise by :func:`sdesim.simulate`).
    """

    strong_order: ClassVar[Any] = 1
    weak_order: ClassVar[Any] = 2
    additive_noise_only: ClassVar[bool] = True
    name: ClassVar[str] = "heun"

    def noise(self, keys, pidx, s, state, noise_dim, dtype):
        return _noise.normals(keys, pidx, s, noise_dim, dtype), state

    def step(self, x, s, state, *, drift, noise, dt, scale, keys, pidx, noise_dim, dtype):
        xi, state = self.noise(keys, pidx, s, state, noise_dim, dtype)
        g = scale * noise(x, xi)
        b = drift(x)
        xt = x + b * dt + g
        return x + 0.5 * (b + drift(xt)) * dt + g, state


class WeakEuler(AbstractSolver):
    """Simplified weak Euler: Euler's update with two-point ``xi = +-1`` (probability 1/2 each).

    Weak order 1 (mean 0, variance 1 and zero odd moments are all the
    increments need; Kloeden & Platen §14.1); no strong order -- paths are
    not Brownian. Noise: one bit per variable from the two-point stream, 32
    steps per Threefry word (the words of a 32-step block are the state).
    """

    weak_order: ClassVar[Any] = 1
    stream: ClassVar[str] = "two_point"
    name: ClassVar[str] = "weak_euler"

    def init(self, keys, pidx, s0, noise_dim, dtype):
        return _noise.rademacher_words(keys, pidx, s0 // _noise.RADEMACHER_BLOCK)

    def noise(self, keys, pidx, s, state, noise_dim, dtype):
        B = _noise.RADEMACHER_BLOCK
        state = jax.lax.cond(s % B == 0, lambda: _noise.rademacher_words(keys, pidx, s // B), lambda: state)
        return _noise.rademacher_signs(state, s, noise_dim, dtype), state


class Diffrax(AbstractSolver):
    """Any diffrax SDE solver (default ``diffrax.Euler()``) on a per-particle ``VirtualBrownianTree``.

    Orders as the wrapped solver's. ``adaptive=True`` uses a PID step-size
    controller (needs a solver with an error estimate). Its noise comes from
    diffrax's Brownian tree keyed by the global particle index, reproducible
    by seed but not equal to the native stream. Runs outside sdesim's compiled
    loop, so the loop's options (``keep="stats"``, ``checkpoint_every``,
    ``resume``, ``chunk_size``, ``block_size``, ``devices``, ``out_array``,
    ``on_piece``) are refused with it.
    """

    solver: Any = None
    adaptive: bool = False
    name: ClassVar[str] = "diffrax"


#: ``simulation.method`` strings of the config file and the solvers they mean.
SOLVER_NAMES = {"euler": Euler, "weak_euler": WeakEuler, "heun": Heun, "diffrax": Diffrax}


def as_solver(method) -> AbstractSolver:
    """A solver from a name (``"euler"``, ``"weak_euler"``, ``"heun"``, ``"diffrax"``) or a solver object."""
    if isinstance(method, AbstractSolver):
        return method
    if isinstance(method, str) and method in SOLVER_NAMES:
        return SOLVER_NAMES[method]()
    raise ValueError(f"method: expected one of {tuple(SOLVER_NAMES)} or an sdesim solver "
                     f"(sdesim.Euler(), WeakEuler(), Heun(), Diffrax(solver)), got {method!r}")
