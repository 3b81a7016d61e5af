"""``sdesim run``: run a validated configuration and write its outputs.

Outputs in the run directory::

    summary.json            mean, cov, n_diverged, particle_steps_per_s, config, versions,
                            and per form: the same plus the density check against exp(-Phi/beta_inv)
    ensemble_<form>.h5      snapshots x (time, particle, dim), t, step, finite; attributes:
                            config (JSON), seed, versions (open with h5py / xarray, no sdesim needed)
    density.png             histograms of each form next to the exact density (2D problems)
    run.log                 the log of the run
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from pathlib import Path

import numpy as np

from ._config import build_problem

__all__ = ["run_experiment", "versions", "RunDirError"]

log = logging.getLogger("sdesim")


class RunDirError(ValueError):
    pass


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


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


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


def _write_h5(path: Path, ens, cfg, vers) -> None:
    import h5py

    tmp = path.with_name(path.name + ".tmp")
    with h5py.File(tmp, "w") as f:
        chunk_p = min(ens.n_particles, 65536)
        d = f.create_dataset("x", data=ens.x, chunks=(1, chunk_p, ens.dim), compression="gzip", compression_opts=1)
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
    os.replace(tmp, path)


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


def run_experiment(cfg: dict, out, *, force: bool = False, quiet: bool = False) -> dict:
    """Run every form of a validated config; write outputs to ``out``; return the summary."""
    from ._integrate import simulate

    out = Path(out)
    _prepare_dir(out, force)
    handler = logging.FileHandler(out / "run.log", mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        problem = build_problem(cfg)
        vers = versions()
        sim = cfg["simulation"]
        beta_inv = cfg["temperature"]["beta_inv"]
        log.info("problem %s dim=%d beta_inv=%g", type(problem).__name__, problem.dim, beta_inv)
        by_form = {}
        hists = {}
        for form in sim["form"]:
            log.info("form=%s: %d particles x %d steps (+%d burn-in), dt=%g",
                     form, sim["n_particles"], sim["n_steps"], sim["burn_in"], sim["dt"])
            t0 = time.perf_counter()
            ens = simulate(
                problem, beta_inv=beta_inv, n_particles=sim["n_particles"], n_steps=sim["n_steps"],
                dt=sim["dt"], seed=sim["seed"], form=form, save_every=sim["save_every"],
                burn_in=sim["burn_in"], method=sim["method"], dtype=sim["dtype"],
                chunk_size=sim["chunk_size"], progress=not quiet,
            )
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
                _write_h5(out / f"ensemble_{form}.h5", ens, cfg, vers)
            by_form[form] = st
            log.info("form=%s: %.3g particle-steps/s (compile %.2fs)", form, st["particle_steps_per_s"], st["compile_s"])
        first = by_form[sim["form"][0]]
        summary = {
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
        return summary
    finally:
        log.removeHandler(handler)
        handler.close()


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
