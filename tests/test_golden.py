"""Arrays pinned from sdesim 0.1 (the flat layout) reproduce in 0.2 for the same seed.

``tests/data/golden_0_1.npz`` was written by the 0.1 code with the calls below
(float32, small sizes): the module move, the public names and the solver
plumbing must not change a single draw or step. Same machine: identical bits;
another CPU may round each step differently, so the assertion is the
reproducibility contract's ``n_steps * 64 eps * max|x|`` (docs/reproducibility.md).
"""

from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

import sdesim
from sdesim import chains
from _stats import assert_equal_to_rounding

GOLD = np.load(Path(__file__).parent / "data" / "golden_0_1.npz")
EX19 = dict(beta_inv=1.0, n_particles=64, n_steps=50, dt=0.01, seed=3, save_every=25, burn_in=5)


def _check(name, x, n_steps):
    assert_equal_to_rounding(GOLD[name], np.asarray(x), n_steps)


@pytest.mark.repro
@pytest.mark.parametrize("method", ["euler", "weak_euler", "heun"])
def test_simulate_methods(method):
    p = sdesim.problems.rotating_double_well(1.5)
    _check(f"ex19_{method}", sdesim.simulate(p, method=method, **EX19).x, 55)


@pytest.mark.repro
def test_simulate_forms_and_problems():
    p = sdesim.problems.rotating_double_well(1.5)
    _check("ex19_atype", sdesim.simulate(p, form="atype", **EX19).x, 55)
    F = np.array([[1.0, 0.4, 0.0], [-0.4, 1.5, 0.2], [0.0, -0.2, 0.8]])
    L = np.array([[1.0, 0.0, 0.0], [0.3, 0.7, 0.0], [-0.2, 0.1, 0.5]])
    _check("ou3", sdesim.simulate(sdesim.problems.linear(F, L @ L.T), **{**EX19, "beta_inv": 0.5}).x, 55)
    _check("adw_state_dep", sdesim.simulate(sdesim.problems.anisotropic_double_well(0.5), **EX19).x, 55)
    zm = sdesim.simulate_zero_mass(p, beta_inv=1.0, mass=0.05, n_particles=16, n_steps=40, dt=0.005, seed=2,
                                   save_every=20)
    # the zero-mass integrator runs in float64, whose normals 0.2 draws from 52-bit uniforms that refine
    # 0.1's 23-bit ones (|u64 - u32| < 2^-23, so |dz| <~ 2^-23 / phi(z)): the same path to ~1e-6
    assert zm.x.dtype == np.float64
    np.testing.assert_allclose(zm.x, GOLD["zero_mass_x"], rtol=0, atol=1e-4 * np.abs(GOLD["zero_mass_x"]).max())
    assert not np.array_equal(zm.x, GOLD["zero_mass_x"])  # and not bit for bit: the stream did change


@pytest.mark.repro
def test_chain_kernels():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(20, 2))
    y = A @ np.array([1.0, -0.5]) + 0.7 * rng.normal(size=20)
    fs = chains.FiniteSum(lambda x, a, yk: 0.5 * (a @ x - yk) ** 2, (jnp.asarray(A), jnp.asarray(y)), 2)
    kernels = {
        "sgd_replacement": chains.sgd(fs, 0.05, 3),
        "sgd_subset": chains.sgd(fs, 0.05, 3, sampling="subset"),
        "sgd_shuffle": chains.sgd(fs, 0.05, 3, sampling="shuffle"),
        "sgld": chains.sgld(fs, 0.05, 3, noise_power=0.5),
        "sde": chains.sde(fs.problem(), 0.05, 3),
    }
    for name, ker in kernels.items():
        x = chains.run_chains(ker, np.zeros(2), n_chains=4, n_steps=30, save_every=10, seed=5, dtype="float32").x
        _check("chains_" + name, x, 30)
