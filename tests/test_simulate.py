"""Ensemble integrator: stationary statistics against closed forms, reproducibility, errors."""

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

import sdesim
from sdesim import compiled_cache_size

from _stats import assert_equal_to_rounding, bin_probs_2d, expected_tv_sampling, group_se, hist2d, tv

F3 = np.array([[1.0, 0.8, 0.0], [-0.5, 1.5, 0.3], [0.0, -0.4, 0.7]])  # non-symmetric, stable
D3 = np.array([[1.0, 0.3, 0.0], [0.3, 0.5, 0.1], [0.0, 0.1, 0.8]])  # anisotropic


def em_stationary_cov(F, D, beta_inv, dt):
    """Exact stationary covariance of the Euler--Maruyama chain for the OU process.

    x' = (I - dt F) x + sqrt(2 beta^-1 dt) L xi  =>  S = A S A^T + 2 beta^-1 dt D.
    """
    A = np.eye(len(F)) - dt * F
    return scipy.linalg.solve_discrete_lyapunov(A, 2 * beta_inv * dt * D)


def _ou_cov(method, dt, n=20000, seed=0, beta_inv=0.5, F=F3, D=D3):
    p = sdesim.problems.linear(F, D)
    t_relax = 1 / np.min(np.linalg.eigvals(F).real)
    every = max(1, int(round(2 * t_relax / dt)))
    e = sdesim.simulate(p, beta_inv=beta_inv, n_particles=n, n_steps=8 * every, dt=dt, seed=seed,
                        save_every=every, burn_in=6 * every, method=method)
    assert e.n_diverged == 0
    groups = np.array_split(e.x.astype(np.float64), 20, axis=1)  # independent particle groups
    return group_se([g.reshape(-1, 3) for g in groups], lambda s: np.cov(s, rowvar=False))


def test_ou_covariance_matches_lyapunov_and_em_bias_is_linear_in_dt():
    beta_inv = 0.5
    S = sdesim.ou_stationary_covariance(F3, D3, beta_inv)
    # independent check of the Lyapunov solution
    np.testing.assert_allclose(F3 @ S + S @ F3.T, 2 * beta_inv * D3, atol=1e-12)
    biases = []
    for dt in (0.1, 0.025):
        est, se = _ou_cov("euler", dt)
        S_em = em_stationary_cov(F3, D3, beta_inv, dt)
        # the simulation matches the exact EM-chain covariance within 4.5 standard errors
        assert np.all(np.abs(est - S_em) < 4.5 * se + 1e-4), (dt, est, S_em, se)
        biases.append(np.linalg.norm(S_em - S))
        if dt == 0.025:  # and the continuous Lyapunov solution within error + bias
            assert np.all(np.abs(est - S) < 4.5 * se + np.abs(S_em - S) + 1e-4)
    # the measured bias at dt = 0.1 is resolved (many standard errors) ...
    est, se = _ou_cov("euler", 0.1, seed=1)
    assert np.linalg.norm(est - S) > 5 * np.linalg.norm(se)
    # ... and the exact EM bias shrinks linearly: ratio for a 4x smaller dt is ~4
    assert 3.5 < biases[0] / biases[1] < 4.5


def test_heun_has_smaller_stationary_bias_than_euler():
    beta_inv = 0.5
    S = sdesim.ou_stationary_covariance(F3, D3, beta_inv)
    est_h, se_h = _ou_cov("heun", 0.1)
    assert np.all(np.abs(est_h - S) < 4.5 * se_h + 2e-3)  # O(dt^2) bias ~ 1e-3
    S_em = em_stationary_cov(F3, D3, beta_inv, 0.1)
    assert np.linalg.norm(S_em - S) > 5 * np.linalg.norm(est_h - S)


def test_weak_euler_two_point_noise_has_euler_stationary_covariance():
    beta_inv = 0.5
    est, se = _ou_cov("weak_euler", 0.05)
    S_em = em_stationary_cov(F3, D3, beta_inv, 0.05)  # same second moments as Gaussian EM
    assert np.all(np.abs(est - S_em) < 4.5 * se + 1e-4)


