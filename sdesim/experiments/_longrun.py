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
:func:`sdesim.chains.stream_chains` (bounded memory, atomic chunks, exact
resume) together with ``||grad f|| / sqrt(d)`` at each saved epoch.

Resuming is safe only with the same code and parameters: ``out_dir/manifest.json``
records the run's fingerprint (its parameters, the problem's ``meta`` and
:func:`code_fingerprint`) when it starts, and a later call with another
fingerprint -- or on a directory from before fingerprints -- raises
:class:`StaleRunError` instead of mixing old and new data; ``fresh=True``
(:func:`discard`) starts over.
``burn.npz`` and the streams' checkpoints are SHA-256 checked; a damaged one
raises ``ValueError`` (``checkpoint: ...``) and is never loaded.
:func:`analyse` computes the increment spectrum, autocorrelation with 99 %
bands, and the low-frequency and periodicity tests of
:mod:`sdesim.analysis` for every chain.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .._io import atomic_write_json
from ..chains import _chains

__all__ = ["digits_finite_sum", "digits_metrics", "longrun", "analyse", "code_fingerprint", "discard", "load_burn", "StaleRunError"]


def _digits_tiny_fc(seed: int, n_classes: int, size: int, hidden: int):
    """``(data, w0, rebuild)``: the long run's data and network, the one place they are built."""
    from ..nn import flat_weights, load_digits, tiny_fc

    data = load_digits(classes=n_classes, size=size, seed=seed)
    model = tiny_fc(jax.random.PRNGKey(seed), n_in=size * size, n_classes=n_classes, hidden=hidden)
    w0, rebuild = flat_weights(model)
    return data, w0, rebuild


def digits_finite_sum(seed: int = 0, *, n_classes: int = 5, size: int = 7, hidden: int = 16):
    """``(fs, w0, meta)``: tiny-fc cross-entropy on 5-class 7x7 digits as a :class:`FiniteSum`."""
    from ..nn import cross_entropy

    data, w0, rebuild = _digits_tiny_fc(seed, n_classes, size, hidden)

    def loss(w, xb, yb):
        return cross_entropy(rebuild(w)(xb), yb)

    x = jnp.asarray(data.x_train, jnp.float32)
    y = jnp.asarray(data.y_train, jnp.int32)
    fs = _chains.FiniteSum(loss, (x, y), int(w0.shape[0]), vectorized=True)
    return fs, np.asarray(w0), {"n_data": fs.n_data, "dim": fs.dim, "dataset": data.name}


def digits_metrics(seed: int = 0, *, n_classes: int = 5, size: int = 7, hidden: int = 16):
    """``w -> {train_loss, train_accuracy, val_loss, val_accuracy}`` for :func:`digits_finite_sum`'s model.

    The same data split and network as :func:`digits_finite_sum` with the same
    arguments (the flat weight vector ``w`` maps back to the same network);
    the loss is the evaluation-mode mean cross-entropy, i.e. the chains' ``f``
    on the training set. One compiled function for both sets; floats out.
    """
    from ..nn import cross_entropy

    data, _, rebuild = _digits_tiny_fc(seed, n_classes, size, hidden)
    sets = {"train": (data.x_train, data.y_train), "val": (data.x_val, data.y_val)}

    @jax.jit
    def metrics(w):
        model, out = rebuild(w), {}
        for name, (x, y) in sets.items():
            logits = model(jnp.asarray(x, jnp.float32))
            y = jnp.asarray(y, jnp.int32)
            out[f"{name}_loss"] = jnp.mean(cross_entropy(logits, y))
            out[f"{name}_accuracy"] = jnp.mean((jnp.argmax(logits, axis=-1) == y).astype(jnp.float32))
        return out

    def run(w) -> dict:
        return {k: float(v) for k, v in metrics(jnp.asarray(w, jnp.float32)).items()}

    return run


def _grad_norm_observer(fs):
    d = float(fs.dim)

    def observe(w):
        return jnp.linalg.norm(fs.full_grad(w))[None] / jnp.sqrt(d)

    return observe


