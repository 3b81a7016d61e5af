"""Chains as particles (sdesim.chains): distributions against exact discrete-chain results.

Stationary statistics are compared with closed forms using standard errors from batch
means over independent groups of chains (snapshots spaced by >= 3 relaxation times).
"""

import numpy as np
import optax
import pytest

import jax
import jax.numpy as jnp
import scipy.linalg

import sdesim
from sdesim import chains as C
from sdesim import chains as T


def _linreg(N=20, d=2, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(N, d))
    y = A @ np.array([1.0, -0.5])[:d] + 0.7 * rng.normal(size=N)

    def loss(x, a, yk):
        return 0.5 * (a @ x - yk) ** 2

    return A, y, C.FiniteSum(loss, (jnp.asarray(A), jnp.asarray(y)), d)


def _stationary_cov(kernel, x0, n_chains, n_snap, spacing, seed, n_groups=20):
    ens = C.run_chains(kernel, x0, n_chains=n_chains, n_steps=n_snap * spacing, save_every=spacing,
                       burn_in=3 * spacing, seed=seed, dtype="float64")
    assert ens.n_diverged == 0
    x = ens.x
    groups = np.array_split(np.arange(n_chains), n_groups)
    covs = np.array([np.cov(x[:, g].reshape(-1, x.shape[2]), rowvar=False) for g in groups])
    return covs.mean(0), covs.std(0, ddof=1) / np.sqrt(n_groups), ens


def _spacing(A, lr):
    return int(np.ceil(3.0 / (lr * np.linalg.eigvalsh(A.T @ A / len(A)).min())))


def test_sgd_covariance_matches_exact_chain_and_lyapunov():
    A, y, fs = _linreg()
    lr, b = 0.05, 4
    xs = np.linalg.lstsq(A, y, rcond=None)[0]
    cov, se, ens = _stationary_cov(C.sgd(fs, lr, b), xs, 2000, 20, _spacing(A, lr), seed=3)
    m_ex, S_ex = T.linreg_stationary(A, y, lr, b, "replacement")
    np.testing.assert_allclose(m_ex, xs, atol=1e-12)  # E x = x* exactly
    assert np.all(np.abs(cov - S_ex) < 4 * se + 1e-12), (cov, S_ex, se)
    assert np.all(np.abs(ens.mean() - xs) < 4 * np.sqrt(np.diag(S_ex) / (2000 * 20)) * 3)
    # small-lr OU/Lyapunov prediction with D(x*)/b: within O(lr) of the exact chain ...
    S_ou = T.linreg_ou_covariance(A, y, lr, b)
    lam = np.linalg.eigvalsh(A.T @ A / len(A)).max()
    assert abs(np.trace(S_ou) / np.trace(S_ex) - 1) < 2 * lr * lam
    # ... and the discrete Lyapunov equation (frozen D) removes most of that O(lr) gap
    S_dl = T.linreg_discrete_lyapunov(A, y, lr, b)
    assert abs(np.trace(S_dl) - np.trace(S_ex)) < 0.5 * abs(np.trace(S_ou) - np.trace(S_ex))
    # the O(lr) gap closes linearly: halving lr halves the relative error (within 20 %)
    e1 = np.trace(T.linreg_ou_covariance(A, y, 0.01, b)) / np.trace(T.linreg_stationary(A, y, 0.01, b)[1]) - 1
    e2 = np.trace(T.linreg_ou_covariance(A, y, 0.005, b)) / np.trace(T.linreg_stationary(A, y, 0.005, b)[1]) - 1
    assert 1.6 < e1 / e2 < 2.4


def test_sgld_matches_discrete_lyapunov_with_isotropic_noise():
    A, y, fs = _linreg()
    lr, b = 0.05, 4
    xs = np.linalg.lstsq(A, y, rcond=None)[0]
    c = fs.noise_power(xs)
    np.testing.assert_allclose(c, np.trace(T.linreg_diffusion(A, y, xs)) / 2, rtol=1e-10)
    cov, se, _ = _stationary_cov(C.sgld(fs, lr, b, noise_power=c), xs, 2000, 20, _spacing(A, lr), seed=4)
    H = A.T @ A / len(A)
    Tm = np.eye(2) - lr * H
    # x' = T x + lr h + lr sqrt(c/b) xi: additive noise, so the discrete Lyapunov equation is exact
    S = scipy.linalg.solve_discrete_lyapunov(Tm, lr**2 * c / b * np.eye(2))
    assert np.all(np.abs(cov - S) < 4 * se + 1e-12), (cov, S, se)
    # same total noise power per step as SGD: tr(lr^2 D / b)
    assert np.isclose(lr**2 * c / b * 2, lr**2 * np.trace(T.linreg_diffusion(A, y, xs)) / b)