def test_diffrax_path_matches_lyapunov():
    beta_inv = 0.5
    p = sdesim.problems.linear(F3, D3)
    e = sdesim.simulate(p, beta_inv=beta_inv, n_particles=4000, n_steps=400, dt=0.05, seed=2,
                        save_every=40, burn_in=200, method="diffrax")
    S_em = em_stationary_cov(F3, D3, beta_inv, 0.05)
    groups = np.array_split(e.x.astype(np.float64), 20, axis=1)
    est, se = group_se([g.reshape(-1, 3) for g in groups], lambda s: np.cov(s, rowvar=False))
    assert np.all(np.abs(est - S_em) < 4.5 * se + 1e-4)
    assert e.n_diverged == 0 and e.divergence_bound == 2.0**44  # the float32 default reaches this path


BOX19 = ((-2.5, 2.5), (-3.0, 3.0))
BINS = 30


@pytest.mark.parametrize("lam", [0.0, 0.5, 1.5])
def test_example19_both_forms_match_exp_minus_phi(lam):
    """TV(histogram, exp(-Phi)) below the multinomial sampling expectation x 1.35.

    E[TV] of an n-sample histogram is sum_i sqrt(2 p_i (1 - p_i) / (pi n)) / 2; the
    factor 1.35 allows the O(dt) Euler bias (measured ~+10 % of E[TV] at dt = 0.02)
    and residual correlation between snapshots 2 time units apart. A wrong density
    (exp(-f) for lam = 0.5, or a shifted one) fails the bound by a wide margin.
    """
    P = bin_probs_2d(lambda X, Y: -((X**2 - 1) ** 2 / 4 + Y**2 / 2), BOX19, BINS)
    p = sdesim.problems.rotating_double_well(lam)
    hists = {}
    for form in ("ito", "atype"):
        e = sdesim.simulate(p, beta_inv=1.0, n_particles=10000, n_steps=1000, dt=0.02, seed=11,
                            save_every=100, burn_in=500, form=form)
        s = e.samples()
        H = hist2d(s, BOX19, BINS)
        bound = 1.35 * expected_tv_sampling(P, len(s))
        assert tv(H, P) < bound, (form, tv(H, P), bound)
        hists[form] = H
    # the two forms agree with each other (same noise, same process)
    assert tv(hists["ito"], hists["atype"]) < 0.01
    # sanity: the bound is tight enough to reject a shifted density
    Pshift = bin_probs_2d(lambda X, Y: -(((X - 0.2) ** 2 - 1) ** 2 / 4 + Y**2 / 2), BOX19, BINS)
    assert tv(hists["ito"], Pshift) > 2 * bound


def test_state_dependent_problem_forms_agree_with_exact_density():
    beta_inv = 0.5
    p = sdesim.problems.anisotropic_double_well(beta_inv=beta_inv)
    box = ((-2.5, 2.5), (-2.5, 2.5))

    def logd(X, Y):
        return -((X**2 - 1) ** 2 / 4 + Y**2 / 2 + 0.15 * X * Y) / beta_inv

    P = bin_probs_2d(logd, box, BINS)
    g = np.linspace(-4, 4, 801)
    X, Y = np.meshgrid(g, g, indexing="ij")
    W = np.exp(logd(X, Y))
    mean_exact = np.array([(X * W).sum(), (Y * W).sum()]) / W.sum()
    hists = {}
    for form in ("ito", "atype", "atype_naive"):
        e = sdesim.simulate(p, beta_inv=beta_inv, n_particles=10000, n_steps=1000, dt=0.01, seed=5,
                            save_every=200, burn_in=800, form=form)
        s = e.samples()
        hists[form] = H = hist2d(s, box, BINS)
        groups = np.array_split(e.x.astype(np.float64), 20, axis=1)
        m, se = group_se([gr.reshape(-1, 2) for gr in groups], lambda a: a.mean(axis=0))
        if form == "atype_naive":  # dropping beta^-1 div(D+Q) changes the density
            assert np.max(np.abs(m - mean_exact) / se) > 8, (m, mean_exact, se)
        else:
            bound = 1.35 * expected_tv_sampling(P, len(s))
            assert tv(H, P) < bound, (form, tv(H, P), bound)
            assert np.all(np.abs(m - mean_exact) < 4.5 * se + 2e-3), (m, mean_exact, se)
    assert tv(hists["ito"], hists["atype"]) < 0.01


