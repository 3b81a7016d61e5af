"""Benchmark: the 2D Fokker-Planck solve on a 256x256 grid and Phi-hat from 10^6 2D samples.

Protocol: one warm-up call (JIT compilation of the coefficient evaluation and
first-touch costs), then the median of ``--repeat`` timed calls. Peers in the
same run: ``numpy.histogram2d`` for the histogram part, ``scipy.stats.gaussian_kde``
evaluated on a 64x64 grid from 10^4 points (exact KDE, O(N * grid)) for scale.

Writes figures/potential_bench.json (``--quick``: 128^2 / 10^5, potential_bench_quick.json).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import time

import numpy as np
import scipy.stats

import sdesim
from sdesim.cli import atomic_write_text

OUT = pathlib.Path(__file__).resolve().parent.parent / "figures"


def timed(fn, repeat):
    fn()  # warm-up
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts), ts


def main(quick: bool, repeat: int):
    n_grid = 128 if quick else 256
    n_samp = 100_000 if quick else 1_000_000
    out = {"quick": quick, "cpu_count": os.cpu_count(), "platform": platform.platform(), "repeat": repeat}
    prob = sdesim.problems.anisotropic_double_well(0.5)

    def build():
        return sdesim.fokker_planck_2d(prob, beta_inv=0.5, box=(-3.5, 3.5), n=n_grid)

    t_build, _ = timed(build, repeat)
    op = build()
    t_solve, _ = timed(lambda: sdesim.stationary_density_2d(prob, beta_inv=0.5, box=None, n=None, operator=op), repeat)
    t_total, _ = timed(lambda: sdesim.stationary_density_2d(prob, beta_inv=0.5, box=(-3.5, 3.5), n=n_grid), repeat)
    out["fokker_planck"] = {"grid": n_grid, "unknowns": n_grid**2, "nonzeros": int(op.matrix.nnz),
                            "build_s": t_build, "solve_s": t_solve, "total_s": t_total}

    # grid convergence against the exact exp(-Phi/beta^-1) (total variation of the cell values)
    conv = []
    for ng in ([24, 48, 96] if quick else [32, 64, 128, 256]):
        r = sdesim.stationary_density_2d(prob, beta_inv=0.5, box=(-3.5, 3.5), n=ng)
        X, Y = r.grid
        lp = -((X**2 - 1) ** 2 / 4 + Y**2 / 2 + 0.3 * X * Y / 2) / 0.5
        ex = np.exp(lp - lp.max())
        ex /= ex.sum() * r.dx * r.dy
        conv.append({"n": ng, "tv_error": float(0.5 * np.abs(r.rho - ex).sum() * r.dx * r.dy)})
    for a, c in zip(conv[:-1], conv[1:]):
        c["observed_order"] = float(np.log2(a["tv_error"] / c["tv_error"]))
    out["grid_convergence_anisotropic_double_well"] = conv

    x = sdesim.stationary_density_2d(prob, beta_inv=0.5, box=(-3.5, 3.5), n=128).sample(n_samp, seed=0)
    t_hist, _ = timed(lambda: sdesim.estimate_potential(x, beta_inv=0.5, bins=64, box=(-3, 3), kde=False), repeat)
    t_full, _ = timed(lambda: sdesim.estimate_potential(x, beta_inv=0.5, bins=64, box=(-3, 3)), repeat)
    xs = x.reshape(100, -1, 2)
    t_boot, _ = timed(lambda: sdesim.estimate_potential(xs, beta_inv=0.5, bins=64, box=(-3, 3)), repeat)
    t_np, _ = timed(lambda: np.histogram2d(x[:, 0], x[:, 1], bins=64, range=[[-3, 3], [-3, 3]]), repeat)
    g = np.stack(np.meshgrid(np.linspace(-3, 3, 64), np.linspace(-3, 3, 64)), 0).reshape(2, -1)
    t_kde1e4, _ = timed(lambda: scipy.stats.gaussian_kde(x[:10_000].T)(g), 1)
    out["estimate_potential"] = {
        "n_samples": n_samp, "bins": [64, 64],
        "histogram_multinomial_s": t_hist,
        "histogram_plus_kde_plus_50_bootstrap_modes_s": t_full,
        "ensemble_input_particle_bootstrap_s": t_boot,
        "peer_numpy_histogram2d_s": t_np,
        "peer_scipy_gaussian_kde_1e4_points_64x64_s": t_kde1e4,
    }
    OUT.mkdir(exist_ok=True)
    atomic_write_text(OUT / ("potential_bench_quick.json" if quick else "potential_bench.json"), json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    main(a.quick, a.repeat)
