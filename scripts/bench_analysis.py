"""Benchmark of the trajectory analysis tools (cycles, currents, spectra), with a peer in the same run.

Protocol: every timed call is made once first to compile (JAX) or warm caches,
then timed once with the results on the host (``trace_limit_cycle`` returns
NumPy arrays, so the timing includes the device-to-host copy).

1. ``trace_limit_cycle`` on 10^4 initial points of 2D fields (van der Pol,
   mu = 1; Example 19 drift at lam = 0.5), float64, rtol 1e-10. Peer: SciPy
   ``solve_ivp`` (DOP853, same tolerances) integrating the same transient for
   a sample of points, extrapolated per point (the peer does *less* work: no
   return map, no Floquet multipliers).
2. Spectra of a (10^5 x 10^3) float32 trajectory (random walk): increment
   spectrum, autocorrelation up to lag 1000 with the Brownian reference,
   low-frequency and periodicity tests. Peer: one ``numpy.fft.rfft`` of the
   whole increment array (the bare FFT the spectrum needs).

Writes ``benchmarks/analysis_<cpu|quick>.json`` and ``.md``.

    python scripts/bench_analysis.py           # ~1-2 minutes, ~2 GB RAM
    python scripts/bench_analysis.py --quick   # 10^3 points, (10^4 x 10^2)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import scipy.integrate

import sdesim
from sdesim.cli import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]


def vdp(x):
    return jnp.stack([x[1], (1 - x[0] ** 2) * x[1] - x[0]])


def vdp_np(t, x):
    return [x[1], (1 - x[0] ** 2) * x[1] - x[0]]


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def bench_trace(n_points, rows):
    rng = np.random.default_rng(0)
    x0 = rng.uniform(-3, 3, (n_points, 2))
    p = sdesim.problems.rotating_double_well(0.5)
    for name, field in (("van der Pol mu=1", vdp), ("Example 19 drift lam=0.5", p)):
        bs = min(n_points, 4096)
        _, t_compile = timed(lambda: sdesim.trace_limit_cycle(field, x0[:bs]))
        res, t = timed(lambda: sdesim.trace_limit_cycle(field, x0))
        rows.append({
            "task": f"trace_limit_cycle, {name}", "n": n_points, "seconds": t,
            "first_call_seconds_incl_compile": t_compile, "per_point_us": 1e6 * t / n_points,
            "summary": res.summary(),
        })
        print(rows[-1]["task"], f"{t:.2f} s", res.summary()["counts"])
    # peer: scipy, transient only (200 time units), a sample of points
    k = 20
    _, t = timed(lambda: [scipy.integrate.solve_ivp(vdp_np, (0, 200), xx, method="DOP853", rtol=1e-10, atol=1e-12)
                          for xx in x0[:k]])
    rows.append({"task": "peer: scipy solve_ivp DOP853, van der Pol transient only", "n": k, "seconds": t,
                 "per_point_us": 1e6 * t / k, "extrapolated_seconds_for_n": t / k * n_points})
    print(rows[-1]["task"], f"{t / k * n_points:.1f} s extrapolated")


def bench_spectra(n_time, dim, rows):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n_time, dim), dtype=np.float32)
    np.cumsum(x, axis=0, out=x)
    mb = x.nbytes / 2**20
    small = x[: min(n_time, 2000), : min(dim, 8)]
    sdesim.trajectory_spectra(small, max_lag=10, n_ref=1)  # warm-up
    for name, fn in (
        ("increment_spectrum", lambda: sdesim.increment_spectrum(x)),
        ("autocorrelation (max_lag 1000, 16 Brownian refs)", lambda: sdesim.autocorrelation(x, max_lag=1000, n_ref=16)),
        ("low_frequency_test", lambda: sdesim.low_frequency_test(x)),
        ("periodicity_test", lambda: sdesim.periodicity_test(x)),
    ):
        out, t = timed(fn)
        row = {"task": f"{name}, ({n_time} x {dim}) float32 ({mb:.0f} MB)", "seconds": t}
        if hasattr(out, "p_value"):
            row["p_value"] = out.p_value
        rows.append(row)
        print(row["task"], f"{t:.2f} s")
    _, t = timed(lambda: np.fft.rfft(np.diff(x, axis=0), axis=0))
    rows.append({"task": f"peer: numpy.fft.rfft of all increments ({n_time} x {dim})", "seconds": t})
    print(rows[-1]["task"], f"{t:.2f} s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "benchmarks"))
    args = ap.parse_args(argv)
    rows = []
    n_points = 1000 if args.quick else 10_000
    n_time, dim = (10_000, 100) if args.quick else (100_000, 1000)
    bench_trace(n_points, rows)
    bench_spectra(n_time, dim, rows)
    meta = {"jax": jax.__version__, "backend": jax.default_backend(), "cpu_count": os.cpu_count(),
            "platform": platform.platform(), "python": platform.python_version(), "quick": args.quick}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = "quick" if args.quick else jax.default_backend()
    atomic_write_text(out / f"analysis_{tag}.json", json.dumps({"meta": meta, "rows": rows}, indent=2, default=float))
    md = ["| task | seconds |", "|---|---|"] + [
        f"| {r['task']} | {r.get('extrapolated_seconds_for_n', r['seconds']):.2f}"
        + (f" (extrapolated from {r['n']} points)" if "extrapolated_seconds_for_n" in r else "") + " |"
        for r in rows]
    atomic_write_text(out / f"analysis_{tag}.md", "\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
