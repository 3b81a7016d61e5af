r"""Limit cycles of a deterministic flow ``dx/dt = F(x)``: Poincaré return map.

:func:`trace_limit_cycle` integrates the flow from many initial points at once
(``jax.vmap`` over diffrax solves, float64: Tsit5 at ``transient_rtol`` for
the transient, Dopri8 at tight ``rtol``/``atol`` for the returns) and
classifies where each one ends up:

``"fixed_point"``
    the flow stops: ``|F(x)| < fp_tol`` during the transient, or the transient
    ends within ``1e-3 (1 + |x|)`` of a zero ``x*`` of ``F`` (Newton) whose
    linearisation contracts, ``|expm(DF(x*) t_transient)| < 1e-3``; the point
    is polished by Newton's method and the eigenvalues of the Jacobian ``DF``
    there are reported (``fixed_point_eigvals``).
``"cycle"``
    a closed orbit: the Poincaré return map has converged (see below).
``"spiral"``
    the orbit keeps turning but the returns move monotonically towards a
    fixed point inside it (e.g. a weak focus, where convergence is algebraic
    and no finite transient reaches ``fp_tol``); ``fixed_point`` is that point.
``"diverged"``
    ``|x|`` exceeded ``bound`` or became non-finite.
``"undecided"``
    none of the above within the time budget (e.g. a slowly attracting
    cycle; raise ``t_transient``).

Poincaré section and return map
-------------------------------
After the transient ``[0, t_transient]`` the trajectory is at ``p_0``. The
section is the hyperplane ``Sigma = {x : n . (x - p_0) = 0}`` with
``n = F(p_0) / |F(p_0)|`` (transversal to the flow at ``p_0``). One return
``p -> P(p)`` is two event-terminated solves: first until the orbit crosses
``Sigma`` downward (``n . (x - p_0)`` from + to -, the far side of the loop),
then until it crosses upward again; the crossing time is located by Newton's
method on the dense interpolant (``diffrax.Event`` + ``optimistix.Newton``)
and polished by one exact Newton step along the flow. The return time is
``T(p)``. ``n_returns`` returns give ``p_1..p_K``; the orbit is a *cycle* when

    |p_K - p_{K-1}| <= cycle_tol * diam,   |T_K - T_{K-1}| <= cycle_tol * T_K

(``diam`` = the largest distance between ``p_0`` and a far-side crossing).
``period = T_K``. One more solve from ``p_K`` over ``[0, T_K]`` integrates the
variational equation ``dM/dt = DF(x(t)) M``, ``M(0) = I`` alongside, giving the
monodromy matrix ``M = M(T)`` and the resampled orbit (``n_orbit`` points equally
spaced in time) with

    center = (1/T) int_0^T x dt,   mean_radius = (1/T) int_0^T |x - center| dt.

Floquet multipliers (stability): the derivative of the return map on
``Sigma`` is ``DP = (I - v n^T / (n . v)) M`` with ``v = F(p_K)``; ``DP v = 0``
(``M v = v`` on a periodic orbit) and its other ``dim - 1`` eigenvalues are the
non-trivial Floquet multipliers. ``stable`` means all ``|mu| < 1 - 1e-6``; a
multiplier ``|mu| = 1`` within that margin means a neutral orbit (one of a
continuous family, as for a centre or a Hamiltonian flow). In 2D,
``mu = exp(int_0^T div F dt)`` (Liouville), which the tests check.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Union

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._problem import AbstractProblem
from .._validate import check_finite_array, check_positive, check_positive_int

__all__ = ["LimitCycleResult", "trace_limit_cycle", "STATUSES"]

STATUSES = ("fixed_point", "cycle", "spiral", "diverged", "undecided")
_FP, _CYCLE, _SPIRAL, _DIV, _UND = range(5)
#: initial points per compiled call when ``batch_size`` is None
_MAX_BATCH = 16384


@dataclasses.dataclass(frozen=True)
class LimitCycleResult:
    """What :func:`trace_limit_cycle` found, one row per initial point.

    Shapes for ``n`` initial points in ``dim`` dimensions (the leading ``n``
    axis is dropped when ``x0`` was a single point ``(dim,)``):

    Attributes:
        x0: ``(n, dim)`` initial points.
        status: ``(n,)`` one of :data:`STATUSES`.
        is_cycle: ``(n,)`` bool, ``status == "cycle"``.
        period: ``(n,)`` period ``T`` (NaN unless a cycle).
        orbit: ``(n, n_orbit, dim)`` one period resampled uniformly in time
            (cycles; for ``"spiral"`` the last, nearly closed, revolution; NaN otherwise).
        center, mean_radius: ``(n, dim)``, ``(n,)`` time averages over ``orbit``.
        floquet: ``(n, dim-1)`` complex non-trivial Floquet multipliers (cycles).
        stable: ``(n,)`` bool, every ``|mu| < 1 - 1e-6`` (cycles) or every
            Jacobian eigenvalue with negative real part (fixed points).
        fixed_point: ``(n, dim)`` the fixed point (``"fixed_point"`` and
            ``"spiral"``; NaN otherwise).
        fixed_point_eigvals: ``(n, dim)`` complex eigenvalues of ``DF`` there.
        return_points: ``(n, n_returns, dim)`` Poincaré returns ``p_1..p_K``.
        return_times: ``(n, n_returns)`` return times ``T_1..T_K``.
        x_transient: ``(n, dim)`` the point reached at the end of the transient.
        rotation_number: ``(n,)`` turns per iterate (map only, ``lr`` given;
            None for the flow).
        curve_spread: ``(n,)`` relative RMS residual of the Fourier fit
            ``r(theta)`` of the iterates (map only).
        n_iter: ``(n,)`` iterates of the map done (map only).
        lr: the step of the map, or None for the flow.
    """

    x0: np.ndarray
    status: np.ndarray
    is_cycle: np.ndarray
    period: np.ndarray
    orbit: np.ndarray
    center: np.ndarray
    mean_radius: np.ndarray
    floquet: np.ndarray
    stable: np.ndarray
    fixed_point: np.ndarray
    fixed_point_eigvals: np.ndarray
    return_points: np.ndarray
    return_times: np.ndarray
    x_transient: np.ndarray
    rotation_number: Optional[np.ndarray] = None
    curve_spread: Optional[np.ndarray] = None
    n_iter: Optional[np.ndarray] = None
    lr: Optional[float] = None

    def summary(self) -> dict:
        """JSON-friendly counts and the distinct cycles / fixed points found."""
        st = np.atleast_1d(self.status)
        out = {"n": int(st.size), "counts": {s: int(np.sum(st == s)) for s in STATUSES}}
        cyc = np.atleast_1d(self.is_cycle)
        if cyc.any():
            per = np.atleast_1d(self.period)[cyc]
            rad = np.atleast_1d(self.mean_radius)[cyc]
            mu = np.abs(np.atleast_2d(self.floquet)[cyc]).max(axis=1) if self.floquet.size else np.ones(per.size)
            out["cycles"] = {
                "period_median": float(np.median(per)), "period_min": float(per.min()), "period_max": float(per.max()),
                "mean_radius_median": float(np.median(rad)), "max_abs_floquet_median": float(np.median(mu)),
            }
            if self.rotation_number is not None:
                rho = np.atleast_1d(self.rotation_number)[cyc]
                out["cycles"]["rotation_number_median"] = float(np.median(rho))
        if self.lr is not None:
            out["lr"] = float(self.lr)
        fp = np.atleast_2d(self.fixed_point)
        has = np.all(np.isfinite(fp), axis=-1)
        if has.any():
            uniq = np.unique(np.round(fp[has], 6), axis=0)
            out["fixed_points"] = uniq.tolist()
        return out


class _NegGrad(eqx.Module):
    """``x -> -grad f(x)`` of a problem, as a pytree (new parameters reuse the compile)."""

    problem: AbstractProblem

    def __call__(self, x):
        return -self.problem.grad_f(x)


def _as_field(field) -> Callable:
    if isinstance(field, AbstractProblem):
        return _NegGrad(field)
    if not callable(field):
        raise ValueError("field: expected a callable x (dim,) -> dx/dt (dim,) or a problem (uses -grad f)")
    return field


_SOLVERS = {"tsit5": diffrax.Tsit5, "dopri5": diffrax.Dopri5, "dopri8": diffrax.Dopri8}


def _solver_kw(rtol, atol, max_steps, solver="tsit5"):
    return dict(
        solver=_SOLVERS[solver](),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=max_steps,
        throw=False,
    )


def _rk4_flow(field, y, h, n_sub):
    """``n_sub`` classical RK4 steps of size ``h / n_sub`` (``h`` may be negative)."""
    dt = h / n_sub

    def step(y, _):
        k1 = field(y)
        k2 = field(y + 0.5 * dt * k1)
        k3 = field(y + 0.5 * dt * k2)
        k4 = field(y + dt * k3)
        return y + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4), None

    return jax.lax.scan(step, y, None, length=n_sub)[0]


def _newton(field, jac, x, n_iter=30):
    """Newton's method on ``field(x) = 0`` (non-finite steps are skipped)."""
    def body(_, x):
        step = jnp.linalg.solve(jac(x), field(x))
        step = jnp.where(jnp.all(jnp.isfinite(step)), step, 0.0)
        return x - step
    return jax.lax.fori_loop(0, n_iter, body, x)


