"""``sdesim run`` for chain experiments: the 2D SGD toy and the tiny-fc long run.

A config with ``[experiment] kind = "toy2d"`` or ``"longrun"`` (schema in
:func:`sdesim.cli.validate_config`) runs here instead of the particle ensemble. Both write,
like an ensemble run, ``config.json`` (the normalised config), ``run.log``,
``summary.json`` (the measured numbers, ``n_diverged``, ``config``,
``versions``), plain HDF5 files (attributes ``config``, ``seed``,
``versions``, ``experiment``) and a PNG::

    toy2d (sdesim.experiments.compare_2d: SGD with replacement, the Ito SDE with the exact D(x)
    and SGLD at beta^-1 = lr / (2 b), all from x* = argmin f)
        summary.json   tv_sgd_sde, tv_sgd_langevin, tv_floor (sampling floor), tv_sde_exact, ...,
                       mode / mode_stderr / mean per sampler, mode_shift (+ stderr), exact SDE mode,
                       circulations, mean / cov (of the SGD samples)
        toy2d.h5       per sampler a group with hist (bins x bins), step, finite and, with
                       output.trajectory, x (time, chain, dim); edges_x, edges_y, exact_sde, langevin
        toy2d.png      the three histograms and the exact SDE density, with the TVs

    longrun (sdesim.experiments.longrun: tiny-fc on 5-class 7x7 digits, epoch-wise shuffled SGD and
    SGLD at the same temperature, weights saved every epoch)
        summary.json   per kernel: epochs_done, final train / validation loss and accuracy per
                       chain, ||grad f||/sqrt(d) first / last / drop, spectral test statistics;
                       code_fingerprint (what the streamed numbers were computed with)
        longrun_<kernel>.h5   grad_norm (epoch, chain), w_final (chain, weight), epoch and, with
                       output.trajectory, x (epoch, chain, weight)
        longrun.png    gradient norms, increment spectra and autocorrelations
        stream/        the streamed weights and checkpoints of sdesim.experiments.longrun (resume point)

``--resume`` continues a killed long run from its last committed chunk
(bit-identical: :func:`sdesim.chains.stream_chains`) if it was started by the
same code (:func:`sdesim.experiments.code_fingerprint`, recorded in
``stream/manifest.json``); otherwise, or when a checkpoint or chunk file is
damaged, it is refused with one line (``error: out: ...`` / ``error:
checkpoint: ...``) that says to start over with ``--force``. The toy runs in
memory and keeps no checkpoint, so resuming it is refused with one line.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from ._config import experiment_kind
from ._summary import RunSummary
from .._io import CheckpointError, atomic_write_text, fsync_replace
from ._run import RunDirError, run_log, start_run_dir, versions

__all__ = ["run_chains_experiment", "summary_lines"]

log = logging.getLogger("sdesim")

_STREAM = "stream"


def run_chains_experiment(cfg: dict, out, *, force: bool = False, quiet: bool = False, resume: bool = False,
                          on_chunk=None) -> RunSummary:
    """Run a validated chain-experiment config; write its outputs to ``out``; return its :class:`RunSummary`.

    ``on_chunk(chunks_done, n_chunks)`` (long run only) is called after each
    committed chunk of each kernel's stream, after the progress line is
    logged; an exception raised from it stops the run (it propagates, and
    ``summary.json`` is not written), which ``resume=True`` (``sdesim run
    --out DIR --resume``) continues from the last committed chunk.
    """
    kind = experiment_kind(cfg)
    out = Path(out)
    if resume and kind == "toy2d":
        raise RunDirError("resume: the toy2d experiment runs in memory and keeps no checkpoint; "
                          "run it again with --force")
    start_run_dir(cfg, out, force=force, resume=resume, stale=(_STREAM,))
    with run_log(out, resume=resume, echo=not quiet):
        vers = versions()
        log.info("%s %s experiment in %s", "resume" if resume else "start", kind, out)
        t0 = time.perf_counter()
        if kind == "toy2d":
            summary = _run_toy2d(cfg, out, vers)
        else:
            summary = _run_longrun(cfg, out, vers, resumed=resume, on_chunk=on_chunk)
        summary.update(experiment=kind, wall_s=time.perf_counter() - t0, config=cfg, versions=vers)
        atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=float))
        log.info("%s experiment finished in %.1f s", kind, summary["wall_s"])
        return RunSummary.from_dict(out, summary)


def summary_lines(summary) -> list[str]:
    """The few lines ``sdesim run`` prints for a chain experiment."""
    if summary["experiment"] == "toy2d":
        return [f"  TV(SGD, SDE) = {summary['tv_sgd_sde']:.4f} (sampling floor {summary['tv_floor']:.4f}), "
                f"TV(SGD, Langevin) = {summary['tv_sgd_langevin']:.4f}",
                f"  |mode(SGD) - argmin f| = {summary['mode_shift']:.4f} +- {summary['mode_shift_stderr']:.4f}, "
                f"n_diverged={summary['n_diverged']}"]
    return ["  " + _kernel_line(name, k) for name, k in summary["kernels"].items()]


def _kernel_line(name: str, k: dict) -> str:
    def mean(v):
        v = [x for x in v if x is not None]
        return float(np.mean(v)) if v else float("nan")

    return (f"{name}: {k['epochs_done']} epochs x {k['n_chains']} chains, train loss {mean(k['train_loss']):.4f}, "
            f"accuracy {mean(k['train_accuracy']):.3f} (validation {mean(k['val_accuracy']):.3f}), "
            f"||grad f||/sqrt(d) drop {np.mean(k['grad_norm_drop']):.2f}x, n_diverged={k['n_diverged']}")


# ---------------------------------------------------------------------------
# the 2D toy
# ---------------------------------------------------------------------------

_TOY_FLOATS = ("tv_sgd_sde", "tv_sgd_langevin", "tv_sde_exact", "tv_sgd_exact", "tv_sgld_langevin_exact",
               "tv_exact_sde_langevin", "tv_floor", "mode_shift", "mode_shift_stderr", "mode_shift_exact_sde",
               "circulation_exact_sde", "lr", "batch", "beta_inv", "noise_power", "spacing", "burn_in")


def _run_toy2d(cfg: dict, out: Path, vers: dict) -> dict:
    """``compare_2d`` on the configured toy; writes toy2d.h5 and toy2d.png; returns the summary numbers."""
    import jax

    from ..experiments import _toy2d

    prob, sim, ana = cfg["problem"], cfg["simulation"], cfg["analysis"]
    with jax.enable_x64(sim["dtype"] == "float64"):  # float64 needs x64; the CLI does not turn it on
        toy = _toy2d.toy_regression_2d(
            n_data=prob["n_data"], ratio=prob["ratio"], sigma=prob["sigma"], v_scale=prob["v_scale"],
            x_true=tuple(prob["x_true"]), seed=prob["seed"], dtype=sim["dtype"])
        log.info("toy2d: %d examples, %d chains x %d snapshots per sampler (sgd, sde, sgld)",
                 prob["n_data"], sim["n_chains"], sim["n_snapshots"])
        r = _toy2d.compare_2d(
            toy, lr=cfg["temperature"]["lr"], batch=cfg["temperature"]["batch"], n_chains=sim["n_chains"],
            n_snapshots=sim["n_snapshots"], spacing=sim["spacing"], burn_in=sim["burn_in"], bins=ana["bins"],
            seed=sim["seed"], fp_cells=ana["fp_cells"], current_steps=ana["current_steps"], n_boot=ana["n_boot"],
            dtype=sim["dtype"])
    summary = _toy2d_summary(r, toy)
    log.info("toy2d: TV(SGD, SDE) = %.4f (floor %.4f), TV(SGD, Langevin) = %.4f",
             summary["tv_sgd_sde"], summary["tv_floor"], summary["tv_sgd_langevin"])
    _write_toy2d_h5(out / "toy2d.h5", r, cfg, vers)
    if cfg["output"]["figure"]:
        _toy2d_figure(out / "toy2d.png", r)
    return summary


def _toy2d_summary(r: dict, toy) -> dict:
    ens = r["ens"]
    sgd = ens["sgd"].samples().astype(np.float64)
    s = {k: float(r[k]) for k in _TOY_FLOATS}
    s.update(
        mean=sgd.mean(axis=0).tolist(),
        cov=np.cov(sgd, rowvar=False).tolist(),
        n_diverged=int(sum(e.n_diverged for e in ens.values())),
        n_diverged_by_sampler={k: int(e.n_diverged) for k, e in ens.items()},
        chain_steps_per_s={k: float(e.particle_steps_per_s) for k, e in ens.items()},
        n_chains=int(ens["sgd"].n_particles),
        n_samples={k: int(e.samples().shape[0]) for k, e in ens.items()},
        x_star=np.asarray(r["x_star"]).tolist(),
        mode={k: np.asarray(v).tolist() for k, v in r["mode"].items()},
        mode_stderr={k: np.asarray(v).tolist() for k, v in r["mode_stderr"].items()},
        mode_exact_sde=np.asarray(r["mode_exact_sde"]).tolist(),
        means={k: np.asarray(v).tolist() for k, v in r["mean"].items()},
        circulation={k: float(v) for k, v in r["circulation"].items()},
        circulation_stderr={k: float(v) for k, v in r["circulation_stderr"].items()},
        H=np.asarray(toy.H).tolist(),
        D_star=np.asarray(toy.D_star).tolist(),
    )
    return s


def _h5_attrs(f, cfg: dict, vers: dict, seed: int) -> None:
    f.attrs["config"] = json.dumps(cfg)
    f.attrs["seed"] = seed
    f.attrs["versions"] = json.dumps(vers)
    f.attrs["experiment"] = experiment_kind(cfg)


def _write_toy2d_h5(path: Path, r: dict, cfg: dict, vers: dict) -> None:
    import h5py

    tmp = path.with_name(path.name + ".tmp")
    with h5py.File(tmp, "w") as f:
        for name, e in r["ens"].items():
            g = f.create_group(name)
            g.create_dataset("hist", data=r["hist"][name])
            g.create_dataset("step", data=e.step)
            g.create_dataset("t", data=e.t)
            g.create_dataset("finite", data=e.finite)
            if cfg["output"]["trajectory"]:
                d = g.create_dataset("x", data=e.x, compression="gzip", compression_opts=1)
                d.attrs["dims"] = json.dumps(["time", "chain", "dim"])
            g.attrs["kernel"] = e.method
        f.create_dataset("edges_x", data=r["edges"][0])
        f.create_dataset("edges_y", data=r["edges"][1])
        f.create_dataset("exact_sde", data=r["exact_sde"])
        f.create_dataset("langevin", data=r["langevin"])
        _h5_attrs(f, cfg, vers, cfg["simulation"]["seed"])
        for k in ("lr", "batch", "beta_inv", "noise_power", "spacing", "burn_in"):
            f.attrs[k] = r[k]
    fsync_replace(tmp, path)


def _toy2d_figure(path: Path, r: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ex, ey = r["edges"]
    ext = [ex[0], ex[-1], ey[0], ey[-1]]
    panels = [("SGD", r["hist"]["sgd"]), ("SDE, exact D(x)", r["hist"]["sde"]), ("SGLD (Langevin)", r["hist"]["sgld"]),
              ("SDE, exact (Fokker-Planck)", r["exact_sde"])]
    vmax = max(p.max() for _, p in panels)
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8), constrained_layout=True)
    for ax, (title, p) in zip(axes, panels):
        ax.imshow(p.T, origin="lower", extent=ext, vmax=vmax, aspect="auto")
        ax.plot(*r["x_star"], "r+", ms=10, mew=2)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("w1")
        ax.set_ylabel("w2")
    fig.suptitle(f"TV(SGD, SDE) = {r['tv_sgd_sde']:.3f} (sampling floor {r['tv_floor']:.3f}),  "
                 f"TV(SGD, Langevin) = {r['tv_sgd_langevin']:.3f};  + = argmin f", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------
# the tiny-fc long run
# ---------------------------------------------------------------------------


def _log_chunk(done: int, total: int, t0: float) -> None:
    """Progress after each committed chunk of a stream (a killed run resumes from the last one)."""
    log.info("stream: chunk %d/%d committed (%.1f s)", done, total, time.perf_counter() - t0)


#: How ``sdesim run`` starts a long run over.
_RUN_FIX = "start over with `sdesim run CONFIG --out DIR --force` (not --resume)"


def _run_longrun(cfg: dict, out: Path, vers: dict, *, resumed: bool, on_chunk=None) -> dict:
    """``_longrun.longrun`` into ``out/stream`` (resuming what is there), then analysis and outputs."""
    from ..experiments import _longrun

    try:
        return _run_longrun_checked(cfg, out, vers, resumed=resumed, on_chunk=on_chunk)
    except _longrun.StaleRunError as e:
        raise RunDirError(f"out: {out} holds a long run started with {e.reason}; resuming would mix its data "
                          f"with this run's -- {_RUN_FIX}") from None
    except CheckpointError as e:
        raise e.with_fix(_RUN_FIX) from None


def _run_longrun_checked(cfg: dict, out: Path, vers: dict, *, resumed: bool, on_chunk=None) -> dict:
    from ..experiments import _longrun

    sim, temp = cfg["simulation"], cfg["temperature"]
    stream = out / _STREAM
    t0 = time.perf_counter()

    def chunk_done(done: int, total: int) -> None:
        _log_chunk(done, total, t0)
        if on_chunk is not None:
            on_chunk(done, total)

    log.info("longrun: %d burn-in + %d epochs, kernels %s, %d chains (%d SGLD), lr=%g, batch=%d",
             sim["burn_in_epochs"], sim["epochs"], sim["kernels"], sim["n_chains"], sim["sgld_chains"],
             temp["lr"], temp["batch"])
    try:
        meta = _longrun.longrun(
            str(stream), epochs=sim["epochs"], burn_in_epochs=sim["burn_in_epochs"], lr=temp["lr"],
            batch=temp["batch"], n_chains=sim["n_chains"], kernels=tuple(sim["kernels"]),
            chunk_epochs=sim["chunk_epochs"], seed=sim["seed"], sgld_chains=sim["sgld_chains"],
            on_chunk=chunk_done)
    except (_longrun.StaleRunError, CheckpointError):
        raise
    except ValueError as e:
        if str(e).startswith("out_dir"):  # a stream of other parameters: only a hand-edited directory
            raise RunDirError(f"out: {e}") from None
        raise
    evaluate = _longrun.digits_metrics(sim["seed"])
    w_burn, _ = _longrun.load_burn(str(stream))
    loss_start = [evaluate(w)["train_loss"] for w in w_burn]
    summary = {k: meta[k] for k in ("dim", "n_data", "dataset", "lr", "batch", "steps_per_epoch", "epochs",
                                     "burn_in_epochs", "beta_inv", "sgld_noise_power")}
    summary.update(resumed=bool(resumed), train_loss_after_burn_in=loss_start,
                   code_fingerprint=meta["code_fingerprint"], kernels={})
    results = {}
    for name in sim["kernels"]:
        results[name] = _longrun.analyse(str(stream / name), max_lag=cfg["analysis"]["max_lag"],
                                         f_cut=cfg["analysis"]["f_cut"])
        summary["kernels"][name] = _kernel_summary(stream / name, results[name], evaluate)
        _write_longrun_h5(out / f"longrun_{name}.h5", stream / name, results[name], cfg, vers)
        log.info("longrun %s", _kernel_line(name, summary["kernels"][name]))
    ks = summary["kernels"].values()
    summary["epochs_done"] = min(k["epochs_done"] for k in ks)
    summary["n_diverged"] = sum(k["n_diverged"] for k in ks)
    if cfg["output"]["figure"]:
        _longrun_figure(out / "longrun.png", results)
    return summary


def _kernel_summary(run_dir: Path, res: dict, evaluate) -> dict:
    """Final losses / accuracies, gradient norms and spectral statistics of one kernel's chains."""
    man = res["manifest"]
    gn = res["grad_norm"]
    w_last = _final_weights(run_dir, man)
    finite = np.all(np.isfinite(w_last), axis=1)
    ev = [evaluate(w) if ok else dict.fromkeys(("train_loss", "train_accuracy", "val_loss", "val_accuracy"), None)
          for w, ok in zip(w_last, finite)]
    ch = res["chains"]
    lag = min(100, len(ch[0]["acf"].mean) - 1)
    return {
        "n_chains": int(man["n_chains"]),
        "epochs_done": int(gn.shape[0]),
        "n_diverged": int(np.sum(~finite)),
        "train_loss": [e["train_loss"] for e in ev],
        "train_accuracy": [e["train_accuracy"] for e in ev],
        "val_loss": [e["val_loss"] for e in ev],
        "val_accuracy": [e["val_accuracy"] for e in ev],
        "grad_norm_first": gn[0].tolist(),
        "grad_norm_last": gn[-1].tolist(),
        "grad_norm_drop": (gn[0] / gn[-1]).tolist(),
        "low_frequency_R": [c["low_frequency"].statistic for c in ch],
        "low_frequency_p": [c["low_frequency"].p_value for c in ch],
        "low_frequency_fraction_significant": [c["low_frequency"].fraction_significant for c in ch],
        "periodicity_g": [c["periodicity"].statistic for c in ch],
        "periodicity_p": [c["periodicity"].p_value for c in ch],
        "acf_lag": int(lag),
        "acf_mean_at_lag": [float(c["acf"].mean[lag]) for c in ch],
        "run_s": man.get("run_s"),
        "chain_epochs_per_s": man["n_chains"] * gn.shape[0] / man["run_s"] if man.get("run_s") else None,
    }


