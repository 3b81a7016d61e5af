"""The SDE on a finite-sum loss at the cost of a gradient: ``chains.sde(fs, ...)``.

The noise ``s L(x) xi`` with ``L = (G - 1 g^T)^T / sqrt(N)`` is applied as one
weighted gradient (``w_k = 1/N + s (xi_k - mean xi) / sqrt(N)``), and with
``noise_examples=M`` through ``M`` examples drawn per step. Checked against
the explicit factor path (same draws) and against the closed-form covariance
``2 beta^-1 D(x) dt`` of one step at a fixed ``x``.
"""

import jax.numpy as jnp
import numpy as np
import pytest

from sdesim import chains
from _stats import assert_equal_to_rounding


def _logistic(N=30, d=3, seed=0):
    """Logistic regression: D(x) depends on x (a non-trivial state-dependent noise)."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(N, d))
    y = (rng.random(N) < 0.5).astype(float)

    def loss(x, a, yk):
        z = a @ x
        return jnp.logaddexp(0.0, z) - yk * z

    return chains.FiniteSum(loss, (jnp.asarray(A), jnp.asarray(y)), d)


def test_one_gradient_path_equals_the_factor_path():
    fs = _logistic()
    kw = dict(n_chains=6, n_steps=40, save_every=10, seed=3, dtype="float64")
    a = chains.run_chains(chains.sde(fs, 0.05, 2), np.zeros(3), **kw)
    b = chains.run_chains(chains.sde(fs.problem(), 0.05, 2), np.zeros(3), **kw)
    assert_equal_to_rounding(a.x, b.x, 40)  # the same N normals per step, another order of sums


@pytest.mark.parametrize("noise_examples", [None, 5])
def test_one_step_covariance_is_2_beta_inv_D_dt(noise_examples):
    fs = _logistic()
    x0 = np.array([0.3, -0.5, 0.8])
    lr, b, n = 0.05, 2, 40000
    ker = chains.sde(fs, lr, b, noise_examples=noise_examples)
    x1 = chains.run_chains(ker, x0, n_chains=n, n_steps=1, seed=11, dtype="float64").x[-1]
    D = np.asarray(fs.diffusion(jnp.asarray(x0)))
    C = 2 * ker.beta_inv * D * lr  # = lr^2 D / b at beta^-1 = lr / (2b)
    mean = x0 - lr * np.asarray(fs.full_grad(jnp.asarray(x0)))
    dx = x1 - mean
    emp = dx.T @ dx / n
    # sampling error of a second moment of a (near-)Gaussian vector: sqrt((C_ii C_jj + C_ij^2) / n);
    # the subsampled noise is a scale mixture with heavier fourth moments: allow 2x
    se = np.sqrt((np.outer(np.diag(C), np.diag(C)) + C**2) / n) * (1.0 if noise_examples is None else 2.0)
    assert np.all(np.abs(emp - C) < 5 * se), (emp, C, se)
    assert np.all(np.abs(dx.mean(0)) < 5 * np.sqrt(np.diag(C) / n))  # no bias in the mean
    # the state-dependent D matters: at another x the covariance is another matrix
    D2 = np.asarray(fs.diffusion(jnp.asarray(-x0)))
    assert np.abs(D2 - D).max() > 10 * se.max() / (2 * ker.beta_inv * lr)


def test_noise_examples_needs_a_finite_sum():
    import sdesim

    with pytest.raises(ValueError, match="^noise_examples"):
        chains.sde(sdesim.problems.rotating_double_well(1.0), 0.05, 2, noise_examples=3)
    with pytest.raises(ValueError, match="^noise_examples"):
        chains.sde(_logistic(), 0.05, 2, noise_examples=0)