def _transient(field, jac, term, x0, cfg):
    """Integrate ``[0, t_transient]``, stopped early at a fixed point or on divergence.

    Returns the end point ``xT`` (zeroed if not finite), ``F(xT)`` and the flags
    ``diverged`` and ``at_fp`` (the flow has stopped).
    """
    kw_transient = _solver_kw(cfg["transient_rtol"], cfg["atol"], cfg["max_steps"], "tsit5")
    bound = cfg["bound"]
    fp_tol = cfg["fp_tol"]

    def stop(t, y, args, **_):
        fy = field(y)
        return (jnp.linalg.norm(fy) < fp_tol) | (jnp.linalg.norm(y) > bound) | ~jnp.all(jnp.isfinite(y))

    sol = diffrax.diffeqsolve(term, t0=0.0, t1=cfg["t_transient"], dt0=None, y0=x0,
                              event=diffrax.Event(stop), saveat=diffrax.SaveAt(t1=True), **kw_transient)
    xT = sol.ys[0]
    finite = jnp.all(jnp.isfinite(xT))
    xT = jnp.where(finite, xT, jnp.zeros_like(xT))
    diverged = (~finite) | (jnp.linalg.norm(xT) > bound)
    fT = field(xT)

    # the flow has stopped: |F| < fp_tol, or the transient (solved at the looser
    # transient_rtol) sits next to a linearly stable fixed point that Newton finds
    # (linear stability without an eigen-solver, so it also runs on GPU: the
    # linearised flow contracts by 1e3 over t_transient)
    x_near = _newton(field, jac, xT)
    contracts = jnp.linalg.norm(jax.scipy.linalg.expm(jac(x_near) * cfg["t_transient"])) < 1e-3
    near = (jnp.linalg.norm(x_near - xT) < 1e-3 * (1.0 + jnp.linalg.norm(xT))) & (
        jnp.linalg.norm(field(x_near)) < jnp.maximum(fp_tol, 1e-10)) & contracts
    at_fp = ((jnp.linalg.norm(fT) < fp_tol) | near) & ~diverged
    return xT, fT, diverged, at_fp