def _chunks(run_dir: Path, what: str = "x"):
    """The committed chunks of a stream, in order, each read and SHA-256 checked one at a time."""
    from ..chains import _chains

    for path, sha in _chains._committed_chunks(str(run_dir), what):
        yield _chains._read_chunk(path, sha)


def _final_weights(run_dir: Path, man: dict) -> np.ndarray:
    from ..chains import _chains

    path, sha = _chains._committed_chunks(str(run_dir))[-1]
    return _chains._read_chunk(path, sha)[-1].astype(np.float64)


def _write_longrun_h5(path: Path, run_dir: Path, res: dict, cfg: dict, vers: dict) -> None:
    """Copy one kernel's stream into HDF5, one chunk in memory at a time."""
    import h5py

    man = res["manifest"]
    gn = res["grad_norm"]
    n_epochs, n_chains, dim = gn.shape[0], man["n_chains"], man["dim"]
    tmp = path.with_name(path.name + ".tmp")
    with h5py.File(tmp, "w") as f:
        g = f.create_dataset("grad_norm", data=gn)
        g.attrs["dims"] = json.dumps(["epoch", "chain"])
        f.create_dataset("epoch", data=np.arange(1, n_epochs + 1))
        f.create_dataset("w_final", data=_final_weights(run_dir, man).astype(np.float32))
        if cfg["output"]["trajectory"]:
            d = f.create_dataset("x", shape=(n_epochs, n_chains, dim), dtype=np.dtype(man["dtype"]),
                                 chunks=(min(n_epochs, man["chunk_saves"]), 1, dim))
            d.attrs["dims"] = json.dumps(["epoch", "chain", "weight"])
            row = 0
            for a in _chunks(run_dir):
                d[row:row + a.shape[0]] = a
                row += a.shape[0]
        _h5_attrs(f, cfg, vers, man["seed"])
        for k in ("kernel", "lr", "beta_inv", "save_every", "burn_in"):
            f.attrs[k] = man[k]
    fsync_replace(tmp, path)


