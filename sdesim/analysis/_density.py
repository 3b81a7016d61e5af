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


def _check_options(errors, n_boot, mode_threshold, mode_prominence) -> None:
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


@dataclasses.dataclass(frozen=True)
class _Grid:
    """The output grid: ``box (k, 2)``, bins per axis ``nb``, bin ``width``, ``edges``, ``centers``, ``cell`` volume."""

    box: np.ndarray
    nb: list
    width: np.ndarray
    edges: tuple
    centers: tuple
    cell: float

    @classmethod
    def of(cls, y, box, bins) -> "_Grid":
        k = y.shape[1]
        B = _resolve_box(box, y)
        nb = _resolve_bins(bins, k)
        width = (B[:, 1] - B[:, 0]) / np.asarray(nb)
        edges = tuple(np.linspace(B[a, 0], B[a, 1], nb[a] + 1) for a in range(k))
        centers = tuple(0.5 * (e[1:] + e[:-1]) for e in edges)
        return cls(B, nb, width, edges, centers, float(np.prod(width)))


@dataclasses.dataclass(frozen=True)
class _FineGrid:
    """The KDE's binning grid: output bins refined ``r``-fold (odd), padded by ``>= 4 h`` on each side.

    ``take`` picks the output bin centres, ``inner`` the refined output box;
    ``sig`` is the bandwidth in fine cells.
    """

    width: np.ndarray
    n: list
    lo: np.ndarray
    sig: np.ndarray
    take: tuple
    inner: tuple
    inner_centers: list
    cell: float

    @classmethod
    def of(cls, grid: _Grid, h) -> "_FineGrid":
        nb, width = grid.nb, grid.width
        k = len(nb)
        cap = 4096 if k == 1 else 1024
        r = []
        for a in range(k):
            ra = int(np.ceil(4.0 * width[a] / h[a]))
            ra = max(1, min(ra, max(1, cap // nb[a])))
            r.append(ra + (1 - ra % 2))
        fw = width / np.asarray(r)
        pad = [int(np.ceil(4.0 * h[a] / fw[a])) for a in range(k)]
        fn = [nb[a] * r[a] + 2 * pad[a] for a in range(k)]
        flo = grid.box[:, 0] - np.asarray(pad) * fw
        take = tuple(slice(pad[a] + r[a] // 2, pad[a] + r[a] * nb[a], r[a]) for a in range(k))
        inner = tuple(slice(pad[a], pad[a] + r[a] * nb[a]) for a in range(k))
        fine_centers = [flo[a] + fw[a] * (np.arange(fn[a]) + 0.5) for a in range(k)]
        inner_centers = [fine_centers[a][inner[a]] for a in range(k)]
        return cls(fw, fn, flo, h / fw, take, inner, inner_centers, float(np.prod(fw)))


class _PoissonBootstrap:
    """Poisson bootstrap: one Poisson(1) weight per group (particle) or per sample.

    For independent samples the binned data of a replicate are exactly
    independent Poisson(n_k) counts, so no per-sample draws are needed.
    """

    def __init__(self, seed, groups, n, n_boot):
        self.rng = np.random.default_rng(seed)
        self.groups = groups
        self.n = n
        self.n_boot = n_boot
        self.n_groups = int(groups.max()) + 1 if groups is not None else n

    def replicate(self, index, base):
        """Bootstrap counts on the grid of ``index`` (flattened) and the replicate's N."""
        if self.groups is None:
            cb = self.rng.poisson(base).astype(np.float64)
            return cb, cb.sum() + self.rng.poisson(max(self.n - base.sum(), 0.0))
        w = self.rng.poisson(1.0, size=self.n_groups).astype(np.float64)[self.groups]
        return _count(index, base.size, w).reshape(base.shape), w.sum()


def _potential(rho, positive, beta_inv):
    """``-beta^-1 log rho`` where ``positive`` (else nan), shifted to minimum 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        logr = np.where(positive, np.log(np.where(positive, rho, 1.0)), np.nan)
    phi = -beta_inv * logr
    return phi - np.nanmin(phi)


def _bootstrap_stderr(log_reps, beta_inv):
    """``beta^-1`` times the spread of bootstrap ``log rho`` replicates; nan where a replicate is not finite."""
    with np.errstate(invalid="ignore"):
        se = beta_inv * np.std(log_reps, axis=0, ddof=1)
    return np.where(np.all(np.isfinite(log_reps), axis=0), se, np.nan)


def _histogram(y, grid: _Grid, beta_inv, boot: Optional[_PoissonBootstrap]):
    """``(counts, rho, phi, stderr)`` of the histogram; bootstrap errors with ``boot``, else multinomial."""
    n = y.shape[0]
    idx = _flat_index(y, grid.box[:, 0], grid.width, grid.nb)
    counts = _count(idx, int(np.prod(grid.nb))).reshape(grid.nb)
    rho = counts / (n * grid.cell)
    if boot is not None:
        lr_b = np.empty((boot.n_boot,) + tuple(grid.nb))
        for b in range(boot.n_boot):
            cb, nb_tot = boot.replicate(idx, counts)
            with np.errstate(divide="ignore", invalid="ignore"):
                lr_b[b] = np.where(cb > 0, np.log(cb / (nb_tot * grid.cell)), np.nan)
        stderr = _bootstrap_stderr(lr_b, beta_inv)
    else:
        p = counts / n
        with np.errstate(divide="ignore", invalid="ignore"):
            stderr = np.where(counts > 0, beta_inv * np.sqrt((1.0 - p) / counts), np.nan)
    return counts, rho, _potential(rho, counts > 0, beta_inv), stderr


def _smooth(c, s):
    return scipy.ndimage.gaussian_filter(c, s, mode="constant", truncate=4.0)


def _kde_replicates(fidx, fc, fg: _FineGrid, h, cand, logf_floor, boot: _PoissonBootstrap, *, out_shape, keep_log,
                    dev_sums):
    """Bootstrap the KDE: each replicate's modes near the candidates ``cand`` and, as asked, its ``log rho``.

    Returns ``(lk_b, mode_b, dev, dev2)``: ``log rho`` replicates at the bin
    centres ``out_shape`` (``keep_log``, else None), ``(n_boot, n_cand, k)`` replicate modes
    (nan where none is found within ``max(2 h, 3 fine cells)``), and the sums of
    ``log replicate - log estimate`` and of its square on the fine grid
    (``dev_sums``, else zeros).
    """
    k = len(fg.n)
    n_cand = len(cand)
    lk_b = np.empty((boot.n_boot,) + tuple(out_shape)) if keep_log else None
    mode_b = np.full((boot.n_boot, n_cand, k), np.nan)
    dev = np.zeros(logf_floor.shape)
    dev2 = np.zeros(logf_floor.shape)
    win = [max(2.0 * h[a], 3.0 * fg.width[a]) for a in range(k)]
    for b in range(boot.n_boot):
        cb, nb_tot = boot.replicate(fidx, fc)
        db = _smooth(cb, fg.sig) / (nb_tot * fg.cell)
        if keep_log:
            with np.errstate(divide="ignore"):
                lk_b[b] = np.log(db[fg.take])
        ldb = np.log(np.maximum(db[fg.inner], 1e-300))
        if dev_sums:
            dev += ldb - logf_floor
            dev2 += (ldb - logf_floor) ** 2
        for m in range(n_cand):
            mode_b[b, m] = _nearby_mode(ldb, fg.inner_centers, cand.position[m], win)
    return lk_b, mode_b, dev, dev2


def _nearby_mode(logp, centers, near, win):
    """The mode of ``logp`` within ``win`` of ``near`` closest to it (nan if none, or the window is < 3 cells)."""
    k = len(centers)
    sl = tuple(np.nonzero(np.abs(centers[a] - near[a]) <= win[a])[0] for a in range(k))
    if any(s.size < 3 for s in sl):
        return np.nan
    found = _find_modes(logp[np.ix_(*sl)], [centers[a][sl[a]] for a in range(k)], -np.inf)
    if not found.shape[0]:
        return np.nan
    return found[int(np.argmin(np.sum((found - near) ** 2, axis=1)))]


def _kde(y, grid: _Grid, h, beta_inv, boot: _PoissonBootstrap, use_boot, mode_threshold, mode_prominence) -> dict:
    """The binned KDE on the output grid with its errors, and its prominent modes with theirs (module docstring)."""
    n, k = y.shape
    fg = _FineGrid.of(grid, h)
    fidx = _flat_index(y, fg.lo, fg.width, fg.n)
    fc = _count(fidx, int(np.prod(fg.n))).reshape(fg.n)
    dens_f = _smooth(fc, fg.sig) / (n * fg.cell)
    rho_kde = dens_f[fg.take]
    with np.errstate(divide="ignore"):
        logf = np.log(dens_f[fg.inner])  # -inf where no kernel reaches: the lowest level
    logf_floor = np.log(np.maximum(dens_f[fg.inner], 1e-300))
    # candidates: every interior peak above the height cut; the prominence threshold needs the standard
    # errors, which for the bootstrap come from the same replicates as the mode errors
    cand = find_modes(logf, fg.inner_centers, min_log_ratio=np.log(mode_threshold))
    lk_b, mode_b, dev, dev2 = _kde_replicates(fidx, fc, fg, h, cand, logf_floor, boot, out_shape=grid.nb,
                                              keep_log=use_boot, dev_sums=use_boot and mode_prominence is None)
    var_f = None
    if not use_boot:  # analytic KDE variance (E[K_h^2] - rho_hat^2) / N on the fine grid
        c2 = float(np.prod((4.0 * np.pi * h**2) ** -0.5))
        second_f = c2 * _smooth(fc, fg.sig / np.sqrt(2.0)) / (n * fg.cell)
        var_f = np.maximum(second_f - dens_f**2, 0.0) / n
    if mode_prominence is not None:
        sel = find_modes(logf, fg.inner_centers, min_prominence=float(mode_prominence),
                         min_log_ratio=np.log(mode_threshold))
    else:
        if use_boot:
            se_log = np.sqrt(np.maximum(dev2 - dev**2 / boot.n_boot, 0.0) / (boot.n_boot - 1))
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                se_log = np.sqrt(var_f[fg.inner]) / dens_f[fg.inner]
        eps = bonferroni_z(logf.size, _MODE_ALPHA) * se_log
        sel = find_modes(logf, fg.inner_centers, error=eps, min_log_ratio=np.log(mode_threshold))
    keep = [int(np.flatnonzero(np.all(cand.index == i, axis=1))[0]) for i in sel.index]
    with np.errstate(invalid="ignore"):
        mode_se = np.nanstd(mode_b[:, keep], axis=0, ddof=1) if keep else np.zeros((0, k))
    if use_boot:
        stderr_kde = _bootstrap_stderr(lk_b, beta_inv)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            stderr_kde = np.where(rho_kde > 0, beta_inv * np.sqrt(var_f[fg.take]) / rho_kde, np.nan)
    return dict(phi_kde=_potential(rho_kde, rho_kde > 0, beta_inv), stderr_kde=stderr_kde, rho_kde=rho_kde,
                modes=sel.position, mode_stderr=mode_se, mode_log_density=sel.log_density,
                mode_prominence=sel.prominence, mode_prominence_threshold=sel.threshold)


def _no_kde(k) -> dict:
    return dict(phi_kde=None, stderr_kde=None, rho_kde=None, modes=np.zeros((0, k)), mode_stderr=np.zeros((0, k)),
                mode_log_density=np.zeros(0), mode_prominence=np.zeros(0), mode_prominence_threshold=np.zeros(0))


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
    _check_options(errors, n_boot, mode_threshold, mode_prominence)
    A = _resolve_axes(axes, dim, pts)
    y = pts if A.shape == (dim, dim) and np.array_equal(A, np.eye(dim)) else pts @ A
    k = y.shape[1]
    if k > 2:
        raise ValueError(f"axes: can estimate 1 or 2 dimensions, got {k}")
    grid = _Grid.of(y, box, bins)
    use_boot = errors == "bootstrap" or (errors == "auto" and groups is not None)
    boot = _PoissonBootstrap(seed, groups, n, n_boot)
    counts, rho, phi, stderr = _histogram(y, grid, beta_inv, boot if use_boot else None)
    h = _bandwidth(bandwidth, y, n, k)
    smooth = _kde(y, grid, h, beta_inv, boot, use_boot, mode_threshold, mode_prominence) if kde else _no_kde(k)
    return PotentialEstimate(
        centers=grid.centers[0] if k == 1 else grid.centers, edges=grid.edges, phi=phi, stderr=stderr, rho=rho,
        counts=counts, bandwidth=h, axes=A, n_samples=n, beta_inv=beta_inv,
        errors="bootstrap" if use_boot else ("multinomial" if errors != "analytic" else "analytic"), **smooth,
    )