@pytest.mark.repro
def test_same_seed_same_numbers_whatever_chunking():
    p = sdesim.problems.rotating_double_well(1.5)
    kw = dict(beta_inv=1.0, n_particles=1000, n_steps=60, dt=0.01, seed=7, save_every=20, burn_in=10)
    a = sdesim.simulate(p, **kw)
    # time pieces run one compiled program with a runtime step count: bit for bit
    np.testing.assert_array_equal(a.x, sdesim.simulate(p, checkpoint_every=7, **kw).x)
    # host chunks, cache blocks and a prefix of particles change the compiled width: the
    # same draws, equal to rounding
    b = sdesim.simulate(p, chunk_size=300, block_size=128, **kw)
    c = sdesim.simulate(p, chunk_size=999, **kw)
    assert_equal_to_rounding(a.x, b.x, 70)
    assert_equal_to_rounding(a.x, c.x, 70)
    d = sdesim.simulate(p, **{**kw, "n_particles": 10})
    assert_equal_to_rounding(a.x[:, :10], d.x, 70)
    e = sdesim.simulate(p, **{**kw, "seed": 8})
    assert not np.allclose(a.x, e.x)


@pytest.mark.repro
def test_noise_golden_values():
    """Pins the randomness contract: normals of particle 3 at step 5, seed 0."""
    from sdesim.noise import particle_keys, step_normals

    kd = particle_keys(0, 3, 1)[0]
    z = np.asarray(step_normals(kd, 5, 3))
    ref = np.array([1.2721002101898193, 1.2325454950332642, -0.7053532004356384])
    np.testing.assert_allclose(z, ref, rtol=1e-6)


@pytest.mark.repro
def test_ensemble_noise_golden_values():
    """Pins the ensemble stream of simulate: normals of particles 3, 4 at step 5, seed 0, noise_dim 3."""
    import jax.numpy as jnp

    from sdesim.noise import normals, rademacher_words, stream_keys

    z = np.asarray(normals(stream_keys(0, 3, 0), jnp.array([3, 4], jnp.uint32), 5, 3))
    ref = np.array([[0.43400105834007263, -0.30906185507774353],
                    [0.6793122887611389, -0.451227605342865],
                    [0.9759031534194946, 0.13500362634658813]])
    np.testing.assert_allclose(z, ref, rtol=1e-6)
    w = np.asarray(rademacher_words(stream_keys(0, 3, 1), jnp.array([3], jnp.uint32), 0))[:, 0]
    np.testing.assert_array_equal(w, [457863952, 3141591078, 127722968, 710403550])


