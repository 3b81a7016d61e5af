"""Getting to stationarity: chains started from the linearised stationary law, and the stationarity test.

Calibration (module docstring of sdesim/chains/_diagnostics.py): under
stationarity the drift family (mean and spread of every coordinate,
Bonferroni) raises a false alarm with probability <= alpha and the loss trend
with probability alpha; split-R-hat passes when each piece spans many
autocorrelation times (R - 1 ~= (tau - 1) / (2 n')). Independent chains of one
run are independent draws, so disjoint groups of chains of one run serve as
independent repetitions (as separate seeds would).
"""

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import scipy.stats

from sdesim import chains
from sdesim.analysis import linearise

LR = 0.1


def _quadratic_fs(lam, rotate, seed=0, n_data=8):
    """f_k(x) = (x - mu_k)^T H (x - mu_k) / 2: grad f = H (x - mean mu), D = H Cov(mu) H constant."""
    rng = np.random.default_rng(seed)
    d = len(lam)
    Q = np.linalg.qr(rng.normal(size=(d, d)))[0] if rotate else np.eye(d)
    H = (Q * np.asarray(lam)) @ Q.T
    mu = rng.normal(size=(n_data, d))
    Hj = jnp.asarray(H)
    fs = chains.FiniteSum(lambda x, m: 0.5 * (x - m) @ Hj @ (x - m), (jnp.asarray(mu),), d)
    return fs, H, mu.mean(axis=0)


def _sgld_setup(lam=(1.0, 2.0, 4.0), rotate=True, c=1.0):
    """SGLD (b = 1, noise power c) on the quadratic: the Gaussian AR(1) chain x' = M x + lr sqrt(c) xi,
    stationary N(w*, S) with S = M S M^T + lr^2 c I exactly."""
    fs, H, w = _quadratic_fs(lam, rotate)
    lin = linearise(fs, w, LR, 1)
    M = np.eye(len(lam)) - LR * H
    S = scipy.linalg.solve_discrete_lyapunov(M, LR**2 * c * np.eye(len(lam)))
    return fs, lin, S, chains.sgld(fs, LR, 1, noise_power=c)


# ---------------------------------------------------------------------------
# stationary_start
# ---------------------------------------------------------------------------


def _least_squares(N=40, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(N, 3)) * np.array([0.6, 1.2, 2.0])
    y = A @ np.array([1.0, -1.0, 0.5]) + rng.normal(size=N) * (0.2 + np.abs(A @ np.ones(3)))
    xs = np.linalg.solve(A.T @ A, A.T @ y)
    fs = chains.FiniteSum(lambda x, a, yk: 0.5 * (a @ x - yk) ** 2, (jnp.asarray(A), jnp.asarray(y)), 3)
    return A, y, xs, fs


def _cov_z(x, centre, S):
    """z-scores of the ensemble covariance about the known mean against S, s.e. from the spread over chains."""
    dx = x - centre
    P = dx[:, :, None] * dx[:, None, :]  # (C, d, d), i.i.d. over chains
    iu = np.triu_indices(S.shape[0])
    est, se = P.mean(axis=0)[iu], P.std(axis=0, ddof=1)[iu] / np.sqrt(len(x))
    return (est - S[iu]) / se


def test_least_squares_started_from_exact_law_shows_no_covariance_drift():
    """SGD on least squares: E[M_B] = M and the second moment obeys S <- E[M_B S M_B^T] exactly, so chains
    started with mean w* and the exact covariance (linreg_stationary) keep both at every step. The snapshot
    covariances agree with S within 4.5 s.e. (12 entries tested: familywise false alarm ~1e-4), while chains
    started at w* are resolved as far from it at the first snapshot; stationarity() agrees."""
    A, y, xs, fs = _least_squares()
    lr, b, C = 0.05, 1, 4000
    m_exact, S = chains.linreg_stationary(A, y, lr, b)
    np.testing.assert_allclose(m_exact, xs, rtol=1e-8)
    lin = linearise(fs, xs, lr, b)
    x0 = chains.stationary_start(lin, C, seed=5, sigma=S)
    assert x0.shape == (C, 3) and x0.dtype == np.float64
    kern = chains.sgd(fs, lr, b)
    ens = chains.run_chains(kern, x0, n_chains=C, n_steps=300, save_every=10, dtype="float64", seed=6)
    for s in (0, -1):
        z = _cov_z(ens.x[s], xs, S)
        assert np.max(np.abs(z)) < 4.5, (s, z)
        zm = (ens.x[s] - xs).mean(axis=0) / ((ens.x[s] - xs).std(axis=0, ddof=1) / np.sqrt(C))
        assert np.max(np.abs(zm)) < 4.5, (s, zm)
    # the first two moments (hence the mean loss) are stationary: the drift and loss checks pass; R-hat is
    # left out (snapshots 10 steps apart are strongly correlated: the slowest relaxation is ~60 steps)
    st = chains.stationarity(ens, fs=fs, rhat_max=np.inf)
    assert st.is_stationary, st.message
    # power: chains started at w* still have a covariance far below S at the first snapshot (step 10)
    cold = chains.run_chains(kern, xs, n_chains=C, n_steps=300, save_every=10, dtype="float64", seed=6)
    assert np.max(np.abs(_cov_z(cold.x[0], xs, S))) > 20
    st = chains.stationarity(cold, fs=fs, rhat_max=np.inf)
    assert "spread_drift" in st.failed and "loss_trend" in st.failed, st.message
    assert "loss increases" in st.message


