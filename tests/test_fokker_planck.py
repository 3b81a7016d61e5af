"""The 2D finite-volume Fokker-Planck solver against closed-form stationary densities."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdesim
from sdesim.analysis import find_modes, fokker_planck_2d, stationary_density_2d

BOX = ((-3.5, 3.5), (-3.5, 3.5))


def _tv(p, q, cell):
    return 0.5 * np.sum(np.abs(p - q)) * cell


def _normalised(res, logp):
    p = np.exp(logp - logp.max())
    return p / (p.sum() * res.dx * res.dy)


def _point_eval(fn, res):
    X, Y = res.grid
    pts = jnp.asarray(np.stack([X.ravel(), Y.ravel()], -1))
    out = np.asarray(jax.jit(jax.vmap(fn))(pts), dtype=np.float64)
    return out.reshape(X.shape + out.shape[1:])


def _V(x):
    return (x[0] ** 2 - 1.0) ** 2 / 4.0 + x[1] ** 2 / 2.0 + 0.3 * x[0] + 0.2 * x[0] * x[1]


def test_gradient_flow_isotropic_gives_gibbs_and_converges_second_order():
    """grad f = grad V, D = I: rho = exp(-V / beta^-1) / Z; error O(h^2)."""
    prob = sdesim.problems.custom(jax.grad(_V), 1.0, 2)
    beta_inv = 0.7
    errs = []
    for n in (24, 48, 96):
        res = stationary_density_2d(prob, beta_inv=beta_inv, box=BOX, n=n)
        exact = _normalised(res, -_point_eval(_V, res) / beta_inv)
        errs.append(_tv(res.rho, exact, res.dx * res.dy))
        assert abs(res.rho.sum() * res.dx * res.dy - 1.0) < 1e-12
        assert res.residual < 1e-10
        # no current for a gradient flow with isotropic noise
        assert np.abs(res.current).max() < 1e-10 * np.abs(res.rho).max()
    rates = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert errs[-1] < 5e-4
    assert np.all(rates > 1.7) and np.all(rates < 2.3), (errs, rates)


@pytest.mark.repro
@pytest.mark.parametrize("lam", [0.0, 0.5, 1.5])
def test_example19_density_current_and_q(lam):
    """Example 19: rho = exp(-Phi) for every lam, J = lam J_ss / Z, Q recovered from the stream function."""
    prob = sdesim.problems.rotating_double_well(lam)
    res = stationary_density_2d(prob, beta_inv=1.0, box=BOX, n=64)
    logp = -_point_eval(prob.phi, res)
    exact = _normalised(res, logp)
    Z = np.exp(logp - logp.max()).sum() * res.dx * res.dy * np.exp(logp.max())
    assert _tv(res.rho, exact, res.dx * res.dy) < 1.0e-3  # O(h^2) = 6e-4 measured
    X, Y = res.grid
    Jex = lam * np.exp(-((X**2 + Y**2) ** 2) / 4)[..., None] * np.stack([-Y, X], -1) / Z
    bulk = exact > 0.02 * exact.max()
    jscale = max(np.abs(Jex).max(), 1e-3)
    assert np.abs(res.current - Jex)[bulk].max() < 0.02 * jscale
    if lam > 0:
        qex = _point_eval(lambda x: prob.q_matrix(x)[0, 1], res)
        assert np.abs(res.q - qex)[bulk].max() < 0.01 * np.abs(qex).max()
        np.testing.assert_allclose(res.Q[..., 0, 1], -res.Q[..., 1, 0])
    # modes at (+-1, 0) for every lam: two peaks whose prominence (1/4 in log rho) is far above the
    # threshold from the estimated discretisation error; a third would need a rise above that threshold
    modes = res.modes()
    assert modes.shape[0] == 2
    np.testing.assert_allclose(np.sort(np.abs(modes[:, 0])), [1.0, 1.0], atol=5e-3)
    np.testing.assert_allclose(modes[:, 1], 0.0, atol=5e-3)
    tab = res.mode_table()
    assert 0 < tab.threshold[1] < 0.05 < 0.2 < tab.prominence[1]


def _exact_log_cell_averages(res, phi, order=6):
    """log of the cell averages of exp(-phi) (Gauss-Legendre per cell), unnormalised."""
    gl, gw = np.polynomial.legendre.leggauss(order)
    X = res.x[:, None, None, None] + res.dx / 2 * gl[None, :, None, None]
    Y = res.y[None, None, :, None] + res.dy / 2 * gl[None, None, None, :]
    return np.log(np.einsum("iajb,a,b->ij", np.exp(-phi(X, Y)), gw, gw) / 4)


def test_example19_mode_prominence_error_estimate_and_rounding():
    """lam = 0, beta = 1: the wells rise Phi(0, 0) - Phi(+-1, 0) = 1/4 above the saddle.

    Checks the error estimate d (coarse-minus-fine log rho) against the exact cell
    averages: over the region above the saddle, the error's variation about each
    mode is bounded by d's (ratio ~3 in the O(h^2) regime), so the prominence is
    within that of the exact cell averages' prominence. Then perturbs rho in its
    last bits (what another CPU's rounding does): always exactly two modes.
    """
    prob = sdesim.problems.rotating_double_well(0.0)
    res = stationary_density_2d(prob, beta_inv=1.0, box=BOX, n=64)
    tab = res.mode_table()
    exact = _exact_log_cell_averages(res, lambda X, Y: (X**2 - 1) ** 2 / 4 + Y**2 / 2)
    ex_tab = find_modes(exact, (res.x, res.y), min_log_ratio=np.log(1e-3))
    assert len(tab) == len(ex_tab) == 2
    # the same cells, up to the last-bit choice between the two cells either side of y = 0
    assert sorted(tab.index[:, 0]) == sorted(ex_tab.index[:, 0]) == [22, 41]
    assert set(tab.index[:, 1]) <= {31, 32} and set(ex_tab.index[:, 1]) <= {31, 32}
    lr = np.log(res.rho)
    e = lr - exact
    d = res.log_density_error()
    region = lr >= lr[31:33, 31:33].max()  # above the saddle (the 2x2 cells around the origin)
    for idx in tab.index:
        P = tuple(idx)
        span_e = np.abs(e[region] - e[P]).max()
        span_d = np.abs(d[region] - d[P]).max()
        assert span_e <= span_d < 5 * span_e, (span_e, span_d)
    span = max(np.abs(d[region] - d[tuple(i)]).max() for i in tab.index)
    assert abs(tab.prominence[1] - ex_tab.prominence[1]) <= span
    # the continuous prominence 1/4: the grid's saddle cells sit at (+-h/2, +-h/2), the peaks
    # within h/2 of (+-1, 0): |Phi'' h^2| <= 2 h^2 covers the sampling
    assert abs(tab.prominence[1] - 0.25) <= span + 2 * res.dx**2
    rng = np.random.default_rng(0)
    for _ in range(20):
        k = rng.integers(-4, 5, res.rho.shape)
        pert = dataclasses.replace(res, rho=res.rho * (1 + k * np.finfo(float).eps))
        assert len(pert.mode_table()) == 2


def test_linear_ou_anisotropic_gives_lyapunov_gaussian():
    F = np.array([[1.0, -0.6], [0.4, 1.2]])
    D = np.array([[1.0, 0.4], [0.4, 0.5]])
    beta_inv = 0.5
    prob = sdesim.problems.linear(F, D)
    S = sdesim.ou_stationary_covariance(F, D, beta_inv)
    P = np.linalg.inv(S)
    errs, cov_errs = [], []
    for n in (48, 96):
        res = stationary_density_2d(prob, beta_inv=beta_inv, box=(-3.0, 3.0), n=n)
        X, Y = res.grid
        Z = np.stack([X, Y], -1)
        exact = _normalised(res, -0.5 * np.einsum("...i,ij,...j->...", Z, P, Z))
        errs.append(_tv(res.rho, exact, res.dx * res.dy))
        cov = np.array([[res.expect(Z[..., i] * Z[..., j]) for j in range(2)] for i in range(2)])
        cov_errs.append(np.abs(cov - S).max())
    assert errs[-1] < 2e-3 and 3.2 < errs[0] / errs[1] < 4.8, errs
    assert cov_errs[-1] < 1e-3 and cov_errs[0] / cov_errs[1] > 3.2, cov_errs
    # the recovered q matches Lemma 20's constant Q
    U, Q = sdesim.linear_decomposition(F, D)
    bulk = exact > 0.05 * exact.max()
    np.testing.assert_allclose(np.median(res.q[bulk]), Q[0, 1], rtol=0.02)


@pytest.mark.parametrize("beta_inv", [0.5, 0.25])
def test_state_dependent_anisotropic_gives_exp_minus_phi(beta_inv):
    """anisotropic_double_well: non-diagonal state-dependent D(x) and Q(x), rho = exp(-Phi/beta^-1)."""
    prob = sdesim.problems.anisotropic_double_well(beta_inv)
    errs, jerrs = [], []
    for n in (48, 96):
        res = stationary_density_2d(prob, beta_inv=beta_inv, box=BOX, n=n)
        exact = _normalised(res, -_point_eval(prob.phi, res) / beta_inv)
        errs.append(_tv(res.rho, exact, res.dx * res.dy))
        bulk = exact > 0.02 * exact.max()
        # leftover force j = J / rho equals -grad f + D grad Phi - beta^-1 div D
        jex = _point_eval(lambda x: prob.leftover_force(x, beta_inv), res)
        jerrs.append(np.abs(res.leftover_force - jex)[bulk].max() / np.abs(jex[bulk]).max())
    assert errs[-1] < 1e-3
    assert 3.0 < errs[0] / errs[1] < 5.0, errs
    # pre-asymptotic at the edge of the bulk (ratio 3.6 from 96 to 192 cells)
    assert jerrs[-1] < 0.04 and jerrs[0] / jerrs[1] > 1.8, jerrs
    # Q recovered from the stream function: q = q0 + q1 sin(x1) cos(x2)
    qex = _point_eval(lambda x: prob.q_matrix(x)[0, 1], res)
    qerr = np.abs(res.q - qex)[bulk]
    assert np.median(qerr) < 0.003 and qerr.max() < 0.1  # O(h^2); largest at the bulk edge
    # Phi min 0 and equal to the exact Phi (shifted) in the bulk
    phex = _point_eval(prob.phi, res)
    phex = phex - phex[bulk].min()
    diff = (res.phi - phex)[bulk]
    assert np.abs(diff - diff.mean()).max() < 0.02  # O(h^2), h = 7/96
    assert res.phi.min() == 0.0


def test_naive_atype_reading_has_a_different_density():
    prob = sdesim.problems.anisotropic_double_well(0.5)
    good = stationary_density_2d(prob, beta_inv=0.5, box=BOX, n=64, form="atype")
    naive = stationary_density_2d(prob, beta_inv=0.5, box=BOX, n=64, form="atype_naive")
    exact = _normalised(good, -_point_eval(prob.phi, good) / 0.5)
    cell = good.dx * good.dy
    assert _tv(good.rho, exact, cell) < 2e-3  # discretisation error at n = 64
    assert _tv(naive.rho, exact, cell) > 0.02  # 10x the discretisation error


def test_evolve_conserves_mass_and_relaxes():
    prob = sdesim.problems.rotating_double_well(0.5)
    op = fokker_planck_2d(prob, beta_inv=1.0, box=BOX, n=32)
    ss = stationary_density_2d(prob, beta_inv=1.0, box=BOX, n=32, operator=op)
    X, Y = ss.grid
    rho0 = np.exp(-((X - 1.5) ** 2 + (Y + 1.0) ** 2) / 0.2)
    rho0 /= rho0.sum() * op.dx * op.dy
    traj = op.evolve(rho0, [0.0, 0.5, 30.0])
    mass = traj.sum(axis=(1, 2)) * op.dx * op.dy
    np.testing.assert_allclose(mass, 1.0, atol=1e-10)
    assert _tv(traj[-1], ss.rho, op.dx * op.dy) < 1e-6


def test_sample_draws_from_the_grid_density():
    prob = sdesim.problems.rotating_double_well(0.0)
    res = stationary_density_2d(prob, beta_inv=1.0, box=BOX, n=48)
    pts = res.sample(200_000, seed=1)
    mean_x2 = res.expect(res.grid[0] ** 2)
    # variance of the sample mean of x1^2 from the sample itself
    err = pts[:, 0] ** 2
    assert abs(err.mean() - mean_x2) < 4 * err.std() / np.sqrt(err.size) + res.dx**2 / 12


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(beta_inv=0.0, box=BOX, n=16), "beta_inv"),
        (dict(beta_inv=1.0, box=((1.0, -1.0), (0, 1)), n=16), "box"),
        (dict(beta_inv=1.0, box=(1.0, 2.0, 3.0), n=16), "box"),
        (dict(beta_inv=1.0, box=BOX, n=2), "n"),
        (dict(beta_inv=1.0, box=BOX, n=16.5), "n"),
        (dict(beta_inv=1.0, box=BOX, n=16, form="strat"), "form"),
    ],
)
def test_bad_input(kwargs, field):
    prob = sdesim.problems.rotating_double_well(0.5)
    with pytest.raises(ValueError, match=rf"^{field}:"):
        stationary_density_2d(prob, **kwargs)


def test_rejects_non_2d_and_missing_atype():
    p3 = sdesim.problems.linear(np.eye(3), np.eye(3))
    with pytest.raises(ValueError, match=r"^problem:"):
        stationary_density_2d(p3, beta_inv=1.0, box=BOX, n=16)
    p2 = sdesim.problems.custom(lambda x: x, 1.0, 2)
    with pytest.raises(ValueError, match=r"^form:"):
        stationary_density_2d(p2, beta_inv=1.0, box=BOX, n=16, form="atype")


def _toy_D(x):
    """State-dependent, non-diagonal D(x) with div D = (1.5, 0) at the minimum (1, 0) of f."""
    t = jnp.tanh(x[1])
    return jnp.array(
        [[1.0 + 0.6 * jnp.tanh(2.0 * (x[0] - 1.0)), 0.3 * t], [0.3 * t, 0.6 + 0.3 * x[0] ** 2 / (1.0 + x[0] ** 2)]]
    )


def _toy_f(x):
    return (x[0] ** 2 - 1.0) ** 2 / 4.0 + x[1] ** 2 / 2.0


def test_state_dependent_case_agrees_with_particles_in_total_variation():
    """A true loss f with state-dependent D (no closed form): FP vs a long Euler-Maruyama run."""
    prob = sdesim.problems.custom(jax.grad(_toy_f), _toy_D, 2)
    b = 0.3
    res = stationary_density_2d(prob, beta_inv=b, box=(-2.4, 2.4), n=96)
    n = 20_000
    x0 = res.sample(n, seed=5)  # start at the FP law; run long enough to forget it
    ens = sdesim.simulate(prob, beta_inv=b, n_particles=n, n_steps=1500, dt=0.004, seed=6, x0=x0)
    x = np.asarray(ens.x[-1], dtype=np.float64)  # one snapshot: independent particles
    edges = np.linspace(-2.4, 2.4, 25)
    counts, _, _ = np.histogram2d(x[:, 0], x[:, 1], bins=[edges, edges])
    p = np.clip(res.rho, 0, None).reshape(24, 4, 24, 4).sum(axis=(1, 3)) * res.dx * res.dy
    p_hat = counts / n
    tv = 0.5 * np.abs(p_hat - p).sum()
    # expected TV from sampling noise alone: sum_k sqrt(2 p_k (1 - p_k) / (pi n)) / 2
    tv_noise = 0.5 * np.sum(np.sqrt(2 * p * (1 - p) / (np.pi * n)))
    bulk = p * n > 20
    chi2 = np.mean((counts[bulk] - n * p[bulk]) ** 2 / (n * p[bulk]))
    assert tv < 1.2 * tv_noise + 0.005, (tv, tv_noise, chi2)
    assert chi2 < 1 + 5 * np.sqrt(2 / bulk.sum()) + 0.3, chi2
    # and the particles are far from the isotropic-noise Gibbs law exp(-f / beta^-1) (Phi != f)
    g = _normalised(res, -_point_eval(_toy_f, res) / b)
    pg = g.reshape(24, 4, 24, 4).sum(axis=(1, 3)) * res.dx * res.dy
    assert 0.5 * np.abs(p_hat - pg).sum() > 5 * tv_noise  # 0.28 vs 0.036
