"""The ``sdesim`` command line (``sdesim.cli``): config schema and validation, run directories.

``sdesim run [CONFIG.toml] --out DIR`` runs an experiment described by a TOML
config (:func:`load_config`, :func:`validate_config`; schema in the docstring
of :data:`DEFAULT_CONFIG`'s module and in ``configs/README.md``) and writes a
run directory (:func:`run_experiment`, :func:`run_chains_experiment`; each returns a
:class:`RunSummary`).
"""

from ._config import DEFAULT_CONFIG as DEFAULT_CONFIG
from ._config import EXPERIMENTS as EXPERIMENTS
from ._config import ConfigError as ConfigError
from ._config import build_problem as build_problem
from ._config import experiment_kind as experiment_kind
from ._config import load_config as load_config
from ._config import quick_config as quick_config
from ._config import validate_config as validate_config
from ._main import app as app
from ._main import main as main
from ._run import CheckpointError as CheckpointError
from ._run import RunDirError as RunDirError
from ._run import load_checkpoint as load_checkpoint
from ._run import read_checked_npz as read_checked_npz
from ._run import run_experiment as run_experiment
from ._run import save_checkpoint as save_checkpoint
from ._run import versions as versions
from ._run import write_checked_npz as write_checked_npz
from .._io import atomic_write_json as atomic_write_json
from .._io import atomic_write_text as atomic_write_text
from ._run_chains import run_chains_experiment as run_chains_experiment
from ._summary import EXPERIMENT_KINDS as EXPERIMENT_KINDS
from ._summary import RunSummary as RunSummary