def _half_return(field, term, kw, n, p0, s0, t_ret):
    """One half of a Poincaré return, as a ``lax.scan`` body over the sign ``s``.

    Integrates until ``c = s * n.(x - p0) + s0`` turns negative (``s = +1``:
    the far-side downward crossing; ``s = -1``: the upward return). The solve
    stops at the end of the step that crosses; the exact crossing is then found
    by Newton's method in time along the flow (RK4 sub-steps of the overshoot,
    which is at most one adaptive step).
    """
    dtype = p0.dtype

    def cross(t, y, args, **_):
        return args * jnp.dot(n, y - p0) + s0

    ev = diffrax.Event(cross, direction=False)

    def half(carry, s):
        y, t_acc, ok = carry
        # once a return has failed (or the flow stopped / diverged) the remaining
        # solves are made trivial: a short interval from a finite point
        y = jnp.where(ok & jnp.all(jnp.isfinite(y)), y, p0)
        sa = diffrax.diffeqsolve(term, t0=0.0, t1=jnp.where(ok, t_ret, 1e-3), dt0=None, y0=y, args=s, event=ev,
                                 saveat=diffrax.SaveAt(t1=True), **kw)
        ye, te = sa.ys[0], sa.ts[0]
        hit = ok & sa.event_mask & jnp.all(jnp.isfinite(ye))
        ye = jnp.where(hit, ye, y)
        target = -s0 * s  # n.(x - p0) at this crossing; the next half starts on its own side
        max_shift = jnp.maximum(jnp.abs(te), 1e-3)

        def newton(_, yd):
            yy, d = yd
            step = -(jnp.dot(n, yy - p0) - target) / jnp.dot(n, field(yy))
            step = jnp.clip(jnp.where(jnp.isfinite(step), step, 0.0), -max_shift, max_shift)
            y_new = _rk4_flow(field, yy, step, 16)
            good = jnp.all(jnp.isfinite(y_new))
            return jnp.where(good, y_new, yy), d + jnp.where(good, step, 0.0)

        yc, dt = jax.lax.fori_loop(0, 3, newton, (ye, jnp.zeros((), dtype)))
        t_new = t_acc + te + dt
        # the same point projected exactly onto Sigma (for reporting only)
        d = -jnp.dot(n, yc - p0) / jnp.dot(n, field(yc))
        d = jnp.clip(jnp.where(jnp.isfinite(d), d, 0.0), -max_shift, max_shift)
        y_sec = _rk4_flow(field, yc, d, 1)
        return (yc, t_new, hit), (y_sec, t_new + d, hit, jnp.linalg.norm(yc - p0))

    return half


