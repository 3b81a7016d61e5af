"""Benchmark: per-example gradients and the diffusion-matrix spectrum (sdesim.nn).

Protocol (DESIGN/STYLE "benchmarks as scripts with a fixed protocol and a
peer in the same run"): every timed function is called once to compile, then
``--repeats`` times with ``block_until_ready``; we report the best (minimum)
wall time, the statistic least disturbed by other processes on a shared
machine. Data: all 1 797 sklearn 8x8 digits, float32 models.

Peers, in the same run and on the same inputs:

* per-example gradients -- ``sdesim.nn.per_example_grads`` (per-example
  PyTree gradients concatenated into rows, vmapped; chunked by ``lax.map``
  when ``N > chunk_size``) vs the plain baseline
  ``jit(vmap(grad(loss)))`` over the parameter PyTree followed by a vmapped
  ravel to the same ``(N, d)`` matrix;
* spectrum -- ``diffusion_spectrum`` on the Gram path (``N x N``) vs, with
  ``--dense-peer``, ``numpy.linalg.eigvalsh`` of the dense ``d x d`` matrix
  (small-fc only: for small-lenet, d = 10 906, that is ~1e12 flops).

    python scripts/bench_nn.py [--repeats 5] [--dense-peer] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

import sdesim.nn as nn
from sdesim.cli import atomic_write_text


def timeit(fn, repeats):
    jax.block_until_ready(fn())  # compile / warm up
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        ts.append(time.perf_counter() - t0)
    return min(ts)


def baseline_grads(model):
    """Plain vmap-of-grad over the parameter PyTree, then ravel each row."""
    params, static = eqx.partition(model, nn.trainable(model))

    def loss(p, xk, yk):
        logits = eqx.combine(p, static)(xk[None])
        return nn.cross_entropy(logits, yk[None])[0]

    @jax.jit
    def f(p, x, y):
        g = jax.vmap(jax.grad(loss), in_axes=(None, 0, 0))(p, x, y)
        return jax.vmap(lambda gi: ravel_pytree(gi)[0])(g)

    return lambda x, y: f(params, x, y)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dense-peer", action="store_true", help="also time eigvalsh of the dense d x d D")
    ap.add_argument("--json", default=None, help="write the numbers here")
    args = ap.parse_args(argv)

    data = nn.load_digits(val_fraction=0.0)
    x = jnp.asarray(data.x_train)
    y = jnp.asarray(data.y_train)
    N = x.shape[0]
    rows = []
    print(f"devices: {jax.devices()}, load average {__import__('os').getloadavg()[0]:.1f}, N = {N} digits, repeats = {args.repeats} (best of)")
    for name in ("small-fc", "small-lenet"):
        model = nn.make_model(name, jax.random.PRNGKey(0), image_shape=data.image_shape, n_classes=10)
        d = nn.n_weights(model)
        base = baseline_grads(model)
        t_base = timeit(lambda: base(x, y), args.repeats)
        res = {"model": name, "d": d, "N": N, "baseline_vmap_grad_s": t_base}
        for chunk in (256, 1024, 2048):
            res[f"ours_chunk{chunk}_s"] = timeit(
                lambda: nn.per_example_grads(model, x, y, chunk_size=chunk), args.repeats)
        G_ours = np.asarray(nn.per_example_grads(model, x, y))
        G_base = np.asarray(base(x, y))
        res["max_abs_diff_vs_baseline"] = float(np.max(np.abs(G_ours - G_base)))
        res["spectrum_gram_s"] = timeit(lambda: nn.diffusion_spectrum(G_ours, top_k=0).eigvals, args.repeats)
        res["spectrum_end_to_end_s"] = timeit(
            lambda: nn.diffusion_spectrum(model, x, y, top_k=0).eigvals, args.repeats)
        s = nn.diffusion_spectrum(G_ours, top_k=0)
        res.update(rank=s.rank, rank_percent=100 * s.rank_fraction, eig_mean=s.mean, eig_std=s.std)
        if args.dense_peer and d <= 6000:  # d x d float64 eigvalsh: O(d^3), minutes beyond that
            def dense():
                D = nn.diffusion_matrix(G_ours)
                return np.linalg.eigvalsh(D)

            t0 = time.perf_counter()
            lam = dense()[::-1]
            res["spectrum_dense_dxd_s"] = time.perf_counter() - t0
            res["dense_vs_gram_max_rel_diff_top100"] = float(
                np.max(np.abs(lam[:100] - s.eigvals[:100]) / s.eigvals[:100]))
        res["speedup_default_chunk2048_vs_baseline"] = t_base / res["ours_chunk2048_s"]
        res["speedup_chunk1024_vs_baseline"] = t_base / res["ours_chunk1024_s"]
        rows.append(res)
        print(f"\n{name}: d = {d}")
        print(f"  per-example grads  baseline vmap(grad) {t_base:7.3f} s")
        for c in (256, 1024, 2048):
            print(f"                     ours chunk={c:<5d}   {res[f'ours_chunk{c}_s']:7.3f} s")
        print(f"  speed-up vs baseline: default chunk 2048 (one vmap here) "
              f"{res['speedup_default_chunk2048_vs_baseline']:.2f}x, chunk 1024 (two chunks) "
              f"{res['speedup_chunk1024_vs_baseline']:.2f}x")
        print(f"  |G_ours - G_base|_max = {res['max_abs_diff_vs_baseline']:.2e}")
        print(f"  spectrum (Gram N x N) {res['spectrum_gram_s']:7.3f} s;  end to end {res['spectrum_end_to_end_s']:7.3f} s")
        if "spectrum_dense_dxd_s" in res:
            print(f"  spectrum (dense d x d eigvalsh) {res['spectrum_dense_dxd_s']:7.3f} s "
                  f"(top-100 rel diff {res['dense_vs_gram_max_rel_diff_top100']:.1e})")
        print(f"  rank {s.rank} ({100 * s.rank_fraction:.2f} % of d), eig {s.mean:.3g} +- {s.std:.3g} (untrained)")
    if args.json:
        atomic_write_text(args.json, json.dumps({"jax": jax.__version__, "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