def test_stationary_start_law_and_options():
    fs, lin, S, _ = _sgld_setup()
    x = chains.stationary_start(lin, 20000, seed=0)
    np.testing.assert_array_equal(x, chains.stationary_start(lin, 20000, seed=0))
    assert not np.array_equal(x, chains.stationary_start(lin, 20000, seed=1))
    assert np.max(np.abs(_cov_z(x, lin.w_star, lin.sigma_discrete))) < 4.5
    xo = chains.stationary_start(lin, 20000, seed=0, discrete=False)
    assert np.max(np.abs(_cov_z(xo, lin.w_star, lin.sigma_ou))) < 4.5
    # a singular (rank-2) covariance needs the jitter; the draws then lie in its range to ~sqrt(jitter)
    u = np.array([1.0, -1.0, 0.5]) / 1.5
    P = np.eye(3) - np.outer(u, u)
    xs = chains.stationary_start(lin, 2000, seed=2, sigma=P @ S @ P)
    assert np.max(np.abs((xs - lin.w_star) @ u)) < 1e-5 * np.sqrt(np.max(np.diag(S)))
    with pytest.raises(ValueError, match="sigma"):
        chains.stationary_start(lin, 10, seed=0, sigma=-np.eye(3))
    with pytest.raises(ValueError, match="sigma"):
        chains.stationary_start(lin, 10, seed=0, sigma=np.eye(2))
    with pytest.raises(ValueError, match="lin"):
        chains.stationary_start(S, 10, seed=0)
    with pytest.raises(ValueError, match="n_chains"):
        chains.stationary_start(lin, 0, seed=0)
    # a subspace model: the draws move only in span(basis)
    sub = linearise(fs, lin.w_star, LR, 1, n_modes=2)
    xb = chains.stationary_start(sub, 100, seed=3)
    dx = xb - sub.w_star
    np.testing.assert_allclose(dx - dx @ sub.basis @ sub.basis.T, 0.0, atol=1e-12)


def test_stationary_mean_is_the_leading_order_shift():
    """1D: f = x^2/2 + x^3/3 + x^4/4 at temperature T has the Gibbs law exp(-f/T) (the SDE with D = 1),
    Sigma = T: the predicted mean -f3 Sigma / (2 f2) = -T (f2 = 1, f3 = 2 the derivatives at 0) misses the
    exact (quadrature) mean by O(T^2)."""
    fs = chains.FiniteSum(lambda x, a: jnp.sum(x**2 / 2 + x**3 / 3 + x**4 / 4) + 0.0 * a, (jnp.zeros(1),), 1)
    lin = linearise(fs, np.zeros(1), LR, 1)
    grid = np.linspace(-3.0, 3.0, 600001)
    f = grid**2 / 2 + grid**3 / 3 + grid**4 / 4
    err = []
    for T in (0.01, 0.005):
        w = np.exp(-(f - f.min()) / T)
        exact = float((grid * w).sum() / w.sum())
        pred = chains.stationary_mean(lin, fs, sigma=[[T]])
        assert pred.shape == (1,) and pred[0] == pytest.approx(-T, rel=1e-10)
        err.append(abs(pred[0] - exact))
        assert err[-1] < 4 * T**2 and err[-1] < 0.05 * T
    assert 3.0 < err[0] / err[1] < 5.0  # O(T^2)
    # d = 3, rotated: f = x^T H x / 2 + (a . x)^3 / 3, third derivative 2 a a a, so delta = -H^-1 a (a^T S a)
    _, H, _ = _quadratic_fs((1.0, 2.0, 4.0), rotate=True)
    a = np.array([0.3, -0.5, 0.8])
    Hj, aj = jnp.asarray(H), jnp.asarray(a)
    fs3 = chains.FiniteSum(lambda x, m: 0.5 * x @ Hj @ x + (aj @ x) ** 3 / 3 + 0.0 * jnp.sum(m), (jnp.zeros(1),), 3)
    lin3 = linearise(fs3, np.zeros(3), LR, 1)
    S = 0.01 * np.linalg.inv(H) + 0.002 * np.outer(a, a)
    want = -np.linalg.solve(H, a) * (a @ S @ a)
    np.testing.assert_allclose(chains.stationary_mean(lin3, fs3, sigma=S), want, rtol=1e-10)
    # through a subspace model spanning everything: the same
    sub = linearise(fs3, np.zeros(3), LR, 1, n_modes=3)
    Sk = sub.basis.T @ S @ sub.basis
    np.testing.assert_allclose(chains.stationary_mean(sub, fs3, sigma=Sk), want, rtol=1e-8, atol=1e-14)
    # stationary_start with fs centres the draws there
    x = chains.stationary_start(lin3, 10, seed=0, sigma=S, fs=fs3)
    np.testing.assert_allclose(x - want, chains.stationary_start(lin3, 10, seed=0, sigma=S), atol=1e-14)