@pytest.mark.repro
def test_simulate_step_is_euler_with_the_pinned_normals():
    """One EM step of simulate equals x0 + b(x0) dt + sqrt(2 beta^-1 dt) L z with the stream's z."""
    import jax.numpy as jnp

    from sdesim.noise import normals, rademacher_signs, rademacher_words, stream_keys

    rng = np.random.default_rng(3)
    F = np.array([[1.0, 0.4, 0.0], [-0.4, 1.5, 0.2], [0.0, -0.2, 0.8]])
    L = np.array([[1.0, 0.0, 0.0], [0.3, 0.7, 0.0], [-0.2, 0.1, 0.5]])
    p = sdesim.problems.linear(F, L @ L.T)
    x0 = rng.normal(size=(5, 3))
    dt, bi, seed = 0.01, 0.7, 11
    pidx = jnp.arange(5, dtype=jnp.uint32)
    for method, z in [
        ("euler", np.asarray(normals(stream_keys(seed, 3, 0), pidx, 0, 3, jnp.float64)).T),
        ("weak_euler", np.asarray(rademacher_signs(rademacher_words(stream_keys(seed, 3, 1), pidx, 0), 0, 3,
                                                   jnp.float64)).T),
    ]:
        e = sdesim.simulate(p, beta_inv=bi, n_particles=5, n_steps=1, dt=dt, seed=seed, x0=x0, method=method,
                            dtype="float64")
        Lf = np.linalg.cholesky(np.asarray(p.diffusion_matrix(np.zeros(3))))
        want = x0 - x0 @ F.T * dt + np.sqrt(2 * bi * dt) * z @ Lf.T
        np.testing.assert_allclose(e.x[-1], want, rtol=1e-12, atol=1e-12)


def test_ensemble_noise_is_standard_normal_and_independent():
    from scipy import stats

    import jax.numpy as jnp

    from sdesim.noise import normals, stream_keys

    m = 20000
    z = np.asarray(normals(stream_keys(1, 4, 0), jnp.arange(m, dtype=jnp.uint32), 17, 4))  # (4, m)
    z2 = np.asarray(normals(stream_keys(1, 4, 0), jnp.arange(m, dtype=jnp.uint32), 18, 4))
    for row in np.concatenate([z, z2]):
        assert stats.kstest(row, "norm").pvalue > 1e-3
    c = np.corrcoef(np.concatenate([z, z2]))
    off = c[~np.eye(8, dtype=bool)]
    assert np.max(np.abs(off)) < 4.5 / np.sqrt(m)  # 56 pairs; 4.5 sd


def test_noise_is_standard_normal():
    from scipy import stats

    import jax

    from sdesim.noise import particle_keys, step_normals

    kd = particle_keys(1, 0, 20000)
    z = np.asarray(jax.vmap(lambda k: step_normals(k, 17, 2))(kd))
    for col in z.T:
        assert stats.kstest(col, "norm").pvalue > 1e-3
    assert abs(np.corrcoef(z.T)[0, 1]) < 4 / np.sqrt(20000)


def test_diverged_particles_are_counted_and_excluded():
    # EM for grad f = x^3 with dt = 0.5 grows without bound iff x0^2 > 2/dt = 4
    p = sdesim.problems.custom(lambda x: x**3, 1e-12, 1)
    x0 = np.array([[1.0], [2.5], [-0.5], [-3.0], [1.9]])
    e = sdesim.simulate(p, beta_inv=1e-12, n_particles=5, n_steps=40, dt=0.5, seed=0, x0=x0, save_every=2)
    assert e.n_diverged == 2
    np.testing.assert_array_equal(e.finite, [True, False, True, False, True])
    assert np.all(e.diverged_step[~e.finite] > 0) and np.all(e.diverged_step[e.finite] == -1)
    assert np.all(np.isfinite(e.samples())) and np.all(np.isfinite(e.mean()))


