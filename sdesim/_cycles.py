r"""Limit cycles of a deterministic flow ``dx/dt = F(x)``: Poincaré return map.

:func:`trace_limit_cycle` integrates the flow from many initial points at once
(``jax.vmap`` over one diffrax solve, Tsit5 with tight tolerances, float64) and
classifies where each one ends up:

``"fixed_point"``
    the flow stops: ``|F(x)| < fp_tol`` during the transient; the point is then
    polished by Newton's method on ``F(x) = 0`` and the eigenvalues of the
    Jacobian ``DF`` there are reported (``fixed_point_eigvals``).
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
import math
from typing import Callable, Optional, Union

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from ._problem import AbstractProblem
from ._validate import check_finite_array, check_positive, check_positive_int

__all__ = ["LimitCycleResult", "trace_limit_cycle", "STATUSES"]

STATUSES = ("fixed_point", "cycle", "spiral", "diverged", "undecided")
_FP, _CYCLE, _SPIRAL, _DIV, _UND = range(5)
import os; _NORF = bool(os.environ.get("NORF"))


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
        fp = np.atleast_2d(self.fixed_point)
        has = np.all(np.isfinite(fp), axis=-1)
        if has.any():
            uniq = np.unique(np.round(fp[has], 6), axis=0)
            out["fixed_points"] = uniq.tolist()
        return out


def _as_field(field) -> Callable:
    if isinstance(field, AbstractProblem):
        problem = field
        return lambda x: -problem.grad_f(x)
    if not callable(field):
        raise ValueError("field: expected a callable x (dim,) -> dx/dt (dim,) or a problem (uses -grad f)")
    return field


def _solver_kw(rtol, atol, max_steps):
    return dict(
        solver=diffrax.Tsit5(),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=max_steps,
        throw=False,
    )


def _trace_one(field, x0, cfg):
    """Everything for one initial point (vmapped by the caller)."""
    rtol, atol, max_steps = cfg["rtol"], cfg["atol"], cfg["max_steps"]
    kw = _solver_kw(rtol, atol, max_steps)
    dtype = x0.dtype
    dim = x0.shape[0]
    term = diffrax.ODETerm(lambda t, y, args: field(y))
    bound = cfg["bound"]
    fp_tol = cfg["fp_tol"]
    rf = optx.Newton(rtol=1e-13, atol=1e-13) if not _NORF else None

    # --- transient, stopped early at a fixed point or on divergence ------------
    def stop(t, y, args, **_):
        fy = field(y)
        return (jnp.linalg.norm(fy) < fp_tol) | (jnp.linalg.norm(y) > bound) | ~jnp.all(jnp.isfinite(y))

    sol = diffrax.diffeqsolve(term, t0=0.0, t1=cfg["t_transient"], dt0=None, y0=x0,
                              event=diffrax.Event(stop), saveat=diffrax.SaveAt(t1=True), **kw)
    xT = sol.ys[0]
    finite = jnp.all(jnp.isfinite(xT))
    xT = jnp.where(finite, xT, jnp.zeros_like(xT))
    diverged = (~finite) | (jnp.linalg.norm(xT) > bound)
    fT = field(xT)
    at_fp = (jnp.linalg.norm(fT) < fp_tol) & ~diverged

    # --- Poincaré returns -------------------------------------------------------
    p0 = xT
    speed = jnp.linalg.norm(fT)
    n = jnp.where(speed > 0, fT / jnp.where(speed > 0, speed, 1.0), jnp.eye(dim, dtype=dtype)[0])
    s0 = 1e-9 * (1.0 + jnp.linalg.norm(p0))
    t_ret = cfg["max_return_time"]

    def down(t, y, args, **_):
        return jnp.dot(n, y - p0) + s0

    def up(t, y, args, **_):
        return jnp.dot(n, y - p0) - s0

    ev_down = diffrax.Event(down, root_finder=rf, direction=False)
    ev_up = diffrax.Event(up, root_finder=rf, direction=True)

    def one_return(p, _):
        sa = diffrax.diffeqsolve(term, t0=0.0, t1=t_ret, dt0=None, y0=p, event=ev_down,
                                 saveat=diffrax.SaveAt(t1=True), **kw)
        ya, ta = sa.ys[0], sa.ts[0]
        oka = sa.event_mask
        sb = diffrax.diffeqsolve(term, t0=0.0, t1=t_ret, dt0=None, y0=ya, event=ev_up,
                                 saveat=diffrax.SaveAt(t1=True), **kw)
        yb, tb = sb.ys[0], sb.ts[0]
        okb = sb.event_mask
        # one exact Newton step along the flow onto Sigma
        fb = field(yb)
        dt = -jnp.dot(n, yb - p0) / jnp.dot(n, fb)
        yb = yb + dt * fb
        ok = oka & okb & jnp.all(jnp.isfinite(yb))
        return jnp.where(ok, yb, p), (jnp.where(ok, yb, jnp.nan), ta + tb + dt, ok, jnp.linalg.norm(ya - p0))

    _, (rp, rt, rok, far) = jax.lax.scan(one_return, p0, None, length=cfg["n_returns"])
    diam = jnp.max(jnp.where(rok, far, 0.0))
    all_ok = jnp.all(rok) & ~at_fp & ~diverged
    dp = jnp.linalg.norm(rp[-1] - rp[-2])
    dT = jnp.abs(rt[-1] - rt[-2])
    tol = cfg["cycle_tol"]
    converged = all_ok & (dp <= tol * diam) & (dT <= tol * jnp.abs(rt[-1]))

    # --- one period with the variational equation --------------------------------
    T = jnp.where(all_ok, rt[-1], 1.0)
    pK = jnp.where(all_ok, rp[-1], p0)
    jac = jax.jacfwd(field)

    def var_field(t, y, args):
        x, M = y
        return field(x), jac(x) @ M

    n_orbit = cfg["n_orbit"]
    ts = T * jnp.linspace(0.0, 1.0, n_orbit + 1, dtype=dtype)
    so = diffrax.diffeqsolve(diffrax.ODETerm(var_field), t0=0.0, t1=T, dt0=None,
                             y0=(pK, jnp.eye(dim, dtype=dtype)), saveat=diffrax.SaveAt(ts=ts), **kw)
    xs, Ms = so.ys
    orbit = xs[:-1]
    center = orbit.mean(axis=0)
    radius = jnp.linalg.norm(orbit - center, axis=-1).mean()
    M = Ms[-1]
    v = field(pK)
    DP = (jnp.eye(dim, dtype=dtype) - jnp.outer(v, n) / jnp.dot(n, v)) @ M

    # --- fixed point: Newton from xT (stopped flow) or from the orbit centre ----
    def newton(x):
        def body(_, x):
            step = jnp.linalg.solve(jac(x), field(x))
            step = jnp.where(jnp.all(jnp.isfinite(step)), step, 0.0)
            return x - step
        return jax.lax.fori_loop(0, 30, body, x)

    x_fp = newton(jnp.where(at_fp, xT, center))
    fp_ok = jnp.linalg.norm(field(x_fp)) < jnp.maximum(fp_tol, 1e-10)
    d_first = jnp.linalg.norm(rp[0] - x_fp)
    d_last = jnp.linalg.norm(rp[-1] - x_fp)
    spiral = all_ok & ~converged & fp_ok & (d_last < d_first)
    status = jnp.where(diverged, _DIV, jnp.where(at_fp, _FP, jnp.where(converged, _CYCLE,
                       jnp.where(spiral, _SPIRAL, _UND))))
    return dict(status=status, xT=xT, rp=rp, rt=rt, T=T, orbit=orbit, center=center, radius=radius,
                DP=DP, x_fp=x_fp, fp_ok=fp_ok, J_fp=jac(x_fp))


@eqx.filter_jit
def _trace_batch(field, x0, cfg):
    return jax.vmap(lambda x: _trace_one(field, x, cfg))(x0)


def trace_limit_cycle(
    field: Union[Callable, AbstractProblem],
    x0,
    *,
    t_transient: float = 200.0,
    n_returns: int = 6,
    max_return_time: float = 100.0,
    n_orbit: int = 256,
    rtol: float = 1e-10,
    atol: float = 1e-12,
    fp_tol: float = 1e-8,
    cycle_tol: float = 1e-6,
    bound: float = 1e6,
    max_steps: int = 1_000_000,
    batch_size: Optional[int] = None,
) -> LimitCycleResult:
    r"""Trace the flow ``dx/dt = field(x)`` from each initial point and find its limit set.

    Args:
        field: a callable ``x (dim,) -> dx/dt (dim,)`` written in ``jax.numpy``
            (e.g. ``problem.rotation`` for ``j(x)`` of Example 19,
            ``lambda x: problem.leftover_force(x, beta_inv)``), or a problem,
            for which the flow is the drift ``-grad f``.
        x0: ``(dim,)`` or ``(n, dim)`` initial points.
        t_transient: time integrated before the section is placed.
        n_returns: Poincaré returns (>= 2) used to test convergence.
        max_return_time: longest time one half-return may take.
        n_orbit: points of the resampled orbit.
        rtol, atol: tolerances of the adaptive Tsit5 solve (float64).
        fp_tol: ``|F(x)|`` below which the flow has stopped.
        cycle_tol: relative tolerance on the return map's fixed point.
        bound: ``|x|`` above which a trajectory counts as diverged.
        max_steps: step budget of each solve.
        batch_size: initial points per compiled call (all at once if None).

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
    cfg = dict(
        t_transient=check_positive(t_transient, "t_transient"),
        n_returns=check_positive_int(n_returns, "n_returns"),
        max_return_time=check_positive(max_return_time, "max_return_time"),
        n_orbit=check_positive_int(n_orbit, "n_orbit"),
        rtol=check_positive(rtol, "rtol"),
        atol=check_positive(atol, "atol"),
        fp_tol=check_positive(fp_tol, "fp_tol"),
        cycle_tol=check_positive(cycle_tol, "cycle_tol"),
        bound=check_positive(bound, "bound"),
        max_steps=check_positive_int(max_steps, "max_steps"),
    )
    if cfg["n_returns"] < 2:
        raise ValueError(f"n_returns: need at least 2 returns, got {n_returns}")
    n = x0.shape[0]
    bs = n if batch_size is None else check_positive_int(batch_size, "batch_size")
    with jax.enable_x64(True):
        try:
            out = jax.eval_shape(fn, jax.ShapeDtypeStruct((dim,), jnp.float64))
        except Exception as e:  # noqa: BLE001 - report user errors as one line
            raise ValueError(f"field: calling it on x0 of shape ({dim},) failed: {e}") from None
        if getattr(out, "shape", None) != (dim,):
            raise ValueError(f"field: must map x ({dim},) to ({dim},), got {getattr(out, 'shape', out)}")
        static_cfg = {k: v for k, v in cfg.items()}
        parts = []
        for i in range(0, n, bs):
            chunk = x0[i:i + bs]
            pad = bs - chunk.shape[0] if batch_size is not None else 0
            if pad:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
            res = _trace_batch(fn, jnp.asarray(chunk, dtype=jnp.float64), _Static(static_cfg))
            res = jax.tree_util.tree_map(lambda a: np.asarray(a)[: bs - pad if pad else None], res)
            parts.append(res)
        r = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return _assemble(x0, r, single, dim)


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
        res = LimitCycleResult(**{f.name: getattr(res, f.name)[0] for f in dataclasses.fields(res)})
    return res
