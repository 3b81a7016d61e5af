"""Counter-based noise: the random numbers depend only on (seed, particle, step).

Two streams live here.

**Ensemble stream** (what :func:`sdesim.simulate` uses; pinned by golden-value
tests). For a noise of ``noise_dim`` variables, word pair ``j = 0, 1, ...``
has its own key ``k_j = fold_in(fold_in(key(seed), stream), j)``
(``stream = 0`` Gaussian, ``1`` two-point), and the counter is the pair
``(p, s)`` of the global particle index and the step:

    (y0, y1) = threefry2x32(k_j, (p, s)),    z_{2j} <- y0,  z_{2j+1} <- y1.

One Threefry call per two float32 normals -- the cost of ``jax.random.normal``
-- but the keys are a handful of scalars and the counters are the particle
index, so the whole ensemble's noise of one step is one vectorised hash laid
out as ``(noise_dim, particles)``, the layout the integrator keeps its state in.
Float64 runs take a second, *low* word per normal from the counter
``(p, s + 2^31)`` (steps are ``< 2^31``, so the top bit of the step word is
free): ``(y0', y1') = threefry2x32(k_j, (p, s + 2^31))``, ``z_{2j} <- (y0, y0')``,
``z_{2j+1} <- (y1, y1')`` -- two Threefry calls per two float64 normals.

**Words to normals** (inverse CDF, as ``jax.random`` does). ``b`` random bits
-- ``b = 23`` in float32 (the top 23 bits of the word), ``b = 52`` in float64
(the 32 bits of the high word and the top 20 of the low word) -- form an
integer ``k`` uniform on ``{0, ..., 2^b - 1}``, and

    u = (2k + 1) 2^-b - 1   in (-1, 1),     z = sqrt(2) erfinv(u) = Phi^-1((2k + 1) / 2^(b+1)),

every step exact in floating point (``u`` is an odd multiple of ``2^-b`` below 1
in magnitude). So ``z`` is the normal quantile at the midpoint of the ``k``-th
of ``2^b`` cells of equal probability ``2^-b``: the grid is symmetric
(``k <-> 2^b - 1 - k`` gives ``z <-> -z``) and, for any threshold ``t``, the
tail rate ``P(|z| > t)`` equals the Gaussian ``2 Phi(-t)`` up to one cell on
each side, ``|error| <= 2^(1-b)``. The largest ``|z|`` is
``-Phi^-1(2^-(b+1))``, reached with probability ``2^(1-b)``:

* float32, ``b = 23``: ``|z| <= 5.2947``; no draw beyond 5.3 sigma, although a
  Gaussian exceeds it with probability ``1.2e-7`` -- acceptable at float32
  resolution, and this stream is pinned bit for bit;
* float64, ``b = 52``: ``|z| <= 8.2095`` (``2 Phi(-8.2095) = 2^-52``); all tail
  rates ``P(|z| > t)`` are exact to ``4.4e-16``, e.g. ``P(|z| > 6) = 1.97e-9``,
  ``P(|z| > 8) = 1.2e-15``.

The float64 high word is the float32 word, so a float64 normal refines the
float32 one of the same (seed, particle, step, variable): its ``u`` lies in the
float32 ``u``'s cell, ``|u64 - u32| < 2^-23``.

Two-point noise (``stream = 1``, ``method="weak_euler"``): ``z = +-1`` with
probability 1/2, one bit per variable; mean 0, variance 1, odd moments 0 --
enough for weak order 1 of the Euler scheme (Kloeden & Platen, simplified weak
Euler, §14.1). Bits come in blocks of 32 steps: the words
``threefry2x32(k_j, (p, B))`` of block ``B = s // 32`` hold in bit ``s % 32``
the signs of variables ``2j`` and ``2j + 1`` at step ``s`` -- one Threefry call
per 64 signs instead of one per two normals. The same in float32 and float64.

Because nothing depends on how particles are chunked, blocked, sharded over
devices or processes, or on how the time loop is cut into pieces, a run gives
identical numbers whatever ``chunk_size``, ``block_size``, device count or
checkpoint/resume points. Limits: particle indices are uint32 (< 2^32), steps
< 2^31.

**Per-particle stream** (used by :mod:`sdesim.chains` and the zero-mass
integrator): particle key ``k_p = fold_in(key(seed), p)``; its normals at step
``s`` come from ``threefry2x32(k_p, (s, j))``, ``j = 0 .. ceil(n / 2) - 1``
(normal ``i`` from word ``i`` of the concatenated ``[y0 | y1]``), and in
float64 their low words likewise from ``threefry2x32(k_p, (s, j + 2^31))``.
Functions :func:`particle_keys`, :func:`step_normals`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.random import threefry_2x32

__all__ = ["particle_keys", "step_normals", "stream_keys", "normals", "rademacher_words", "rademacher_signs",
           "pair_words", "words_to_normal", "words_to_normal64"]


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


LOW_WORDS = 2**31  #: counter offset of the float64 low words (top bit of a 32-bit counter word)


def words_to_normal(bits: jax.Array, dtype) -> jax.Array:
    """float32 normals from words (top 23 bits); the float32 stream, pinned bit for bit."""
    # 23 random mantissa bits -> uniform in [1, 2) -> open interval (-1, 1)
    f = jax.lax.bitcast_convert_type((bits >> 9) | jnp.uint32(0x3F800000), jnp.float32) - 1.0
    u = 2.0 * f - 1.0 + 2.0**-23  # in (-1, 1), symmetric grid
    return (jnp.sqrt(2.0) * jax.lax.erf_inv(u)).astype(dtype)


def words_to_normal64(hi: jax.Array, lo: jax.Array) -> jax.Array:
    """float64 normals from word pairs: 52 bits ``k = hi 2^20 + (lo >> 12)``, ``u = (2k + 1) 2^-52 - 1``.

    Both summands are exact in float64 (``hi 2^-31 - 1`` is a multiple of
    ``2^-31`` in [-1, 1); the low part an odd multiple of ``2^-52`` below
    ``2^-31``), and so is their sum (a multiple of ``2^-52`` below 1 in magnitude).
    """
    f64 = jnp.float64
    u = (hi.astype(f64) * 2.0**-31 - 1.0) + ((lo >> 12).astype(f64) * 2.0**-51 + 2.0**-52)
    return jnp.sqrt(jnp.asarray(2.0, f64)) * jax.lax.erf_inv(u)


def _is64(dtype) -> bool:
    return jnp.dtype(dtype) == jnp.dtype(jnp.float64)


def step_normals(kd: jax.Array, step, noise_dim: int, dtype=jnp.float32) -> jax.Array:
    """Standard normals ``(noise_dim,)`` for one particle at one step (float64: 52-bit uniforms)."""
    n_words = noise_dim + (noise_dim % 2)
    hi = _bits(kd, step, n_words)
    if not _is64(dtype):
        return words_to_normal(hi, dtype)[:noise_dim]
    half = n_words // 2
    s = jnp.full((half,), step, dtype=jnp.uint32)
    j = jnp.arange(half, dtype=jnp.uint32) + jnp.uint32(LOW_WORDS)
    lo = threefry_2x32(kd, jnp.concatenate([s, j]))
    return words_to_normal64(hi, lo)[:noise_dim]


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


def pair_words(keys: jax.Array, pidx: jax.Array, counter) -> jax.Array:
    """Words ``(2 * n_pairs, m) uint32``: row ``2j`` / ``2j+1`` = ``y0`` / ``y1`` of key ``k_j``."""
    m = pidx.shape[0]
    cnt = jnp.concatenate([pidx, jnp.full((m,), counter, dtype=jnp.uint32)])
    w = jax.vmap(lambda k: threefry_2x32(k, cnt))(keys)  # (n_pairs, 2m) = [y0 | y1] per pair
    return w.reshape(2 * keys.shape[0], m)


def normals(keys: jax.Array, pidx: jax.Array, step, noise_dim: int, dtype=jnp.float32) -> jax.Array:
    """Standard normals ``(noise_dim, m)`` of particles ``pidx (m,)`` at ``step < 2^31`` (ensemble stream).

    float64: 52-bit uniforms, the low words from the step counter ``step + 2^31``.
    """
    hi = pair_words(keys, pidx, step)
    if not _is64(dtype):
        return words_to_normal(hi, dtype)[:noise_dim]
    lo = pair_words(keys, pidx, jnp.asarray(step).astype(jnp.uint32) | jnp.uint32(LOW_WORDS))
    return words_to_normal64(hi[:noise_dim], lo[:noise_dim])


def rademacher_words(keys: jax.Array, pidx: jax.Array, block) -> jax.Array:
    """Sign words ``(2 * n_pairs, m) uint32`` of the 32-step block ``block`` (two-point stream)."""
    return pair_words(keys, pidx, block)


def rademacher_signs(words: jax.Array, step, noise_dim: int, dtype=jnp.float32) -> jax.Array:
    """Signs ``+-1`` ``(noise_dim, m)`` at ``step`` from its block's words."""
    shift = (jnp.asarray(step).astype(jnp.uint32) % RADEMACHER_BLOCK).astype(jnp.uint32)
    b = (words[:noise_dim] >> shift) & jnp.uint32(1)
    return 2.0 * b.astype(dtype) - 1.0