@pytest.mark.parametrize("dtype, big", [("float32", 1e30), ("float64", 1e154)])
def test_particle_beyond_the_divergence_bound_is_diverged_and_excluded(dtype, big):
    """Finite but huge (float32 1e30, float64 1e154: their squares overflow): beyond the default
    bound (2^44, 2^492), so diverged at the first snapshot and out of every statistic, in both
    keep modes; the others' trajectories are those of a run without it (noise by particle index)."""
    import warnings

    p = sdesim.problems.linear(np.array([[1.0, 0.3], [-0.3, 0.8]]), np.eye(2))
    x0 = np.random.default_rng(1).normal(size=(6, 2))
    kw = dict(beta_inv=1.0, n_particles=6, n_steps=20, dt=0.05, seed=3, save_every=5, dtype=dtype)
    clean = sdesim.simulate(p, x0=np.where(np.arange(6)[:, None] == 2, 0.0, x0), **kw)
    ok = np.arange(6) != 2
    ref = clean.x[:, ok].reshape(-1, 2).astype(np.float64)
    x0[2] = [big, -1.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow anywhere
        e = sdesim.simulate(p, x0=x0, **kw)
        s = sdesim.simulate(p, x0=x0, keep="stats", **kw)
        got = [(e.mean(), e.cov()), (s.mean(), s.cov())]
    for r in (e, s):
        assert r.n_diverged == 1 and r.divergence_bound == (2.0**44 if dtype == "float32" else 2.0**492)
        np.testing.assert_array_equal(r.finite, ok)
        np.testing.assert_array_equal(r.diverged_step, [-1, -1, 5, -1, -1, -1])
    assert np.all(np.isnan(e.x[:, 2])) and np.all(np.isfinite(e.x[:, ok]))
    np.testing.assert_array_equal(e.x[:, ok], clean.x[:, ok])
    np.testing.assert_array_equal(got[0][0], ref.mean(axis=0))
    np.testing.assert_array_equal(got[0][1], np.cov(ref, rowvar=False))
    # keep="stats" sums in the run's dtype inside the loop: 20 values, a few roundings
    assert s.stats["n"] == 20
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got[1][0], ref.mean(axis=0), rtol=tol, atol=tol)
    np.testing.assert_allclose(got[1][1], np.cov(ref, rowvar=False), rtol=tol, atol=tol)
    # an infinite bound flags only NaN and inf: the old behaviour
    assert sdesim.simulate(p, x0=x0, divergence_bound=np.inf, **kw).n_diverged == 0


def test_crossing_the_divergence_bound_mid_run_is_absorbing_and_checked_at_snapshots():
    """Bound 1.5 on a unit-variance OU: a particle is diverged from the first snapshot with
    |x| > 1.5 on (NaN there and after), exactly as read off an unbounded run with the same noise.
    keep="stats" pools each snapshot's not-yet-diverged particles (as for NaN). Burn-in is not
    checked, so cutting the run into pieces (checkpoint_every) changes nothing."""
    p = sdesim.problems.linear(np.eye(1), np.eye(1))
    kw = dict(beta_inv=1.0, n_particles=400, n_steps=30, dt=0.05, seed=5, save_every=1, burn_in=10)
    free = sdesim.simulate(p, divergence_bound=np.inf, **kw).x[..., 0].astype(np.float64)  # (30, 400)
    e = sdesim.simulate(p, divergence_bound=1.5, **kw)
    over = np.abs(free) > 1.5
    crossed = over.any(axis=0)
    first = np.where(crossed, np.argmax(over, axis=0), free.shape[0])
    alive = np.arange(free.shape[0])[:, None] < first[None, :]  # (30, 400)
    assert 50 < crossed.sum() < 350  # both kinds present
    np.testing.assert_array_equal(e.finite, ~crossed)
    np.testing.assert_array_equal(e.diverged_step, np.where(crossed, 11 + first, -1))
    np.testing.assert_array_equal(np.isnan(e.x[..., 0]), ~alive)
    np.testing.assert_array_equal(e.x[..., 0][alive], free[alive])
    np.testing.assert_array_equal(e.mean(), [free[:, ~crossed].mean()])
    s = sdesim.simulate(p, divergence_bound=1.5, keep="stats", **kw)
    np.testing.assert_array_equal(s.diverged_step, e.diverged_step)
    assert s.stats["n"] == alive.sum()
    np.testing.assert_allclose(s.mean(), [free[alive].mean()], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s.cov(), [[free[alive].var(ddof=1)]], rtol=1e-5)
    c = sdesim.simulate(p, divergence_bound=1.5, checkpoint_every=7, **kw)
    np.testing.assert_array_equal(c.x, e.x)
    np.testing.assert_array_equal(c.diverged_step, e.diverged_step)


