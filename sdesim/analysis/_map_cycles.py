r"""Invariant closed curves of the map ``x <- x + lr F(x)`` (gradient descent at step ``lr``).

:func:`trace_limit_cycle` with ``lr`` given iterates the explicit Euler map of
the flow ``dx/dt = F(x)`` (for a problem, ``F = -grad f``: gradient descent
with learning rate ``lr``) from many initial points at once (``jax.vmap``,
float64) and classifies where each one ends up:

``"fixed_point"``
    the steps stop: ``|x_{k+1} - x_k| = lr |F(x_k)| < lr fp_tol`` at the end
    of a block, or the block ends within ``1e-3 (1 + |x|)`` of a zero ``x*``
    of ``F`` (Newton) at which the map contracts,
    ``|(I + lr DF(x*))^n_window| < 1e-3``.
``"cycle"``
    an attracting closed invariant curve: the radii and durations of the last
    two turns agree to ``cycle_tol`` and the iterates lie on a curve
    ``r(theta)`` (``curve_spread <= curve_tol``, below).
``"spiral"``
    the iterates circle a zero of ``F`` and every turn ends closer to it, but
    the budget ``max_iter`` ran out before they got there.
``"diverged"``
    ``|x|`` exceeded ``bound`` or became non-finite.
``"undecided"``
    none of the above within ``max_iter`` iterates (e.g. a curve that attracts
    very slowly, a periodic orbit of the map, a chaotic attractor).

Method
------
After ``n_transient`` plain iterates the map is run in blocks of ``n_window``
iterates ``X_0..X_{W-1}``; each block is analysed on its own and the loop
stops at the first block that classifies as a fixed point, a converged curve
or divergence (at most ``max_iter`` iterates in all).

*Centre and section.* The centre ``c`` is the zero of ``F`` found by Newton's
method from the block mean when it lies closer to that mean than any iterate
does (the point the iterates turn around), otherwise the block mean. The
rotation plane is the ``(x1, x2)`` plane in 2D and the two largest principal
directions of ``X - c`` in more dimensions; ``y = B^T (x - c)`` are the plane
coordinates and ``theta = atan2(y2, y1)``. The direction of rotation is the
sign of the summed angle increments (each wrapped to ``(-pi, pi]``); after
mirroring ``y2`` so that the rotation is positive, the section is the
half-line (half-hyperplane) ``{y2 = 0, y1 > 0}`` and a *crossing* is a step
with ``y2`` going from negative to non-negative there. The crossing's
fractional index ``s`` solves ``y2(s) = 0`` for the degree-5 Lagrange
interpolant through the six iterates around it (Newton's method from the
linear interpolate), and the crossing point is ``X(s)`` from the same
interpolant. Interpolation error: for points on a smooth curve advancing by an
angle ``h`` per iterate, ``~5e-3 h^6`` relative, so ``h = 0.2`` still gives
``3e-7``.

*Turns.* The last ``K = n_returns + 1`` crossings ``s_0 < .. < s_{K-1}`` give
the turn radii ``R_j = |X(s_j) - c|`` and durations ``D_j = s_{j+1} - s_j``
(iterates); the block *converges* when

    |R_{K-1} - R_{K-2}| <= cycle_tol R_{K-1},   |D_{K-2} - D_{K-3}| <= cycle_tol D_{K-2}.

The block after the first converged one is run as well and is the one
analysed below (so that no part of the approach enters the averages); it must
converge too.

On an invariant curve on which the map is conjugate to a rotation by ``rho``
turns per iterate, ``X_k = Gamma(phi_0 + k rho)`` with ``Gamma`` a smooth
parametrisation, so the crossings are exactly ``1 / rho`` apart and the
interpolant in ``k`` is that of a smooth function.

*Rotation number, period, radius.* From the first and last crossings of the
block, ``rho = +-(n_cross - 1) / (s_last - s_first)`` turns per iterate
(positive: counter-clockwise in the plane basis, which for ``dim > 2`` has an
arbitrary orientation; blocks with fewer than two crossings fall back to the
mean wrapped angle increment / 2 pi). ``period = lr / |rho|`` in time units.
``mean_radius`` is the mean of ``|X_k - c|`` over the iterates of the whole
turns ``ceil(s_first) <= k <= floor(s_last)``.

*Curve test.* Over the same iterates, ``r_k = |X_k - c|`` is fitted by least
squares with a Fourier series in ``theta_k`` of ``n_harmonics`` harmonics;
``curve_spread`` is the RMS residual over ``mean_radius``. Points on a smooth
star-shaped curve give the (small) truncation error of the series; a cloud,
a chaotic band or a curve that still moves give much more.

*Normal stability.* Lyapunov exponents ``lambda_i`` of the map by QR
iteration of the tangent map ``I + lr DF(X_k)`` from a basis whose first
vector is the curve's tangent at ``X_0`` (the derivative of the
interpolant). On an invariant curve that vector stays tangent (its exponent
is zero for a curve on which the map is conjugate to a rotation), so the
other diagonal entries of ``R`` measure the growth normal to the curve;
seeding the tangent matters because the gap between the two exponents can be
tiny (``lr^2 omega^2`` per iterate at a weak focus), far too small for an
arbitrary start to align within a block. The average runs over the whole
turns from the first crossing in the block's second half (the first half lets
several normal directions sort themselves by growth rate). The normal
exponents give the per-turn multipliers ``floquet = exp(lambda_i / |rho|)``
(real, positive), the analogue of the flow's non-trivial Floquet
multipliers; in 2D ``lambda_1 + lambda_2`` is the mean of
``log |det(I + lr DF)|`` (a discrete Liouville formula) and ``lambda_1 = 0``.
``stable``: all below ``1 - 1e-6``.

``orbit`` is the last turn ``[s_{K-2}, s_{K-1}]`` resampled at ``n_orbit``
points equally spaced in iterate index (time) by the same interpolant;
``return_points`` / ``return_times`` are the last ``n_returns`` crossing
points and turn durations (time units); ``x_transient`` is the point the
analysed block starts from and ``n_iter`` the iterates done in all.
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._validate import check_nonneg_int, check_positive, check_positive_int
from ._cycles import (_CYCLE, _DIV, _FP, _SPIRAL, _UND, STATUSES, LimitCycleResult, _first, _newton, _run_batched,
                      _Static)

#: points of the Lagrange interpolant used for crossings and resampling
_NODES = 6


def _map_scan(field, lr, x, bad, length, bound, record):
    """``length`` iterates of ``x <- x + lr F(x)``; a diverged point is frozen.

    Returns ``(x, bad, X)`` with ``X`` the ``(length, dim)`` iterates when
    ``record`` (else None).
    """
    def step(carry, _):
        x, bad = carry
        xn = x + lr * field(x)
        bad_n = bad | ~jnp.all(jnp.isfinite(xn)) | (jnp.linalg.norm(xn) > bound)
        xn = jnp.where(bad_n, x, xn)
        return (xn, bad_n), (xn if record else None)

    (x, bad), X = jax.lax.scan(step, (x, bad), None, length=length)
    return x, bad, X


def _interp(A, s):
    """Degree-5 Lagrange interpolant of the rows of ``A`` (``(W, ...)``) at fractional index ``s``."""
    W = A.shape[0]
    k = jnp.clip(jnp.floor(s), 0, W - 2).astype(jnp.int32)
    s0 = jnp.clip(k - (_NODES // 2 - 1), 0, W - _NODES)
    t = s - s0
    nodes = jnp.arange(_NODES, dtype=s.dtype)
    off = ~jnp.eye(_NODES, dtype=bool)
    num = jnp.prod(jnp.where(off, (t - nodes)[None, :], 1.0), axis=1)
    den = jnp.prod(jnp.where(off, nodes[:, None] - nodes[None, :], 1.0), axis=1)
    vals = jax.lax.dynamic_slice_in_dim(A, s0, _NODES, axis=0)
    return jnp.tensordot(num / den, vals, axes=1)


def _refine_crossing(y2, k):
    """Fractional index ``s`` in ``[k, k + 1]`` with ``y2(s) = 0`` (interpolant; Newton)."""
    a, b = y2[k], y2[k + 1]
    s = k + jnp.clip(a / jnp.where(a != b, a - b, 1.0), 0.0, 1.0)
    g = lambda s: _interp(y2, s)

    def body(_, s):
        v, dv = jax.jvp(g, (s,), (jnp.ones_like(s),))
        step = jnp.where(dv != 0, v / jnp.where(dv != 0, dv, 1.0), 0.0)
        return jnp.clip(s - step, k, k + 1.0)

    return jax.lax.fori_loop(0, 4, body, s)


def _centre_and_plane(field, jac, X, fp_tol):
    """Centre of rotation, whether it is a zero of ``F``, and the plane basis ``B`` (dim, 2)."""
    dim = X.shape[1]
    m = X.mean(axis=0)
    x_fp = _newton(field, jac, m)
    inside = jnp.linalg.norm(x_fp - m) < jnp.min(jnp.linalg.norm(X - m, axis=1))
    fp_ok = jnp.all(jnp.isfinite(x_fp)) & (jnp.linalg.norm(field(x_fp)) < jnp.maximum(fp_tol, 1e-10)) & inside
    c = jnp.where(fp_ok, x_fp, m)
    if dim == 1:
        B = jnp.array([[1.0, 0.0]], dtype=X.dtype)
    elif dim == 2:
        B = jnp.eye(2, dtype=X.dtype)
    else:
        Z = X - c
        _, vecs = jnp.linalg.eigh(Z.T @ Z)
        B = vecs[:, ::-1][:, :2]
    return c, fp_ok, B


def _section(field, jac, X, cfg):
    """Crossings of one block with the half-line section, and the convergence test."""
    W = X.shape[0]
    K = cfg["n_returns"] + 1
    c, fp_ok, B = _centre_and_plane(field, jac, X, cfg["fp_tol"])
    Y = (X - c) @ B
    theta = jnp.arctan2(Y[:, 1], Y[:, 0])
    dth = jnp.mod(jnp.diff(theta) + jnp.pi, 2 * jnp.pi) - jnp.pi
    sign = jnp.where(jnp.sum(dth) < 0, -1.0, 1.0)
    y1, y2 = Y[:, 0], sign * Y[:, 1]
    lin = jnp.clip(y2[:-1] / jnp.where(y2[:-1] != y2[1:], y2[:-1] - y2[1:], 1.0), 0.0, 1.0)
    y1_cross = y1[:-1] + lin * (y1[1:] - y1[:-1])
    up = (y2[:-1] < 0) & (y2[1:] >= 0) & (y1_cross > 0)
    n_up = jnp.sum(up)
    idx = jnp.arange(W - 1)
    last = jnp.sort(jax.lax.top_k(jnp.where(up, idx, -1), K)[0])  # ascending; -1: missing
    valid = last >= 0
    first = jnp.argmax(up)
    mid = jnp.argmax(up & (idx >= W // 2))  # the first crossing in the second half
    s = jax.vmap(lambda k: _refine_crossing(y2, k))(jnp.concatenate([jnp.maximum(last, 0), jnp.stack([first, mid])]))
    s, s_first, s_mid = s[:K], s[K], s[K + 1]
    P = jax.vmap(lambda t: _interp(X, t))(s)
    R = jnp.linalg.norm(P - c, axis=1)
    D = jnp.diff(s)
    tol = cfg["cycle_tol"]
    all_valid = jnp.all(valid)
    converged = all_valid & (jnp.abs(R[-1] - R[-2]) <= tol * R[-1]) & (jnp.abs(D[-1] - D[-2]) <= tol * D[-1])
    spiral = all_valid & fp_ok & jnp.all(jnp.diff(R) < 0)
    return dict(c=c, fp_ok=fp_ok, Y=Y, sign=sign, dth=dth, n_up=n_up, s=s, s_first=s_first, s_mid=s_mid, P=P, D=D,
                all_valid=all_valid, converged=converged, spiral=spiral)


def _at_fixed_point(field, jac, x, lr, cfg):
    """The steps have stopped, or ``x`` sits next to a zero of ``F`` at which the map contracts."""
    fp_tol = cfg["fp_tol"]
    dim = x.shape[0]
    x_near = _newton(field, jac, x)
    M = jnp.eye(dim, dtype=x.dtype) + lr * jac(x_near)
    contracts = jnp.linalg.norm(jnp.linalg.matrix_power(M, cfg["n_window"])) < 1e-3
    near = (jnp.linalg.norm(x_near - x) < 1e-3 * (1.0 + jnp.linalg.norm(x))) & (
        jnp.linalg.norm(field(x_near)) < jnp.maximum(fp_tol, 1e-10)) & contracts
    return (jnp.linalg.norm(field(x)) < fp_tol) | near


def _run_blocks(field, jac, x, lr, cfg):
    """Blocks of ``n_window`` iterates until a fixed point, a converged curve, divergence or the budget.

    Returns the last block ``X``, its analysis (:func:`_section`), whether it
    ended at a fixed point, the divergence flag, the last iterate, the point
    the block started from and the number of blocks run.
    """
    W, bound = cfg["n_window"], cfg["bound"]
    dim = x.shape[0]
    x, bad, _ = _map_scan(field, lr, x, jnp.zeros((), bool), cfg["n_transient"], bound, False)
    X0 = jnp.zeros((W, dim), x.dtype)
    sec0 = jax.tree_util.tree_map(lambda a: jnp.zeros(a.shape, a.dtype),
                                  jax.eval_shape(lambda X: _section(field, jac, X, cfg), X0))

    def cond(st):
        return ~st["done"] & (st["nb"] < cfg["max_blocks"])

    def body(st):
        x_new, bad, X = _map_scan(field, lr, st["x"], st["bad"], W, bound, True)
        sec = _section(field, jac, X, cfg)
        at_fp = _at_fixed_point(field, jac, x_new, lr, cfg) & ~bad
        # after the block whose last turns converged, one more block: it lies
        # wholly on the curve and is the one analysed
        done = bad | at_fp | st["sec"]["converged"]
        return dict(x=x_new, bad=bad, X=X, sec=sec, at_fp=at_fp, nb=st["nb"] + 1, done=done, x_start=st["x"])

    st0 = dict(x=x, bad=bad, X=X0, sec=sec0, at_fp=jnp.zeros((), bool), nb=jnp.zeros((), jnp.int32), done=bad,
               x_start=x)
    return jax.lax.while_loop(cond, body, st0)


def _whole_turns(sec, W):
    """Mask of the iterates inside the whole turns ``[s_first, s_last]`` of a block."""
    k = jnp.arange(W)
    ok = sec["n_up"] >= 2
    return ok & (k >= jnp.ceil(sec["s_first"])) & (k <= jnp.floor(sec["s"][-1]))


def _curve_fit(X, sec, mask, n_harm):
    """Mean radius and relative RMS residual of a Fourier fit ``r(theta)`` over ``mask``."""
    r = jnp.linalg.norm(X - sec["c"], axis=1)
    theta = jnp.arctan2(sec["Y"][:, 1], sec["Y"][:, 0])
    m = mask.astype(X.dtype)
    cnt = jnp.maximum(jnp.sum(m), 1.0)
    radius = jnp.sum(m * r) / cnt
    h = jnp.arange(1, n_harm + 1, dtype=X.dtype)
    A = jnp.concatenate([jnp.ones_like(theta)[:, None], jnp.cos(theta[:, None] * h), jnp.sin(theta[:, None] * h)],
                        axis=1)
    Am = A * m[:, None]
    G = Am.T @ A + 1e-12 * cnt * jnp.eye(A.shape[1], dtype=X.dtype)
    coef = jnp.linalg.solve(G, Am.T @ r)
    resid = (r - A @ coef) * m
    spread = jnp.sqrt(jnp.sum(resid**2) / cnt) / jnp.where(radius > 0, radius, 1.0)
    return radius, spread


def _lyapunov(jac, X, lr, sec):
    """Lyapunov exponents of the map along the block: curve direction first, then the normal ones.

    QR iteration of the tangent map ``I + lr DF(X_k)`` started from a basis
    whose first vector is the curve's tangent at ``X_0`` (derivative of the
    interpolant): on an invariant curve that vector stays tangent, so the
    other diagonal entries of ``R`` measure the normal growth alone. Averaged
    over the whole turns of the block.
    """
    W, dim = X.shape
    eye = jnp.eye(dim, dtype=X.dtype)
    tangent = jax.jvp(lambda s: _interp(X, s), (jnp.zeros((), X.dtype),), (jnp.ones((), X.dtype),))[1]
    tangent = tangent / jnp.maximum(jnp.linalg.norm(tangent), jnp.finfo(X.dtype).tiny)
    Q0 = jnp.linalg.qr(jnp.concatenate([tangent[:, None], eye], axis=1))[0]

    def step(Q, xk):
        Qn, Rm = jnp.linalg.qr((eye + lr * jac(xk)) @ Q)
        return Qn, jnp.log(jnp.abs(jnp.diagonal(Rm)))

    _, L = jax.lax.scan(step, Q0, X)  # L[k]: growth from X_k to X_{k+1}
    k = jnp.arange(W)
    # whole turns from the first crossing in the block's second half (the
    # first half lets the normal directions sort themselves by growth rate)
    start = jnp.where(sec["s_mid"] < sec["s"][-1], sec["s_mid"], sec["s_first"])
    m = ((k >= jnp.ceil(start)) & (k < jnp.ceil(sec["s"][-1])) & (k < W - 1)).astype(X.dtype)
    return jnp.sum(L * m[:, None], axis=0) / jnp.maximum(jnp.sum(m), 1.0)


def _trace_map_one(field, x0, lr, cfg):
    """Everything for one initial point (vmapped by the caller)."""
    jac = jax.jacfwd(field)
    W = cfg["n_window"]
    st = _run_blocks(field, jac, x0, lr, cfg)
    X, sec, at_fp, bad, x = st["X"], st["sec"], st["at_fp"], st["bad"], st["x"]
    crossings = sec["n_up"] >= 2
    rho_cross = sec["sign"] * (sec["n_up"] - 1) / jnp.where(crossings, sec["s"][-1] - sec["s_first"], 1.0)
    rho = jnp.where(crossings, rho_cross, jnp.sum(sec["dth"]) / (2 * jnp.pi * (W - 1)))
    period = lr / jnp.abs(rho)
    mask = _whole_turns(sec, W)
    radius, spread = _curve_fit(X, sec, mask, cfg["n_harmonics"])
    lyap = _lyapunov(jac, X, lr, sec)
    mult = jnp.exp(lyap[1:] / jnp.abs(rho))
    s_a, s_b = sec["s"][-2], sec["s"][-1]
    n_orbit = cfg["n_orbit"]
    grid = s_a + (s_b - s_a) * jnp.arange(n_orbit, dtype=X.dtype) / n_orbit
    orbit = jax.vmap(lambda t: _interp(X, t))(grid)
    cycle = sec["converged"] & crossings & (spread <= cfg["curve_tol"])
    x_fp = _newton(field, jac, jnp.where(at_fp, x, sec["c"]))
    fp_ok = jnp.linalg.norm(field(x_fp)) < jnp.maximum(cfg["fp_tol"], 1e-10)
    status = jnp.where(bad, _DIV, jnp.where(at_fp, _FP, jnp.where(cycle, _CYCLE,
                       jnp.where(sec["spiral"] & ~sec["converged"], _SPIRAL, _UND))))
    return dict(status=status, xT=st["x_start"], rp=sec["P"][1:], rt=lr * sec["D"], T=period, orbit=orbit,
                center=sec["c"], radius=radius, mult=mult, x_fp=x_fp, fp_ok=fp_ok, J_fp=jac(x_fp),
                rho=rho, spread=spread,
                n_iter=cfg["n_transient"] + st["nb"].astype(jnp.int64) * W)


@eqx.filter_jit
def _trace_map_batch(field, x0, lr, cfg):
    return jax.vmap(lambda x: _trace_map_one(field, x, lr, cfg))(x0)


def _assemble_map(x0, r, single, dim, lr) -> LimitCycleResult:
    code = r["status"].astype(int)
    status = np.array(STATUSES, dtype=object)[code].astype(str)
    is_cycle = code == _CYCLE
    n = code.size
    nan = np.nan
    show = is_cycle | (code == _SPIRAL)
    fp = np.full((n, dim), nan)
    fp_eig = np.full((n, dim), nan + 0j)
    stable = np.zeros(n, dtype=bool)
    floquet = np.where(is_cycle[:, None], r["mult"], nan).astype(complex)
    stable[is_cycle] = np.all(r["mult"][is_cycle] < 1 - 1e-6, axis=1)
    for i in np.flatnonzero(((code == _FP) | (code == _SPIRAL)) & r["fp_ok"]):
        fp[i] = r["x_fp"][i]
        ev = np.linalg.eigvals(r["J_fp"][i])
        fp_eig[i] = ev
        # the map's multipliers at the fixed point are 1 + lr * ev
        stable[i] = bool(np.all(np.abs(1.0 + lr * ev) < 1.0)) if code[i] == _FP else True
    res = LimitCycleResult(
        x0=x0, status=status, is_cycle=is_cycle, period=np.where(is_cycle, r["T"], nan),
        orbit=np.where(show[:, None, None], r["orbit"], nan), center=np.where(show[:, None], r["center"], nan),
        mean_radius=np.where(show, r["radius"], nan), floquet=floquet, stable=stable, fixed_point=fp,
        fixed_point_eigvals=fp_eig, return_points=r["rp"], return_times=r["rt"], x_transient=r["xT"],
        rotation_number=r["rho"], curve_spread=r["spread"], n_iter=r["n_iter"].astype(np.int64), lr=lr,
    )
    if single:
        res = LimitCycleResult(**{f.name: _first(getattr(res, f.name)) for f in dataclasses.fields(res)})
    return res


def map_config(common: dict, *, n_transient, n_window, max_iter, curve_tol, n_harmonics) -> dict:
    """Validated configuration of the map path (``common``: the options shared with the flow)."""
    cfg = dict(common)
    cfg["n_transient"] = check_nonneg_int(n_transient, "n_transient")
    cfg["n_window"] = check_positive_int(n_window, "n_window")
    cfg["curve_tol"] = check_positive(curve_tol, "curve_tol")
    cfg["n_harmonics"] = check_positive_int(n_harmonics, "n_harmonics")
    max_iter = check_positive_int(max_iter, "max_iter")
    if cfg["n_window"] < max(_NODES, 4 * (cfg["n_returns"] + 1)):
        raise ValueError(f"n_window: too short for {cfg['n_returns'] + 1} turns, got {n_window}")
    if max_iter < cfg["n_transient"] + cfg["n_window"]:
        raise ValueError(f"max_iter: must cover n_transient + n_window iterates, got {max_iter}")
    cfg["max_blocks"] = (max_iter - cfg["n_transient"]) // cfg["n_window"]
    return cfg


def map_batch_size(n: int, cfg: dict, dim: int) -> int:
    """Points per compiled call: the next power of two >= 8, capped near 1 GiB of block arrays.

    Per point and iterate of a block: the iterates, their plane coordinates,
    the Fourier design matrix and the QR growth rates, ``~2 n_harmonics + 4 +
    3 dim`` float64 numbers.
    """
    per_point = 8 * cfg["n_window"] * (2 * cfg["n_harmonics"] + 4 + 3 * dim)
    cap = max(8, 1 << max(0, ((1 << 30) // per_point).bit_length() - 1))
    return min(cap, max(8, 1 << (n - 1).bit_length()))


def trace_map(fn, x0, lr, cfg, bs, single) -> LimitCycleResult:
    """The map path of :func:`trace_limit_cycle` (arguments already validated)."""
    static = _Static(cfg)
    with jax.enable_x64(True):
        lr_arr = jnp.asarray(lr, dtype=jnp.float64)
        r = _run_batched(lambda chunk: _trace_map_batch(fn, chunk, lr_arr, static), x0, bs)
    return _assemble_map(x0, r, single, x0.shape[1], lr)
