"""trace_limit_cycle against closed forms: van der Pol, Hopf, gradient flows, Example 19."""

import math

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.optimize

import sdesim
from sdesim.analysis import trace_limit_cycle

# monomials of degree <= 3 in (x, y): one compiled program serves every
# polynomial field below (the coefficients are traced arrays)
_MONO = ["1", "x", "y", "xx", "xy", "yy", "xxx", "xxy", "xyy", "yyy"]


class Cubic2D(eqx.Module):
    C: jnp.ndarray  # (2, 10)

    def __call__(self, z):
        x, y = z[0], z[1]
        m = jnp.stack([jnp.ones_like(x), x, y, x * x, x * y, y * y, x**3, x * x * y, x * y * y, y**3])
        return self.C.astype(z.dtype) @ m


def cubic(terms_x, terms_y):
    C = np.zeros((2, 10))
    for row, terms in enumerate((terms_x, terms_y)):
        for k, v in terms.items():
            C[row, _MONO.index(k)] += v
    return Cubic2D(jnp.asarray(C))


def van_der_pol(mu):
    return cubic({"y": 1.0}, {"y": mu, "xxy": -mu, "x": -1.0})


def hopf(mu, om):
    # r' = mu r - r^3, theta' = om: cycle of radius sqrt(mu), period 2 pi / om
    return cubic({"x": mu, "y": -om, "xxx": -1.0, "xyy": -1.0}, {"x": om, "y": mu, "xxy": -1.0, "yyy": -1.0})


VDP_PERIOD_MU1 = 6.6632868593  # e.g. Strogatz; high-precision value 6.663286859323130...


def test_van_der_pol_period_and_floquet():
    x0 = [[2.0, 0.0], [0.1, 0.1], [-3.0, 3.0], [0.5, -4.0]]
    res = trace_limit_cycle(van_der_pol(1.0), x0)
    assert res.is_cycle.all(), res.status
    np.testing.assert_allclose(res.period, VDP_PERIOD_MU1, atol=2e-8)
    # Liouville: the non-trivial multiplier is exp(int_0^T div F dt), div F = 1 - x^2
    div_int = np.mean(1.0 - res.orbit[0, :, 0] ** 2) * res.period[0]
    np.testing.assert_allclose(np.abs(res.floquet[:, 0]), math.exp(div_int), rtol=1e-4)
    assert res.stable.all()
    # all initial points land on the same orbit
    assert np.ptp(res.mean_radius) < 1e-6
    np.testing.assert_allclose(res.center, 0.0, atol=1e-6)  # odd symmetry x -> -x


def test_hopf_radius_period_floquet():
    mu, om = 0.5, 2.0
    res = trace_limit_cycle(hopf(mu, om), [[0.05, 0.0], [2.0, 2.0], [-1.0, 0.3]])
    assert res.is_cycle.all(), res.status
    np.testing.assert_allclose(res.period, 2 * math.pi / om, rtol=1e-9)
    np.testing.assert_allclose(res.mean_radius, math.sqrt(mu), rtol=1e-7)
    assert np.abs(np.linalg.norm(res.orbit, axis=-1) / math.sqrt(mu) - 1).max() < 1e-7
    np.testing.assert_allclose(res.center, 0.0, atol=1e-8)
    # radial linearisation d(dr)/dt = (mu - 3 r^2) dr = -2 mu dr over one period
    np.testing.assert_allclose(res.floquet[:, 0].real, math.exp(-2 * mu * 2 * math.pi / om), rtol=1e-6)
    assert res.stable.all()


def test_hopf_below_bifurcation_is_a_stable_focus():
    # mu < 0: the origin is a stable focus, no cycle
    res = trace_limit_cycle(hopf(-0.5, 2.0), [[1.0, 0.0], [0.0, 2.0]])
    assert not res.is_cycle.any()
    assert (res.status == "fixed_point").all()
    np.testing.assert_allclose(res.fixed_point, 0.0, atol=1e-9)
    np.testing.assert_allclose(np.sort(res.fixed_point_eigvals[0].imag), [-2.0, 2.0], atol=1e-9)


def test_gradient_flow_never_a_cycle():
    # f = (x^2 - 1)^2 / 4 + y^2 / 2 + a x y: flow -grad f
    a = 0.3
    field = cubic({"x": 1.0, "xxx": -1.0, "y": -a}, {"y": -1.0, "x": -a})
    x0 = np.random.default_rng(0).uniform(-2.5, 2.5, (8, 2))
    res = trace_limit_cycle(field, x0)
    assert not res.is_cycle.any()
    assert (res.status == "fixed_point").all(), np.unique(res.status)
    F = np.asarray(jnp.stack([field(jnp.asarray(p)) for p in res.fixed_point]))
    assert np.abs(F).max() < 1e-10
    # -grad f has a symmetric Jacobian: real eigenvalues
    assert np.abs(res.fixed_point_eigvals.imag).max() < 1e-12
    # the minima are (x, -a x) with x^2 = 1 + a^2; all points reach one of them
    xm = math.sqrt(1 + a * a)
    d = np.minimum(np.linalg.norm(res.fixed_point - [xm, -a * xm], axis=1),
                   np.linalg.norm(res.fixed_point + [xm, -a * xm], axis=1))
    # (initial points on the saddle's stable manifold are measure zero)
    assert d.max() < 1e-9


def _ex19_drift_np(x, lam):
    """-grad f of Example 19 written independently of sdesim (docs/paper.md, Example 19)."""
    x1, x2 = x
    r4 = (x1 * x1 + x2 * x2) ** 2
    phi = (x1 * x1 - 1) ** 2 / 4 + x2 * x2 / 2
    w = lam * math.exp(phi - r4 / 4)
    return np.array([-x1 * (x1 * x1 - 1) - w * x2, -x2 + w * x1])


