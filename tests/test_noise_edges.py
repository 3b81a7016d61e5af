"""float64 normals: 52-bit uniforms, tails to 8.2 sigma; the float32 stream unchanged.

Words -> normals (``sdesim.noise``): ``b`` bits ``k``, ``u = (2k + 1) 2^-b - 1``,
``z = sqrt(2) erfinv(u) = Phi^-1((2k + 1) / 2^(b+1))``; ``b = 23`` float32,
``b = 52`` float64 (``k = hi 2^20 + (lo >> 12)``). The map is checked
deterministically against ``scipy.special.ndtri``; the words' uniformity is
Threefry's, checked statistically below.
"""

import jax
import jax.numpy as jnp
import numpy as np
from scipy import special, stats

from sdesim.noise import (
    pair_words,
    words_to_normal,
    words_to_normal64,
    normals,
    particle_keys,
    step_normals,
    stream_keys,
)

U32 = 2**32 - 1


def _cell_quantile(k, b):
    """``Phi^-1((2k + 1) / 2^(b+1))`` in float64 (exact argument for ``b <= 52``)."""
    return special.ndtri((2.0 * np.asarray(k, np.float64) + 1.0) * 2.0 ** -(b + 1))


def test_float64_word_map_is_the_52_bit_cell_quantile_and_reaches_8_sigma():
    rng = np.random.default_rng(0)
    hi = np.concatenate([[0, 0, U32, U32, 2**31, 2**31 - 1], rng.integers(0, 2**32, 4000)]).astype(np.uint32)
    lo = np.concatenate([[0, 4095, U32, U32 - 4095, 0, U32], rng.integers(0, 2**32, 4000)]).astype(np.uint32)
    z = np.asarray(words_to_normal64(jnp.asarray(hi), jnp.asarray(lo)))
    assert z.dtype == np.float64
    k = hi.astype(np.float64) * 2.0**20 + (lo >> 12).astype(np.float64)  # < 2^52: exact
    # erfinv in float64 is accurate to ~1e-12 relative in the far tail (measured 1.2e-12)
    np.testing.assert_allclose(z, _cell_quantile(k, 52), rtol=1e-11, atol=1e-15)
    # the extreme cells: |z| = -Phi^-1(2^-53) = 8.2095, beyond 8 sigma; k -> 2^52 - 1 - k is z -> -z
    zmax = -special.ndtri(2.0**-53)
    assert zmax > 8.2
    np.testing.assert_allclose(z[:4], [-zmax, -zmax, zmax, zmax], rtol=1e-13)
    z_mirror = np.asarray(words_to_normal64(jnp.asarray(~hi), jnp.asarray(~lo)))
    np.testing.assert_array_equal(z_mirror, -z)
    # the float32 map tops out at 5.2947 (2^-23 resolution): the tail that float64 adds
    z32 = np.asarray(words_to_normal(jnp.asarray([0, U32], jnp.uint32), jnp.float32))
    np.testing.assert_allclose(z32, [-5.2947, 5.2947], rtol=1e-4)


def test_float64_normals_reach_beyond_6_sigma_at_pinned_counters():
    """P(|z| > 6) = 1.97e-9: these counters were found by scanning 2.6e8 (seed 0, step 0);
    float32 puts all of them in its last cell, -+5.2947."""
    p = jnp.array([187988189, 197555734, 259266220], jnp.uint32)
    z64 = np.asarray(normals(stream_keys(0, 2, 0), p, 0, 2, jnp.float64))
    np.testing.assert_allclose(z64, [[0.105713292103316, 0.23264185966745185, -6.094926976727571],
                                     [-6.016626375404663, -6.106639130639482, 0.04033300789541461]], rtol=1e-12)
    z32 = np.asarray(normals(stream_keys(0, 2, 0), p, 0, 2))
    np.testing.assert_allclose(z32[[1, 1, 0], [0, 1, 2]], -5.2947, rtol=1e-4)
    kd = particle_keys(0, 0, 1)[0]  # per-particle stream (chains, zero-mass integrator)
    for s, want in [(92144098, [6.005010053906297, 0.4823548414670426]),
                    (281051270, [6.540746311672254, 0.6158428286270974])]:
        np.testing.assert_allclose(np.asarray(step_normals(kd, s, 2, jnp.float64)), want, rtol=1e-12)
        assert abs(float(step_normals(kd, s, 2)[0]) - 5.2947) < 1e-4


