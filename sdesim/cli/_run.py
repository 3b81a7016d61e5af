"""``sdesim run``: run a validated configuration and write its outputs.

Outputs in the run directory::

    summary.json            mean, cov, n_diverged, particle_steps_per_s, config, versions,
                            and per form: the same plus the density check against exp(-Phi/beta_inv)
    ensemble_<form>.h5      snapshots x (time, particle, dim), t, step, finite; attributes:
                            config (JSON), seed, versions (open with h5py / xarray, no sdesim needed)
    density.png             histograms of each form next to the exact density (2D problems)
    run.log                 the log of the run

Chain experiments (``[experiment] kind = "toy2d" | "longrun"``) write their
own files (:func:`sdesim.cli.run_chains_experiment`) with the same conventions.
"""

from __future__ import annotations

import contextlib
import json
import logging
import platform
import time
from pathlib import Path

import numpy as np

from .._io import CheckpointError, atomic_write_text as _atomic_write_text, fsync_replace as _fsync_replace
from .._io import read_checked_npz, write_checked_npz
from ._summary import RunSummary
from ._config import build_problem, experiment_kind

__all__ = ["run_experiment", "versions", "RunDirError", "CheckpointError", "read_checked_npz", "write_checked_npz"]

log = logging.getLogger("sdesim")


class RunDirError(ValueError):
    pass


def save_checkpoint(path: Path, info: dict) -> None:
    """Atomic checkpoint of an ensemble form (:func:`write_checked_npz`, SHA-256 of its contents)."""
    write_checked_npz(path, {"x": info["x"]}, {k: int(info[k]) for k in ("chunk_start", "piece", "step", "k")})


def load_checkpoint(path: Path) -> dict:
    """Load and verify a checkpoint; a truncated or altered file raises CheckpointError."""
    arrays, meta = read_checked_npz(path, fix="delete it to restart this form from the beginning")
    return dict(x=arrays["x"], **{k: meta[k] for k in ("chunk_start", "piece", "step", "k")})


def versions() -> dict:
    import jax

    import sdesim

    out = {"sdesim": sdesim.__version__, "python": platform.python_version(), "jax": jax.__version__}
    for name in ("jaxlib", "equinox", "diffrax", "optax", "numpy", "scipy"):
        try:
            from importlib.metadata import version

            out[name] = version(name)
        except Exception:  # pragma: no cover
            pass
    out["backend"] = jax.default_backend()
    return out


def _prepare_dir(out: Path, force: bool) -> None:
    if out.exists() and any(out.iterdir()) and not force:
        raise RunDirError(f"out: directory {out} is not empty (use --force to overwrite, --resume to continue)")
    out.mkdir(parents=True, exist_ok=True)


def start_run_dir(cfg: dict, out: Path, *, force: bool, resume: bool, stale=()) -> None:
    """Check the run directory (resume: it holds this config's run) or prepare a fresh one.

    A fresh run needs an empty ``out`` (or ``force``), removes the ``stale``
    files and folders (glob patterns) a previous run left there, and writes
    ``config.json``.
    """
    if resume:
        if not (out / "config.json").exists():
            raise RunDirError(f"out: {out} holds no run to resume (config.json missing)")
        saved = json.loads((out / "config.json").read_text())
        if json.loads(json.dumps(cfg)) != saved:
            raise RunDirError("config: differs from the config of the run being resumed (omit CONFIG to reuse it)")
        return
    import shutil

    _prepare_dir(out, force)
    for pattern in stale:
        for old in out.glob(pattern):
            if old.is_dir():
                shutil.rmtree(old)
            else:
                old.unlink()
    _atomic_write_text(out / "config.json", json.dumps(cfg, indent=2))


@contextlib.contextmanager
def run_log(out: Path, *, resume: bool, echo: bool = False):
    """Log the ``sdesim`` logger to ``out/run.log`` (appended on resume) and, with ``echo``, to stderr."""
    handlers = [logging.FileHandler(out / "run.log", mode="a" if resume else "w")]
    if echo:
        handlers.append(logging.StreamHandler())
    handlers[0].setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    for h in handlers:
        log.addHandler(h)
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        for h in handlers:
            log.removeHandler(h)
            h.close()


