"""Chains as particles (``sdesim.chains``): SGD, SGLD and the SDE on one finite-sum loss.

A :class:`FiniteSum` loss (``FiniteSum.from_model(model, x, y, loss=...)``
for a network: any model form of :mod:`sdesim.nn` over its flat weights,
``fs.x0`` and ``fs.unravel(w)``), the chain kernels :func:`sgd`, :func:`sgld` and
:func:`sde`, the driver :func:`run_chains` (in memory) and
:func:`stream_chains` / :func:`load_stream` (on disk, resumable; a :class:`ChainStream`), and the
exact stationary theory of SGD on least squares (``linreg_*``).
"""

from ._chains import BATCHINGS as BATCHINGS
from ._chains import DENSE_MAX as DENSE_MAX
from ._chains import SAMPLINGS as SAMPLINGS
from ._chains import ChainKernel as ChainKernel
from ._chains import ChainState as ChainState
from ._stream_result import ChainStream as ChainStream
from ._chains import FiniteSum as FiniteSum
from ._chains import chain_keys as chain_keys
from ._chains import load_stream as load_stream
from ._chains import run_chains as run_chains
from ._chains import sde as sde
from ._chains import sgd as sgd
from ._chains import sgld as sgld
from ._chains import stream_chains as stream_chains
from ._chains import subset_factor as subset_factor
from ._diagnostics import STATIONARITY_CHECKS as STATIONARITY_CHECKS
from ._diagnostics import Stationarity as Stationarity
from ._diagnostics import stationarity as stationarity
from ._diagnostics import stationary_mean as stationary_mean
from ._diagnostics import stationary_start as stationary_start
from ._minimum import MINIMUM_STATUSES as MINIMUM_STATUSES
from ._minimum import Minimum as Minimum
from ._minimum import find_minimum as find_minimum
from ._theory import linreg_diffusion as linreg_diffusion
from ._theory import linreg_discrete_lyapunov as linreg_discrete_lyapunov
from ._theory import linreg_ou_covariance as linreg_ou_covariance
from ._theory import linreg_stationary as linreg_stationary
