"""Counter-based noise: the random numbers depend only on (seed, particle, step).

Two streams live here.

**Ensemble stream** (what :func:`sdesim.simulate` uses; pinned by golden-value
tests). For a noise of ``noise_dim`` variables, word pair ``j = 0, 1, ...``
has its own key ``k_j = fold_in(fold_in(key(seed), stream), j)``
(``stream = 0`` Gaussian, ``1`` two-point), and the counter is the pair
``(p, s)`` of the global particle index and the step:

    (y0, y1) = threefry2x32(k_j, (p, s)),    z_{2j} <- y0,  z_{2j+1} <- y1.

Words become normals by the inverse error function as ``jax.random`` does
(23 mantissa bits -> uniform on a symmetric grid in (-1, 1) -> sqrt(2) erfinv).
One Threefry call per two normals -- the cost of ``jax.random.normal`` -- but
the keys are a handful of scalars and the counters are the particle index, so
the whole ensemble's noise of one step is one vectorised hash laid out as
``(noise_dim, particles)``, the layout the integrator keeps its state in.

Two-point noise (``stream = 1``, ``method="weak_euler"``): ``z = +-1`` with
probability 1/2, one bit per variable; mean 0, variance 1, odd moments 0 --
enough for weak order 1 of the Euler scheme (Kloeden & Platen, simplified weak
Euler, §14.1). Bits come in blocks of 32 steps: the words
``threefry2x32(k_j, (p, B))`` of block ``B = s // 32`` hold in bit ``s % 32``
the signs of variables ``2j`` and ``2j + 1`` at step ``s`` -- one Threefry call
per 64 signs instead of one per two normals.

Because nothing depends on how particles are chunked, blocked, sharded over
devices or processes, or on how the time loop is cut into pieces, a run gives
identical numbers whatever ``chunk_size``, ``block_size``, device count or
checkpoint/resume points. Limits: particle indices and steps are uint32
(< 2^32 each).

**Per-particle stream** (used by :mod:`sdesim.chains` and the zero-mass
integrator): particle key ``k_p = fold_in(key(seed), p)``; its normals at step
``s`` come from ``threefry2x32(k_p, (s, j))``. Functions :func:`particle_keys`,
:func:`step_normals`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.random import threefry_2x32

__all__ = ["particle_keys", "step_normals", "stream_keys", "normals", "rademacher_words", "rademacher_signs"]


def particle_keys(seed: int, start: int, count: int) -> jax.Array:
    """Raw Threefry key data ``(count, 2) uint32`` of particles ``start .. start+count-1``."""
    base = jax.random.key(seed)
    idx = jnp.arange(start, start + count, dtype=jnp.uint32)
    keys = jax.vmap(lambda i: jax.random.fold_in(base, i))(idx)
    return jax.random.key_data(keys)


def _bits(kd: jax.Array, step, n_words: int) -> jax.Array:
    """``n_words`` (even) uint32 words for one particle ``kd (2,)`` at ``step``."""
    half = n_words // 2
    s = jnp.full((half,), step, dtype=jnp.uint32)
    j = jnp.arange(half, dtype=jnp.uint32)
    return threefry_2x32(kd, jnp.concatenate([s, j]))


def _to_normal(bits: jax.Array, dtype) -> jax.Array:
    # 23 random mantissa bits -> uniform in [1, 2) -> open interval (-1, 1)
    f = jax.lax.bitcast_convert_type((bits >> 9) | jnp.uint32(0x3F800000), jnp.float32) - 1.0
    u = 2.0 * f - 1.0 + 2.0**-23  # in (-1, 1), symmetric grid
    return (jnp.sqrt(2.0) * jax.lax.erf_inv(u)).astype(dtype)


def step_normals(kd: jax.Array, step, noise_dim: int, dtype=jnp.float32) -> jax.Array:
    """Standard normals ``(noise_dim,)`` for one particle at one step."""
    n_words = noise_dim + (noise_dim % 2)
    return _to_normal(_bits(kd, step, n_words), dtype)[:noise_dim]


GAUSSIAN_STREAM = 0
RADEMACHER_STREAM = 1
RADEMACHER_BLOCK = 32
UINT32_LIMIT = 2**32


@functools.lru_cache(maxsize=64)
def stream_keys(seed: int, noise_dim: int, stream: int) -> np.ndarray:
    """Raw key data ``(ceil(noise_dim / 2), 2) uint32``: the keys ``k_j`` of the ensemble stream.

    Cached (it costs a few milliseconds of op-by-op dispatch); the array is read-only.
    """
    base = jax.random.fold_in(jax.random.key(seed), stream)
    j = jnp.arange((noise_dim + 1) // 2, dtype=jnp.uint32)
    k = np.asarray(jax.vmap(lambda i: jax.random.key_data(jax.random.fold_in(base, i)))(j))
    k.flags.writeable = False
    return k


def _pair_words(keys: jax.Array, pidx: jax.Array, counter) -> jax.Array:
    """Words ``(2 * n_pairs, m) uint32``: row ``2j`` / ``2j+1`` = ``y0`` / ``y1`` of key ``k_j``."""
    m = pidx.shape[0]
    cnt = jnp.concatenate([pidx, jnp.full((m,), counter, dtype=jnp.uint32)])
    w = jax.vmap(lambda k: threefry_2x32(k, cnt))(keys)  # (n_pairs, 2m) = [y0 | y1] per pair
    return w.reshape(2 * keys.shape[0], m)


def normals(keys: jax.Array, pidx: jax.Array, step, noise_dim: int, dtype=jnp.float32) -> jax.Array:
    """Standard normals ``(noise_dim, m)`` of particles ``pidx (m,)`` at ``step`` (ensemble stream)."""
    return _to_normal(_pair_words(keys, pidx, step), dtype)[:noise_dim]


def rademacher_words(keys: jax.Array, pidx: jax.Array, block) -> jax.Array:
    """Sign words ``(2 * n_pairs, m) uint32`` of the 32-step block ``block`` (two-point stream)."""
    return _pair_words(keys, pidx, block)


def rademacher_signs(words: jax.Array, step, noise_dim: int, dtype=jnp.float32) -> jax.Array:
    """Signs ``+-1`` ``(noise_dim, m)`` at ``step`` from its block's words."""
    shift = (jnp.asarray(step).astype(jnp.uint32) % RADEMACHER_BLOCK).astype(jnp.uint32)
    b = (words[:noise_dim] >> shift) & jnp.uint32(1)
    return 2.0 * b.astype(dtype) - 1.0
