r"""Chains as particles: minibatch SGD, SGLD and the SDE on the same finite-sum loss.

A loss ``f(x) = (1/N) sum_k f_k(x)`` (:class:`FiniteSum`) is sampled by four
chain kernels, each a pure ``(init, step)`` pair (:class:`ChainKernel`) that
:func:`run_chains` vmaps over chains ("particles") and scans over steps:

(a) ``sgd(fs, lr, b, sampling="replacement")`` --
    ``x_{k+1} = x_k - lr grad f_B(x_k)``, ``B`` = ``b`` i.i.d. uniform indices;
    ``Cov(grad f_B) = D(x) / b``.
(b) ``sgd(..., sampling="subset")`` -- ``B`` a uniformly random ``b``-subset,
    fresh each step: ``Cov(grad f_B) = (N - b)/(N - 1) * D(x) / b`` (exact
    finite-population factor; Remark 12 of the paper writes ``1 - b/N``).
    ``sampling="shuffle"`` -- epoch-wise reshuffling: epoch ``e`` draws one
    permutation and walks through it in ``floor(N / b)`` consecutive batches
    (the remainder ``N mod b`` of each permutation is dropped). Successive
    batches of one epoch are dependent (their noises sum to ~0 over an
    epoch), so no one-step factor describes it; it is measured, not predicted.
(c) ``sgld(fs, lr, b, noise_power=c)`` -- full gradient plus isotropic
    Gaussian noise at the same temperature ``beta^-1 = lr / (2 b)``:
    ``x_{k+1} = x_k - lr grad f(x_k) + sqrt(2 beta^-1 lr c) xi``, ``c = tr D / d``
    (the total noise power of SGD, ``tr(lr^2 D / b)``, is matched).
(d) ``sde(problem, lr, beta_inv)`` -- Euler--Maruyama of the Itô SDE
    ``dx = -grad f dt + sqrt(2 beta^-1 D(x)) dW`` with ``dt = lr``:
    ``x_{k+1} = x_k - lr grad f(x_k) + sqrt(2 beta^-1 lr) L(x_k) xi``,
    ``L L^T = D``. ``FiniteSum.problem()`` gives the exact state-dependent
    ``D(x) = (1/N) sum_k g_k g_k^T - g g^T`` with the factor
    ``L(x) = (G(x) - 1 g^T)^T / sqrt(N)`` (``d x N``, so no ``d x d`` matrix
    and no Cholesky); any :mod:`sdesim.problems` problem (e.g. a frozen
    low-rank ``D`` from :meth:`sdesim.nn.DiffusionSpectrum.to_noise`) works.

All four are written as ``x <- optimizer(x, g_hat)`` with an optax
transformation (default ``optax.sgd(lr)``, i.e. ``x <- x - lr g_hat``) and a
*gradient oracle* ``g_hat``: the minibatch gradient for (a)/(b),
``grad f + s sqrt(c) xi`` for (c), ``grad f + s L(x) xi`` for (d), with
``s = sqrt(2 beta^-1 / lr)`` (``= 1/sqrt(b)`` at ``beta^-1 = lr/(2b)``).
Conventions (docs/conventions.md): ``dt = lr``, ``beta^-1 = lr / (2 b)``.

Randomness contract (counter-based, as :mod:`sdesim.noise`): chain ``c`` has
three raw Threefry keys ``k_{c,s} = fold_in(fold_in(key(seed), c), s)`` for the
streams ``s = 0`` (minibatch indices), ``1`` (Gaussian noise), ``2`` (epoch
permutations). Step ``k`` draws its words as ``threefry2x32(k_{c,s}, (k, j))``
(epoch ``e`` uses ``(e, j)``): index ``= word mod N`` (bias ``< N 2^-32``), a
uniform subset / permutation = ``argsort`` of ``N`` words, normals by
:func:`sdesim.noise.step_normals`. Numbers therefore depend on (seed, chain
index, step index) only -- not on how the run is segmented, checkpointed or
resumed (:func:`stream_chains` resumes bit-identically).

Floating-point contract (docs/reproducibility.md). The random draws are
exact integer functions of (seed, chain, step), so they agree everywhere.
The arithmetic that uses them is bit-identical whenever the compiled step is
the same: across segmenting, save spacing, burn-in splits, checkpoints and
resume (one ``while`` loop per piece, :func:`_build_segment_raw`), and, with
``batching="map"`` (each chain a width-1 program), across chain counts.
With ``batching="vmap"`` the step is compiled for the width ``n_chains``;
XLA may vectorise another width differently (reduction order, fused
multiply-adds), so chain ``c`` agrees across chain counts only to rounding:
``|x_a - x_b| <= n_steps * 64 eps * scale`` for contracting chains (tested).

Outputs: :func:`run_chains` returns an :class:`sdesim.Ensemble`
(``x (n_saved, n_chains, dim)``), so densities, ``Phi_hat``
(:func:`sdesim.estimate_potential`), currents and spectra apply unchanged to
all four kernels. :func:`stream_chains` writes the same snapshots to disk in
atomic chunk files with bounded memory; :func:`load_stream` reads them back.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
import weakref
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .. import _noise
from .._io import atomic_write_bytes, atomic_write_json
from .._integrate import Ensemble, _divergence_report
from .._segments import plan_segments, saves_per_segment
from .._temperature import _finite_population_factor, temperature
from ._stream_result import ChainStream
from .._validate import check_nonneg_int, check_positive, check_positive_int, check_save_every

__all__ = [
    "ChainKernel",
    "ChainState",
    "FiniteSum",
    "SAMPLINGS",
    "chain_keys",
    "load_stream",
    "run_chains",
    "sde",
    "sgd",
    "sgld",
    "stream_chains",
    "subset_factor",
]

SAMPLINGS = ("replacement", "subset", "shuffle")


def subset_factor(n_data: int, batch: int) -> float:
    """Exact finite-population factor ``(N - b) / (N - 1)`` of a uniform ``b``-subset.

    ``Cov(mean of a uniform b-subset of g_1..g_N) = (N - b)/(N - 1) * D / b``
    with ``D = (1/N) sum (g_k - g)(g_k - g)^T`` (the population covariance):
    ``Cov = (1/b^2)[b D + b(b-1) c]`` with the pair covariance
    ``c = E_{i != j}(g_i - g)(g_j - g)^T = -D / (N - 1)`` (the deviations sum to 0).
    The paper's Remark 12 uses ``1 - b/N``; they differ by ``O(1/N)``. The
    factor is the one :func:`sdesim.temperature` applies with
    ``finite_population="exact"`` (0 at ``b = N``).
    """
    N = check_positive_int(n_data, "n_data")
    b = check_positive_int(batch, "batch")
    if b > N:
        raise ValueError(f"batch: {b} exceeds n_data={N}")
    return _finite_population_factor(b, N, "exact")


# ---------------------------------------------------------------------------
# the loss
# ---------------------------------------------------------------------------


def _error_line(e: Exception) -> str:
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {(lines[0] if lines else '')[:300]}"


def _try_shape(fn, *args):
    """``(shape, None)`` of ``jax.eval_shape(fn, *args)``, or ``(None, exception)``."""
    try:
        return getattr(jax.eval_shape(fn, *args), "shape", None), None
    except Exception as e:  # noqa: BLE001 -- reported, not swallowed
        return None, e


class FiniteSum:
    """``f(x) = (1/N) sum_k f_k(x)`` with ``f_k(x) = loss(x, *data_k)``.

    Args:
        loss: ``loss(x, *example) -> scalar`` for ONE example; ``x`` has shape
            ``(dim,)``. With ``vectorized=True``: ``loss(x, *batch) -> (B,)``
            per-example losses of a batch (faster for networks: one batched
            forward pass instead of a vmap over single examples).
        data: tuple of arrays with a common leading axis ``N`` (one row per example).
        dim: number of parameters ``d``.

    The loss is traced (``jax.eval_shape``, nothing runs) on the first
    example before anything else: a ``dim`` that does not fit the loss, a
    batched loss without ``vectorized=True`` or a non-scalar result raise one
    ``ValueError`` naming ``dim`` or ``loss``.

    A network: :meth:`from_model` builds the finite sum over a model's flat
    weights; ``fs.x0`` are its weights and ``fs.unravel(x)`` the model with
    weights ``x``.

    Methods (``idx`` an int array of example indices ``(b,)``):
        ``batch_grad(x, idx)`` -> ``grad (1/b) sum_{k in idx} f_k`` ``(d,)``;
        ``full_grad(x)`` ``(d,)``; ``value(x)`` scalar ``f``;
        ``per_example_grads(x)`` ``(N, d)``;
        ``diffusion(x)`` ``D(x) = (1/N) sum g_k g_k^T - g g^T`` ``(d, d)``;
        ``diffusion_factor(x)`` ``L (d, N)`` with ``L L^T = D``;
        ``problem()`` an :mod:`sdesim.problems` problem with exact ``D(x)``.
    """

    def __init__(self, loss: Callable, data, dim: int, *, vectorized: bool = False):
        if not callable(loss):
            raise ValueError("loss: expected a callable loss(x, *example) -> scalar")
        if not isinstance(data, (tuple, list)):
            data = (data,)
        data = tuple(jnp.asarray(a) for a in data)
        if len(data) == 0 or any(a.ndim < 1 for a in data):
            raise ValueError("data: expected a tuple of arrays with a leading example axis")
        n = data[0].shape[0]
        if n == 0 or any(a.shape[0] != n for a in data):
            raise ValueError(f"data: arrays must share a non-empty leading axis, got {[a.shape for a in data]}")
        self.dim = check_positive_int(dim, "dim")
        self.loss = loss
        self.vectorized = bool(vectorized)
        self.data = data
        self.n_data = int(n)
        self.x0 = None
        self._unravel = None
        self._check_loss()

    def _check_loss(self):
        x_sd = jax.ShapeDtypeStruct((self.dim,), jnp.float32)
        loss, data, n = self.loss, self.data, self.n_data
        one = tuple(jax.ShapeDtypeStruct(a.shape[1:], a.dtype) for a in data)
        two = tuple(jax.ShapeDtypeStruct((min(2, n),) + a.shape[1:], a.dtype) for a in data)
        if self.vectorized:
            shape, err = _try_shape(loss, x_sd, *two)
            if err is None and shape == (min(2, n),):
                return
            if err is None:
                raise ValueError(f"loss: with vectorized=True must map a batch (B, ...) to (B,) losses, got "
                                 f"shape {shape} for a batch of {min(2, n)}")
        else:
            shape, err = _try_shape(loss, x_sd, *one)
            if err is None and shape == ():
                return
            shape2, err2 = _try_shape(loss, x_sd, *two)
            batched = err2 is None and shape2 == (min(2, n),)
            if err is None:
                raise ValueError(
                    f"loss: returned shape {shape} for one example; "
                    + ("pass vectorized=True or a per-example loss" if batched
                       else "a per-example loss(x, *example) must return a scalar")
                )
            if batched:
                raise ValueError(
                    f"loss: fails on one example ({_error_line(err)}) but maps a batch of {min(2, n)} to "
                    f"shape {shape2}; pass vectorized=True or a per-example loss"
                )
        # the loss cannot be traced at x of shape (dim,): most often dim is wrong
        m = re.search(r"Sum of sizes (\d+) must be equal to dimension 0 of the operand shape \[(\d+)\]", str(err))
        if m and int(m.group(2)) == self.dim:
            raise ValueError(f"dim: the loss's parameter vector has size {m.group(1)}, got dim={self.dim}")
        raise ValueError(
            f"dim: the loss fails for a parameter vector x of shape ({self.dim},) (dim={self.dim}): "
            f"{_error_line(err)}; check that dim is the loss's parameter count (and that the loss "
            f"works on {'a batch' if self.vectorized else 'one example'} of data)"
        )

    @classmethod
    def from_model(cls, model, x, y, *, loss=None) -> "FiniteSum":
        """The finite sum of a network's per-example losses over its flat weights.

        ``f_k(w) = loss(model_w, x_k, y_k)`` with ``loss(model, x_i, y_i) ->
        scalar`` (default :class:`sdesim.nn.CrossEntropyLoss`, the softmax
        cross-entropy on integer labels, optional L2 weight decay) and
        ``model`` any form of :mod:`sdesim.nn`: an equinox module mapping one
        example (``eqx.nn.MLP``), :class:`sdesim.nn.FunctionModel` or
        ``(apply_fn, params)``, or an :class:`sdesim.nn.Sequential` (evaluation
        mode). ``w`` (``dim = d``) is the flat vector of the floating-point
        leaves in :func:`sdesim.nn.flat_weights` order; ``fs.x0`` holds the
        model's weights and ``fs.unravel(w)`` returns the model (same form)
        with weights ``w`` -- in ``w``'s dtype, so float64 chains evaluate
        the network in float64. ``chains.sgd / sgld / sde(fs.problem())`` run
        on it directly.
        """
        from ..nn import _adapt

        wrapped, restore = _adapt.as_model(model)
        loss = _adapt.resolve_loss(loss)
        x, y = _adapt.prepare_xy(wrapped, x, y)
        _adapt.check_loss(wrapped, loss, x, y)
        flat = _adapt.Flat(wrapped, restore)

        def f(w, xi, yi):
            return loss(flat.wrapped(w), xi, yi)

        fs = cls(f, (x, y), flat.dim)
        fs.x0 = flat.w0
        fs._unravel = flat.model
        return fs

    def unravel(self, x):
        """The model (in the form given to :meth:`from_model`) with flat weights ``x (dim,)``."""
        if self._unravel is None:
            raise ValueError("unravel: this FiniteSum was not built from a model (use FiniteSum.from_model)")
        return self._unravel(x)

    def losses(self, x, *batch):
        """Per-example losses ``(B,)`` of a batch of examples (arrays with leading axis B)."""
        if self.vectorized:
            return self.loss(x, *batch)
        return jax.vmap(self.loss, in_axes=(None,) + (0,) * len(batch))(x, *batch)

    def _single(self, x, *example):
        if self.vectorized:
            return self.loss(x, *(e[None] for e in example))[0]
        return self.loss(x, *example)

    # f_B and its gradient -------------------------------------------------
    def batch_value(self, x, idx):
        return jnp.mean(self.losses(x, *(a[idx] for a in self.data)))

    def batch_grad(self, x, idx):
        return jax.grad(self.batch_value)(x, idx)

    def weighted_grad(self, x, w):
        """``grad sum_k w_k f_k(x)`` for weights ``w (N,)`` (masked minibatches)."""
        return jax.grad(lambda x: jnp.sum(w * self.losses(x, *self.data)))(x)

    def value(self, x):
        return jnp.mean(self.losses(x, *self.data))

    def full_grad(self, x):
        return jax.grad(self.value)(x)

    def per_example_grads(self, x):
        g = jax.grad(self._single)
        return jax.vmap(g, in_axes=(None,) + (0,) * len(self.data))(x, *self.data)

    def diffusion_factor(self, x):
        G = self.per_example_grads(x)
        return (G - G.mean(axis=0)).T / jnp.sqrt(self.n_data).astype(G.dtype)

    def diffusion(self, x):
        L = self.diffusion_factor(x)
        return L @ L.T

    def problem(self):
        """The SDE problem ``grad f``, exact state-dependent ``D(x)`` (noise via ``L(x)``)."""
        from .. import problems
        from .._diffusion import StateDependent

        noise = StateDependent(self.diffusion, self.dim, factor_fn=self.diffusion_factor)
        return problems.custom(self.full_grad, noise, self.dim)

    def noise_power(self, x) -> float:
        """``tr D(x) / d`` (the per-coordinate noise power that SGLD matches)."""
        return float(jnp.trace(self.diffusion(jnp.asarray(x))) / self.dim)


# ---------------------------------------------------------------------------
# kernels
# ---------------------------------------------------------------------------


class ChainState(NamedTuple):
    """State of one chain: position ``x (dim,)``, the optimizer state and
    sampler state ``aux`` (the epoch permutation ``(N,)`` for large-N shuffling, else ``()``)."""

    x: Any
    opt_state: Any
    aux: Any = ()


@dataclasses.dataclass(frozen=True, eq=False)
class ChainKernel:
    """A pure chain kernel.

    ``init(x0 (dim,)) -> ChainState``; ``step(state, key, k) -> ChainState``
    where ``key`` is the chain's raw stream keys ``(3, 2) uint32``
    (:func:`chain_keys`) and ``k`` the (global) step index.
    ``lr`` is the step (``dt = lr``), ``beta_inv`` the temperature it runs at,
    ``name`` a label ("sgd-replacement", "sgd-subset", "sgd-shuffle", "sgld", "sde").
    """

    init: Callable
    step: Callable
    name: str
    lr: float
    beta_inv: float
    dim: int
    meta: dict = dataclasses.field(default_factory=dict)


def _words(kd, counter, n: int):
    """``n`` uint32 words of stream key ``kd (2,)`` at ``counter`` (step or epoch)."""
    return _noise._bits(kd, jnp.asarray(counter).astype(jnp.uint32), n + (n % 2))[:n]


def _normals(kd, k, n: int, dtype):
    return _noise.step_normals(kd, jnp.asarray(k).astype(jnp.uint32), n, dtype)


def _oracle_kernel(oracle, lr, beta_inv, dim, name, optimizer, meta, aux0=()):
    """``x <- optimizer(x, g_hat)``; ``oracle(x, key, k, aux) -> (g_hat, aux)``."""
    opt = optimizer if optimizer is not None else optax.sgd(lr)

    def init(x0):
        x0 = jnp.asarray(x0)
        return ChainState(x0, opt.init(x0), aux0)

    def step(state, key, k):
        g, aux = oracle(state.x, key, k, state.aux)
        upd, os_ = opt.update(g.astype(state.x.dtype), state.opt_state, state.x)
        return ChainState(optax.apply_updates(state.x, upd), os_, aux)

    return ChainKernel(init, step, name, float(lr), float(beta_inv), int(dim), dict(meta))


def _check_batch(fs, batch, sampling):
    b = check_positive_int(batch, "batch")
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling: expected one of {SAMPLINGS}, got {sampling!r}")
    if sampling != "replacement" and b > fs.n_data:
        raise ValueError(f"batch: {b} exceeds n_data={fs.n_data} without replacement")
    return b


#: Up to this many examples, subsets and shuffled batches are drawn as masks
#: from the ranks of N random words (O(N^2) compares, no sort: XLA's CPU sort
#: is slow under vmap) and the gradient is the masked full-batch sum.
DENSE_MAX = 128


def _ranks(w):
    """Rank of each of ``w (N,)`` (ties broken by index): a uniform random permutation's inverse."""
    n = w.shape[0]
    i = jnp.arange(n)
    less = (w[None, :] < w[:, None]) | ((w[None, :] == w[:, None]) & (i[None, :] < i[:, None]))
    return jnp.sum(less, axis=1)


