"""Small example factories for ``problem.kind = "python"`` configs."""

import jax.numpy as _jnp

from . import problems as _problems


def tilted_double_well(tilt: float = 0.2, noise=((1.0, 0.0), (0.0, 1.0))):
    """``f(x) = (x1^2 - 1)^2 / 4 + x2^2 / 2 + tilt * x1`` with a constant anisotropic ``D``."""
    tilt = float(tilt)

    def grad_f(x):
        return _jnp.stack([x[0] * (x[0] ** 2 - 1.0) + tilt, x[1]])

    return _problems.custom(grad_f, _jnp.asarray(noise, dtype=float), 2)
