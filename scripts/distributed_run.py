"""Multi-host launch recipe for sdesim (jax.distributed), one process per host.

On every host, with the same arguments:

    export SDESIM_COORDINATOR=host0:12345   # address of process 0
    export SDESIM_NUM_PROCESSES=4           # number of hosts (processes)
    export SDESIM_PROCESS_ID=<0..3>         # this host's rank
    python scripts/distributed_run.py --n-particles 100000000 --n-steps 1000 --out runs/dist

Each process calls ``jax.distributed.initialize`` and then ``sdesim.simulate``,
which integrates the global particles ``[i n/P, (i+1) n/P)`` on that host's
devices (sharded over them) and writes ``part_<i>.npz``; because the noise of a
particle depends only on (seed, global index, step), the union equals a
single-process run bit for bit. Under SLURM, ``jax.distributed.initialize()``
needs no arguments (leave SDESIM_COORDINATOR unset).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

import sdesim
import jax


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-particles", type=int, default=10_000)
    ap.add_argument("--n-steps", type=int, default=100)
    ap.add_argument("--save-every", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lam", type=float, default=1.5)
    ap.add_argument("--out", default="runs/dist")
    args = ap.parse_args()
    coord = os.environ.get("SDESIM_COORDINATOR")
    if coord:
        jax.distributed.initialize(coordinator_address=coord,
                                   num_processes=int(os.environ["SDESIM_NUM_PROCESSES"]),
                                   process_id=int(os.environ["SDESIM_PROCESS_ID"]))
    else:
        jax.distributed.initialize()
    p = sdesim.problems.rotating_double_well(args.lam)
    e = sdesim.simulate(p, beta_inv=1.0, n_particles=args.n_particles, n_steps=args.n_steps, dt=0.01,
                        seed=args.seed, save_every=args.save_every)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / f"part_{jax.process_index()}.npz", x=e.x, offset=e.particle_offset)
    print(f"process {jax.process_index()}/{jax.process_count()}: particles "
          f"[{e.particle_offset}, {e.particle_offset + e.n_particles}) -> {out}")
    jax.distributed.shutdown()


if __name__ == "__main__":
    main()
