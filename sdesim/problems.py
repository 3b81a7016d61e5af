"""Built-in problems and constructors (``sdesim.problems.*``).

Each returns an :class:`~sdesim.AbstractProblem` (an ``equinox.Module``).
Parameters are stored as arrays, so calling :func:`sdesim.simulate` with a new
``lam`` or ``F`` of the same shape reuses the compiled program.
"""

from ._factories import anisotropic_double_well as anisotropic_double_well
from ._factories import custom as custom
from ._factories import linear as linear
from ._factories import rotating_double_well as rotating_double_well

__all__ = ["custom", "linear", "rotating_double_well", "anisotropic_double_well"]