def sgd(fs: FiniteSum, lr: float, batch: int, *, sampling: str = "replacement", optimizer=None) -> ChainKernel:
    """Minibatch SGD ``x <- x - lr grad f_B(x)`` (or ``optimizer``, an optax transformation).

    ``sampling``: ``"replacement"`` (``b`` i.i.d. uniform indices), ``"subset"``
    (a fresh uniform ``b``-subset each step), ``"shuffle"`` (epoch-wise
    permutations; ``floor(N/b)`` steps per epoch, epoch ``e = k // floor(N/b)``).
    ``beta_inv`` is reported by :func:`sdesim.temperature`: ``lr/(2b)`` with
    replacement; for ``"subset"`` times the exact finite-population factor
    ``(N-b)/(N-1)`` (``finite_population="exact"``: the kernel's true one-step
    covariance, not the paper's ``1 - b/N``); nan for shuffling, which has no
    one-step factor.

    Implementation: with replacement, a gather of ``b`` examples. For
    ``N <= DENSE_MAX`` subsets/shuffles are masks ``m`` from random ranks and
    ``grad f_B = grad sum_k (m_k / b) f_k``. For larger ``N`` a subset is a
    partial Fisher--Yates shuffle (``b`` swaps) and the epoch permutation is
    kept in the chain state (``aux``), redrawn when ``k % floor(N/b) == 0``.
    """
    if not isinstance(fs, FiniteSum):
        raise ValueError(f"fs: expected a FiniteSum, got {type(fs).__name__}")
    lr = check_positive(lr, "lr")
    b = _check_batch(fs, batch, sampling)
    N = fs.n_data
    spe = max(N // b, 1)
    dense = N <= DENSE_MAX
    aux0 = ()

    if sampling == "replacement":
        def grad(x, key, k, aux):
            idx = (_words(key[0], k, b) % jnp.uint32(N)).astype(jnp.int32)
            return fs.batch_grad(x, idx), aux
    elif sampling == "subset":
        if dense:
            def grad(x, key, k, aux):
                m = (_ranks(_words(key[0], k, N)) < b).astype(x.dtype)
                return fs.weighted_grad(x, m / b), aux
        else:
            def grad(x, key, k, aux):
                w = _words(key[0], k, b)

                def swap(j, p):
                    r = j + (w[j] % (N - j).astype(jnp.uint32)).astype(jnp.int32)
                    pj, pr = p[j], p[r]
                    return p.at[j].set(pr).at[r].set(pj)

                idx = jax.lax.fori_loop(0, b, swap, jnp.arange(N, dtype=jnp.int32))[:b]
                return fs.batch_grad(x, idx), aux
    else:
        if dense:
            def grad(x, key, k, aux):
                e, j = k // spe, k % spe
                m = (_ranks(_words(key[2], e, N)) // b == j).astype(x.dtype)
                return fs.weighted_grad(x, m / b), aux
        else:
            aux0 = jnp.zeros((N,), jnp.int32)

            def grad(x, key, k, aux):
                e, j = k // spe, k % spe
                aux = jax.lax.cond(
                    j == 0, lambda: jnp.argsort(_words(key[2], e, N)).astype(jnp.int32), lambda: aux
                )
                idx = jax.lax.dynamic_slice(aux, (j * b,), (b,))
                return fs.batch_grad(x, idx), aux

    meta = {"batch": b, "n_data": N, "sampling": sampling, "steps_per_epoch": spe if sampling == "shuffle" else N / b}
    if sampling == "replacement":
        beta_inv = temperature(lr, b)
    elif sampling == "subset":
        beta_inv = temperature(lr, b, N, replacement=False, finite_population="exact")
        meta["finite_population"] = "exact"
    else:
        beta_inv = float("nan")
    return _oracle_kernel(grad, lr, beta_inv, fs.dim, f"sgd-{sampling}", optimizer, meta, aux0)


def _noise_scale(lr, batch, beta_inv):
    if beta_inv is None:
        b = check_positive_int(batch, "batch")
        beta_inv = lr / (2.0 * b)
    beta_inv = check_positive(beta_inv, "beta_inv")
    return beta_inv, float(np.sqrt(2.0 * beta_inv / lr))


def sgld(fs: FiniteSum, lr: float, batch: Optional[int] = None, *, noise_power: float,
         beta_inv: Optional[float] = None, optimizer=None) -> ChainKernel:
    """SGLD at SGD's temperature: ``x <- x - lr grad f + sqrt(2 beta^-1 lr c) xi``.

    ``c = noise_power`` is the per-coordinate noise power, normally
    ``tr D / d`` (``fs.noise_power(x_ref)``), so that the total noise power per
    step, ``2 beta^-1 lr c d = lr^2 tr D / b``, equals SGD's. ``beta_inv``
    defaults to ``lr / (2 batch)``. ``xi ~ N(0, I_d)``.
    """
    if not isinstance(fs, FiniteSum):
        raise ValueError(f"fs: expected a FiniteSum, got {type(fs).__name__}")
    lr = check_positive(lr, "lr")
    c = check_positive(noise_power, "noise_power")
    beta_inv, s = _noise_scale(lr, batch, beta_inv)
    amp = s * float(np.sqrt(c))
    d = fs.dim

    def oracle(x, key, k, aux):
        xi = _normals(key[1], k, d, x.dtype)
        return fs.full_grad(x) + amp * xi, aux

    return _oracle_kernel(oracle, lr, beta_inv, d, "sgld", optimizer, {"noise_power": c, "batch": batch})


def sde(problem, lr: float, batch: Optional[int] = None, *, beta_inv: Optional[float] = None,
        optimizer=None, noise_examples: Optional[int] = None) -> ChainKernel:
    r"""Euler--Maruyama of ``dx = -grad f dt + sqrt(2 beta^-1 D(x)) dW`` with ``dt = lr``.

    ``problem`` is any :mod:`sdesim.problems` problem (``problems.custom(grad_f,
    LowRankDiagonal(...), d)`` for a frozen measured ``D``), or a
    :class:`FiniteSum` for its exact state-dependent
    ``D(x) = (1/N) sum_k (g_k - g)(g_k - g)^T``. The step is
    ``x - lr (grad f + s L(x) xi)``, ``s = sqrt(2 beta^-1 / lr)``, the same
    update as :func:`sdesim.simulate`'s ``method="euler"`` (other random numbers).

    For a :class:`FiniteSum` the noise costs one gradient, never a ``d x d``
    matrix or the ``N x d`` per-example gradients: with ``L = (G - 1 g^T)^T /
    sqrt(N)`` and ``xi ~ N(0, I_N)``,

        g + s L xi = grad_x sum_k w_k f_k(x),   w_k = 1/N + s (xi_k - mean(xi)) / sqrt(N),

    one weighted full-batch gradient per step (the same draws and, up to
    rounding, the same chain as ``sde(fs.problem(), ...)``, which forms
    ``G``). With ``noise_examples = M``, the noise uses ``M`` examples drawn
    uniformly with replacement per step, ``i_1..i_M``, and ``zeta ~ N(0, I_M)``:

        noise = (s / sqrt(M)) sum_m (g_{i_m} - g) zeta_m,

    whose covariance is exactly ``s^2 D(x)`` (``E (g_i - g)(g_i - g)^T = D``
    for a uniform ``i``), so the step's mean and covariance are those of the
    exact SDE; it is Gaussian only given the indices (a scale mixture: fourth
    moments exceed the Gaussian ones by a term of order ``1/M``). Cost: a
    full gradient plus an ``M``-example gradient.
    """
    from .._problem import AbstractProblem

    lr = check_positive(lr, "lr")
    beta_inv, s = _noise_scale(lr, batch, beta_inv)
    meta = {"batch": batch}
    if isinstance(problem, FiniteSum):
        fs = problem
        if noise_examples is None:
            oracle = _finite_sum_noise(fs, s)
        else:
            M = check_positive_int(noise_examples, "noise_examples")
            oracle = _subsampled_noise(fs, s, M)
            meta["noise_examples"] = M
        return _oracle_kernel(oracle, lr, beta_inv, fs.dim, "sde", optimizer, meta)
    if not isinstance(problem, AbstractProblem):
        raise ValueError(f"problem: expected an sdesim problem or a FiniteSum, got {type(problem).__name__}")
    if noise_examples is not None:
        raise ValueError("noise_examples: only for a FiniteSum problem (its per-example gradients)")
    diff = problem.diffusion
    nd = diff.noise_dim

    def oracle(x, key, k, aux):
        xi = _normals(key[1], k, nd, x.dtype)
        return problem.grad_f(x) + s * diff.apply(x, xi), aux

    return _oracle_kernel(oracle, lr, beta_inv, problem.dim, "sde", optimizer, meta)


def _finite_sum_noise(fs: FiniteSum, s: float):
    """Oracle ``grad f + s L xi`` as one weighted gradient (see :func:`sde`)."""
    N = fs.n_data

    def oracle(x, key, k, aux):
        xi = _normals(key[1], k, N, x.dtype)
        w = 1.0 / N + s * (xi - xi.mean()) / np.sqrt(N)
        return fs.weighted_grad(x, w.astype(x.dtype)), aux

    return oracle


def _subsampled_noise(fs: FiniteSum, s: float, M: int):
    """Oracle ``grad f + (s / sqrt(M)) sum_m (g_{i_m} - g) zeta_m`` (see :func:`sde`)."""
    N = fs.n_data

    def oracle(x, key, k, aux):
        idx = (_words(key[0], k, M) % jnp.uint32(N)).astype(jnp.int32)
        zeta = _normals(key[1], k, M, x.dtype)
        c = s / np.sqrt(M)
        g = fs.full_grad(x)
        # sum_m zeta_m f_{i_m} as a mean over the M examples, times M
        gz = jax.grad(lambda x: jnp.sum(zeta * fs.losses(x, *(a[idx] for a in fs.data))))(x)
        return g * (1.0 - c * zeta.sum()) + c * gz, aux

    return oracle


# ---------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------


def chain_keys(seed: int, start: int, count: int):
    """Raw stream keys ``(count, 3, 2) uint32`` of chains ``start .. start+count-1``."""
    base = jax.random.key(int(seed))

    def one(i):
        kc = jax.random.fold_in(base, i)
        return jnp.stack([jax.random.key_data(jax.random.fold_in(kc, s)) for s in range(3)])

    return jax.vmap(one)(jnp.arange(start, start + count, dtype=jnp.uint32))


_SEGMENTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


BATCHINGS = ("vmap", "map")


def _make_segment(kernel: ChainKernel, observe: Optional[Callable], batching: str = "vmap"):
    """Cached jit(states, keys, k0, n_out, every) -> (states, snaps (n_out, C, d), obs | None)."""
    if batching not in BATCHINGS:
        raise ValueError(f"batching: expected one of {BATCHINGS}, got {batching!r}")
    per = _SEGMENTS.setdefault(kernel, {})
    if (observe, batching) not in per:
        per[(observe, batching)] = _build_segment(kernel, observe, batching)
    return per[(observe, batching)]


def _build_segment(kernel: ChainKernel, observe: Optional[Callable], batching: str):
    if batching == "map":
        # chains one after another, each with unbatched (matmul-friendly) steps
        single = _build_segment_raw(kernel.step, observe)

        def mapped(states, keys, k0, n_out, every):
            st, snaps, obs = jax.lax.map(lambda a: single(a[0], a[1], k0, n_out, every), (states, keys))
            snaps = jnp.swapaxes(snaps, 0, 1)
            obs = None if obs is None else jnp.swapaxes(obs, 0, 1)
            return st, snaps, obs

        return jax.jit(mapped, static_argnames=("n_out",))
    step = jax.vmap(kernel.step, in_axes=(0, 0, None))
    obs_fn = None if observe is None else jax.vmap(observe)
    return jax.jit(_build_segment_raw(step, obs_fn), static_argnames=("n_out",))


def _build_segment_raw(step, obs_fn):
    """``segment(states, keys, k0, n_out, every)``: ``n_out`` snapshots, ``every`` steps apart.

    ``every`` is a traced scalar, so the steps between snapshots form one
    ``while`` loop whatever their number: XLA cannot unroll it and fuse the
    arithmetic of neighbouring steps, and a step's floating-point operations
    are the same whatever the save spacing, burn-in or segmenting.
    """

    def segment(states, keys, k0, n_out, every):
        every = jnp.asarray(every, k0.dtype)

        def inner(st, i):
            s0 = k0 + i * every
            st = jax.lax.fori_loop(0, every, lambda j, s: step(s, keys, s0 + j), st)
            out = (st.x, None if obs_fn is None else obs_fn(st.x))
            return st, out

        st, (snaps, obs) = jax.lax.scan(inner, states, jnp.arange(n_out, dtype=k0.dtype))
        return st, snaps, obs

    return segment


def _init_states(kernel, x0, n_chains, dtype):
    x0 = np.asarray(x0, dtype=np.float64)
    if x0.shape == (kernel.dim,):
        x0 = np.broadcast_to(x0, (n_chains, kernel.dim))
    if x0.shape != (n_chains, kernel.dim):
        raise ValueError(f"x0: expected shape ({kernel.dim},) or ({n_chains}, {kernel.dim}), got {x0.shape}")
    if not np.all(np.isfinite(x0)):
        raise ValueError("x0: contains NaN or inf")
    return jax.vmap(kernel.init)(jnp.asarray(x0, dtype))


def _check_run(kernel, n_chains, n_steps, save_every, burn_in, seed):
    if not isinstance(kernel, ChainKernel):
        raise ValueError(f"kernel: expected a ChainKernel (sgd, sgld, sde), got {type(kernel).__name__}")
    n_chains = check_positive_int(n_chains, "n_chains")
    n_steps = check_positive_int(n_steps, "n_steps")
    burn_in = check_nonneg_int(burn_in, "burn_in")
    seed = check_nonneg_int(seed, "seed")
    every = check_save_every(save_every, n_steps)
    return n_chains, n_steps, every, burn_in, seed


def run_chains(kernel: ChainKernel, x0, *, n_chains: int, n_steps: int, seed: int = 0,
               save_every: Optional[int] = None, burn_in: int = 0, dtype="float32",
               max_segment_bytes: int = 64 * 2**20, batching: str = "vmap") -> Ensemble:
    """Run ``n_chains`` independent chains of ``kernel`` in memory.

    ``burn_in`` unsaved steps, then ``n_steps`` steps with a snapshot every
    ``save_every`` (``None``: final state only). Returns an
    :class:`sdesim.Ensemble` with ``x (n_saved, n_chains, dim)``, ``t = step * lr``,
    ``beta_inv = kernel.beta_inv``, ``method = kernel.name``.

    ``batching="vmap"`` (default) advances all chains together (best for many
    cheap chains and on accelerators); ``"map"`` runs the chains one after
    another inside the compiled program (best on CPU for a few chains of a
    network, whose matmuls batch poorly under vmap). Both draw the same
    random numbers; they may differ in the last bits of floating point.
    ``"map"`` gives chain ``c`` the same numbers bit for bit whatever
    ``n_chains``; ``"vmap"`` only to rounding (the module's floating-point
    contract).
    """
    n_chains, n_steps, every, burn_in, seed = _check_run(kernel, n_chains, n_steps, save_every, burn_in, seed)
    dtype = jnp.dtype(dtype)
    states = _init_states(kernel, x0, n_chains, dtype)
    keys = chain_keys(seed, 0, n_chains)
    seg = _make_segment(kernel, None, batching)
    t0 = time.perf_counter()
    k = 0
    if burn_in:
        states, _, _ = seg(states, keys, jnp.int32(0), n_out=1, every=burn_in)
        k = burn_in
    n_saves = n_steps // every
    cap = saves_per_segment(n_chains * kernel.dim * dtype.itemsize, max_segment_bytes)
    out = np.empty((n_saves, n_chains, kernel.dim), dtype)
    done = 0
    for m in plan_segments(n_saves, cap, equal=False):
        states, snaps, _ = seg(states, keys, jnp.int32(k), n_out=m, every=every)
        out[done : done + m] = np.asarray(snaps)
        done += m
        k += m * every
    run_s = time.perf_counter() - t0
    steps = burn_in + every * np.arange(1, n_saves + 1)
    finite, div = _divergence_report(out, steps)
    return Ensemble(
        x=out, t=steps * kernel.lr, step=steps, finite=finite, diverged_step=div, dt=kernel.lr,
        beta_inv=kernel.beta_inv, form="ito", method=kernel.name, seed=seed, burn_in=burn_in,
        save_every=save_every, run_s=run_s, n_steps_total=burn_in + n_steps,
    )


# ---------------------------------------------------------------------------
# streamed long runs with exact resume
# ---------------------------------------------------------------------------

_MANIFEST = "manifest.json"
_CKPT = "checkpoint.npz"


#: What the Python API suggests when a stream's files are damaged (front ends name their own flag).
_STREAM_FIX = "nothing was loaded; start the run over in an empty out_dir"


def _atomic_save_npy(path, arr) -> str:
    """Write ``arr`` as ``.npy`` atomically (temporary name, fsync, rename); return the file's SHA-256."""
    import hashlib
    import io

    buf = io.BytesIO()
    np.save(buf, arr)
    data = buf.getvalue()
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def _save_checkpoint(out_dir, states, saves_done, chunks_done, chunk_sha256):
    """Chain states after ``chunks_done`` chunks, with the SHA-256 of every committed chunk file.

    Written by :func:`sdesim.cli.write_checked_npz` (atomic, checksummed), so
    a damaged checkpoint -- or chunk file -- is refused, never loaded.
    """
    from .._io import write_checked_npz

    leaves = jax.tree_util.tree_leaves(states)
    arrays = {"saves_done": np.int64(saves_done), "chunks_done": np.int64(chunks_done),
              **{f"leaf{i}": np.asarray(l) for i, l in enumerate(leaves)}}
    write_checked_npz(os.path.join(out_dir, _CKPT), arrays, {"chunk_sha256": dict(chunk_sha256)})


def _load_checkpoint(out_dir, fix=_STREAM_FIX):
    """``(arrays, chunk_sha256)`` of a stream's checkpoint, checksum verified (else CheckpointError)."""
    from .._io import CheckpointError, read_checked_npz

    path = os.path.join(out_dir, _CKPT)
    arrays, meta = read_checked_npz(path, fix=fix)
    sha = meta.get("chunk_sha256")
    if not isinstance(sha, dict) or "chunks_done" not in arrays:
        raise CheckpointError(f"checkpoint: {path} is not a stream checkpoint", fix)
    return arrays, sha


def _read_manifest(out_dir, fix=_STREAM_FIX) -> dict:
    from .._io import CheckpointError

    path = os.path.join(out_dir, _MANIFEST)
    try:
        with open(path) as fh:
            man = json.load(fh)
        if not isinstance(man, dict):
            raise TypeError("not a JSON object")
    except FileNotFoundError:
        raise ValueError(f"out_dir: {out_dir} holds no stream ({_MANIFEST} missing)") from None
    except (ValueError, TypeError, OSError) as e:
        raise CheckpointError(f"checkpoint: {path} is damaged ({type(e).__name__})", fix) from None
    return man


def _chunk_bytes(path, sha, fix=_STREAM_FIX) -> bytes:
    """The bytes of a committed chunk file, checked against the SHA-256 its checkpoint recorded."""
    import hashlib

    from .._io import CheckpointError

    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint: chunk file {path} is missing", fix) from None
    if hashlib.sha256(data).hexdigest() != sha:
        raise CheckpointError(f"checkpoint: chunk file {path} fails its checksum (damaged or altered)", fix)
    return data


def _committed_chunks(out_dir, what="x", fix=_STREAM_FIX):
    """``[(path, sha256)]`` of the committed ``what`` chunks, in order, from the verified checkpoint."""
    if what not in ("x", "obs"):
        raise ValueError(f"what: expected 'x' or 'obs', got {what!r}")
    man = _read_manifest(out_dir, fix)
    if not os.path.exists(os.path.join(out_dir, _CKPT)):
        raise ValueError(f"out_dir: {out_dir} has no committed chunk yet")
    if what == "obs" and not man.get("observe"):
        raise ValueError(f"what: {out_dir} was streamed without observables")
    ck, sha = _load_checkpoint(out_dir, fix)
    out = []
    for c in range(int(ck["chunks_done"])):
        name = f"{what}_{c:06d}.npy"
        if name not in sha:
            from .._io import CheckpointError

            raise CheckpointError(f"checkpoint: {os.path.join(out_dir, _CKPT)} records no checksum for {name}", fix)
        out.append((os.path.join(out_dir, name), sha[name]))
    return out


def _read_chunk(path, sha, fix=_STREAM_FIX) -> np.ndarray:
    """One committed chunk, verified (see :func:`_committed_chunks`)."""
    import io

    return np.load(io.BytesIO(_chunk_bytes(path, sha, fix)), allow_pickle=False)


def stream_chains(kernel: ChainKernel, x0, out_dir: str, *, n_chains: int, n_steps: int,
                  save_every: int, burn_in: int = 0, seed: int = 0, chunk_saves: int = 1000,
                  observe: Optional[Callable] = None, dtype="float32", on_chunk: Optional[Callable] = None,
                  config: Optional[dict] = None, batching: str = "vmap") -> ChainStream:
    """Run chains and stream snapshots to ``out_dir``; resume exactly if interrupted.

    Layout of ``out_dir``: ``manifest.json`` (run parameters), chunk files
    ``x_000000.npy`` of shape ``(chunk_saves, n_chains, dim)`` (the last may be
    shorter) and, with ``observe: x (dim,) -> (m,)``, ``obs_000000.npy``
    ``(chunk_saves, n_chains, m)``; ``checkpoint.npz`` holds the chain states
    after the last completed chunk and the SHA-256 of every committed chunk
    file, and is itself checksummed (:func:`sdesim.cli.write_checked_npz`).
    Each file is written to a temporary name, fsynced and renamed, and the
    checkpoint is replaced only after its chunk's files exist, so a run killed
    at any moment (SIGKILL included) restarts from the last checkpoint. A
    damaged, truncated or altered checkpoint or committed chunk file is never
    loaded: resuming (or :func:`load_stream`) raises ``ValueError``
    (``checkpoint: ...``). Because the noise depends only on (seed, chain,
    step) and every chunk runs the same compiled program on the same state,
    the resumed run is bit-identical to an uninterrupted one. Memory is one
    chunk of snapshots.

    ``burn_in`` (a multiple of ``save_every``) steps are run first and not
    saved. Calling again with different parameters on the same ``out_dir``
    raises ``ValueError`` (``out_dir``). ``on_chunk(chunks_done, n_chunks)`` is
    called after each chunk is committed. Returns a :class:`ChainStream` (the
    manifest's fields, typed; ``.load()`` reads the snapshots back).
    """
    n_chains, n_steps, every, burn_in, seed = _check_run(kernel, n_chains, n_steps, save_every, burn_in, seed)
    chunk_saves = check_positive_int(chunk_saves, "chunk_saves")
    if burn_in % every:
        raise ValueError(f"burn_in: must be a multiple of save_every={every}, got {burn_in}")
    dtype = jnp.dtype(dtype)
    n_saves = n_steps // every
    n_chunks = -(-n_saves // chunk_saves)
    manifest = {
        "kernel": kernel.name, "lr": kernel.lr, "beta_inv": kernel.beta_inv, "dim": kernel.dim,
        "meta": kernel.meta, "n_chains": n_chains, "n_steps": n_steps, "save_every": every,
        "burn_in": burn_in, "seed": seed, "chunk_saves": chunk_saves, "n_saves": n_saves,
        "n_chunks": n_chunks, "dtype": dtype.name, "observe": observe is not None, "batching": batching,
        "config": config or {},
    }
    os.makedirs(out_dir, exist_ok=True)
    mpath = os.path.join(out_dir, _MANIFEST)
    prev_run_s = 0.0
    if os.path.exists(mpath):
        old = _read_manifest(out_dir)
        prev_run_s = float(old.get("run_s", 0.0))
        keep = {k: old.get(k) for k in manifest if k not in ("complete", "run_s")}
        if json.loads(json.dumps({k: manifest[k] for k in keep})) != keep:
            raise ValueError(f"out_dir: {out_dir} holds a run with different parameters; use a new directory")
    else:
        atomic_write_json(mpath, manifest)

    states = _init_states(kernel, x0, n_chains, dtype)
    keys = chain_keys(seed, 0, n_chains)
    seg = _make_segment(kernel, observe, batching)
    cpath = os.path.join(out_dir, _CKPT)
    chunks_done = 0
    chunk_sha = {}
    if os.path.exists(cpath):
        states, chunks_done, chunk_sha = _resume_point(out_dir, states)
    elif burn_in:
        # burn-in in save_every-sized pieces of chunk_saves saves (same programs on resume)
        k = 0
        for m in plan_segments(burn_in // every, chunk_saves, equal=False):
            states, _, _ = seg(states, keys, jnp.int32(k * every), n_out=m, every=every)
            k += m
    t0 = time.perf_counter()
    chunk_lengths = plan_segments(n_saves, chunk_saves, equal=False)  # chunk_saves each, the last shorter
    for c in range(chunks_done, n_chunks):
        m = chunk_lengths[c]
        k0 = burn_in + c * chunk_saves * every
        states, snaps, obs = seg(states, keys, jnp.int32(k0), n_out=m, every=every)
        chunk_sha[f"x_{c:06d}.npy"] = _atomic_save_npy(os.path.join(out_dir, f"x_{c:06d}.npy"), np.asarray(snaps))
        if obs is not None:
            chunk_sha[f"obs_{c:06d}.npy"] = _atomic_save_npy(os.path.join(out_dir, f"obs_{c:06d}.npy"),
                                                             np.asarray(obs))
        _save_checkpoint(out_dir, states, (c + 1) * chunk_saves, c + 1, chunk_sha)
        if on_chunk is not None:
            on_chunk(c + 1, n_chunks)
    manifest["complete"] = True
    # compute time summed over sessions (a resumed run adds its own)
    manifest["run_s"] = prev_run_s + time.perf_counter() - t0
    atomic_write_json(mpath, manifest)
    return ChainStream.from_manifest(out_dir, manifest)


def _resume_point(out_dir, states):
    """``(states, chunks_done, chunk_sha256)`` from a verified checkpoint whose chunk files are intact."""
    from .._io import CheckpointError

    ck, sha = _load_checkpoint(out_dir)
    cpath = os.path.join(out_dir, _CKPT)
    like = jax.tree_util.tree_leaves(states)
    leaves = []
    for i, l in enumerate(like):
        a = ck.get(f"leaf{i}")
        if a is None or a.shape != l.shape or a.dtype != l.dtype:
            raise CheckpointError(f"checkpoint: {cpath} does not hold this run's chain states", _STREAM_FIX)
        leaves.append(jnp.asarray(a))
    chunks_done = int(ck["chunks_done"])
    unrecorded = [f"x_{c:06d}.npy" for c in range(chunks_done) if f"x_{c:06d}.npy" not in sha]
    if unrecorded:
        raise CheckpointError(f"checkpoint: {cpath} records no checksum for {unrecorded[0]}", _STREAM_FIX)
    for name, h in sha.items():  # a damaged chunk fails now, not after the run has gone on
        _chunk_bytes(os.path.join(out_dir, name), h)
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(states), leaves), chunks_done, sha


def load_stream(out_dir: str, *, chain: Optional[int] = None, what: str = "x") -> np.ndarray:
    """Read streamed snapshots: ``(n_saved, n_chains, dim)``, or ``(n_saved, dim)`` for one ``chain``.

    ``what="obs"`` reads the observables instead. Only committed chunks are
    read, each checked against the SHA-256 its checkpoint recorded: a damaged,
    truncated or missing checkpoint or chunk file raises ``ValueError``
    (:class:`sdesim.cli.CheckpointError`, message ``checkpoint: ...``).
    """
    parts = []
    for path, sha in _committed_chunks(out_dir, what):
        a = _read_chunk(path, sha)
        parts.append(a if chain is None else np.array(a[:, chain]))
    return np.concatenate(parts, axis=0)
