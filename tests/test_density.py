"""Phi-hat from particles: error bars that are right, not guessed (chi^2 against exact Phi)."""

import numpy as np
import pytest
import scipy.stats

import sdesim
from _stats import sample_anisotropic_double_well
from sdesim.analysis import estimate_potential

A = 0.3  # anisotropic_double_well's default coupling




def _bin_probs_2d(edges, logdens, order=6):
    """Exact bin integrals of exp(logdens) by Gauss-Legendre per bin (unnormalised)."""
    gl, gw = np.polynomial.legendre.leggauss(order)
    ex, ey = edges
    hx, hy = (ex[1] - ex[0]) / 2, (ey[1] - ey[0]) / 2
    X = (0.5 * (ex[1:] + ex[:-1]))[:, None, None, None] + hx * gl[None, :, None, None]
    Y = (0.5 * (ey[1:] + ey[:-1]))[None, None, :, None] + hy * gl[None, None, None, :]
    return np.einsum("iajb,a,b->ij", np.exp(logdens(X, Y)), gw, gw) * hx * hy


def _chi2(phi_hat, se, phi_exact, mask):
    """chi^2 per dof of phi_hat - phi_exact after fitting the additive constant."""
    d = (phi_hat - phi_exact)[mask]
    w = 1.0 / se[mask] ** 2
    c = np.sum(d * w) / np.sum(w)
    z = (d - c) / se[mask]
    return np.mean(z**2), z.size, z


def _chi2_bound(dof, k=5.0):
    return 1.0 + k * np.sqrt(2.0 / dof)


def test_histogram_phi_matches_exact_within_its_error_bars():
    beta_inv = 0.5
    x = sample_anisotropic_double_well(400_000, beta_inv, seed=1)
    est = estimate_potential(x, beta_inv=beta_inv, bins=48, box=((-2.4, 2.4), (-2.4, 2.4)))
    assert est.errors == "multinomial"
    p = _bin_probs_2d(
        est.edges, lambda X, Y: -((X**2 - 1) ** 2 / 4 + Y**2 / 2 + A * X * Y / 2) / beta_inv
    )
    phi_exact = -beta_inv * np.log(p)
    bulk = est.counts >= 20
    chi2, dof, z = _chi2(est.phi, est.stderr, phi_exact, bulk)
    assert dof > 800
    assert abs(chi2 - 1.0) < 5 * np.sqrt(2.0 / dof), chi2
    assert 0.93 < np.mean(np.abs(z) < 2) < 0.97
    assert np.nanmin(est.phi) == 0.0
    # the density estimate integrates to the fraction of samples in the box
    assert abs(est.rho.sum() * np.prod([e[1] - e[0] for e in est.edges]) - est.counts.sum() / 400_000) < 1e-12


def test_modes_match_exact_minima_of_phi():
    beta_inv = 0.25
    x = sample_anisotropic_double_well(400_000, beta_inv, seed=2)
    est = estimate_potential(x, beta_inv=beta_inv, bins=64, box=(-2.0, 2.0), n_boot=40)
    # grad Phi = 0: x2 = -a x1 / 2, x1^2 = 1 + a^2 / 4
    x1 = np.sqrt(1 + A * A / 4)
    exact = np.array([[x1, -A * x1 / 2], [-x1, A * x1 / 2]])
    assert est.modes.shape == (2, 2)
    # both wells rise far above the threshold set by the KDE's standard errors
    assert np.all(np.diff(est.mode_log_density) <= 0)  # highest first
    assert est.mode_prominence_threshold[0] == 0 and 0 < est.mode_prominence_threshold[1] < est.mode_prominence[1] / 3
    for m in exact:
        j = np.argmin(np.sum((est.modes - m) ** 2, axis=1))
        se = est.mode_stderr[j]
        assert np.all(se > 0) and np.all(se < 0.1)
        # KDE smoothing bias is O(h^2) and small against the error bar here
        assert np.all(np.abs(est.modes[j] - m) < 4 * se + 0.01), (est.modes[j], m, se)


