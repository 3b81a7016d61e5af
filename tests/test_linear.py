"""Lemma 20: F = (D + Q) U with U = beta^-1 S^-1 from the Lyapunov covariance S."""

import numpy as np
import pytest
import scipy.linalg

import sdesim


def _random_stable_pair(rng, d):
    """Random F with spectrum in the right half plane and random SPD D."""
    A = rng.normal(size=(d, d))
    F = A + (np.abs(np.linalg.eigvals(A).real).max() + 0.5) * np.eye(d)
    B = rng.normal(size=(d, d))
    D = B @ B.T + 0.1 * np.eye(d)
    assert np.linalg.eigvals(F).real.min() > 0
    return F, D


@pytest.mark.parametrize("d", [2, 3, 5, 8])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_decomposition_identities(d, seed):
    rng = np.random.default_rng(seed)
    F, D = _random_stable_pair(rng, d)
    U, Q = sdesim.linear_decomposition(F, D)
    scale = np.abs(F).max()
    np.testing.assert_allclose(U, U.T, atol=1e-12 * np.abs(U).max())
    np.testing.assert_allclose(Q, -Q.T, atol=1e-12 * max(np.abs(Q).max(), 1.0))
    np.testing.assert_allclose((D + Q) @ U, F, atol=1e-9 * scale)
    # Phi = x^T U x / 2 is a potential with a minimum: U positive definite
    assert np.linalg.eigvalsh(U).min() > 0


@pytest.mark.parametrize("beta_inv", [0.01, 0.3, 2.0])
def test_u_is_inverse_lyapunov_covariance(beta_inv):
    rng = np.random.default_rng(7)
    F, D = _random_stable_pair(rng, 4)
    S = sdesim.ou_stationary_covariance(F, D, beta_inv)
    # Lyapunov equation, independently checked through its residual
    np.testing.assert_allclose(F @ S + S @ F.T, 2 * beta_inv * D, atol=1e-10 * beta_inv * np.abs(D).max())
    U, _ = sdesim.linear_decomposition(F, D)
    np.testing.assert_allclose(U, beta_inv * np.linalg.inv(S), rtol=1e-8, atol=1e-10)


def test_covariance_against_integral_formula():
    """S = 2 beta^-1 int_0^inf e^{-Ft} D e^{-F^T t} dt, by quadrature (independent of scipy's solver)."""
    rng = np.random.default_rng(3)
    F, D = _random_stable_pair(rng, 3)
    import scipy.integrate

    T = 40.0 / np.linalg.eigvals(F).real.min()
    S_quad, _ = scipy.integrate.quad_vec(
        lambda t: scipy.linalg.expm(-F * t) @ D @ scipy.linalg.expm(-F.T * t), 0.0, T, epsabs=1e-11
    )
    S_quad = 2 * 0.5 * S_quad
    np.testing.assert_allclose(sdesim.ou_stationary_covariance(F, D, 0.5), S_quad, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_q_zero_iff_fd_symmetric(seed):
    rng = np.random.default_rng(seed)
    d = 4
    # F D symmetric: F = H D^-1 with H SPD -> F D = H symmetric
    B = rng.normal(size=(d, d))
    D = B @ B.T + 0.5 * np.eye(d)
    C = rng.normal(size=(d, d))
    H = C @ C.T + 0.5 * np.eye(d)
    F = H @ np.linalg.inv(D)
    assert np.linalg.eigvals(F).real.min() > 0
    U, Q = sdesim.linear_decomposition(F, D)
    assert np.abs(Q).max() < 1e-9 * np.abs(F).max()
    np.testing.assert_allclose(U, np.linalg.inv(D) @ F, atol=1e-9 * np.abs(U).max())
    # isotropic D = c I with symmetric F: Q = 0 and U = F / c (Lemma 6: Phi = f / c)
    Fs = H
    U2, Q2 = sdesim.linear_decomposition(Fs, 2.5 * np.eye(d))
    assert np.abs(Q2).max() < 1e-9 * np.abs(Fs).max()
    np.testing.assert_allclose(U2, Fs / 2.5, atol=1e-9 * np.abs(Fs).max())
    # generic (F D not symmetric): Q != 0
    F3, D3 = _random_stable_pair(rng, d)
    assert np.abs(F3 @ D3 - (F3 @ D3).T).max() > 1e-3
    _, Q3 = sdesim.linear_decomposition(F3, D3)
    assert np.abs(Q3).max() > 1e-3


def test_rotation_example_closed_form():
    """F = [[1, -w], [w, 1]], D = I: U = I, Q = [[0, -w], [w, 0]]."""
    w = 0.7
    F = np.array([[1.0, -w], [w, 1.0]])
    U, Q = sdesim.linear_decomposition(F, np.eye(2))
    np.testing.assert_allclose(U, np.eye(2), atol=1e-12)
    np.testing.assert_allclose(Q, [[0.0, -w], [w, 0.0]], atol=1e-12)


@pytest.mark.parametrize(
    "F, D, field",
    [
        (np.array([[1.0, 0.0], [0.0, -0.5]]), np.eye(2), "F"),  # unstable
        (np.array([[0.0, 1.0], [-1.0, 0.0]]), np.eye(2), "F"),  # marginal (pure rotation)
        (np.eye(2), np.array([[1.0, 0.0], [0.0, -1.0]]), "D"),  # not PSD
        (np.eye(2), np.array([[1.0, 0.5], [0.0, 1.0]]), "D"),  # not symmetric
        (np.eye(2), np.array([[1.0, 0.0], [0.0, 0.0]]), "D"),  # noise misses a direction
        (np.eye(3), np.eye(2), "D"),  # shape mismatch
        (np.ones((2, 3)), np.eye(2), "F"),  # not square
        (np.array([[np.nan, 0.0], [0.0, 1.0]]), np.eye(2), "F"),
    ],
)
def test_clear_errors(F, D, field):
    with pytest.raises(ValueError, match=rf"^{field}:"):
        sdesim.linear_decomposition(F, D)


def test_covariance_errors():
    with pytest.raises(ValueError, match=r"^F:"):
        sdesim.ou_stationary_covariance(-np.eye(2), np.eye(2), 1.0)
    with pytest.raises(ValueError, match=r"^D:"):
        sdesim.ou_stationary_covariance(np.eye(2), -np.eye(2), 1.0)
