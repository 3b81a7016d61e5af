"""The benchmark's hand-written NumPy peers integrate the same SDEs as sdesim.

``sdesim bench`` (:mod:`sdesim.experiments.bench`) times vectorised NumPy with drifts and noise
factors written out by hand; a ratio against them only means something if
they are the same functions. Compared here against the problems' own autodiff
drift and noise factor at random points.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sdesim.experiments import bench as be


@pytest.mark.parametrize("name", ["ex19", "ou64", "statedep"])
def test_numpy_peer_matches_problem(name):
    spec = be.make_problems()[name]
    p = spec["problem"]
    drift, noise, nd = be.numpy_model(spec, name)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, p.dim)) * 1.2
    z = rng.normal(size=(50, nd))
    want_b = np.asarray(jax.vmap(lambda xi: -p.grad_f(xi))(jnp.asarray(x)))
    want_g = np.asarray(jax.vmap(p.diffusion.apply)(jnp.asarray(x), jnp.asarray(z)))
    # the peers compute in float32 (constants rounded to float32), hence 1e-5
    np.testing.assert_allclose(drift(x), want_b, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(noise(x, z), want_g, rtol=1e-5, atol=1e-5)