def test_scalar_x0_for_a_one_dimensional_problem():
    p = sdesim.problems.linear(np.eye(1), np.eye(1))
    kw = dict(beta_inv=0.5, n_particles=3, n_steps=4, dt=0.1, seed=2)
    a = sdesim.simulate(p, x0=0.7, **kw)
    for x0 in ([0.7], np.float32(0.7), np.array(0.7), np.full((3, 1), 0.7)):
        np.testing.assert_array_equal(sdesim.simulate(p, x0=x0, **kw).x, a.x)
    with pytest.raises(ValueError, match=r"^x0: expected a scalar, shape \(1,\) or \(3, 1\), got \(2,\)"):
        sdesim.simulate(p, x0=[0.7, 0.1], **kw)


def test_second_call_reuses_compiled_program():
    kw = dict(beta_inv=1.0, n_particles=256, n_steps=40, dt=0.01, seed=0, save_every=20)
    sdesim.simulate(sdesim.problems.rotating_double_well(1.0), **kw)
    n0 = compiled_cache_size()
    e = sdesim.simulate(sdesim.problems.rotating_double_well(0.3), **kw)
    assert compiled_cache_size() == n0 and e.compile_s == 0.0
    F = np.array([[1.0, 0.2], [0.1, 2.0]])
    sdesim.simulate(sdesim.problems.linear(F, np.eye(2)), **kw)
    n1 = compiled_cache_size()
    sdesim.simulate(sdesim.problems.linear(2 * F, 0.5 * np.eye(2) + 0.1), **kw)
    assert compiled_cache_size() == n1


def test_x0_and_snapshot_layout():
    p = sdesim.problems.linear(np.eye(2), np.eye(2))
    e = sdesim.simulate(p, beta_inv=1e-8, n_particles=3, n_steps=100, dt=0.01, seed=0,
                        x0=[1.0, -2.0], save_every=25, burn_in=50)
    assert e.x.shape == (4, 3, 2)
    np.testing.assert_allclose(e.t, [0.75, 1.0, 1.25, 1.5])
    np.testing.assert_allclose(e.x[-1, 0], np.array([1.0, -2.0]) * 0.99**150, rtol=2e-3)


@pytest.mark.parametrize(
    "override, field",
    [
        (dict(beta_inv=0.0), "beta_inv"),
        (dict(beta_inv=float("nan")), "beta_inv"),
        (dict(n_particles=0), "n_particles"),
        (dict(n_particles=2.5), "n_particles"),
        (dict(n_steps=-1), "n_steps"),
        (dict(dt=0.0), "dt"),
        (dict(dt=-0.1), "dt"),
        (dict(seed=-1), "seed"),
        (dict(save_every=3), "save_every"),
        (dict(burn_in=-5), "burn_in"),
        (dict(form="stratonovich"), "form"),
        (dict(method="rk4"), "method"),
        (dict(x0=[1.0, 2.0, 3.0]), "x0"),
        (dict(x0=[np.inf, 0.0]), "x0"),
        (dict(x0=0.5), "x0"),  # a scalar only for dim 1
        (dict(x0=np.zeros((3, 2))), "x0"),
        (dict(divergence_bound=0.0), "divergence_bound"),
        (dict(divergence_bound=-1.0), "divergence_bound"),
        (dict(divergence_bound=float("nan")), "divergence_bound"),
        (dict(divergence_bound="big"), "divergence_bound"),
        (dict(dtype="int32"), "dtype"),
        (dict(chunk_size=0), "chunk_size"),
    ],
)
def test_simulate_bad_input(override, field):
    p = sdesim.problems.rotating_double_well(1.0)
    kw = dict(beta_inv=1.0, n_particles=4, n_steps=10, dt=0.01, seed=0)
    kw.update(override)
    with pytest.raises(ValueError, match=f"^{field}"):
        sdesim.simulate(p, **kw)


