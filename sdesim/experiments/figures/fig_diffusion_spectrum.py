"""Figs. 1-2 analogue: eigenspectrum of the diffusion matrix D during training.

For small-fc and small-lenet on the 8x8 digits (docs/paper.md §10) and on two
variants that change the diversity of the data (Remark 14: more diverse data
=> larger eigenvalues of D):

* ``digits10``     -- all 10 classes (the baseline, like MNIST);
* ``digits5``      -- only classes 0-4 (less diverse);
* ``digits10-aug`` -- 10 classes plus 2 randomly shifted copies (+-1 pixel)
                      of every training image (augmentation, like CIFAR-10-aug).

Each model is trained with SGD + Nesterov momentum (optax) and D is measured
in evaluation mode at 20 %, 40 % and 100 % of training on the same number of
training examples for every variant (rank(D) <= N - 1 depends on N). Rank
uses numpy's rule with float32 eps (the gradients are float32, as in the
paper's runs).

Writes ``figures/diffusion_spectrum.{png,pdf,json}`` (``--quick``: a tiny
version for CI -- small-fc only, 2 epochs, 64 examples -- written as
``diffusion_spectrum_quick.*``).

    python scripts/fig_diffusion_spectrum.py            # a few minutes on 2 CPU cores
    python scripts/fig_diffusion_spectrum.py --quick    # ~30 s
"""

from __future__ import annotations

import time

import jax
import numpy as np

import sdesim.nn as nn
from .._figio import parser, save_figure

# Figs. 1-2 of Chaudhari & Soatto (2018): (eigenvalue mean, std, rank %) as published
# (docs/paper.md §10).
PAPER = {
    "mnist small-lenet": {"mean": 0.3e-3, "std": 2.11e-3, "rank_percent": 1.8},
    "mnist small-fc": {"mean": 0.9e-3, "std": 18.5e-3, "rank_percent": 0.6},
    "cifar-10": {"mean": 0.27, "std": 0.84, "rank_percent": 0.34},
    "cifar-100": {"mean": 0.98, "std": 2.16, "rank_percent": 0.47},
    "cifar-10 augmented": {"mean": 0.43, "std": 1.32, "rank_percent": 0.32},
}

MODELS = ("small-fc", "small-lenet")
VARIANTS = {
    "digits10": dict(),
    "digits5": dict(classes=5),
    "digits10-aug": dict(augment=2),
}
FRACTIONS = (0.2, 0.4, 1.0)