_KERNELS = ("sgd", "sgld")
_MANIFEST = "manifest.json"
_BURN = "burn.npz"
_SUMMARY = "summary.json"
#: What the Python API suggests for a damaged checkpoint (front ends name their own flag).
_FIX = "discard the run with fresh=True and start over"
#: Libraries whose version can change the streamed numbers: jax/jaxlib compile
#: the chains, optax steps them, equinox builds the network, numpy and
#: scikit-learn give the data.
_LIBS = ("jax", "jaxlib", "optax", "equinox", "numpy", "scikit-learn")


class StaleRunError(ValueError):
    """``out_dir`` holds a long run started with another fingerprint; resuming it would mix data.

    ``reason`` says what differs (for front ends, which name their own fix).
    """

    def __init__(self, out_dir, reason: str):
        self.out_dir, self.reason = str(out_dir), reason
        super().__init__(f"out_dir: {out_dir} holds a long run started with {reason}; resuming would mix its "
                         f"data with this run's -- {_FIX}")


def code_fingerprint() -> dict:
    """What a long run's numbers depend on besides its parameters.

    ``source_sha256``: SHA-256 over the relative path and bytes of every
    ``.py`` file of the sdesim package being run -- the whole package, not a
    list of "modules that produce the numbers": that list (chains, noise,
    network, data, validation, ...) would go stale silently as code moves, the
    very failure this guards against, while a needless restart of the long
    run costs minutes. Also ``sdesim`` (version), the versions of
    :data:`_LIBS`, the JAX ``backend`` and ``x64`` (either can change the numbers).
    """
    from importlib.metadata import version

    import sdesim

    pkg = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for p in sorted(pkg.rglob("*.py")):
        h.update(p.relative_to(pkg).as_posix().encode() + b"\0")
        h.update(p.read_bytes() + b"\0")
    fp = {"sdesim": sdesim.__version__, "source_sha256": h.hexdigest()}
    for name in _LIBS:
        try:
            fp[name] = version(name)
        except Exception:  # pragma: no cover - not installed as a distribution
            fp[name] = None
    fp["backend"] = jax.default_backend()
    fp["x64"] = bool(jax.config.jax_enable_x64)
    return fp


def _differences(old: dict, new: dict) -> str:
    def short(v):
        return v[:12] + "..." if isinstance(v, str) and len(v) == 64 else v

    parts = []
    for part, label in (("config", "parameters"), ("code", "code")):
        o, n = old.get(part) or {}, new[part]
        diff = [f"{k} {short(o.get(k))!r} -> {short(n.get(k))!r}" for k in sorted(set(o) | set(n))
                if o.get(k) != n.get(k)]
        if diff:
            parts.append(f"other {label} ({', '.join(diff)})")
    return "; ".join(parts)


def _check_fingerprint(out_dir: str, fingerprint: dict) -> bool:
    """Record ``fingerprint`` in a new ``out_dir`` or check it against the one recorded; True if resuming."""
    path = os.path.join(out_dir, _MANIFEST)
    fingerprint = json.loads(json.dumps(fingerprint, default=float))  # as recorded (NumPy scalars as floats)
    if os.path.exists(path):
        try:
            with open(path) as fh:
                old = json.load(fh)["fingerprint"]
        except Exception:  # noqa: BLE001 - unreadable: no way to tell what started the run
            raise StaleRunError(out_dir, f"unknown code and parameters (unreadable {_MANIFEST})") from None
        if old != fingerprint:
            raise StaleRunError(out_dir, _differences(old, fingerprint))
        return True
    left = [n for n in (_BURN, _SUMMARY) + _KERNELS if os.path.exists(os.path.join(out_dir, n))]
    if left:
        raise StaleRunError(out_dir, f"an older sdesim (no fingerprint recorded; found {', '.join(left)})")
    atomic_write_json(path, {"fingerprint": fingerprint}, default=float)
    return False


#: Files a stream directory (:func:`sdesim.chains.stream_chains`) holds.
_STREAM_FILES = ("manifest.json*", "checkpoint.npz*", "x_*.npy*", "obs_*.npy*")