def test_bootstrap_agrees_with_multinomial_for_independent_samples():
    x = sample_anisotropic_double_well(200_000, 0.5, seed=3)
    box = ((-2.4, 2.4), (-2.4, 2.4))
    a = estimate_potential(x, beta_inv=0.5, bins=32, box=box, kde=False)
    b = estimate_potential(x, beta_inv=0.5, bins=32, box=box, kde=False, errors="bootstrap", n_boot=200)
    bulk = a.counts >= 50
    ratio = np.median(b.stderr[bulk] / a.stderr[bulk])
    # spread of a std from 200 replicates: ~5% per bin; the median is tighter
    assert abs(ratio - 1.0) < 0.05, ratio


def test_correlated_snapshots_use_particle_bootstrap():
    """AR(1) chains with N(0, 1) marginals: naive multinomial errors are too small, the bootstrap is right."""
    rng = np.random.default_rng(4)
    n_t, n_p, a = 100, 3000, 0.97
    x = np.empty((n_t, n_p, 1))
    x[0] = rng.normal(size=(n_p, 1))
    for t in range(1, n_t):
        x[t] = a * x[t - 1] + np.sqrt(1 - a * a) * rng.normal(size=(n_p, 1))
    box = (-3.0, 3.0)
    boot = estimate_potential(x, beta_inv=1.0, bins=60, box=box, n_boot=100)
    naive = estimate_potential(x.reshape(-1, 1), beta_inv=1.0, bins=60, box=box)
    assert boot.errors == "bootstrap" and naive.errors == "multinomial"
    e = boot.edges[0]
    phi_exact = -np.log(np.diff(scipy.stats.norm.cdf(e)))
    bulk = boot.counts >= 100
    chi_boot, dof, _ = _chi2(boot.phi, boot.stderr, phi_exact, bulk)
    chi_naive, _, _ = _chi2(naive.phi, naive.stderr, phi_exact, bulk)
    assert chi_boot < _chi2_bound(dof, 4.0), chi_boot
    assert np.median(boot.stderr[bulk] / naive.stderr[bulk]) > 1.5
    assert chi_naive > 2 * _chi2_bound(dof, 4.0), chi_naive


def test_kde_matches_smoothed_gaussian_within_analytic_error_bars():
    """For a Gaussian target the KDE's expectation is N(0, Sigma + diag(h^2)) -- its bias removed exactly."""
    rng = np.random.default_rng(5)
    S = np.array([[1.0, 0.5], [0.5, 0.6]])
    x = rng.multivariate_normal([0.0, 0.0], S, size=300_000)
    est = estimate_potential(x, beta_inv=1.0, bins=40, box=(-3.0, 3.0), n_boot=20)
    h = est.bandwidth
    # Scott's rule
    np.testing.assert_allclose(h, x.std(axis=0, ddof=1) * 300_000 ** (-1 / 6))
    Sh = S + np.diag(h**2)
    X, Y = est.grid
    Z = np.stack([X, Y], -1)
    phi_exact = 0.5 * np.einsum("...i,ij,...j->...", Z, np.linalg.inv(Sh), Z)
    bulk = est.rho_kde > 0.01 * est.rho_kde.max()
    chi2, dof, _ = _chi2(est.phi_kde, est.stderr_kde, phi_exact, bulk)
    # KDE values at neighbouring centres are correlated: chi^2 mean is still ~1, its spread larger
    assert abs(chi2 - 1.0) < 0.25, chi2
    # analytic KDE variance agrees with the bootstrap
    boot = estimate_potential(x, beta_inv=1.0, bins=40, box=(-3.0, 3.0), errors="bootstrap", n_boot=100)
    r = np.median(boot.stderr_kde[bulk] / est.stderr_kde[bulk])
    assert abs(r - 1.0) < 0.08, r
    # the single mode is at the origin
    assert est.modes.shape == (1, 2)
    assert np.all(np.abs(est.modes[0]) < 4 * est.mode_stderr[0] + 0.01)


