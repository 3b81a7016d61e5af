r"""Stationary probability current from particle snapshots.

For the Itô SDE ``dx = b dt + sqrt(2 beta^-1 D) dW`` the probability current
is ``J = b rho - beta^-1 div(D rho)`` (row-wise divergence), and in the steady
state ``J = j rho_ss`` (docs/paper.md §1). ``J`` is the Stratonovich mean velocity
density, ``J(x) = E[ dx/dt ∘ delta(x - x_t) ]``, which we estimate from
snapshots ``x_k`` spaced ``tau`` apart by *midpoint binning* of the velocity
increments (the Stratonovich rule; binning at ``x_k`` instead would estimate
``b rho``, the Itô drift density, not the current)::

    J_hat(cell) = sum_{k, p} (x_{k+1,p} - x_{k,p}) / tau * 1[m_{k,p} in cell]
                  / (n_pairs * cell_area),         m = (x_k + x_{k+1}) / 2

normalised so that ``J_hat`` is the current of the *normalised* density
``rho`` (``int rho = 1``). Bias is ``O(tau)``; ``tau`` should be small compared
with the relaxation time.

Scalars about a point ``c`` (2D; ``a x b = a_1 b_2 - a_2 b_1``):

* mean angular velocity ``Omega = int J . grad theta dx = int (x-c) x J / |x-c|^2 dx``,
  estimated from the angle increments of every particle about ``c``:
  ``Omega_tau = mean wrap(theta_{k+1} - theta_k) / tau`` (Itô's formula
  shows ``E dtheta/dt = int J . grad theta``; the singular term at ``c`` is
  integrable because ``J = O(|x-c|)`` there for a smooth current). Near ``c``
  the noise over one interval scrambles the winding, a bias ``O(tau)``, removed
  by Richardson extrapolation ``2 Omega_tau - Omega_{2 tau}``;
* circulation (angular momentum of the current)
  ``Gamma = int (x - c) x J dx``, estimated with midpoints:
  ``Gamma_hat = mean (m - c) x (x_{k+1} - x_k) / tau``.

Both vanish for a reversible process (``J = 0``: gradient drift, isotropic
constant ``D``). Error bars are batch means over ``n_batches`` groups of
particles (particles are independent; time correlation within a particle is
then accounted for automatically): ``stderr = std(batch values) / sqrt(B)``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np

from .._validate import check_finite_array, check_positive, check_positive_int

__all__ = ["CurrentEstimate", "estimate_current", "angular_velocity", "exact_current_rotating_double_well"]


@dataclasses.dataclass(frozen=True)
class CurrentEstimate:
    """Binned probability current and circulation about ``center``.

    Attributes:
        x_edges, y_edges: ``(n+1,)`` bin edges; ``x``, ``y``: ``(n,)`` centres.
        J: ``(n, n, 2)`` current, ``J[i, j]`` at ``(x[i], y[j])``.
        J_stderr: ``(n, n, 2)`` standard error (batch means).
        rho: ``(n, n)`` density of the midpoints (sums to 1 times cell area).
        center: ``(2,)``.
        angular_velocity, angular_velocity_stderr: ``Omega`` (rad per unit time).
        circulation, circulation_stderr: ``Gamma = int (x-c) x J dx``.
        n_pairs: number of (snapshot, particle) increments used; tau: snapshot spacing.
        lag: the lag, in snapshots, of the increments behind ``J`` and the
            circulation (always 1: ``x_{k+1} - x_k``, so the lag time is ``tau``).
            The midpoint circulation equals ``L(tau) / tau`` with the wedge
            ``L`` of :func:`sdesim.analysis.lag_wedge` at ``lag = 1``
            (``(m - c) x (x_{k+1} - x_k) = (x_k - c) x (x_{k+1} - c)``), so it
            depends on ``tau``; :func:`sdesim.analysis.compare_circulation`
            compares two estimates only at equal ``lag`` and ``tau``.
    """

    x_edges: np.ndarray
    y_edges: np.ndarray
    x: np.ndarray
    y: np.ndarray
    J: np.ndarray
    J_stderr: np.ndarray
    rho: np.ndarray
    center: np.ndarray
    angular_velocity: float
    angular_velocity_stderr: float
    circulation: float
    circulation_stderr: float
    n_pairs: int
    tau: float
    lag: int = 1

    def zscore(self, J_ref) -> np.ndarray:
        """``(J - J_ref) / J_stderr`` on cells with data (NaN elsewhere)."""
        J_ref = np.asarray(J_ref, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (self.J - J_ref) / self.J_stderr
        return np.where(self.J_stderr > 0, z, np.nan)


def _check_snapshots(x, name="x") -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 3:
        raise ValueError(f"{name}: expected snapshots of shape (n_saved, n_particles, dim), got {arr.shape}")
    if arr.shape[0] < 2:
        raise ValueError(f"{name}: need at least 2 snapshots, got {arr.shape[0]}")
    if arr.shape[2] != 2:
        raise ValueError(f"{name}: the current estimator is 2D (dim = 2), got dim = {arr.shape[2]}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    return arr


def _wrap(a):
    """Principal value of an angle difference, in (-pi, pi]."""
    return np.angle(np.exp(1j * a))


def _batches(n_particles: int, n_batches: int):
    n_batches = min(n_batches, n_particles)
    return np.array_split(np.arange(n_particles), n_batches)


def estimate_current(
    x,
    tau: float,
    *,
    bins: int = 24,
    box: Sequence[float] = (-2.0, 2.0, -2.0, 2.0),
    center: Sequence[float] = (0.0, 0.0),
    n_batches: int = 20,
    richardson: bool = True,
) -> CurrentEstimate:
    """Estimate ``J(x)`` on a grid and the circulation about ``center``.

    Args:
        x: snapshots ``(n_saved, n_particles, 2)`` of a stationary ensemble
            (e.g. ``Ensemble.x`` after burn-in).
        tau: time between consecutive snapshots (``dt * save_every``).
        bins: cells per axis; box: ``(xmin, xmax, ymin, ymax)``.
        center: point for the angular velocity and circulation.
        n_batches: particle groups for the batch-means error bars (>= 2).
        richardson: extrapolate the angular velocity to ``tau -> 0`` from the
            increments over ``tau`` and ``2 tau`` (``2 Omega_tau - Omega_2tau``).
            Within ``|x - c| < ~sqrt(2 beta^-1 tau)`` one snapshot interval's
            noise scrambles the winding, so the plain estimate loses a share of
            ``Omega`` proportional to ``tau``; the extrapolation removes it.

    Non-finite particles (diverged) are dropped and do not bias the result.
    """
    x = _check_snapshots(x)
    tau = check_positive(tau, "tau")
    bins = check_positive_int(bins, "bins")
    n_batches = check_positive_int(n_batches, "n_batches")
    if n_batches < 2:
        raise ValueError("n_batches: need at least 2 batches for error bars")
    box = check_finite_array(box, "box", shape=(4,))
    if not (box[1] > box[0] and box[3] > box[2]):
        raise ValueError(f"box: expected (xmin, xmax, ymin, ymax) with xmin < xmax, ymin < ymax, got {box}")
    c = check_finite_array(center, "center", shape=(2,))
    good = np.all(np.isfinite(x), axis=(0, 2))
    x = x[:, good]
    n_saved, n_p, _ = x.shape
    if n_p < n_batches:
        raise ValueError(f"x: {n_p} finite particles, fewer than n_batches = {n_batches}")
    xe = np.linspace(box[0], box[1], bins + 1)
    ye = np.linspace(box[2], box[3], bins + 1)
    area = (xe[1] - xe[0]) * (ye[1] - ye[0])
    groups = _batches(n_p, n_batches)
    B = len(groups)
    Jb = np.zeros((B, bins, bins, 2))
    Hb = np.zeros((B, bins, bins))
    Om = np.zeros(B)
    Ga = np.zeros(B)
    for g, idx in enumerate(groups):
        xs = x[:, idx].astype(np.float64)
        a, b = xs[:-1], xs[1:]
        v = (b - a) / tau
        m = 0.5 * (a + b)
        npairs = v.shape[0] * v.shape[1]
        mx, my = m[..., 0].ravel(), m[..., 1].ravel()
        H, _, _ = np.histogram2d(mx, my, bins=[xe, ye])
        for k in range(2):
            Jk, _, _ = np.histogram2d(mx, my, bins=[xe, ye], weights=v[..., k].ravel())
            Jb[g, ..., k] = Jk / (npairs * area)
        Hb[g] = H / (npairs * area)
        rel = m - c
        Ga[g] = np.mean(rel[..., 0] * v[..., 1] - rel[..., 1] * v[..., 0])
        ang = np.arctan2(xs[..., 1] - c[1], xs[..., 0] - c[0])
        om1 = _wrap(np.diff(ang, axis=0)).mean() / tau
        om2 = _wrap(ang[2:] - ang[:-2]).mean() / (2 * tau) if n_saved > 2 else om1
        Om[g] = 2 * om1 - om2 if richardson and n_saved > 2 else om1
    sq = math.sqrt(B)
    return CurrentEstimate(
        x_edges=xe,
        y_edges=ye,
        x=0.5 * (xe[1:] + xe[:-1]),
        y=0.5 * (ye[1:] + ye[:-1]),
        J=Jb.mean(0),
        J_stderr=Jb.std(0, ddof=1) / sq,
        rho=Hb.mean(0),
        center=c,
        angular_velocity=float(Om.mean()),
        angular_velocity_stderr=float(Om.std(ddof=1) / sq),
        circulation=float(Ga.mean()),
        circulation_stderr=float(Ga.std(ddof=1) / sq),
        n_pairs=int((n_saved - 1) * n_p),
        tau=tau,
    )


def angular_velocity(x, tau: float, *, center: Sequence[float] = (0.0, 0.0), n_batches: int = 20,
                     richardson: bool = True):
    """``(Omega, stderr)``: mean angular velocity of snapshots ``(n_saved, n_particles, 2)`` about ``center``."""
    est = estimate_current(x, tau, bins=1, box=(-1.0, 1.0, -1.0, 1.0), center=center, n_batches=n_batches,
                           richardson=richardson)
    return est.angular_velocity, est.angular_velocity_stderr


def exact_current_rotating_double_well(lam: float, x, y):
    """Exact stationary current of Example 19 (beta = 1, D = I) on a grid.

    ``J(x) = lam exp(-r^4/4) (-x2, x1) / Z``, ``Z = int exp(-Phi)``; returns
    ``(J (len(x), len(y), 2), Z, Omega, Gamma)`` with the exact mean angular
    velocity ``Omega = lam pi^{3/2} / Z`` and circulation ``Gamma = 2 pi lam / Z``
    about the origin.
    """
    import scipy.integrate

    z1 = scipy.integrate.quad(lambda s: math.exp(-((s * s - 1.0) ** 2) / 4.0), -np.inf, np.inf)[0]
    Z = z1 * math.sqrt(2.0 * math.pi)
    X, Y = np.meshgrid(np.asarray(x, float), np.asarray(y, float), indexing="ij")
    w = lam * np.exp(-((X**2 + Y**2) ** 2) / 4.0) / Z
    J = np.stack([-w * Y, w * X], axis=-1)
    return J, Z, lam * math.pi**1.5 / Z, 2.0 * math.pi * lam / Z


def cell_average_exact_current(lam: float, x_edges, y_edges, n_sub: int = 8):
    """Exact Example-19 current averaged over each cell (matches the binned estimator)."""
    xe = np.asarray(x_edges, float)
    ye = np.asarray(y_edges, float)
    nx, ny = len(xe) - 1, len(ye) - 1
    u = (np.arange(n_sub) + 0.5) / n_sub
    xs = (xe[:-1, None] + np.diff(xe)[:, None] * u).ravel()
    ys = (ye[:-1, None] + np.diff(ye)[:, None] * u).ravel()
    J, *_ = exact_current_rotating_double_well(lam, xs, ys)
    return J.reshape(nx, n_sub, ny, n_sub, 2).mean(axis=(1, 3))
