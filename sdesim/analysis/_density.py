r"""The potential ``Phi`` from particles: histogram and kernel density estimates with error bars.

The paper (docs/paper.md) defines ``Phi = -beta^-1 log rho_ss`` (up to a constant). From
samples ``x_1..x_N`` of (an approximation of) ``rho_ss``:

* **Histogram.** ``rho_k = n_k / (N |cell|)`` with ``N`` all samples (points
  outside ``box`` count in ``N``, so ``rho`` estimates the true density, not one
  renormalised to the box). ``Phi_k = -beta^-1 log rho_k``, shifted so that
  ``min Phi = 0``. Independent samples: ``n_k`` is multinomial, and by the
  delta method ``se(Phi_k) = beta^-1 sqrt((1 - p_k) / n_k)``, ``p_k = n_k / N``.
  Correlated samples (an ensemble's snapshots ``(n_saved, n_particles, dim)``:
  successive snapshots of one particle are correlated, different particles are
  independent): a Poisson bootstrap over whole particles (each particle's
  samples get one weight ``w ~ Poisson(1)``); ``se`` is the spread of the
  replicates. Empty bins have ``Phi = nan``.
* **Kernel density estimate** (Gaussian kernel, diagonal bandwidth). Default
  bandwidth by Scott's rule ``h_a = sigma_a N^{-1/(k+4)}`` (``k`` = 1 or 2
  dimensions estimated), or Silverman's ``h_a = (4 / (k + 2))^{1/(k+4)}
  sigma_a N^{-1/(k+4)}``; a number or per-axis sequence overrides. Computed as a
  *binned* KDE: points are binned on a grid ``<= h/4`` fine (padded by ``4 h``)
  and smoothed with a sampled Gaussian (``scipy.ndimage.gaussian_filter``), so
  10^6 points cost one ``bincount`` and two 1D convolutions. Independent
  samples: ``Var rho_hat(x) = (E[K_h(x - X)^2] - rho_hat^2) / N`` with
  ``K_h^2 = prod_a (4 pi h_a^2)^{-1/2} K_{h/sqrt 2}`` (the standard KDE variance,
  evaluated with a second smoothing); correlated samples: the particle
  bootstrap. The KDE's smoothing bias ``O(h^2)`` is *not* in its error bar; the
  histogram is the estimate to compare with an exact ``Phi`` bin by bin.
* **Modes** (most likely locations): peaks of ``log rho_hat`` (the KDE) on
  its fine grid, ranked by topographic prominence (how far a peak rises above
  the highest saddle joining it to a higher peak; :func:`sdesim.analysis.find_modes`),
  refined by a quadratic fit on the 3x3 (3 in 1D) stencil. Kept: the highest
  peak, and every other peak with ``rho_hat >= mode_threshold * max rho_hat``
  whose prominence exceeds the threshold :func:`sdesim.analysis.find_modes`
  derives from the error bound ``eps = z * se(log rho_hat)`` on the fine grid
  (``se``: the analytic KDE standard error, or the particle-bootstrap one),
  ``z = Phi^-1(1 - alpha / (2 M))``, ``alpha = 0.01``, ``M`` = fine-grid cells
  (Bonferroni: the noise stays within ``eps`` on every cell with probability
  >= 99 %, and a peak made by noise alone then has prominence below the
  threshold, which is ``2 eps`` where ``eps`` is flat). ``mode_prominence``
  replaces the rule by a fixed threshold. Their standard errors are the
  bootstrap spread of the same refinement, each replicate searched within
  ``2 h`` of the original mode.
* **dim > 2**: the density of a 1D or 2D projection ``y = x @ axes``
  (``axes`` of shape ``(dim, k)``, orthonormal columns); by default the two
  leading principal axes of the sample covariance. Integer ``axes`` pick
  coordinates (marginals). ``Phi`` of a projection is the marginal potential
  ``-beta^-1 log int rho dx_perp``.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np
import scipy.ndimage

from .._validate import check_positive
from ._modes import bonferroni_z, find_modes

__all__ = ["PotentialEstimate", "estimate_potential"]

#: family-wise level of the mode threshold: noise exceeds z standard errors somewhere with probability <= this
_MODE_ALPHA = 0.01


@dataclasses.dataclass(frozen=True, eq=False)
class PotentialEstimate:
    """Result of :func:`estimate_potential` (``k`` = 1 or 2 estimated dimensions).

    Grids use ``'ij'`` indexing: ``phi[i, j]`` is at ``(centers[0][i], centers[1][j])``.

    Attributes:
        centers: ``(bins,)`` array in 1D; tuple ``(cx, cy)`` of arrays in 2D.
        edges: tuple of per-axis bin edges.
        phi: histogram ``Phi_hat = -beta^-1 log rho_hat``, min 0; ``nan`` in empty bins.
        stderr: standard error of ``phi`` (of ``Phi_hat`` up to its additive constant).
        rho: histogram density (integrates to the fraction of samples inside ``box``).
        counts: samples per bin.
        phi_kde, stderr_kde, rho_kde: the same from the KDE at the bin centres
            (``None`` with ``kde=False``).
        bandwidth: (k,) kernel standard deviations.
        modes: (m, k) modes of the KDE (prominent peaks), highest first.
        mode_stderr: (m, k) bootstrap standard errors of ``modes``.
        mode_log_density: (m,) ``log rho_hat`` (KDE, fine grid) at the modes'
            cells; ``Phi = -beta^-1 log rho`` up to its constant.
        mode_prominence: (m,) prominence in ``log rho`` units (a density ratio
            ``exp(.)`` to the key saddle; ``beta^-1 *`` it in ``Phi`` units).
        mode_prominence_threshold: (m,) what the prominence had to exceed
            (the error threshold or ``mode_prominence``; 0 for the highest mode).
        axes: (dim, k) projection used (``y = x @ axes``).
        n_samples: ``N``; beta_inv; errors: ``"multinomial"``/``"analytic"`` or
            ``"bootstrap"``.
    """

    centers: object
    edges: tuple
    phi: np.ndarray
    stderr: np.ndarray
    rho: np.ndarray
    counts: np.ndarray
    phi_kde: Optional[np.ndarray]
    stderr_kde: Optional[np.ndarray]
    rho_kde: Optional[np.ndarray]
    bandwidth: np.ndarray
    modes: np.ndarray
    mode_stderr: np.ndarray
    axes: np.ndarray
    n_samples: int
    beta_inv: float
    errors: str
    mode_log_density: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    mode_prominence: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    mode_prominence_threshold: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))

    @property
    def ndim(self) -> int:
        return len(self.edges)

    @property
    def grid(self):
        """Meshgrid of the bin centres (``'ij'``), a tuple of ``k`` arrays of shape ``phi.shape``."""
        c = (self.centers,) if self.ndim == 1 else self.centers
        return np.meshgrid(*c, indexing="ij")


# --------------------------------------------------------------------------- helpers


def _float_samples(samples, expected: str) -> np.ndarray:
    """An Ensemble's snapshots without its diverged particles, or an array, as float64.

    ``expected`` completes the error message for input that is neither.
    """
    if hasattr(samples, "x") and not isinstance(samples, np.ndarray):
        finite = getattr(samples, "finite", None)  # an Ensemble: drop diverged particles
        samples = samples.x if finite is None else np.asarray(samples.x)[:, np.asarray(finite, bool)]
    try:
        return np.asarray(samples, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"samples: expected {expected}") from None


def _as_samples(samples):
    """-> (points (N, dim) float64, group ids (N,) or None)."""
    arr = _float_samples(samples, "a numeric array or an Ensemble")
    groups = None
    if arr.ndim == 1:
        arr = arr[:, None]
    elif arr.ndim == 3:
        t, p, d = arr.shape
        groups = np.broadcast_to(np.arange(p), (t, p)).reshape(-1)
        arr = arr.reshape(t * p, d)
    elif arr.ndim != 2:
        raise ValueError(
            f"samples: expected shape (n,), (n, dim) or (n_saved, n_particles, dim), got {arr.shape}"
        )
    if arr.shape[0] < 2:
        raise ValueError("samples: need at least 2 samples")
    finite = np.all(np.isfinite(arr), axis=1)
    if not np.all(finite):
        raise ValueError(f"samples: {int((~finite).sum())} sample(s) contain NaN or inf (diverged?)")
    return arr, groups


def _resolve_axes(axes, dim, pts):
    if axes is None:
        if dim <= 2:
            return np.eye(dim)
        cov = np.cov(pts, rowvar=False)
        w, V = np.linalg.eigh(cov)
        V = V[:, np.argsort(w)[::-1][:2]]
        # fix the sign: largest component positive
        V = V * np.sign(V[np.argmax(np.abs(V), axis=0), np.arange(2)])
        return V
    arr = np.asarray(axes)
    if arr.ndim == 1 and np.issubdtype(arr.dtype, np.integer):
        if arr.size not in (1, 2) or np.any(arr < 0) or np.any(arr >= dim) or len(set(arr.tolist())) != arr.size:
            raise ValueError(f"axes: expected 1 or 2 distinct coordinate indices in [0, {dim}), got {axes!r}")
        return np.eye(dim)[:, arr]
    arr = np.asarray(axes, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] != dim or arr.shape[1] not in (1, 2):
        raise ValueError(f"axes: expected coordinate indices or a ({dim}, 1|2) matrix, got shape {arr.shape}")
    if not np.allclose(arr.T @ arr, np.eye(arr.shape[1]), atol=1e-8):
        raise ValueError("axes: columns must be orthonormal")
    return arr


def _resolve_box(box, y):
    k = y.shape[1]
    if box is None:
        lo, hi = y.min(axis=0), y.max(axis=0)
        span = np.where(hi > lo, hi - lo, 1.0)
        return np.stack([lo - 1e-9 * span, hi + 1e-9 * span], -1)
    arr = np.asarray(box, dtype=np.float64)
    if arr.shape == (2,):
        arr = np.tile(arr, (k, 1))
    if arr.shape != (k, 2):
        raise ValueError(f"box: expected (lo, hi) or {k} pairs ((lo, hi), ...), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr[:, 1] <= arr[:, 0]):
        raise ValueError(f"box: each axis needs finite lo < hi, got {arr.tolist()}")
    return arr


def _resolve_bins(bins, k):
    vals = [bins] * k if np.ndim(bins) == 0 else list(bins)
    if len(vals) != k:
        raise ValueError(f"bins: expected an int or {k} ints, got {bins!r}")
    for v in vals:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 2:
            raise ValueError(f"bins: expected integer(s) >= 2, got {bins!r}")
    return [int(v) for v in vals]


def _bandwidth(bandwidth, y, n, k):
    sigma = y.std(axis=0, ddof=1)
    if np.any(sigma <= 0):
        raise ValueError("samples: zero spread along an estimated axis")
    if bandwidth is None or (isinstance(bandwidth, str) and bandwidth == "scott"):
        return sigma * n ** (-1.0 / (k + 4))
    if isinstance(bandwidth, str) and bandwidth == "silverman":
        return sigma * (4.0 / (k + 2)) ** (1.0 / (k + 4)) * n ** (-1.0 / (k + 4))
    try:
        h = np.broadcast_to(np.asarray(bandwidth, dtype=np.float64), (k,)).copy()
    except (TypeError, ValueError):
        raise ValueError(f"bandwidth: expected 'scott', 'silverman', a number or {k} numbers") from None
    if np.any(~np.isfinite(h)) or np.any(h <= 0):
        raise ValueError(f"bandwidth: must be positive, got {bandwidth!r}")
    return h


def _flat_index(y, edges_lo, width, nb):
    """Cell index (flattened, C order) of each point; -1 outside."""
    k = y.shape[1]
    idx = np.zeros(y.shape[0], dtype=np.int64)
    inside = np.ones(y.shape[0], dtype=bool)
    for a in range(k):
        ia = np.floor((y[:, a] - edges_lo[a]) / width[a]).astype(np.int64)
        inside &= (ia >= 0) & (ia < nb[a])
        idx = idx * nb[a] + np.clip(ia, 0, nb[a] - 1)
    return np.where(inside, idx, -1)


def _count(idx, size, weights=None):
    ok = idx >= 0
    w = None if weights is None else weights[ok]
    return np.bincount(idx[ok], weights=w, minlength=size).astype(np.float64)


def _find_modes(logp, centers, threshold):
    """Mode positions (m, k) of a gridded log-density: peaks with positive prominence above ``max + threshold``."""
    return find_modes(logp, centers, min_log_ratio=threshold).position


# --------------------------------------------------------------------------- main


def estimate_potential(
    samples,
    *,
    beta_inv,
    bins=64,
    box=None,
    kde: bool = True,
    bandwidth=None,
    errors: str = "auto",
    n_boot: int = 50,
    seed: int = 0,
    axes=None,
    mode_threshold: float = 0.05,
    mode_prominence: Optional[float] = None,
) -> PotentialEstimate:
    """Estimate ``Phi = -beta^-1 log rho`` from samples, with standard errors and modes.

    Args:
        samples: ``(n,)``, ``(n, dim)`` independent samples, or
            ``(n_saved, n_particles, dim)`` snapshots of independent particles
            (an :class:`~sdesim.Ensemble` works: its ``.x`` is used).
        beta_inv: temperature ``beta^-1 > 0`` (only scales ``Phi`` and its error).
        bins: bins per axis (int or one per axis).
        box: ``(lo, hi)`` (all axes) or ``((lo, hi), (lo, hi))``; default: the
            range of the (projected) samples.
        kde: also compute the kernel density estimate (needed for ``modes``).
        bandwidth: ``"scott"`` (default), ``"silverman"``, or kernel standard
            deviation(s) in the projected coordinates.
        errors: ``"auto"`` (multinomial/analytic for 2D input, particle
            bootstrap for 3D input), ``"analytic"`` or ``"bootstrap"``.
        n_boot: bootstrap replicates (also used for the mode errors).
        seed: seed of the bootstrap.
        axes: for ``dim > 2`` (or to pick a marginal): coordinate indices or a
            ``(dim, k)`` orthonormal matrix; default two leading principal axes.
        mode_threshold: keep KDE maxima with density >= this fraction of the max.
        mode_prominence: ``None`` (default): keep peaks whose prominence
            exceeds the threshold set by ``z`` standard errors of
            ``log rho_hat`` (module docstring); a number: a fixed prominence
            threshold in ``log rho`` units instead.

    Returns:
        :class:`PotentialEstimate`.
    """
    beta_inv = check_positive(beta_inv, "beta_inv")
    pts, groups = _as_samples(samples)
    n, dim = pts.shape
    if errors not in ("auto", "analytic", "multinomial", "bootstrap"):
        raise ValueError(f"errors: expected 'auto', 'analytic' or 'bootstrap', got {errors!r}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 2:
        raise ValueError(f"n_boot: expected an integer >= 2, got {n_boot!r}")
    if not (0.0 < float(mode_threshold) < 1.0):
        raise ValueError(f"mode_threshold: expected a number in (0, 1), got {mode_threshold!r}")
    if mode_prominence is not None:
        try:
            ok = float(mode_prominence) >= 0.0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"mode_prominence: expected None or a number >= 0, got {mode_prominence!r}")
    A = _resolve_axes(axes, dim, pts)
    y = pts if A.shape == (dim, dim) and np.array_equal(A, np.eye(dim)) else pts @ A
    k = y.shape[1]
    if k > 2:
        raise ValueError(f"axes: can estimate 1 or 2 dimensions, got {k}")
    B = _resolve_box(box, y)
    nb = _resolve_bins(bins, k)
    width = (B[:, 1] - B[:, 0]) / np.asarray(nb)
    edges = tuple(np.linspace(B[a, 0], B[a, 1], nb[a] + 1) for a in range(k))
    centers = tuple(0.5 * (e[1:] + e[:-1]) for e in edges)
    cell = float(np.prod(width))
    use_boot = errors == "bootstrap" or (errors == "auto" and groups is not None)
    mode = "bootstrap" if use_boot else ("multinomial" if errors != "analytic" else "analytic")

    idx = _flat_index(y, B[:, 0], width, nb)
    counts = _count(idx, int(np.prod(nb))).reshape(nb)
    rho = counts / (n * cell)
    with np.errstate(divide="ignore", invalid="ignore"):
        logr = np.where(counts > 0, np.log(np.where(counts > 0, rho, 1.0)), np.nan)

    # Poisson bootstrap: one Poisson(1) weight per group (particle) or per sample.
    # For independent samples the binned data of a replicate are exactly
    # independent Poisson(n_k) counts, so no per-sample draws are needed.
    rng = np.random.default_rng(seed)
    n_groups = int(groups.max()) + 1 if groups is not None else n

    def replicate(index, base):
        """Bootstrap counts on the grid of ``index`` (flattened) and the replicate's N."""
        if groups is None:
            cb = rng.poisson(base).astype(np.float64)
            return cb, cb.sum() + rng.poisson(max(n - base.sum(), 0.0))
        w = rng.poisson(1.0, size=n_groups).astype(np.float64)[groups]
        return _count(index, base.size, w).reshape(base.shape), w.sum()

    if use_boot:
        lr_b = np.empty((n_boot,) + tuple(nb))
        for b in range(n_boot):
            cb, nb_tot = replicate(idx, counts)
            with np.errstate(divide="ignore", invalid="ignore"):
                lr_b[b] = np.where(cb > 0, np.log(cb / (nb_tot * cell)), np.nan)
        stderr = beta_inv * np.std(lr_b, axis=0, ddof=1)
        stderr = np.where(np.all(np.isfinite(lr_b), axis=0), stderr, np.nan)
    else:
        p = counts / n
        with np.errstate(divide="ignore", invalid="ignore"):
            stderr = np.where(counts > 0, beta_inv * np.sqrt((1.0 - p) / counts), np.nan)
    phi = -beta_inv * logr
    phi = phi - np.nanmin(phi)

    h = _bandwidth(bandwidth, y, n, k)
    phi_kde = stderr_kde = rho_kde = None
    modes = np.zeros((0, k))
    mode_se = np.zeros((0, k))
    mode_height = mode_prom = mode_thr = np.zeros(0)
    if kde:
        # fine grid: odd refinement r of the output bins, padded by >= 4 h
        cap = 4096 if k == 1 else 1024
        r = []
        for a in range(k):
            ra = int(np.ceil(4.0 * width[a] / h[a]))
            ra = max(1, min(ra, max(1, cap // nb[a])))
            r.append(ra + (1 - ra % 2))
        fw = width / np.asarray(r)
        pad = [int(np.ceil(4.0 * h[a] / fw[a])) for a in range(k)]
        fn = [nb[a] * r[a] + 2 * pad[a] for a in range(k)]
        flo = B[:, 0] - np.asarray(pad) * fw
        fidx = _flat_index(y, flo, fw, fn)
        sig = h / fw
        take = tuple(slice(pad[a] + r[a] // 2, pad[a] + r[a] * nb[a], r[a]) for a in range(k))
        fcell = float(np.prod(fw))
        inner = tuple(slice(pad[a], pad[a] + r[a] * nb[a]) for a in range(k))
        fine_centers = [flo[a] + fw[a] * (np.arange(fn[a]) + 0.5) for a in range(k)]
        inner_centers = [fine_centers[a][inner[a]] for a in range(k)]

        def smooth(c, s):
            return scipy.ndimage.gaussian_filter(c, s, mode="constant", truncate=4.0)

        fc = _count(fidx, int(np.prod(fn))).reshape(fn)
        dens_f = smooth(fc, sig) / (n * fcell)
        rho_kde = dens_f[take]
        with np.errstate(divide="ignore", invalid="ignore"):
            lk = np.where(rho_kde > 0, np.log(np.where(rho_kde > 0, rho_kde, 1.0)), np.nan)
        phi_kde = -beta_inv * lk
        phi_kde = phi_kde - np.nanmin(phi_kde)
        with np.errstate(divide="ignore"):
            logf = np.log(dens_f[inner])  # -inf where no kernel reaches: the lowest level
        logf_floor = np.log(np.maximum(dens_f[inner], 1e-300))
        # candidates: every interior peak above the height cut; the prominence
        # threshold needs the standard errors, which for the bootstrap come from
        # the same replicates as the mode errors
        cand = find_modes(logf, inner_centers, min_log_ratio=np.log(mode_threshold))
        n_cand = len(cand)

        # bootstrap (always for modes; for the KDE error bars when use_boot)
        lk_b = np.empty((n_boot,) + tuple(nb)) if use_boot else None
        mode_b = np.full((n_boot, n_cand, k), np.nan)
        dev = np.zeros(logf.shape)  # sums of (log replicate - log estimate) and its square
        dev2 = np.zeros(logf.shape)
        win = [max(2.0 * h[a], 3.0 * fw[a]) for a in range(k)]
        for b in range(n_boot):
            cb, nb_tot = replicate(fidx, fc)
            db = smooth(cb, sig) / (nb_tot * fcell)
            if use_boot:
                with np.errstate(divide="ignore"):
                    lk_b[b] = np.log(db[take])
            ldb = np.log(np.maximum(db[inner], 1e-300))
            if use_boot and mode_prominence is None:
                dev += ldb - logf_floor
                dev2 += (ldb - logf_floor) ** 2
            for m in range(n_cand):
                sl = tuple(
                    np.nonzero(np.abs(inner_centers[a] - cand.position[m, a]) <= win[a])[0] for a in range(k)
                )
                if any(s.size < 3 for s in sl):
                    continue
                sub = ldb[np.ix_(*sl)]
                found = _find_modes(sub, [inner_centers[a][sl[a]] for a in range(k)], -np.inf)
                if found.shape[0]:
                    j = int(np.argmin(np.sum((found - cand.position[m]) ** 2, axis=1)))
                    mode_b[b, m] = found[j]

        c2 = float(np.prod((4.0 * np.pi * h**2) ** -0.5))
        if not use_boot:
            # analytic KDE variance (E[K_h^2] - rho_hat^2) / N on the fine grid
            second_f = c2 * smooth(fc, sig / np.sqrt(2.0)) / (n * fcell)
            var_f = np.maximum(second_f - dens_f**2, 0.0) / n
        if mode_prominence is not None:
            sel = find_modes(logf, inner_centers, min_prominence=float(mode_prominence),
                             min_log_ratio=np.log(mode_threshold))
        else:
            if use_boot:
                se_log = np.sqrt(np.maximum(dev2 - dev**2 / n_boot, 0.0) / (n_boot - 1))
            else:
                with np.errstate(divide="ignore", invalid="ignore"):
                    se_log = np.sqrt(var_f[inner]) / dens_f[inner]
            eps = bonferroni_z(logf.size, _MODE_ALPHA) * se_log
            sel = find_modes(logf, inner_centers, error=eps, min_log_ratio=np.log(mode_threshold))
        keep = [int(np.flatnonzero(np.all(cand.index == i, axis=1))[0]) for i in sel.index]
        modes = sel.position
        mode_height, mode_prom, mode_thr = sel.log_density, sel.prominence, sel.threshold
        with np.errstate(invalid="ignore"):
            mode_se = np.nanstd(mode_b[:, keep], axis=0, ddof=1) if keep else np.zeros((0, k))

        if use_boot:
            with np.errstate(invalid="ignore"):
                stderr_kde = beta_inv * np.std(lk_b, axis=0, ddof=1)
            stderr_kde = np.where(np.all(np.isfinite(lk_b), axis=0), stderr_kde, np.nan)
        else:
            var = var_f[take]
            with np.errstate(divide="ignore", invalid="ignore"):
                stderr_kde = np.where(rho_kde > 0, beta_inv * np.sqrt(var) / rho_kde, np.nan)

    return PotentialEstimate(
        centers=centers[0] if k == 1 else centers,
        edges=edges,
        phi=phi,
        stderr=stderr,
        rho=rho,
        counts=counts,
        phi_kde=phi_kde,
        stderr_kde=stderr_kde,
        rho_kde=rho_kde,
        bandwidth=h,
        modes=modes,
        mode_stderr=mode_se,
        axes=A,
        n_samples=n,
        beta_inv=beta_inv,
        errors=mode,
        mode_log_density=mode_height,
        mode_prominence=mode_prom,
        mode_prominence_threshold=mode_thr,
    )
