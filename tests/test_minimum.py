"""find_minimum: exact minima of a quadratic, Rosenbrock and least squares; a saddle is reported as a saddle.

Accuracy bound used throughout: near a strict minimum ``x*`` with Hessian
eigenvalues ``>= lambda_min``, ``|x - x*| <= |grad f(x)| / lambda_min`` to
first order, so ``|x - x*| <= 2 gtol / lambda_min`` is a safe tolerance.
"""

import jax.numpy as jnp
import numpy as np
import pytest

from sdesim import chains
from sdesim.analysis import linearise


def _quadratic(d=6, cond=100.0, seed=0, neg=None):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    lam = np.geomspace(1.0, cond, d) / cond
    if neg is not None:
        lam[0] = neg
    A = (Q * lam) @ Q.T
    b = rng.normal(size=d)
    Aj, bj = jnp.asarray(A), jnp.asarray(b)
    return (lambda x: 0.5 * x @ Aj @ x - bj @ x), A, b, lam, Q


def _rosenbrock(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def _saddle(x):
    """f(x, y) = x^2/2 - y^2/2 + y^4/4: saddle at 0 (Hessian diag(1, -1)), minima at (0, +-1)."""
    return 0.5 * x[0] ** 2 - 0.5 * x[1] ** 2 + 0.25 * x[1] ** 4


@pytest.mark.parametrize("method", ["lbfgs", "newton-cg"])
def test_quadratic_exact_minimum(method):
    f, A, b, lam, _ = _quadratic()
    res = chains.find_minimum(f, np.zeros(6), method=method, gtol=1e-9)
    assert isinstance(res, chains.Minimum)
    assert res.status == "minimum" and res.is_minimum and res.converged, res.message
    assert res.grad_norm <= 1e-9 and res.hess_method == "dense" and res.dtype == "float64"
    xs = np.linalg.solve(A, b)
    assert np.linalg.norm(res.x - xs) <= 2 * 1e-9 / lam[0]
    np.testing.assert_allclose([res.hess_min_eig, res.hess_max_eig], [lam[0], lam[-1]], rtol=1e-10)
    assert res.value == pytest.approx(-0.5 * b @ xs, rel=1e-12)
    assert res.message.startswith("minimum")


@pytest.mark.parametrize("method", ["lbfgs", "newton-cg"])
def test_rosenbrock(method):
    res = chains.find_minimum(_rosenbrock, np.array([-1.2, 1.0]), method=method)
    assert res.status == "minimum", res.message
    # Hessian at (1, 1): [[802, -400], [-400, 200]], eigenvalues 0.3994 and 1001.6
    lam = np.linalg.eigvalsh(np.array([[802.0, -400.0], [-400.0, 200.0]]))
    assert np.linalg.norm(res.x - 1.0) <= 2 * 1e-6 / lam[0]
    np.testing.assert_allclose([res.hess_min_eig, res.hess_max_eig], lam, rtol=1e-4)


@pytest.mark.parametrize("method", ["lbfgs", "newton-cg"])
def test_saddle_on_its_stable_manifold_is_reported_as_saddle(method):
    """From (1, 0) the gradient (x, -y + y^3) never leaves y = 0: both methods converge to the saddle."""
    res = chains.find_minimum(_saddle, np.array([1.0, 0.0]), method=method)
    assert res.converged and not res.is_minimum
    assert res.status == "saddle"
    assert "saddle, not a minimum" in res.message
    np.testing.assert_allclose(res.x, [0.0, 0.0], atol=1e-6)
    assert res.hess_min_eig == pytest.approx(-1.0, abs=1e-9)
    assert res.hess_max_eig == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(np.abs(res.min_eigvec), [0.0, 1.0], atol=1e-12)
    # the suggested escape: a small step along the negative-curvature direction
    again = chains.find_minimum(_saddle, res.x + 0.1 * res.min_eigvec, method=method)
    assert again.status == "minimum", again.message
    np.testing.assert_allclose(np.abs(again.x), [0.0, 1.0], atol=1e-6)
    assert again.hess_min_eig == pytest.approx(1.0, abs=1e-6)
    # the same done by find_minimum: f(h v) = -h^2/2 + h^4/4 <= -h^2/4 holds at h = 1
    esc = chains.find_minimum(_saddle, np.array([1.0, 0.0]), method=method, escape_saddles=1)
    assert esc.status == "minimum" and esc.n_escaped == 1, esc.message
    assert esc.message.endswith("(after leaving 1 saddle(s))")
    np.testing.assert_allclose(np.abs(esc.x), [0.0, 1.0], atol=1e-6)


def test_lanczos_eigenvalues_and_saddle_in_higher_dimension():
    """Above dense_max the extreme eigenvalues come from Lanczos on Hessian-vector products.

    f = x^T diag(lam) x / 2 - b^T x + x_0^4 / 4 with lam_0 = -0.3 and b_0 = 0: from x_0 = 0 the gradient's
    first component lam_0 x_0 + x_0^3 stays exactly 0, so the iterates stay on the saddle's stable manifold.
    """
    d = 30
    lam = np.geomspace(0.02, 1.0, d)
    lam[0] = -0.3
    b = np.random.default_rng(1).normal(size=d)
    b[0] = 0.0
    lj, bj = jnp.asarray(lam), jnp.asarray(b)
    g = lambda x: 0.5 * jnp.sum(lj * x * x) - bj @ x + 0.25 * x[0] ** 4  # noqa: E731
    res = chains.find_minimum(g, np.zeros(d), dense_max=10, gtol=1e-8)
    assert res.hess_method == "lanczos"
    assert res.status == "saddle", res.message
    np.testing.assert_allclose(res.x[1:], b[1:] / lam[1:], rtol=1e-6)
    np.testing.assert_allclose([res.hess_min_eig, res.hess_max_eig], [lam[0], lam[-1]], rtol=1e-6)
    assert abs(res.min_eigvec[0]) == pytest.approx(1.0, abs=1e-6)
    # and a strict minimum through the same path
    h, A2, b2, lam2, _ = _quadratic(d=30, cond=50.0, seed=2)
    res = chains.find_minimum(h, np.zeros(30), dense_max=10, method="newton-cg", gtol=1e-8)
    assert res.status == "minimum" and res.hess_method == "lanczos", res.message
    np.testing.assert_allclose([res.hess_min_eig, res.hess_max_eig], [lam2[0], lam2[-1]], rtol=1e-6)


def test_not_converged_and_float32_message():
    res = chains.find_minimum(_rosenbrock, np.array([-1.2, 1.0]), max_steps=3, polish=False)
    assert res.status == "not_converged" and not res.converged and not res.is_minimum
    assert res.message.startswith("not converged") and "after 3 steps" in res.message
    f, A, b, lam, _ = _quadratic()
    res = chains.find_minimum(f, np.zeros(6), dtype="float32", gtol=1e-3)
    assert res.dtype == "float32" and res.status == "minimum", res.message
    # float32's eig_tol: sqrt(eps32) |H|
    assert res.eig_tol == pytest.approx(np.sqrt(np.finfo(np.float32).eps) * lam[-1], rel=1e-5)


def test_least_squares_finite_sum_and_linearise():
    rng = np.random.default_rng(3)
    N, d = 50, 4
    A = rng.normal(size=(N, d)) * np.array([0.5, 1.0, 1.5, 2.0])
    y = A @ rng.normal(size=d) + 0.3 * rng.normal(size=N)
    fs = chains.FiniteSum(lambda x, a, yk: 0.5 * (a @ x - yk) ** 2, (jnp.asarray(A), jnp.asarray(y)), d)
    xs = np.linalg.lstsq(A, y, rcond=None)[0]
    lam = np.linalg.eigvalsh(A.T @ A / N)
    for method in ("lbfgs", "newton-cg"):
        res = chains.find_minimum(fs, np.zeros(d), method=method)
        assert res.is_minimum and res.grad_norm <= 1e-6, res.message
        assert np.linalg.norm(res.x - xs) <= 2e-6 / lam[0]
        np.testing.assert_allclose([res.hess_min_eig, res.hess_max_eig], lam[[0, -1]], rtol=1e-10)
    lin = linearise(fs, res.x, 0.05, 1)
    assert lin.grad_norm <= 1e-6


def test_validation():
    with pytest.raises(ValueError, match="method"):
        chains.find_minimum(_saddle, np.zeros(2), method="gd")
    with pytest.raises(ValueError, match="x0"):
        chains.find_minimum(_saddle, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="x0"):
        chains.find_minimum(_saddle, np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match="fs"):
        chains.find_minimum(3.0, np.zeros(2))
    with pytest.raises(ValueError, match="fs"):
        chains.find_minimum(lambda x: x, np.zeros(2))
    with pytest.raises(ValueError, match="gtol"):
        chains.find_minimum(_saddle, np.zeros(2), gtol=0.0)
    fs = chains.FiniteSum(lambda x, a: jnp.sum((x - a) ** 2), (jnp.zeros((3, 2)),), 2)
    with pytest.raises(ValueError, match="x0"):
        chains.find_minimum(fs, np.zeros(3))
    with pytest.raises(AttributeError):  # frozen
        chains.find_minimum(fs, np.ones(2)).status = "minimum"


def test_flat_direction_is_a_degenerate_minimum_not_a_saddle():
    """f = (x_0 - 1)^2: Hessian diag(2, 0); the flat direction is within eig_tol of 0."""
    res = chains.find_minimum(lambda x: (x[0] - 1.0) ** 2 + 0.0 * x[1], np.array([3.0, 2.0]), method="newton-cg")
    assert res.status == "minimum" and res.is_minimum, res.message
    assert "degenerate" in res.message
    assert res.hess_min_eig == pytest.approx(0.0, abs=1e-12) and res.hess_max_eig == pytest.approx(2.0)
    np.testing.assert_allclose(res.x, [1.0, 2.0], atol=1e-9)
