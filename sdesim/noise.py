"""The counter-based noise stream (``sdesim.noise``): random numbers as functions of (seed, index, step).

Public so that results can be checked draw by draw: :func:`stream_keys`,
:func:`normals` and :func:`rademacher_words` / :func:`rademacher_signs` are the
ensemble stream of :func:`sdesim.simulate`; :func:`particle_keys` and
:func:`step_normals` the per-chain stream of :mod:`sdesim.chains` and the
zero-mass integrator; :func:`pair_words`, :func:`words_to_normal` (23-bit
uniforms, float32) and :func:`words_to_normal64` (52-bit uniforms, float64)
are the steps in between. Definitions and guarantees: docs/reproducibility.md.
"""

from ._noise import normals as normals
from ._noise import pair_words as pair_words
from ._noise import particle_keys as particle_keys
from ._noise import rademacher_signs as rademacher_signs
from ._noise import rademacher_words as rademacher_words
from ._noise import step_normals as step_normals
from ._noise import stream_keys as stream_keys
from ._noise import words_to_normal as words_to_normal
from ._noise import words_to_normal64 as words_to_normal64