def main(argv=None) -> int:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--n-spectrum", type=int, default=None,
                    help="training examples D is measured on (same for every variant)")
    args = ap.parse_args(argv)
    epochs = args.epochs or (2 if args.quick else 40)
    n_spec = args.n_spectrum or (64 if args.quick else 700)
    # --quick: small-fc only (each training run compiles its own step; small-lenet's take most of the time)
    models = MODELS[:1] if args.quick else MODELS
    batch, lr = 32, 0.05

    results = {}
    spectra = {}
    t_start = time.time()
    for mi, mname in enumerate(models):
        results[mname] = {}
        for vi, (vname, opts) in enumerate(VARIANTS.items()):
            data = nn.load_digits(seed=args.seed, **opts)
            key = jax.random.PRNGKey(1000 * args.seed + 10 * mi + vi)
            model = nn.make_model(mname, key, image_shape=data.image_shape, n_classes=data.n_classes)
            d = nn.n_weights(model)
            print(f"[{time.time() - t_start:6.1f}s] {mname} on {vname}: d = {d} weights, "
                  f"{data.n_train} training images, {epochs} epochs", flush=True)
            run = nn.train(model, data, epochs=epochs, batch_size=batch, lr=lr, schedule="step",
                           checkpoints=FRACTIONS, seed=args.seed + vi)
            sub = np.sort(np.random.default_rng(args.seed).choice(data.n_train, n_spec, replace=False))
            xs, ys = data.x_train[sub], data.y_train[sub]
            entry = {"d": d, "n_train": data.n_train, "n_classes": data.n_classes, "data": data.name,
                     "checkpoints": {}}
            for ck in run.checkpoints:
                t0 = time.time()
                s = nn.diffusion_spectrum(ck.model, xs, ys, top_k=0)
                row = s.summary()
                row.update(
                    epoch=ck.epoch, train_accuracy=ck.train_accuracy, val_accuracy=ck.val_accuracy,
                    train_loss=ck.train_loss, seconds=time.time() - t0,
                    remark15_temperature_normaliser=s.temperature_normaliser(lr, batch),
                    remark16_architecture_score=s.architecture_score,
                    eig_mean_over_rank=float(np.mean(s.eigvals[: max(s.rank, 1)])),
                )
                pct = f"{round(100 * ck.fraction)}"
                entry["checkpoints"][pct] = row
                spectra[(mname, vname, pct)] = (s.eigvals[: n_spec].copy(), s.threshold)
                print(f"    {pct:>3}%: acc train {ck.train_accuracy:.3f} val {ck.val_accuracy:.3f}  "
                      f"rank {s.rank} ({100 * s.rank_fraction:.2f} %)  "
                      f"eig {s.mean:.3g} +- {s.std:.3g}", flush=True)
            results[mname][vname] = entry

    # Remark 14: more diverse data => larger eigenvalues (compare at 100 %).
    remark14 = {}
    for mname in models:
        m = {v: results[mname][v]["checkpoints"]["100"]["eig_mean"] for v in VARIANTS}
        remark14[mname] = {
            "eig_mean_100": m,
            "ratio_10_over_5_classes": m["digits10"] / m["digits5"],
            "ratio_augmented_over_plain": m["digits10-aug"] / m["digits10"],
            "more_classes_larger": bool(m["digits10"] > m["digits5"]),
            "augmented_larger": bool(m["digits10-aug"] > m["digits10"]),
        }
    # D nearly constant in training: spread of the mean eigenvalue over checkpoints
    constancy = {
        mname: {v: {k: results[mname][v]["checkpoints"][k]["eig_mean"] / results[mname][v]["checkpoints"]["100"]["eig_mean"]
                    for k in results[mname][v]["checkpoints"]} for v in VARIANTS}
        for mname in models
    }

    out = {
        "description": "Eigenspectrum of D = (1/N) sum g_k g_k^T - g g^T (evaluation mode) at 20/40/100 % "
                       "of training; mean/std over all d eigenvalues; rank by lam_max*d*eps(float32).",
        "config": {"epochs": epochs, "batch_size": batch, "lr": lr, "momentum": 0.9, "nesterov": True,
                   "schedule": "step (/10 at 50 % and 75 %)", "n_spectrum": n_spec, "seed": args.seed,
                   "variants": {k: v for k, v in VARIANTS.items()}},
        "paper": PAPER,
        "results": results,
        "remark14": remark14,
        "mean_eig_relative_to_100pct": constancy,
    }

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(models), len(VARIANTS), figsize=(4.2 * len(VARIANTS), 3.4 * len(models)),
                             sharey="row", squeeze=False)
    colors = {"20": "tab:blue", "40": "tab:orange", "100": "tab:green"}
    for i, mname in enumerate(models):
        for j, vname in enumerate(VARIANTS):
            ax = axes[i, j]
            for pct in ("20", "40", "100"):
                ev, thr = spectra[(mname, vname, pct)]
                r = results[mname][vname]["checkpoints"][pct]
                pos = ev[ev > 0]
                ax.semilogy(np.arange(1, pos.size + 1), pos, color=colors[pct], lw=1.2,
                            label=f"{pct}%: rank {r['rank_percent']:.2f}%, "
                                  f"{r['eig_mean']:.2g}$\\pm${r['eig_std']:.2g}")
                if pct == "100":
                    ax.axhline(thr, color="gray", ls=":", lw=1)
            ax.set_title(f"{mname}, {vname} (d={results[mname][vname]['d']})", fontsize=9)
            ax.set_xlabel("eigenvalue index")
            if j == 0:
                ax.set_ylabel(r"eigenvalue $\lambda_i(D)$")
            ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(f"Eigenspectrum of D at 20/40/100 % of training (N = {n_spec} examples; "
                 "dotted: rank threshold $\\lambda_{max} d\\, \\epsilon_{32}$)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, "diffusion_spectrum", out, quick=args.quick, t0=t_start, out=args.out, argv=argv, script=__file__)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
