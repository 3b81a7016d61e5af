"""Theorem 5: F(rho_t) = E[Phi] - beta^-1 H decreases; particles agree with the Fokker-Planck flow."""

import numpy as np
import pytest

import sdesim
from sdesim.analysis import fokker_planck_2d
from sdesim.analysis import free_energy


def test_free_energy_decreases_and_matches_fokker_planck():
    """Non-equilibrium (J != 0), state-dependent D: ensemble F(rho_t) vs the FP solution's F."""
    b = 0.5
    prob = sdesim.problems.anisotropic_double_well(b)
    n = 10_000
    mu, s = np.array([1.8, 1.2]), 0.35
    x0 = mu + s * np.random.default_rng(0).normal(size=(n, 2))
    ens = sdesim.simulate(prob, beta_inv=b, n_particles=n, n_steps=400, dt=0.005, seed=1, x0=x0, save_every=50)
    x = np.concatenate([x0[None], ens.x])
    t = np.concatenate([[0.0], ens.t])
    fe = free_energy(x, beta_inv=b, phi=prob.phi, bins=64, box=(-3.5, 3.5), t=t, n_boot=40)
    assert fe.is_decreasing(3.0)
    assert np.all(np.diff(fe.value) < 0)  # strictly, at this spacing
    # exact F(rho_t) from the Fokker-Planck generator
    op = fokker_planck_2d(prob, beta_inv=b, box=(-3.5, 3.5), n=96)
    X, Y = np.meshgrid(op.x, op.y, indexing="ij")
    r0 = np.exp(-((X - mu[0]) ** 2 + (Y - mu[1]) ** 2) / (2 * s * s))
    r0 /= r0.sum() * op.dx * op.dy
    cell = op.dx * op.dy
    PH = (X**2 - 1) ** 2 / 4 + Y**2 / 2 + 0.3 * X * Y / 2
    F_fp = np.array(
        [np.sum(r * PH) * cell + b * np.sum(r * np.log(np.maximum(r, 1e-300))) * cell for r in op.evolve(r0, t)]
    )
    assert np.all(np.diff(F_fp) < 0)
    # histogram-entropy binning bias and Euler O(dt) bias: measured ~0.007
    np.testing.assert_array_less(np.abs(fe.value - F_fp), 4 * fe.stderr + 0.015)
    # F -> F_eq = -beta^-1 log Z; KL decreases towards 0
    lpz = -PH / b
    f_eq = -b * (np.log(np.sum(np.exp(lpz - lpz.max())) * cell) + lpz.max())
    assert abs(fe.f_eq - f_eq) < 2e-3
    assert fe.kl[0] > 5 and 0 < fe.kl[-1] < 0.3
    assert np.all(np.diff(fe.kl) < 0)


def test_knn_entropy_matches_gaussian_closed_form():
    rng = np.random.default_rng(2)
    d = 3
    C = np.array([[1.0, 0.3, 0.0], [0.3, 0.5, 0.1], [0.0, 0.1, 0.8]])
    x = rng.multivariate_normal(np.zeros(d), C, size=(2, 5000))  # 2 snapshots
    P = np.linalg.inv(C)
    fe = free_energy(x, beta_inv=1.0, phi=lambda z: 0.5 * z @ P.astype(np.float32) @ z, n_boot=10)
    H = 0.5 * np.log((2 * np.pi * np.e) ** d * np.linalg.det(C))
    np.testing.assert_allclose(fe.entropy, H, atol=0.05)
    np.testing.assert_allclose(fe.energy, d / 2, atol=0.1)
    assert np.isnan(fe.f_eq) and np.all(np.isnan(fe.kl))


def test_histogram_entropy_of_gaussian_2d():
    rng = np.random.default_rng(3)
    C = np.array([[0.6, 0.2], [0.2, 0.3]])
    x = rng.multivariate_normal(np.zeros(2), C, size=(1, 100_000))
    P = np.linalg.inv(C)
    fe = free_energy(x, beta_inv=0.5, phi=lambda z: 0.25 * z @ P.astype(np.float32) @ z, bins=80, box=(-4, 4), n_boot=20)
    H = 0.5 * np.log((2 * np.pi * np.e) ** 2 * np.linalg.det(C))
    assert abs(fe.entropy[0] - H) < 0.01
    # samples from rho_ss itself: KL ~ 0
    assert abs(fe.kl[0]) < 0.01


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(beta_inv=0.0), "beta_inv"),
        (dict(phi=3.0), "phi"),
        (dict(entropy="exact"), "entropy"),
        (dict(t=np.zeros(5)), "t"),
        (dict(n_boot=0), "n_boot"),
    ],
)
def test_bad_input(kwargs, field):
    x = np.random.default_rng(0).normal(size=(2, 50, 2))
    base = dict(beta_inv=1.0, phi=lambda z: z @ z)
    base.update(kwargs)
    with pytest.raises(ValueError, match=rf"^{field}:"):
        free_energy(x, **base)


def test_bad_samples():
    with pytest.raises(ValueError, match=r"^samples:"):
        free_energy(np.zeros((50, 2)), beta_inv=1.0, phi=lambda z: z @ z)
    x = np.zeros((2, 50, 2))
    x[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"^samples:"):
        free_energy(x, beta_inv=1.0, phi=lambda z: z @ z)


def test_phi_from_a_fokker_planck_solution():
    """phi may be the gridded Phi of stationary_density_2d (bilinear interpolation)."""
    prob = sdesim.problems.rotating_double_well(0.0)
    ss = sdesim.stationary_density_2d(prob, beta_inv=1.0, box=(-3.5, 3.5), n=64)
    x = ss.sample(20_000, seed=1)[None]
    a = free_energy(x, beta_inv=1.0, phi=prob.phi, bins=32, box=(-3.5, 3.5), n_boot=5)
    b = free_energy(x, beta_inv=1.0, phi=ss, bins=32, box=(-3.5, 3.5), n_boot=5)
    assert abs(a.energy[0] - b.energy[0]) < 0.01
    assert abs(a.f_eq - b.f_eq) < 0.01
    assert abs(a.kl[0]) < 0.02 and abs(b.kl[0]) < 0.02
