r"""Stationary Fokker--Planck equation in 2D by finite volumes (the exact reference).

For the Itô SDE ``dx = b(x) dt + sqrt(2 beta^-1 D(x)) dW`` the density obeys::

    d rho / dt = -div J,      J = b rho - beta^-1 div(D rho)

with the row-wise matrix divergence ``(div(D rho))_i = sum_j d_j (D_ij rho)``
(see :mod:`sdesim.diffusion`). Equivalently ``J = (b - beta^-1 div D) rho -
beta^-1 D grad rho``. With ``b = -grad f`` this is SGD's Fokker--Planck equation
(docs/paper.md); ``form="atype"`` / ``"atype_naive"`` use the A-type drift.

Discretisation (cell-centred finite volumes on an ``nx x ny`` grid over ``box``):

* unknowns ``rho[i, j]`` = cell averages at ``(x[i], y[j])`` (``'ij'`` indexing:
  first index is x; ``plt.pcolormesh(x, y, rho.T)`` draws it);
* normal flux through each interior face. The part
  ``v_n rho - beta^-1 D_nn d_n rho`` (``v = b - beta^-1 div D``) uses the
  Scharfetter--Gummel (exponential-fitting) flux
  ``(a/h) [B(-P) rho_L - B(P) rho_R]``, ``a = beta^-1 D_nn``, ``P = v_n h / a``,
  ``B(z) = z / (e^z - 1)``: exact for 1D constant coefficients, second order,
  and free of central-difference oscillations when the drift dominates. The
  cross term ``-beta^-1 D_nt d_t rho`` averages the tangential central
  differences of the two adjacent cells (one-sided at the box edge);
* zero flux through the box boundary (a reflecting box: choose it large enough
  that ``rho`` is negligible at its edge);
* ``A rho = 0`` is singular (``1^T A = 0``: mass is conserved); one equation is
  replaced by ``rho[k] = 1`` at a cell of high density, the sparse system is
  solved directly (SuperLU) and the result normalised to
  ``sum(rho) * dx * dy = 1``.

From ``rho`` the module derives ``Phi = -beta^-1 log rho`` (shifted to min 0),
the current ``J`` (face fluxes averaged to cell centres), the leftover force
``j = J / rho = -grad f + D grad Phi - beta^-1 div D`` (docs/paper.md), and -- in
2D every divergence-free ``J`` has a stream function -- the antisymmetric ``Q``
of Theorem 22. With ``Q = q [[0, 1], [-1, 0]]`` the A-type current is
``J = beta^-1 div(Q rho) = beta^-1 (d_2(q rho), -d_1(q rho))``, so with the
stream function ``psi`` of ``J = (d_2 psi, -d_1 psi)`` (``psi = 0`` on the box
boundary, i.e. ``q rho -> 0`` far away) ``q = psi / (beta^-1 rho)``.

Errors shrink as ``O(h^2)`` with the grid spacing ``h`` (tests check the rate).
:meth:`StationaryDensity2D.log_density_error` estimates them from a solve on
the grid twice as coarse; :meth:`StationaryDensity2D.mode_table` reports the
peaks of ``log rho`` whose topographic prominence exceeds what that error
could produce (:func:`sdesim.analysis.find_modes`).
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .._validate import check_positive
from ._modes import Modes, find_modes

__all__ = [
    "FokkerPlanck2D",
    "StationaryDensity2D",
    "fokker_planck_2d",
    "stationary_density_2d",
]


# --------------------------------------------------------------------------- input


def _parse_box(box, name: str = "box"):
    """``((x0, x1), (y0, y1))`` or ``(lo, hi)`` (same for both axes) -> 2x2 float array."""
    try:
        arr = np.asarray(box, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected ((xmin, xmax), (ymin, ymax)), got {box!r}") from None
    if arr.shape == (2,):
        arr = np.stack([arr, arr])
    if arr.shape != (2, 2):
        raise ValueError(f"{name}: expected ((xmin, xmax), (ymin, ymax)), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr[:, 1] <= arr[:, 0]):
        raise ValueError(f"{name}: each axis needs finite min < max, got {arr.tolist()}")
    return arr


def _parse_n(n, name: str = "n"):
    vals = (n, n) if np.ndim(n) == 0 else tuple(n)
    if len(vals) != 2:
        raise ValueError(f"{name}: expected an int or (nx, ny), got {n!r}")
    out = []
    for v in vals:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 3:
            raise ValueError(f"{name}: expected integer(s) >= 3, got {n!r}")
        out.append(int(v))
    return tuple(out)


def _bernoulli(z):
    """``B(z) = z / (exp(z) - 1)`` (``B(0) = 1``), stable for all real z."""
    z = np.asarray(z, dtype=np.float64)
    small = np.abs(z) < 1e-6
    zs = np.where(small, 1.0, z)
    with np.errstate(over="ignore"):
        big = zs / np.expm1(zs)
    return np.where(small, 1.0 - z / 2.0, big)


@eqx.filter_jit
def _coefficients(problem, pts, beta_inv, form):
    def one(x):
        b = problem.drift(x, beta_inv, form)
        return b, problem.diffusion_matrix(x), problem.diffusion.divergence(x)

    return jax.vmap(one)(pts)


_CHUNK = 16384  # fixed evaluation size: one compiled program serves every grid size


def _eval_coefficients(problem, pts, beta_inv, form):
    n = pts.shape[0]
    n_pad = -(-n // _CHUNK) * _CHUNK
    padded = np.concatenate([pts, np.repeat(pts[:1], n_pad - n, axis=0)])
    parts = [
        _coefficients(problem, jnp.asarray(padded[i : i + _CHUNK]), jnp.asarray(beta_inv), form)
        for i in range(0, n_pad, _CHUNK)
    ]
    b, D, divD = (
        np.concatenate([np.asarray(p[k], dtype=np.float64) for p in parts])[:n] for k in range(3)
    )
    if not (np.all(np.isfinite(b)) and np.all(np.isfinite(D)) and np.all(np.isfinite(divD))):
        raise ValueError("problem: drift or diffusion is not finite inside box")
    return b, D, divD


# --------------------------------------------------------------------------- operator


@dataclasses.dataclass(frozen=True, eq=False)
class FokkerPlanck2D:
    """Finite-volume Fokker--Planck generator on a 2D grid.

    ``d rho / dt = matrix @ rho.ravel()`` (C order, ``rho[i, j]`` at
    ``(x[i], y[j])``). Face fluxes are ``flux_x @ rho.ravel()`` (shape
    ``(nx - 1) * ny``, the face between cells ``(i, j)`` and ``(i + 1, j)`` at
    row ``i * ny + j``) and ``flux_y @ rho.ravel()`` (``nx * (ny - 1)``).
    """

    x: np.ndarray  #: (nx,) cell centres
    y: np.ndarray  #: (ny,) cell centres
    dx: float
    dy: float
    beta_inv: float
    form: str
    matrix: sp.csr_matrix  #: (nx*ny, nx*ny) generator
    flux_x: sp.csr_matrix
    flux_y: sp.csr_matrix

    @property
    def shape(self):
        return (self.x.size, self.y.size)

    def cell_fluxes(self, rho):
        """Face fluxes ``(Fx, Fy)`` of shapes ``(nx+1, ny)`` and ``(nx, ny+1)`` (zero on the box)."""
        nx, ny = self.shape
        r = np.asarray(rho, dtype=np.float64).ravel()
        Fx = np.zeros((nx + 1, ny))
        Fy = np.zeros((nx, ny + 1))
        Fx[1:-1] = (self.flux_x @ r).reshape(nx - 1, ny)
        Fy[:, 1:-1] = (self.flux_y @ r).reshape(nx, ny - 1)
        return Fx, Fy

    def evolve(self, rho0, times):
        """Densities at ``times`` (ascending, >= 0) from ``rho0`` (nx, ny): ``exp(t L) rho0``.

        Returns an array ``(len(times), nx, ny)``; uses
        :func:`scipy.sparse.linalg.expm_multiply` (mass is conserved exactly).
        """
        times = np.asarray(times, dtype=np.float64)
        if times.ndim != 1 or np.any(np.diff(times) < 0) or np.any(times < 0):
            raise ValueError("times: expected an ascending 1D array of non-negative times")
        rho0 = np.asarray(rho0, dtype=np.float64)
        if rho0.shape != self.shape:
            raise ValueError(f"rho0: expected shape {self.shape}, got {rho0.shape}")
        out = np.empty((times.size,) + self.shape)
        cur = rho0.ravel()
        t_prev = 0.0
        for k, t in enumerate(times):
            if t > t_prev:
                cur = spla.expm_multiply(self.matrix * (t - t_prev), cur)
                t_prev = t
            out[k] = cur.reshape(self.shape)
        return out


def fokker_planck_2d(problem, *, beta_inv, box, n, form: str = "ito") -> FokkerPlanck2D:
    """Build the finite-volume generator ``L`` with ``d rho/dt = L rho`` (see module docstring).

    Args:
        problem: a 2D problem (``problem.dim == 2``).
        beta_inv: temperature ``beta^-1 > 0``.
        box: ``((xmin, xmax), (ymin, ymax))`` or ``(lo, hi)``; zero-flux walls.
        n: cells per axis, an int or ``(nx, ny)``.
        form: drift interpretation, ``"ito"`` (``-grad f``), ``"atype"`` or
            ``"atype_naive"`` (see :meth:`AbstractProblem.drift`).
    """
    if getattr(problem, "dim", None) != 2:
        raise ValueError(f"problem: expected a 2D problem, got dim={getattr(problem, 'dim', None)}")
    beta_inv = check_positive(beta_inv, "beta_inv")
    if form not in ("ito", "atype", "atype_naive"):
        raise ValueError(f"form: expected 'ito', 'atype' or 'atype_naive', got {form!r}")
    if form != "ito" and not problem.has_atype:
        raise ValueError(f"form: {form!r} needs a problem with Phi and Q (has_atype)")
    B = _parse_box(box)
    nx, ny = _parse_n(n)
    dx = (B[0, 1] - B[0, 0]) / nx
    dy = (B[1, 1] - B[1, 0]) / ny
    x = B[0, 0] + dx * (np.arange(nx) + 0.5)
    y = B[1, 0] + dy * (np.arange(ny) + 0.5)
    idx = np.arange(nx * ny).reshape(nx, ny)

    # faces normal to x: between (i, j) and (i+1, j); faces normal to y likewise
    fx_pts = np.stack(np.meshgrid(x[:-1] + dx / 2, y, indexing="ij"), -1).reshape(-1, 2)
    fy_pts = np.stack(np.meshgrid(x, y[:-1] + dy / 2, indexing="ij"), -1).reshape(-1, 2)
    pts = np.concatenate([fx_pts, fy_pts])
    b, D, divD = _eval_coefficients(problem, pts, beta_inv, form)
    v = b - beta_inv * divD  # J = v rho - beta^-1 D grad rho
    nfx = fx_pts.shape[0]

    def normal_flux(axis):
        sl = slice(0, nfx) if axis == 0 else slice(nfx, None)
        t_axis = 1 - axis
        h, ht = (dx, dy) if axis == 0 else (dy, dx)
        a = beta_inv * D[sl, axis, axis]
        P = v[sl, axis] * h / a
        cross = -beta_inv * D[sl, axis, t_axis]
        if axis == 0:
            L = idx[:-1, :]
            R = idx[1:, :]
        else:
            L = idx[:, :-1]
            R = idx[:, 1:]
        L = L.ravel()
        R = R.ravel()
        rows, cols, vals = [], [], []
        face = np.arange(L.size)
        rows += [face, face]
        cols += [L, R]
        vals += [a / h * _bernoulli(-P), -a / h * _bernoulli(P)]
        # tangential derivative at cells L and R, averaged (each weight 1/2)
        for cells in (L, R):
            ij = np.stack(np.unravel_index(cells, (nx, ny)), -1)
            k = ij[:, t_axis]
            nt = ny if axis == 0 else nx
            up = np.minimum(k + 1, nt - 1)
            dn = np.maximum(k - 1, 0)
            span = (up - dn) * ht
            ij_up = ij.copy()
            ij_up[:, t_axis] = up
            ij_dn = ij.copy()
            ij_dn[:, t_axis] = dn
            c_up = np.ravel_multi_index(ij_up.T, (nx, ny))
            c_dn = np.ravel_multi_index(ij_dn.T, (nx, ny))
            w = 0.5 * cross / span
            rows += [face, face]
            cols += [c_up, c_dn]
            vals += [w, -w]
        Fm = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=(L.size, nx * ny),
        )
        # divergence: outflow from L, inflow to R
        G = sp.csr_matrix(
            (
                np.concatenate([-np.ones(L.size) / h, np.ones(L.size) / h]),
                (np.concatenate([L, R]), np.concatenate([face, face])),
            ),
            shape=(nx * ny, L.size),
        )
        return Fm, G

    Fx, Gx = normal_flux(0)
    Fy, Gy = normal_flux(1)
    Lmat = (Gx @ Fx + Gy @ Fy).tocsr()
    return FokkerPlanck2D(
        x=x, y=y, dx=dx, dy=dy, beta_inv=beta_inv, form=form, matrix=Lmat, flux_x=Fx, flux_y=Fy
    )


# --------------------------------------------------------------------------- stationary


@dataclasses.dataclass(frozen=True, eq=False)
class StationaryDensity2D:
    """Stationary solution on a grid. Arrays use ``'ij'`` indexing: ``[i, j]`` is at ``(x[i], y[j])``.

    Attributes:
        x, y: (nx,), (ny,) cell centres.
        rho: (nx, ny) density, ``rho.sum() * dx * dy == 1``.
        phi: (nx, ny) ``Phi = -beta^-1 log rho``, min 0 (``inf`` where ``rho <= 0``).
        current: (nx, ny, 2) stationary current ``J = b rho - beta^-1 div(D rho)``.
        leftover_force: (nx, ny, 2) ``j = J / rho`` (``nan`` where ``rho <= 0``).
        stream: (nx+1, ny+1) stream function on cell corners, ``J = (d_y psi, -d_x psi)``,
            zero on the box boundary.
        q: (nx, ny) ``Q = q [[0, 1], [-1, 0]]`` from ``q = psi / (beta^-1 rho)``.
        residual: ``max |L rho| / max |diag(L) rho|`` (solve quality).
        operator: the :class:`FokkerPlanck2D` generator.
        problem: the problem solved (used by :meth:`log_density_error`).
    """

    x: np.ndarray
    y: np.ndarray
    dx: float
    dy: float
    beta_inv: float
    rho: np.ndarray
    phi: np.ndarray
    current: np.ndarray
    leftover_force: np.ndarray
    stream: np.ndarray
    q: np.ndarray
    residual: float
    operator: FokkerPlanck2D
    problem: object = dataclasses.field(default=None, repr=False)

    @property
    def Q(self) -> np.ndarray:
        """(nx, ny, 2, 2) antisymmetric ``Q(x)``."""
        z = np.zeros_like(self.q)
        return np.stack([np.stack([z, self.q], -1), np.stack([-self.q, z], -1)], -2)

    @property
    def grid(self):
        """``(X, Y)`` meshgrids, shape (nx, ny) each."""
        return np.meshgrid(self.x, self.y, indexing="ij")

    def expect(self, values) -> float:
        """``E_rho[g] = sum g rho dx dy`` for grid values ``g`` (nx, ny)."""
        return float(np.sum(np.asarray(values) * self.rho) * self.dx * self.dy)

    def log_density_error(self) -> np.ndarray:
        r"""Estimated discretisation error (nx, ny) of ``log rho``, up to a constant (Richardson).

        The same problem is solved on the grid with spacing ``2h``
        (``ceil(n / 2)`` cells per axis; for odd ``n`` its box is one fine cell
        longer, which moves the zero-flux wall where ``rho`` must be
        negligible anyway). With ``L_h`` = ``log`` of this solution's cell
        averages aggregated to the coarse cells and ``L_2h`` the coarse
        solution's, the result is

            d = L_2h - L_h   (minus its value at the coarse cell of argmax rho),

        assigned to the 2x2 fine cells of each coarse cell; ``nan`` where
        either density is not positive (a tail the scheme does not resolve)
        and everywhere if the coarse grid would have fewer than 3 cells per
        axis or ``problem`` is unknown. If the error ``e_h`` of ``log rho``
        (relative to any fixed cell) at least halves when ``h`` halves
        (``e_2h = r e_h`` with one ``r >= 2``), ``d = (r - 1) e_h`` up to a
        constant, so ``|e_h(x) - e_h(y)| <= |d(x) - d(y)|``: differences of
        ``d`` bound those of the error, three times over in the ``O(h^2)``
        regime (``r = 4``). Computed once (one solve with a quarter of the
        cells) and cached.
        """
        cached = self.__dict__.get("_log_density_error")
        if cached is None:
            cached = _log_density_error(self)
            self.__dict__["_log_density_error"] = cached  # frozen dataclass: cache outside the fields
        return cached

    def mode_table(self, *, min_density: float = 1e-3, min_prominence: Optional[float] = None) -> Modes:
        """Modes of ``rho`` with their ``log rho`` and prominence (:class:`sdesim.analysis.Modes`).

        Peaks of ``log rho`` on the grid (8 neighbours, interior cells),
        refined by a 3x3 quadratic fit, highest first. A peak below the
        highest is kept when its topographic prominence (``log`` of the ratio
        of its density to that at its key saddle) exceeds the error threshold
        of :func:`sdesim.analysis.find_modes` for the error interval
        ``d +- nx * ny * u`` (``d`` = :meth:`log_density_error`, ``u`` = float64
        unit roundoff: the rounding scale of a direct solve with ``nx * ny``
        unknowns); where ``d`` is smooth that threshold is about
        ``max |d(x) - d(y)|`` over the cells above the key saddle.
        ``min_prominence`` (a number) replaces that rule by a fixed threshold.
        Peaks with ``rho < min_density * rho.max()`` are dropped.
        """
        with np.errstate(divide="ignore", invalid="ignore"):
            logp = np.where(self.rho > 0, np.log(self.rho), -np.inf)  # rho <= 0: the lowest level
        if min_prominence is None:
            rounding = self.rho.size * np.finfo(np.float64).eps
            return find_modes(logp, (self.x, self.y), error=rounding, error_offset=self.log_density_error(),
                              min_log_ratio=np.log(min_density))
        return find_modes(logp, (self.x, self.y), min_prominence=float(min_prominence),
                          min_log_ratio=np.log(min_density))

    def modes(self, *, min_density: float = 1e-3, min_prominence: Optional[float] = None):
        """Positions (m, 2) of :meth:`mode_table`'s modes, highest density first."""
        return self.mode_table(min_density=min_density, min_prominence=min_prominence).position

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """Draw ``n`` points (n, 2) from the piecewise-constant density (uniform in a cell)."""
        rng = np.random.default_rng(seed)
        p = np.clip(self.rho, 0.0, None).ravel()
        p = p / p.sum()
        k = rng.choice(p.size, size=int(n), p=p)
        i, j = np.unravel_index(k, self.rho.shape)
        u = rng.random((int(n), 2)) - 0.5
        return np.stack([self.x[i] + u[:, 0] * self.dx, self.y[j] + u[:, 1] * self.dy], -1)


