r"""A 2D SGD-on-data toy with exact, state-dependent ``D(x)``: SGD vs SDE(D) vs Langevin.

Model: two-weight linear least squares ``f_k(x) = (a_k^T x - y_k)^2 / 2``,
``k = 1..N`` (``N`` even), built so that the gradient noise is anisotropic and
strongly state-dependent while the single-example gradient at the minimum is
*symmetric* (no third cumulant, so that the diffusion approximation -- which
keeps only the covariance of the noise -- is the right small-lr limit):

* base examples ``a = rho (cos theta, s sin theta)``, ``theta ~ U(0, 2 pi)``,
  ``rho ~ U(0.5, 1)`` (``s = v_scale``; bounded, so every per-example
  curvature ``|a_k|^2 <= lam^2`` and ``lr |a_k|^2`` stays small), residual
  ``r = sigma w (0.2 + |cos theta|)``, ``w ~ U(0.5, 1.5)``;
* every base example ``(a, r)`` comes with a partner ``(lam a, -r / lam)``
  (``lam = ratio``), and ``y_k = a_k^T x_true + r_k``.

At ``x* = x_true`` the partners' gradients ``a r`` and ``-a r`` cancel, so
``x*`` is the exact minimiser and the per-example gradients are symmetric,
but their Hessians ``a a^T`` and ``lam^2 a a^T`` differ: ``D(x)`` (quadratic in
``x``) has a non-zero slope ``dD/dx = 2 Cov(H_k, g_k) != 0`` at ``x*``. Then
``grad f_k = a_k (a_k^T x - y_k)``, ``H = A^T A / N``. The Itô SDE's
stationary density is skewed and its mode is *not* at ``x* = argmin f``
(Lemma 6 / Theorem 22; the shift grows like ``beta^-1``), while its mean is
(for linear least squares ``E x = x*`` exactly, also for discrete SGD).
Langevin (SGLD, ``D = c I``, ``c = tr D(x*) / 2``) has density
``exp(-f / (beta^-1 c))``: mode and mean at ``x*``.

:func:`compare_2d` runs the three chain kernels of :mod:`sdesim.chains` on it
and returns densities, total-variation distances (with a sampling-noise
floor), ``Phi_hat``, modes with bootstrap errors and circulation of the
stationary current, next to the exact Fokker--Planck solution of the SDE
(:func:`sdesim.analysis.stationary_density_2d`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

import jax.numpy as jnp
import numpy as np

from ..chains import _chains
from .._result import Result
from ..chains._theory import linreg_diffusion

__all__ = ["Toy2D", "Toy2DComparison", "toy_regression_2d", "compare_2d"]


@dataclasses.dataclass(frozen=True, eq=False)
class Toy2D:
    """The toy: data ``A (N, 2)``, ``y (N,)``, minimiser ``x_star``, Hessian ``H``, ``D_star = D(x*)``."""

    A: np.ndarray
    y: np.ndarray
    x_star: np.ndarray
    H: np.ndarray
    D_star: np.ndarray
    fs: _chains.FiniteSum

    def f(self, X, Y):
        """``f`` on a grid (arrays of any common shape)."""
        r = self.A[:, 0, None] * np.ravel(X) + self.A[:, 1, None] * np.ravel(Y) - self.y[:, None]
        return (0.5 * np.mean(r**2, axis=0)).reshape(np.shape(X))

    def D(self, x):
        return linreg_diffusion(self.A, self.y, x)


def toy_regression_2d(*, n_data: int = 40, ratio: float = 3.0, sigma: float = 1.0, v_scale: float = 0.4,
                      x_true=(0.5, -0.5), seed: int = 0, dtype="float64") -> Toy2D:
    """Build the toy (module docstring). Deterministic in ``seed``."""
    if isinstance(n_data, bool) or not isinstance(n_data, (int, np.integer)) or n_data < 4 or n_data % 2:
        raise ValueError(f"n_data: expected an even integer >= 4, got {n_data!r}")
    lam = float(ratio)
    if not lam > 0:
        raise ValueError(f"ratio: expected a positive number, got {ratio!r}")
    rng = np.random.default_rng(seed)
    m = n_data // 2
    th = rng.uniform(0.0, 2.0 * np.pi, size=m)
    rad = rng.uniform(0.5, 1.0, size=m)
    u = rad * np.cos(th)
    v = float(v_scale) * rad * np.sin(th)
    a = np.stack([u, v], axis=1)
    r = float(sigma) * rng.uniform(0.5, 1.5, size=m) * (0.2 + np.abs(np.cos(th)))
    A = np.concatenate([a, lam * a])
    r_all = np.concatenate([r, -r / lam])
    xt = np.asarray(x_true, dtype=np.float64)
    if xt.shape != (2,):
        raise ValueError(f"x_true: expected shape (2,), got {xt.shape}")
    y = A @ xt + r_all
    H = A.T @ A / n_data

    def loss(x, ak, yk):
        return 0.5 * (ak @ x - yk) ** 2

    fs = _chains.FiniteSum(loss, (jnp.asarray(A, dtype), jnp.asarray(y, dtype)), 2)
    return Toy2D(A, y, xt, H, linreg_diffusion(A, y, xt), fs)


def _tv(p, q):
    return 0.5 * float(np.abs(p - q).sum())


def _hist(x, edges):
    h, _, _ = np.histogram2d(x[:, 0], x[:, 1], bins=edges)
    return h / x.shape[0]


@dataclasses.dataclass(frozen=True)
class Toy2DComparison(Result):
    """What :func:`compare_2d` measured (``k`` in ``"sgd", "sde", "sgld"`` for the per-kernel dicts).

    Run: ``lr``, ``batch``, ``beta_inv = lr / (2 batch)``, ``spacing`` and
    ``burn_in`` (steps), ``x_star``, ``noise_power`` (SGLD's ``c = tr D / d``),
    ``ou_cov`` (the linearised SDE's stationary covariance).
    Per kernel: ``ens[k]`` (:class:`sdesim.Ensemble`), ``hist[k]`` (bin
    probabilities on ``edges`` over ``box``), ``mean[k]``, ``phi[k]``
    (:class:`sdesim.PotentialEstimate`), ``mode[k]`` and ``mode_stderr[k]``,
    ``circulation[k]`` and ``circulation_stderr[k]`` of the stationary current
    about ``x*`` with ``current[k]`` (:class:`sdesim.CurrentEstimate`; empty
    with ``current_steps=0``).
    References: ``fp`` (the Fokker--Planck solution of the SDE), ``exact_sde``
    and ``langevin`` (exact bin probabilities), ``mode_exact_sde``,
    ``circulation_exact_sde``.
    Distances: ``tv_sgd_sde``, ``tv_sgd_langevin``, ``tv_sde_exact``,
    ``tv_sgd_exact``, ``tv_sgld_langevin_exact``, ``tv_exact_sde_langevin``,
    ``tv_floor`` (TV between the two halves of the SGD chains: ``sqrt 2`` times
    the sampling floor of one histogram), ``mode_shift = |mode_sgd - x*|`` with
    ``mode_shift_stderr``, ``mode_shift_exact_sde``.
    """

    lr: float
    batch: int
    beta_inv: float
    spacing: int
    burn_in: int
    box: tuple
    edges: list
    noise_power: float
    ou_cov: np.ndarray
    x_star: np.ndarray
    ens: dict
    hist: dict
    mode: dict
    mode_stderr: dict
    mean: dict
    phi: dict
    circulation: dict
    circulation_stderr: dict
    current: dict
    fp: Any
    exact_sde: np.ndarray
    mode_exact_sde: np.ndarray
    circulation_exact_sde: float
    langevin: np.ndarray
    tv_sgd_sde: float
    tv_sgd_langevin: float
    tv_sde_exact: float
    tv_sgd_exact: float
    tv_sgld_langevin_exact: float
    tv_exact_sde_langevin: float
    tv_floor: float
    mode_shift: float
    mode_shift_stderr: float
    mode_shift_exact_sde: float


def compare_2d(toy: Toy2D, *, lr: float = 0.04, batch: int = 1, n_chains: int = 4000, n_snapshots: int = 100,
               spacing: Optional[int] = None, burn_in: Optional[int] = None, bins: int = 40, seed: int = 0,
               fp_cells: int = 120, current_steps: int = 200, n_boot: int = 30, dtype="float64") -> Toy2DComparison:
    """Run SGD (with replacement), SDE(exact D) and SGLD on ``toy`` at ``beta^-1 = lr/(2b)``.

    ``spacing`` (default ``~2 / (lr lambda_min(H))`` steps) separates snapshots,
    ``burn_in`` defaults to ``5 spacing``. Histograms use ``bins x bins`` cells
    on a box of ``+-5`` standard deviations around ``x*`` (the larger of the
    OU and Langevin ones per axis).

    Returns a :class:`Toy2DComparison`.
    """
    from ..analysis._current import estimate_current
    from ..analysis._density import estimate_potential
    from ..analysis._fokker_planck import grid_modes, stationary_density_2d
    from .._linear import ou_stationary_covariance

    lr = float(lr)
    b = int(batch)
    beta_inv = lr / (2.0 * b)
    lam_min = float(np.linalg.eigvalsh(toy.H).min())
    spacing = int(spacing or max(1, round(2.0 / (lr * lam_min))))
    burn_in = int(burn_in if burn_in is not None else 5 * spacing)
    xs = toy.x_star
    S = ou_stationary_covariance(toy.H, toy.D_star, beta_inv)
    c = float(np.trace(toy.D_star) / 2.0)
    S_lg = beta_inv * c * np.linalg.inv(toy.H)
    sd = np.sqrt(np.maximum(np.diag(S), np.diag(S_lg)))
    box = ((xs[0] - 5 * sd[0], xs[0] + 5 * sd[0]), (xs[1] - 5 * sd[1], xs[1] + 5 * sd[1]))
    edges = [np.linspace(lo, hi, bins + 1) for lo, hi in box]
    kernels = {
        "sgd": _chains.sgd(toy.fs, lr, b, sampling="replacement"),
        "sde": _chains.sde(toy.fs.problem(), lr, b),
        "sgld": _chains.sgld(toy.fs, lr, b, noise_power=c),
    }
    out: dict = {"lr": lr, "batch": b, "beta_inv": beta_inv, "spacing": spacing, "burn_in": burn_in,
                 "box": box, "edges": edges, "noise_power": c, "ou_cov": S, "x_star": xs,
                 "ens": {}, "hist": {}, "mode": {}, "mode_stderr": {}, "mean": {}, "phi": {},
                 "circulation": {}, "circulation_stderr": {}, "current": {}}
    for i, (name, ker) in enumerate(kernels.items()):
        ens = _chains.run_chains(ker, xs, n_chains=n_chains, n_steps=n_snapshots * spacing, save_every=spacing,
                                 burn_in=burn_in, seed=seed + 1000 * i, dtype=dtype)
        out["ens"][name] = ens
        smp = ens.samples()
        out["hist"][name] = _hist(smp, edges)
        out["mean"][name] = smp.mean(axis=0)
        pe = estimate_potential(ens.x, beta_inv=beta_inv, bins=bins, box=box, n_boot=n_boot, seed=seed,
                                mode_threshold=0.5)
        out["phi"][name] = pe
        out["mode"][name] = pe.modes[0]
        out["mode_stderr"][name] = pe.mode_stderr[0]
        # current: short run at every-other-step resolution from the stationary ensemble
        if current_steps <= 0:
            continue
        cur = _chains.run_chains(ker, ens.x[-1], n_chains=n_chains, n_steps=current_steps, save_every=2,
                                 seed=seed + 1000 * i + 1, dtype=dtype)
        ce = estimate_current(cur.x, tau=2 * lr, bins=bins, box=(box[0][0], box[0][1], box[1][0], box[1][1]),
                              center=xs, n_batches=20)
        out["circulation"][name] = ce.circulation
        out["circulation_stderr"][name] = ce.circulation_stderr
        out["current"][name] = ce
    # references
    st = stationary_density_2d(toy.fs.problem(), beta_inv=beta_inv, box=box, n=fp_cells)
    out["fp"] = st
    # FP density integrated onto the histogram grid (fp_cells a multiple of bins)
    r = fp_cells // bins
    if r * bins == fp_cells:
        out["exact_sde"] = (st.rho * st.dx * st.dy).reshape(bins, r, bins, r).sum(axis=(1, 3))
    else:  # pragma: no cover - configuration guard
        raise ValueError(f"fp_cells: must be a multiple of bins={bins}, got {fp_cells}")
    with np.errstate(divide="ignore"):
        modes = grid_modes(np.log(np.maximum(st.rho, 1e-300)), st.x, st.y, min_log_ratio=np.log(0.5))
    out["mode_exact_sde"] = np.asarray(modes)[0]
    X, Y = np.meshgrid(st.x, st.y, indexing="ij")
    Jx, Jy = st.current[..., 0], st.current[..., 1]
    out["circulation_exact_sde"] = float(np.sum((X - xs[0]) * Jy - (Y - xs[1]) * Jx) * st.dx * st.dy)
    sub = 8
    fx = [np.linspace(lo, hi, bins * sub + 1) for lo, hi in box]
    cx = [0.5 * (e[1:] + e[:-1]) for e in fx]
    FX, FY = np.meshgrid(*cx, indexing="ij")
    fval = toy.f(FX, FY)
    w = np.exp(-(fval - fval.min()) / (beta_inv * c))
    lg = w.reshape(bins, sub, bins, sub).sum(axis=(1, 3))
    out["langevin"] = lg / lg.sum()
    h = out["hist"]
    out["tv_sgd_sde"] = _tv(h["sgd"], h["sde"])
    out["tv_sgd_langevin"] = _tv(h["sgd"], h["sgld"])
    out["tv_sde_exact"] = _tv(h["sde"], out["exact_sde"])
    out["tv_sgd_exact"] = _tv(h["sgd"], out["exact_sde"])
    out["tv_sgld_langevin_exact"] = _tv(h["sgld"], out["langevin"])
    out["tv_exact_sde_langevin"] = _tv(out["exact_sde"], out["langevin"])
    half = n_chains // 2
    e = out["ens"]["sgd"]
    out["tv_floor"] = _tv(_hist(e.x[:, :half].reshape(-1, 2), edges), _hist(e.x[:, half:].reshape(-1, 2), edges))
    d = out["mode"]["sgd"] - xs
    nrm = float(np.linalg.norm(d))
    out["mode_shift"] = nrm
    u = d / max(nrm, 1e-300)
    out["mode_shift_stderr"] = float(np.sqrt(np.sum((u * out["mode_stderr"]["sgd"]) ** 2)))
    out["mode_shift_exact_sde"] = float(np.linalg.norm(out["mode_exact_sde"] - xs))
    return Toy2DComparison(**out)