def test_simulate_bad_problem_and_form():
    with pytest.raises(ValueError, match="^problem"):
        sdesim.simulate("nope", beta_inv=1.0, n_particles=4, n_steps=10, dt=0.01)
    q = sdesim.problems.custom(lambda x: x, 1.0, 2)
    with pytest.raises(ValueError, match="^form"):
        sdesim.simulate(q, beta_inv=1.0, n_particles=4, n_steps=10, dt=0.01, form="atype")
    s = sdesim.problems.anisotropic_double_well()
    with pytest.raises(ValueError, match="^method"):
        sdesim.simulate(s, beta_inv=1.0, n_particles=4, n_steps=10, dt=0.01, method="heun")


def test_option_objects_equal_their_keywords_bit_for_bit():
    p = sdesim.problems.rotating_double_well(1.5)
    kw = dict(beta_inv=1.0, n_particles=500, n_steps=60, dt=0.01, seed=5)
    a = sdesim.simulate(p, save_every=20, burn_in=10, checkpoint_every=7, **kw)
    b = sdesim.simulate(p, save_at=sdesim.SaveAt(every=20, burn_in=10), checkpoint=sdesim.Checkpointing(every=7), **kw)
    np.testing.assert_array_equal(a.x, b.x)
    assert (b.save_every, b.burn_in) == (20, 10)
    box = [[-3.0, 3.0], [-3.0, 3.0]]
    s = sdesim.simulate(p, save_every=10, keep="stats", stats_bins=6, stats_box=box, **kw)
    t = sdesim.simulate(p, save_at=sdesim.SaveAt(every=10, keep="stats", stats_bins=6, stats_box=box), **kw)
    assert t.x is None
    np.testing.assert_array_equal(s.stats["cov"], t.stats["cov"])
    np.testing.assert_array_equal(s.stats["hist"], t.stats["hist"])
    # a resume through Checkpointing continues the run exactly as the keyword does
    infos = []
    full = sdesim.simulate(p, save_every=10, checkpoint=sdesim.Checkpointing(every=20, on_piece=infos.append), **kw)
    out = np.zeros_like(full.x)
    out[: infos[1]["k"]] = full.x[: infos[1]["k"]]
    r = sdesim.simulate(p, save_every=10, out_array=out, checkpoint=sdesim.Checkpointing(every=20, resume=infos[1]), **kw)
    np.testing.assert_array_equal(full.x, r.x)


@pytest.mark.parametrize(
    "override, field",
    [
        (dict(save_every=10, save_at=sdesim.SaveAt(every=10)), "save_every"),
        (dict(burn_in=5, save_at=sdesim.SaveAt()), "burn_in"),
        (dict(keep="stats", save_at=sdesim.SaveAt(keep="stats")), "keep"),
        (dict(checkpoint_every=5, checkpoint=sdesim.Checkpointing(every=5)), "checkpoint_every"),
        (dict(on_piece=print, checkpoint=sdesim.Checkpointing()), "on_piece"),
        (dict(save_at=dict(every=10)), "save_at"),
        (dict(checkpoint=sdesim.SaveAt()), "checkpoint"),
        (dict(save_at=sdesim.SaveAt(every=3)), "save_every"),  # 3 does not divide n_steps=10
    ],
)
def test_option_objects_bad_input(override, field):
    p = sdesim.problems.rotating_double_well(1.0)
    with pytest.raises(ValueError, match=f"^{field}"):
        sdesim.simulate(p, beta_inv=1.0, n_particles=4, n_steps=10, dt=0.01, **override)


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda: sdesim.SaveAt(every=0), "SaveAt.every"),
        (lambda: sdesim.SaveAt(burn_in=-1), "SaveAt.burn_in"),
        (lambda: sdesim.SaveAt(keep="all"), "SaveAt.keep"),
        (lambda: sdesim.SaveAt(stats_bins=0), "SaveAt.stats_bins"),
        (lambda: sdesim.Checkpointing(every=1.5), "Checkpointing.every"),
        (lambda: sdesim.Checkpointing(on_piece="file.npz"), "Checkpointing.on_piece"),
    ],
)
def test_option_objects_validate_their_fields(make, field):
    with pytest.raises(ValueError, match=f"^{field}"):
        make()
