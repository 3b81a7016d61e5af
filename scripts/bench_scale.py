"""Memory-bounded scale runs: peak memory and throughput at size.

1. Example 19, 10^7 particles in 2D for 10^4 steps, statistics only
   (``keep="stats"``: running mean / covariance / histogram inside the loop),
   particles processed in host chunks so device memory stays bounded.
2. OU in d = 10^4 with low-rank + diagonal noise of rank 100, 10^3 particles:
   cost per step against the floor "draw r + d normals and apply two thin
   matrix products" measured in the same run.

    python scripts/bench_scale.py                 # full sizes (see the README for the time)
    python scripts/bench_scale.py --quick         # 10^5 particles, 10^2 steps

Writes ``benchmarks/scale_<backend>.json``. Peak memory is the process's
maximum resident set size (``resource.getrusage``), so it includes JAX itself.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np

import sdesim

sdesim.use_cpu_devices()  # one CPU device per core, before JAX starts

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from sdesim.cli import atomic_write_text  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB on Linux


def run_2d(n, steps, method, chunk):
    p = sdesim.problems.rotating_double_well(1.5)
    t0 = time.perf_counter()
    e = sdesim.simulate(p, beta_inv=1.0, n_particles=n, n_steps=steps, dt=0.01, seed=0, method=method,
                        save_every=steps // 10, keep="stats", stats_bins=50,
                        stats_box=[[-2.5, 2.5], [-3.0, 3.0]], chunk_size=chunk, progress=True)
    wall = time.perf_counter() - t0
    return dict(problem="ex19", n_particles=n, n_steps=steps, method=method, chunk_size=chunk, wall_s=wall,
                particle_steps_per_s=n * steps / e.run_s, compile_s=e.compile_s, n_diverged=e.n_diverged,
                mean=e.mean().tolist(), cov=e.cov().tolist(), peak_rss_gib=peak_rss_gib())


def run_lowrank(d, r, n, steps):
    rng = np.random.default_rng(0)
    U = rng.normal(size=(d, r)).astype(np.float32) / np.sqrt(r)
    s = np.full(d, 0.01, np.float32)
    noise = sdesim.diffusion.LowRankDiagonal(U, s)
    decay = jnp.asarray(np.linspace(0.5, 2.0, d), jnp.float32)
    p = sdesim.problems.custom(lambda x: decay * x, noise, d)
    kw = dict(beta_inv=0.01, n_particles=n, n_steps=steps, dt=0.01, seed=0)
    e = sdesim.simulate(p, **kw)  # compile
    e = sdesim.simulate(p, **kw)
    per_step = e.run_s / steps

    # the floor: r + d normals per particle and two thin products, in a lax.scan, in the
    # particle-last layout (d, n) that is cheapest here (and that sdesim uses)
    Uj, sj = jnp.asarray(U), jnp.sqrt(jnp.asarray(s))[:, None]

    @jax.jit
    def floor(x, key):
        def step(x, k):
            z = jax.random.normal(jax.random.fold_in(key, k), (r + d, n), jnp.float32)
            return x + Uj @ z[:r] + sj * z[r:], None

        return jax.lax.scan(step, x, jnp.arange(steps))[0]

    x0 = jnp.zeros((d, n), jnp.float32)
    floor(x0, jax.random.key(0)).block_until_ready()
    t0 = time.perf_counter()
    floor(x0, jax.random.key(0)).block_until_ready()
    floor_per_step = (time.perf_counter() - t0) / steps
    return dict(problem="ou_lowrank", d=d, rank=r, n_particles=n, n_steps=steps, sdesim_s_per_step=per_step,
                floor_s_per_step=floor_per_step, ratio_to_floor=per_step / floor_per_step,
                particle_steps_per_s=n * steps / e.run_s, compile_s=e.compile_s, peak_rss_gib=peak_rss_gib())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--method", default="weak_euler", choices=["euler", "weak_euler"])
    ap.add_argument("--out", default=str(ROOT / "benchmarks"))
    ap.add_argument("--tag", default="", help="suffix for the output file name")
    ap.add_argument("--skip-2d", action="store_true")
    ap.add_argument("--steps-2d", type=int, default=None, help="steps of the 1e7-particle run (default 1e4)")
    ap.add_argument("--skip-lowrank", action="store_true")
    ap.add_argument("--steps-lowrank", type=int, default=200, help="steps of the low-rank OU run")
    args = ap.parse_args()
    rows = []
    if not args.skip_2d:
        n, steps = (10**5, 100) if args.quick else (10**7, args.steps_2d or 10**4)
        rows.append(run_2d(n, steps, args.method, chunk=min(n, 2**21)))
        print(json.dumps(rows[-1]), flush=True)
    if not args.skip_lowrank:
        d, r, n, steps = (1000, 10, 100, 20) if args.quick else (10_000, 100, 1000, args.steps_lowrank)
        rows.append(run_lowrank(d, r, n, steps))
        print(json.dumps(rows[-1]), flush=True)
    meta = dict(backend=jax.default_backend(), devices=[str(x) for x in jax.devices()], jax=jax.__version__,
                time=time.strftime("%Y-%m-%d %H:%M:%S"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = jax.default_backend() + ("_quick" if args.quick else "") + (f"_{args.tag}" if args.tag else "")
    atomic_write_text(out / f"scale_{tag}.json", json.dumps(dict(meta=meta, rows=rows), indent=2))


if __name__ == "__main__":
    main()
