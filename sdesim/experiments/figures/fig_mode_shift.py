"""Phi != f, quantified: the most likely location of SGD moves away from the minimum of f linearly in beta^-1.

Two problems (Theorem 22, Remark 26; docs/paper.md):

* "toy": a true loss ``f = (x1^2 - 1)^2/4 + x2^2/2`` with state-dependent,
  non-diagonal noise ``D(x)`` (``div D = (1.5, 0)`` at the minimum (1, 0)).
  SGD at temperature beta^-1 (fixed f, fixed D) has stationary density
  ``exp(-Phi_beta / beta^-1)``; its mode in the right well is measured from the
  exact 2D Fokker-Planck solution and from particles (KDE mode +- bootstrap
  error) and compared with the minimum of f.
* ``anisotropic_double_well`` built at beta_ref^-1 = 0.5 (fixed f): the FP mode
  vs beta^-1 (-> the zero of grad f as beta^-1 -> 0, = argmin Phi at 0.5), and
  the other reading -- Phi fixed, f_beta built at each beta^-1 -- where the
  zero of grad f_beta moves from argmin Phi linearly to first order.

Writes figures/mode_shift.{png,pdf,json} (``--quick``: seconds, written as mode_shift_quick.*).
"""

from __future__ import annotations

import time

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import scipy.optimize  # noqa: E402

import sdesim  # noqa: E402

from .._figio import parser, save_figure  # noqa: E402


def toy_f(x):
    return (x[0] ** 2 - 1.0) ** 2 / 4.0 + x[1] ** 2 / 2.0


def toy_D(x):
    t = jnp.tanh(x[1])
    return jnp.array(
        [[1.0 + 0.6 * jnp.tanh(2.0 * (x[0] - 1.0)), 0.3 * t], [0.3 * t, 0.6 + 0.3 * x[0] ** 2 / (1.0 + x[0] ** 2)]]
    )


@eqx.filter_jit
def _value(fn, z):
    return fn(z)


@eqx.filter_jit
def _jacobian(fn, z):
    return jax.jacfwd(fn)(z)


def root(fn, x0):
    """Zero of ``fn`` (a problem's bound method: one compiled program for every beta^-1) near ``x0``."""
    sol = scipy.optimize.root(
        lambda z: np.asarray(_value(fn, jnp.asarray(z)), dtype=float), x0,
        jac=lambda z: np.asarray(_jacobian(fn, jnp.asarray(z)), dtype=float), tol=1e-13,
    )
    return sol.x


def fp_mode(prob, beta_inv, near, n, box=(-2.5, 2.5), radius=0.3):
    """The exact FP mode within ``radius`` of ``near``: (position, prominence, threshold), or None.

    Modes are the peaks of ``log rho`` whose prominence (log-density units)
    exceeds the threshold set by the discretisation error, estimated from the
    solve on the grid twice as coarse (``StationaryDensity2D.mode_table``).
    None: no such mode, i.e. this grid does not resolve that well at this
    temperature (e.g. its density is below the scheme's negative lobes).
    """
    res = sdesim.stationary_density_2d(prob, beta_inv=beta_inv, box=box, n=n)
    tab = res.mode_table(min_density=1e-300)
    dist = np.linalg.norm(tab.position - near, axis=1)
    if not np.any(dist < radius):
        return None
    j = int(np.argmin(dist))
    return tab.position[j], float(tab.prominence[j]), float(tab.threshold[j])


def resolved(prob, betas, near, n):
    """``fp_mode`` at each beta^-1: (betas with a resolved mode, their results, betas without)."""
    found = [fp_mode(prob, b, near, n) for b in betas]
    keep = [i for i, f in enumerate(found) if f is not None]
    return [betas[i] for i in keep], [found[i] for i in keep], [b for b, f in zip(betas, found) if f is None]


