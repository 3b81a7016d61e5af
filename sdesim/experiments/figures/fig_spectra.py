"""Trajectory spectra (Fig. 3-style analysis) on reference processes and Example 19.

Columns: Brownian motion (the null), an OU process (theta = 0.5), a noisy
rotation (period 1/f0), and Example 19 particle trajectories at lam = 0 and
lam = 1.5 (coordinates of all particles as the "weights").
Row 1: FFT power of the increments, mean ± std over coordinates, with the
white/Brownian level and its 99 % band. Row 2: autocorrelation of x_k with the
99 % white-noise band and the random-walk reference. Titles carry the p-values
of the low-frequency test and Fisher's periodicity test against Brownian
motion.

Writes ``figures/spectra.{png,pdf,json}`` (``--quick``: ``spectra_quick.*``).

    python scripts/fig_spectra.py          # ~1 minute
    python scripts/fig_spectra.py --quick
"""

from __future__ import annotations

import json
import math
import time

import numpy as np

import sdesim
from .._figio import parser, save_figure


def processes(q, rng):
    n = 4096 if q else 32768
    dt = 0.1
    d = 16 if q else 64
    out = {}
    out["Brownian motion"] = (np.cumsum(math.sqrt(dt) * rng.standard_normal((n, d)), axis=0), dt, {})
    theta = 0.5
    phi = math.exp(-theta * dt)
    x = np.empty((n, d))
    x[0] = rng.standard_normal(d)
    xi = math.sqrt(1 - phi**2) * rng.standard_normal((n, d))
    for k in range(1, n):
        x[k] = phi * x[k - 1] + xi[k]
    out["OU, theta = 0.5"] = (x, dt, {"theta": theta})
    f0 = 0.37
    t = np.arange(n) * dt
    ph = 2 * np.pi * f0 * t + 0.02 * np.cumsum(rng.standard_normal(n)) * math.sqrt(dt)
    rot = np.stack([np.cos(ph), np.sin(ph)], 1)
    x = np.concatenate([rot, np.zeros((n, 6))], 1) + np.cumsum(0.05 * math.sqrt(dt) * rng.standard_normal((n, 8)), 0)
    out[f"noisy rotation, f0 = {f0}"] = (x, dt, {"f0": f0})
    for lam, seed in ((0.0, 3), (1.5, 4)):
        p = sdesim.problems.rotating_double_well(lam)
        ens = sdesim.simulate(p, beta_inv=1.0, n_particles=16 if q else 32, n_steps=(20000 if q else 200000),
                              dt=0.005, save_every=10, burn_in=2000, seed=seed)
        x = ens.x.reshape(ens.x.shape[0], -1).astype(np.float64)
        out[f"Example 19, lam = {lam}"] = (x, ens.dt * ens.save_every, {"lam": lam})
    return out


def main(argv=None) -> int:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    q = args.quick
    t0 = time.time()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    procs = processes(q, rng)
    fig, axes = plt.subplots(2, len(procs), figsize=(4.2 * len(procs), 7.5))
    data = {"processes": {}}
    for col, (name, (x, dt, extra)) in enumerate(procs.items()):
        res = sdesim.trajectory_spectra(x, dt, max_lag=min(x.shape[0] // 4, int(round(20 / dt))), n_ref=16,
                                        f_cut=0.5)
        sp, ac, low, per = res["spectrum"], res["acf"], res["low_frequency"], res["periodicity"]
        ax = axes[0, col]
        f = sp.freq[1:]
        ax.loglog(f, sp.mean[1:], lw=0.6, label="mean over coords")
        ax.fill_between(f, np.maximum(sp.mean[1:] - sp.std[1:], 1e-12), sp.mean[1:] + sp.std[1:], alpha=0.2)
        ax.loglog(f, sp.white_level[1:], "k-", lw=1, label="white / Brownian level")
        ax.fill_between(f, sp.white_band[0, 1:], sp.white_band[1, 1:], color="k", alpha=0.15, label="99 % band")
        ax.axvline(low.f_peak, color="0.5", ls=":", lw=1)
        ax.set_ylim(0.1 * np.percentile(sp.mean[1:], 0.5), 10 * sp.mean[1:].max())
        ax.set_title(f"{name}\nlow-freq p = {low.p_value:.2g}, periodic p = {per.p_value:.2g}\n"
                     f"(peak f = {per.f_peak:.3f})", fontsize=9)
        ax.set_xlabel("frequency")
        if col == 0:
            ax.set_ylabel("FFT power of increments")
            ax.legend(fontsize=7)
        ax = axes[1, col]
        ax.plot(ac.lag_time, ac.mean, lw=1, label="mean ACF")
        ax.fill_between(ac.lag_time, ac.mean - ac.std, ac.mean + ac.std, alpha=0.2)
        ax.axhspan(-ac.white_band, ac.white_band, color="k", alpha=0.15, label="99 % white band")
        ax.plot(ac.lag_time, ac.brownian, "k--", lw=1, label="random walk (ref.)")
        if "theta" in extra:
            ax.plot(ac.lag_time, np.exp(-extra["theta"] * ac.lag_time), "r:", lw=1.5, label="exp(-theta lag)")
        ax.set_xlabel("lag (time)")
        if col == 0:
            ax.set_ylabel("autocorrelation of x_k")
            ax.legend(fontsize=7)
        data["processes"][name] = {
            "n_time": int(x.shape[0]), "dim": int(x.shape[1]), "dt": dt, **extra,
            "low_frequency": {"statistic": low.statistic, "p_value": low.p_value, "f_cut": low.f_peak,
                              "fraction_significant": low.fraction_significant},
            "periodicity": {"g": per.statistic, "p_value": per.p_value, "f_peak": per.f_peak,
                            "fraction_significant": per.fraction_significant},
            "white_level": float(sp.white_level[0]),
            "acf_lag1": float(ac.mean[1]), "white_band": ac.white_band,
        }
    fig.tight_layout()
    save_figure(fig, "spectra", data, quick=q, t0=t0, out=args.out, argv=argv, script=__file__, dpi=110)
    print(json.dumps(data, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