def test_one_dimensional_and_bandwidth_override():
    rng = np.random.default_rng(6)
    g = np.linspace(-3, 3, 20001)
    lp = -((g**2 - 1) ** 2) / 4 / 0.2
    c = np.cumsum(np.exp(lp - lp.max()))
    c = (c - c[0]) / (c[-1] - c[0])
    x = np.interp(rng.random(200_000), c, g)
    est = estimate_potential(x, beta_inv=0.2, bins=60, box=(-2.0, 2.0), bandwidth=0.05)
    assert est.centers.shape == (60,) and est.phi.shape == (60,)
    np.testing.assert_allclose(est.bandwidth, [0.05])
    e = est.edges[0]
    gl, gw = np.polynomial.legendre.leggauss(8)
    hw = (e[1] - e[0]) / 2
    xs = est.centers[:, None] + hw * gl[None, :]
    p = np.exp(-((xs**2 - 1) ** 2) / 4 / 0.2) @ gw
    chi2, dof, _ = _chi2(est.phi, est.stderr, -0.2 * np.log(p), est.counts >= 20)
    assert abs(chi2 - 1.0) < 5 * np.sqrt(2 / dof)
    m = np.sort(est.modes[:, 0])
    assert m.size == 2
    np.testing.assert_allclose(np.abs(m), 1.0, atol=0.03)
    s = estimate_potential(x, beta_inv=0.2, bins=60, box=(-2.0, 2.0), bandwidth="silverman")
    np.testing.assert_allclose(s.bandwidth, x.std(ddof=1) * (4 / 3) ** 0.2 * 200_000 ** -0.2)


def test_projection_for_dim_above_two():
    """3D Gaussian: default axes are the two leading principal axes; Phi-hat is the projected Gaussian's."""
    rng = np.random.default_rng(7)
    w = np.array([3.0, 1.0, 0.2])
    Qm, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    S = Qm @ np.diag(w) @ Qm.T
    x = rng.multivariate_normal(np.zeros(3), S, size=300_000)
    est = estimate_potential(x, beta_inv=1.0, bins=40, box=(-5.0, 5.0), kde=False)
    assert est.axes.shape == (3, 2)
    # the axes span the leading eigenvectors
    overlap = np.linalg.svd(Qm[:, :2].T @ est.axes, compute_uv=False)
    assert overlap.min() > 0.999
    Sp = est.axes.T @ S @ est.axes
    P = np.linalg.inv(Sp)
    p = _bin_probs_2d(est.edges, lambda X, Y: -0.5 * (P[0, 0] * X * X + 2 * P[0, 1] * X * Y + P[1, 1] * Y * Y))
    chi2, dof, _ = _chi2(est.phi, est.stderr, -np.log(p), est.counts >= 20)
    # the sample-estimated axes differ from the exact ones by O(1/sqrt(N)): allow a little
    assert chi2 < _chi2_bound(dof, 6.0), chi2
    # integer axes give a coordinate marginal
    m = estimate_potential(x, beta_inv=1.0, bins=30, axes=[2], box=(-4, 4), kde=False)
    assert m.phi.shape == (30,)
    e = m.edges[0]
    p1 = np.diff(scipy.stats.norm.cdf(e / np.sqrt(S[2, 2])))
    chi2, dof, _ = _chi2(m.phi, m.stderr, -np.log(p1), m.counts >= 20)
    assert chi2 < _chi2_bound(dof, 5.0)


