"""The A-type SDE as the zero-mass limit: exact Gibbs law at every m, dynamics converge as m -> 0."""

import numpy as np
import pytest

import sdesim
from _stats import sample_anisotropic_double_well
from sdesim.analysis import fokker_planck_2d, stationary_density_2d
from sdesim import simulate_zero_mass
from sdesim.analysis import fokker_planck_lag_wedge, lag_wedge, linear_lag_covariance

F = np.array([[1.0, -0.6], [0.4, 1.2]])
D = np.array([[1.0, 0.4], [0.4, 0.5]])


def _wedge(C):
    return C[1, 0] - C[0, 1]




def test_linear_closed_form_limits():
    U, Q = sdesim.linear_decomposition(F, D)
    b = 0.5
    S = sdesim.ou_stationary_covariance(F, D, b)
    for m in (0.0, 0.1, 1.0):
        np.testing.assert_allclose(linear_lag_covariance(U, D, Q, b, 0.0, m), S, atol=1e-12)
    L0 = _wedge(linear_lag_covariance(U, D, Q, b, 0.5))
    assert abs(L0) > 0.05  # Q != 0: the overdamped process circulates
    errs = [abs(_wedge(linear_lag_covariance(U, D, Q, b, 0.5, m)) - L0) for m in (1.0, 0.3, 0.1, 0.03, 0.01)]
    assert np.all(np.diff(errs) < 0)
    assert errs[-1] < 0.005 * abs(L0)
    # d C / d tau = 0 at tau = 0 for m > 0 (velocity independent of position), != 0 for m = 0
    eps = 1e-5
    d_m = (_wedge(linear_lag_covariance(U, D, Q, b, eps, 0.1)) - 0.0) / eps
    d_0 = (_wedge(linear_lag_covariance(U, D, Q, b, eps)) - 0.0) / eps
    assert abs(d_m) < 1e-3 * abs(d_0)


def test_integrator_matches_linear_closed_form_at_finite_mass():
    prob = sdesim.problems.linear(F, D)
    U, Q = sdesim.linear_decomposition(F, D)
    b, m, tau = 0.5, 0.1, 0.5
    S = sdesim.ou_stationary_covariance(F, D, b)
    n = 10_000
    x0 = np.random.default_rng(0).multivariate_normal([0.0, 0.0], S, size=n)
    h = m / 10
    ens = simulate_zero_mass(prob, beta_inv=b, mass=m, n_particles=n, n_steps=200, dt=h, seed=1, x0=x0, save_every=5)
    lag = int(round(tau / (5 * h)))
    res = lag_wedge(ens.x, lag, spacing=5 * h)
    assert res.lag == lag and np.isclose(res.tau, tau)
    L, se = res
    exact = _wedge(linear_lag_covariance(U, D, Q, b, tau, m))
    assert abs(L - exact) < 4 * se, (L, se, exact)
    # and it is measurably different from the m -> 0 value at this mass
    assert abs(exact - _wedge(linear_lag_covariance(U, D, Q, b, tau))) > 5 * se
    # velocity law N(0, beta^-1/m I) at the final time
    v = ens.v[-1].astype(np.float64) * np.sqrt(m / b)
    C = v.T @ v / n
    np.testing.assert_allclose(C, np.eye(2), atol=4 * np.sqrt(2.0 / n))


@pytest.mark.parametrize("mass", [0.5, 0.05])
def test_gibbs_law_is_exact_at_every_mass_with_state_dependent_friction(mass):
    """x ~ exp(-Phi/beta^-1), v ~ N(0, beta^-1/m), x independent of v: no x-current at any m."""
    b = 0.5
    prob = sdesim.problems.anisotropic_double_well(b)
    n = 10_000
    x0 = sample_anisotropic_double_well(n, b, seed=11)
    h = mass / 10  # run to t = 10 m (same shapes as below: one compiled program)
    ens = simulate_zero_mass(prob, beta_inv=b, mass=mass, n_particles=n, n_steps=100, dt=h, seed=2, x0=x0, save_every=5)
    x, v = ens.x[-1].astype(np.float64), ens.v[-1].astype(np.float64) * np.sqrt(mass / b)
    # position law: exact moments of exp(-Phi/beta^-1) against the exact sampler's
    ref = sample_anisotropic_double_well(400_000, b, seed=12)
    for g in (lambda z: z[:, 0] ** 2, lambda z: z[:, 1] ** 2, lambda z: z[:, 0] * z[:, 1], lambda z: z[:, 1]):
        a, r = g(x), g(ref)
        se = np.sqrt(a.var() / n + r.var() / r.size)
        assert abs(a.mean() - r.mean()) < 4 * se
    # velocity law and independence
    np.testing.assert_allclose(v.T @ v / n, np.eye(2), atol=4 * np.sqrt(2.0 / n))
    w = x[:, 0] * v[:, 1] - x[:, 1] * v[:, 0]  # x ∧ v: the x-current's angular moment
    assert abs(w.mean()) < 4 * w.std() / np.sqrt(n)