def test_sde_kernel_agrees_with_core_simulate():
    A, y, fs = _linreg()
    lr, b = 0.05, 4
    xs = np.linalg.lstsq(A, y, rcond=None)[0]
    prob = fs.problem()
    sp = _spacing(A, lr)
    cov_k, se_k, _ = _stationary_cov(C.sde(prob, lr, b), xs, 800, 10, sp, seed=5)
    ens = sdesim.simulate(prob, beta_inv=lr / (2 * b), n_particles=800, n_steps=10 * sp, dt=lr, seed=6,
                          x0=xs, save_every=sp, burn_in=3 * sp, dtype="float64")
    groups = np.array_split(np.arange(800), 20)
    covs = np.array([np.cov(ens.x[:, g].reshape(-1, 2), rowvar=False) for g in groups])
    cov_s, se_s = covs.mean(0), covs.std(0, ddof=1) / np.sqrt(20)
    assert np.all(np.abs(cov_k - cov_s) < 4 * np.hypot(se_k, se_s)), (cov_k, cov_s)
    S_ou = T.linreg_ou_covariance(A, y, lr, b)
    assert abs(np.trace(cov_k) / np.trace(S_ou) - 1) < 4 * np.sqrt(np.sum(se_k**2)) / np.trace(S_ou) + 0.1


def test_diffusion_matrix_and_factor_closed_form():
    A, y, fs = _linreg(N=15, d=2, seed=2)
    x = np.array([0.3, -0.2])
    D = np.asarray(fs.diffusion(jnp.asarray(x)))
    np.testing.assert_allclose(D, T.linreg_diffusion(A, y, x), rtol=1e-10, atol=1e-14)
    L = np.asarray(fs.diffusion_factor(jnp.asarray(x)))
    assert L.shape == (2, 15)
    np.testing.assert_allclose(L @ L.T, D, rtol=1e-10, atol=1e-14)
    # a vectorized loss gives the same gradients
    fv = C.FiniteSum(lambda x, a, yk: 0.5 * (a @ x - yk) ** 2, (jnp.asarray(A), jnp.asarray(y)), 2, vectorized=True)
    np.testing.assert_allclose(fv.per_example_grads(jnp.asarray(x)), fs.per_example_grads(jnp.asarray(x)), rtol=1e-12)
    np.testing.assert_allclose(fv.full_grad(jnp.asarray(x)), A.T @ (A @ x - y) / 15, rtol=1e-10)


def _counts(sampling, N, b, n_steps, n_chains=64, seed=0):
    """Per-step example counts recovered from the loss f_k(x) = x_k with lr = 1: x' = x - counts / b."""
    fs = C.FiniteSum(lambda x, e: x @ e, (jnp.eye(N),), N)
    ker = C.sgd(fs, 1.0, b, sampling=sampling)
    ens = C.run_chains(ker, np.zeros(N), n_chains=n_chains, n_steps=n_steps, save_every=1, seed=seed,
                       dtype="float64")
    x = np.concatenate([np.zeros((1, n_chains, N)), ens.x])
    return np.rint(-np.diff(x, axis=0) * b).astype(int)  # (n_steps, n_chains, N)


@pytest.mark.parametrize("N", [20, 150])  # dense masks (N <= DENSE_MAX) and index paths
def test_sampling_schemes_draw_what_they_claim(N):
    b = 7
    spe = N // b
    cnt = _counts("subset", N, b, 30)
    assert np.all(cnt.sum(-1) == b) and cnt.max() == 1 and cnt.min() == 0
    freq = cnt.mean(axis=(0, 1))
    p = b / N
    assert np.all(np.abs(freq - p) < 5 * np.sqrt(p * (1 - p) / (30 * 64)))
    cnt = _counts("shuffle", N, b, 2 * spe)
    assert np.all(cnt.sum(-1) == b) and cnt.max() == 1
    for e in range(2):  # every epoch: each example at most once, spe * b distinct examples
        ep = cnt[e * spe : (e + 1) * spe].sum(0)
        assert ep.max() == 1 and np.all(ep.sum(-1) == spe * b)
    assert not np.array_equal(cnt[:spe], cnt[spe:])  # a new permutation each epoch
    cnt = _counts("replacement", N, b, 30)
    assert np.all(cnt.sum(-1) == b) and cnt.min() >= 0
    assert cnt.max() >= 2 or N > 100  # repeats happen with replacement
    freq = cnt.mean(axis=(0, 1))
    assert np.all(np.abs(freq - p) < 5 * np.sqrt(b / N * (1 - 1 / N) / (30 * 64)))