def _poincare_returns(field, term, p0, fT, start_ok, cfg):
    """``n_returns`` returns to the section through ``p0`` normal to ``F(p0)``.

    Returns the section normal ``n``, the return points ``rp``, return times
    ``rt``, ``all_ok`` (every return found) and ``converged`` (the return map's
    fixed point reached to ``cycle_tol``).
    """
    kw = _solver_kw(cfg["rtol"], cfg["atol"], cfg["max_steps"], cfg["solver"])
    dtype = p0.dtype
    dim = p0.shape[0]
    speed = jnp.linalg.norm(fT)
    n = jnp.where(speed > 0, fT / jnp.where(speed > 0, speed, 1.0), jnp.eye(dim, dtype=dtype)[0])
    s0 = 1e-9 * (1.0 + jnp.linalg.norm(p0))
    half = _half_return(field, term, kw, n, p0, s0, cfg["max_return_time"])

    K = cfg["n_returns"]
    signs = jnp.tile(jnp.array([1.0, -1.0], dtype=dtype), K)
    _, (ys, ts, oks, dist) = jax.lax.scan(half, (p0, jnp.zeros((), dtype), start_ok), signs)
    rp = ys[1::2]
    t_sec = ts[1::2]
    rt = jnp.diff(jnp.concatenate([jnp.zeros((1,), dtype), t_sec]))
    rok = oks[1::2]
    far = dist[0::2]
    diam = jnp.max(jnp.where(rok, far, 0.0))
    all_ok = jnp.all(rok) & start_ok
    dp = jnp.linalg.norm(rp[-1] - rp[-2])
    dT = jnp.abs(rt[-1] - rt[-2])
    tol = cfg["cycle_tol"]
    converged = all_ok & (dp <= tol * diam) & (dT <= tol * jnp.abs(rt[-1]))
    return n, rp, rt, all_ok, converged


def _one_period(field, jac, pK, T, n, cfg):
    """One period from ``pK`` with the variational equation (fixed-step RK4).

    Returns the resampled orbit, its time-averaged centre and radius, and the
    return-map derivative ``DP`` on the section.
    """
    dtype = pK.dtype
    dim = pK.shape[0]
    n_orbit = cfg["n_orbit"]
    n_sub = cfg["orbit_substeps"]

    def aug(y):
        x, M = y
        return (field(x), jac(x) @ M)

    def aug_flat(z):
        x, M = z[:dim], z[dim:].reshape(dim, dim)
        fx, fM = aug((x, M))
        return jnp.concatenate([fx, fM.ravel()])

    h = T / n_orbit

    def orbit_step(z, _):
        return _rk4_flow(aug_flat, z, h, n_sub), z[:dim]

    z0 = jnp.concatenate([pK, jnp.eye(dim, dtype=dtype).ravel()])
    zT, orbit = jax.lax.scan(orbit_step, z0, None, length=n_orbit)
    M = zT[dim:].reshape(dim, dim)
    center = orbit.mean(axis=0)
    radius = jnp.linalg.norm(orbit - center, axis=-1).mean()
    v = field(pK)
    DP = (jnp.eye(dim, dtype=dtype) - jnp.outer(v, n) / jnp.dot(n, v)) @ M
    return orbit, center, radius, DP


