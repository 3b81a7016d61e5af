"""sdesim: SGD as a stochastic differential equation, simulated with JAX.

See README.md for a tour and docs/conventions.md for the equations.
"""

from importlib.metadata import PackageNotFoundError, version as _version

from . import diffusion as diffusion
from . import problems as problems
from ._linear import linear_decomposition as linear_decomposition
from ._linear import ou_stationary_covariance as ou_stationary_covariance
from ._problem import AbstractProblem as AbstractProblem
from ._problem import AnisotropicDoubleWell as AnisotropicDoubleWell
from ._problem import Custom as Custom
from ._problem import Linear as Linear
from ._problem import RotatingDoubleWell as RotatingDoubleWell
from ._temperature import temperature as temperature

# --- core engine (issue 2) ---
from ._integrate import Ensemble as Ensemble
from ._integrate import simulate as simulate

# --- analysis: potential, Fokker-Planck, zero-mass A-type (issue 3) ---

# --- analysis: cycles, currents, spectra (issue 4) ---

try:
    __version__ = _version("sdesim")
except PackageNotFoundError:  # pragma: no cover - source checkout without install
    __version__ = "0.0.0+unknown"

__all__ = [
    "AbstractProblem",
    "AnisotropicDoubleWell",
    "Custom",
    "Ensemble",
    "Linear",
    "RotatingDoubleWell",
    "diffusion",
    "linear_decomposition",
    "ou_stationary_covariance",
    "problems",
    "simulate",
    "temperature",
]
