"""The counter-based noise stream (``sdesim.noise``): random numbers as functions of (seed, index, step).

Public so that results can be checked draw by draw: :func:`stream_keys`,
:func:`normals` and :func:`rademacher_words` / :func:`rademacher_signs` are the
ensemble stream of :func:`sdesim.simulate`; :func:`particle_keys` and
:func:`step_normals` the per-chain stream of :mod:`sdesim.chains` and the
zero-mass integrator. Definitions and guarantees: docs/reproducibility.md.
"""

from ._noise import normals as normals
from ._noise import particle_keys as particle_keys
from ._noise import rademacher_signs as rademacher_signs
from ._noise import rademacher_words as rademacher_words
from ._noise import step_normals as step_normals
from ._noise import stream_keys as stream_keys
