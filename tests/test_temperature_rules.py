"""Temperature rules as experiments: Remark 12 (without replacement) and Remark 11 (linear scaling).

Measured stationary variances of SGD on least squares against the exact discrete chain
(sdesim.chains), the exact finite-population factor (N - b)/(N - 1) and the paper's
1 - b/N. Error bars: batch means over groups of independent chains.
"""

import numpy as np
import pytest

from sdesim import chains as C
from sdesim import chains as T
from sdesim import experiments as R


def test_exact_theory_limits():
    A, y, _ = R.linreg_data(20, 1, seed=0)
    for b in (2, 10, 15):
        tw = np.trace(T.linreg_stationary(A, y, 1e-4, b, "replacement")[1])
        to = np.trace(T.linreg_stationary(A, y, 1e-4, b, "subset")[1])
        # small lr: the ratio is the finite-population factor, not 1 - b/N
        assert abs(to / tw - (20 - b) / 19) < 2e-3
        assert abs(to / tw - (1 - b / 20)) > 0.8 * abs((20 - b) / 19 - (1 - b / 20))
    # b = N without replacement is full-batch gradient descent: no noise at all
    assert abs(np.trace(T.linreg_stationary(A, y, 0.05, 20, "subset")[1])) < 1e-12
    # small-lr limit of the exact chain is the OU/Lyapunov covariance
    for lr in (1e-3, 1e-4):
        S = T.linreg_stationary(A, y, lr, 4)[1]
        np.testing.assert_allclose(S, T.linreg_ou_covariance(A, y, lr, 4), rtol=5 * lr * 2)
    with pytest.raises(ValueError, match="^sampling"):
        T.linreg_stationary(A, y, 0.1, 2, "shuffle")


def test_without_replacement_follows_exact_finite_population_factor():
    """N = 20, b = 10: (N-b)/(N-1) = 0.526 vs 1 - b/N = 0.5 are told apart by > 5 se."""
    rows = R.replacement_rows(20, (10,), lr=0.05, n_chains=3000, n_snapshots=25, seed=11)
    r = rows[0]
    assert r["stderr"] < 0.2 * abs(r["exact_factor"] - r["predicted_ratio"])
    assert abs(r["measured_ratio"] - r["exact_discrete"]) < 4 * r["stderr"], r
    assert abs(r["measured_ratio"] - r["predicted_ratio"]) > 4 * r["stderr"], r
    assert abs(r["trace_with"] / r["trace_with_exact"] - 1) < 0.03


def test_linear_scaling_equal_lr_over_b_gives_equal_variance():
    rows = R.linear_scaling_rows(((0.02, 1), (0.04, 2), (0.04, 1)), n_chains=1000, n_snapshots=15, seed=2)
    a, b, c = rows
    for r in rows:  # every measurement matches the exact discrete chain
        assert abs(r["trace"] - r["trace_exact"]) < 4 * r["stderr"], r
    # equal lr/b: equal to O(lr) (the exact chains differ by < 2 %, measurements agree within errors)
    assert abs(a["trace"] - b["trace"]) < 4 * np.hypot(a["stderr"], b["stderr"]) + 0.02 * a["trace"]
    # double lr/b: double the variance (linear in beta^-1), far outside the error bars
    assert abs(c["trace"] / a["trace"] - 2) < 0.15
    assert c["trace"] - a["trace"] > 20 * np.hypot(a["stderr"], c["stderr"])


@pytest.mark.slow
def test_replacement_table_all_batch_sizes():
    rows = R.replacement_rows(20, (2, 5, 10, 15, 19), n_chains=4000, n_snapshots=40, seed=0)
    for r in rows:
        assert abs(r["measured_ratio"] - r["exact_discrete"]) < 4 * r["stderr"], r
        assert abs(r["measured_ratio"] - r["predicted_ratio"]) > 4 * r["stderr"], r
