"""Counter-based noise: the random numbers depend only on (seed, particle, step).

Randomness contract (pinned by golden-value tests):

* particle key  ``k_p = fold_in(key(seed), p)`` for the global particle index ``p``;
* the ``noise_dim`` standard normals of particle ``p`` at step ``s`` are made
  from ``threefry2x32(k_p, (s, j))`` for word pairs ``j = 0, 1, ...`` (one
  Threefry call per two normals, the same cost as ``jax.random.normal``),
  mapped to normals by the inverse error function as ``jax.random`` does.

Because nothing depends on how particles are chunked, on devices or on how the
time loop is cut into segments, a run gives identical numbers whatever
``chunk_size``, checkpoint/resume points or device count.

Two-point noise (``kind="rademacher"``): ``z = +-1`` with probability 1/2 each,
one bit per variable; mean 0, variance 1, all odd moments 0 -- enough for weak
order 1 of the Euler scheme (Kloeden & Platen, simplified weak Euler, §14.1).
The bits come in blocks of 32 steps: the words ``threefry2x32(k_p, (B, j))``
of block ``B = s // 32`` hold, in bit ``s % 32`` of word ``i``, the sign of
variable ``i`` at step ``s`` -- one Threefry call per 64 signs instead of one
per two normals.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.extend.random import threefry_2x32

__all__ = ["particle_keys", "step_normals", "step_noise"]


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


def step_noise(kd: jax.Array, step, noise_dim: int, dtype=jnp.float32, kind: str = "gaussian"):
    """Noise variables of one particle at one step: Gaussian or two-point (+-1)."""
    if kind == "gaussian":
        return step_normals(kd, step, noise_dim, dtype)
    if kind == "rademacher":
        n_words = (noise_dim + 63) // 64 * 2
        w = _bits(kd, step, n_words)
        pos = jnp.arange(noise_dim)
        b = (w[pos // 32] >> (pos % 32).astype(jnp.uint32)) & jnp.uint32(1)
        return (2.0 * b.astype(dtype) - 1.0).astype(dtype)
    raise ValueError(f"noise: expected 'gaussian' or 'rademacher', got {kind!r}")


RADEMACHER_BLOCK = 32


def rademacher_words(kd: jax.Array, block, noise_dim: int) -> jax.Array:
    """The ``noise_dim`` (rounded up to even) words of one particle for a 32-step block."""
    return _bits(kd, block, noise_dim + (noise_dim % 2))


def rademacher_from_words(words: jax.Array, step, noise_dim: int, dtype=jnp.float32) -> jax.Array:
    """Signs ``+-1`` of the ``noise_dim`` variables at ``step`` from the block's words."""
    shift = (jnp.asarray(step, jnp.uint32) % RADEMACHER_BLOCK).astype(jnp.uint32)
    b = (words[..., :noise_dim] >> shift) & jnp.uint32(1)
    return 2.0 * b.astype(dtype) - 1.0
