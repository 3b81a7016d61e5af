r"""Modes of a gridded (log-)density: local maxima ranked by topographic prominence.

Definitions (``g`` = the gridded field, e.g. ``log rho``; 1D or 2D grid;
neighbours are the ``3^k - 1`` cells around a cell, 8 in 2D):

* **Order.** Cells are ordered by ``g``, ties broken by the flat (C-order)
  index, so that "higher" is a strict total order. Non-finite values (``nan``,
  ``-inf``: no density) are set to the lowest finite value of ``g``.
* **Peak.** A cell higher than all its neighbours. A plateau of equal values
  therefore holds one peak (or several with prominence 0), never a row of
  them, whatever the last bits of the values are.
* **Prominence** (topographic prominence = 0-dimensional persistence of the
  superlevel sets ``{g >= t}``): a peak ``P`` below the highest one has a *key
  saddle* ``S``, the highest cell such that some neighbour-to-neighbour path
  from ``P`` to a higher peak never goes below ``g(S)``, and
  ``prominence(P) = g(P) - g(S)``; the higher peak ``Q`` is the highest one
  of the region that ``P``'s region joins at ``S``. The highest peak's
  prominence is the range ``max g - min g``. Computed exactly: each cell
  points to its highest neighbour if that one is higher; following the
  pointers (pointer jumping) labels the basin of every peak; the pass between
  two adjacent basins is the highest ``min(g(a), g(b))`` over neighbouring
  cells ``a``, ``b`` in them; joining basins over passes from the highest down
  (union-find) merges the components of ``{g >= t}`` as ``t`` falls, and a
  peak dies where its component joins one with a higher peak (elder rule).

**Threshold from the error of g.** If ``|g_hat - g| <= eps`` on the whole
grid, the stability theorem of persistence diagrams (Cohen-Steiner,
Edelsbrunner & Harer 2007) matches every peak of ``g_hat`` with prominence
``> 2 eps`` to a distinct peak of ``g``, and peaks made by the error alone
have prominence ``<= 2 eps``. Here the error may vary over the grid and is
known up to a common constant (which changes no prominence): the caller gives
an interval ``e(x) = g_hat(x) - g(x) in [delta(x) - eps(x), delta(x) + eps(x)] + c``
(``delta``: ``error_offset``, default 0; ``eps``: ``error``), so that for any
two cells ``|e(x) - e(p)| <= span(x, p) = max(hi(x) - lo(p), hi(p) - lo(x))``
with ``lo, hi = delta -+ eps``. A peak ``P`` with key saddle ``S`` and higher
peak ``Q`` is kept when for some level ``t``, ``g(S) < t <= g(P)``,

    g(P) - t > A_P(t)   and   g(Q) - t > A_Q(t),
    A_X(t) = max of span(x, X) over the cells x of the component of {g > g(S)}
             holding X that have g >= t, widened by one cell.

Then the components of ``{g_hat >= t}`` holding ``P`` and ``Q`` are
disjoint, and on each the true ``g`` is higher at its peak than anywhere on
its border (``g_hat < t`` there), so each holds a true peak; by induction over
the merges, the kept peaks match distinct true peaks. The condition is
reported as ``prominence(P) > threshold`` with
``threshold = min_t [t - g(S) + max(A_P(t), A_Q(t) - g(Q) + g(P))]``. For a
constant ``eps`` and no offset the best level is just above ``g(S)`` and the
threshold is ``2 eps``, the global rule; a large or unknown error deep in a
poorly resolved tail does not hide a peak that stands well above it, and only
differences of ``delta`` within each side count (so a well-resolved peak is
not hidden by an uncertain depth of the other well). The highest peak is
always kept (it is the maximiser of ``g``; its location error is a separate
question). Callers supply the interval: ``z`` standard errors of a density
estimate (see :func:`bonferroni_z`), or the estimated discretisation error of
a Fokker--Planck solution as ``error_offset``.

Reported modes are peaks in the interior of the grid (a peak on the edge may
be the trace of a maximum outside it; edge cells still take part in the
flooding), refined to sub-cell accuracy by the stationary point of a
least-squares quadratic on the ``3^k`` stencil (clipped to one cell).

Cost: ``O(N log N)`` for all prominences of an ``N``-cell grid; each peak
tested against an error bound adds one labelling of the grid (peaks whose
prominence is below the error span of their own neighbourhood are rejected
before that).
"""

from __future__ import annotations

import dataclasses
import functools
from itertools import product

import numpy as np
import scipy.ndimage
import scipy.special

__all__ = ["Modes", "Peaks", "bonferroni_z", "find_modes", "peak_prominences"]


