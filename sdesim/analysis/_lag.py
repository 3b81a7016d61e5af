r"""Lag statistics of stationary trajectories: the wedge ``L(tau)`` and its exact references.

``L(tau) = E[(x(t) - c) ∧ (x(t + tau) - c)]`` with ``a ∧ b = a_1 b_2 - a_2 b_1``
is the antisymmetric part of the lag-``tau`` cross-covariance of a 2D
stationary process: zero for every reversible process, positive for
counter-clockwise circulation (``L(tau) = 2 A(tau)_{01}`` with
:func:`sdesim.analysis.lag_antisymmetry`'s ``A`` when ``c`` is the mean).
:func:`lag_wedge` estimates it from particles and records its lag
(:class:`LagWedge`; ``tau = lag * spacing``),
:func:`linear_lag_covariance` gives it in closed form for a linear drift, and
:func:`fokker_planck_lag_wedge` from a gridded Fokker--Planck generator.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np
import scipy.linalg

from .._validate import check_positive

__all__ = ["LagWedge", "lag_wedge", "linear_lag_covariance", "fokker_planck_lag_wedge"]


@dataclasses.dataclass(frozen=True)
class LagWedge:
    """``L(tau)`` with its standard error, at ``tau = lag * spacing``.

    Behaves as the pair ``(value, stderr)`` under unpacking, ``len`` and
    indexing (``L, se = lag_wedge(x, lag)``; ``res[0]``), as before the lag was recorded.

    Attributes:
        value, stderr: the estimate and its standard error.
        lag: lag in snapshots; spacing: time between snapshots (``None`` if not given).
    """

    value: float
    stderr: float
    lag: int
    spacing: Optional[float] = None

    @property
    def tau(self) -> Optional[float]:
        """``lag * spacing``, or ``None`` when ``spacing`` is unknown."""
        return None if self.spacing is None else self.lag * self.spacing

    def __iter__(self):
        return iter((self.value, self.stderr))

    def __len__(self) -> int:
        return 2

    def __getitem__(self, i):
        return (self.value, self.stderr)[i]


def lag_wedge(x, lag: int, *, center=(0.0, 0.0), spacing: Optional[float] = None) -> LagWedge:
    """``L = E[(x(t) - c) ∧ (x(t + lag) - c)]`` from stationary 2D trajectories, with its standard error.

    Args:
        x: ``(n_saved, n_particles, 2)`` snapshots of independent particles,
            already stationary. All time origins ``t`` are averaged per particle.
        lag: lag in snapshots (``tau = lag * spacing``).
        center: the point ``c``.
        spacing: time between snapshots, recorded in the result (optional).

    Returns:
        :class:`LagWedge` (unpacks as ``(value, stderr)``); the error is the
        spread over particles (independent) divided by ``sqrt(n_particles)``.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3 or x.shape[2] != 2:
        raise ValueError(f"x: expected shape (n_saved, n_particles, 2), got {x.shape}")
    lag = int(lag)
    if not 0 < lag < x.shape[0]:
        raise ValueError(f"lag: expected 0 < lag < n_saved={x.shape[0]}, got {lag}")
    if spacing is not None:
        spacing = check_positive(spacing, "spacing")
    y = x - np.asarray(center, dtype=np.float64)
    a, b = y[:-lag], y[lag:]
    w = (a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]).mean(axis=0)  # per particle
    return LagWedge(float(w.mean()), float(w.std(ddof=1) / np.sqrt(w.size)), lag, spacing)


def linear_lag_covariance(U, D, Q, beta_inv: float, tau: float, mass: float = 0.0) -> np.ndarray:
    """Stationary ``C(tau) = E[x(t + tau) x(t)^T]`` for ``Phi = x^T U x / 2`` and constant ``D, Q``.

    ``mass = 0``: the A-type (= Itô, constants) OU ``dx = -(D+Q) U x dt + ...``:
    ``C = expm(-(D+Q) U tau) beta^-1 U^-1``. ``mass > 0``: the underdamped
    system ``z = (x, v)``, ``dz = -K z dt + ...`` with
    ``K = [[0, -I], [U/m, (S+A)/m]]``, stationary covariance
    ``diag(beta^-1 U^-1, beta^-1/m I)``; ``C`` is the ``xx`` block of
    ``expm(-K tau) Sigma``. For 2D, ``L(tau) = C[1, 0] - C[0, 1]``.
    """
    U = np.asarray(U, dtype=np.float64)
    M = np.asarray(D, dtype=np.float64) + np.asarray(Q, dtype=np.float64)
    d = U.shape[0]
    Sx = beta_inv * np.linalg.inv(U)
    if mass == 0.0:
        return scipy.linalg.expm(-M @ U * tau) @ Sx
    G = np.linalg.inv(M)
    K = np.block([[np.zeros((d, d)), -np.eye(d)], [U / mass, G / mass]])
    Sig = np.block([[Sx, np.zeros((d, d))], [np.zeros((d, d)), beta_inv / mass * np.eye(d)]])
    return (scipy.linalg.expm(-K * tau) @ Sig)[:d, :d]


def fokker_planck_lag_wedge(operator, rho, tau: float, *, center=(0.0, 0.0)) -> float:
    """``L(tau)`` of the overdamped process of a :class:`FokkerPlanck2D` generator, started from ``rho``.

    ``E[x_1(0) x_2(tau)] = int y_2 [e^{L tau} (x_1 rho)](y) dy`` (the forward
    equation propagates the signed measure ``x_1 rho``), likewise for the other
    term; deterministic, independent of any particle simulation.
    """
    X, Y = np.meshgrid(operator.x - center[0], operator.y - center[1], indexing="ij")
    cell = operator.dx * operator.dy
    m1 = operator.evolve(X * rho, [tau])[0]
    m2 = operator.evolve(Y * rho, [tau])[0]
    return float((np.sum(Y * m1) - np.sum(X * m2)) * cell)
