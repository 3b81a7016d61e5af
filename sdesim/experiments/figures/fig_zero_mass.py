"""The A-type SDE by its definition (zero-mass limit) and the naive-Itô contrast.

Panels:
(a) linear problem (constant D, Q): L_m(tau) = E[x(t) ∧ x(t+tau)] against m --
    closed form at every m, simulated points, the m -> 0 (A-type) value;
(b) anisotropic_double_well (state-dependent D(x), Q(x)): simulated L_m(tau)
    against m with error bars, the Itô-converted A-type value from the exact
    Fokker-Planck operator and from Euler-Maruyama particles, and the naive
    reading's value;
(c) exact at every m: m <|v|^2> / (2 beta^-1) = 1 and <x ∧ v> = 0 (no x-current);
(d) the naive-Itô reading has a different stationary density: x2-marginals.

Writes figures/zero_mass.{png,pdf,json} (``--quick``: seconds, written as zero_mass_quick.*).
"""

from __future__ import annotations

import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import sdesim  # noqa: E402

from .._figio import parser, save_figure  # noqa: E402
F = np.array([[1.0, -0.6], [0.4, 1.2]])
D = np.array([[1.0, 0.4], [0.4, 0.5]])


def wedge(C):
    return C[1, 0] - C[0, 1]


