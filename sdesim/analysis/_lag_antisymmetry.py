r"""Lag-antisymmetric covariance of stationary trajectories and a test of ``A = 0``.

Definition. For a stationary process ``x_t`` with mean ``mu`` the lag-``tau``
cross-covariance and its antisymmetric part are

    C(tau) = E[(x_t - mu)(x_{t+tau} - mu)^T],      A(tau) = (C(tau) - C(tau)^T) / 2.

``A(tau)_ij = E[y_i(t) y_j(t+tau) - y_j(t) y_i(t+tau)] / 2`` (``y = x - mu``):
half the mean signed area swept in the ``(i, j)`` plane between ``t`` and
``t + tau``. In 2D, ``A(tau)_{01} = L(tau) / 2`` with the wedge ``L`` of
:func:`sdesim.analysis.lag_wedge` (about the mean).

Why ``A = 0`` under reversibility. A stationary process is reversible when
``(x_t, x_{t+tau})`` and ``(x_{t+tau}, x_t)`` have the same law; then
``C(tau) = E[y_{t+tau} y_t^T] = C(tau)^T`` and ``A(tau) = 0`` at every lag.
This covers the gradient SDE ``dx = -grad f dt + sqrt(2 beta^-1) dW`` (and any
constant ``D`` proportional to the identity), its Euler--Maruyama chain on a
quadratic ``f`` and SGLD on least squares (symmetric ``M = I - lr H`` with
isotropic Gaussian noise: the AR(1) chain is reversible). ``A = 0`` does not
imply reversibility: SGD on least squares has ``C(tau) = Sigma M^tau``
(:func:`sdesim.analysis.linearise`), symmetric whenever its stationary
covariance commutes with ``M``, reversible or not. The estimator below inherits the symmetry exactly: reversing every chain in time
maps ``A_hat -> -A_hat`` (the centring ``mu_hat`` is reversal-invariant), so
for a reversible process started in its stationary law ``A_hat`` is
symmetric about zero, not only asymptotically unbiased.

Units. ``lag`` counts snapshots of ``x``: ``tau = lag * spacing`` with
``spacing`` the time between consecutive snapshots (``ens.dt *
ens.save_every`` for an :class:`sdesim.Ensemble`; for chains ``dt = lr``, so
``tau`` in SGD steps is ``lag * save_every``). The result records ``lag`` and,
when given, ``spacing``; :func:`compare_circulation` refuses to compare
estimates taken at different ``tau``.

Estimator. ``x`` is ``(n_time, n_chains, dim)`` snapshots of independent,
already stationary chains; ``mu_hat`` is the mean over time and chains and,
with ``basis`` ``B (dim, k)``, ``y = (x - mu_hat) B`` (``k = dim`` without).
Each chain ``c`` gives its own time average

    A_c(tau) = 1 / (2 (T - lag)) sum_{t=0}^{T-lag-1} (y_{t,c} y_{t+lag,c}^T - y_{t+lag,c} y_{t,c}^T),

the chains are split into ``n_batches`` contiguous groups (default: one chain
per group) and ``A_b`` is the mean of ``A_c`` over group ``b``. The estimate is
``A_hat = mean_b A_b`` and ``stderr = std_b(A_b) / sqrt(n_batches)``: chains
are independent, so the time correlation within a chain is accounted for
without a model of it.

Test of ``A = 0`` (``p_value``). Let ``v_b`` be the ``p = k (k - 1) / 2``
upper-triangular entries of ``A_b`` (``b = 1..B``), ``v_bar`` their mean and
``S = sum_b (v_b - v_bar)(v_b - v_bar)^T / (B - 1)``. If the ``v_b`` are
i.i.d. ``N(0, Sigma)`` then Hotelling's

    T^2 = B v_bar^T S^-1 v_bar,     F = (B - p) / (p (B - 1)) T^2  ~  F(p, B - p)

(``sqrt(B) v_bar ~ N(0, Sigma)`` and ``(B - 1) S ~ Wishart(Sigma, B - 1)``
are independent; the ratio is the classical Hotelling distribution), so
``p_value = P(F(p, B - p) > F)``. Batch means of many chains are nearly
Gaussian by the central limit theorem, and for ``B >> p`` the test is the
asymptotic chi-square test of ``sqrt(B) v_bar`` whatever the law of one
batch; both make it calibrated (uniform p-values) under any reversible
process, which ``tests/test_lag_antisymmetry.py`` checks. ``S`` is replaced by
its restriction to its numerical range (rank ``r``, then ``F(r, B - r)``) if
some entries never vary (e.g. a basis column orthogonal to every move).

When ``B <= p`` (too few batches for ``S^-1``) the test falls back to one
two-sided ``t`` test per entry, ``t_i = v_bar_i / (s_i / sqrt(B))`` with
``B - 1`` degrees of freedom, combined by Bonferroni:
``p_value = min(1, p * min_i p_i)`` (Holm's step-down gives the same global
p-value; the test is valid but conservative when the entries are
correlated). ``.test`` (per lag) and ``.test_joint`` say which was used.
For a sequence of lags ``p_value`` holds one test per lag and
``p_value_joint`` tests all lags' entries together (``n_lags p`` of them,
the same rule).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional, Union

import numpy as np
import scipy.stats

from .._validate import check_positive, check_positive_int

__all__ = ["LagAntisymmetry", "CirculationDifference", "lag_antisymmetry", "compare_circulation"]

_CHUNK_BYTES = 32 * 2**20


@dataclasses.dataclass(frozen=True)
class LagAntisymmetry:
    """Estimated ``A(tau) = (C(tau) - C(tau)^T) / 2`` with error bars and the test of ``A = 0``.

    Attributes:
        matrix: ``(k, k)`` antisymmetric estimate; ``(n_lags, k, k)`` for a sequence of lags.
        stderr: same shape, batch-means standard error (zero on the diagonal).
        p_value: p-value of ``A = 0`` (all ``k (k-1)/2`` upper entries jointly);
            ``(n_lags,)`` for a sequence of lags.
        p_value_joint: one p-value for all lags' entries together (equals
            ``p_value`` for a single lag).
        lag: the lag(s) in snapshots (``int`` or ``(n_lags,)`` int array).
        spacing: time between snapshots, or ``None`` when not given.
        n_batches: number of chain groups ``B`` behind ``stderr`` and the test.
        n_chains: chains used (finite ones); n_time: snapshots per chain.
        test: the per-lag test, ``"hotelling"`` (``F`` distribution) or
            ``"bonferroni-t"`` (``B <= p``); test_joint: the same for ``p_value_joint``.
        mean: ``(dim,)`` the centring ``mu_hat``.
        basis: ``(dim, k)`` projection used, or ``None``.
    """

    matrix: np.ndarray
    stderr: np.ndarray
    p_value: Union[float, np.ndarray]
    p_value_joint: float
    lag: Union[int, np.ndarray]
    spacing: Optional[float]
    n_batches: int
    n_chains: int
    n_time: int
    test: str
    test_joint: str
    mean: np.ndarray
    basis: Optional[np.ndarray] = None

    @property
    def tau(self):
        """``lag * spacing`` (time units; an array for a sequence of lags), or ``None`` without ``spacing``."""
        return None if self.spacing is None else self.spacing * self.lag

    def zscore(self, reference) -> np.ndarray:
        """``(matrix - reference) / stderr`` off the diagonal (NaN where ``stderr = 0``)."""
        ref = np.asarray(reference, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (self.matrix - ref) / self.stderr
        return np.where(self.stderr > 0, z, np.nan)


@dataclasses.dataclass(frozen=True)
class CirculationDifference:
    """``a - b`` of two circulation estimates at the same lag, with its standard error and z-score."""

    difference: Union[float, np.ndarray]
    stderr: Union[float, np.ndarray]
    zscore: Union[float, np.ndarray]
    lag: Union[int, np.ndarray]
    spacing: Optional[float]


def _lags(lag, n_time):
    scalar = np.ndim(lag) == 0
    arr = np.atleast_1d(np.asarray(lag))
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"lag: expected a positive int or a non-empty sequence of ints, got {lag!r}")
    if np.any(arr <= 0) or np.any(arr >= n_time):
        raise ValueError(f"lag: expected 0 < lag < n_time={n_time}, got {lag!r}")
    return scalar, arr.astype(np.int64)


def _per_chain(y, lag):
    """``A_c (n_chains, p)``: upper entries of each chain's time-averaged antisymmetric lag covariance."""
    T, n, k = y.shape
    iu = np.triu_indices(k, 1)
    out = np.empty((n, iu[0].size))
    step = max(1, _CHUNK_BYTES // (8 * k * max(T, k)))
    for s in range(0, n, step):
        a = np.transpose(y[:-lag, s:s + step], (1, 2, 0))  # (c, k, T - lag)
        b = np.transpose(y[lag:, s:s + step], (1, 0, 2))  # (c, T - lag, k)
        c = a @ b  # sum_t y_t y_{t+lag}^T per chain
        out[s:s + step] = 0.5 * (c - np.swapaxes(c, 1, 2))[:, iu[0], iu[1]] / (T - lag)
    return out


def _batch_means(v, n_batches):
    groups = np.array_split(np.arange(v.shape[0]), n_batches)
    starts = np.array([g[0] for g in groups])
    sizes = np.array([g.size for g in groups])
    return np.add.reduceat(v, starts, axis=0) / sizes[:, None]


def _joint_test(vb):
    """p-value of ``E v = 0`` from per-batch vectors ``vb (B, p)`` (module docstring)."""
    B, p = vb.shape
    if p == 0:
        return float("nan"), "hotelling"
    vbar = vb.mean(0)
    if B > p:
        S = np.cov(vb, rowvar=False, ddof=1).reshape(p, p)
        w, V = np.linalg.eigh(S)
        tol = max(w.max(), 0.0) * p * 1e-12
        keep = w > tol
        r = int(keep.sum())
        if r == 0:
            return (1.0 if np.allclose(vbar, 0.0) else 0.0), "hotelling"
        u = V[:, keep].T @ vbar
        t2 = B * float(np.sum(u * u / w[keep]))
        f = (B - r) / (r * (B - 1)) * t2
        return float(scipy.stats.f.sf(f, r, B - r)), "hotelling"
    s = vb.std(0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.abs(vbar) / (s / math.sqrt(B))
    pi = np.where(s > 0, 2.0 * scipy.stats.t.sf(t, B - 1), np.where(vbar == 0, 1.0, 0.0))
    return float(min(1.0, p * pi.min())), "bonferroni-t"


def lag_antisymmetry(x, lag, *, basis=None, n_batches: Optional[int] = None,
                     spacing: Optional[float] = None) -> LagAntisymmetry:
    """Estimate ``A(tau) = (C(tau) - C(tau)^T) / 2`` and test ``A = 0`` (module docstring).

    Args:
        x: ``(n_time, n_chains, dim)`` snapshots of independent, already
            stationary chains (``Ensemble.x`` after burn-in). Chains with a
            non-finite value are dropped.
        lag: lag in snapshots (``tau = lag * spacing``), an int or a sequence of ints.
        basis: optional ``(dim, k)`` matrix whose columns span the plane or
            subspace of interest (e.g. ``LinearisedStationary.max_current_plane()``);
            the centred snapshots are projected first, ``y = (x - mu) @ basis``.
        n_batches: number of contiguous chain groups for the error bars and the
            test; ``None``: each chain is its own group.
        spacing: time between snapshots, recorded so that estimates at
            different ``tau`` are never compared by mistake.

    Returns:
        :class:`LagAntisymmetry`.
    """
    arr = np.asarray(x)
    if arr.ndim != 3:
        raise ValueError(f"x: expected snapshots of shape (n_time, n_chains, dim), got {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    good = np.all(np.isfinite(arr), axis=(0, 2))
    arr = arr[:, good]
    T, n, d = arr.shape
    if T < 2:
        raise ValueError(f"x: need at least 2 snapshots, got {T}")
    scalar, lags = _lags(lag, T)
    if spacing is not None:
        spacing = check_positive(spacing, "spacing")
    if basis is not None:
        basis = np.asarray(basis, dtype=np.float64)
        if basis.ndim != 2 or basis.shape[0] != d or basis.shape[1] < 2 or not np.all(np.isfinite(basis)):
            raise ValueError(f"basis: expected a finite ({d}, k) matrix with k >= 2 columns, got shape {basis.shape}")
    elif d < 2:
        raise ValueError(f"x: dim must be at least 2 for an antisymmetric part, got {d}")
    if n_batches is None:
        n_batches = n
    n_batches = check_positive_int(n_batches, "n_batches")
    if n_batches < 2:
        raise ValueError("n_batches: need at least 2 batches for error bars")
    if n < n_batches:
        raise ValueError(f"n_batches: {n_batches} exceeds the {n} finite chains")
    mu = arr.mean(axis=(0, 1))
    y = arr - mu
    if basis is not None:
        y = y @ basis
    k = y.shape[2]
    iu = np.triu_indices(k, 1)
    p = iu[0].size
    vb = np.stack([_batch_means(_per_chain(y, int(L)), n_batches) for L in lags], axis=1)  # (B, n_lags, p)
    B = vb.shape[0]
    est = vb.mean(0)
    se = vb.std(0, ddof=1) / math.sqrt(B)
    mat = np.zeros((lags.size, k, k))
    sem = np.zeros((lags.size, k, k))
    mat[:, iu[0], iu[1]] = est
    mat[:, iu[1], iu[0]] = -est
    sem[:, iu[0], iu[1]] = se
    sem[:, iu[1], iu[0]] = se
    tests = [_joint_test(vb[:, i]) for i in range(lags.size)]
    pj, tj = _joint_test(vb.reshape(B, lags.size * p))
    pv = np.array([t[0] for t in tests])
    return LagAntisymmetry(
        matrix=mat[0] if scalar else mat,
        stderr=sem[0] if scalar else sem,
        p_value=float(pv[0]) if scalar else pv,
        p_value_joint=pj,
        lag=int(lags[0]) if scalar else lags,
        spacing=spacing,
        n_batches=B,
        n_chains=n,
        n_time=T,
        test=tests[0][1],
        test_joint=tj,
        mean=mu,
        basis=basis,
    )


def _value_and_error(r):
    """``(value, stderr, lag, spacing, kind)`` of a circulation-type estimate."""
    if isinstance(r, LagAntisymmetry):
        return r.matrix, r.stderr, r.lag, r.spacing, "lag_antisymmetry"
    from ._current import CurrentEstimate
    from ._lag import LagWedge

    if isinstance(r, LagWedge):
        return r.value, r.stderr, r.lag, r.spacing, "lag_wedge"
    if isinstance(r, CurrentEstimate):
        return r.circulation, r.circulation_stderr, r.lag, r.tau, "estimate_current"
    raise ValueError(f"a: expected a LagAntisymmetry, LagWedge or CurrentEstimate, got {type(r).__name__}")


def compare_circulation(a, b) -> CirculationDifference:
    """``a - b`` and its z-score for two independent estimates of the same circulation at the same ``tau``.

    ``a`` and ``b`` are results of the same function: :func:`lag_antisymmetry`
    (the ``matrix``, entrywise), :func:`sdesim.analysis.lag_wedge` (``value``)
    or :func:`sdesim.analysis.estimate_current` (``circulation``, one snapshot
    spacing). The circulation depends on ``tau``, so the comparison is refused
    with ``ValueError`` naming ``lag`` when the lags differ and naming
    ``spacing`` when the snapshot spacings differ or only one is known.
    ``stderr = hypot(se_a, se_b)`` assumes independent estimates (different
    chains); ``zscore = difference / stderr`` (NaN where ``stderr = 0``).
    """
    va, sa, la, pa, ka = _value_and_error(a)
    vb, sb, lb, pb, kb = _value_and_error(b)
    if ka != kb:
        raise ValueError(f"b: expected the same kind of estimate as a ({ka}), got {kb}")
    if np.shape(la) != np.shape(lb) or not np.array_equal(la, lb):
        raise ValueError(f"lag: estimates at different lags cannot be compared (a.lag={la!r}, b.lag={lb!r})")
    if (pa is None) != (pb is None) or (pa is not None and not math.isclose(pa, pb, rel_tol=1e-9)):
        raise ValueError(f"spacing: estimates with different snapshot spacings cannot be compared "
                         f"(a: {pa!r}, b: {pb!r}); tau = lag * spacing must agree")
    if ka == "lag_antisymmetry":
        if np.shape(va) != np.shape(vb):
            raise ValueError(f"basis: estimates in different subspaces (shapes {np.shape(va)}, {np.shape(vb)})")
        if (a.basis is None) != (b.basis is None) or (a.basis is not None and not np.allclose(a.basis, b.basis)):
            raise ValueError("basis: estimates projected on different bases cannot be compared")
    diff = np.asarray(va, dtype=np.float64) - np.asarray(vb, dtype=np.float64)
    se = np.hypot(np.asarray(sa, dtype=np.float64), np.asarray(sb, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, diff / se, np.nan)
    if diff.ndim == 0:
        diff, se, z = float(diff), float(se), float(z)
    return CirculationDifference(difference=diff, stderr=se, zscore=z, lag=la, spacing=pa)