def discard(out_dir: str) -> None:
    """Remove what a long run left in ``out_dir``: manifest, burn-in, summary and the kernel streams.

    Other files are left alone; a kernel folder holding files a stream does
    not write is refused (``ValueError``) before anything is removed.
    """
    if not os.path.isdir(out_dir):
        return
    dirs = [os.path.join(out_dir, k) for k in _KERNELS if os.path.isdir(os.path.join(out_dir, k))]
    for d in dirs:
        other = [n for n in os.listdir(d) if not any(fnmatch.fnmatch(n, p) for p in _STREAM_FILES)]
        if other:
            raise ValueError(f"out_dir: {d} holds files a long run does not write ({', '.join(sorted(other))}); "
                             "remove it by hand")
    # the manifest goes first: a discard cut short leaves data without a fingerprint, which is never resumed
    for name in sorted(os.listdir(out_dir), key=lambda n: not n.startswith(_MANIFEST)):
        if any(fnmatch.fnmatch(name, p + "*") for p in (_MANIFEST, _BURN, _SUMMARY)):
            os.remove(os.path.join(out_dir, name))
    for d in dirs:
        shutil.rmtree(d)


def load_burn(out_dir: str, fix: str = _FIX) -> tuple[np.ndarray, int]:
    """``(w, burn_in_epochs)``: the weights after burn-in ``(n_chains, dim)`` from ``out_dir/burn.npz``.

    SHA-256 checked: a damaged file raises ``ValueError`` (``checkpoint: ...``, ending with ``fix``).
    """
    from .._io import read_checked_npz

    arrays, meta = read_checked_npz(os.path.join(out_dir, _BURN), fix=fix)
    return arrays["w"], int(meta["burn_in_epochs"])


