"""Lag-antisymmetric covariance A(tau): exact on SGD for least squares, calibrated under reversibility.

Closed form. For SGD on least squares, ``x_{k+1} = M_B x_k + lr h_B`` with
``E M_B = M = I - lr H`` and the minibatch ``B`` independent of ``x_k``, so
``E[x_{k+tau} - x* | x_k] = M^tau (x_k - x*)`` exactly and
``C(tau) = Sigma (M^tau)^T``, ``A(tau) = (Sigma M^tau - M^tau Sigma) / 2``
(``M`` symmetric). The gradient noise depends on ``x`` (``H_B != H`` multiplies
it), so ``Sigma`` is the exact stationary covariance of
``sdesim.chains.linreg_stationary`` (the minibatch-Hessian term included), not
the frozen-noise discrete Lyapunov solution. ``A != 0`` because the data are
built so that ``D(x*)`` does not commute with ``H``.

Calibration. SGLD on the same loss (symmetric ``M``, isotropic Gaussian
noise: a reversible AR(1) chain) and the Euler chain of an OU with symmetric
drift and ``D = 0.7 I`` (reversible likewise) have ``A = 0`` at every lag;
the p-values of ``lag_antisymmetry``'s test of ``A = 0`` must be uniform.
"""

import numpy as np
import jax.numpy as jnp
import pytest
import scipy.linalg
import scipy.stats

import sdesim
from sdesim import chains
from sdesim.analysis import (
    LagAntisymmetry,
    compare_circulation,
    estimate_current,
    lag_antisymmetry,
    lag_wedge,
    linearise,
)

LR, BATCH = 0.08, 1
LAGS = (1, 3, 10)
UPPER = ([0, 0, 1], [1, 2, 2])


