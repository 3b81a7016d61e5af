"""Probability current from particles: exact on a rigid rotation, zero for the
reversible lam = 0 double well, the exact J = lam exp(-r^4/4)(-x2, x1)/Z at lam = 1.5."""

import math

import numpy as np
import pytest

import sdesim
from sdesim.analysis import cell_average_exact_current, exact_current_rotating_double_well


def test_rigid_rotation_exact():
    # particles on circles turning at omega: J = rho * omega (-y, x); Omega = omega;
    # Gamma = omega <r^2>. No noise, so the midpoint estimator is exact up to O(tau^2).
    rng = np.random.default_rng(0)
    n_p, n_t, tau, om = 400, 200, 0.01, 0.7
    r = rng.uniform(0.2, 1.5, n_p)
    th0 = rng.uniform(0, 2 * np.pi, n_p)
    th = th0 + om * tau * np.arange(n_t)[:, None]
    x = np.stack([r * np.cos(th), r * np.sin(th)], axis=-1)
    est = sdesim.estimate_current(x, tau, bins=8, box=(-2, 2, -2, 2))
    assert (est.lag, est.tau) == (1, tau)  # increments over one snapshot spacing
    np.testing.assert_allclose(est.angular_velocity, om, rtol=1e-10)
    # midpoint chord: |m| = r cos(om tau / 2), |dx| / tau = 2 r sin(om tau / 2) / tau
    chord = math.cos(om * tau / 2) * 2 * math.sin(om * tau / 2) / tau
    np.testing.assert_allclose(est.circulation, chord * np.mean(r**2), rtol=1e-10)
    # normalisation: sum_cells J * area = mean velocity of the midpoints
    area = (est.x[1] - est.x[0]) * (est.y[1] - est.y[0])
    v = np.diff(x, axis=0) / tau
    np.testing.assert_allclose(est.J.sum(axis=(0, 1)) * area, v.reshape(-1, 2).mean(0), atol=1e-12)
    np.testing.assert_allclose(est.rho.sum() * area, 1.0)


@pytest.fixture(scope="module")
def ensembles():
    out = {}
    for lam in (0.0, 1.5):
        p = sdesim.problems.rotating_double_well(lam)
        ens = sdesim.simulate(p, beta_inv=1.0, n_particles=400, n_steps=20000, dt=0.005, seed=11,
                              save_every=2, burn_in=2000)
        out[lam] = (ens.x, ens.dt * ens.save_every)
    return out


def _check_field(est, lam):
    Jc = cell_average_exact_current(lam, est.x_edges, est.y_edges)
    z = est.zscore(Jc)
    well = est.rho > 0.02  # cells with enough visits for a batch-means error bar
    z2 = np.nanmean(z[well] ** 2)
    # batch means over B = 20 groups: z ~ t_19, E z^2 = 19 / 17; allow sampling spread
    assert 0.75 < z2 < 1.5, z2
    return z2


def test_reversible_current_is_zero(ensembles):
    x, tau = ensembles[0.0]
    est = sdesim.estimate_current(x, tau, bins=16, box=(-2, 2, -2, 2))
    assert abs(est.angular_velocity) < 4 * est.angular_velocity_stderr
    assert abs(est.circulation) < 4 * est.circulation_stderr
    _check_field(est, 0.0)


def test_rotating_current_matches_exact(ensembles):
    lam = 1.5
    x, tau = ensembles[lam]
    est = sdesim.estimate_current(x, tau, bins=16, box=(-2, 2, -2, 2))
    _, Z, Om, Ga = exact_current_rotating_double_well(lam, [0.0], [0.0])
    np.testing.assert_allclose(Z, 7.6234684, rtol=1e-6)
    assert abs(est.angular_velocity - Om) < 4 * est.angular_velocity_stderr, (est.angular_velocity, Om)
    assert abs(est.circulation - Ga) < 4 * est.circulation_stderr, (est.circulation, Ga)
    assert est.circulation > 20 * est.circulation_stderr  # clearly non-zero
    _check_field(est, lam)
    # the field itself is far from zero: its strongest cell is many standard errors out
    assert np.nanmax(np.abs(est.J / np.where(est.J_stderr > 0, est.J_stderr, np.nan))) > 10


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(x=np.zeros((10, 5))), "x"),
        (dict(x=np.zeros((1, 5, 2))), "x"),
        (dict(x=np.zeros((10, 5, 3))), "x"),
        (dict(tau=0.0), "tau"),
        (dict(box=(1, -1, 0, 1)), "box"),
        (dict(n_batches=1), "n_batches"),
        (dict(center=(0.0,)), "center"),
    ],
)
def test_bad_input(kwargs, match):
    kwargs.setdefault("x", np.zeros((10, 40, 2)))
    kwargs.setdefault("tau", 0.1)
    with pytest.raises(ValueError, match=match):
        sdesim.estimate_current(kwargs.pop("x"), kwargs.pop("tau"), **kwargs)