@dataclasses.dataclass(frozen=True)
class Peaks:
    """Every peak of a grid (highest first), from :func:`peak_prominences`.

    Attributes:
        index: ``(p, k)`` grid indices of the peak cells.
        height: ``(p,)`` ``g`` at the peaks.
        prominence: ``(p,)`` ``g(P) - g(S)``; the range of ``g`` for the highest.
        saddle: ``(p, k)`` grid indices of the key saddles (``-1`` for the highest).
        higher: ``(p, k)`` grid indices of the higher peak ``Q`` each one joins
            at its saddle (``-1`` for the highest).
    """

    index: np.ndarray
    height: np.ndarray
    prominence: np.ndarray
    saddle: np.ndarray
    higher: np.ndarray


@dataclasses.dataclass(frozen=True)
class Modes:
    """Modes of a gridded density, highest first (``m`` modes, ``k`` grid dimensions).

    Attributes:
        position: ``(m, k)`` sub-cell refined locations.
        index: ``(m, k)`` grid indices of the peak cells.
        log_density: ``(m,)`` the field (``log rho``) at the peak cells.
        prominence: ``(m,)`` in the same units (a ratio ``exp(prominence)``
            between the peak's density and its key saddle's; in units of
            ``Phi = -beta^-1 log rho`` multiply by ``beta^-1``).
        threshold: ``(m,)`` what the prominence had to exceed: the error
            threshold of the module docstring (``2 eps`` for a constant
            ``eps``) or the fixed ``min_prominence``, whichever is larger;
            ``0`` for the highest mode (always kept).
    """

    position: np.ndarray
    index: np.ndarray
    log_density: np.ndarray
    prominence: np.ndarray
    threshold: np.ndarray

    def __len__(self) -> int:
        return int(self.position.shape[0])

    def to_dict(self) -> dict:
        """JSON-friendly lists."""
        return {f.name: getattr(self, f.name).tolist() for f in dataclasses.fields(self)}


def bonferroni_z(n_cells: int, alpha: float = 0.01) -> float:
    """``z`` with ``P(max_i |Z_i| > z) <= alpha`` for ``n_cells`` standard normals, however correlated.

    Bonferroni: ``z = Phi^-1(1 - alpha / (2 n))``. With ``eps = z * se`` the
    bound ``|g_hat - g| <= eps`` holds on every cell with probability
    ``>= 1 - alpha`` when the errors are Gaussian with standard errors ``se``.
    """
    n = max(int(n_cells), 1)
    return float(-scipy.special.ndtri(alpha / (2.0 * n)))


def _offsets(k):
    return [d for d in product((-1, 0, 1), repeat=k) if any(d)]


def _shifted(a, d, fill):
    """``out[x] = a[x + d]`` (``fill`` outside the grid)."""
    out = np.full(a.shape, fill, dtype=a.dtype)
    src = tuple(slice(max(di, 0), a.shape[i] + min(di, 0)) for i, di in enumerate(d))
    dst = tuple(slice(max(-di, 0), a.shape[i] + min(-di, 0)) for i, di in enumerate(d))
    out[dst] = a[src]
    return out


def _prepare(g):
    g = np.array(g, dtype=np.float64)
    if g.ndim not in (1, 2) or min(g.shape) < 1:
        raise ValueError(f"logp: expected a 1D or 2D grid, got shape {g.shape}")
    fin = np.isfinite(g)
    if not fin.any():
        return g, None
    g[~fin] = g[fin].min()
    rank = np.empty(g.size, dtype=np.int64)
    rank[np.argsort(g.ravel(), kind="stable")] = np.arange(g.size)
    return g, rank.reshape(g.shape)


def _find(parent, a):
    root = a
    while parent[root] != root:
        root = parent[root]
    while parent[a] != root:  # path compression
        parent[a], a = root, parent[a]
    return root


