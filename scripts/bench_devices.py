"""sdesim with one CPU device per core vs the hand-written lax.scan baseline, same process.

``sdesim.use_cpu_devices()`` before JAX starts asks XLA for one CPU device per
core (``docs/performance.md``); this script measures what that gives on Example 19
against the single-device ``lax.scan`` Euler--Maruyama loop of
``bench_ensemble.py`` (which runs on device 0 of the same process) and against
sdesim forced onto one device.

    python scripts/bench_devices.py [--sizes 100000 1000000] [--steps 200]
"""

import sdesim

sdesim.use_cpu_devices()  # first: the CPU device count is fixed when JAX starts

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import jax  # noqa: E402

from sdesim.experiments.bench import make_problems, run_scan, timeit  # noqa: E402
from sdesim.cli import atomic_write_text  # noqa: E402


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
    atomic_write_text(out, json.dumps(dict(jax=jax.__version__, time=time.strftime("%Y-%m-%d %H:%M"), rows=rows), indent=2))


if __name__ == "__main__":
    main()
