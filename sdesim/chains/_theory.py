r"""Exact stationary moments of minibatch SGD on linear least squares.

``f_k(x) = (a_k^T x - y_k)^2 / 2`` (``A (N, d)``, ``y (N,)``), so
``grad f_B(x) = H_B x - h_B`` with ``H_B = mean_{k in B} a_k a_k^T``,
``h_B = mean_{k in B} y_k a_k``. With ``z = (x, 1)`` one SGD step is the
*random linear map* ``z' = M_B z``,

    M_k = [[I - lr a_k a_k^T, lr y_k a_k], [0, 1]],     M_B = mean_{k in B} M_k,

and ``B`` is independent of ``z``. The stationary second moment
``S = E[z z^T]`` therefore solves the linear (discrete Lyapunov-type) equation

    S = E[M_B S M_B^T]   <=>   vec S = E[M_B (x) M_B] vec S,   S_{d,d} = 1,

exact at every ``lr`` (no small-lr expansion, state-dependent noise
included). With ``P = (1/N) sum_k M_k (x) M_k`` and ``M = mean_k M_k``:

* with replacement (``b`` i.i.d. draws):
  ``E[M_B (x) M_B] = P / b + (1 - 1/b) M (x) M``;
* uniform ``b``-subset: ``E[M_B (x) M_B] = [P + (b-1) C] / b`` with the
  distinct-pair average ``C = (N^2 M (x) M - N P) / (N (N-1))``.

The mean is ``x* = H^-1 h`` exactly (``E M_B = M``). Compare with the small-lr
(OU) prediction: ``F S + S F^T = 2 beta^-1 D(x*)`` with ``F = H``,
``beta^-1 = lr/(2b)`` (times ``(N-b)/(N-1)`` for subsets), and with the
additive-noise discrete Lyapunov equation
``S = (I - lr H) S (I - lr H)^T + lr^2 c D(x*)`` (``c = 1/b`` or
``(N-b)/((N-1) b)``), which keeps the discrete-time ``O(lr)`` correction but
freezes ``D`` at ``x*``.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from .._linear import ou_stationary_covariance
from .._validate import check_positive, check_positive_int

__all__ = ["linreg_diffusion", "linreg_stationary", "linreg_ou_covariance", "linreg_discrete_lyapunov"]


def _check(A, y):
    A = np.asarray(A, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if A.ndim != 2:
        raise ValueError(f"A: expected (N, d), got shape {A.shape}")
    if y.shape != (A.shape[0],):
        raise ValueError(f"y: expected shape ({A.shape[0]},), got {y.shape}")
    return A, y


def _factor(n_data, batch, sampling):
    b = check_positive_int(batch, "batch")
    if sampling == "replacement":
        return 1.0 / b
    if sampling == "subset":
        if b > n_data:
            raise ValueError(f"batch: {b} exceeds n_data={n_data}")
        return (n_data - b) / ((n_data - 1) * b) if n_data > 1 else 0.0
    raise ValueError(f"sampling: expected 'replacement' or 'subset', got {sampling!r}")


def linreg_diffusion(A, y, x) -> np.ndarray:
    """``D(x) = (1/N) sum g_k g_k^T - g g^T``, ``g_k = a_k (a_k^T x - y_k)``."""
    A, y = _check(A, y)
    G = A * (A @ np.asarray(x, dtype=np.float64) - y)[:, None]
    Gc = G - G.mean(axis=0)
    return Gc.T @ Gc / A.shape[0]


def linreg_stationary(A, y, lr: float, batch: int, sampling: str = "replacement"):
    """Exact stationary ``(mean (d,), cov (d, d))`` of the SGD chain (module docstring)."""
    A, y = _check(A, y)
    lr = check_positive(lr, "lr")
    N, d = A.shape
    b = check_positive_int(batch, "batch")
    _factor(N, b, sampling)
    Ms = np.zeros((N, d + 1, d + 1))
    Ms[:, :d, :d] = np.eye(d)[None] - lr * A[:, :, None] * A[:, None, :]
    Ms[:, :d, d] = lr * y[:, None] * A
    Ms[:, d, d] = 1.0
    M = Ms.mean(axis=0)
    P = np.einsum("kab,kcd->acbd", Ms, Ms).reshape((d + 1) ** 2, (d + 1) ** 2) / N
    MM = np.kron(M, M)
    if sampling == "replacement":
        K = P / b + (1.0 - 1.0 / b) * MM
    else:
        C = (N * N * MM - N * P) / (N * (N - 1)) if N > 1 else MM
        K = (P + (b - 1) * C) / b
    n = (d + 1) ** 2
    e = np.zeros(n)
    e[-1] = 1.0
    lhs = np.vstack([np.eye(n) - K, e[None]])
    rhs = np.concatenate([np.zeros(n), [1.0]])
    s, *_ = np.linalg.lstsq(lhs, rhs, rcond=None)
    S = s.reshape(d + 1, d + 1)
    S = 0.5 * (S + S.T)
    m = S[:d, d]
    cov = S[:d, :d] - np.outer(m, m)
    return m, cov


def _xstar(A, y):
    H = A.T @ A / A.shape[0]
    return H, np.linalg.solve(H, A.T @ y / A.shape[0])


def linreg_ou_covariance(A, y, lr: float, batch: int, sampling: str = "replacement") -> np.ndarray:
    """Small-lr prediction: Lyapunov ``H S + S H = lr c D(x*)`` (``c`` the covariance factor)."""
    A, y = _check(A, y)
    H, xs = _xstar(A, y)
    c = _factor(A.shape[0], batch, sampling)
    # 2 beta^-1 D with beta^-1 = lr c / 2
    return ou_stationary_covariance(H, linreg_diffusion(A, y, xs), lr * c / 2.0)


def linreg_discrete_lyapunov(A, y, lr: float, batch: int, sampling: str = "replacement") -> np.ndarray:
    """``S = (I - lr H) S (I - lr H)^T + lr^2 c D(x*)`` (additive noise frozen at ``x*``)."""
    A, y = _check(A, y)
    H, xs = _xstar(A, y)
    c = _factor(A.shape[0], batch, sampling)
    T = np.eye(H.shape[0]) - lr * H
    S = scipy.linalg.solve_discrete_lyapunov(T, lr * lr * c * linreg_diffusion(A, y, xs))
    return 0.5 * (S + S.T)