def peak_prominences(logp) -> Peaks:
    """All peaks of a 1D or 2D grid with their prominences and key saddles (see the module docstring)."""
    g, rank = _prepare(logp)
    k = g.ndim
    if rank is None:
        return Peaks(np.zeros((0, k), int), np.zeros(0), np.zeros(0), np.zeros((0, k), int), np.zeros((0, k), int))
    n = g.size
    flat = np.arange(n).reshape(g.shape)
    # each cell points to its highest neighbour when that one is higher
    best_rank = rank.copy()
    best = flat.copy()
    for d in _offsets(k):
        r = _shifted(rank, d, -1)
        up = r > best_rank
        best_rank = np.where(up, r, best_rank)
        best = np.where(up, _shifted(flat, d, -1), best)
    parent = best.ravel()
    while True:  # pointer jumping: every cell -> the peak of its basin
        nxt = parent[parent]
        if np.array_equal(nxt, parent):
            break
        parent = nxt
    peaks = np.flatnonzero(parent == np.arange(n))
    cid = np.full(n, -1, dtype=np.int64)
    cid[peaks] = np.arange(peaks.size)
    basin = cid[parent].reshape(g.shape)  # compact basin id of every cell

    # passes between adjacent basins: highest min(rank a, rank b) over neighbouring pairs
    lo_l, hi_l, w_l = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for d in _offsets(k):
        if d <= tuple(-x for x in d):  # each unordered direction once
            continue
        b2 = _shifted(basin, d, -1)
        r2 = _shifted(rank, d, -1)
        m = (b2 >= 0) & (b2 != basin)
        lo_l.append(np.minimum(basin[m], b2[m]))
        hi_l.append(np.maximum(basin[m], b2[m]))
        w_l.append(np.minimum(rank[m], r2[m]))
    lo, hi, w = (np.concatenate(v) for v in (lo_l, hi_l, w_l))
    order = np.lexsort((w, hi, lo))
    lo, hi, w = lo[order], hi[order], w[order]
    last = np.ones(lo.size, dtype=bool)
    last[:-1] = (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])
    lo, hi, w = lo[last], hi[last], w[last]

    # union-find over basins, passes from the highest down; the lower top dies there
    rflat = rank.ravel()
    gflat = g.ravel()
    prank = rflat[peaks]
    cell_of_rank = np.empty(n, dtype=np.int64)
    cell_of_rank[rflat] = np.arange(n)
    uf = list(range(peaks.size))
    top = list(range(peaks.size))
    sad = np.full(peaks.size, -1, dtype=np.int64)
    up = np.full(peaks.size, -1, dtype=np.int64)
    for j in np.argsort(w, kind="stable")[::-1]:
        a, b = _find(uf, int(lo[j])), _find(uf, int(hi[j]))
        if a == b:
            continue
        low, high = (top[a], top[b]) if prank[top[a]] < prank[top[b]] else (top[b], top[a])
        sad[low] = cell_of_rank[w[j]]
        up[low] = peaks[high]
        uf[a] = b
        top[b] = high
    glob = sad < 0
    prom = np.where(glob, gflat[peaks] - gflat.min(), gflat[peaks] - gflat[np.maximum(sad, 0)])
    o = np.argsort(-prank, kind="stable")

    def cells(c):
        out = np.stack(np.unravel_index(np.maximum(c[o], 0), g.shape), -1)
        out[glob[o]] = -1
        return out

    idx = np.stack(np.unravel_index(peaks[o], g.shape), -1)
    return Peaks(idx, gflat[peaks[o]], prom[o], cells(sad), cells(up))


def _error_threshold(g, rank, g_of_rank, lo, hi, lo_dil, hi_dil, peak, saddle, higher):
    """``min_t [t - g(S) + max(A_P(t), A_Q(t) - g(Q) + g(P))]`` (module docstring).

    Levels are taken in rank order (so ties are handled): the set
    ``{rank >= L}`` has its border below ``g_of_rank[L - 1]``, which plays
    the part of ``t``; ``A`` changes only at ranks of the two sides, so
    ``L`` = one above the saddle and one above each side cell suffice.
    """
    lab, _ = scipy.ndimage.label(rank > rank[saddle], structure=np.ones((3,) * g.ndim, dtype=bool))

    def side(x):
        comp = lab == lab[x]
        o = np.argsort(-rank[comp])  # the side from the top down
        span = np.maximum(np.maximum.accumulate(hi_dil[comp][o]) - lo[x],
                          hi[x] - np.minimum.accumulate(lo_dil[comp][o]))
        return rank[comp][o], span

    rp, ap = side(peak)
    rq, aq = side(higher)
    rs, rP = rank[saddle], rank[peak]
    L = np.concatenate([[rs + 1], rp[rp < rP] + 1, rq[rq < rP] + 1])
    A_p = ap[np.searchsorted(-rp, -L, side="right") - 1]  # side cells with rank >= L
    A_q = aq[np.searchsorted(-rq, -L, side="right") - 1]
    need = g_of_rank[L - 1] - g[saddle] + np.maximum(A_p, A_q - (g[higher] - g[peak]))
    return float(np.min(need))


@functools.lru_cache(maxsize=None)
def _quadratic_fit(k):
    """Pseudo-inverse of the least-squares quadratic on the 3^k stencil and its quadratic terms."""
    offs = np.array(list(product((-1, 0, 1), repeat=k)), dtype=float)
    quad = [(a, b) for a in range(k) for b in range(a, k)]
    cols = [np.ones(len(offs))] + [offs[:, a] for a in range(k)] + [offs[:, a] * offs[:, b] for a, b in quad]
    return np.linalg.pinv(np.stack(cols, -1)), quad


