"""SGD vs SDE(D) vs Langevin on a 2D SGD-on-data toy with exact, state-dependent D(x).

Two-weight least squares on 40 synthetic examples (sdesim.experiments.toy_regression_2d: partner examples make
the per-example gradients symmetric at the minimum while their Hessians differ, so D(x)
has a slope at x*). At lr = 0.04, b = 1 (beta^-1 = 0.02) we run vmapped chains of
minibatch SGD (with replacement), the Itô SDE with the exact D(x) (Euler-Maruyama, dt =
lr) and SGLD (isotropic noise with power tr D(x*)/2), and compare stationary densities
(with the exact Fokker-Planck solution of the SDE), Phi_hat vs f, modes and currents.

Writes figures/sgd_vs_langevin_2d.{png,pdf,json}. ``--quick``: a small run for CI.
"""

from __future__ import annotations

import json
import time

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .. import _toy2d  # noqa: E402

from .._figio import parser, save_figure  # noqa: E402


def main(argv=None) -> int:
    args = parser(__doc__).parse_args(argv)
    t0 = time.time()
    jax.config.update("jax_enable_x64", True)  # (sdesim figures restores the flag afterwards)
    toy = _toy2d.toy_regression_2d()
    if args.quick:
        # no burn-in (chains start at x*; snapshots are ~2 relaxation times apart): 3 fewer compiled programs
        r = _toy2d.compare_2d(toy, n_chains=300, n_snapshots=10, n_boot=10, current_steps=40, fp_cells=40, burn_in=0)
    else:
        r = _toy2d.compare_2d(toy, n_chains=2000, n_snapshots=60, n_boot=30)
    runtime = time.time() - t0
    keys = ["tv_sgd_sde", "tv_sgd_langevin", "tv_sde_exact", "tv_sgd_exact", "tv_sgld_langevin_exact",
            "tv_exact_sde_langevin", "tv_floor", "mode_shift", "mode_shift_stderr", "mode_shift_exact_sde",
            "circulation_exact_sde", "lr", "batch", "beta_inv", "noise_power", "spacing", "burn_in"]
    out = {k: float(r[k]) for k in keys}
    out.update({
        "x_star": r["x_star"].tolist(),
        "mode": {k: v.tolist() for k, v in r["mode"].items()},
        "mode_stderr": {k: v.tolist() for k, v in r["mode_stderr"].items()},
        "mode_exact_sde": r["mode_exact_sde"].tolist(),
        "mean": {k: v.tolist() for k, v in r["mean"].items()},
        "circulation": {k: float(v) for k, v in r["circulation"].items()},
        "circulation_stderr": {k: float(v) for k, v in r["circulation_stderr"].items()},
        "n_samples": {k: int(e.samples().shape[0]) for k, e in r["ens"].items()},
        "n_chains": int(r["ens"]["sgd"].n_particles),
        "H": toy.H.tolist(), "D_star": toy.D_star.tolist(),
        "compute_s": runtime,
        "notes": "tv_floor = TV between the two halves of the SGD chains (sampling noise of a TV between two "
                 "histograms of this size); mode_shift = |mode_sgd - argmin f| from the KDE of "
                 "sdesim.estimate_potential, stderr by particle bootstrap; exact_sde = Fokker-Planck solution.",
    })

    ex, ey = r["edges"]
    cx, cy = 0.5 * (ex[1:] + ex[:-1]), 0.5 * (ey[1:] + ey[:-1])
    fig, ax = plt.subplots(2, 3, figsize=(14, 8.5))
    panels = [("SGD (b=1)", r["hist"]["sgd"]), ("SDE, exact D(x) (simulated)", r["hist"]["sde"]),
              ("SGLD / Langevin (simulated)", r["hist"]["sgld"])]
    vmax = max(p.max() for _, p in panels)
    for a, (title, p) in zip(ax[0], panels):
        a.pcolormesh(cx, cy, p.T, shading="auto", vmin=0, vmax=vmax, cmap="viridis")
        a.contour(cx, cy, r["exact_sde"].T, levels=6, colors="w", linewidths=0.6)
        a.plot(*r["x_star"], "r+", ms=12, mew=2, label="argmin f")
        a.set_title(title, fontsize=10)
        a.set_xlabel("w1")
        a.set_ylabel("w2")
    m, se = r["mode"]["sgd"], r["mode_stderr"]["sgd"]
    ax[0, 0].errorbar(m[0], m[1], xerr=2 * se[0], yerr=2 * se[1], fmt="o", color="orange", ms=4,
                      label="SGD mode (±2 se)")
    ax[0, 0].plot(*r["mode_exact_sde"], "x", color="w", ms=8, label="SDE mode (exact FP)")
    ax[0, 0].legend(fontsize=7, loc="lower right")
    ax[0, 2].text(0.02, 0.95, "white: exact SDE(D) contours", color="w", transform=ax[0, 2].transAxes, fontsize=8,
                  va="top")
    # Phi_hat vs f (scaled so that Langevin lies on the diagonal: Phi = f / c)
    a = ax[1, 0]
    X, Y = np.meshgrid(cx, cy, indexing="ij")
    fv = toy.f(X, Y)
    fv = fv - fv.min()
    c = r["noise_power"]
    for name, col in (("sgd", "C0"), ("sde", "C2"), ("sgld", "C3")):
        pe = r["phi"][name]
        ok = np.isfinite(pe.phi) & (pe.counts >= 30)
        a.plot(fv[ok], c * (pe.phi[ok] - np.nanmin(pe.phi[ok])), ".", ms=2, color=col, alpha=0.5, label=name.upper())
    lim = np.nanmax(fv[np.isfinite(r["phi"]["sgld"].phi)]) if np.any(np.isfinite(r["phi"]["sgld"].phi)) else 1
    a.plot([0, lim], [0, lim], "k--", lw=0.8, label="Phi = f / c (Langevin)")
    a.set_xlabel("f - min f")
    a.set_ylabel("c * Phi_hat")
    a.set_title("Phi_hat vs f (Lemma 6: equal only for isotropic D)", fontsize=10)
    a.legend(fontsize=7, markerscale=4)
    # marginals along w1 and w2
    a = ax[1, 1]
    for name, col in (("sgd", "C0"), ("sde", "C2"), ("sgld", "C3")):
        a.plot(cx, r["hist"][name].sum(1), color=col, label=name.upper())
    a.plot(cx, r["exact_sde"].sum(1), "k--", lw=0.8, label="SDE exact (FP)")
    a.plot(cx, r["langevin"].sum(1), "k:", lw=0.8, label="Langevin exact")
    a.axvline(r["x_star"][0], color="r", lw=0.6)
    a.set_xlabel("w1")
    a.set_title(f"marginal of w1;  TV(SGD,SDE)={out['tv_sgd_sde']:.3f}, TV(SGD,Lang.)={out['tv_sgd_langevin']:.3f}",
                fontsize=9)
    a.legend(fontsize=7)
    # exact current of the SDE
    a = ax[1, 2]
    st = r["fp"]
    sub = max(1, st.x.size // 20)
    Xs, Ys = np.meshgrid(st.x[::sub], st.y[::sub], indexing="ij")
    J = st.current[::sub, ::sub].copy()
    J[st.rho[::sub, ::sub] < 0.05 * st.rho.max()] = np.nan  # the solve's round-off dominates in the tails
    a.contourf(st.x, st.y, st.rho.T, levels=12, cmap="Greys")
    a.quiver(Xs, Ys, J[..., 0], J[..., 1], color="C0")
    a.set_xlim(r["x_star"][0] - 4 * np.sqrt(r["ou_cov"][0, 0]), r["x_star"][0] + 4 * np.sqrt(r["ou_cov"][0, 0]))
    a.set_ylim(r["x_star"][1] - 4 * np.sqrt(r["ou_cov"][1, 1]), r["x_star"][1] + 4 * np.sqrt(r["ou_cov"][1, 1]))
    a.set_title("stationary current J of the SDE (exact FP)\n"
                f"circulation: exact {out['circulation_exact_sde']:.2e}, "
                f"SGD {out['circulation']['sgd']:.1e}±{out['circulation_stderr']['sgd']:.1e}", fontsize=9)
    a.set_xlabel("w1")
    a.set_ylabel("w2")
    fig.tight_layout()
    save_figure(fig, "sgd_vs_langevin_2d", out, quick=args.quick, t0=t0, out=args.out, argv=argv, script=__file__,
                dpi=120)
    print(json.dumps({k: out[k] for k in keys}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
