r"""Trajectory spectra: increment power spectra, autocorrelation, and tests
for low-frequency / periodic structure against Brownian motion.

Everything here is generic over a trajectory array ``x`` of shape
``(n_time, dim)`` sampled every ``dt`` (e.g. the weights of a network along
SGD, Fig. 3 of the paper, docs/paper.md §11, or one particle of an :class:`~sdesim.Ensemble`).
Arrays are processed in blocks of coordinates, so a ``(1e5, 1e3)`` trajectory
needs only a few hundred MB at any time.

Conventions
-----------
* Increments ``dx_k = x_{k+1} - x_k``, ``k = 0..n-2``, ``n' = n - 1`` of them.
* Periodogram of one coordinate (mean removed), at the ``rfft`` frequencies
  ``f_j = j / (n' dt)`` (cycles per unit time), ``j = 0..n'//2``::

      I(f_j) = |sum_k (dx_k - mean dx) exp(-2 pi i j k / n')|^2 / n'

  so that for white increments of variance ``s^2``, ``E I(f_j) = s^2`` for
  ``0 < f_j < f_Nyquist`` (flat) and ``I(f_j) / s^2 ~ Exp(1)`` independently.
  Brownian motion has white increments, hence *also* a flat increment
  spectrum at level ``var(dx)``; a process with memory (cycles, slow modes)
  does not. The spectrum of ``x`` itself would be ``s^2 / (4 sin^2(pi f dt))``
  for Brownian motion (returned as ``brownian_level_x`` for reference).
* Sample autocorrelation of one coordinate (biased estimator, as in
  ``statsmodels.acf``)::

      r_k = sum_{t<n-k} (x_t - m)(x_{t+k} - m) / sum_t (x_t - m)^2

  White noise: ``r_k ~ N(0, 1/n)`` for ``k > 0``; the 99 % band is
  ``+- z_{0.995} / sqrt(n)`` (``z = 2.5758``). An OU process sampled at ``dt``
  has ``E r_k = exp(-theta k dt)`` (up to ``O(1/n)``). The Brownian reference
  (sample ACF of a random walk of the same length) is computed by Monte Carlo
  with a fixed seed.

Tests (null hypothesis H0: ``x`` is Brownian motion, i.e. white Gaussian
increments with unknown variance per coordinate):

* **Low-frequency excess** (:func:`low_frequency_test`): with ``m`` ordinates
  in ``0 < f <= f_c`` and ``M`` in ``f_c < f < f_Nyquist``,
  ``R = mean_low I / mean_high I ~ F(2m, 2M)`` under H0 (ordinates are
  independent ``s^2 Exp(1)``); one-sided p-value ``P(F > R)``. Pooled over
  coordinates (assuming them independent under H0) ``R ~ F(2 m d, 2 M d)``.
* **Periodicity** (:func:`periodicity_test`): Fisher's g statistic
  ``g = max_j I_j / sum_j I_j`` over the ``N`` interior ordinates,
  ``P(g > x) = sum_{k>=1} (-1)^{k-1} C(N, k) (1 - k x)_+^{N-1}``; we report the
  first term ``N (1 - x)^{N-1}`` (a tight upper bound, Bonferroni) capped at 1.
  Applied to increments (white under H0) of the coordinate-averaged spectrum's
  strongest coordinate pair it detects a rotation at frequency ``f_peak``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

import numpy as np
import scipy.fft
import scipy.stats

from .._validate import check_positive, check_positive_int

__all__ = [
    "IncrementSpectrum",
    "Autocorrelation",
    "SpectralTest",
    "increment_spectrum",
    "autocorrelation",
    "low_frequency_test",
    "periodicity_test",
    "trajectory_spectra",
]

#: two-sided 99 % normal quantile
Z99 = float(scipy.stats.norm.ppf(0.995))


def _as_trajectory(x, name: str = "x", min_len: int = 8) -> np.ndarray:
    try:
        arr = np.asarray(x)
    except Exception:  # pragma: no cover - exotic inputs
        raise ValueError(f"{name}: expected an array (n_time, dim)") from None
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected shape (n_time, dim), got {arr.shape}")
    if arr.shape[0] < min_len:
        raise ValueError(f"{name}: need at least {min_len} time points, got {arr.shape[0]}")
    if arr.shape[1] < 1:
        raise ValueError(f"{name}: need at least one coordinate")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    return arr


def _blocks(dim: int, n: int, budget: int = 2**25):
    """Column blocks so that one block of ``n`` rows holds ~``budget`` numbers."""
    step = max(1, min(dim, budget // max(n, 1)))
    for i in range(0, dim, step):
        yield slice(i, min(dim, i + step))


def _workers() -> int:
    return -1  # all cores (scipy.fft)


def _periodograms(x: np.ndarray, dt: float, cols: slice) -> tuple[np.ndarray, np.ndarray]:
    """Increment periodograms of ``x[:, cols]``: (freqs (F,), I (F, b), var(dx) (b,))."""
    blk = np.asarray(x[:, cols])
    ftype = np.float32 if blk.dtype == np.float32 else np.float64
    dx = np.diff(blk.astype(ftype, copy=False), axis=0)
    dx -= dx.mean(axis=0, keepdims=True)
    n = dx.shape[0]
    var = np.einsum("ij,ij->j", dx, dx, dtype=np.float64) / n
    F = scipy.fft.rfft(dx, axis=0, workers=_workers())
    P = (F.real**2 + F.imag**2) / n
    return scipy.fft.rfftfreq(n, dt), P, var


@dataclasses.dataclass(frozen=True)
class IncrementSpectrum:
    """Periodogram of increments, mean ± std over coordinates.

    Attributes:
        freq: ``(F,)`` frequencies ``j / (n' dt)`` (cycles per unit time).
        mean, std: ``(F,)`` mean and standard deviation over coordinates of
            ``I_i(f)`` (see module docstring for the normalisation).
        white_level: ``(F,)`` reference for white increments (= Brownian
            motion): ``mean_i var(dx_i)``, flat.
        white_band: ``(2, F)`` 99 % band of ``mean`` under H0 (white Gaussian
            increments, ``dim`` independent coordinates, ``I/s^2 ~ Exp(1)``):
            Gamma(dim, 1/dim) quantiles times ``white_level``.
        brownian_level_x: ``(F,)`` what the spectrum of ``x`` itself would be
            for Brownian motion, ``white_level / (4 sin^2(pi f dt))``.
        n_increments, dim, dt.
    """

    freq: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    white_level: np.ndarray
    white_band: np.ndarray
    brownian_level_x: np.ndarray
    n_increments: int
    dim: int
    dt: float


def increment_spectrum(x, dt: float = 1.0) -> IncrementSpectrum:
    """FFT power of the increments ``x_{k+1} - x_k`` of a trajectory ``(n_time, dim)``.

    Returns an :class:`IncrementSpectrum` (mean ± std over coordinates; flat
    white/Brownian reference with its 99 % band).
    """
    x = _as_trajectory(x)
    dt = check_positive(dt, "dt")
    n, d = x.shape
    s1 = s2 = None
    var = 0.0
    freq = None
    for cols in _blocks(d, n):
        freq, P, v = _periodograms(x, dt, cols)
        P = P.astype(np.float64)
        s1 = P.sum(axis=1) if s1 is None else s1 + P.sum(axis=1)
        s2 = (P**2).sum(axis=1) if s2 is None else s2 + (P**2).sum(axis=1)
        var += float(np.sum(v))
    mean = s1 / d
    std = np.sqrt(np.maximum(s2 / d - mean**2, 0.0) * d / max(d - 1, 1))
    level = var / d
    lo, hi = scipy.stats.gamma.ppf([0.005, 0.995], a=d, scale=1.0 / d)
    band = np.stack([np.full_like(freq, lo * level), np.full_like(freq, hi * level)])
    with np.errstate(divide="ignore"):
        bx = level / (4.0 * np.sin(np.pi * freq * dt) ** 2)
    return IncrementSpectrum(freq, mean, std, np.full_like(freq, level), band, bx, n - 1, d, dt)


@dataclasses.dataclass(frozen=True)
class Autocorrelation:
    """Sample autocorrelation of ``x_k`` (per coordinate), mean ± std over coordinates.

    Attributes:
        lags: ``(L,)`` integer lags ``0..max_lag``; ``lag_time = lags * dt``.
        mean, std: ``(L,)`` over coordinates.
        white_band: scalar ``z_{0.995} / sqrt(n)``: the 99 % band of one
            coordinate's ``r_k`` (``k > 0``) for white noise.
        white_band_mean: the same band for ``mean`` (divided by ``sqrt(dim)``,
            coordinates independent).
        brownian: ``(L,)`` expected sample ACF of a random walk of the same
            length (Monte Carlo, ``n_ref`` walks, fixed seed).
        white: ``(L,)`` the white-noise reference (1 at lag 0, else 0).
    """

    lags: np.ndarray
    lag_time: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    white_band: float
    white_band_mean: float
    brownian: np.ndarray
    white: np.ndarray
    n_time: int
    dim: int


def _acf_block(blk: np.ndarray, max_lag: int) -> np.ndarray:
    n = blk.shape[0]
    y = blk - blk.mean(axis=0, keepdims=True)
    nfft = scipy.fft.next_fast_len(2 * n - 1, real=True)
    F = scipy.fft.rfft(y, n=nfft, axis=0, workers=_workers())
    ac = scipy.fft.irfft(F.real**2 + F.imag**2, n=nfft, axis=0, workers=_workers())[: max_lag + 1]
    return ac / np.maximum(ac[:1], np.finfo(ac.dtype).tiny)


def _brownian_acf(n: int, max_lag: int, n_ref: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.zeros(max_lag + 1)
    per = max(1, min(n_ref, 2**24 // max(n, 1)))
    done = 0
    while done < n_ref:
        b = min(per, n_ref - done)
        w = np.cumsum(rng.standard_normal((n, b)), axis=0)
        out += _acf_block(w, max_lag).sum(axis=1)
        done += b
    return out / n_ref


def autocorrelation(x, dt: float = 1.0, *, max_lag: Optional[int] = None, n_ref: int = 64) -> Autocorrelation:
    """Autocorrelation of a trajectory ``(n_time, dim)`` with white-noise bands.

    ``max_lag`` defaults to ``n_time // 4``. ``n_ref`` random walks give the
    Brownian reference curve (0 to skip).
    """
    x = _as_trajectory(x)
    dt = check_positive(dt, "dt")
    n, d = x.shape
    if max_lag is None:
        max_lag = n // 4
    max_lag = check_positive_int(max_lag, "max_lag")
    if max_lag >= n:
        raise ValueError(f"max_lag: must be < n_time = {n}, got {max_lag}")
    s1 = np.zeros(max_lag + 1)
    s2 = np.zeros(max_lag + 1)
    for cols in _blocks(d, 2 * n):
        blk = np.asarray(x[:, cols])
        blk = blk.astype(np.float32 if blk.dtype == np.float32 else np.float64, copy=False)
        r = _acf_block(blk, max_lag).astype(np.float64)
        s1 += r.sum(axis=1)
        s2 += (r**2).sum(axis=1)
    mean = s1 / d
    std = np.sqrt(np.maximum(s2 / d - mean**2, 0.0) * d / max(d - 1, 1))
    lags = np.arange(max_lag + 1)
    white = (lags == 0).astype(float)
    brown = _brownian_acf(n, max_lag, n_ref) if n_ref > 0 else np.full(max_lag + 1, np.nan)
    band = Z99 / math.sqrt(n)
    return Autocorrelation(lags, lags * dt, mean, std, band, band / math.sqrt(d), brown, white, n, d)


@dataclasses.dataclass(frozen=True)
class SpectralTest:
    """Result of a test against H0 = Brownian motion (white increments).

    Attributes:
        statistic: pooled statistic (``R`` or ``g``).
        p_value: pooled one-sided p-value.
        per_coordinate_statistic, per_coordinate_p: ``(dim,)``.
        fraction_significant: fraction of coordinates with ``p < alpha``.
        f_peak: frequency of the strongest ordinate (periodicity test) or the
            cut-off ``f_c`` (low-frequency test).
        alpha: level used for ``fraction_significant`` / ``significant``.
        significant: ``p_value < alpha``.
        detail: dict with the test's degrees of freedom / counts.
    """

    statistic: float
    p_value: float
    per_coordinate_statistic: np.ndarray
    per_coordinate_p: np.ndarray
    fraction_significant: float
    f_peak: float
    alpha: float
    significant: bool
    detail: dict


def low_frequency_test(x, dt: float = 1.0, *, f_cut: Optional[float] = None, alpha: float = 0.01) -> SpectralTest:
    """Is there more increment power below ``f_cut`` than Brownian motion allows?

    ``R = mean_{0<f<=f_cut} I / mean_{f_cut<f<f_Nyq} I``; under H0 ``R ~ F(2m, 2M)``
    per coordinate and ``F(2 m d, 2 M d)`` pooled (coordinates independent
    under H0). ``f_cut`` defaults to 5 % of the Nyquist frequency.
    """
    x = _as_trajectory(x)
    dt = check_positive(dt, "dt")
    n, d = x.shape
    f_nyq = 0.5 / dt
    if f_cut is None:
        f_cut = 0.05 * f_nyq
    f_cut = check_positive(f_cut, "f_cut")
    low_sum = np.zeros(d)
    high_sum = np.zeros(d)
    m = M = 0
    for cols in _blocks(d, n):
        freq, P, _ = _periodograms(x, dt, cols)
        interior = (freq > 0) & (freq < f_nyq * (1 - 1e-12))
        low = interior & (freq <= f_cut)
        high = interior & (freq > f_cut)
        m, M = int(low.sum()), int(high.sum())
        low_sum[cols] = P[low].sum(axis=0)
        high_sum[cols] = P[high].sum(axis=0)
    if m < 1 or M < 1:
        raise ValueError(f"f_cut: leaves {m} low and {M} high frequencies; choose 0 < f_cut < {f_nyq:g}")
    with np.errstate(divide="ignore", invalid="ignore"):
        R_i = (low_sum / m) / (high_sum / M)
        R = (low_sum.sum() / (m * d)) / (high_sum.sum() / (M * d))
    p_i = scipy.stats.f.sf(R_i, 2 * m, 2 * M)
    p = float(scipy.stats.f.sf(R, 2 * m * d, 2 * M * d))
    return SpectralTest(
        float(R), p, R_i, p_i, float(np.mean(p_i < alpha)), float(f_cut), alpha, p < alpha,
        {"m_low": m, "m_high": M, "dim": d, "null": "F(2 m d, 2 M d)"},
    )


def _fisher_g_p(g: np.ndarray, N: int) -> np.ndarray:
    """Upper bound ``N (1 - g)^{N-1}`` on Fisher's g p-value (exact first term)."""
    g = np.clip(g, 0.0, 1.0)
    with np.errstate(divide="ignore"):
        logp = math.log(N) + (N - 1) * np.log1p(-np.minimum(g, 1 - 1e-300))
    return np.minimum(1.0, np.exp(logp))


def periodicity_test(x, dt: float = 1.0, *, alpha: float = 0.01) -> SpectralTest:
    """Fisher's g test for one dominant frequency in the increments.

    Per coordinate ``g_i = max_j I_ij / sum_j I_ij`` over interior frequencies;
    pooled, the same on the coordinate-summed periodogram (a rotation shows in
    every coordinate at the same frequency). p-value: ``N (1-g)^{N-1}``.
    """
    x = _as_trajectory(x)
    dt = check_positive(dt, "dt")
    n, d = x.shape
    f_nyq = 0.5 / dt
    g_i = np.zeros(d)
    total = None
    freq = None
    for cols in _blocks(d, n):
        freq, P, _ = _periodograms(x, dt, cols)
        interior = (freq > 0) & (freq < f_nyq * (1 - 1e-12))
        Pi = P[interior].astype(np.float64)
        g_i[cols] = Pi.max(axis=0) / Pi.sum(axis=0)
        s = Pi.sum(axis=1)
        total = s if total is None else total + s
    fi = freq[interior]
    N = int(interior.sum())
    g = float(total.max() / total.sum())
    p_i = _fisher_g_p(g_i, N)
    p = float(_fisher_g_p(np.array(g), N))
    return SpectralTest(
        g, p, g_i, p_i, float(np.mean(p_i < alpha)), float(fi[np.argmax(total)]), alpha, p < alpha,
        {"n_frequencies": N, "dim": d, "null": "Fisher g, white increments"},
    )


def trajectory_spectra(x, dt: float = 1.0, *, max_lag: Optional[int] = None, f_cut: Optional[float] = None,
                       alpha: float = 0.01, n_ref: int = 64) -> dict:
    """All of the above in one call: ``{"spectrum", "acf", "low_frequency", "periodicity"}``."""
    return {
        "spectrum": increment_spectrum(x, dt),
        "acf": autocorrelation(x, dt, max_lag=max_lag, n_ref=n_ref),
        "low_frequency": low_frequency_test(x, dt, f_cut=f_cut, alpha=alpha),
        "periodicity": periodicity_test(x, dt, alpha=alpha),
    }