@pytest.mark.repro
def test_randomness_independent_of_segmenting_and_chain_count():
    A, y, fs = _linreg()
    ker = C.sgd(fs, 0.05, 3, sampling="subset")
    kw = dict(n_steps=40, save_every=2, seed=9, dtype="float64")
    a = C.run_chains(ker, np.zeros(2), n_chains=5, **kw)
    # bit for bit by construction (the same compiled step): segmenting, burn-in splits
    b = C.run_chains(ker, np.zeros(2), n_chains=5, max_segment_bytes=5 * 2 * 8 * 3, **kw)
    np.testing.assert_array_equal(a.x, b.x)
    e = C.run_chains(ker, np.zeros(2), n_chains=5, **{**kw, "n_steps": 30, "burn_in": 10})
    np.testing.assert_array_equal(e.x, a.x[5:])
    np.testing.assert_array_equal(e.step, a.step[5:])
    d = C.run_chains(ker, np.zeros(2), n_chains=5, **{**kw, "seed": 10})
    assert not np.allclose(a.x, d.x)
    # the random draws depend on (seed, chain, step) only: exact integers
    np.testing.assert_array_equal(C.chain_keys(9, 0, 5)[:3], C.chain_keys(9, 0, 3))
    # batching="map" runs every chain as its own width-1 program: exact across chain counts
    am = C.run_chains(ker, np.zeros(2), n_chains=5, batching="map", **kw)
    cm = C.run_chains(ker, np.zeros(2), n_chains=3, batching="map", **kw)
    np.testing.assert_array_equal(am.x[:, :3], cm.x)
    # batching="vmap" compiles the step for the width n_chains: equal to rounding only. SGD on
    # this least-squares loss contracts (lr * lambda_max(A^T A / N) < 2), so per-step rounding
    # errors (a few ulps of |x|, well under 64) add up at most linearly over the 40 steps.
    c = C.run_chains(ker, np.zeros(2), n_chains=3, **kw)
    tol = 40 * 64 * np.finfo(np.float64).eps * np.abs(a.x).max()
    assert np.abs(a.x[:, :3] - c.x).max() <= tol
    assert np.abs(a.x - am.x).max() <= tol


def test_optax_optimizer_plugs_in():
    A, y, fs = _linreg()
    xs = np.linalg.lstsq(A, y, rcond=None)[0]
    ker = C.sgd(fs, 0.05, 20, sampling="subset", optimizer=optax.sgd(0.05, momentum=0.9))
    ens = C.run_chains(ker, np.zeros(2), n_chains=2, n_steps=400, dtype="float64")
    np.testing.assert_allclose(ens.x[-1], np.broadcast_to(xs, (2, 2)), atol=1e-6)  # b = N: full-batch heavy ball


def test_bad_input_names_the_field():
    A, y, fs = _linreg()
    with pytest.raises(ValueError, match="^batch"):
        C.sgd(fs, 0.1, 0)
    with pytest.raises(ValueError, match="^batch"):
        C.sgd(fs, 0.1, 21, sampling="subset")
    with pytest.raises(ValueError, match="^sampling"):
        C.sgd(fs, 0.1, 2, sampling="bogus")
    with pytest.raises(ValueError, match="^lr"):
        C.sgd(fs, -0.1, 2)
    with pytest.raises(ValueError, match="^noise_power"):
        C.sgld(fs, 0.1, 2, noise_power=0.0)
    with pytest.raises(ValueError, match="^problem"):
        C.sde(lambda x: -x, 0.1, 2)  # neither an sdesim problem nor a FiniteSum
    with pytest.raises(ValueError, match="^data"):
        C.FiniteSum(lambda x, a, b: 0.0, (np.zeros((3, 2)), np.zeros(4)), 2)
    with pytest.raises(ValueError, match="^loss"):
        C.FiniteSum(lambda x, a: x, (np.zeros((3, 2)),), 2)
    ker = C.sgd(fs, 0.1, 2)
    with pytest.raises(ValueError, match="^x0"):
        C.run_chains(ker, np.zeros(3), n_chains=2, n_steps=4)
    with pytest.raises(ValueError, match="^save_every"):
        C.run_chains(ker, np.zeros(2), n_chains=2, n_steps=5, save_every=2)
    with pytest.raises(ValueError, match="^n_chains"):
        C.run_chains(ker, np.zeros(2), n_chains=0, n_steps=4)
    with pytest.raises(ValueError, match="^kernel"):
        C.run_chains(fs, np.zeros(2), n_chains=1, n_steps=4)
    with pytest.raises(ValueError, match="^n_data"):
        C.subset_factor(0, 1)
    np.testing.assert_allclose(C.subset_factor(20, 10), 10 / 19)