def _density_check(problem, ens, beta_inv, form, box, bins):
    """Histogram vs exp(-Phi / beta_inv) on ``box``: TV distance and its sampling expectation."""
    import jax
    import jax.numpy as jnp

    (x0, x1), (y0, y1) = box
    sub = 6
    n = bins * sub
    xs = x0 + (np.arange(n) + 0.5) * (x1 - x0) / n
    ys = y0 + (np.arange(n) + 0.5) * (y1 - y0) / n
    X, Y = np.meshgrid(xs, ys, indexing="ij")
    pts = jnp.asarray(np.stack([X.ravel(), Y.ravel()], axis=1))
    phi = np.asarray(jax.jit(jax.vmap(problem.phi))(pts)).reshape(n, n).astype(np.float64)
    w = np.exp(-(phi - phi.min()) / beta_inv)
    P = w.reshape(bins, sub, bins, sub).sum(axis=(1, 3))
    s = ens.samples()
    H, _, _ = np.histogram2d(s[:, 0], s[:, 1], bins=bins, range=[[x0, x1], [y0, y1]])
    inside = H.sum() / max(len(s), 1)
    H = H / max(H.sum(), 1)
    P = P / P.sum()
    tv = 0.5 * float(np.abs(H - P).sum())
    expected = 0.5 * float(np.sum(np.sqrt(2 * P * (1 - P) / (np.pi * max(len(s), 1)))))
    ref = problem.beta_inv_ref
    applies = form != "ito" or ref is None or abs(ref - beta_inv) < 1e-12
    return {
        "tv_to_exact": tv,
        "tv_sampling_expected": expected,
        "fraction_in_box": inside,
        "exact_applies": bool(applies),
        "box": [list(map(float, b)) for b in box],
        "bins": bins,
    }, H, P


def _stats(ens) -> dict:
    s = ens.samples().astype(np.float64)
    return {
        "mean": s.mean(axis=0).tolist() if len(s) else None,
        "cov": np.atleast_2d(np.cov(s, rowvar=False)).tolist() if len(s) > 1 else None,
        "n_samples": int(len(s)),
        "n_diverged": ens.n_diverged,
        "diverged_from_step": int(ens.diverged_step[~ens.finite].min()) if ens.n_diverged else None,
        "particle_steps_per_s": ens.particle_steps_per_s,
        "compile_s": ens.compile_s,
        "run_s": ens.run_s,
    }


def _write_h5_from(path: Path, arr, ens, cfg, vers) -> None:
    """Copy snapshots (possibly a memmap) into a chunked HDF5 file, bounded memory."""
    import h5py

    tmp = path.with_name(path.name + ".tmp")
    n_saved, n_particles, dim = arr.shape
    with h5py.File(tmp, "w") as f:
        chunk_p = min(n_particles, 65536)
        d = f.create_dataset("x", shape=arr.shape, dtype=arr.dtype, chunks=(1, chunk_p, dim),
                             compression="gzip", compression_opts=1)
        for i in range(n_saved):
            d[i] = arr[i]
        d.attrs["dims"] = json.dumps(["time", "particle", "dim"])
        f.create_dataset("t", data=ens.t)
        f.create_dataset("step", data=ens.step)
        f.create_dataset("finite", data=ens.finite)
        f.create_dataset("diverged_step", data=ens.diverged_step)
        f.attrs["config"] = json.dumps(cfg)
        f.attrs["seed"] = ens.seed
        f.attrs["form"] = ens.form
        f.attrs["dt"] = ens.dt
        f.attrs["beta_inv"] = ens.beta_inv
        f.attrs["versions"] = json.dumps(vers)
    _fsync_replace(tmp, path)


