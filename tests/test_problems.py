"""Problems and noise models: the A-type identity, divergences, factors, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdesim
from sdesim.diffusion import Dense, Diagonal, Isotropic, LowRankDiagonal, StateDependent


def _random_points(n, dim, scale=1.5, seed=0):
    return np.random.default_rng(seed).normal(scale=scale, size=(n, dim))


@pytest.mark.parametrize("lam", [0.0, 0.5, 1.5])
def test_example19_atype_identity(lam):
    """grad f = (D+Q) grad Phi - beta^-1 div(D+Q) at beta = 1, to float64 precision."""
    p = sdesim.problems.rotating_double_well(lam)
    res = jax.vmap(lambda x: p.atype_residual(x, 1.0))(jnp.asarray(_random_points(200, 2)))
    assert np.max(np.abs(res)) < 1e-10
    Q = jax.vmap(p.q_matrix)(jnp.asarray(_random_points(50, 2)))
    np.testing.assert_allclose(Q, -np.swapaxes(Q, 1, 2), atol=0)
    if lam > 0:  # Q really depends on x
        assert np.std(Q[:, 0, 1]) > 1e-3


def test_example19_leftover_force_is_rotation():
    p = sdesim.problems.rotating_double_well(1.5)
    xs = jnp.asarray(_random_points(100, 2))
    j = jax.vmap(lambda x: p.leftover_force(x, 1.0))(xs)
    np.testing.assert_allclose(j, jax.vmap(p.rotation)(xs), atol=1e-12)
    # j rho is divergence-free: div(j exp(-Phi)) = 0
    div = jax.vmap(lambda x: jnp.trace(jax.jacfwd(lambda y: p.rotation(y) * jnp.exp(-p.phi(y)))(x)))(xs)
    assert np.max(np.abs(div)) < 1e-10


def test_example19_far_field_is_finite():
    p = sdesim.problems.rotating_double_well(1.5)
    for x in ([10.0, 0.0], [0.0, 12.0], [7.0, 7.0], [3.0, 2.5]):
        x = jnp.asarray(x)
        assert np.all(np.isfinite(p.q_matrix(x))) and np.all(np.isfinite(p.grad_f(x)))
        assert np.all(np.isfinite(p.drift(x, 1.0, "atype")))


def test_anisotropic_problem_identity_and_state_dependence():
    p = sdesim.problems.anisotropic_double_well(beta_inv=0.4)
    xs = jnp.asarray(_random_points(200, 2))
    res = jax.vmap(lambda x: p.atype_residual(x, 0.4))(xs)
    assert np.max(np.abs(res)) < 1e-10
    D = jax.vmap(p.diffusion_matrix)(xs)
    assert np.std(D[:, 0, 1]) > 0.05  # non-diagonal and state-dependent
    assert np.min(np.linalg.eigvalsh(np.asarray(D))) > 0.3
    Q = jax.vmap(p.q_matrix)(xs)
    assert np.std(Q[:, 0, 1]) > 0.05
    # at another temperature the identity fails by exactly (0.4 - 0.1) div(D+Q)
    res2 = jax.vmap(lambda x: p.atype_residual(x, 0.1))(xs)
    div = jax.vmap(lambda x: p.diffusion.divergence(x) + p.div_q(x))(xs)
    np.testing.assert_allclose(res2, -0.3 * div, atol=1e-10)


def _fd_divergence(M, x, h=1e-5):
    d = x.shape[0]
    out = np.zeros(d)
    for i in range(d):
        for j in range(d):
            e = np.zeros(d)
            e[j] = h
            out[i] += (M(x + e)[i, j] - M(x - e)[i, j]) / (2 * h)
    return out


def test_matrix_divergence_matches_finite_differences():
    p = sdesim.problems.anisotropic_double_well()
    D = lambda x: np.asarray(p.diffusion_matrix(jnp.asarray(x)))  # noqa: E731
    Q = lambda x: np.asarray(p.q_matrix(jnp.asarray(x)))  # noqa: E731
    for x in _random_points(10, 2, seed=3):
        np.testing.assert_allclose(p.diffusion.divergence(jnp.asarray(x)), _fd_divergence(D, x), atol=1e-7)
        np.testing.assert_allclose(p.div_q(jnp.asarray(x)), _fd_divergence(Q, x), atol=1e-7)


def test_row_wise_divergence_convention():
    """(div M)_i = sum_j d_j M_ij -- checked on M(x) = [[0, x1*x2], [0, 0]]."""
    M = lambda x: jnp.array([[0.0, x[0] * x[1]], [0.0, 0.0]])  # noqa: E731
    div = sdesim.diffusion.matrix_divergence(M, jnp.array([2.0, 3.0]))
    np.testing.assert_allclose(div, [2.0, 0.0])  # d/dx2 (x1 x2) = x1, in row 0


@pytest.mark.parametrize(
    "model",
    [
        Isotropic(3, 0.7),
        Diagonal([0.5, 1.0, 2.0]),
        Dense.from_matrix([[2.0, 0.3, 0.1], [0.3, 1.0, -0.2], [0.1, -0.2, 0.5]]),
        LowRankDiagonal(np.arange(6.0).reshape(3, 2) / 5, [0.1, 0.2, 0.3]),
        LowRankDiagonal(np.arange(6.0).reshape(3, 2) / 5),
        StateDependent(lambda x: jnp.diag(1.0 + x**2) + 0.1, 3),
    ],
)
def test_factor_reproduces_matrix(model):
    x = jnp.array([0.3, -0.2, 0.5])
    eye = jnp.eye(model.noise_dim)
    L = jax.vmap(lambda z: model.apply(x, z), in_axes=1, out_axes=1)(eye)
    np.testing.assert_allclose(L @ L.T, model.matrix(x), atol=1e-10)


def test_state_dependent_2x2_closed_form_cholesky():
    D = lambda x: jnp.array([[2.0 + x[0] ** 2, 0.5 * x[1]], [0.5 * x[1], 1.0]])  # noqa: E731
    m = StateDependent(D, 2)
    x = jnp.array([0.4, 0.9])
    np.testing.assert_allclose(m.factor(x), np.linalg.cholesky(np.asarray(D(x))), atol=1e-12)


def test_low_rank_noise_dim_never_dense():
    d, r = 10_000, 100
    m = LowRankDiagonal(np.zeros((d, r)), np.ones(d))
    assert m.noise_dim == r + d
    assert m.factor.shape == (d, r)
    assert abs(m.mean_eigenvalue() - 1.0) < 1e-12


def test_linear_problem_carries_lemma20_pair():
    F = np.array([[1.0, 0.8, 0.0], [-0.5, 1.5, 0.3], [0.0, -0.4, 0.7]])
    D = np.array([[1.0, 0.3, 0.0], [0.3, 0.5, 0.1], [0.0, 0.1, 0.8]])
    p = sdesim.problems.linear(F, D)
    assert p.has_atype
    x = jnp.array([0.3, -1.0, 2.0])
    for bi in (0.1, 1.0, 3.0):  # holds at every temperature (constant D, Q)
        assert np.max(np.abs(p.atype_residual(x, bi))) < 1e-10


def test_custom_problem_constant_and_callable():
    p = sdesim.problems.custom(lambda x: x, [[2.0, 0.5], [0.5, 1.0]], 2)
    assert isinstance(p.diffusion, Dense) and p.diffusion.is_constant
    q = sdesim.problems.custom(lambda x: x, lambda x: jnp.eye(2) * (1 + x[0] ** 2), 2)
    assert isinstance(q.diffusion, StateDependent)
    np.testing.assert_allclose(q.diffusion.divergence(jnp.array([0.5, 0.0])), [1.0, 0.0])


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(grad_f=lambda x: x, diffusion=[[1.0, 2.0], [0.0, 1.0]], dim=2), "diffusion"),
        (dict(grad_f=lambda x: x, diffusion=[[1.0, 2.0], [2.0, 1.0]], dim=2), "diffusion"),
        (dict(grad_f=lambda x: x, diffusion=np.eye(3), dim=2), "diffusion"),
        (dict(grad_f=lambda x: x, diffusion=[[np.nan, 0.0], [0.0, 1.0]], dim=2), "diffusion"),
        (dict(grad_f=lambda x: x[:1], diffusion=np.eye(2), dim=2), "grad_f"),
        (dict(grad_f=3.0, diffusion=np.eye(2), dim=2), "grad_f"),
        (dict(grad_f=lambda x: x, diffusion=np.eye(2), dim=0), "dim"),
        (dict(grad_f=lambda x: x, diffusion=lambda x: jnp.eye(3), dim=2), "diffusion"),
        (dict(grad_f=lambda x: x, diffusion=-1.0, dim=2), "diffusion"),
    ],
)
def test_custom_bad_input(kwargs, field):
    with pytest.raises(ValueError, match=f"^{field}"):
        sdesim.problems.custom(**kwargs)


def test_linear_bad_input():
    with pytest.raises(ValueError, match="^F"):
        sdesim.problems.linear([[1.0, 2.0, 3.0]], np.eye(1))
    with pytest.raises(ValueError, match="^D"):
        sdesim.problems.linear(np.eye(2), [[1.0, 0.0], [0.0, -1.0]])
    with pytest.raises(ValueError, match="^lam"):
        sdesim.problems.rotating_double_well(float("nan"))
    with pytest.raises(ValueError, match="^beta_inv"):
        sdesim.problems.anisotropic_double_well(beta_inv=0.0)
