r"""Getting to stationarity: start chains from the linearised stationary law, and test a run for drift.

Starting law. Near a minimum ``w*`` SGD is, to first order, the linear
chain ``x_{k+1} - w* = M (x_k - w*) + lr xi_k`` of
:mod:`sdesim.analysis` (``linearise``) with stationary law mean ``w*`` and
covariance ``Sigma`` (``sigma_discrete``, or ``sigma_ou`` for the SDE). A
chain started at ``w*`` relaxes in spread: ``Cov x_k = Sigma - M^k Sigma M^kT``
reaches ``Sigma`` on the slowest time ``1 / (lr lambda_min)`` steps (times
one half for the covariance), which for a network can be thousands of steps.
:func:`stationary_start` instead draws

    x0 = w* + L z,     L L^T = Sigma,     z ~ N(0, I)

(``L`` the Cholesky factor; a subspace model lifts ``L z`` through its
``basis`` and leaves the complement at ``w*``). The first two moments are
then stationary from step 0 for the linear chain, and in particular exactly
for SGD on least squares when ``Sigma`` is the exact covariance
(``sigma=chains.linreg_stationary(...)[1]``): the second moment obeys the
closed linear recursion ``S <- E[M_B S M_B^T]`` whose fixed point that is.
Only the higher moments (the chain's law is not Gaussian) still relax.

For a non-quadratic loss the stationary mean is not ``w*``: the noise,
averaged over the cubic part of ``f``, displaces it by ``O(lr)``
(:func:`stationary_mean`, ``stationary_start(..., fs=fs)``), comparable to
the spread ``O(sqrt(lr))`` once ``lr / b`` is not small. A start at ``w*``
relaxes this shift on the slow time scale too. The leading-order shift
leaves ``O(lr^2)`` in the mean, and ``Sigma`` is itself only the leading
order, so with enough chains :func:`stationarity` still resolves a drift.

Diagnostics. :func:`stationarity` takes snapshots ``x (n, C, d)`` of ``C``
independent chains (an :class:`sdesim.Ensemble` from ``run_chains`` or an
array, e.g. from ``load_stream``), optionally projected on ``basis``
``(d, k)`` columns (then ``y = x basis``; otherwise ``y = x``, ``k = d``),
and runs three checks; chains with a non-finite value are excluded and
any such chain fails the run.

1. *Drift of the ensemble law* (first vs last third of the snapshots,
   ``n3 = floor(n / 3)`` snapshots each). For chain ``c`` and coordinate ``i``

       delta_ci  = mean_{last n3} y_ci - mean_{first n3} y_ci,
       delta2_ci = mean_{last n3} (y_ci - m2_i)^2 - mean_{first n3} (y_ci - m1_i)^2,

   with ``m1``, ``m2`` the ensemble means over each third (so that a drift
   of the mean does not show as one of the spread). Chains are independent
   and identically distributed, so ``delta_c`` are i.i.d. over chains
   whatever the autocorrelation within a chain, and under stationarity have
   mean zero (``delta2_c`` up to the ``O(1/C)`` coupling through ``m1, m2``,
   the same in both thirds).
   The z-scores ``z = mean_c delta / (sd_c delta / sqrt C)`` are Student
   ``t(C - 1)`` for Gaussian ``delta`` and normal as ``C`` grows (the spread
   statistic is skewed: use ``C >= 30``). The mean test catches relaxation
   of the mean (a start away from ``w*``) and drift; the spread test catches
   relaxation of the variance (a start at ``w*``) and diffusion (a driftless
   random walk). Both fail when ``max |z|`` over the ``2k`` tests exceeds the
   Bonferroni threshold ``z* = t_{C-1}^{-1}(1 - alpha / (4 k))``, a familywise
   false-alarm rate ``<= alpha`` under stationarity.
2. *Loss trend* (with ``fs``): the full-batch loss ``f(x_{s,c})`` at up to
   ``loss_snapshots`` evenly spaced snapshots ``s`` (times ``t_s``, the
   ensemble's ``t``, i.e. ``step * lr``; snapshot indices for an array) is
   regressed on time chain by chain, ``b_c = sum_s (t_s - t_bar)(f_sc - f_bar_c)
   / sum_s (t_s - t_bar)^2``; the slope of the chain-mean loss is
   ``b = mean_c b_c`` (least squares is linear in the data) with standard
   error ``sd_c(b_c) / sqrt C`` from the spread between chains, again valid
   whatever the autocorrelation in time. Fails when the two-sided p-value
   (``t(C - 1)``) is below ``alpha``.
3. *Split-R-hat* (Gelman et al., *Bayesian Data Analysis*, 3rd ed., 2013,
   §11.4): the last ``n_split * n'`` snapshots (``n' = floor(n / n_split)``)
   of each chain are cut into ``n_split`` pieces, giving ``M = n_split C``
   sequences of length ``n'``; per coordinate, with piece means ``mu_j``,
   piece variances ``s_j^2`` (``ddof = 1``),

       B = n' var_j(mu_j),   W = mean_j s_j^2,   var+ = (n' - 1)/n' W + B/n',   R = sqrt(var+ / W).

   Fails when ``max_i R_i >= rhat_max`` (default ``1.01``, Vehtari et al.
   2021). R-hat tests *mixing* as well as stationarity: for stationary
   chains with integrated autocorrelation time ``tau`` (in snapshots;
   ``tau = 1`` for independent snapshots), ``var_j(mu_j) ~= sigma^2 tau / n'``
   and ``W ~= sigma^2``, so ``R - 1 ~= (tau - 1) / (2 n')``: a run of
   stationary chains passes only when each piece spans ``n' > 50 (tau - 1)``
   snapshots. A chain at ``w*`` with Hessian eigenvalue ``lambda`` has
   ``tau = (1 + r) / (1 - r)``, ``r = (1 - lr lambda)^s`` for snapshots ``s``
   steps apart: save every ``s ~ 2 / (lr lambda_min)`` steps and keep
   ``n' >= 50``. An ensemble started from the stationary law that fails only
   R-hat is stationary but has not mixed: its time averages are not yet
   reliable, its snapshot-wise (ensemble) averages are.

Verdict: ``is_stationary`` when no chain diverged and all checks pass. The
false-alarm rate under stationarity is at most ``alpha`` (drift family) plus
``alpha`` (loss trend) plus that of R-hat (negligible once the condition
above holds); ``tests/test_stationarity.py`` measures it.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import numpy as np
import scipy.stats

from .._validate import check_nonneg_int, check_positive, check_positive_int

__all__ = ["Stationarity", "stationarity", "stationary_mean", "stationary_start", "STATIONARITY_CHECKS"]

#: Names of the checks, in the order the message reports failures.
STATIONARITY_CHECKS = ("diverged", "mean_drift", "spread_drift", "loss_trend", "rhat")


# ---------------------------------------------------------------------------
# starting law
# ---------------------------------------------------------------------------


def _cholesky_jitter(S):
    """Lower ``L`` with ``L L^T = S + j I``; ``j = 0`` unless needed (then the smallest power-of-10 that works)."""
    scale = float(np.max(np.abs(np.diag(S)))) if S.size else 0.0
    try:
        return np.linalg.cholesky(S)
    except np.linalg.LinAlgError:
        pass
    lam = np.linalg.eigvalsh(S)
    if lam[0] < -1e-8 * max(lam[-1], 0.0) or lam[-1] <= 0:
        raise ValueError(f"sigma: not positive semi-definite (eigenvalues in [{lam[0]:.3g}, {lam[-1]:.3g}])")
    k = S.shape[0]
    for e in range(-14, -5):
        j = max(-lam[0], 0.0) + scale * 10.0**e
        try:
            return np.linalg.cholesky(S + j * np.eye(k))
        except np.linalg.LinAlgError:
            continue
    raise ValueError("sigma: Cholesky failed even with a jitter of 1e-6 times its largest variance")


def _check_lin(lin):
    from ..analysis import LinearisedStationary

    if not isinstance(lin, LinearisedStationary):
        raise ValueError(f"lin: expected a LinearisedStationary (sdesim.analysis.linearise), got "
                         f"{type(lin).__name__}")
    return lin


def _model_sigma(lin, discrete, sigma):
    """The covariance ``(k, k)`` in the model's coordinates: ``sigma`` or the linearisation's."""
    k = lin.H.shape[0]
    if sigma is None:
        S = lin.sigma_discrete if discrete else lin.sigma_ou
    else:
        S = np.asarray(sigma, dtype=np.float64)
        if S.shape != (k, k) or not np.all(np.isfinite(S)):
            raise ValueError(f"sigma: expected a finite ({k}, {k}) covariance, got shape {S.shape}")
        if not np.allclose(S, S.T, rtol=1e-8, atol=1e-12 * max(float(np.max(np.abs(S))), 1e-300)):
            raise ValueError("sigma: not symmetric")
    S = np.asarray(S, dtype=np.float64)
    return 0.5 * (S + S.T)


def stationary_mean(lin, fs, *, discrete: bool = True, sigma=None) -> np.ndarray:
    r"""The stationary mean to leading order: ``w* + delta``, ``delta = -H^-1 grad tr(H(w) Sigma) / 2`` at ``w*``.

    SGD, SGLD and the SDE all leave the mean unchanged only if
    ``E[grad f(x)] = 0`` under the stationary law (``E[grad f_B(x) | x] = grad f(x)``).
    Expanding ``grad f(w* + u) = H u + (1/2) T[u, u] + O(u^3)`` with the
    third-derivative tensor ``T`` and taking the mean over ``u`` with
    covariance ``Sigma = O(lr)``:

        H delta + (1/2) sum_jk T_ijk Sigma_jk = 0,   sum_jk T_ijk Sigma_jk = d/dw_i tr(H(w) Sigma),

    so ``delta = O(lr)`` with an error ``O(lr^2)`` (the third moments and
    ``delta delta^T``). A non-quadratic loss therefore displaces the
    stationary mean from the minimum: the noise, averaged over the cubic part
    of ``f``, pushes it towards flatter directions. ``grad tr(H(w) Sigma)`` is
    the gradient of ``sum_j l_j^T H(w) l_j`` (``Sigma = sum_j l_j l_j^T``, one
    Hessian-vector product per column) by automatic differentiation (third
    derivatives of ``f``). In a subspace model (``lin.basis`` = ``B``) the
    correction is the Galerkin one, ``delta = -B H_k^-1 B^T grad tr(H(w) B Sigma B^T) / 2``.

    Args:
        lin: a :class:`sdesim.analysis.LinearisedStationary` at ``w*``.
        fs: the :class:`FiniteSum` it was linearised on (or a callable ``f(x)``).
        discrete, sigma: the covariance, as in :func:`stationary_start`.

    Returns ``(dim,)`` float64.
    """
    import jax.numpy as jnp

    from ._minimum import _objective

    lin = _check_lin(lin)
    f, dim = _objective(fs)
    w = np.asarray(lin.w_star, dtype=np.float64)
    if dim is not None and dim != w.shape[0]:
        raise ValueError(f"fs: dim={dim} does not match lin's dim={w.shape[0]}")
    S = _model_sigma(lin, discrete, sigma)
    lam, V = np.linalg.eigh(S)
    Lm = V * np.sqrt(np.clip(lam, 0.0, None))  # Sigma = Lm Lm^T
    if lin.basis is not None:
        Lm = np.asarray(lin.basis, dtype=np.float64) @ Lm
    dt = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    grad = jax.grad(lambda x: jnp.asarray(f(x), dt))
    Lj = jnp.asarray(Lm.T, dt)

    def tr_hs(x, L):
        return jnp.sum(jax.vmap(lambda l: l @ jax.jvp(grad, (x,), (l,))[1])(L))

    # L is an argument, not a closed-over constant: XLA would otherwise try to constant-fold
    # products with the d x d factor (minutes of compilation for a network)
    gt = np.asarray(jax.jit(jax.grad(tr_hs))(jnp.asarray(w, dt), Lj), dtype=np.float64)
    if lin.basis is None:
        return w - 0.5 * np.linalg.solve(lin.H, gt)
    B = np.asarray(lin.basis, dtype=np.float64)
    return w - 0.5 * B @ np.linalg.solve(lin.H, B.T @ gt)


def stationary_start(lin, n_chains: int, *, seed: int, discrete: bool = True, sigma=None,
                     fs=None) -> np.ndarray:
    """Draw ``n_chains`` starting points from the linearised stationary law ``N(mean, Sigma)``.

    Args:
        lin: a :class:`sdesim.analysis.LinearisedStationary` (``linearise(...)``).
        n_chains: number of draws.
        seed: NumPy ``default_rng`` seed (the draws depend on it only).
        discrete: ``Sigma = lin.sigma_discrete`` (the SGD chain, default) or
            ``lin.sigma_ou`` (the SDE).
        sigma: a covariance ``(k, k)`` in the model's coordinates to use instead,
            e.g. the exact least-squares one ``chains.linreg_stationary(...)[1]``,
            or that of another kernel at the same minimum (SGLD).
        fs: the loss (a :class:`FiniteSum`). Given, the mean is
            :func:`stationary_mean` (``w*`` plus the leading-order shift of a
            non-quadratic loss); otherwise ``w*``.

    Returns ``(n_chains, dim)`` float64, for ``run_chains(kernel, x0, ...)``.
    ``Sigma`` is factored by Cholesky; if that fails for a positive
    semi-definite ``Sigma`` (a flat direction), a jitter ``j I`` with ``j`` at
    most ``|lambda_min| + 1e-6 max_i Sigma_ii`` is added (the smallest power
    of ten that works). When ``lin`` lives in a subspace (``lin.basis``), the
    draw is ``mean + basis L z`` and the orthogonal complement stays at the mean.
    """
    lin = _check_lin(lin)
    n_chains = check_positive_int(n_chains, "n_chains")
    seed = check_nonneg_int(seed, "seed")
    S = _model_sigma(lin, discrete, sigma)
    L = _cholesky_jitter(S)
    mean = (np.asarray(lin.w_star, dtype=np.float64) if fs is None
            else stationary_mean(lin, fs, discrete=discrete, sigma=sigma))
    z = np.random.default_rng(seed).standard_normal((n_chains, S.shape[0]))
    dx = z @ L.T
    if lin.basis is not None:
        dx = dx @ np.asarray(lin.basis, dtype=np.float64).T
    return mean[None, :] + dx


# ---------------------------------------------------------------------------
# diagnostics
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Stationarity:
    """Result of :func:`stationarity` (module docstring for the definitions).

    Attributes:
        is_stationary: no chain diverged and every check passed.
        message: one line: ``"stationary: ..."`` or ``"not stationary: ..."``
            naming each failed check, its statistic and coordinate.
        failed: names of the failed checks (``STATIONARITY_CHECKS``).
        n_saved, n_chains: snapshots and finite chains used; n_diverged:
            chains excluded for a non-finite value; n_coords: ``k`` (``d`` or basis columns).
        alpha: false-alarm level of the drift family and of the loss trend.
        mean_shift: ``(k,)`` change of the ensemble mean, last minus first third;
        mean_drift_z: ``(k,)`` its z-scores; spread_ratio: ``(k,)`` ensemble
        variance, last over first third; spread_drift_z: ``(k,)``
        z-scores of its change; z_threshold: Bonferroni ``z*`` over ``2k`` tests;
        window: ``n3`` snapshots per third.
        loss_slope, loss_slope_se, loss_p: slope of the chain-mean loss per
        unit time, its standard error and two-sided p-value (NaN without ``fs``);
        loss_first, loss_last: chain-mean loss at the first and last evaluated snapshot.
        rhat: ``(k,)`` split-R-hat; rhat_max_value, rhat_coord: its maximum and where;
        rhat_threshold: the threshold; n_split, piece_len: pieces per chain and their length ``n'``.
    """

    is_stationary: bool
    message: str
    failed: tuple
    n_saved: int
    n_chains: int
    n_diverged: int
    n_coords: int
    alpha: float
    mean_shift: np.ndarray
    mean_drift_z: np.ndarray
    spread_ratio: np.ndarray
    spread_drift_z: np.ndarray
    z_threshold: float
    window: int
    loss_slope: float
    loss_slope_se: float
    loss_p: float
    loss_first: float
    loss_last: float
    rhat: np.ndarray
    rhat_max_value: float
    rhat_coord: int
    rhat_threshold: float
    n_split: int
    piece_len: int

    @property
    def mean_drift_max(self) -> float:
        return float(np.max(np.abs(self.mean_drift_z)))

    @property
    def spread_drift_max(self) -> float:
        return float(np.max(np.abs(self.spread_drift_z)))


def _snapshots(ens):
    """``(x (n, C, d) float64, t (n,), finite (C,))`` from an Ensemble or an array."""
    if hasattr(ens, "x") and hasattr(ens, "t"):
        if ens.x is None:
            raise ValueError("ens: this run kept statistics only (keep='stats'); stationarity needs snapshots")
        x = np.asarray(ens.x, dtype=np.float64)
        t = np.asarray(ens.t, dtype=np.float64)
    else:
        try:
            x = np.asarray(ens, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"ens: expected an Ensemble or an array (n_saved, n_chains, dim), got "
                             f"{type(ens).__name__}") from None
        t = np.arange(x.shape[0], dtype=np.float64) if x.ndim == 3 else None
    if x.ndim != 3:
        raise ValueError(f"ens: expected snapshots (n_saved, n_chains, dim), got shape {x.shape}")
    finite = np.all(np.isfinite(x), axis=(0, 2))
    return x, t, finite


def _z(delta):
    """z-scores ``mean / (sd / sqrt C)`` over axis 0 (chains); 0/0 -> 0, a/0 -> inf."""
    C = delta.shape[0]
    m = delta.mean(axis=0)
    se = delta.std(axis=0, ddof=1) / math.sqrt(C)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, m / np.where(se > 0, se, 1.0), np.where(m == 0, 0.0, np.inf * np.sign(m)))
    return m, z


def _split_rhat(y, n_split):
    """Split-R-hat per coordinate of ``y (n, C, k)``; returns ``(rhat (k,), n')``."""
    n = y.shape[0]
    npc = n // n_split
    seq = y[n - n_split * npc:]  # drop the earliest remainder
    seq = seq.reshape(n_split, npc, *y.shape[1:])  # (pieces, n', C, k)
    mu = seq.mean(axis=1)  # (pieces, C, k)
    s2 = seq.var(axis=1, ddof=1)
    mu = mu.reshape(-1, y.shape[2])
    s2 = s2.reshape(-1, y.shape[2])
    B = npc * mu.var(axis=0, ddof=1)
    W = s2.mean(axis=0)
    var_plus = (npc - 1) / npc * W + B / npc
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(W > 0, np.sqrt(var_plus / np.where(W > 0, W, 1.0)), np.where(B > 0, np.inf, 1.0))
    return r, npc


def _losses(fs, x, idx, chunk=4096):
    """``f(x[s, c])`` for snapshots ``idx`` and all chains: ``(len(idx), C)``."""
    import jax.numpy as jnp

    f = jax.jit(jax.vmap(fs.value))
    out = []
    for s in idx:
        rows = [np.asarray(f(jnp.asarray(x[s, a:a + chunk]))) for a in range(0, x.shape[1], chunk)]
        out.append(np.concatenate(rows))
    return np.asarray(out, dtype=np.float64)


def stationarity(ens, *, fs=None, n_split: int = 2, basis=None, alpha: float = 0.01, rhat_max: float = 1.01,
                 loss_snapshots: int = 50) -> Stationarity:
    """Test snapshots of independent chains for stationarity (module docstring).

    Args:
        ens: an :class:`sdesim.Ensemble` (``run_chains``) or an array
            ``(n_saved, n_chains, dim)`` (e.g. ``load_stream(out_dir)``; times
            are then snapshot indices). Needs ``n_saved >= max(3, 2 n_split)``
            and at least 2 finite chains (``>= 30`` for calibrated z-scores).
        fs: a :class:`FiniteSum`: adds the loss-trend test on its full-batch value.
        n_split: pieces per chain for split-R-hat (2 is Gelman et al.'s split).
        basis: ``(dim, k)`` columns; test the projections ``x @ basis`` instead
            of the ``dim`` coordinates (for large models, e.g. top Hessian
            eigenvectors, ``LinearisedStationary.basis``).
        alpha: false-alarm level of the drift family (Bonferroni over ``2k``
            tests) and of the loss trend.
        rhat_max: split-R-hat threshold (``inf`` leaves R-hat out of the verdict).
        loss_snapshots: the loss is evaluated at this many evenly spaced snapshots at most.

    Returns a :class:`Stationarity`.
    """
    x, t, finite = _snapshots(ens)
    n_split = check_positive_int(n_split, "n_split")
    if n_split < 2:
        raise ValueError(f"n_split: expected >= 2, got {n_split}")
    alpha = check_positive(alpha, "alpha")
    if alpha >= 1:
        raise ValueError(f"alpha: expected a level in (0, 1), got {alpha}")
    try:
        rhat_max = float(rhat_max)
    except (TypeError, ValueError):
        raise ValueError(f"rhat_max: expected a number > 1, got {rhat_max!r}") from None
    if not rhat_max > 1:
        raise ValueError(f"rhat_max: expected a number > 1 (inf: R-hat left out of the verdict), got {rhat_max!r}")
    loss_snapshots = check_positive_int(loss_snapshots, "loss_snapshots")
    n = x.shape[0]
    if n < max(3, 2 * n_split):
        raise ValueError(f"ens: needs at least {max(3, 2 * n_split)} snapshots (n_split={n_split}), got {n}")
    n_div = int(np.sum(~finite))
    x = x[:, finite]
    C = x.shape[1]
    if C < 2:
        raise ValueError(f"ens: needs at least 2 finite chains, got {C}")
    d = x.shape[2]
    if basis is not None:
        B = np.asarray(basis, dtype=np.float64)
        if B.ndim != 2 or B.shape[0] != d or B.shape[1] < 1 or not np.all(np.isfinite(B)):
            raise ValueError(f"basis: expected a finite ({d}, k) matrix, got shape {B.shape}")
        y = x @ B
        coord = "basis direction"
    else:
        y = x
        coord = "coordinate"
    k = y.shape[2]

    # 1. drift of the ensemble mean and spread, first vs last third
    n3 = n // 3
    first, last = y[:n3], y[-n3:]
    shift, zm = _z(last.mean(axis=0) - first.mean(axis=0))
    q1 = ((first - first.mean(axis=(0, 1))) ** 2).mean(axis=0)  # (C, k)
    q2 = ((last - last.mean(axis=(0, 1))) ** 2).mean(axis=0)
    _, zs = _z(q2 - q1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = q2.mean(axis=0) / q1.mean(axis=0)
    n_tests = 2 * k
    zstar = float(scipy.stats.t.ppf(1.0 - alpha / (2.0 * n_tests), C - 1))

    # 2. loss trend
    slope = se = p = lf = ll = math.nan
    if fs is not None:
        from ._chains import FiniteSum

        if not isinstance(fs, FiniteSum):
            raise ValueError(f"fs: expected a FiniteSum, got {type(fs).__name__}")
        if fs.dim != d:
            raise ValueError(f"fs: dim={fs.dim} does not match the snapshots' dim={d}")
        idx = np.unique(np.round(np.linspace(0, n - 1, min(n, loss_snapshots))).astype(int))
        Lv = _losses(fs, x, idx)  # (s, C)
        ts = t[idx]
        tc = ts - ts.mean()
        bc = (tc[:, None] * (Lv - Lv.mean(axis=0))).sum(axis=0) / np.sum(tc * tc)
        slope = float(bc.mean())
        se = float(bc.std(ddof=1) / math.sqrt(C))
        if not np.all(np.isfinite(Lv)):
            p = 0.0
        elif se > 0:
            p = float(2.0 * scipy.stats.t.sf(abs(slope) / se, C - 1))
        else:
            p = 1.0 if slope == 0 else 0.0
        lf, ll = float(Lv[0].mean()), float(Lv[-1].mean())

    # 3. split-R-hat
    rhat, npc = _split_rhat(y, n_split)
    ri = int(np.argmax(rhat))
    rmax = float(rhat[ri])

    failed, why = [], []
    if n_div:
        failed.append("diverged")
        why.append(f"{n_div} of {n_div + C} chains diverged")
    im = int(np.argmax(np.abs(zm)))
    if not abs(zm[im]) <= zstar:
        failed.append("mean_drift")
        why.append(f"ensemble mean drifts by {abs(zm[im]):.1f} s.e. in {coord} {im} "
                   f"(first to last third: {shift[im]:+.3g}; threshold {zstar:.2f} s.e.)")
    js = int(np.argmax(np.abs(zs)))
    if not abs(zs[js]) <= zstar:
        failed.append("spread_drift")
        why.append(f"ensemble spread drifts by {abs(zs[js]):.1f} s.e. in {coord} {js} "
                   f"(variance x{ratio[js]:.3g} from first to last third; threshold {zstar:.2f} s.e.)")
    if fs is not None and not p >= alpha:
        failed.append("loss_trend")
        verb = "decreases" if slope < 0 else "increases"
        why.append(f"loss {verb} over the run ({lf:.4g} -> {ll:.4g}; slope {slope:.3g} per unit time, "
                   f"{abs(slope) / se if se > 0 else math.inf:.1f} s.e., p = {p:.2g} < {alpha:g})")
    if not rmax < rhat_max:
        failed.append("rhat")
        why.append(f"split-R-hat = {rmax:.4g} >= {rhat_max:g} in {coord} {ri} (pieces of {npc} snapshots "
                   f"span too few autocorrelation times, or the chains have not forgotten their start)")
    if failed:
        message = "not stationary: " + "; ".join(why)
    else:
        message = (f"stationary: ensemble mean and spread drift at most {max(abs(zm[im]), abs(zs[js])):.2f} s.e. "
                   f"(threshold {zstar:.2f}), split-R-hat at most {rmax:.4g} (< {rhat_max:g})")
        if fs is not None:
            message += f", loss slope p = {p:.2g} (>= {alpha:g})"
    return Stationarity(
        is_stationary=not failed, message=message, failed=tuple(failed), n_saved=n, n_chains=C, n_diverged=n_div,
        n_coords=k, alpha=alpha, mean_shift=shift, mean_drift_z=zm, spread_ratio=ratio, spread_drift_z=zs,
        z_threshold=zstar, window=n3, loss_slope=slope, loss_slope_se=se, loss_p=p, loss_first=lf, loss_last=ll,
        rhat=rhat, rhat_max_value=rmax, rhat_coord=ri, rhat_threshold=float(rhat_max), n_split=n_split,
        piece_len=npc,
    )