def run_experiment(cfg: dict, out, *, force: bool = False, quiet: bool = False,
                   resume: bool = False) -> RunSummary:
    """Run every form of a validated config; write outputs to ``out``; return its :class:`RunSummary`.

    A chain experiment (``[experiment] kind = "toy2d" | "longrun"``) goes to
    :func:`sdesim.cli.run_chains_experiment`; the rest of this
    docstring is about particle ensembles.

    Snapshots go to a disk-backed ``ensemble_<form>.partial.npy`` while the run is
    going, with an atomic checkpoint (``checkpoint_<form>.npz``: state, step,
    piece, SHA-256) after every piece; ``resume=True`` continues from the last
    checkpoint and gives arrays bit-identical to an uninterrupted run. When a
    form finishes, its snapshots move to ``ensemble_<form>.h5``.
    """
    if experiment_kind(cfg) != "ensemble":
        from ._run_chains import run_chains_experiment

        return run_chains_experiment(cfg, out, force=force, quiet=quiet, resume=resume)
    from numpy.lib.format import open_memmap

    from .._integrate import simulate

    out = Path(out)
    start_run_dir(cfg, out, force=force, resume=resume,
                  stale=("checkpoint_*.npz", "form_*.json", "*.partial.npy"))
    with run_log(out, resume=resume):
        problem = build_problem(cfg)
        vers = versions()
        sim = cfg["simulation"]
        beta_inv = cfg["temperature"]["beta_inv"]
        log.info("%s problem %s dim=%d beta_inv=%g", "resume" if resume else "start",
                 type(problem).__name__, problem.dim, beta_inv)
        by_form = {}
        hists = {}
        for form in sim["form"]:
            done_path = out / f"form_{form}.json"
            if resume and done_path.exists():
                by_form[form] = json.loads(done_path.read_text())
                log.info("form=%s: already finished", form)
                continue
            n_saves = sim["n_steps"] // (sim["save_every"] or sim["n_steps"])
            shape = (n_saves, sim["n_particles"], problem.dim)
            npy = out / f"ensemble_{form}.partial.npy"
            ckpt = out / f"checkpoint_{form}.npz"
            state = None
            if resume and ckpt.exists():
                state = load_checkpoint(ckpt)
                arr = open_memmap(npy, mode="r+")
                if tuple(arr.shape) != shape:
                    raise CheckpointError(f"checkpoint: {npy} has shape {arr.shape}, expected {shape}")
                log.info("form=%s: resuming after step %d (particle chunk %d)", form, state["step"], state["chunk_start"])
            else:
                arr = open_memmap(npy, mode="w+", dtype=np.dtype(sim["dtype"]), shape=shape)

            def on_piece(info, arr=arr, ckpt=ckpt):
                arr.flush()  # snapshots on disk before the checkpoint that refers to them
                save_checkpoint(ckpt, info)

            log.info("form=%s: %d particles x %d steps (+%d burn-in), dt=%g",
                     form, sim["n_particles"], sim["n_steps"], sim["burn_in"], sim["dt"])
            t0 = time.perf_counter()
            run = dict(problem=problem, beta_inv=beta_inv, n_particles=sim["n_particles"], n_steps=sim["n_steps"],
                       dt=sim["dt"], seed=sim["seed"], form=form, save_every=sim["save_every"],
                       burn_in=sim["burn_in"], method=sim["method"], dtype=sim["dtype"])
            if sim["method"] == "diffrax":  # outside the compiled loop: one call, no pieces to checkpoint
                ens = simulate(**run)
                arr[...] = ens.x
            else:
                ens = simulate(**run, chunk_size=sim["chunk_size"], progress=not quiet,
                               checkpoint_every=sim["checkpoint_every"], out_array=arr, on_piece=on_piece,
                               resume=state)
            arr.flush()
            st = _stats(ens)
            st["wall_s"] = time.perf_counter() - t0
            if ens.n_diverged:
                log.warning("form=%s: %d particles diverged (first at step %d); excluded from statistics",
                            form, ens.n_diverged, st["diverged_from_step"])
            ana = cfg["analysis"]
            if problem.dim == 2 and problem.has_atype and ana["exact"]:
                box = ana.get("box")
                if box is None:
                    s = ens.samples()
                    lo, hi = np.quantile(s, 0.001, axis=0), np.quantile(s, 0.999, axis=0)
                    pad = 0.2 * (hi - lo)
                    box = [[lo[0] - pad[0], hi[0] + pad[0]], [lo[1] - pad[1], hi[1] + pad[1]]]
                chk, H, P = _density_check(problem, ens, beta_inv, form, box, ana["bins"])
                st["density_check"] = chk
                hists[form] = (H, P, chk)
                log.info("form=%s: TV(histogram, exp(-Phi/beta_inv)) = %.4f (sampling expectation %.4f)",
                         form, chk["tv_to_exact"], chk["tv_sampling_expected"])
            if cfg["output"]["trajectory"]:
                _write_h5_from(out / f"ensemble_{form}.h5", arr, ens, cfg, vers)
            del arr, ens
            _atomic_write_text(done_path, json.dumps(st))
            npy.unlink(missing_ok=True)
            ckpt.unlink(missing_ok=True)
            by_form[form] = st
            log.info("form=%s: %.3g particle-steps/s (compile %.2fs)", form, st["particle_steps_per_s"], st["compile_s"])
        first = by_form[sim["form"][0]]
        summary = {
            "experiment": "ensemble",
            "mean": first["mean"],
            "cov": first["cov"],
            "n_diverged": sum(v["n_diverged"] for v in by_form.values()),
            "particle_steps_per_s": first["particle_steps_per_s"],
            "problem": type(problem).__name__,
            "beta_inv": beta_inv,
            "forms": by_form,
            "config": cfg,
            "versions": vers,
        }
        if cfg["output"]["figure"] and hists:
            _density_figure(out / "density.png", hists)
        _atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
        log.info("wrote %s", out / "summary.json")
        return RunSummary.from_dict(out, summary)


