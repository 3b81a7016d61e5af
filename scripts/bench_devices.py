"""sdesim with one CPU device per core vs the hand-written lax.scan baseline, same process.

``import sdesim`` before JAX starts asks XLA for one CPU device per core
(``docs/performance.md``); this script measures what that gives on Example 19
against the single-device ``lax.scan`` Euler--Maruyama loop of
``bench_ensemble.py`` (which runs on device 0 of the same process) and against
sdesim forced onto one device.

    python scripts/bench_devices.py [--sizes 100000 1000000] [--steps 200]
"""

import sdesim  # first: sets the CPU device count before JAX starts

import argparse
import json
import time
from pathlib import Path

import jax

from sdesim.experiments.bench import make_problems, run_scan, timeit  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--blocks", type=int, nargs="*", default=[8192, 32768])
    args = ap.parse_args()
    spec = make_problems()["ex19"]
    p = spec["problem"]
    rows = []
    for n in args.sizes:
        kw = dict(beta_inv=1.0, n_particles=n, n_steps=args.steps, dt=0.01, seed=0)
        call, _ = run_scan(spec, n, args.steps)
        scan = n * args.steps / timeit(call, 2)
        row = dict(n=n, devices=len(jax.devices()), scan_ps=scan)
        for blk in args.blocks:
            for dev in (1, len(jax.devices())):
                f = lambda: sdesim.simulate(p, block_size=blk, devices=dev, **kw)  # noqa: E731
                row[f"sdesim_dev{dev}_blk{blk}"] = n * args.steps / timeit(f, 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
    out = Path(__file__).resolve().parent.parent / "benchmarks" / "devices_cpu.json"
    out.write_text(json.dumps(dict(jax=jax.__version__, time=time.strftime("%Y-%m-%d %H:%M"), rows=rows), indent=2))


if __name__ == "__main__":
    main()
