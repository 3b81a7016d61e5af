"""Linearisation near a critical point (Lemma 20 of Chaudhari & Soatto 2018).

For ``grad f = F x`` and constant ``D`` the OU process
``dx = -F x dt + sqrt(2 beta^-1 D) dW`` has the Gaussian stationary density
``N(0, S)`` with ``F S + S F^T = 2 beta^-1 D`` (Lyapunov). Writing
``Phi = x^T U x / 2`` with ``rho_ss = exp(-beta Phi)`` gives ``U = beta^-1 S^-1``
(independent of beta) and the decomposition::

    F = (D + Q) U,   U = U^T,   Q = -Q^T,    Q = F U^-1 - D = F S_1 - D

where ``S_1`` is the Lyapunov solution at beta^-1 = 1. ``Q`` is antisymmetric
because ``F S_1 + S_1 F^T = 2 D``. ``Q = 0`` iff ``F D`` is symmetric.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from ._validate import check_spd, check_square, check_stable

__all__ = ["linear_decomposition", "ou_stationary_covariance"]


def ou_stationary_covariance(F, D, beta_inv: float = 1.0) -> np.ndarray:
    """Solve ``F S + S F^T = 2 beta^-1 D`` for the OU stationary covariance ``S``."""
    F = check_stable(F, "F")
    D = check_spd(D, "D", dim=F.shape[0])
    S = scipy.linalg.solve_continuous_lyapunov(F, 2.0 * beta_inv * D)
    return 0.5 * (S + S.T)


def linear_decomposition(F, D):
    """Return ``(U, Q)`` with ``F = (D + Q) U``, ``U`` symmetric, ``Q`` antisymmetric.

    Raises ``ValueError`` naming ``F`` when ``-F`` is not stable and ``D`` when it
    is not symmetric PSD or the stationary covariance is singular.
    """
    S = ou_stationary_covariance(F, D, 1.0)
    if np.linalg.eigvalsh(S).min() <= 1e-12 * max(1.0, np.abs(S).max()):
        raise ValueError("D: noise does not reach every direction (singular stationary covariance)")
    F = np.asarray(F, dtype=np.float64)
    D = np.asarray(D, dtype=np.float64)
    U = np.linalg.inv(S)
    U = 0.5 * (U + U.T)
    Q = F @ S - D
    Q = 0.5 * (Q - Q.T)
    return U, Q