def test_finite_sum_checks_dim_and_per_example_loss():
    """Traced on one example before any work: a dim the loss cannot take, a batched loss."""
    A, y, fs = _linreg()
    data = (jnp.asarray(A), jnp.asarray(y))

    def per_example(x, a, yk):  # x holds (w, intercept): size 3
        w, c = x[:2], x[2:].reshape(())
        return 0.5 * (a @ w + c - yk) ** 2

    def batched(x, a, yk):  # indexes a batch axis
        return 0.5 * (a[:, 0] * x[0] + a[:, 1] * x[1] - yk) ** 2

    assert C.FiniteSum(per_example, data, 3).dim == 3
    with pytest.raises(ValueError, match=r"^dim: .*shape \(2,\)"):
        C.FiniteSum(per_example, data, 2)
    with pytest.raises(ValueError, match=r"^loss: fails on one example \(IndexError.*pass vectorized=True"):
        C.FiniteSum(batched, data, 2)
    with pytest.raises(ValueError, match=r"^loss: returned shape \(1,\) for one example"):
        C.FiniteSum(lambda x, a, yk: jnp.atleast_1d(per_example(x, a, yk)), data, 3)
    with pytest.raises(ValueError, match=r"^loss: with vectorized=True"):
        C.FiniteSum(lambda x, a, yk: jnp.sum(per_example(x, a, yk)), data, 3, vectorized=True)
    fb = C.FiniteSum(batched, data, 2, vectorized=True)
    np.testing.assert_allclose(fb.full_grad(jnp.ones(2)), fs.full_grad(jnp.ones(2)), rtol=1e-12)


def test_toy2d_sgd_close_to_sde_far_from_langevin():
    """2D SGD-on-data toy: TV(SGD, SDE(D)) at the sampling floor, TV(SGD, Langevin) ~ 0.5."""
    from sdesim import experiments

    toy = experiments.toy_regression_2d()
    np.testing.assert_allclose(np.asarray(toy.fs.full_grad(jnp.asarray(toy.x_star))), 0, atol=1e-12)
    r = experiments.compare_2d(toy, n_chains=400, n_snapshots=12, n_boot=5, current_steps=0, fp_cells=80)
    # two independent histograms of this size differ by about tv_floor from sampling alone
    assert r["tv_sgd_sde"] < 1.3 * r["tv_floor"]
    assert r["tv_sde_exact"] < r["tv_floor"]  # the SDE chains sample the exact Fokker-Planck solution
    assert r["tv_sgd_langevin"] > 3 * r["tv_sgd_sde"] and r["tv_exact_sde_langevin"] > 0.4
    # means: all at x* (exact for linear least squares)
    for k in ("sgd", "sde", "sgld"):
        assert np.all(np.abs(r["mean"][k] - toy.x_star) < 0.01)


@pytest.mark.slow
def test_toy2d_sgd_mode_is_not_argmin_f():
    from sdesim import experiments

    toy = experiments.toy_regression_2d()
    r = experiments.compare_2d(toy, n_chains=2000, n_snapshots=60, n_boot=30, current_steps=0)
    assert r["mode_shift"] > 2 * r["mode_shift_stderr"]
    assert r["mode_shift_exact_sde"] > 0.004  # the exact SDE mode is off argmin f too
    assert r["tv_sgd_sde"] < 1.3 * r["tv_floor"] and r["tv_sgd_langevin"] > 0.4