def _refine(g, idx, centers):
    """Stationary point of the least-squares quadratic on the 3^k stencil around ``idx`` (clipped to a cell)."""
    k = g.ndim
    pinv, quad = _quadratic_fit(k)
    coef = pinv @ g[tuple(slice(i - 1, i + 2) for i in idx)].ravel()
    grad = coef[1 : k + 1]
    H = np.zeros((k, k))
    for c, (a, b) in zip(coef[k + 1 :], quad):
        if a == b:
            H[a, a] = 2 * c
        else:
            H[a, b] = H[b, a] = c
    try:
        d = -np.linalg.solve(H, grad)
    except np.linalg.LinAlgError:
        d = np.zeros(k)
    d = np.clip(np.nan_to_num(d), -1.0, 1.0)
    return np.array([centers[a][idx[a]] + d[a] * (centers[a][1] - centers[a][0]) for a in range(k)])


def find_modes(
    logp, centers, *, error=None, error_offset=None, min_prominence: float = 0.0, min_log_ratio: float = -np.inf
) -> Modes:
    """Modes of a gridded log-density: interior peaks that rise significantly above their key saddle.

    Args:
        logp: ``(n,)`` or ``(nx, ny)`` ``log rho`` (any additive constant).
        centers: one array of (uniformly spaced) cell centres per axis.
        error: ``eps``, half-width of the error interval of ``logp`` (scalar or
            an array of ``logp``'s shape; ``nan`` = unknown).
        error_offset: ``delta``, its centre (same shapes; default 0; ``nan`` =
            unknown). The error ``logp - log rho_true`` lies in
            ``[delta - eps, delta + eps]`` up to a common constant. With either
            given, a peak is kept when its prominence exceeds the threshold
            of the module docstring; with neither, every peak with positive
            prominence is (a plateau still counts once).
        min_prominence: a fixed floor on the prominence (same units as ``logp``).
        min_log_ratio: drop peaks lower than ``max(logp) + min_log_ratio``.

    Returns:
        :class:`Modes`, highest first. The highest peak of the grid is always
        kept when it is interior and passes ``min_log_ratio``.
    """
    g, rank = _prepare(logp)
    k = g.ndim
    if len(centers) != k or any(np.asarray(c).shape != (g.shape[a],) for a, c in enumerate(centers)):
        raise ValueError(f"centers: expected {k} arrays of lengths {g.shape}")
    centers = [np.asarray(c, dtype=np.float64) for c in centers]
    empty = Modes(np.zeros((0, k)), np.zeros((0, k), int), np.zeros(0), np.zeros(0), np.zeros(0))
    if rank is None or min(g.shape) < 3:
        return empty
    pk = peak_prominences(g)
    floor = float(min_prominence)
    use_error = error is not None or error_offset is not None
    if use_error:
        eps = np.abs(np.broadcast_to(np.asarray(0.0 if error is None else error, dtype=np.float64), g.shape))
        delta = np.broadcast_to(np.asarray(0.0 if error_offset is None else error_offset, dtype=np.float64), g.shape)
        unknown = np.isnan(eps) | np.isnan(delta)
        lo = np.where(unknown, -np.inf, delta - eps)
        hi = np.where(unknown, np.inf, delta + eps)
        lo_dil = scipy.ndimage.minimum_filter(lo, size=3, mode="nearest")  # widened by one cell
        hi_dil = scipy.ndimage.maximum_filter(hi, size=3, mode="nearest")
        g_of_rank = np.sort(g.ravel())
    top = g.max()
    rows = []
    for i in range(pk.height.size):
        idx = tuple(pk.index[i])
        interior = all(1 <= idx[a] <= g.shape[a] - 2 for a in range(k))
        if not interior or pk.height[i] < top + min_log_ratio:
            continue
        if i == 0:
            rows.append((idx, pk.height[i], pk.prominence[i], 0.0))
            continue
        thr = floor
        if use_error:
            # A_P(t) >= the span over P's own neighbourhood: a cheap lower bound first
            if not pk.prominence[i] > max(thr, hi_dil[idx] - lo[idx], hi[idx] - lo_dil[idx]):
                continue
            thr = max(thr, _error_threshold(g, rank, g_of_rank, lo, hi, lo_dil, hi_dil, idx,
                                            tuple(pk.saddle[i]), tuple(pk.higher[i])))
        if pk.prominence[i] > thr:
            rows.append((idx, pk.height[i], pk.prominence[i], thr))
    if not rows:
        return empty
    return Modes(
        position=np.stack([_refine(g, r[0], centers) for r in rows]),
        index=np.stack([r[0] for r in rows]).astype(int),
        log_density=np.array([r[1] for r in rows]),
        prominence=np.array([r[2] for r in rows]),
        threshold=np.array([r[3] for r in rows]),
    )
