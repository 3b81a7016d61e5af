"""Analysis of ensembles and trajectories (``sdesim.analysis``).

Densities and the potential estimate ``Phi_hat``, the exact 2D Fokker--Planck
solver, free energy, probability currents, limit cycles, spectra, lag
statistics and SGD linearised at a minimum. The most used names are also available as ``sdesim.<name>``.
"""

from ._current import CurrentEstimate as CurrentEstimate
from ._current import angular_velocity as angular_velocity
from ._current import cell_average_exact_current as cell_average_exact_current
from ._current import estimate_current as estimate_current
from ._current import exact_current_rotating_double_well as exact_current_rotating_double_well
from ._cycles import STATUSES as STATUSES
from ._cycles import LimitCycleResult as LimitCycleResult
from ._cycles import trace_limit_cycle as trace_limit_cycle
from ._density import PotentialEstimate as PotentialEstimate
from ._density import estimate_potential as estimate_potential
from ._fokker_planck import FokkerPlanck2D as FokkerPlanck2D
from ._fokker_planck import StationaryDensity2D as StationaryDensity2D
from ._fokker_planck import fokker_planck_2d as fokker_planck_2d
from ._fokker_planck import grid_modes as grid_modes
from ._fokker_planck import stationary_density_2d as stationary_density_2d
from ._free_energy import FreeEnergy as FreeEnergy
from ._free_energy import free_energy as free_energy
from ._lag import LagWedge as LagWedge
from ._lag import fokker_planck_lag_wedge as fokker_planck_lag_wedge
from ._lag import lag_wedge as lag_wedge
from ._lag import linear_lag_covariance as linear_lag_covariance
from ._lag_antisymmetry import CirculationDifference as CirculationDifference
from ._lag_antisymmetry import LagAntisymmetry as LagAntisymmetry
from ._lag_antisymmetry import compare_circulation as compare_circulation
from ._lag_antisymmetry import lag_antisymmetry as lag_antisymmetry
from ._linearised import LinearisedStationary as LinearisedStationary
from ._linearised import linearise as linearise
from ._modes import Modes as Modes
from ._modes import bonferroni_z as bonferroni_z
from ._modes import find_modes as find_modes
from ._modes import peak_prominences as peak_prominences
from ._spectral import Z99 as Z99
from ._spectral import Autocorrelation as Autocorrelation
from ._spectral import IncrementSpectrum as IncrementSpectrum
from ._spectral import SpectralTest as SpectralTest
from ._spectral import autocorrelation as autocorrelation
from ._spectral import increment_spectrum as increment_spectrum
from ._spectral import low_frequency_test as low_frequency_test
from ._spectral import periodicity_test as periodicity_test
from ._spectral import trajectory_spectra as trajectory_spectra
