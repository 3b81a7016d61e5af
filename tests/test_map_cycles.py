"""trace_limit_cycle(..., lr=...): invariant curves of the Euler map x <- x + lr F(x).

Closed forms first (the Hopf normal form's Euler map keeps circles; linear
maps), then Example 19 at lam = 1.5, whose flow has a weak focus and no cycle
while the gradient-descent map at finite lr has an attracting invariant curve
of radius ~ sqrt(lr).
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
from test_cycles import _ex19_drift_np, cubic, hopf

import sdesim
from sdesim.analysis import trace_limit_cycle


def hopf_map_circle(mu, om, lr):
    """Invariant circle of z <- z (1 + lr (mu - |z|^2) + i lr om).

    |z| is multiplied by g(r) = |1 + lr (mu - r^2) + i lr om| every step, so
    g(r*) = 1: 1 + lr (mu - r*^2) = sqrt(1 - lr^2 om^2) (the root near 1),
    r*^2 = mu + (1 - sqrt(1 - lr^2 om^2)) / lr. On the circle the step is a
    rotation by arg(sqrt(1 - lr^2 om^2) + i lr om) = asin(lr om). Radially,
    d r'/d r = 1 - 2 lr r*^2 sqrt(1 - lr^2 om^2) (with r g'(r) = -2 lr r^2
    Re(g)); along the circle the multiplier is 1 and the Jacobian is triangular
    in the (tangent, normal) frame, so the normal multiplier per turn is that
    factor to the power 2 pi / asin(lr om).
    """
    s = math.sqrt(1.0 - (lr * om) ** 2)
    r2 = mu + (1.0 - s) / lr
    angle = math.asin(lr * om)
    normal = (1.0 - 2.0 * lr * r2 * s) ** (2.0 * math.pi / angle)
    return math.sqrt(r2), angle, normal


@pytest.mark.parametrize("mu", [0.5, 0.0])
def test_hopf_euler_map_invariant_circle(mu):
    om, lr = 2.0, 0.05
    r_star, angle, normal = hopf_map_circle(mu, om, lr)
    res = trace_limit_cycle(hopf(mu, om), [[0.05, 0.0], [2.0, 2.0], [-1.0, 0.3]], lr=lr)
    assert res.is_cycle.all(), res.status
    # the iterates lie on the circle itself (a fixed point of the radial map,
    # which contracts by >= 1 % per iterate here): rounding only
    np.testing.assert_allclose(res.mean_radius, r_star, rtol=1e-12)
    np.testing.assert_allclose(res.center, 0.0, atol=1e-12)
    assert (res.curve_spread < 1e-9).all()
    # rotation number from crossings ~16000 iterates apart, each located by the
    # degree-5 interpolant to ~5e-3 h^5 iterates (h = asin(lr om) = 0.1): 1e-10
    np.testing.assert_allclose(res.rotation_number, angle / (2 * math.pi), rtol=1e-10)
    np.testing.assert_allclose(res.period, lr * 2 * math.pi / angle, rtol=1e-10)
    np.testing.assert_allclose(res.return_times, lr * 2 * math.pi / angle, rtol=1e-8)
    # resampled turn: interpolation error <= 4.9e-3 h^6 r per coordinate
    assert np.abs(np.linalg.norm(res.orbit, axis=-1) / r_star - 1).max() < 1e-8
    np.testing.assert_allclose(res.floquet[:, 0].real, normal, rtol=1e-8)
    assert res.stable.all() and res.lr == lr
    if mu == 0.0:
        # a weak focus (r' = -r^3): the radius is the normal-form law
        # om sqrt(lr / (2c)) with c = 1, up to 1 + (lr om)^2 / 8 + O((lr om)^4)
        law = om * math.sqrt(lr / 2.0)
        np.testing.assert_allclose(res.mean_radius / law - 1.0, (lr * om) ** 2 / 8, atol=2e-5)


def test_linear_maps_fixed_point_or_divergence():
    # F = A x, A = [[-1/2, -2], [2, -1/2]]: eigenvalues -1/2 +- 2i. The map's
    # multipliers 1 + lr lambda have modulus < 1 iff lr < -2 Re(l) / |l|^2 = 4/17
    A = cubic({"x": -0.5, "y": -2.0}, {"x": 2.0, "y": -0.5})
    x0 = [[1.0, 0.0], [-0.3, 2.0]]
    res = trace_limit_cycle(A, x0, lr=0.2)
    assert (res.status == "fixed_point").all(), res.status
    np.testing.assert_allclose(res.fixed_point, 0.0, atol=1e-12)
    np.testing.assert_allclose(np.sort(res.fixed_point_eigvals[0].imag), [-2.0, 2.0], atol=1e-12)
    assert res.stable.all() and not res.is_cycle.any()
    assert (np.abs(1 + 0.2 * res.fixed_point_eigvals) < 1).all()
    res = trace_limit_cycle(A, x0, lr=0.3)  # |1 + 0.3 lambda| = 1.040
    assert (res.status == "diverged").all(), res.status


def test_flow_unchanged_without_lr():
    f = hopf(0.5, 2.0)
    a = trace_limit_cycle(f, [[1.0, 0.0]])
    b = trace_limit_cycle(f, [[1.0, 0.0]], lr=None)
    for name in ("status", "period", "orbit", "mean_radius", "floquet", "return_points", "x_transient"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert b.is_cycle.all() and abs(b.period[0] - math.pi) < 1e-9
    assert b.lr is None and b.rotation_number is None and b.curve_spread is None


class Hopf3D(eqx.Module):
    """Hopf normal form in (x, y) at 45 degrees to the axes, z contracting."""

    R: jnp.ndarray  # (3, 3) rotation

    def __call__(self, v):
        u = self.R.T @ v
        x, y, z = u[0], u[1], u[2]
        r2 = x * x + y * y
        du = jnp.stack([(0.5 - r2) * x - 2.0 * y, (0.5 - r2) * y + 2.0 * x, -z])
        return self.R @ du


def test_three_dimensions_plane_from_principal_directions():
    c, s = math.cos(math.pi / 4), math.sin(math.pi / 4)
    R = np.array([[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]])
    lr = 0.05
    r_star, angle, radial = hopf_map_circle(0.5, 2.0, lr)
    res = trace_limit_cycle(Hopf3D(jnp.asarray(R)), [[0.3, 0.1, 0.5], [-1.0, 1.0, 1.0]], lr=lr)
    assert res.is_cycle.all(), res.status
    np.testing.assert_allclose(res.mean_radius, r_star, rtol=1e-12)
    np.testing.assert_allclose(res.center, 0.0, atol=1e-12)
    # the sign of the rotation depends on the principal directions' orientation
    np.testing.assert_allclose(np.abs(res.rotation_number), angle / (2 * math.pi), rtol=1e-10)
    # two normal directions: the radial one as in 2D, and z (factor 1 - lr per iterate)
    expected = np.sort([radial, (1 - lr) ** (2 * math.pi / angle)])
    # (both exact in the rotating frame; the QR basis aligns within the block's first half)
    np.testing.assert_allclose(np.sort(res.floquet.real, axis=1), np.tile(expected, (2, 1)), rtol=1e-9)
    assert res.stable.all()


# --- Example 19, lam = 1.5 -------------------------------------------------

LAM = 1.5
LRS = (0.005, 0.01, 0.02, 0.04)
INSIDE = [[0.01, 0.0], [0.0, -0.02]]
OUTSIDE = [[1.0, 0.0], [-0.6, 0.8]]


def weak_focus_normal_form(lam):
    """omega, c, b and kappa for Example 19's drift at its weak focus (lam > e^{-1/4}).

    -grad f = A x + C3(x) + O(|x|^5) with A = [[1, -w0], [w0, -1]],
    w0 = lam e^{1/4} (Taylor expansion of w(x) = lam exp(Phi - r^4/4) =
    w0 (1 - x1^2/2 + x2^2/2 + ...)), so
    C3 = (-x1^3 + w0 (x1^2 x2 - x2^3) / 2, w0 (x1 x2^2 - x1^3) / 2). With
    P = [[0, w0], [-omega, 1]], P^-1 A P = omega [[0, -1], [1, 0]],
    omega^2 = w0^2 - 1; in y = P^-1 x the cubic terms G3(y) = P^-1 C3(P y)
    average (no quadratic terms) to rho' = -c rho^3, theta' = omega + b rho^2:
    -c = <u . G3(u)>, b = <u_perp . G3(u)> over the unit circle. kappa =
    <|P u|> converts the normal-form radius to the mean Euclidean radius.
    """
    w0 = lam * math.exp(0.25)
    om = math.sqrt(w0 * w0 - 1.0)
    P = np.array([[0.0, w0], [-om, 1.0]])
    th = 2 * np.pi * np.arange(64) / 64  # trapezoid: exact for these trig polynomials
    u = np.stack([np.cos(th), np.sin(th)])
    x1, x2 = P @ u
    C3 = np.stack([-(x1**3) + w0 / 2 * (x1 * x1 * x2 - x2**3), w0 / 2 * (x1 * x2 * x2 - x1**3)])
    G = np.linalg.solve(P, C3)
    c = -np.mean(np.sum(u * G, axis=0))
    b = np.mean(u[0] * G[1] - u[1] * G[0])
    kappa = np.mean(np.linalg.norm(P @ u, axis=0))
    return om, c, b, kappa


@pytest.fixture(scope="module")
def ex19_map():
    p = sdesim.problems.rotating_double_well(LAM)
    return {lr: trace_limit_cycle(p, INSIDE + OUTSIDE, lr=lr) for lr in LRS}


def test_normal_form_constants_against_the_flow():
    """c and b from the averaged cubic terms match the flow's own decay and rotation rate.

    In y = P^-1 x, rho^-2 grows like 2 c t and the angle advances at
    omega + b <rho^2>, up to relative O(rho^2) (quintic terms): ~2 % at rho = 0.05.
    """
    om, c, b, kappa = weak_focus_normal_form(LAM)
    assert abs(om - 1.6461) < 1e-4  # the eigenvalues +-1.6461 i of the README
    assert 1.8 < kappa < 2.0
    w0 = LAM * math.exp(0.25)
    P = np.array([[0.0, w0], [-om, 1.0]])
    t_end = 40.0
    sol = scipy.integrate.solve_ivp(lambda t, x: _ex19_drift_np(x, LAM), [0, t_end], P @ [0.05, 0.0],
                                    rtol=1e-12, atol=1e-14, dense_output=True)
    y = np.linalg.solve(P, sol.sol(np.linspace(0, t_end, 20001)))
    rho2 = np.sum(y**2, axis=0)
    c_flow = (1 / rho2[-1] - 1 / rho2[0]) / (2 * t_end)
    b_flow = (np.unwrap(np.arctan2(y[1], y[0]))[-1] / t_end - om) / rho2.mean()
    assert abs(c_flow / c - 1) < 0.03, (c_flow, c)
    assert abs(b_flow / b - 1) < 0.05, (b_flow, b)


def test_ex19_map_attracting_curve_from_inside_and_outside(ex19_map):
    lr = 0.01
    res = ex19_map[lr]
    assert res.is_cycle.all(), res.status
    assert res.stable.all()
    np.testing.assert_allclose(res.center, 0.0, atol=1e-12)  # F(-x) = -F(x)
    # at detection the last turn moved by <= cycle_tol (1e-6) relative, and
    # the distance to the curve shrinks by the normal multiplier mu per turn,
    # so each start is within 1e-6 / (1 - mu) of it (factor 2: shape of the
    # deviation along the curve)
    mu = res.floquet[:, 0].real.max()
    tol = 2 * 2 * 1e-6 / (1 - mu)
    R = res.mean_radius
    assert np.ptp(R) / R.mean() < tol, (R, tol)
    inside, outside = R[: len(INSIDE)], R[len(INSIDE):]
    assert abs(inside.mean() - outside.mean()) / R.mean() < tol
    np.testing.assert_allclose(res.rotation_number, res.rotation_number[0], rtol=tol)
    # rotation per iterate ~ lr omega (period ~ 2 pi / omega) up to O(lr):
    # T / T0 = 1 - lr b omega / (2c) + O(lr^2); allow twice the first term
    om, c, b, kappa = weak_focus_normal_form(LAM)
    T0 = 2 * math.pi / om
    assert np.all(np.abs(res.period / T0 - 1) < 2 * lr * b * om / (2 * c))
    # the curve is a curve: the Fourier fit r(theta) leaves ~1e-6
    assert (res.curve_spread < 1e-4).all()
    # discrete Liouville: the normal multiplier per turn is the product of
    # det(I + lr DF) over the turn's iterates (the tangential exponent is 0);
    # the resampled turn (uniform in iterate index) gives that mean by the
    # trapezoid rule
    jac = jax.jacfwd(lambda x: -sdesim.problems.rotating_double_well(LAM).grad_f(x))
    for i in range(len(R)):
        logdet = np.log(np.abs(np.linalg.det(np.eye(2) + lr * np.asarray(jax.vmap(jac)(res.orbit[i])))))
        n_turn = res.period[i] / lr
        np.testing.assert_allclose(res.floquet[i, 0].real, np.exp(n_turn * logdet.mean()), rtol=1e-3)


def test_ex19_flow_has_no_cycle():
    p = sdesim.problems.rotating_double_well(LAM)
    res = trace_limit_cycle(p, INSIDE[:1] + OUTSIDE)
    assert not res.is_cycle.any()
    assert (res.status == "spiral").all(), res.status
    np.testing.assert_allclose(res.fixed_point, 0.0, atol=1e-10)


def test_ex19_radius_and_period_vs_lr(ex19_map):
    om, c, b, kappa = weak_focus_normal_form(LAM)
    T0 = 2 * math.pi / om
    lrs = np.array(LRS)
    R = np.array([ex19_map[lr].mean_radius.mean() for lr in LRS])
    T = np.array([ex19_map[lr].period.mean() for lr in LRS])
    mu = np.array([ex19_map[lr].floquet[:, 0].real.mean() for lr in LRS])
    for lr in LRS:
        assert ex19_map[lr].is_cycle.all(), (lr, ex19_map[lr].status)
    R_law = kappa * om * np.sqrt(lrs / (2 * c))
    mu_law = np.exp(-2 * math.pi * om * lrs)  # (1 - lr^2 om^2)^(2 pi / (lr om))
    print("\n    lr   mean_radius  normal-form   period   T/T0    mu/turn  exp(-2 pi om lr)")
    for row in zip(lrs, R, R_law, T, T / T0, mu, mu_law):
        print("  {:6.3f}  {:.6f}    {:.6f}   {:.5f}  {:.5f}  {:.4f}   {:.4f}".format(*row))
    # r* ~ lr^(1/2): the plain log-log slope (bent by the O(lr) correction)
    slope = np.polyfit(np.log(lrs), np.log(R), 1)[0]
    # with the first correction, log r = s log lr + a0 + a1 lr: s close to 1/2
    s = np.linalg.lstsq(np.stack([np.log(lrs), np.ones(4), lrs], 1), np.log(R), rcond=None)[0][0]
    # the normal form gives the lr -> 0 limits of the three ratios: quadratic
    # extrapolation to lr = 0 recovers 1 (a wrong exponent or constant would
    # miss by far more than the neglected O(lr^3) terms, ~1 %)
    limits = [np.polyval(np.polyfit(lrs, q, 2), 0.0) for q in (R / R_law, T / T0, np.log(mu) / np.log(mu_law))]
    print("  slope of log r vs log lr: {:.3f} (plain), {:.3f} (with an O(lr) term)".format(slope, s))
    print("  lr -> 0 limits of r/law, T/T0, log mu/log law: {:.4f} {:.4f} {:.4f}".format(*limits))
    assert abs(slope - 0.5) < 0.1, slope
    assert abs(s - 0.5) < 0.04, s
    assert np.all(np.abs(np.array(limits) - 1) < 0.02), limits
    # the curve shrinks to the focus and its period to the linear one
    assert np.all(np.diff(R) > 0) and np.all(mu < 1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(lr=0.0), "lr"),
        (dict(lr=-0.1), "lr"),
        (dict(lr=float("nan")), "lr"),
        (dict(lr=0.1, n_window=10), "n_window"),
        (dict(lr=0.1, max_iter=100), "max_iter"),
        (dict(lr=0.1, n_transient=-1), "n_transient"),
        (dict(lr=0.1, curve_tol=0.0), "curve_tol"),
    ],
)
def test_bad_map_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        trace_limit_cycle(hopf(0.5, 2.0), [1.0, 0.0], **kwargs)