def _longrun_figure(path: Path, results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4), constrained_layout=True)
    for i, (name, r) in enumerate(results.items()):
        col = f"C{i}"
        gn = r["grad_norm"]
        axes[0].plot(np.arange(1, gn.shape[0] + 1), gn, color=col, lw=0.7)
        axes[0].plot([], [], color=col, label=name.upper())
        sp = r["chains"][0]["spectrum"]
        axes[1].loglog(sp.freq[1:], sp.mean[1:], color=col, lw=0.7, label=f"{name.upper()} (chain 0)")
        axes[1].loglog(sp.freq[1:], sp.white_level[1:], "--", color=col, lw=0.7)
        ac = r["chains"][0]["acf"]
        axes[2].plot(ac.lags, ac.mean, color=col, label=f"{name.upper()} (chain 0)")
    axes[0].set(xlabel="epoch", ylabel="||grad f|| / sqrt(d)", title="full-gradient norm, every chain")
    axes[1].set(xlabel="frequency (1/epoch)", ylabel="|FFT(x_{k+1} - x_k)|^2",
                title="increment spectrum (dashed: white / Brownian)")
    axes[2].set(xlabel="lag (epochs)", ylabel="mean ACF over weights", title="autocorrelation of x_k")
    from matplotlib.ticker import NullFormatter

    axes[1].xaxis.set_minor_formatter(NullFormatter())  # short runs span < 2 decades: labels would collide
    for ax in axes:
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)