def longrun(out_dir: str, *, epochs: int = 2000, burn_in_epochs: int = 100, lr: float = 1e-3, batch: int = 32,
            n_chains: int = 4, kernels: Sequence[str] = ("sgd", "sgld"), chunk_epochs: int = 250,
            seed: int = 0, on_chunk=None, sgld_chains: int | None = None, fresh: bool = False,
            finite_sum=None) -> dict:
    """Run (or resume) the long runs into ``out_dir/<kernel>/``; returns a summary dict.

    All chains start from the same initial weights and get independent noise.
    Re-running with the same arguments and the same code resumes where a
    killed run stopped and produces bit-identical files; with other
    arguments or code (:func:`code_fingerprint`) it raises
    :class:`StaleRunError` (a ``ValueError``) -- ``fresh=True`` discards what
    ``out_dir`` holds (:func:`discard`) and starts over. ``sgld_chains``
    (default ``n_chains``) runs SGLD on the first few chains only (each SGLD
    step needs a full gradient, ``N/b`` times the cost of an SGD step).

    ``on_chunk(chunks_done, n_chunks)`` is called after each committed chunk
    of each kernel's stream (as in :func:`sdesim.chains.stream_chains`); an
    exception raised from it stops the run, and the next call with the same
    arguments resumes from the last committed chunk.

    ``finite_sum`` (default :func:`digits_finite_sum`, tiny-fc) is a callable
    ``seed -> (fs, w0, meta)`` giving the problem: a :class:`~sdesim.chains.FiniteSum`,
    the initial weights ``(dim,)`` and a dict of JSON values describing it
    (tiny-fc: ``n_data``, ``dim``, ``dataset``). ``meta`` is copied into the
    summary and recorded in the run's fingerprint as ``problem``, so a run
    of another problem is not resumed; the callable itself is not
    fingerprinted -- give a problem that changes without changing ``meta``
    a new ``out_dir``.
    """
    from .._io import CheckpointError, write_checked_npz

    for name in kernels:
        if name not in _KERNELS:
            raise ValueError(f"kernels: expected 'sgd' or 'sgld', got {name!r}")
    fs, w0, meta = (digits_finite_sum if finite_sum is None else finite_sum)(seed)  # before touching out_dir
    if fresh:
        discard(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    config = dict(epochs=int(epochs), burn_in_epochs=int(burn_in_epochs), lr=float(lr), batch=int(batch),
                  n_chains=int(n_chains), kernels=list(kernels), chunk_epochs=int(chunk_epochs), seed=int(seed),
                  sgld_chains=None if sgld_chains is None else int(sgld_chains), problem=meta)
    code = code_fingerprint()
    resumed = _check_fingerprint(out_dir, {"config": config, "code": code})
    N, b = fs.n_data, int(batch)
    spe = N // b
    burn_path = os.path.join(out_dir, _BURN)
    if os.path.exists(burn_path):
        w_burn, burned = load_burn(out_dir)
        if burned != int(burn_in_epochs) or w_burn.shape[0] != n_chains:
            raise ValueError(f"out_dir: {out_dir} holds a burn-in with other parameters; use a new directory")
    else:
        if burn_in_epochs > 0:
            k = _chains.sgd(fs, lr, b, sampling="shuffle")
            ens = _chains.run_chains(k, w0, n_chains=n_chains, n_steps=burn_in_epochs * spe, seed=seed + 7,
                                       batching="map")
            w_burn = ens.x[-1]
        else:
            w_burn = np.broadcast_to(w0, (n_chains, fs.dim)).copy()
        write_checked_npz(burn_path, {"w": w_burn}, {"burn_in_epochs": int(burn_in_epochs)})
    noise_power = float(np.mean([fs.noise_power(w) for w in w_burn]))
    observe = _grad_norm_observer(fs)
    summary = dict(meta, lr=lr, batch=b, steps_per_epoch=spe, epochs=epochs, burn_in_epochs=burn_in_epochs,
                   n_chains=n_chains, beta_inv=lr / (2 * b), sgld_noise_power=noise_power, resumed=resumed,
                   code_fingerprint=code, runs={})
    for i, name in enumerate(kernels):
        if name == "sgd":
            ker = _chains.sgd(fs, lr, b, sampling="shuffle")
        else:
            ker = _chains.sgld(fs, lr, b, noise_power=noise_power)
        nc = n_chains if name == "sgd" or sgld_chains is None else min(int(sgld_chains), n_chains)
        try:
            man = _chains.stream_chains(
                ker, w_burn[:nc], os.path.join(out_dir, name), n_chains=nc, n_steps=epochs * spe, save_every=spe,
                seed=seed + 100 * (i + 1), chunk_saves=chunk_epochs, observe=observe, on_chunk=on_chunk,
                config={"epochs": epochs, "lr": lr, "batch": b}, batching="map",
            )
        except CheckpointError as e:
            raise e.with_fix(_FIX) from None
        summary["runs"][name] = {"run_s": man.run_s, "dir": os.path.join(out_dir, name)}
    atomic_write_json(os.path.join(out_dir, _SUMMARY), summary, default=float)
    return summary


def analyse(run_dir: str, *, max_lag: int | None = None, f_cut: float | None = None) -> dict:
    """Spectra, autocorrelation and tests of every chain in ``run_dir`` (one kernel).

    Returns ``{"chains": [per-chain dict], "grad_norm": (n_epochs, n_chains)}``;
    each per-chain dict has ``spectrum`` (:class:`IncrementSpectrum`), ``acf``
    (:class:`Autocorrelation`), ``low_frequency`` and ``periodicity``
    (:class:`SpectralTest`, ``.statistic``, ``.p_value``).
    """
    from ..analysis._spectral import autocorrelation, increment_spectrum, low_frequency_test, periodicity_test

    man = _chains._read_manifest(run_dir)
    chains = []
    for c in range(man["n_chains"]):
        x = _chains.load_stream(run_dir, chain=c).astype(np.float64)  # SHA-256 checked
        chains.append({
            "spectrum": increment_spectrum(x, 1.0),
            "acf": autocorrelation(x, 1.0, max_lag=max_lag or max(1, x.shape[0] // 4), n_ref=16),
            "low_frequency": low_frequency_test(x, 1.0, f_cut=f_cut),
            "periodicity": periodicity_test(x, 1.0),
        })
    gn = _chains.load_stream(run_dir, what="obs")[..., 0]
    return {"chains": chains, "grad_norm": gn, "manifest": man}
