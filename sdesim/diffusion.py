"""Public noise models (``sdesim.diffusion.*``); see :mod:`sdesim.diffusion`."""

from ._diffusion import AbstractDiffusion as AbstractDiffusion
from ._diffusion import Dense as Dense
from ._diffusion import Diagonal as Diagonal
from ._diffusion import Isotropic as Isotropic
from ._diffusion import LowRankDiagonal as LowRankDiagonal
from ._diffusion import StateDependent as StateDependent
from ._diffusion import as_diffusion as as_diffusion
from ._diffusion import matrix_divergence as matrix_divergence

__all__ = [
    "AbstractDiffusion",
    "Isotropic",
    "Diagonal",
    "Dense",
    "LowRankDiagonal",
    "StateDependent",
    "as_diffusion",
    "matrix_divergence",
]