# ---------------------------------------------------------------------------
# stationarity: calibration under stationarity
# ---------------------------------------------------------------------------


def test_stationary_chains_pass_and_false_alarm_rate_is_small():
    """40 groups of 100 SGLD chains started from the exact stationary law, 120 snapshots 30 steps apart
    (slowest autocorrelation per snapshot 0.9^30 = 0.04, so R-hat - 1 ~ 1e-3). Nominal false-alarm rate
    per group <= 2 alpha = 2 %; under that rate P(>= 4 alarms in 40) = 0.8 %."""
    fs, lin, S, kern = _sgld_setup()
    G, n_groups = 100, 40
    x0 = chains.stationary_start(lin, G * n_groups, seed=11, sigma=S)
    ens = chains.run_chains(kern, x0, n_chains=G * n_groups, n_steps=3600, save_every=30, dtype="float64",
                            seed=12)
    whole = chains.stationarity(ens, fs=fs)
    assert whole.is_stationary, whole.message
    assert whole.message.startswith("stationary") and whole.failed == ()
    assert whole.rhat_max_value < 1.005 and whole.n_chains == G * n_groups and whole.n_coords == 3
    alarms, zs, rh = 0, [], []
    for g in range(n_groups):
        part = ens.x[:, g * G:(g + 1) * G]
        st = chains.stationarity(part)
        alarms += not st.is_stationary
        zs.append(np.concatenate([st.mean_drift_z, st.spread_drift_z]))
        rh.append(st.rhat_max_value)
    assert alarms <= 3, alarms
    assert max(rh) < 1.01
    # the z-scores are calibrated: their variance is ~1 (t(99) has variance 1.02)
    zs = np.concatenate(zs)
    assert 0.75 < np.var(zs) < 1.3, np.var(zs)
    assert scipy.stats.binom.sf(3, n_groups, 0.02) < 0.01


# ---------------------------------------------------------------------------
# stationarity: runs that are not stationary
# ---------------------------------------------------------------------------


def test_relaxing_mean_fails_with_the_right_message():
    """Axis-aligned H = diag(1, 2, 4): a start shifted by 5 stationary s.d. along coordinate 0 (the slowest,
    lr lambda = 0.1) relaxes over ~10 steps; 30 snapshots one step apart see it."""
    fs, lin, S, kern = _sgld_setup(rotate=False)
    x0 = chains.stationary_start(lin, 300, seed=21, sigma=S)
    x0[:, 0] += 5 * np.sqrt(S[0, 0])
    ens = chains.run_chains(kern, x0, n_chains=300, n_steps=30, save_every=1, dtype="float64", seed=22)
    st = chains.stationarity(ens, fs=fs)
    assert not st.is_stationary
    assert st.failed[0] == "mean_drift" and "loss_trend" in st.failed and "rhat" in st.failed
    assert st.message.startswith("not stationary: ensemble mean drifts by ")
    assert " s.e. in coordinate 0 " in st.message and "loss decreases" in st.message
    assert np.argmax(np.abs(st.mean_drift_z)) == 0 and st.mean_shift[0] < 0
    assert st.loss_slope < 0 and st.loss_p < 1e-6
    # the same through a projection: coordinate 0 is the second basis direction
    basis = np.eye(3)[:, [2, 0]]
    st = chains.stationarity(ens, basis=basis)
    assert "ensemble mean drifts by" in st.message and "in basis direction 1 " in st.message
    assert st.n_coords == 2