def _least_squares(N=60, seed=0):
    """d = 3 data whose residual noise grows along (1, 1, 1)/sqrt(3), oblique to H's eigenvectors."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(N, 3)) * np.array([0.6, 1.2, 2.0])
    u = np.ones(3) / np.sqrt(3.0)
    y = A @ np.array([1.0, -1.0, 0.5]) + rng.normal(size=N) * (0.2 + 2.0 * np.abs(A @ u))
    H = A.T @ A / N
    xs = np.linalg.solve(H, A.T @ y / N)
    fs = chains.FiniteSum(lambda x, a, yk: 0.5 * (a @ x - yk) ** 2, (jnp.asarray(A), jnp.asarray(y)), 3)
    return A, y, H, xs, fs


@pytest.fixture(scope="module")
def least_squares():
    return _least_squares()


@pytest.fixture(scope="module")
def sgd_run(least_squares):
    A, y, H, xs, fs = least_squares
    # slowest covariance relaxation per step ~ 0.066 (second-moment operator): 300 steps ~ e^-20
    ens = chains.run_chains(chains.sgd(fs, LR, BATCH), xs, n_chains=2500, n_steps=300, save_every=1,
                            burn_in=300, dtype="float64", seed=1)
    assert ens.n_diverged == 0
    return ens


def test_sgd_least_squares_matches_exact_discrete_chain(least_squares, sgd_run):
    A, y, H, xs, fs = least_squares
    D = chains.linreg_diffusion(A, y, xs)
    comm = np.linalg.norm(H @ D - D @ H) / (np.linalg.norm(H) * np.linalg.norm(D))
    assert comm > 0.1, comm  # the noise does not commute with the Hessian
    _, S = chains.linreg_stationary(A, y, LR, BATCH)
    M = np.eye(3) - LR * H
    assert np.linalg.norm(S @ M - M @ S) > 0.01 * np.linalg.norm(S) * np.linalg.norm(M)
    lin = linearise(fs, xs, LR, BATCH)
    pred = lin.predicted_A(LAGS, sigma=S)
    direct = np.stack([(S @ np.linalg.matrix_power(M, L) - np.linalg.matrix_power(M, L) @ S) / 2 for L in LAGS])
    np.testing.assert_allclose(pred, direct, atol=1e-12)

    est = lag_antisymmetry(sgd_run.x, LAGS, spacing=LR)
    assert isinstance(est, LagAntisymmetry)
    assert est.matrix.shape == est.stderr.shape == (len(LAGS), 3, 3)
    np.testing.assert_array_equal(est.lag, LAGS)
    np.testing.assert_allclose(est.tau, np.array(LAGS) * LR)
    assert est.n_batches == est.n_chains == 2500 and est.test == "hotelling"
    np.testing.assert_allclose(est.matrix, -np.swapaxes(est.matrix, 1, 2), atol=0)
    z = est.zscore(pred)[:, UPPER[0], UPPER[1]]
    print("z(lag, entry):", np.round(z, 2).tolist())
    assert np.all(np.abs(z) < 4), z
    sig = np.abs(est.matrix / np.where(est.stderr > 0, est.stderr, np.inf))
    print("largest |A| / se:", sig.max(), "p-values:", est.p_value, est.p_value_joint)
    assert sig.max() >= 5
    assert np.all(est.p_value < 1e-6) and est.p_value_joint < 1e-6  # power
    # at lr = 0.08 the small-lr OU prediction (frozen D, continuous time) is resolved as wrong
    z_ou = est.zscore(lin.predicted_A(LAGS, discrete=False))
    print("largest |z| against the OU prediction:", np.nanmax(np.abs(z_ou)))
    assert np.nanmax(np.abs(z_ou)) > 8

    # the plane of maximal predicted circulation carries the largest projected A
    P = lin.max_current_plane(sigma=S)
    ep = lag_antisymmetry(sgd_run.x, LAGS, basis=P, spacing=LR)
    pp = lin.predicted_A(LAGS, sigma=S, basis=P)
    zp = (ep.matrix[:, 0, 1] - pp[:, 0, 1]) / ep.stderr[:, 0, 1]
    print("plane: A01", ep.matrix[:, 0, 1], "pred", pp[:, 0, 1], "z", zp)
    assert np.all(np.abs(zp) < 4) and np.all(pp[:, 0, 1] > 0)
    assert ep.matrix[0, 0, 1] >= np.abs(est.matrix[0]).max() - 4 * ep.stderr[0, 0, 1]


def _pvalue_uniformity(p, alpha=0.05):
    p = np.asarray(p)
    ks = scipy.stats.kstest(p, "uniform")
    k = int(np.sum(p < alpha))
    lo = scipy.stats.binom.cdf(k, p.size, alpha)
    hi = scipy.stats.binom.sf(k - 1, p.size, alpha)
    return ks, k, lo, hi


def _assert_uniform(p, label):
    ks, k, lo, hi = _pvalue_uniformity(p)
    print(f"{label}: n={len(p)} KS D={ks.statistic:.3f} p={ks.pvalue:.3g}; rejections at 5%: {k}")
    assert ks.pvalue > 1e-3, (label, ks)
    assert lo > 5e-4 and hi > 5e-4, (label, k, len(p))  # rejection count inside its 99.9% binomial band


def _sgld_pvalues(n_seeds, least_squares, n_chains=200, n_steps=300):
    A, y, H, xs, fs = least_squares
    c = fs.noise_power(xs)
    kern = chains.sgld(fs, LR, BATCH, noise_power=c)
    M = np.eye(3) - LR * H
    S = scipy.linalg.solve_discrete_lyapunov(M, LR * LR * c / BATCH * np.eye(3))  # exact, chains start stationary
    out = {"default": [], "B=10": []}
    for seed in range(n_seeds):
        x0 = xs + np.random.default_rng(1000 + seed).multivariate_normal(np.zeros(3), S, size=n_chains)
        ens = chains.run_chains(kern, x0, n_chains=n_chains, n_steps=n_steps, save_every=1, dtype="float64",
                                seed=seed)
        out["default"].append(lag_antisymmetry(ens.x, 3).p_value)
        out["B=10"].append(lag_antisymmetry(ens.x, 3, n_batches=10).p_value)
    return out


F_SYM = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 0.6]])


def _ou_pvalues(n_seeds, n_particles=200, n_steps=600, dt=0.05, every=2, beta_inv=0.5):
    Dm = 0.7 * np.eye(3)
    prob = sdesim.problems.linear(F_SYM, Dm)
    # stationary covariance of the Euler chain x' = (I - dt F) x + sqrt(2 beta^-1 dt) L xi
    S = scipy.linalg.solve_discrete_lyapunov(np.eye(3) - dt * F_SYM, 2 * beta_inv * dt * Dm)
    out = []
    for seed in range(n_seeds):
        x0 = np.random.default_rng(2000 + seed).multivariate_normal(np.zeros(3), S, size=n_particles)
        ens = sdesim.simulate(prob, beta_inv=beta_inv, n_particles=n_particles, n_steps=n_steps, dt=dt, seed=seed,
                              x0=x0, save_every=every, dtype="float64")
        out.append(lag_antisymmetry(ens.x, [1, 4], spacing=dt * every).p_value_joint)
    return out


def test_calibration_sgld(least_squares):
    p = _sgld_pvalues(30, least_squares)
    for label, v in p.items():
        _assert_uniform(v, f"SGLD {label}")


def test_calibration_reversible_ou():
    _assert_uniform(_ou_pvalues(30), "OU symmetric drift, D = 0.7 I")


@pytest.mark.slow
def test_calibration_many_seeds(least_squares):
    p = _sgld_pvalues(120, least_squares)
    for label, v in p.items():
        _assert_uniform(v, f"SGLD {label}")
    _assert_uniform(_ou_pvalues(120), "OU symmetric drift, D = 0.7 I")


def _commuting_least_squares(N=60, seed=3):
    """Rows along the coordinate axes: every M_k is diagonal, so Sigma, H and D(x*) are diagonal and A = 0."""
    rng = np.random.default_rng(seed)
    axis = np.arange(N) % 3
    A = np.zeros((N, 3))
    A[np.arange(N), axis] = rng.uniform(0.5, 2.0, N) * np.array([0.6, 1.2, 2.0])[axis]
    y = A @ np.array([1.0, -1.0, 0.5]) + rng.normal(size=N) * (0.2 + rng.uniform(0, 2, N))
    H = A.T @ A / N
    xs = np.linalg.solve(H, A.T @ y / N)
    fs = chains.FiniteSum(lambda x, a, yk: 0.5 * (a @ x - yk) ** 2, (jnp.asarray(A), jnp.asarray(y)), 3)
    return A, y, xs, fs


@pytest.mark.slow
def test_calibration_sgd_with_commuting_noise():
    A, y, xs, fs = _commuting_least_squares()
    _, S = chains.linreg_stationary(A, y, LR, BATCH)
    assert np.abs(S - np.diag(np.diag(S))).max() < 1e-12 * np.abs(S).max()
    kern = chains.sgd(fs, LR, BATCH)
    p, pf = [], []
    for seed in range(120):
        ens = chains.run_chains(kern, xs, n_chains=200, n_steps=300, save_every=1, burn_in=300, dtype="float64",
                                seed=seed)
        p.append(lag_antisymmetry(ens.x, 3).p_value)
        r = lag_antisymmetry(ens.x, 3, n_batches=3)  # B = p = 3: Bonferroni-t fallback, conservative
        assert r.test == "bonferroni-t"
        pf.append(r.p_value)
    _assert_uniform(p, "SGD, D commuting with H")
    k = int(np.sum(np.array(pf) < 0.05))
    print(f"Bonferroni-t fallback (B = 3): {k} of {len(pf)} rejections at 5%")
    assert scipy.stats.binom.sf(k - 1, len(pf), 0.05) > 5e-4, k  # not anti-conservative


def test_exact_identities():
    rng = np.random.default_rng(5)
    x = np.cumsum(rng.normal(size=(50, 7, 2)), axis=0) * 0.1 + rng.normal(size=(50, 7, 2))
    r = lag_antisymmetry(x, 2)
    # time reversal flips the sign exactly
    np.testing.assert_allclose(lag_antisymmetry(x[::-1], 2).matrix, -r.matrix, atol=1e-13)
    # 2D: A_01 = L / 2 with the wedge about the mean
    L = lag_wedge(x, 2, center=x.mean(axis=(0, 1)))
    np.testing.assert_allclose(r.matrix[0, 1], L.value / 2, rtol=1e-12)
    np.testing.assert_allclose(r.stderr[0, 1], L.stderr / 2, rtol=1e-12)
    # projection: basis = identity columns reproduces the plain estimate; n_batches groups chains
    np.testing.assert_allclose(lag_antisymmetry(x, 2, basis=np.eye(2)).matrix, r.matrix, atol=1e-15)
    rb = lag_antisymmetry(x, 2, n_batches=3)
    assert rb.n_batches == 3 and rb.test == "hotelling"  # one entry: F(1, B - 1) = t^2
    np.testing.assert_allclose(lag_antisymmetry(x, [2]).matrix[0], r.matrix)
    # 3 lags x 3 entries with 5 batches: Hotelling per lag (5 > 3), Bonferroni-t jointly (5 <= 9)
    x3 = rng.normal(size=(40, 10, 3))
    r3 = lag_antisymmetry(x3, [1, 2, 3], n_batches=5)
    assert (r3.test, r3.test_joint) == ("hotelling", "bonferroni-t")
    assert r3.p_value.shape == (3,) and 0 <= r3.p_value_joint <= 1
    # deterministic rotation by theta per snapshot: A_01 = r^2 sin(theta) / 2 per unit radius
    th = 0.3 * np.arange(400)[:, None] + rng.uniform(0, 2 * np.pi, 5)
    xr = np.stack([np.cos(th), np.sin(th)], axis=-1)
    np.testing.assert_allclose(lag_antisymmetry(xr, 1).matrix[0, 1], np.sin(0.3) / 2, rtol=0.02)


def test_compare_circulation_refuses_different_tau():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(30, 20, 3))
    a = lag_antisymmetry(x, 2, spacing=0.1)
    b = lag_antisymmetry(x[:, ::-1], 2, spacing=0.1)
    d = compare_circulation(a, b)
    np.testing.assert_allclose(d.difference, a.matrix - b.matrix)
    assert d.lag == 2 and d.spacing == 0.1 and np.isnan(d.zscore[0, 0])
    with pytest.raises(ValueError, match="lag"):
        compare_circulation(a, lag_antisymmetry(x, 3, spacing=0.1))
    with pytest.raises(ValueError, match="lag"):
        compare_circulation(lag_antisymmetry(x, [1, 2]), lag_antisymmetry(x, [1, 3]))
    with pytest.raises(ValueError, match="spacing"):
        compare_circulation(a, lag_antisymmetry(x, 2, spacing=0.2))
    with pytest.raises(ValueError, match="spacing"):
        compare_circulation(a, lag_antisymmetry(x, 2))
    with pytest.raises(ValueError, match="basis"):
        compare_circulation(a, lag_antisymmetry(x, 2, spacing=0.1, basis=np.eye(3)[:, :2]))
    # lag_wedge and estimate_current carry their lag too
    x2 = x[..., :2]
    w1, w2 = lag_wedge(x2, 1, spacing=0.1), lag_wedge(x2, 2, spacing=0.1)
    assert (w1.lag, w1.tau) == (1, 0.1)
    with pytest.raises(ValueError, match="lag"):
        compare_circulation(w1, w2)
    dz = compare_circulation(w1, lag_wedge(x2[:, ::-1], 1, spacing=0.1))
    assert isinstance(dz.zscore, float)
    c1 = estimate_current(x2, 0.1, bins=2)
    c2 = estimate_current(x2, 0.2, bins=2)
    assert c1.lag == 1
    with pytest.raises(ValueError, match="spacing"):
        compare_circulation(c1, c2)
    # circulation over one snapshot = L(lag 1) / tau
    np.testing.assert_allclose(c1.circulation, w1.value / 0.1, rtol=1e-10)
    with pytest.raises(ValueError, match="same kind"):
        compare_circulation(w1, c1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(x=np.zeros((10, 5))), "x"),
        (dict(x=np.zeros((10, 5, 1))), "x"),
        (dict(lag=0), "lag"),
        (dict(lag=10), "lag"),
        (dict(lag=1.5), "lag"),
        (dict(lag=[]), "lag"),
        (dict(basis=np.eye(3)), "basis"),
        (dict(basis=np.ones((2, 1))), "basis"),
        (dict(n_batches=1), "n_batches"),
        (dict(n_batches=6), "n_batches"),
        (dict(spacing=0.0), "spacing"),
    ],
)
def test_bad_input(kwargs, match):
    x = kwargs.pop("x", np.random.default_rng(0).normal(size=(10, 5, 2)))
    lag = kwargs.pop("lag", 1)
    with pytest.raises(ValueError, match=match):
        lag_antisymmetry(x, lag, **kwargs)
