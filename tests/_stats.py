"""Helpers for statistical tests: exact bin probabilities and sampling-error bounds."""

import numpy as np


def bin_probs_2d(logdens, box, bins, sub=8):
    """Exact-ish bin probabilities of an unnormalised 2D log-density on a box.

    Midpoint rule with ``sub x sub`` points per bin; the mass outside the box is
    accounted for by normalising over a 1.5x larger box.
    """
    (x0, x1), (y0, y1) = box
    n = bins * sub
    xs = x0 + (np.arange(n) + 0.5) * (x1 - x0) / n
    ys = y0 + (np.arange(n) + 0.5) * (y1 - y0) / n
    X, Y = np.meshgrid(xs, ys, indexing="ij")
    w = np.exp(logdens(X, Y))
    inside = w.reshape(bins, sub, bins, sub).sum(axis=(1, 3)) * ((x1 - x0) / n) * ((y1 - y0) / n)
    # normaliser over a larger box
    m = 4 * n
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    hx, hy = 1.5 * (x1 - x0), 1.5 * (y1 - y0)
    xb = cx - hx / 2 + (np.arange(m) + 0.5) * hx / m
    yb = cy - hy / 2 + (np.arange(m) + 0.5) * hy / m
    XB, YB = np.meshgrid(xb, yb, indexing="ij")
    Z = np.exp(logdens(XB, YB)).sum() * (hx / m) * (hy / m)
    return inside / Z


def hist2d(samples, box, bins):
    (x0, x1), (y0, y1) = box
    h, _, _ = np.histogram2d(samples[:, 0], samples[:, 1], bins=bins, range=[[x0, x1], [y0, y1]])
    return h / len(samples)


def tv(p, q):
    return 0.5 * float(np.abs(p - q).sum())


def expected_tv_sampling(p, n_eff):
    """E[TV] of an n-sample multinomial histogram: sum_i sqrt(2 p_i (1-p_i) / (pi n)) / 2."""
    p = np.clip(p, 0, 1)
    return 0.5 * float(np.sum(np.sqrt(2 * p * (1 - p) / (np.pi * n_eff))))


def group_se(samples_by_group, stat):
    """Standard error of ``stat`` from its spread over independent groups (batch means)."""
    vals = np.array([stat(g) for g in samples_by_group])
    return vals.mean(axis=0), vals.std(axis=0, ddof=1) / np.sqrt(len(vals))


def sample_anisotropic_double_well(n, beta_inv, seed, a=0.3):
    """Exact iid samples of exp(-Phi/beta_inv) for anisotropic_double_well's Phi.

    x2 | x1 ~ N(-a x1 / 2, beta_inv); x1 by inverse CDF of its marginal on a fine grid.
    """
    rng = np.random.default_rng(seed)
    g = np.linspace(-4.0, 4.0, 40001)
    lp = -((g**2 - 1) ** 2 / 4 - a * a * g**2 / 8) / beta_inv
    c = np.cumsum(np.exp(lp - lp.max()))
    c = (c - c[0]) / (c[-1] - c[0])
    x1 = np.interp(rng.random(n), c, g)
    x2 = -a * x1 / 2 + np.sqrt(beta_inv) * rng.normal(size=n)
    return np.stack([x1, x2], -1)


def assert_equal_to_rounding(a, b, n_steps, *, ulps=64):
    """``a`` and ``b`` agree up to per-step rounding: ``|a - b| <= n_steps * ulps * eps * max|a|``.

    For runs of the same particles/chains compiled for other shapes (particle or
    chain count, cache block, host chunk, device or process count): XLA may
    vectorise another width differently (reduction order, fused multiply-adds),
    so each step may round differently by a few ulps. Over the short, contracting
    runs used in the tests these errors add up at most linearly; a real mistake
    (another particle's noise, a wrong step index) differs by O(1).
    """
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    tol = n_steps * ulps * np.finfo(a.dtype).eps * np.abs(a).max()
    err = np.abs(a.astype(np.float64) - b).max()
    assert err <= tol, f"max |a - b| = {err:.3g} > {tol:.3g} ({n_steps} steps x {ulps} ulps)"


def near_bin_edges(samples, box, bins, tol):
    """Number of samples within ``tol`` of an edge of a ``bins x bins`` grid on ``box`` (any axis)."""
    s = np.asarray(samples, np.float64)
    near = np.zeros(s.shape[0], bool)
    for j, (lo, hi) in enumerate(box):
        u = (s[:, j] - lo) / (hi - lo) * bins
        near |= np.abs(u - np.rint(u)) * (hi - lo) / bins < tol
    return int(near.sum())