def _density_figure(path: Path, hists: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(hists)
    fig, axes = plt.subplots(1, n + 1, figsize=(4 * (n + 1), 3.6), constrained_layout=True)
    P = next(iter(hists.values()))[1]
    chk0 = next(iter(hists.values()))[2]
    (x0, x1), (y0, y1) = chk0["box"]
    vmax = max(P.max(), max(h[0].max() for h in hists.values()))
    ext = [x0, x1, y0, y1]
    axes[0].imshow(P.T, origin="lower", extent=ext, vmax=vmax, aspect="auto")
    axes[0].set_title("exact exp(-Phi/beta_inv)")
    for ax, (form, (H, _, chk)) in zip(axes[1:], hists.items()):
        ax.imshow(H.T, origin="lower", extent=ext, vmax=vmax, aspect="auto")
        ax.set_title(f"{form}: TV={chk['tv_to_exact']:.3f} (noise {chk['tv_sampling_expected']:.3f})")
    for ax in axes:
        ax.set_xlabel("x1")
        ax.set_ylabel("x2")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def load_ensemble(path):
    """Read an ``ensemble_<form>.h5`` written by ``sdesim run`` back into an :class:`~sdesim.Ensemble`.

    The file is plain HDF5 (``x`` with dims (time, particle, dim), ``t``, ``step``,
    ``finite``, ``diverged_step``; attributes ``config``, ``seed``, ``form``,
    ``dt``, ``beta_inv``, ``versions``): ``h5py`` or ``xarray`` open it without sdesim.
    """
    import h5py

    from .._integrate import Ensemble

    path = Path(path)
    if not path.exists():
        raise ValueError(f"path: file not found: {path}")
    try:
        with h5py.File(path, "r") as f:
            cfg = json.loads(f.attrs["config"])
            sim = cfg["simulation"]
            return Ensemble(
                x=f["x"][...], t=f["t"][...], step=f["step"][...], finite=f["finite"][...],
                diverged_step=f["diverged_step"][...], dt=float(f.attrs["dt"]),
                beta_inv=float(f.attrs["beta_inv"]), form=str(f.attrs["form"]), method=sim["method"],
                seed=int(f.attrs["seed"]), burn_in=sim["burn_in"], save_every=sim["save_every"],
                n_steps_total=sim["burn_in"] + sim["n_steps"],
            )
    except (OSError, KeyError) as e:
        raise ValueError(f"path: {path} is not an sdesim ensemble file ({type(e).__name__}: {e})") from None