@pytest.mark.parametrize("snapshots", [False, True])
def test_sampling_noise_on_a_flat_density_never_makes_a_mode(snapshots):
    """Uniform on the unit square: the KDE's top is flat, so every extra peak is noise.

    Without a threshold the noise makes 10-20 peaks per sample; with the default
    rule (prominence above the threshold from z standard errors of log rho_hat,
    analytic for independent samples, particle bootstrap for snapshots) only the
    highest remains, for every seed.
    """
    for seed in range(4):
        rng = np.random.default_rng(seed)
        x = rng.random((4000 if snapshots else 20_000, 2))
        if snapshots:  # 5 strongly correlated snapshots of 4000 particles
            x = x[None] + 0.01 * rng.standard_normal((5, 4000, 2))
        kw = dict(beta_inv=1.0, bins=24, box=(-0.2, 1.2), n_boot=10)
        est = estimate_potential(x, **kw)
        assert est.errors == ("bootstrap" if snapshots else "multinomial")
        assert est.modes.shape == (1, 2) and np.all(np.abs(est.modes[0] - 0.5) < 0.5)
        assert estimate_potential(x, mode_prominence=0.0, **kw).modes.shape[0] > 5


class _FakeEnsemble:
    def __init__(self, x):
        self.x = x


def test_accepts_an_ensemble_like_object():
    x = sample_anisotropic_double_well(20_000, 0.5, seed=8).reshape(10, 2000, 2)
    est = estimate_potential(_FakeEnsemble(x), beta_inv=0.5, bins=16, box=(-2, 2), n_boot=10)
    assert est.errors == "bootstrap" and est.n_samples == 20_000


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(beta_inv=-1.0), "beta_inv"),
        (dict(beta_inv=1.0, bins=1), "bins"),
        (dict(beta_inv=1.0, bins=(10, 10, 10)), "bins"),
        (dict(beta_inv=1.0, box=((1, 0), (0, 1))), "box"),
        (dict(beta_inv=1.0, box=(0, 1, 2)), "box"),
        (dict(beta_inv=1.0, errors="guess"), "errors"),
        (dict(beta_inv=1.0, bandwidth=-0.1), "bandwidth"),
        (dict(beta_inv=1.0, bandwidth="wide"), "bandwidth"),
        (dict(beta_inv=1.0, axes=[0, 5]), "axes"),
        (dict(beta_inv=1.0, axes=np.ones((2, 2))), "axes"),
        (dict(beta_inv=1.0, n_boot=1), "n_boot"),
        (dict(beta_inv=1.0, mode_threshold=2.0), "mode_threshold"),
        (dict(beta_inv=1.0, mode_prominence=-1.0), "mode_prominence"),
    ],
)
def test_bad_input(kwargs, field):
    x = np.random.default_rng(0).normal(size=(500, 2))
    with pytest.raises(ValueError, match=rf"^{field}:"):
        estimate_potential(x, **kwargs)


def test_bad_samples():
    with pytest.raises(ValueError, match=r"^samples:"):
        estimate_potential(np.array([[0.0, np.nan], [1.0, 1.0]]), beta_inv=1.0)
    with pytest.raises(ValueError, match=r"^samples:"):
        estimate_potential(np.zeros((2, 2, 2, 2)), beta_inv=1.0)
    with pytest.raises(ValueError, match=r"^samples:"):
        estimate_potential("abc", beta_inv=1.0)


@pytest.mark.parametrize("lam", [0.0, 1.5])
def test_example19_particles_from_simulate_match_exp_minus_phi(lam):
    """Euler-Maruyama ensemble of Example 19 (any lam): Phi-hat = Phi within the particle-bootstrap errors."""
    prob = sdesim.problems.rotating_double_well(lam)
    ens = sdesim.simulate(prob, beta_inv=1.0, n_particles=4000, n_steps=1500, dt=0.01, seed=3, burn_in=300, save_every=75)
    est = estimate_potential(ens, beta_inv=1.0, bins=24, box=(-2.5, 2.5), kde=False, n_boot=60)
    assert est.errors == "bootstrap"
    p = _bin_probs_2d(est.edges, lambda X, Y: -((X**2 - 1) ** 2 / 4 + Y**2 / 2))
    chi2, dof, _ = _chi2(est.phi, est.stderr, -np.log(p), est.counts >= 50)
    assert dof > 250
    assert chi2 < _chi2_bound(dof, 5.0) + 0.1, chi2  # + Euler O(dt) bias allowance