def test_state_dependent_dynamics_converge_to_the_ito_converted_atype_sde():
    """L_m(tau) -> L_0(tau) of the A-type Itô SDE (computed from its Fokker-Planck operator)."""
    b, tau = 0.5, 0.5
    prob = sdesim.problems.anisotropic_double_well(b)
    op = fokker_planck_2d(prob, beta_inv=b, box=(-3.5, 3.5), n=64, form="atype")
    ss = stationary_density_2d(prob, beta_inv=b, box=None, n=None, operator=op)
    L0 = fokker_planck_lag_wedge(op, ss.rho, tau)
    n = 10_000
    x0 = sample_anisotropic_double_well(n, b, seed=21)
    vals = {}
    for m in (0.2, 0.1, 0.05):
        h = m / 10
        n_steps = int(round(2 * tau / h))
        every = n_steps // 20
        ens = simulate_zero_mass(prob, beta_inv=b, mass=m, n_particles=n, n_steps=n_steps, dt=h, seed=3, x0=x0, save_every=every)
        vals[m] = lag_wedge(ens.x, int(round(tau / (every * h))))
    (L2, s2), (L1, s1), (L05, s05) = vals[0.2], vals[0.1], vals[0.05]
    # distance to the limit shrinks with m, roughly linearly
    assert L0 - L2 > L0 - L1 > L0 - L05 > -3 * s05
    assert L0 - L2 > 8 * s2
    # Richardson extrapolation to m = 0 (error O(m^2)) hits the A-type value
    R, sR = 2 * L05 - L1, np.hypot(2 * s05, s1)
    assert abs(R - L0) < 4 * sR + 0.005, (R, sR, L0)


def test_naive_ito_reading_has_a_different_stationary_density():
    """Dropping beta^-1 div(D+Q) moves the particles: E[x2] leaves 0 (its exact value) within O(1) time."""
    b = 0.5
    prob = sdesim.problems.anisotropic_double_well(b)
    naive = stationary_density_2d(prob, beta_inv=b, box=(-3.5, 3.5), n=64, form="atype_naive")
    assert naive.expect(naive.grid[1]) < -0.05  # exact: E[x2] = 0 (Phi is even)
    n = 10_000
    x0 = sample_anisotropic_double_well(n, b, seed=31)
    out = {}
    for form in ("atype", "atype_naive"):
        ens = sdesim.simulate(prob, beta_inv=b, n_particles=n, n_steps=400, dt=0.0075, seed=4, x0=x0, form=form, save_every=40)
        x2 = ens.x[-4:, :, 1].astype(np.float64).mean(axis=0)  # t in [2.1, 3], per particle
        out[form] = (x2.mean(), x2.std(ddof=1) / np.sqrt(n))
    (m_a, s_a), (m_n, s_n) = out["atype"], out["atype_naive"]
    assert abs(m_a) < 4 * s_a + 0.005  # + Euler O(dt) bias allowance
    assert m_n < -0.03
    assert m_a - m_n > 5 * np.hypot(s_a, s_n)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(mass=0.0), "mass"),
        (dict(beta_inv=-1.0), "beta_inv"),
        (dict(dt=0.0), "dt"),
        (dict(n_steps=10, save_every=3), "save_every"),
        (dict(x0=np.zeros(3)), "x0"),
        (dict(x0=0.5), "x0"),  # a scalar only for dim 1
        (dict(v0=np.full(2, np.nan)), "v0"),
    ],
)
def test_bad_input(kwargs, field):
    prob = sdesim.problems.rotating_double_well(0.5)
    base = dict(beta_inv=1.0, mass=0.1, n_particles=4, n_steps=10, dt=0.01)
    base.update(kwargs)
    with pytest.raises(ValueError, match=rf"^{field}:"):
        simulate_zero_mass(prob, **base)


def test_needs_atype_problem():
    p = sdesim.problems.custom(lambda x: x, 1.0, 2)
    with pytest.raises(ValueError, match=r"^problem:"):
        simulate_zero_mass(p, beta_inv=1.0, mass=0.1, n_particles=4, n_steps=10, dt=0.01)


def test_float64_runs_draw_52_bit_normals():
    """With x64 on the integrator runs in float64 and its noise is the float64 per-particle stream:
    default velocities ``sqrt(beta^-1 / m) z`` with ``z`` at step index 2^32 - 1."""
    import jax
    import jax.numpy as jnp

    from sdesim.noise import particle_keys, step_normals

    prob = sdesim.problems.rotating_double_well(0.5)
    ens = simulate_zero_mass(prob, beta_inv=0.5, mass=0.1, n_particles=5, n_steps=2, dt=0.01, seed=4)
    z = np.asarray(jax.vmap(lambda k: step_normals(k, 0xFFFFFFFF, 2, jnp.float64))(particle_keys(4, 0, 5)))
    assert ens.v.dtype == np.float64
    np.testing.assert_allclose(ens.v[0], np.sqrt(0.5 / 0.1) * z, rtol=1e-15)
    z32 = np.asarray(jax.vmap(lambda k: step_normals(k, 0xFFFFFFFF, 2))(particle_keys(4, 0, 5)))
    assert np.all(z != z32)  # not float32 normals widened