def _classify(field, jac, xT, rp, center, diverged, at_fp, all_ok, converged, fp_tol):
    """Status code and the fixed point (Newton from ``xT`` or the orbit centre)."""
    x_fp = _newton(field, jac, jnp.where(at_fp, xT, center))
    fp_ok = jnp.linalg.norm(field(x_fp)) < jnp.maximum(fp_tol, 1e-10)
    d_first = jnp.linalg.norm(rp[0] - x_fp)
    d_last = jnp.linalg.norm(rp[-1] - x_fp)
    spiral = all_ok & ~converged & fp_ok & (d_last < d_first)
    status = jnp.where(diverged, _DIV, jnp.where(at_fp, _FP, jnp.where(converged, _CYCLE,
                       jnp.where(spiral, _SPIRAL, _UND))))
    return status, x_fp, fp_ok


def _trace_one(field, x0, cfg):
    """Everything for one initial point (vmapped by the caller)."""
    term = diffrax.ODETerm(lambda t, y, args: field(y))
    jac = jax.jacfwd(field)
    xT, fT, diverged, at_fp = _transient(field, jac, term, x0, cfg)
    start_ok = ~at_fp & ~diverged
    n, rp, rt, all_ok, converged = _poincare_returns(field, term, xT, fT, start_ok, cfg)
    T = jnp.where(all_ok, rt[-1], 1.0)
    pK = jnp.where(all_ok, rp[-1], xT)
    orbit, center, radius, DP = _one_period(field, jac, pK, T, n, cfg)
    status, x_fp, fp_ok = _classify(field, jac, xT, rp, center, diverged, at_fp, all_ok, converged, cfg["fp_tol"])
    return dict(status=status, xT=xT, rp=rp, rt=rt, T=T, orbit=orbit, center=center, radius=radius,
                DP=DP, x_fp=x_fp, fp_ok=fp_ok, J_fp=jac(x_fp))


@eqx.filter_jit
def _trace_batch(field, x0, cfg):
    return jax.vmap(lambda x: _trace_one(field, x, cfg))(x0)


