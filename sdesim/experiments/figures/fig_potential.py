"""Phi-hat from particles vs exact Phi vs the loss f.

Panels:
(a) anisotropic_double_well at its beta^-1 = 0.5 (state-dependent non-diagonal
    D(x) and Q(x); exact rho_ss = exp(-Phi/beta^-1)): Phi-hat from an
    Euler-Maruyama ensemble (histogram) with the exact Phi's contours;
(b) its normalised residuals (Phi-hat - Phi) / s.e. against N(0, 1);
(c) a true loss f with state-dependent noise D(x) at beta^-1 = 0.3: the
    x1-marginal potentials of f's Gibbs law exp(-f/beta^-1) (what SGD would
    sample with isotropic noise), of the exact FP stationary density, and from
    particles (with error bars): Phi != f;
(d) Phi - f for that problem (exact FP), with the minima of f and the modes.

Writes figures/potential.{png,pdf,json} (``--quick``: seconds, written as potential_quick.*).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import sdesim  # noqa: E402

from .._figio import parser, save_figure  # noqa: E402
A = 0.3


def toy_f(x):
    return (x[0] ** 2 - 1.0) ** 2 / 4.0 + x[1] ** 2 / 2.0


def toy_D(x):
    t = jnp.tanh(x[1])
    return jnp.array(
        [[1.0 + 0.6 * jnp.tanh(2.0 * (x[0] - 1.0)), 0.3 * t], [0.3 * t, 0.6 + 0.3 * x[0] ** 2 / (1.0 + x[0] ** 2)]]
    )


def bin_phi_exact(edges, beta_inv, order=6):
    """-beta^-1 log of the exact bin integrals of exp(-Phi/beta^-1) (Gauss-Legendre per bin)."""
    gl, gw = np.polynomial.legendre.leggauss(order)
    ex, ey = edges
    hx, hy = (ex[1] - ex[0]) / 2, (ey[1] - ey[0]) / 2
    X = (0.5 * (ex[1:] + ex[:-1]))[:, None, None, None] + hx * gl[None, :, None, None]
    Y = (0.5 * (ey[1:] + ey[:-1]))[None, None, :, None] + hy * gl[None, None, None, :]
    ph = (X**2 - 1) ** 2 / 4 + Y**2 / 2 + A * X * Y / 2
    return -beta_inv * np.log(np.einsum("iajb,a,b->ij", np.exp(-ph / beta_inv), gw, gw) * hx * hy)


def main(argv=None) -> int:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    quick = args.quick
    t0 = time.time()
    out = {"quick": quick}
    n = 4000 if quick else 20_000
    steps = 1200 if quick else 4000

    # (a, b) exact Phi
    b = 0.5
    adw = sdesim.problems.anisotropic_double_well(b)
    ens = sdesim.simulate(adw, beta_inv=b, n_particles=n, n_steps=steps, dt=0.005, seed=1, save_every=steps // 20,
                          burn_in=600)
    est = sdesim.estimate_potential(ens, beta_inv=b, bins=40 if quick else 48, box=(-2.4, 2.4), n_boot=50)
    phi_ex = bin_phi_exact(est.edges, b)
    bulk = est.counts >= 50
    d = (est.phi - phi_ex)[bulk]
    w = 1 / est.stderr[bulk] ** 2
    c = np.sum(d * w) / np.sum(w)
    z = (d - c) / est.stderr[bulk]
    x1 = np.sqrt(1 + A * A / 4)
    exact_modes = np.array([[x1, -A * x1 / 2], [-x1, A * x1 / 2]])
    out["exact_phi"] = {
        "problem": "anisotropic_double_well(0.5)", "beta_inv": b, "n_particles": n, "n_samples": est.n_samples,
        "errors": est.errors, "bins_in_bulk": int(bulk.sum()), "chi2_per_dof": float(np.mean(z**2)),
        "fraction_within_2se": float(np.mean(np.abs(z) < 2)), "modes": est.modes.tolist(),
        "mode_stderr": est.mode_stderr.tolist(), "exact_minima_phi": exact_modes.tolist(),
        # prominence rule: log rho_hat at the mode, its rise above the key saddle, and what it had to exceed
        "mode_log_density": est.mode_log_density.tolist(), "mode_prominence": est.mode_prominence.tolist(),
        "mode_prominence_threshold": est.mode_prominence_threshold.tolist(),
    }

    # (c, d) true loss with state-dependent D
    bt = 0.3
    toy = sdesim.problems.custom(jax.grad(toy_f), toy_D, 2)
    fp = sdesim.stationary_density_2d(toy, beta_inv=bt, box=(-2.4, 2.4), n=96 if quick else 192)
    ens_t = sdesim.simulate(toy, beta_inv=bt, n_particles=n, n_steps=steps, dt=0.004, seed=2, x0=fp.sample(n, seed=3),
                            save_every=steps // 20)
    est_t = sdesim.estimate_potential(ens_t.x[2:], beta_inv=bt, bins=48, box=(-2.4, 2.4), axes=[0], n_boot=50)
    X, Y = fp.grid
    fv = np.asarray(jax.vmap(toy_f)(jnp.asarray(np.stack([X.ravel(), Y.ravel()], -1)))).reshape(X.shape)
    marg = lambda r: -bt * np.log(np.maximum(r.sum(axis=1) * fp.dy, 1e-300))  # noqa: E731
    gibbs_f = np.exp(-(fv - fv.min()) / bt)
    m_f = marg(gibbs_f / (gibbs_f.sum() * fp.dx * fp.dy))
    m_phi = marg(fp.rho)
    # particle marginal vs FP marginal, chi^2 on the particle bins (FP marginal averaged over each bin)
    e = est_t.edges[0]
    pfp = np.array([fp.rho[(fp.x >= e[i]) & (fp.x < e[i + 1])].sum() for i in range(e.size - 1)]) * fp.dx * fp.dy
    phi_fp_bins = -bt * np.log(pfp / (e[1] - e[0]))
    ok = est_t.counts >= 50
    dd = (est_t.phi - phi_fp_bins)[ok]
    ww = 1 / est_t.stderr[ok] ** 2
    zz = (dd - np.sum(dd * ww) / np.sum(ww)) / est_t.stderr[ok]
    table_fp = fp.mode_table(min_density=1e-6)  # threshold: twice the estimated discretisation error
    modes_fp = table_fp.position
    out["phi_vs_f"] = {
        "problem": "f = (x1^2-1)^2/4 + x2^2/2, state-dependent D(x) (see script)", "beta_inv": bt,
        "argmin_f": [[1.0, 0.0], [-1.0, 0.0]], "fp_modes": modes_fp.tolist(),
        "fp_mode_log_density": table_fp.log_density.tolist(), "fp_mode_prominence": table_fp.prominence.tolist(),
        "fp_mode_prominence_threshold": table_fp.threshold.tolist(),
        "particle_marginal_vs_fp_chi2_per_dof": float(np.mean(zz**2)), "marginal_bins": int(ok.sum()),
        "tv_fp_vs_gibbs_f": float(0.5 * np.sum(np.abs(fp.rho - gibbs_f / (gibbs_f.sum() * fp.dx * fp.dy))) * fp.dx * fp.dy),
    }

    # ---------------------------------------------------------------- figure
    fig, ax = plt.subplots(2, 2, figsize=(11, 9))
    a = ax[0, 0]
    cx, cy = est.centers
    im = a.pcolormesh(cx, cy, np.ma.masked_invalid(est.phi).T, shading="nearest", cmap="viridis", vmax=3.0)
    Xe, Ye = np.meshgrid(cx, cy, indexing="ij")
    a.contour(Xe, Ye, phi_ex - np.nanmin(phi_ex), levels=np.arange(0.25, 3.0, 0.25), colors="w", linewidths=0.6)
    a.plot(*exact_modes.T, "w+", ms=10, label="argmin Φ (exact)")
    a.errorbar(est.modes[:, 0], est.modes[:, 1], xerr=est.mode_stderr[:, 0], yerr=est.mode_stderr[:, 1],
               fmt="r.", label="modes of ρ̂ ± s.e.")
    fig.colorbar(im, ax=a, label="Φ̂ (histogram)")
    a.set_title("anisotropic_double_well: Φ̂ from particles, exact Φ contours")
    a.legend(fontsize=8, loc="lower left")
    a = ax[0, 1]
    a.hist(z, bins=40, density=True, alpha=0.6, label=f"(Φ̂ − Φ)/s.e., {z.size} bins")
    g = np.linspace(-4, 4, 200)
    a.plot(g, np.exp(-g * g / 2) / np.sqrt(2 * np.pi), "k-", label="N(0, 1)")
    a.set_title(f"χ²/dof = {np.mean(z**2):.3f}, within 2 s.e.: {100 * np.mean(np.abs(z) < 2):.1f} %")
    a.legend(fontsize=8)
    a = ax[1, 0]
    a.plot(fp.x, m_f - m_f.min(), "k--", label="exp(−f/β⁻¹) (isotropic-noise Gibbs)")
    a.plot(fp.x, m_phi - m_phi.min(), "C0-", label="exact FP: Φ (SGD's potential)")
    c_t = np.sum(dd * ww) / np.sum(ww)  # fitted additive constant (Phi is defined up to one)
    a.errorbar(est_t.centers, est_t.phi - c_t - m_phi.min(), yerr=est_t.stderr, fmt=".", color="C3", ms=3,
               label="particles: Φ̂ ± s.e.")
    a.set_ylim(-0.05, 1.2)
    a.set_xlabel("x₁")
    a.set_ylabel("x₁-marginal potential")
    a.set_title(f"true loss f, state-dependent D(x), β⁻¹ = {bt}")
    a.legend(fontsize=8)
    a = ax[1, 1]
    diff = fp.phi - (fv - fv.min())
    diff = diff - np.nanmin(diff[fp.rho > 1e-3 * fp.rho.max()])
    diff = np.ma.masked_where(fp.rho < 1e-4 * fp.rho.max(), diff)
    im = a.pcolormesh(fp.x, fp.y, diff.T, shading="nearest", cmap="coolwarm")
    a.contour(X, Y, fv, levels=np.arange(0.05, 2.0, 0.2), colors="k", linewidths=0.5)
    a.plot([1, -1], [0, 0], "k+", ms=10, label="argmin f")
    a.plot(*modes_fp.T, "rx", ms=8, label="modes of ρ_ss (FP)")
    fig.colorbar(im, ax=a, label="Φ − f (shifted)")
    a.set_title("Φ ≠ f (contours: f)")
    a.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, "potential", out, quick=quick, t0=t0, out=args.out, argv=argv, script=__file__)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
