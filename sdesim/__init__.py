"""sdesim: SGD as a stochastic differential equation, simulated with JAX.

Importing sdesim changes nothing outside it (no ``XLA_FLAGS``, no JAX config).
On CPU, call :func:`use_cpu_devices` first (or set
``XLA_FLAGS=--xla_force_host_platform_device_count=N``) to shard ensembles
over the cores. See README.md for a tour and docs/conventions.md for the
equations.
"""

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version

from . import analysis as analysis
from . import chains as chains
from . import diffusion as diffusion
from . import experiments as experiments
from . import noise as noise
from . import nn as nn
from . import problems as problems
from ._devices import use_cpu_devices as use_cpu_devices
from ._integrate import Ensemble as Ensemble
from ._integrate import compiled_cache_size as compiled_cache_size
from ._integrate import default_block_size as default_block_size
from ._integrate import simulate as simulate
from ._linear import linear_decomposition as linear_decomposition
from ._linear import ou_stationary_covariance as ou_stationary_covariance
from ._options import Checkpointing as Checkpointing
from ._options import SaveAt as SaveAt
from ._problem import AbstractProblem as AbstractProblem
from ._problem import AnisotropicDoubleWell as AnisotropicDoubleWell
from ._problem import Custom as Custom
from ._problem import OrnsteinUhlenbeck as OrnsteinUhlenbeck
from ._problem import OrnsteinUhlenbeck as Linear  # 0.1 name (sdesim.nn.Linear is a layer); removed in 0.3
from ._problem import RotatingDoubleWell as RotatingDoubleWell
from ._solvers import AbstractSolver as AbstractSolver
from ._solvers import Diffrax as Diffrax
from ._solvers import Euler as Euler
from ._solvers import Heun as Heun
from ._solvers import WeakEuler as WeakEuler
from ._temperature import temperature as temperature
from ._zero_mass import ZeroMassEnsemble as ZeroMassEnsemble
from ._zero_mass import simulate_zero_mass as simulate_zero_mass
from .analysis import Autocorrelation as Autocorrelation
from .analysis import CurrentEstimate as CurrentEstimate
from .analysis import FokkerPlanck2D as FokkerPlanck2D
from .analysis import FreeEnergy as FreeEnergy
from .analysis import IncrementSpectrum as IncrementSpectrum
from .analysis import LimitCycleResult as LimitCycleResult
from .analysis import PotentialEstimate as PotentialEstimate
from .analysis import SpectralTest as SpectralTest
from .analysis import StationaryDensity2D as StationaryDensity2D
from .analysis import autocorrelation as autocorrelation
from .analysis import estimate_current as estimate_current
from .analysis import estimate_potential as estimate_potential
from .analysis import fokker_planck_2d as fokker_planck_2d
from .analysis import fokker_planck_lag_wedge as fokker_planck_lag_wedge
from .analysis import free_energy as free_energy
from .analysis import increment_spectrum as increment_spectrum
from .analysis import lag_wedge as lag_wedge
from .analysis import linear_lag_covariance as linear_lag_covariance
from .analysis import low_frequency_test as low_frequency_test
from .analysis import periodicity_test as periodicity_test
from .analysis import stationary_density_2d as stationary_density_2d
from .analysis import trace_limit_cycle as trace_limit_cycle
from .analysis import trajectory_spectra as trajectory_spectra
from . import chains as sgd_theory  # 0.1 name of the exact SGD theory, now in sdesim.chains
from .cli._run import load_ensemble as load_ensemble

try:
    __version__ = _version("sdesim")
except _PackageNotFoundError:  # pragma: no cover - source checkout without install
    __version__ = "0.0.0+unknown"