def trace_limit_cycle(
    field: Union[Callable, AbstractProblem],
    x0,
    *,
    lr: Optional[float] = None,
    t_transient: float = 200.0,
    n_returns: int = 4,
    max_return_time: float = 100.0,
    n_orbit: int = 256,
    rtol: float = 1e-10,
    atol: float = 1e-12,
    fp_tol: float = 1e-8,
    cycle_tol: float = 1e-6,
    bound: float = 1e6,
    max_steps: int = 100_000,
    orbit_substeps: int = 8,
    solver: str = "dopri8",
    transient_rtol: float = 1e-6,
    n_transient: int = 0,
    n_window: int = 16384,
    max_iter: int = 1 << 20,
    curve_tol: float = 1e-3,
    n_harmonics: int = 16,
    batch_size: Optional[int] = None,
) -> LimitCycleResult:
    r"""Trace the flow ``dx/dt = field(x)`` (or its Euler map at step ``lr``) and find its limit set.

    Args:
        field: a callable ``x (dim,) -> dx/dt (dim,)`` written in ``jax.numpy``
            (e.g. ``problem.rotation`` for ``j(x)`` of Example 19,
            ``lambda x: problem.leftover_force(x, beta_inv)``), or a problem,
            for which the flow is the drift ``-grad f``.
        x0: ``(dim,)`` or ``(n, dim)`` initial points.
        lr: None (default): the flow. A positive number: the map
            ``x <- x + lr field(x)`` instead (for a problem, gradient descent
            with learning rate ``lr``); see :mod:`sdesim.analysis._map_cycles`
            for the method. Only ``n_returns``, ``n_orbit``, ``fp_tol``,
            ``cycle_tol``, ``bound``, ``batch_size`` and the map options below
            apply then.
        t_transient: time integrated before the section is placed.
        n_returns: Poincaré returns (>= 2) used to test convergence (map:
            turns).
        max_return_time: longest time one half-return may take.
        n_orbit: points of the resampled orbit.
        rtol, atol: tolerances of the adaptive solves that locate the returns
            and the period (float64).
        solver: ``"dopri8"`` (default; 8th order, fewest steps at tight
            tolerances), ``"tsit5"`` or ``"dopri5"`` for the returns.
        transient_rtol: tolerance of the transient (Tsit5; only where the
            trajectory ends matters there; ``atol`` is kept).
        fp_tol: ``|F(x)|`` below which the flow has stopped (map: the step
            ``lr |F(x)|`` below ``lr fp_tol``).
        cycle_tol: relative tolerance on the return map's fixed point (map:
            on the radius and duration of the last two turns).
        bound: ``|x|`` above which a trajectory counts as diverged.
        max_steps: step budget of each solve.
        orbit_substeps: RK4 sub-steps per orbit sample for the resampled orbit
            and the monodromy matrix (step ``T / (n_orbit * orbit_substeps)``).
        n_transient: map: iterates before the first analysed block.
        n_window: map: iterates per analysed block; it must hold at least
            ``n_returns + 1`` turns (otherwise ``"undecided"``).
        max_iter: map: budget of iterates (blocks stop at the first decision).
        curve_tol: map: largest relative RMS residual of the Fourier fit
            ``r(theta)`` for the iterates to count as lying on a curve.
        n_harmonics: map: harmonics of that fit.
        batch_size: initial points per compiled call (None: the next power of
            two >= 8 up to 1024, then the next multiple of 1024 up to 16384;
            the last chunk is padded, so repeated calls with the same field
            reuse one compiled program; map: powers of two capped so that a
            call's blocks stay near 1 GiB, 128 points at the defaults in 2D).

    Returns:
        :class:`LimitCycleResult` (see its attributes and the module docstring
        for the method and conventions).

    Example:
        >>> import jax.numpy as jnp, sdesim
        >>> vdp = lambda x: jnp.stack([x[1], (1 - x[0]**2) * x[1] - x[0]])
        >>> res = sdesim.trace_limit_cycle(vdp, [2.0, 0.0])
        >>> bool(res.is_cycle), round(float(res.period), 4)
        (True, 6.6633)
    """
    fn = _as_field(field)
    x0 = check_finite_array(x0, "x0")
    single = x0.ndim == 1
    if single:
        x0 = x0[None]
    if x0.ndim != 2 or x0.shape[0] == 0 or x0.shape[1] == 0:
        raise ValueError(f"x0: expected shape (dim,) or (n, dim), got {x0.shape}")
    dim = x0.shape[1]
    common = dict(
        n_returns=check_positive_int(n_returns, "n_returns"),
        n_orbit=check_positive_int(n_orbit, "n_orbit"),
        fp_tol=check_positive(fp_tol, "fp_tol"),
        cycle_tol=check_positive(cycle_tol, "cycle_tol"),
        bound=check_positive(bound, "bound"),
    )
    if common["n_returns"] < 2:
        raise ValueError(f"n_returns: need at least 2 returns, got {n_returns}")
    if lr is not None:
        from ._map_cycles import map_batch_size, map_config, trace_map
        lr = check_positive(lr, "lr")
        cfg = map_config(common, n_transient=n_transient, n_window=n_window, max_iter=max_iter,
                         curve_tol=curve_tol, n_harmonics=n_harmonics)
        bs = _batch_size(x0.shape[0], batch_size) if batch_size is not None else map_batch_size(x0.shape[0], cfg, dim)
        _check_field(fn, dim)
        return trace_map(fn, x0, lr, cfg, bs, single)
    cfg = dict(
        t_transient=check_positive(t_transient, "t_transient"),
        n_returns=common["n_returns"],
        max_return_time=check_positive(max_return_time, "max_return_time"),
        n_orbit=common["n_orbit"],
        rtol=check_positive(rtol, "rtol"),
        atol=check_positive(atol, "atol"),
        fp_tol=common["fp_tol"],
        cycle_tol=common["cycle_tol"],
        bound=common["bound"],
        max_steps=check_positive_int(max_steps, "max_steps"),
        orbit_substeps=check_positive_int(orbit_substeps, "orbit_substeps"),
        solver=str(solver),
        transient_rtol=check_positive(transient_rtol, "transient_rtol"),
    )
    if cfg["solver"] not in _SOLVERS:
        raise ValueError(f"solver: expected one of {sorted(_SOLVERS)}, got {solver!r}")
    bs = _batch_size(x0.shape[0], batch_size)
    _check_field(fn, dim)
    r = _run_batched(lambda chunk: _trace_batch(fn, chunk, _Static(cfg)), x0, bs)
    return _assemble(x0, r, single, dim)