def main(argv=None) -> int:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    quick = args.quick
    t0 = time.time()
    jax.config.update("jax_enable_x64", True)  # roots and FP modes in float64 (sdesim figures restores the flag)
    out = {"quick": quick}
    n_grid = 128 if quick else 256

    # ---------------------------------------------------------------- toy
    toy = sdesim.problems.custom(jax.grad(toy_f), toy_D, 2)
    x_f = np.array([1.0, 0.0])
    betas_try = [0.075, 0.1, 0.2, 0.3] if quick else [0.0125, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3]
    betas_fp, found, unresolved = resolved(toy, betas_try, x_f, n_grid)
    modes = np.array([f[0] for f in found])
    shift = modes[:, 0] - x_f[0]
    B = np.asarray(betas_fp)
    small = B <= 0.1
    # shift = s1 beta^-1 + s2 beta^-2 (through the origin: the mode -> min f as beta^-1 -> 0)
    coef, *_ = np.linalg.lstsq(np.stack([B, B**2], -1), shift, rcond=None)
    lin, *_ = np.linalg.lstsq(B[small, None], shift[small], rcond=None)
    out["toy"] = {
        "beta_inv": betas_fp,
        "beta_inv_not_resolved_on_grid": unresolved,  # no right-well mode above the discretisation error
        "fp_mode": modes.tolist(),
        "fp_mode_prominence": [f[1] for f in found],
        "fp_mode_prominence_threshold": [f[2] for f in found],
        "fp_shift_x1": shift.tolist(),
        "fit_shift_equals_s1_b_plus_s2_b2": {"s1": float(coef[0]), "s2": float(coef[1])},
        "linear_fit_slope_beta_inv_le_0.1": float(lin[0]),
        "max_rel_residual_linear_fit_small": float(np.max(np.abs(shift[small] - lin[0] * B[small]) / np.abs(shift[small]))),
        "fp_grid": n_grid,
    }

    betas_p = [0.1] if quick else [0.05, 0.1, 0.2]
    n_part = 4000 if quick else 40_000
    part = []
    for b in betas_p:
        ens = sdesim.simulate(toy, beta_inv=b, n_particles=n_part, n_steps=1500, dt=0.004, seed=7, x0=x_f, save_every=150)
        est = sdesim.estimate_potential(ens.x[3:], beta_inv=b, bins=48, box=((0.3, 1.7), (-0.7, 0.7)), n_boot=50)
        j = np.argmin(np.sum((est.modes - x_f) ** 2, axis=1))
        part.append({"beta_inv": b, "mode": est.modes[j].tolist(), "stderr": est.mode_stderr[j].tolist(),
                     "prominence": float(est.mode_prominence[j]),
                     "prominence_threshold": float(est.mode_prominence_threshold[j]),
                     "bandwidth": est.bandwidth.tolist(), "n_samples": est.n_samples})
    out["toy"]["particles"] = part

    # ---------------------------------------------------------------- anisotropic_double_well
    adw = sdesim.problems.anisotropic_double_well(0.5)
    z_f = root(adw.grad_f, [1.0, -0.15])
    z_phi = root(adw.grad_phi, [1.0, -0.15])
    betas_a = [0.05, 0.1, 0.2, 0.5] if quick else [0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5]
    betas_a, afound, a_unresolved = resolved(adw, betas_a, z_f, n_grid)
    amodes = np.array([f[0] for f in afound])
    # the other reading: Phi fixed, f built at each beta^-1: zero of grad f_beta - argmin Phi
    fz = np.array([root(sdesim.problems.anisotropic_double_well(b).grad_f, z_phi) for b in betas_a])
    out["anisotropic"] = {
        "zero_grad_f_at_ref_0.5": z_f.tolist(),
        "argmin_phi": z_phi.tolist(),
        "beta_inv": betas_a,
        "beta_inv_not_resolved_on_grid": a_unresolved,
        "fp_mode_fixed_f": amodes.tolist(),
        "fp_mode_prominence": [f[1] for f in afound],
        "fp_mode_prominence_threshold": [f[2] for f in afound],
        "fp_mode_minus_zero_grad_f": (amodes - z_f).tolist(),
        "fp_mode_at_0.5_minus_argmin_phi": (amodes[betas_a.index(0.5)] - z_phi).tolist(),
        "zero_grad_f_beta_minus_argmin_phi": (fz - z_phi).tolist(),
    }

    # ---------------------------------------------------------------- figure
    fig, ax = plt.subplots(1, 2, figsize=(11, 4.2))
    a = ax[0]
    bb = np.linspace(0, max(betas_fp), 100)
    a.plot(B, shift, "o-", label="exact FP mode (right well)")
    a.plot(bb, coef[0] * bb + coef[1] * bb**2, "k:", lw=1, label=f"fit {coef[0]:.3f} β⁻¹ + {coef[1]:.3f} β⁻²")
    a.plot(bb, lin[0] * bb, "C2--", lw=1, label=f"linear, slope {lin[0]:.3f}")
    pb = [p["beta_inv"] for p in part]
    a.errorbar(pb, [p["mode"][0] - 1.0 for p in part], yerr=[p["stderr"][0] for p in part], fmt="s", color="C3",
               capsize=3, label="particles: KDE mode ± s.e.")
    a.axhline(0, color="gray", lw=0.5)
    a.set_xlabel("β⁻¹ = lr / 2b")
    a.set_ylabel("x₁ of most likely location − argmin f")
    a.set_title("true loss f, state-dependent D(x)")
    a.legend(fontsize=8)
    a = ax[1]
    Ba = np.asarray(betas_a)
    a.plot(Ba, np.linalg.norm(amodes - z_f, axis=1), "o-", label="|FP mode − zero of ∇f| (f fixed)")
    a.plot(Ba, np.linalg.norm(fz - z_phi, axis=1), "s--", label="|zero of ∇f_β − argmin Φ| (Φ fixed)")
    a.set_xlabel("β⁻¹")
    a.set_ylabel("distance")
    a.set_title("anisotropic_double_well (built at β⁻¹ = 0.5)")
    a.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, "mode_shift", out, quick=quick, t0=t0, out=args.out, argv=argv, script=__file__)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