def test_example19_lam0_reaches_minima():
    p = sdesim.problems.rotating_double_well(0.0)
    res = trace_limit_cycle(p, [[0.1, 0.0], [1.5, 1.5], [-1.2, 0.3], [-0.3, -2.0]])
    assert (res.status == "fixed_point").all()
    np.testing.assert_allclose(np.abs(res.fixed_point[:, 0]), 1.0, atol=1e-10)
    np.testing.assert_allclose(res.fixed_point[:, 1], 0.0, atol=1e-10)
    np.testing.assert_allclose(np.sign(res.fixed_point[:, 0]), [1, 1, -1, -1])


def test_example19_lam05_reaches_shifted_critical_points():
    lam = 0.5
    p = sdesim.problems.rotating_double_well(lam)
    res = trace_limit_cycle(p, [[0.1, 0.0], [1.5, 1.5], [-1.2, 0.3], [-0.3, -2.0]])
    assert (res.status == "fixed_point").all()
    ref = scipy.optimize.root(_ex19_drift_np, [0.9, 0.4], args=(lam,), tol=1e-14).x
    assert np.linalg.norm(ref - [1.0, 0.0]) > 0.1  # really shifted
    for fp in res.fixed_point:
        assert min(np.linalg.norm(fp - ref), np.linalg.norm(fp + ref)) < 1e-9
    assert res.stable.all()


def test_example19_lam15_weak_focus_no_cycle():
    """Under the paper's definitions the lam = 1.5 drift has no limit cycle.

    The origin's Jacobian is [[1, -w], [w, -1]] with w = lam e^{1/4}: trace 0,
    det = lam^2 sqrt(e) - 1 > 0 -- a centre to linear order, a weakly
    attracting focus with the cubic terms; orbits circle it while spiralling in.
    """
    lam = 1.5
    p = sdesim.problems.rotating_double_well(lam)
    res = trace_limit_cycle(p, [[0.1, 0.0], [1.5, 1.5], [-1.2, 0.3]])
    assert not res.is_cycle.any()
    assert (res.status == "spiral").all(), res.status
    np.testing.assert_allclose(res.fixed_point, 0.0, atol=1e-10)
    w = math.sqrt(lam**2 * math.exp(0.5) - 1.0)
    np.testing.assert_allclose(np.sort(res.fixed_point_eigvals[0].imag), [-w, w], rtol=1e-10)
    np.testing.assert_allclose(res.fixed_point_eigvals[0].real, 0.0, atol=1e-12)
    r = np.linalg.norm(res.return_points, axis=-1)
    assert (np.diff(r, axis=1) < 0).all()  # returns move in, every time
    # rotation period near the focus approaches 2 pi / w
    np.testing.assert_allclose(res.return_times[:, -1], 2 * math.pi / w, rtol=0.05)


def _j_period(lam, r):
    g = lambda th: math.exp(-((r * math.cos(th)) ** 2 - 1) ** 2 / 4 - (r * math.sin(th)) ** 2 / 2 + r**4 / 4)
    return scipy.integrate.quad(g, 0, 2 * math.pi, epsabs=1e-13, epsrel=1e-13)[0] / lam


def test_example19_leftover_force_flow_is_a_family_of_circles():
    """dx/dt = j(x) (Lemma 7): closed orbits about the saddle of Phi for every lam > 0."""
    lam = 1.5
    p = sdesim.problems.rotating_double_well(lam)
    x0 = np.array([[0.3, 0.0], [0.0, 0.8], [-1.1, 0.2]])
    res = trace_limit_cycle(p.rotation, x0)
    assert res.is_cycle.all(), res.status
    # every orbit is a circle; the transient (solved at transient_rtol = 1e-6) may
    # move to a neighbouring member of this neutral family, so compare with the
    # circle actually traced and check that it is the start's within 1e-4
    rad = np.linalg.norm(res.orbit, axis=-1)
    assert (np.ptp(rad, axis=1) / rad.mean(axis=1)).max() < 1e-8
    np.testing.assert_allclose(res.mean_radius, np.linalg.norm(x0, axis=1), rtol=1e-4)
    np.testing.assert_allclose(res.period, [_j_period(lam, ri) for ri in res.mean_radius], rtol=1e-7)
    np.testing.assert_allclose(np.abs(res.floquet[:, 0]), 1.0, atol=1e-5)  # neutral: a continuum of cycles
    assert not res.stable.any()


def test_single_point_and_summary():
    res = trace_limit_cycle(hopf(0.5, 2.0), [1.0, 0.0])
    assert res.period.shape == () and res.orbit.shape == (256, 2) and res.is_cycle
    s = trace_limit_cycle(hopf(0.5, 2.0), [[1.0, 0.0]]).summary()
    assert s["counts"]["cycle"] == 1 and abs(s["cycles"]["period_median"] - math.pi) < 1e-9


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(field=42, x0=[1.0, 0.0]), "field"),
        (dict(x0=np.zeros((2, 2, 2))), "x0"),
        (dict(x0=[np.nan, 0.0]), "x0"),
        (dict(x0=[1.0, 0.0, 0.0]), "field"),
        (dict(x0=[1.0, 0.0], n_returns=1), "n_returns"),
        (dict(x0=[1.0, 0.0], rtol=-1.0), "rtol"),
        (dict(x0=[1.0, 0.0], t_transient=0.0), "t_transient"),
    ],
)
def test_bad_input(kwargs, match):
    kwargs.setdefault("field", hopf(0.5, 2.0))
    with pytest.raises(ValueError, match=match):
        trace_limit_cycle(**kwargs)
