"""SGD linearised at a minimum: Hessian, D, both Lyapunov covariances, predicted A(tau), the current plane."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from sdesim import chains
from sdesim.analysis import LinearisedStationary, linearise


def _least_squares(N=40, seed=0, axis_aligned=False):
    rng = np.random.default_rng(seed)
    if axis_aligned:  # H and D(x*) both diagonal: they commute
        A = np.zeros((N, 3))
        A[np.arange(N), np.arange(N) % 3] = rng.uniform(0.5, 2.0, N)
    else:
        A = rng.normal(size=(N, 3)) * np.array([0.6, 1.2, 2.0])
    y = A @ np.array([1.0, -1.0, 0.5]) + rng.normal(size=N) * (0.2 + np.abs(A @ np.ones(3)))
    xs = np.linalg.solve(A.T @ A, A.T @ y)
    fs = chains.FiniteSum(lambda x, a, yk: 0.5 * (a @ x - yk) ** 2, (jnp.asarray(A), jnp.asarray(y)), 3)
    return A, y, xs, fs


@pytest.mark.parametrize("sampling, batch", [("replacement", 1), ("subset", 4)])
def test_least_squares_agrees_with_chains_theory(sampling, batch):
    A, y, xs, fs = _least_squares()
    lr = 0.05
    lin = linearise(fs, xs, lr, batch, sampling=sampling)
    assert isinstance(lin, LinearisedStationary)
    assert lin.grad_norm < 1e-10
    np.testing.assert_allclose(lin.H, A.T @ A / len(A), rtol=1e-12)
    np.testing.assert_allclose(lin.D, chains.linreg_diffusion(A, y, xs), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(lin.sigma_ou, chains.linreg_ou_covariance(A, y, lr, batch, sampling), rtol=1e-10)
    np.testing.assert_allclose(lin.sigma_discrete, chains.linreg_discrete_lyapunov(A, y, lr, batch, sampling),
                               rtol=1e-10)
    c = 1 / batch if sampling == "replacement" else (len(A) - batch) / ((len(A) - 1) * batch)
    assert np.isclose(lin.noise_factor, c) and np.isclose(lin.beta_inv, lr * c / 2)
    H, D, So, Sd, M = lin.H, lin.D, lin.sigma_ou, lin.sigma_discrete, lin.M
    np.testing.assert_allclose(H @ So + So @ H, lr * c * D, atol=1e-14)
    np.testing.assert_allclose(M @ Sd @ M.T + lr**2 * c * D, Sd, atol=1e-14)
    # explicit eigenbasis forms
    lam, V = lin.hessian_eigenvalues, lin.hessian_eigenvectors
    Dt = V.T @ D @ V
    np.testing.assert_allclose(V.T @ So @ V, lr * c * Dt / (lam[:, None] + lam[None]), atol=1e-14)
    m = 1 - lr * lam
    np.testing.assert_allclose(V.T @ Sd @ V, lr**2 * c * Dt / (1 - m[:, None] * m[None]), atol=1e-14)


def test_predicted_a_properties():
    A, y, xs, fs = _least_squares()
    lin = linearise(fs, xs, 0.05, 1)
    np.testing.assert_allclose(lin.predicted_A(0), 0.0, atol=1e-15)
    lags = [1, 4, 20]
    Ad = lin.predicted_A(lags)
    assert Ad.shape == (3, 3, 3)
    np.testing.assert_allclose(Ad, -np.swapaxes(Ad, 1, 2), atol=0)
    S, M = lin.sigma_discrete, lin.M
    for L, a in zip(lags, Ad):
        P = np.linalg.matrix_power(M, L)
        np.testing.assert_allclose(a, (S @ P.T - P @ S) / 2, atol=1e-15)
        tau = L * lin.lr
        E = scipy.linalg.expm(-lin.H * tau)
        np.testing.assert_allclose(lin.predicted_A(L, discrete=False), (lin.sigma_ou @ E.T - E @ lin.sigma_ou) / 2,
                                   atol=1e-14)
    # A(1) = lr Omega exactly (discrete); A(tau) -> tau Omega as tau -> 0 (OU)
    np.testing.assert_allclose(lin.predicted_A(1), lin.lr * lin.current_matrix(), atol=1e-15)
    eps = 1e-4
    np.testing.assert_allclose(lin.predicted_A(eps / lin.lr, discrete=False) / eps,
                               lin.current_matrix(discrete=False), rtol=1e-3, atol=1e-12)
    with pytest.raises(ValueError, match="lag"):
        lin.predicted_A(1.5)
    with pytest.raises(ValueError, match="sigma"):
        lin.predicted_A(1, sigma=np.eye(2))


def test_discrete_prediction_tends_to_ou_as_lr_shrinks():
    """At fixed time tau = 0.5 the discrete chain's A(tau / lr steps) -> the OU's A(tau), error O(lr)."""
    A, y, xs, fs = _least_squares()
    errs = []
    for lr in (0.04, 0.02, 0.01):
        lin = linearise(fs, xs, lr, 1)
        L = int(round(0.5 / lr))
        a_d, a_c = lin.predicted_A(L), lin.predicted_A(L, discrete=False)
        errs.append(np.linalg.norm(a_d - a_c) / np.linalg.norm(a_c))
    assert errs[0] < 0.15
    np.testing.assert_allclose(np.array(errs[:-1]) / np.array(errs[1:]), 2.0, rtol=0.2)


def test_commuting_noise_predicts_no_current():
    A, y, xs, fs = _least_squares(axis_aligned=True)
    lin = linearise(fs, xs, 0.05, 1)
    assert np.linalg.norm(lin.H @ lin.D - lin.D @ lin.H) < 1e-12
    for discrete in (True, False):
        np.testing.assert_allclose(lin.predicted_A([1, 5, 50], discrete=discrete), 0.0, atol=1e-15)
        with pytest.raises(ValueError, match="sigma"):
            lin.max_current_plane(discrete)
    # so is the exact least-squares covariance (diagonal, like H)
    _, S = chains.linreg_stationary(A, y, 0.05, 1)
    np.testing.assert_allclose(lin.predicted_A([1, 5], sigma=S), 0.0, atol=1e-14)


@pytest.mark.parametrize("discrete", [True, False])
def test_max_current_plane(discrete):
    A, y, xs, fs = _least_squares()
    lin = linearise(fs, xs, 0.05, 1)
    Om = lin.current_matrix(discrete)
    P = lin.max_current_plane(discrete)
    assert P.shape == (3, 2)
    np.testing.assert_allclose(P.T @ P, np.eye(2), atol=1e-12)
    omega = np.abs(np.linalg.eigvals(Om)).max()
    R = P.T @ Om @ P
    np.testing.assert_allclose(R, [[0, omega], [-omega, 0]], atol=1e-12 * omega + 1e-15)
    np.testing.assert_allclose(Om @ P, P @ R, atol=1e-12 * omega)  # invariant plane
    a = lin.predicted_A(1, discrete, basis=P)
    assert a[0, 1] > 0


def _convex_loss(N=30, d=4, seed=1):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(N, d))
    y = rng.normal(size=N)

    def loss(x, a, yk):
        r = a @ x - yk
        return jnp.log(jnp.cosh(r)) + 0.05 * jnp.sum(x**2) + 0.1 * r**4

    return chains.FiniteSum(loss, (jnp.asarray(A), jnp.asarray(y)), d)


def test_nonlinear_loss_hessian_and_subspaces():
    fs = _convex_loss()
    hess = jax.jit(jax.hessian(fs.value))
    grad = jax.jit(fs.full_grad)
    w = jnp.zeros(4)
    for _ in range(12):  # Newton to the minimum
        w = w - jnp.linalg.solve(hess(w), grad(w))
    lin = linearise(fs, w, 0.02, 2)
    assert lin.grad_norm < 1e-10
    np.testing.assert_allclose(lin.H, hess(w), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(lin.D, fs.diffusion(w), rtol=1e-10, atol=1e-14)
    # top-2 Hessian modes: dense eigenvectors and Lanczos on Hessian-vector products agree
    lam, V = np.linalg.eigh(lin.H)
    top = V[:, ::-1][:, :2]
    for sub in (linearise(fs, w, 0.02, 2, n_modes=2), linearise(fs, w, 0.02, 2, n_modes=2, dense_max=3)):
        np.testing.assert_allclose(np.sort(sub.hessian_eigenvalues), np.sort(lam[-2:]), rtol=1e-8)
        np.testing.assert_allclose(np.abs(sub.basis.T @ top), np.eye(2), atol=1e-6)
        # an H-invariant subspace: the restricted covariances are the blocks of the full ones
        np.testing.assert_allclose(sub.sigma_ou, sub.basis.T @ lin.sigma_ou @ sub.basis, rtol=1e-6, atol=1e-14)
        np.testing.assert_allclose(sub.sigma_discrete, sub.basis.T @ lin.sigma_discrete @ sub.basis, rtol=1e-6,
                                   atol=1e-14)
        np.testing.assert_allclose(sub.predicted_A(3), sub.basis.T @ lin.predicted_A(3) @ sub.basis, rtol=1e-5,
                                   atol=1e-12)
        P = sub.max_current_plane()
        assert P.shape == (4, 2)
        np.testing.assert_allclose(sub.predicted_A(3, basis=P), lin.predicted_A(3, basis=P), rtol=1e-5, atol=1e-12)
    # an explicit orthonormal basis
    B = np.linalg.qr(np.random.default_rng(2).normal(size=(4, 3)))[0]
    sub = linearise(fs, w, 0.02, 2, basis=B)
    np.testing.assert_allclose(sub.H, B.T @ lin.H @ B, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sub.D, B.T @ lin.D @ B, rtol=1e-10, atol=1e-14)


def test_bad_input_names_the_field():
    A, y, xs, fs = _least_squares()
    with pytest.raises(ValueError, match="sampling"):
        linearise(fs, xs, 0.05, 2, sampling="shuffle")
    with pytest.raises(ValueError, match="lr"):
        linearise(fs, xs, 10.0, 1)
    with pytest.raises(ValueError, match="w_star"):
        linearise(fs, xs[:2], 0.05, 1)
    with pytest.raises(ValueError, match="basis"):
        linearise(fs, xs, 0.05, 1, dense_max=2)
    with pytest.raises(ValueError, match="basis"):
        linearise(fs, xs, 0.05, 1, basis=np.ones((3, 2)))
    with pytest.raises(ValueError, match="basis"):
        linearise(fs, xs, 0.05, 1, basis=np.eye(3)[:, :2], n_modes=2)
    with pytest.raises(ValueError, match="n_modes"):
        linearise(fs, xs, 0.05, 1, n_modes=4)
    saddle = chains.FiniteSum(lambda x, s: s * (x[0] ** 2 - x[1] ** 2), (jnp.ones(3),), 2)
    with pytest.raises(ValueError, match="w_star"):
        linearise(saddle, np.zeros(2), 0.05, 1)
    with pytest.raises(ValueError, match="fs"):
        linearise(object(), xs, 0.05, 1)