def test_float64_normals_refine_the_float32_ones():
    """Same high word: u64 lies in u32's cell, |u64 - u32| < 2^-23 (u = erf(z / sqrt 2))."""
    m = 20000
    keys, pidx = stream_keys(5, 3, 0), jnp.arange(m, dtype=jnp.uint32)
    w = np.asarray(pair_words(keys, pidx, 9))[:3].astype(np.float64)
    u32 = (2.0 * np.floor(w / 2**9) + 1.0) * 2.0**-23 - 1.0
    z64 = np.asarray(normals(keys, pidx, 9, 3, jnp.float64))
    assert np.max(np.abs(special.erf(z64 / np.sqrt(2)) - u32)) < 2.0**-23 + 1e-13
    kd = particle_keys(5, 0, 2000)
    z32, z64 = (np.asarray(jax.jit(jax.vmap(lambda k: step_normals(k, 9, 3, dt)))(kd))
                for dt in (jnp.float32, jnp.float64))  # odd noise_dim: the last pair is cut
    assert z64.shape == (2000, 3) and z64.dtype == np.float64
    # |u64 - u32| < 2^-23 and du = 2 phi(z) dz: |z64 - z32| < 2^-23 / (2 phi(3.4)) = 4.8e-5 for
    # |z| < 3.4, plus the float32 erfinv's own error (~1e-6 relative)
    inner = np.abs(z64) < 3.4
    np.testing.assert_allclose(z32[inner], z64[inner], rtol=0, atol=6e-5)


def test_float64_normals_are_standard_normal_and_independent():
    m = 20000
    z = np.asarray(normals(stream_keys(1, 4, 0), jnp.arange(m, dtype=jnp.uint32), 17, 4, jnp.float64))
    kd = particle_keys(1, 0, m)
    zp = np.asarray(jax.jit(jax.vmap(lambda k: step_normals(k, 17, 3, jnp.float64)))(kd)).T
    rows = np.concatenate([z, zp])  # 7 rows
    for row in rows:
        assert stats.kstest(row, "norm").pvalue > 1e-3
    c = np.corrcoef(rows)
    assert np.max(np.abs(c[~np.eye(7, dtype=bool)])) < 4.5 / np.sqrt(m)  # 42 pairs, 4.5 sd


def test_float64_tail_rates_match_the_gaussian():
    """Counts of |z| > t over N = 2^24 draws are Poisson(N P), P = 2 Phi(-t) (the grid is exact to
    2^-51); |count - N P| < 5 sqrt(N P) for t = 4 (N P = 1062) and t = 4.5 (N P = 114)."""
    keys = jnp.asarray(stream_keys(3, 2, 0))
    m = 2**22
    ts = jnp.asarray([4.0, 4.5])

    @jax.jit
    def counts(c):
        pidx = (jnp.arange(m, dtype=jnp.uint32) + c * jnp.uint32(m)).astype(jnp.uint32)
        a = jnp.abs(normals(keys, pidx, 11, 2, jnp.float64)).reshape(-1)
        return jnp.sum(a[None, :] > ts[:, None], axis=1)

    n = sum(np.asarray(counts(jnp.uint32(c))) for c in range(2))
    lam = 2 * 2 * m * 2 * special.ndtr(-np.asarray(ts))
    assert np.all(np.abs(n - lam) < 5 * np.sqrt(lam)), (n, lam)


def test_float32_streams_are_unchanged_bit_for_bit():
    """The float32 words of both streams, pinned as raw bits (seed 0, step 5)."""
    z = np.asarray(normals(stream_keys(0, 3, 0), jnp.array([3, 4, 1000003], jnp.uint32), 5, 3))
    assert z.dtype == np.float32
    np.testing.assert_array_equal(z.view(np.uint32), [[1054750051, 3198041435, 1069826727],
                                                      [1059972969, 3202811726, 1062572675],
                                                      [1064948938, 1040858724, 1073453822]])
    zp = np.asarray(step_normals(particle_keys(0, 3, 1)[0], 5, 3))
    np.testing.assert_array_equal(zp.view(np.uint32), [1067635758, 1067303949, 3207893511])