def grid_modes(logp, x, y, *, min_log_ratio=np.log(1e-3)):
    """Positions (m, 2) of the modes of a gridded ``log p`` (nx, ny), highest first.

    :func:`sdesim.analysis.find_modes` without an error bound: every interior
    peak (8 neighbours) with positive prominence and
    ``log p >= max log p + min_log_ratio``, refined by a 3x3 quadratic fit.
    """
    return find_modes(logp, (np.asarray(x), np.asarray(y)), min_log_ratio=min_log_ratio).position


def _log_density_error(res) -> np.ndarray:
    """See :meth:`StationaryDensity2D.log_density_error`."""
    nx, ny = res.rho.shape
    cx, cy = -(-nx // 2), -(-ny // 2)
    if res.problem is None or min(cx, cy) < 3:
        return np.full((nx, ny), np.nan)
    x0, y0 = res.x[0] - res.dx / 2, res.y[0] - res.dy / 2
    box = ((x0, x0 + 2 * cx * res.dx), (y0, y0 + 2 * cy * res.dy))
    try:
        coarse = stationary_density_2d(res.problem, beta_inv=res.beta_inv, box=box, n=(cx, cy),
                                       form=res.operator.form)
    except ValueError:
        return np.full((nx, ny), np.nan)
    # complete 2x2 blocks of fine cells; an incomplete last row / column copies its neighbour
    fx, fy = nx // 2, ny // 2
    fine = res.rho[: 2 * fx, : 2 * fy].reshape(fx, 2, fy, 2).mean(axis=(1, 3))
    c = coarse.rho[:fx, :fy]
    ok = (fine > 0) & (c > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(ok, np.log(np.where(ok, c, 1.0)) - np.log(np.where(ok, fine, 1.0)), np.nan)
    d = np.pad(d, ((0, cx - fx), (0, cy - fy)), mode="edge")
    i, j = np.unravel_index(np.argmax(res.rho), res.rho.shape)
    d = d - d[i // 2, j // 2]
    return np.repeat(np.repeat(d, 2, axis=0), 2, axis=1)[:nx, :ny]


def stationary_density_2d(
    problem, *, beta_inv, box, n, form: str = "ito", operator: Optional[FokkerPlanck2D] = None
) -> StationaryDensity2D:
    """Solve ``div J = 0``, ``J = b rho - beta^-1 div(D rho)``, zero flux on ``box``, ``int rho = 1``.

    Args:
        problem: a 2D problem; ``b = problem.drift(x, beta_inv, form)`` and
            the full state-dependent ``D(x)`` (off-diagonal included) are used.
        beta_inv: temperature ``beta^-1 > 0``.
        box: ``((xmin, xmax), (ymin, ymax))`` or ``(lo, hi)``.
        n: cells per axis (int or ``(nx, ny)``); the error is ``O(h^2)``.
        form: ``"ito"`` (SGD: ``b = -grad f``), ``"atype"`` or ``"atype_naive"``.
        operator: a prebuilt :func:`fokker_planck_2d` generator (then the
            other grid arguments are ignored).

    Returns:
        :class:`StationaryDensity2D` with ``.x, .y, .rho, .phi, .current,
        .leftover_force, .stream, .q, .Q``.
    """
    op = operator if operator is not None else fokker_planck_2d(
        problem, beta_inv=beta_inv, box=box, n=n, form=form
    )
    nx, ny = op.shape
    Lmat = op.matrix
    N = nx * ny

    def solve(k):
        mask = np.ones(N)
        mask[k] = 0.0
        A = sp.diags(mask) @ Lmat + sp.csr_matrix(([1.0], ([k], [k])), shape=(N, N))
        rhs = np.zeros(N)
        rhs[k] = 1.0
        return spla.spsolve(A.tocsc(), rhs)

    # pin a cell of high density: first the cell where the deterministic drift is
    # weakest near the centre, then (if that cell turned out to be improbable) the max
    k = (nx // 2) * ny + ny // 2
    r = solve(k)
    if not np.all(np.isfinite(r)) or r[k] < 1e-8 * np.nanmax(np.abs(r)):
        k = int(np.nanargmax(r)) if np.all(np.isfinite(r)) else k
        r = solve(k)
    if not np.all(np.isfinite(r)):
        raise ValueError("problem: the stationary Fokker-Planck system is singular on this grid")
    r = r / (r.sum() * op.dx * op.dy)
    resid = float(np.max(np.abs(Lmat @ r)) / max(np.max(np.abs(Lmat.diagonal() * r)), 1e-300))
    rho = r.reshape(nx, ny)
    pos = rho > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        phi = np.where(pos, -op.beta_inv * np.log(np.where(pos, rho, 1.0)), np.inf)
    phi = phi - np.min(phi[pos])

    Fx, Fy = op.cell_fluxes(rho)
    current = np.stack([(Fx[:-1] + Fx[1:]) / 2, (Fy[:, :-1] + Fy[:, 1:]) / 2], -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        jforce = np.where(pos[..., None], current / rho[..., None], np.nan)
    stream = np.zeros((nx + 1, ny + 1))
    stream[:, 1:] = np.cumsum(Fx, axis=1) * op.dy
    psi_c = (stream[:-1, :-1] + stream[1:, :-1] + stream[:-1, 1:] + stream[1:, 1:]) / 4
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(pos, psi_c / (op.beta_inv * rho), np.nan)
    return StationaryDensity2D(
        x=op.x, y=op.y, dx=op.dx, dy=op.dy, beta_inv=op.beta_inv, rho=rho, phi=phi,
        current=current, leftover_force=jforce, stream=stream, q=q, residual=resid, operator=op,
        problem=problem,
    )
