"""Long runs of SGD on tiny-fc (the paper's Fig. 3 analogue) with an SGLD contrast.

tiny-fc (d = 917) on 5-class 7x7 digits (N = 721), lr = 1e-3, b = 32 (22 steps per
epoch), epoch-wise shuffling; burn-in, then weights saved every epoch, streamed to
``--data`` (default runs/longrun, git-ignored) in atomic, SHA-256-checked chunks; an
interrupted run resumes exactly (re-run the same command). Data from other code or
other arguments is never resumed: the run's fingerprint (arguments, sdesim source
hash, library versions) is kept with the data, and a mismatch -- or a damaged
checkpoint -- stops the script with one ``error:`` line; ``--fresh`` discards the
old data and starts over. SGLD at the same beta^-1 = lr/(2b) with isotropic noise
power tr D/d measured after burn-in.

Writes figures/longrun.{png,pdf,json} (``--quick``: longrun_quick.*, weights in a
temporary directory): FFT of increments (mean ± std over weights),
autocorrelation with 99 % white-noise bands, ||grad f||/sqrt(d) per epoch, the
low-frequency and periodicity (Fisher g) tests with p-values.

Budget (2 CPU cores, shared): full = 5 000 epochs x 4 SGD chains + 5 000 epochs x 2
SGLD chains after 1 000 burn-in epochs (~1 ms per SGD chain-epoch, ~5 ms per SGLD
chain-epoch; about 2 minutes in all, ``budget`` and ``runtime_s`` in the JSON); ``--quick`` = 100 epochs x 2 SGD chains + 1 SGLD chain from the initial weights
(no burn-in), seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .. import _longrun  # noqa: E402
from ..._io import CheckpointError  # noqa: E402

from .._figio import parser, save_figure  # noqa: E402


def main(argv=None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--epochs", type=int, default=None, help="default 5000 (--quick: 100)")
    ap.add_argument("--chains", type=int, default=None, help="SGD chains, default 4 (--quick: 2)")
    ap.add_argument("--sgld-chains", type=int, default=None, help="default 2 (--quick: 1)")
    ap.add_argument("--burn-in", type=int, default=None, help="burn-in epochs, default 1000 (--quick: 0)")
    ap.add_argument("--data", default=None, help="directory for the streamed weights (default: runs/longrun; "
                                                  "--quick: a temporary directory, removed afterwards)")
    args = ap.parse_args(argv)
    q = args.quick
    epochs = args.epochs or (100 if q else 5000)
    burn = args.burn_in if args.burn_in is not None else (0 if q else 1000)
    chains = args.chains or (2 if q else 4)
    sgld_chains = args.sgld_chains or (1 if q else 2)
    tmp = None
    if args.data:
        data = args.data
    elif args.quick:  # a fresh directory: a quick run never resumes (or trips over) an older one
        data = tmp = tempfile.mkdtemp(prefix="sdesim_longrun_quick_")
    else:
        data = os.path.join("runs", "longrun")  # relative to the working directory
    t0 = time.time()
    try:
        summ = _longrun.longrun(data, epochs=epochs, burn_in_epochs=burn, n_chains=chains,
                                sgld_chains=sgld_chains, chunk_epochs=min(250, epochs), fresh=args.fresh)
        run_s = time.time() - t0
        res = {k: _longrun.analyse(os.path.join(data, k)) for k in ("sgd", "sgld")}
        for r in res.values():
            r["grad_norm"] = np.array(r["grad_norm"])  # in memory, not a view of a file removed below
    except _longrun.StaleRunError as e:  # never mix old data with this code's
        print(f"error: {e.out_dir} holds a long run started with {e.reason}; rerun with --fresh to discard it "
              "and start over", file=sys.stderr)
        return 2
    except CheckpointError as e:  # a damaged checkpoint or chunk file: not loaded
        print(f"error: {e.with_fix('rerun with --fresh to discard the run and start over')}", file=sys.stderr)
        return 2
    except ValueError as e:  # e.g. --fresh on a folder holding files a long run does not write
        if not str(e).startswith("out_dir:"):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    resumed = summ["resumed"]
    if tmp:
        summ["runs"] = {k: {**v, "dir": None} for k, v in summ["runs"].items()}
    out = {"summary": summ, "wall_s_this_session": run_s, "resumed_existing_data": resumed, "kernels": {},
           "budget": {"note": "sgd_run_s / sgld_run_s: wall seconds of the streamed runs (only this "
                              "invocation's part when it resumed existing data); wall_s_this_session: burn-in, "
                              "compiles and both runs; runtime_s: the whole script (analysis and plots included)",
                      "sgd_run_s": summ["runs"]["sgd"]["run_s"], "sgld_run_s": summ["runs"]["sgld"]["run_s"],
                      "ms_per_chain_epoch": {
                          k: None if resumed or not summ["runs"][k]["run_s"] else
                          1e3 * summ["runs"][k]["run_s"] / (epochs * (chains if k == "sgd" else min(sgld_chains, chains)))
                          for k in ("sgd", "sgld")}}}
    fig, ax = plt.subplots(2, 3, figsize=(14, 7.5))
    for row, (name, r) in enumerate(res.items()):
        ch = r["chains"]
        sp = ch[0]["spectrum"]
        f = sp.freq[1:]
        a = ax[row, 0]
        a.loglog(f, sp.mean[1:], lw=0.6, label="mean over weights (chain 0)")
        a.loglog(f, sp.mean[1:] + sp.std[1:], ":", color="C0", lw=0.6, label="mean + std over weights")
        a.loglog(f, sp.white_level[1:], "k--", label="white / Brownian")
        a.fill_between(f, sp.white_band[0, 1:], sp.white_band[1, 1:], color="k", alpha=0.15, label="99 % band")
        a.set_xlabel("frequency (1/epoch)")
        a.set_ylabel("|FFT(x_{k+1}-x_k)|^2")
        a.set_title(f"{name.upper()}: increment spectrum")
        a.legend(fontsize=7)
        ac = ch[0]["acf"]
        a = ax[row, 1]
        a.plot(ac.lags, ac.mean, label="mean ACF over weights")
        a.fill_between(ac.lags, ac.mean - ac.std, ac.mean + ac.std, alpha=0.2)
        a.axhspan(-ac.white_band, ac.white_band, color="k", alpha=0.15, label="99 % white band")
        a.plot(ac.lags, ac.brownian, "k--", lw=0.8, label="Brownian reference")
        a.set_xlabel("lag (epochs)")
        a.set_title(f"{name.upper()}: autocorrelation of x_k")
        a.legend(fontsize=7)
        a = ax[row, 2]
        gn = r["grad_norm"]
        a.semilogy(np.arange(1, gn.shape[0] + 1), gn, lw=0.6)
        a.set_xlabel("epoch")
        a.set_ylabel("||grad f|| / sqrt(d)")
        a.set_title(f"{name.upper()}: full-gradient norm ({gn.shape[1]} chains)")
        out["kernels"][name] = {
            "n_chains": len(ch),
            "epochs": int(gn.shape[0]),
            "periodicity_g": [c["periodicity"].statistic for c in ch],
            "periodicity_p": [c["periodicity"].p_value for c in ch],
            "periodicity_f_peak": [c["periodicity"].f_peak for c in ch],
            "low_frequency_R": [c["low_frequency"].statistic for c in ch],
            "low_frequency_p": [c["low_frequency"].p_value for c in ch],
            "low_frequency_fraction_significant": [c["low_frequency"].fraction_significant for c in ch],
            "acf_lag100_mean": [float(c["acf"].mean[min(100, len(c["acf"].mean) - 1)]) for c in ch],
            "acf_white_band": ch[0]["acf"].white_band,
            "grad_norm_first": [float(v) for v in gn[0]],
            "grad_norm_last": [float(v) for v in gn[-1]],
            "grad_norm_drop": [float(v) for v in gn[0] / gn[-1]],
            "run_s": summ["runs"][name]["run_s"],
        }
    fig.tight_layout()
    save_figure(fig, "longrun", out, quick=args.quick, t0=t0, out=args.out, argv=argv, script=__file__, dpi=120)
    print(json.dumps(out["kernels"], indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