def _batch_size(n, batch_size):
    """Initial points per compiled call (padded sizes, so repeated calls reuse one program)."""
    if batch_size is None:
        # pad to a few fixed sizes so that repeated calls reuse the compiled program:
        # powers of two from 8 to 1024, then multiples of 1024
        return max(8, 1 << (n - 1).bit_length()) if n <= 1024 else min(_MAX_BATCH, -(-n // 1024) * 1024)
    return check_positive_int(batch_size, "batch_size")


def _check_field(fn, dim):
    with jax.enable_x64(True):
        try:
            out = jax.eval_shape(fn, jax.ShapeDtypeStruct((dim,), jnp.float64))
        except Exception as e:  # noqa: BLE001 - report user errors as one line
            raise ValueError(f"field: calling it on x0 of shape ({dim},) failed: {e}") from None
    if getattr(out, "shape", None) != (dim,):
        raise ValueError(f"field: must map x ({dim},) to ({dim},), got {getattr(out, 'shape', out)}")


def _run_batched(batch_fn, x0, bs):
    """``batch_fn`` on chunks of ``bs`` points (the last one padded), float64; NumPy dict out."""
    n = x0.shape[0]
    with jax.enable_x64(True):
        parts = []
        for i in range(0, n, bs):
            chunk = x0[i:i + bs]
            m = chunk.shape[0]
            if m < bs:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], bs - m, axis=0)])
            res = batch_fn(jnp.asarray(chunk, dtype=jnp.float64))
            parts.append(jax.tree_util.tree_map(lambda a: np.asarray(a)[:m], res))
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


class _Static:
    """Hashable wrapper so the configuration is a compile-time constant."""

    def __init__(self, d):
        self.d = dict(d)
        self._key = tuple(sorted(self.d.items()))

    def __getitem__(self, k):
        return self.d[k]

    def __hash__(self):
        return hash(self._key)

    def __eq__(self, other):
        return isinstance(other, _Static) and self._key == other._key


def _assemble(x0, r, single, dim) -> LimitCycleResult:
    code = r["status"].astype(int)
    status = np.array(STATUSES, dtype=object)[code].astype(str)
    is_cycle = code == _CYCLE
    n = code.size
    nan = np.nan
    period = np.where(is_cycle, r["T"], nan)
    show = (code == _CYCLE) | (code == _SPIRAL)
    orbit = np.where(show[:, None, None], r["orbit"], nan)
    center = np.where(show[:, None], r["center"], nan)
    radius = np.where(show, r["radius"], nan)
    floquet = np.full((n, dim - 1), nan + 0j)
    stable = np.zeros(n, dtype=bool)
    fp = np.full((n, dim), nan)
    fp_eig = np.full((n, dim), nan + 0j)
    for i in range(n):
        if code[i] == _CYCLE:
            ev = np.linalg.eigvals(r["DP"][i])
            ev = np.delete(ev, np.argmin(np.abs(ev)))  # the flow direction (DP v = 0)
            floquet[i] = ev
            stable[i] = bool(np.all(np.abs(ev) < 1 - 1e-6))
        if code[i] in (_FP, _SPIRAL) and r["fp_ok"][i]:
            fp[i] = r["x_fp"][i]
            ev = np.linalg.eigvals(r["J_fp"][i])
            fp_eig[i] = ev
            stable[i] = bool(np.all(ev.real < 0)) if code[i] == _FP else True
    res = LimitCycleResult(
        x0=x0, status=status, is_cycle=is_cycle, period=period, orbit=orbit, center=center,
        mean_radius=radius, floquet=floquet, stable=stable, fixed_point=fp, fixed_point_eigvals=fp_eig,
        return_points=r["rp"], return_times=r["rt"], x_transient=r["xT"],
    )
    if single:
        res = LimitCycleResult(**{f.name: _first(getattr(res, f.name)) for f in dataclasses.fields(res)})
    return res


def _first(v):
    """The row of a single initial point (fields that are not per-point arrays pass through)."""
    return v[0] if isinstance(v, np.ndarray) else v
