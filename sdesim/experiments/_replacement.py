r"""Temperature rules as experiments (Remarks 11 and 12) on linear least squares.

Stationary variance of minibatch SGD on ``f_k(x) = (a_k^T x - y_k)^2 / 2``,
measured from vmapped chains (:mod:`sdesim.chains`) and predicted three ways:

* the paper's small-lr rule: covariance ``prop. to beta^-1`` with
  ``beta^-1 = lr / (2b)``, times ``1 - b/N`` without replacement (Remark 12);
* the exact finite-population factor of a uniform ``b``-subset,
  ``(N - b)/(N - 1)`` (:func:`sdesim.chains.subset_factor`);
* the exact stationary covariance of the discrete chain at the given ``lr``
  (:func:`sdesim.chains.linreg_stationary`).

Error bars: snapshots are spaced by ``spacing`` steps (``>= 3`` relaxation
times ``1 / (lr lambda_min(H))``) and the chains are split into ``n_groups``
groups; the standard error of a ratio of traces is the spread of the
per-group ratios (batch means) over ``sqrt(n_groups)``.
"""

from __future__ import annotations

import numpy as np

from ..chains import _chains
from ..chains._theory import linreg_ou_covariance, linreg_stationary

__all__ = ["linreg_data", "measure_trace_cov", "replacement_rows", "linear_scaling_rows"]


def linreg_data(n_data: int, dim: int = 1, *, seed: int = 0, noise: float = 0.5):
    """Well-conditioned least-squares data ``(A (N, d), y (N,), FiniteSum)`` (``H ~ I``)."""
    import jax.numpy as jnp

    rng = np.random.default_rng(seed)
    A = 1.0 + 0.3 * rng.normal(size=(n_data, dim)) if dim == 1 else rng.normal(size=(n_data, dim))
    y = A @ np.linspace(1.0, -1.0, dim) + noise * rng.normal(size=n_data)

    def loss(x, a, yk):
        return 0.5 * (a @ x - yk) ** 2

    return A, y, _chains.FiniteSum(loss, (jnp.asarray(A), jnp.asarray(y)), dim)


def measure_trace_cov(kernel, x0, *, n_chains, n_snapshots, spacing, burn_in, seed, n_groups=20):
    """``tr Cov`` of the stationary chains and per-group values ``(n_groups,)`` (batch means)."""
    ens = _chains.run_chains(kernel, x0, n_chains=n_chains, n_steps=n_snapshots * spacing,
                             save_every=spacing, burn_in=burn_in, seed=seed, dtype="float64")
    x = ens.x.astype(np.float64)
    groups = np.array_split(np.arange(n_chains), n_groups)
    per = np.array([np.trace(np.atleast_2d(np.cov(x[:, g].reshape(-1, x.shape[2]), rowvar=False))) for g in groups])
    tot = float(np.trace(np.atleast_2d(np.cov(x.reshape(-1, x.shape[2]), rowvar=False))))
    return tot, per


def _spacing(A, lr):
    lam = float(np.linalg.eigvalsh(A.T @ A / A.shape[0]).min())
    return int(np.ceil(3.0 / (lr * lam)))


def replacement_rows(n_data=20, batches=(2, 5, 10, 15, 19), *, lr=0.05, dim=1, n_chains=4000, n_snapshots=40,
                     seed=0, schemes=("subset",), n_groups=20):
    """Measured ``tr Sigma_without / tr Sigma_with`` per batch size, with predictions.

    Each row: ``n_data, batch, scheme, measured_ratio, stderr, predicted_ratio``
    (paper, ``1 - b/N``), ``exact_factor`` (``(N-b)/(N-1)``), ``exact_discrete``
    (exact ratio of the discrete chain at this ``lr``; ``nan`` for shuffling),
    and the measured/exact traces.
    """
    A, y, fs = linreg_data(n_data, dim, seed=seed)
    sp = _spacing(A, lr)
    x0 = np.linalg.lstsq(A, y, rcond=None)[0]
    rows = []
    for i, b in enumerate(batches):
        kw = dict(n_chains=n_chains, n_snapshots=n_snapshots, spacing=sp, burn_in=3 * sp, n_groups=n_groups)
        t_w, per_w = measure_trace_cov(_chains.sgd(fs, lr, b, sampling="replacement"), x0, seed=seed + 100 * i, **kw)
        _, S_w = linreg_stationary(A, y, lr, b, "replacement")
        for j, scheme in enumerate(schemes):
            t_wo, per_wo = measure_trace_cov(_chains.sgd(fs, lr, b, sampling=scheme), x0,
                                             seed=seed + 100 * i + 1 + j, **kw)
            ratios = per_wo / per_w
            se = float(np.std(ratios, ddof=1) / np.sqrt(len(ratios)))
            if scheme == "subset":
                _, S_wo = linreg_stationary(A, y, lr, b, "subset")
                exact = float(np.trace(S_wo) / np.trace(S_w))
            else:
                exact = float("nan")
            rows.append({
                "n_data": int(n_data), "batch": int(b), "scheme": scheme,
                "measured_ratio": t_wo / t_w, "stderr": se,
                "predicted_ratio": 1.0 - b / n_data,
                "exact_factor": _chains.subset_factor(n_data, b),
                "exact_discrete": exact,
                "trace_with": t_w, "trace_with_exact": float(np.trace(S_w)),
                "trace_without": t_wo, "lr": lr,
            })
    return rows


def linear_scaling_rows(settings=((0.02, 1), (0.04, 2), (0.08, 4), (0.16, 8), (0.04, 1), (0.08, 1)), *,
                        n_data=50, dim=2, n_chains=2000, n_snapshots=30, seed=1, n_groups=20):
    """Remark 11: ``tr Sigma`` for several ``(lr, b)`` against the exact chain and the OU rule.

    Rows: ``lr, batch, lr_over_b, trace, stderr, trace_exact, trace_ou`` (``trace_ou`` is
    linear in ``lr/b``; ``trace_exact`` shows where the small-lr rule breaks down).
    """
    A, y, fs = linreg_data(n_data, dim, seed=seed)
    x0 = np.linalg.lstsq(A, y, rcond=None)[0]
    rows = []
    for i, (lr, b) in enumerate(settings):
        sp = _spacing(A, lr)
        t, per = measure_trace_cov(_chains.sgd(fs, lr, b), x0, n_chains=n_chains, n_snapshots=n_snapshots,
                                   spacing=sp, burn_in=3 * sp, seed=seed + 10 * i, n_groups=n_groups)
        _, S = linreg_stationary(A, y, lr, b)
        rows.append({
            "lr": lr, "batch": b, "lr_over_b": lr / b, "trace": t,
            "stderr": float(np.std(per, ddof=1) / np.sqrt(len(per))) * 1.0,
            "trace_exact": float(np.trace(S)),
            "trace_ou": float(np.trace(linreg_ou_covariance(A, y, lr, b))),
        })
    return rows