def run_mass(prob, b, m, x0, tau, seed, n_snap=40):
    h = m / 10
    n_steps = int(round(2 * tau / h))
    every = max(1, n_steps // n_snap)
    n_steps = every * (n_steps // every)
    ens = sdesim.simulate_zero_mass(prob, beta_inv=b, mass=m, n_particles=x0.shape[0], n_steps=n_steps, dt=h,
                                    seed=seed, x0=x0, save_every=every)
    lag = int(round(tau / (every * h)))
    return ens, sdesim.lag_wedge(ens.x, lag)


def main(argv=None) -> int:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    quick = args.quick
    t0 = time.time()
    out = {"quick": quick, "tau": 0.5, "beta_inv": 0.5}
    b, tau = 0.5, 0.5
    n = 2000 if quick else 40_000

    # (a) linear
    lin = sdesim.problems.linear(F, D)
    U, Q = sdesim.linear_decomposition(F, D)
    S = sdesim.ou_stationary_covariance(F, D, b)
    ms_curve = np.logspace(-3, 0, 40)
    Lc = [wedge(sdesim.linear_lag_covariance(U, D, Q, b, tau, m)) for m in ms_curve]
    L0_lin = wedge(sdesim.linear_lag_covariance(U, D, Q, b, tau))
    ms_lin = [0.1] if quick else [0.3, 0.1, 0.03]
    x0 = np.random.default_rng(0).multivariate_normal([0, 0], S, size=n)
    lin_pts = []
    for m in ms_lin:
        _, (L, se) = run_mass(lin, b, m, x0, tau, seed=1)
        lin_pts.append({"mass": m, "L": L, "stderr": se, "exact": wedge(sdesim.linear_lag_covariance(U, D, Q, b, tau, m))})
    out["linear"] = {"F": F.tolist(), "D": D.tolist(), "Q": Q.tolist(), "L0_atype_exact": L0_lin, "points": lin_pts}

    # (b) state-dependent
    prob = sdesim.problems.anisotropic_double_well(b)
    ng = 64 if quick else 128
    op = sdesim.fokker_planck_2d(prob, beta_inv=b, box=(-3.5, 3.5), n=ng, form="atype")
    ss = sdesim.stationary_density_2d(prob, beta_inv=b, box=None, n=None, operator=op)
    L0 = sdesim.fokker_planck_lag_wedge(op, ss.rho, tau)
    opn = sdesim.fokker_planck_2d(prob, beta_inv=b, box=(-3.5, 3.5), n=ng, form="atype_naive")
    ssn = sdesim.stationary_density_2d(prob, beta_inv=b, box=None, n=None, operator=opn)
    L0n = sdesim.fokker_planck_lag_wedge(opn, ssn.rho, tau)
    ms = [0.2, 0.1] if quick else [0.4, 0.2, 0.1, 0.05, 0.025]
    pts, exact_m = [], []
    for i, m in enumerate(ms):
        x0 = ss.sample(n, seed=20 + i)  # independent starts: independent error bars
        ens, (L, se) = run_mass(prob, b, m, x0, tau, seed=3 + i)
        pts.append({"mass": m, "L": L, "stderr": se})
        x = ens.x[-1].astype(np.float64)
        v = ens.v[-1].astype(np.float64)
        ke = m * np.sum(v**2, axis=1) / (2 * b)  # E = 1 (two dimensions x 1/2)
        w = (x[:, 0] * v[:, 1] - x[:, 1] * v[:, 0]) * np.sqrt(m / b)
        exact_m.append({"mass": m, "m_v2_over_2beta_inv": [ke.mean(), ke.std() / np.sqrt(n)],
                        "x_wedge_v_scaled": [w.mean(), w.std() / np.sqrt(n)],
                        "E_x1sq": [float(np.mean(x[:, 0] ** 2)), float(np.std(x[:, 0] ** 2) / np.sqrt(n))],
                        "E_x1sq_exact": ss.expect(ss.grid[0] ** 2)})
    # Itô-converted A-type by Euler-Maruyama particles (independent of the FP operator)
    x0 = ss.sample(n, seed=2)
    ens_a = sdesim.simulate(prob, beta_inv=b, n_particles=n, n_steps=200, dt=0.005, seed=9, x0=x0, form="atype", save_every=5)
    La = sdesim.lag_wedge(ens_a.x, int(round(tau / (5 * 0.005))))
    (Lb, sb), (La2, sa2) = (pts[-1]["L"], pts[-1]["stderr"]), (pts[-2]["L"], pts[-2]["stderr"])
    rich = (2 * Lb - La2, float(np.hypot(2 * sb, sa2)))
    # weighted linear fit L = L0 + c m over the masses <= 0.1 (O(m) approach)
    sm = [p for p in pts if p["mass"] <= 0.1] if len(pts) > 2 else pts
    Mx = np.array([[1.0, p["mass"]] for p in sm])
    wv = np.array([1 / p["stderr"] ** 2 for p in sm])
    yv = np.array([p["L"] for p in sm])
    cov = np.linalg.inv(Mx.T @ (wv[:, None] * Mx))
    fit = cov @ Mx.T @ (wv * yv)
    out["state_dependent"] = {
        "problem": "anisotropic_double_well(beta_inv=0.5)",
        "L0_atype_fokker_planck": L0, "L0_atype_naive_fokker_planck": L0n,
        "L0_atype_euler_particles": list(La), "fp_grid": ng,
        "underdamped": pts, "richardson_two_smallest_masses": list(rich),
        "linear_fit_small_m": {"L0": float(fit[0]), "L0_stderr": float(np.sqrt(cov[0, 0])), "slope": float(fit[1]),
                               "masses": [p["mass"] for p in sm]}, "exact_at_every_m": exact_m,
        "n_particles": n,
    }

    # (d) naive density
    cell = ss.dx * ss.dy
    tv = 0.5 * np.sum(np.abs(ss.rho - ssn.rho)) * cell
    ens_n = sdesim.simulate(prob, beta_inv=b, n_particles=n, n_steps=1000 if quick else 3000, dt=0.005, seed=10,
                            x0=ssn.sample(n, seed=11), form="atype_naive", save_every=100)
    xn = ens_n.x[-5:].reshape(-1, 2).astype(np.float64)
    out["naive"] = {"tv_exact_vs_naive_fp": tv, "E_x2_naive_fp": ssn.expect(ssn.grid[1]),
                    "E_x2_naive_particles": [float(xn[:, 1].mean()), float(xn[:, 1].std() / np.sqrt(n))],
                    "E_x2_exact": 0.0}

    # ---------------------------------------------------------------- figure
    fig, ax = plt.subplots(2, 2, figsize=(11, 8))
    a = ax[0, 0]
    a.semilogx(ms_curve, Lc, "k-", lw=1, label="closed form, every m")
    a.axhline(L0_lin, color="C0", ls="--", label="A-type (m → 0)")
    a.errorbar([p["mass"] for p in lin_pts], [p["L"] for p in lin_pts], yerr=[p["stderr"] for p in lin_pts],
               fmt="o", color="C3", capsize=3, label="underdamped particles")
    a.set_xlabel("mass m")
    a.set_ylabel("L(τ) = E[x(t) ∧ x(t+τ)]")
    a.set_title("linear OU, constant D, Q (τ = 0.5)")
    a.legend(fontsize=8)
    a = ax[0, 1]
    a.errorbar([p["mass"] for p in pts], [p["L"] for p in pts], yerr=[p["stderr"] for p in pts], fmt="o",
               color="C3", capsize=3, label="underdamped particles")
    mg = np.linspace(0, max(p["mass"] for p in sm), 20)
    a.plot(mg, fit[0] + fit[1] * mg, "C3:", lw=1,
           label=f"fit m ≤ {max(p['mass'] for p in sm)}: L₀ = {fit[0]:.3f} ± {np.sqrt(cov[0, 0]):.3f}")
    a.axhline(L0, color="C0", ls="--", label=f"A-type Itô, FP: {L0:.4f}")
    a.axhspan(La[0] - 2 * La[1], La[0] + 2 * La[1], color="C0", alpha=0.15, label="A-type Itô, EM particles ±2σ")
    a.axhline(L0n, color="C1", ls=":", label=f"naive reading, FP: {L0n:.4f}")
    a.set_xlim(-0.01, None)
    a.set_xlabel("mass m")
    a.set_ylabel("L(τ)")
    a.set_title("anisotropic_double_well: state-dependent D(x), Q(x)")
    a.legend(fontsize=8)
    a = ax[1, 0]
    mm = [e["mass"] for e in exact_m]
    a.errorbar(mm, [e["m_v2_over_2beta_inv"][0] for e in exact_m], yerr=[e["m_v2_over_2beta_inv"][1] for e in exact_m],
               fmt="o", capsize=3, label="m⟨|v|²⟩ / 2β⁻¹  (exact: 1)")
    a.errorbar(mm, [e["x_wedge_v_scaled"][0] for e in exact_m], yerr=[e["x_wedge_v_scaled"][1] for e in exact_m],
               fmt="s", capsize=3, label="⟨x ∧ v⟩ √(m/β⁻¹)  (exact: 0, no x-current)")
    a.axhline(1, color="gray", lw=0.5)
    a.axhline(0, color="gray", lw=0.5)
    a.set_xlabel("mass m")
    a.set_title("exact at every m: Gibbs law in (x, v)")
    a.legend(fontsize=8)
    a = ax[1, 1]
    dr = (ssn.rho - ss.rho).T
    lim = np.abs(dr).max()
    im = a.pcolormesh(ss.x, ss.y, dr, shading="nearest", cmap="coolwarm", vmin=-lim, vmax=lim)
    a.contour(ss.x, ss.y, ss.rho.T, levels=5, colors="k", linewidths=0.5)
    fig.colorbar(im, ax=a, label="ρ_naive − exp(−Φ/β⁻¹)/Z")
    a.set_xlim(-2.5, 2.5)
    a.set_ylim(-2.5, 2.5)
    ep = out["naive"]["E_x2_naive_particles"]
    a.set_title(f"naive Itô reading: TV = {tv:.3f}; E[x₂]: FP {out['naive']['E_x2_naive_fp']:.3f}, "
                f"particles {ep[0]:.3f}±{ep[1]:.3f}, exact 0", fontsize=9)
    fig.tight_layout()
    save_figure(fig, "zero_mass", out, quick=quick, t0=t0, out=args.out, argv=argv, script=__file__)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