def test_relaxing_spread_from_the_minimum_fails():
    """Started at w* the mean is stationary (E x_k = w*) but the variance relaxes, slowest in coordinate 0."""
    fs, lin, S, kern = _sgld_setup(rotate=False)
    ens = chains.run_chains(kern, lin.w_star, n_chains=300, n_steps=30, save_every=1, dtype="float64", seed=23)
    st = chains.stationarity(ens, fs=fs)
    assert not st.is_stationary and "spread_drift" in st.failed, st.message
    assert "ensemble spread drifts by" in st.message and "in coordinate 0 " in st.message
    assert st.spread_ratio[0] > 1.2 and "loss increases" in st.message


def _walk(g, c=1.0):
    """SGLD on f(x) = g . x: x' = x - lr g + lr sqrt(c) xi, a random walk with drift -lr g per step."""
    gj = jnp.asarray(g)
    fs = chains.FiniteSum(lambda x, a: gj @ x + 0.0 * a, (jnp.zeros(1),), len(g))
    return fs, chains.sgld(fs, LR, 1, noise_power=c)


def test_drifting_random_walk_fails():
    fs, kern = _walk([0.0, 0.0, 1.0])
    ens = chains.run_chains(kern, np.zeros(3), n_chains=200, n_steps=600, save_every=10, dtype="float64", seed=31)
    st = chains.stationarity(ens, fs=fs)
    assert st.failed[0] == "mean_drift" and "spread_drift" in st.failed and "loss_trend" in st.failed
    assert "ensemble mean drifts by" in st.message and "in coordinate 2 " in st.message
    assert "loss decreases" in st.message
    # expected mean shift between the thirds' centres: -lr * 400 steps
    assert st.mean_shift[2] == pytest.approx(-LR * 400, rel=0.05)


def test_driftless_random_walk_fails_on_spread_and_rhat():
    fs, kern = _walk([0.0, 0.0])
    ens = chains.run_chains(kern, np.zeros(2), n_chains=200, n_steps=600, save_every=10, dtype="float64", seed=32)
    st = chains.stationarity(ens, fs=fs)
    assert "spread_drift" in st.failed and "rhat" in st.failed, st.message
    assert "loss_trend" not in st.failed and st.loss_slope == 0.0  # f = 0
    # the variance grows linearly in time: the thirds' mean steps are 505 and 105, a ratio ~4.8
    assert np.all((st.spread_ratio > 3.5) & (st.spread_ratio < 6.5))


# ---------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------


def test_array_input_diverged_chains_and_validation():
    fs, lin, S, kern = _sgld_setup()
    ens = chains.run_chains(kern, chains.stationary_start(lin, 100, seed=41, sigma=S), n_chains=100,
                            n_steps=600, save_every=30, dtype="float64", seed=42)
    a = chains.stationarity(ens)
    b = chains.stationarity(ens.x)  # an array, e.g. from load_stream
    np.testing.assert_array_equal(a.mean_drift_z, b.mean_drift_z)
    np.testing.assert_array_equal(a.rhat, b.rhat)
    assert np.isnan(a.loss_p)
    x = ens.x.copy()
    x[5:, 7, 1] = np.nan
    st = chains.stationarity(x)
    assert st.failed[0] == "diverged" and st.n_diverged == 1 and st.n_chains == 99
    assert st.message.startswith("not stationary: 1 of 100 chains diverged")
    with pytest.raises(ValueError, match="ens"):
        chains.stationarity(ens.x[:3])
    with pytest.raises(ValueError, match="ens"):
        chains.stationarity(ens.x[:, :1])
    with pytest.raises(ValueError, match="ens"):
        chains.stationarity(ens.x[0])
    with pytest.raises(ValueError, match="basis"):
        chains.stationarity(ens, basis=np.eye(2))
    with pytest.raises(ValueError, match="alpha"):
        chains.stationarity(ens, alpha=1.5)
    with pytest.raises(ValueError, match="rhat_max"):
        chains.stationarity(ens, rhat_max=0.9)
    with pytest.raises(ValueError, match="n_split"):
        chains.stationarity(ens, n_split=1)
    with pytest.raises(ValueError, match="fs"):
        chains.stationarity(ens, fs=_walk([1.0, 0.0])[0])
