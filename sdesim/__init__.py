"""sdesim: SGD as a stochastic differential equation, simulated with JAX.

See README.md for a tour and docs/conventions.md for the equations.
"""

import os as _os
import sys as _sys

# On CPU, XLA runs one device's elementwise loops on one thread. sdesim shards
# the particle axis over devices, so it asks XLA for one CPU device per core --
# possible only before JAX starts. Opt out with SDESIM_CPU_DEVICES=1, or set
# your own XLA_FLAGS=--xla_force_host_platform_device_count=N.
if "jax" not in _sys.modules and "xla_force_host_platform_device_count" not in _os.environ.get("XLA_FLAGS", ""):
    _n = _os.environ.get("SDESIM_CPU_DEVICES", "auto")
    _n = (_os.cpu_count() or 1) if _n == "auto" else int(_n)
    if _n > 1:
        _os.environ["XLA_FLAGS"] = (
            _os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={_n}"
        ).strip()

from importlib.metadata import PackageNotFoundError, version as _version  # noqa: E402

from . import diffusion as diffusion
from . import nn as nn
from . import _chains as chains
from . import _sgd_theory as sgd_theory
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
from ._run import load_ensemble as load_ensemble

# --- analysis: potential, Fokker-Planck, zero-mass A-type (issue 3) ---
from ._density import PotentialEstimate as PotentialEstimate
from ._density import estimate_potential as estimate_potential
from ._fokker_planck import FokkerPlanck2D as FokkerPlanck2D
from ._fokker_planck import StationaryDensity2D as StationaryDensity2D
from ._fokker_planck import fokker_planck_2d as fokker_planck_2d
from ._fokker_planck import stationary_density_2d as stationary_density_2d
from ._free_energy import FreeEnergy as FreeEnergy
from ._free_energy import free_energy as free_energy
from ._zero_mass import ZeroMassEnsemble as ZeroMassEnsemble
from ._zero_mass import fokker_planck_lag_wedge as fokker_planck_lag_wedge
from ._zero_mass import lag_wedge as lag_wedge
from ._zero_mass import linear_lag_covariance as linear_lag_covariance
from ._zero_mass import simulate_zero_mass as simulate_zero_mass

# --- analysis: cycles, currents, spectra (issue 4) ---
from ._cycles import LimitCycleResult as LimitCycleResult
from ._cycles import trace_limit_cycle as trace_limit_cycle
from ._current import CurrentEstimate as CurrentEstimate
from ._current import estimate_current as estimate_current
from ._spectral import Autocorrelation as Autocorrelation
from ._spectral import IncrementSpectrum as IncrementSpectrum
from ._spectral import SpectralTest as SpectralTest
from ._spectral import autocorrelation as autocorrelation
from ._spectral import increment_spectrum as increment_spectrum
from ._spectral import low_frequency_test as low_frequency_test
from ._spectral import periodicity_test as periodicity_test
from ._spectral import trajectory_spectra as trajectory_spectra

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
    "load_ensemble",
    "nn",
    "chains",
    "sgd_theory",
    "ou_stationary_covariance",
    "problems",
    "simulate",
    "temperature",
    "LimitCycleResult",  # issue 4
    "trace_limit_cycle",  # issue 4
    "CurrentEstimate",  # issue 4
    "estimate_current",  # issue 4
    "Autocorrelation",  # issue 4
    "IncrementSpectrum",  # issue 4
    "SpectralTest",  # issue 4
    "autocorrelation",  # issue 4
    "increment_spectrum",  # issue 4
    "low_frequency_test",  # issue 4
    "periodicity_test",  # issue 4
    "trajectory_spectra",  # issue 4
    "FokkerPlanck2D",  # issue 3
    "FreeEnergy",  # issue 3
    "PotentialEstimate",  # issue 3
    "StationaryDensity2D",  # issue 3
    "ZeroMassEnsemble",  # issue 3
    "estimate_potential",  # issue 3
    "fokker_planck_2d",  # issue 3
    "fokker_planck_lag_wedge",  # issue 3
    "free_energy",  # issue 3
    "lag_wedge",  # issue 3
    "linear_lag_covariance",  # issue 3
    "simulate_zero_mass",  # issue 3
    "stationary_density_2d",  # issue 3
]
