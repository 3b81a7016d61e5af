r"""Long SGD runs on a small network (the paper's Fig. 3 analogue), streamed to disk.

Problem: tiny-fc (``Linear(49,16) - BN - ReLU - Linear(16,5)``, ``d = 917``
weights; batch-norm in evaluation mode, i.e. a fixed affine map with trainable
scale/shift, so that ``f = (1/N) sum_k f_k`` is a genuine finite sum and ``D``
is the per-example gradient covariance) on the 5-class, 7x7 down-sampled 8x8
digits (``N = 721`` training images).

Protocol (:func:`longrun`): ``burn_in_epochs`` of SGD from the initial
weights (in memory, saved to ``burn.npz``), then for each kernel (``"sgd"``:
epoch-wise shuffled minibatch SGD; ``"sgld"``: full gradient + isotropic
noise at the same ``beta^-1 = lr/(2b)`` with ``c = tr D(w_burn)/d``) a run of
``epochs`` epochs whose weights are saved every epoch by
:func:`sdesim._chains.stream_chains` (bounded memory, atomic chunks, exact
resume) together with ``||grad f|| / sqrt(d)`` at each saved epoch.
:func:`analyse` computes the increment spectrum, autocorrelation with 99 %
bands, and the low-frequency and periodicity tests of
:mod:`sdesim._spectral` for every chain.
"""

from __future__ import annotations

import json
import os
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ..chains import _chains

__all__ = ["digits_finite_sum", "longrun", "analyse"]


def digits_finite_sum(seed: int = 0, *, n_classes: int = 5, size: int = 7, hidden: int = 16):
    """``(fs, w0, meta)``: tiny-fc cross-entropy on 5-class 7x7 digits as a :class:`FiniteSum`."""
    from ..nn import cross_entropy, flat_weights, load_digits, tiny_fc

    data = load_digits(classes=n_classes, size=size, seed=seed)
    model = tiny_fc(jax.random.PRNGKey(seed), n_in=size * size, n_classes=n_classes, hidden=hidden)
    w0, rebuild = flat_weights(model)

    def loss(w, xb, yb):
        return cross_entropy(rebuild(w)(xb), yb)

    x = jnp.asarray(data.x_train, jnp.float32)
    y = jnp.asarray(data.y_train, jnp.int32)
    fs = _chains.FiniteSum(loss, (x, y), int(w0.shape[0]), vectorized=True)
    return fs, np.asarray(w0), {"n_data": fs.n_data, "dim": fs.dim, "dataset": data.name}


def _grad_norm_observer(fs):
    d = float(fs.dim)

    def observe(w):
        return jnp.linalg.norm(fs.full_grad(w))[None] / jnp.sqrt(d)

    return observe


def longrun(out_dir: str, *, epochs: int = 2000, burn_in_epochs: int = 100, lr: float = 1e-3, batch: int = 32,
            n_chains: int = 4, kernels: Sequence[str] = ("sgd", "sgld"), chunk_epochs: int = 250,
            seed: int = 0, on_chunk=None, sgld_chains: int | None = None) -> dict:
    """Run (or resume) the long runs into ``out_dir/<kernel>/``; returns a summary dict.

    All chains start from the same initial weights and get independent noise.
    Re-running with the same arguments resumes where a killed run stopped and
    produces bit-identical files. ``sgld_chains`` (default ``n_chains``) runs
    SGLD on the first few chains only (each SGLD step needs a full gradient,
    ``N/b`` times the cost of an SGD step).
    """
    os.makedirs(out_dir, exist_ok=True)
    fs, w0, meta = digits_finite_sum(seed)
    N, b = fs.n_data, int(batch)
    spe = N // b
    burn_path = os.path.join(out_dir, "burn.npz")
    if os.path.exists(burn_path):
        with np.load(burn_path) as z:
            w_burn = z["w"]
            if int(z["burn_in_epochs"]) != int(burn_in_epochs) or w_burn.shape[0] != n_chains:
                raise ValueError(f"out_dir: {out_dir} holds a burn-in with other parameters; use a new directory")
    else:
        if burn_in_epochs > 0:
            k = _chains.sgd(fs, lr, b, sampling="shuffle")
            ens = _chains.run_chains(k, w0, n_chains=n_chains, n_steps=burn_in_epochs * spe, seed=seed + 7,
                                       batching="map")
            w_burn = ens.x[-1]
        else:
            w_burn = np.broadcast_to(w0, (n_chains, fs.dim)).copy()
        tmp = burn_path + ".tmp.npz"
        np.savez(tmp, w=w_burn, burn_in_epochs=np.int64(burn_in_epochs))
        os.replace(tmp, burn_path)
    noise_power = float(np.mean([fs.noise_power(w) for w in w_burn]))
    observe = _grad_norm_observer(fs)
    summary = dict(meta, lr=lr, batch=b, steps_per_epoch=spe, epochs=epochs, burn_in_epochs=burn_in_epochs,
                   n_chains=n_chains, beta_inv=lr / (2 * b), sgld_noise_power=noise_power, runs={})
    for i, name in enumerate(kernels):
        if name == "sgd":
            ker = _chains.sgd(fs, lr, b, sampling="shuffle")
        elif name == "sgld":
            ker = _chains.sgld(fs, lr, b, noise_power=noise_power)
        else:
            raise ValueError(f"kernels: expected 'sgd' or 'sgld', got {name!r}")
        nc = n_chains if name == "sgd" or sgld_chains is None else min(int(sgld_chains), n_chains)
        man = _chains.stream_chains(
            ker, w_burn[:nc], os.path.join(out_dir, name), n_chains=nc, n_steps=epochs * spe, save_every=spe,
            seed=seed + 100 * (i + 1), chunk_saves=chunk_epochs, observe=observe, on_chunk=on_chunk,
            config={"epochs": epochs, "lr": lr, "batch": b}, batching="map",
        )
        summary["runs"][name] = {"run_s": man.get("run_s"), "dir": os.path.join(out_dir, name)}
    with open(os.path.join(out_dir, "summary.json"), "w") as fh:
        json.dump(summary, fh, indent=1)
    return summary


def analyse(run_dir: str, *, max_lag: int | None = None, f_cut: float | None = None) -> dict:
    """Spectra, autocorrelation and tests of every chain in ``run_dir`` (one kernel).

    Returns ``{"chains": [per-chain dict], "grad_norm": (n_epochs, n_chains)}``;
    each per-chain dict has ``spectrum`` (:class:`IncrementSpectrum`), ``acf``
    (:class:`Autocorrelation`), ``low_frequency`` and ``periodicity``
    (:class:`SpectralTest`, ``.statistic``, ``.p_value``).
    """
    from ..analysis._spectral import autocorrelation, increment_spectrum, low_frequency_test, periodicity_test

    with open(os.path.join(run_dir, "manifest.json")) as fh:
        man = json.load(fh)
    chains = []
    for c in range(man["n_chains"]):
        x = _chains.load_stream(run_dir, chain=c).astype(np.float64)
        chains.append({
            "spectrum": increment_spectrum(x, 1.0),
            "acf": autocorrelation(x, 1.0, max_lag=max_lag or max(1, x.shape[0] // 4), n_ref=16),
            "low_frequency": low_frequency_test(x, 1.0, f_cut=f_cut),
            "periodicity": periodicity_test(x, 1.0),
        })
    gn = _chains.load_stream(run_dir, what="obs")[..., 0]
    return {"chains": chains, "grad_norm": gn, "manifest": man}
