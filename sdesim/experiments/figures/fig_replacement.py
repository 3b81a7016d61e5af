"""Temperature rules as experiments: Remark 12 (with vs without replacement) and Remark 11 (linear scaling).

Writes figures/replacement.{png,pdf,json}. ``--quick`` runs a seconds-long version (CI).

Remark 12: stationary variance ratio tr Sigma_without / tr Sigma_with of minibatch SGD on
1D least squares (N = 20), measured from vmapped chains for several b/N, against the paper's
1 - b/N, the exact finite-population factor (N - b)/(N - 1) of uniform subsets and the exact
stationary covariance of the discrete chain. Epoch-wise shuffling is measured too.
Remark 11: tr Sigma for several (lr, b): equal lr/b gives equal variance (to O(lr)).
"""

from __future__ import annotations

import json
import os
import time

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .. import _replacement as R  # noqa: E402

from .._figio import parser, save_figure, stem  # noqa: E402


def run(quick):
    t0 = time.time()
    jax.config.update("jax_enable_x64", True)  # exact chain moments in float64 (sdesim figures restores the flag)
    if quick:
        rows = R.replacement_rows(20, (10,), n_chains=200, n_snapshots=8, schemes=("subset", "shuffle"))
        scal = R.linear_scaling_rows(((0.04, 1),), n_chains=200, n_snapshots=8)  # each (lr, b) compiles twice
    else:
        rows = R.replacement_rows(20, (2, 5, 10, 15, 19), n_chains=4000, n_snapshots=40,
                                  schemes=("subset", "shuffle"))
        scal = R.linear_scaling_rows(n_chains=2000, n_snapshots=30)
    runtime = time.time() - t0
    subset = [r for r in rows if r["scheme"] == "subset"]
    shuffle = [r for r in rows if r["scheme"] == "shuffle"]
    for r in subset:
        r["z_vs_paper"] = (r["measured_ratio"] - r["predicted_ratio"]) / r["stderr"]
        r["z_vs_exact_factor"] = (r["measured_ratio"] - r["exact_factor"]) / r["stderr"]
        r["z_vs_exact_discrete"] = (r["measured_ratio"] - r["exact_discrete"]) / r["stderr"]
    return {
        "description": "stationary variance ratio tr Sigma_without / tr Sigma_with (uniform b-subsets each step), "
                       "1D least squares, N = 20; predicted_ratio = 1 - b/N (paper, Remark 12), "
                       "exact_factor = (N-b)/(N-1), exact_discrete = exact discrete-chain ratio at this lr",
        "rows": subset,
        "shuffle_rows": shuffle,
        "linear_scaling": scal,
        "compute_s": runtime,
    }


def plot(out):
    subset, shuffle, scal = out["rows"], out["shuffle_rows"], out["linear_scaling"]
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    bn = np.array([r["batch"] / r["n_data"] for r in subset])
    g = np.linspace(0, 1, 200)
    N = subset[0]["n_data"]
    ax[0].plot(g, 1 - g, "k--", label="paper: 1 - b/N")
    ax[0].plot(g, (N - g * N) / (N - 1), "C1-", label="exact: (N-b)/(N-1)")
    ax[0].errorbar(bn, [r["measured_ratio"] for r in subset], yerr=[2 * r["stderr"] for r in subset],
                   fmt="o", color="C0", label="measured, subsets (±2 se)")
    ax[0].errorbar([r["batch"] / r["n_data"] for r in shuffle], [r["measured_ratio"] for r in shuffle],
                   yerr=[2 * r["stderr"] for r in shuffle], fmt="s", color="C2", label="measured, epoch shuffling")
    ax[0].set_xlabel("b / N  (N = %d)" % N)
    ax[0].set_ylabel("Var without / Var with replacement")
    ax[0].set_title("Remark 12: sampling without replacement")
    ax[0].legend(fontsize=8)
    a = ax[1]
    den = np.array([r["predicted_ratio"] for r in subset])
    a.axhline(1.0, color="k", ls="--", label="paper: 1 - b/N")
    a.axhline(N / (N - 1), color="C1", label="exact factor: N/(N-1) after dividing")
    a.plot(bn, [r["exact_discrete"] / d for r, d in zip(subset, den)], "x", color="C1", ms=9,
           label="exact discrete chain (lr = %g)" % subset[0]["lr"])
    a.errorbar(bn, [r["measured_ratio"] / d for r, d in zip(subset, den)],
               yerr=[2 * r["stderr"] / d for r, d in zip(subset, den)], fmt="o", color="C0", label="measured (±2 se)")
    a.set_xlabel("b / N")
    a.set_ylabel("measured ratio / (1 - b/N)")
    a.set_title("which prediction? (N = %d)" % N)
    a.legend(fontsize=8)
    lb = np.array([r["lr_over_b"] for r in scal])
    ax[2].errorbar(lb, [r["trace"] for r in scal], yerr=[2 * r["stderr"] for r in scal], fmt="o", label="measured")
    ax[2].plot(lb, [r["trace_exact"] for r in scal], "x", color="C1", ms=9, label="exact discrete chain")
    gg = np.linspace(0, lb.max() * 1.1, 50)
    k = scal[0]["trace_ou"] / scal[0]["lr_over_b"]
    ax[2].plot(gg, k * gg, "k--", label="OU / Lyapunov (linear in lr/b)")
    txt = "; ".join(f"lr={r['lr']:g},b={r['batch']}" for r in scal if abs(r["lr_over_b"] - scal[0]["lr_over_b"]) < 1e-12)
    ax[2].annotate("same lr/b: " + txt, (scal[0]["lr_over_b"], scal[0]["trace"]), fontsize=7,
                   xytext=(8, -4), textcoords="offset points")
    ax[2].set_xlabel("lr / b")
    ax[2].set_ylabel("tr Sigma (stationary)")
    ax[2].set_title("Remark 11: linear scaling")
    ax[2].legend(fontsize=8)
    fig.tight_layout()
    return fig


def main(argv=None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--replot", action="store_true", help="redraw the figure from the existing JSON (JSON unchanged)")
    args = ap.parse_args(argv)
    if args.replot:
        base = os.path.join(args.out, stem("replacement", args.quick))
        with open(base + ".json") as fh:
            fig = plot(json.load(fh))
        fig.savefig(base + ".png", dpi=130)
        fig.savefig(base + ".pdf")
        plt.close(fig)
        return 0
    t0 = time.time()
    out = run(args.quick)
    save_figure(plot(out), "replacement", out, quick=args.quick, t0=t0, out=args.out, argv=argv, script=__file__)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
