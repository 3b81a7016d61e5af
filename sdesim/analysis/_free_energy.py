r"""Free energy of an ensemble over time (Theorem 5 of Chaudhari & Soatto 2018).

For the Fokker--Planck flow with stationary density ``rho_ss = exp(-beta Phi) / Z``::

    F(rho) = E_rho[Phi] - beta^-1 H(rho),        H(rho) = -int rho log rho
           = beta^-1 KL(rho || rho_ss) - beta^-1 log Z

decreases monotonically along every trajectory ``rho_t`` (Theorem 5), also out
of equilibrium (``J != 0``), and ``F -> F_eq = -beta^-1 log Z``.

Estimators from an ensemble snapshot ``x_1..x_N ~ rho_t``:

* energy ``E[Phi]``: the sample mean of ``Phi(x_i)`` (``Phi`` a callable, JAX-
  traceable, or a :class:`~sdesim.StationaryDensity2D` whose gridded ``phi``
  is interpolated bilinearly);
* entropy, ``dim <= 2``: the histogram plug-in on one grid for all times,
  ``H = -sum p_k log(p_k / |cell|) + (K - 1) / (2 N)`` (Miller--Madow bias
  correction, ``K`` occupied bins); ``dim > 2`` (or ``entropy="knn"``): the
  Kozachenko--Leonenko k-nearest-neighbour estimator
  ``H = psi(N) - psi(k) + log V_d + (d / N) sum log eps_i``;
* ``F_eq = -beta^-1 log Z`` by quadrature of ``exp(-Phi / beta^-1)`` over the
  box (``dim <= 2``), so ``kl = (F - F_eq) / beta^-1`` estimates
  ``KL(rho_t || rho_ss)``;
* standard errors: Poisson bootstrap over particles (independent), the same
  weights for energy and entropy.

The histogram entropy has an ``O(h^2)`` binning bias (the same sign at all
times, larger for narrow densities): choose bins that resolve ``rho_t``.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import scipy.special
import scipy.spatial

from ._density import _float_samples
from .._validate import check_positive

__all__ = ["FreeEnergy", "free_energy"]


@dataclasses.dataclass(frozen=True, eq=False)
class FreeEnergy:
    """``F(rho_t)`` per snapshot. All arrays have shape ``(n_saved,)``.

    Attributes:
        t: snapshot times (``arange`` if the input had none).
        value: ``F = energy - beta^-1 entropy``; stderr: its bootstrap error.
        energy: ``E[Phi]``; entropy: ``H`` (differential entropy, nats).
        f_eq: ``-beta^-1 log Z`` (``nan`` when not computable, dim > 2).
        kl: ``(value - f_eq) / beta^-1``, an estimate of ``KL(rho_t || rho_ss)``.
    """

    t: np.ndarray
    value: np.ndarray
    stderr: np.ndarray
    energy: np.ndarray
    entropy: np.ndarray
    f_eq: float
    kl: np.ndarray
    beta_inv: float

    def is_decreasing(self, n_sigma: float = 3.0) -> bool:
        """True when no later value exceeds an earlier one by more than ``n_sigma`` joint errors."""
        v, s = self.value, self.stderr
        for i in range(v.size):
            up = v[i + 1 :] - v[i]
            if np.any(up > n_sigma * np.hypot(s[i + 1 :], s[i])):
                return False
        return True


def _phi_values(phi, pts):
    from ._fokker_planck import StationaryDensity2D

    if isinstance(phi, StationaryDensity2D):
        import scipy.interpolate

        ph = np.where(np.isfinite(phi.phi), phi.phi, np.nanmax(phi.phi[np.isfinite(phi.phi)]))
        interp = scipy.interpolate.RegularGridInterpolator(
            (phi.x, phi.y), ph, bounds_error=False, fill_value=None
        )
        return interp(pts)
    if not callable(phi):
        raise ValueError("phi: expected a callable x -> Phi(x) or a StationaryDensity2D")
    f = jax.jit(jax.vmap(phi))
    out = []
    for i in range(0, pts.shape[0], 1 << 16):
        out.append(np.asarray(f(jnp.asarray(pts[i : i + (1 << 16)])), dtype=np.float64))
    vals = np.concatenate(out)
    if vals.shape != (pts.shape[0],):
        raise ValueError("phi: must return a scalar per point")
    return vals


def _knn_entropy(y, k=4):
    n, d = y.shape
    tree = scipy.spatial.cKDTree(y)
    eps, _ = tree.query(y, k=k + 1)
    eps = np.maximum(eps[:, -1], 1e-300)
    logv = (d / 2) * np.log(np.pi) - scipy.special.gammaln(d / 2 + 1)
    return scipy.special.digamma(n) - scipy.special.digamma(k) + logv + d * np.mean(np.log(eps))


def free_energy(
    samples,
    *,
    beta_inv,
    phi,
    bins=48,
    box=None,
    t=None,
    entropy: str = "auto",
    n_boot: int = 50,
    seed: int = 0,
) -> FreeEnergy:
    """Estimate ``F(rho_t) = E[Phi] - beta^-1 H(rho_t)`` for every snapshot of an ensemble.

    Args:
        samples: an :class:`~sdesim.Ensemble` (``.x``, ``.t``) or an array
            ``(n_saved, n_particles, dim)``.
        beta_inv: temperature ``beta^-1``.
        phi: ``Phi`` with ``rho_ss ∝ exp(-Phi / beta^-1)``: a JAX-traceable
            callable ``x (dim,) -> scalar`` or a :class:`StationaryDensity2D`.
        bins: histogram bins per axis (``dim <= 2``).
        box: ``(lo, hi)`` or per-axis pairs; default: the range of all snapshots.
        t: snapshot times (default ``samples.t`` or ``arange``).
        entropy: ``"auto"`` (histogram for dim <= 2, kNN above), ``"hist"`` or ``"knn"``.
        n_boot: bootstrap replicates over particles; seed: their seed.
    """
    beta_inv = check_positive(beta_inv, "beta_inv")
    if t is None and hasattr(samples, "t"):
        t = samples.t
    x = _float_samples(samples, "an Ensemble or an array (n_saved, n_particles, dim)")
    if x.ndim != 3:
        raise ValueError(f"samples: expected shape (n_saved, n_particles, dim), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("samples: contain NaN or inf (diverged particles?)")
    n_t, n_p, d = x.shape
    if n_p < 10:
        raise ValueError(f"samples: need at least 10 particles, got {n_p}")
    t = np.arange(n_t, dtype=np.float64) if t is None else np.asarray(t, dtype=np.float64)
    if t.shape != (n_t,):
        raise ValueError(f"t: expected shape ({n_t},), got {t.shape}")
    if entropy not in ("auto", "hist", "knn"):
        raise ValueError(f"entropy: expected 'auto', 'hist' or 'knn', got {entropy!r}")
    method = ("hist" if d <= 2 else "knn") if entropy == "auto" else entropy
    if method == "hist" and d > 2:
        raise ValueError("entropy: 'hist' works for dim <= 2; use 'knn'")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 2:
        raise ValueError(f"n_boot: expected an integer >= 2, got {n_boot!r}")

    energy_pts = _phi_values(phi, x.reshape(-1, d)).reshape(n_t, n_p)
    rng = np.random.default_rng(seed)
    W = rng.poisson(1.0, size=(n_boot, n_p)).astype(np.float64)

    f_eq = np.nan
    if method == "hist":
        from ._density import _flat_index, _resolve_bins, _resolve_box

        B = _resolve_box(box, x.reshape(-1, d))
        nb = _resolve_bins(bins, d)
        width = (B[:, 1] - B[:, 0]) / np.asarray(nb)
        cell = float(np.prod(width))
        size = int(np.prod(nb))

        def hist_entropy(idx, w):
            ok = idx >= 0
            c = np.bincount(idx[ok], weights=w[ok], minlength=size)
            ntot = w.sum()
            p = c[c > 0] / ntot
            return -np.sum(p * np.log(p / cell)) + (p.size - 1) / (2 * ntot)

        H = np.empty(n_t)
        H_b = np.empty((n_boot, n_t))
        for i in range(n_t):
            idx = _flat_index(x[i], B[:, 0], width, nb)
            H[i] = hist_entropy(idx, np.ones(n_p))
            for b in range(n_boot):
                H_b[b, i] = hist_entropy(idx, W[b])
        # F_eq = -beta^-1 log int_box exp(-Phi/beta^-1), on a grid 4x finer than the bins
        if callable(phi) or hasattr(phi, "phi"):
            fine = [np.linspace(B[a, 0], B[a, 1], 4 * nb[a] + 1) for a in range(d)]
            fc = [0.5 * (f[1:] + f[:-1]) for f in fine]
            G = np.stack(np.meshgrid(*fc, indexing="ij"), -1).reshape(-1, d)
            lp = -_phi_values(phi, G) / beta_inv
            fcell = cell / 4**d
            f_eq = float(-beta_inv * (np.log(np.sum(np.exp(lp - lp.max())) * fcell) + lp.max()))
    else:
        H = np.array([_knn_entropy(x[i]) for i in range(n_t)])
        # kNN bootstrap: resample particles with replacement (duplicates would give eps = 0)
        H_b = np.empty((n_boot, n_t))
        for b in range(n_boot):
            sel = rng.choice(n_p, size=n_p, replace=True)
            sel = np.unique(sel)
            for i in range(n_t):
                H_b[b, i] = _knn_entropy(x[i, sel])

    E = energy_pts.mean(axis=1)
    E_b = (W @ energy_pts.T) / W.sum(axis=1, keepdims=True)
    F = E - beta_inv * H
    F_b = E_b - beta_inv * H_b
    se = F_b.std(axis=0, ddof=1)
    kl = (F - f_eq) / beta_inv if np.isfinite(f_eq) else np.full(n_t, np.nan)
    return FreeEnergy(t=t, value=F, stderr=se, energy=E, entropy=H, f_eq=f_eq, kl=kl, beta_inv=beta_inv)
