"""Which random-number generator pays on this backend? Gaussian noise only.

Times drawing ``(noise_dim, n)`` standard normals per step for ``--steps``
steps (accumulated so nothing is optimised away), median of ``--repeats``
warm calls, for:

* ``sdesim_stream`` -- sdesim's counter-based ensemble stream
  (:mod:`sdesim.noise`: ``threefry2x32(k_j, (particle, step))``), the one
  ``sdesim.simulate`` uses; bit-identical whatever chunking, devices, resume;
* ``jax_threefry2x32`` / ``jax_rbg`` / ``jax_unsafe_rbg`` --
  ``jax.random.normal(fold_in(key(seed, impl=...), step), (noise_dim, n))``.
  These depend on the array shape, so their numbers would change with
  ``n_particles``, chunking, blocking and device count -- the reproducibility
  price of using them inside an integrator;
* ``sdesim_two_point`` -- the signs of ``method="weak_euler"`` (one Threefry
  word per 32 steps and variable).

    python scripts/bench_prng.py                 # n = 1e5, 1e6
    python scripts/bench_prng.py --sizes 100000000 --steps 20   # on a GPU

Writes ``benchmarks/prng_<backend>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from sdesim import noise as _noise
from sdesim.cli import atomic_write_text

ROOT = Path(__file__).resolve().parent.parent


def _time(f, *args, repeats):
    comp = jax.jit(f).lower(*args).compile()
    comp(*args).block_until_ready()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        comp(*args).block_until_ready()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def variants(nd: int, n: int, steps: int):
    pidx = jnp.arange(n, dtype=jnp.uint32)
    keys = jnp.asarray(_noise.stream_keys(0, nd, _noise.GAUSSIAN_STREAM))
    rkeys = jnp.asarray(_noise.stream_keys(0, nd, _noise.RADEMACHER_STREAM))

    def loop(draw):
        def run(acc):
            return jax.lax.fori_loop(0, steps, lambda i, a: a + draw(i.astype(jnp.uint32)), acc)

        return run

    out = {"sdesim_stream": loop(lambda s: _noise.normals(keys, pidx, s, nd))}
    for impl in ("threefry2x32", "rbg", "unsafe_rbg"):
        k = jax.random.key(0, impl=impl)
        out[f"jax_{impl}"] = loop(lambda s, k=k: jax.random.normal(jax.random.fold_in(k, s), (nd, n), jnp.float32))

    def two_point(s):
        w = _noise.rademacher_words(rkeys, pidx, s // _noise.RADEMACHER_BLOCK)
        return _noise.rademacher_signs(w, s, nd)

    # regenerating the words every step overstates its cost 32x on the hash; the integrator
    # refreshes them once per 32 steps -- this is an upper bound
    out["sdesim_two_point_upper"] = loop(two_point)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    ap.add_argument("--noise-dims", type=int, nargs="*", default=[2, 64])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "benchmarks"))
    args = ap.parse_args(argv)
    rows = []
    for nd in args.noise_dims:
        for n in args.sizes:
            steps = max(2, args.steps // max(1, nd // 8))
            acc = jnp.zeros((nd, n), jnp.float32)
            res = {}
            for name, f in variants(nd, n, steps).items():
                sec = _time(f, acc, repeats=args.repeats)
                res[name] = n * steps / sec
                print(f"noise_dim={nd:3d} n={n:>10d} {name:24s} {res[name]:.3g} particle-steps/s", flush=True)
            rows.append(dict(noise_dim=nd, n=n, steps=steps, particle_steps_per_s=res))
    meta = dict(backend=jax.default_backend(), devices=[str(d) for d in jax.devices()], jax=jax.__version__,
                time=time.strftime("%Y-%m-%d %H:%M:%S"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / f"prng_{meta['backend']}.json", json.dumps(dict(meta=meta, rows=rows), indent=2))
    names = list(rows[0]["particle_steps_per_s"])
    lines = [f"Backend {meta['backend']}, jax {meta['jax']}, {meta['time']}: normals drawn, particle-steps/s "
             "(ratio to sdesim_stream in brackets).", "",
             "| noise_dim | particles | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for r in rows:
        base = r["particle_steps_per_s"]["sdesim_stream"]
        cells = [f"{v:.3g} ({v / base:.2f})" for v in r["particle_steps_per_s"].values()]
        lines.append(f"| {r['noise_dim']} | {r['n']:.0e} | " + " | ".join(cells) + " |")
    md = "\n".join(lines) + "\n"
    atomic_write_text(out / f"prng_{meta['backend']}.md", md)
    print(md)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
