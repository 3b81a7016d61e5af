"""Per-example gradients ``g_k = grad f_k(w)`` of a network, as an ``(N, d)`` matrix.

``f_k(w) = loss(model_w, x_k, y_k)`` is the per-example loss (default: the
softmax cross-entropy, natural log, of example ``k``, plus an optional L2
term; :class:`sdesim.nn.CrossEntropyLoss`), with the model in evaluation
mode. ``model`` is any model form of :mod:`sdesim.nn` (an equinox module
mapping one example, :class:`sdesim.nn.FunctionModel` or ``(apply_fn,
params)``, or sdesim's batch-level :class:`sdesim.nn.Sequential`). ``w`` is
the flat vector of the ``d`` weights in the order of
:func:`jax.flatten_util.ravel_pytree` over the weights (:func:`flat_weights`).
The full loss is ``f = (1/N) sum_k f_k``.

Implementation: ``jax.grad`` of the single-example loss with respect to the
weight PyTree, each per-example gradient concatenated into one row, vmapped
over examples -- inside :func:`jax.lax.map` with ``batch_size=chunk_size``
when ``N > chunk_size``, so memory for activations stays bounded by the
chunk and one compiled program serves every chunk. (Differentiating with
respect to the flat vector through ``unravel`` is slower: the transpose of
each slice materialises a full-length cotangent per leaf.) Before any work
the model and the loss are traced on the first example, so a wrong input
shape or a batched loss raises one ``ValueError`` naming the argument.
"""

from __future__ import annotations

from typing import Callable, Tuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from . import _adapt
from ._models import trainable

__all__ = [
    "cross_entropy",
    "flat_weights",
    "per_example_loss",
    "per_example_grads",
    "full_gradient",
]


def cross_entropy(logits: Float[Array, "batch classes"], labels: Int[Array, " batch"]) -> Float[Array, " batch"]:
    """Per-example ``-log softmax(logits)[label]``."""
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.take_along_axis(logp, labels[:, None].astype(jnp.int32), axis=-1)[:, 0]


def flat_weights(model) -> Tuple[Float[Array, " d"], Callable]:
    """``(w, rebuild)``: the flat weight vector and ``rebuild(w') -> model`` (in the form given).

    Any model form (see :mod:`sdesim.nn`): the weights are the floating-point
    leaves, batch-norm running statistics excluded (they are kept from
    ``model``). ``rebuild`` keeps the dtype of ``w'``.
    """
    wrapped, restore = _adapt.as_model(model)
    flat = _adapt.Flat(wrapped, restore)
    return flat.w0, flat.model


def _check_chunk(chunk_size):
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size <= 0:
        raise ValueError(f"chunk_size: expected a positive integer, got {chunk_size!r}")
    return int(chunk_size)


def _prepare(model, x, y, loss):
    wrapped, _ = _adapt.as_model(model)
    loss = _adapt.resolve_loss(loss)
    x, y = _adapt.prepare_xy(wrapped, x, y)
    _adapt.check_loss(wrapped, loss, x, y)
    return wrapped, loss, x, y


@eqx.filter_jit
def _losses(wrapped, loss, x, y):
    return _adapt.batch_losses(wrapped, loss, x, y)


def per_example_loss(model, x, y, *, loss=None) -> Float[Array, " N"]:
    """``f_k`` for every example (evaluation mode)."""
    wrapped, loss, x, y = _prepare(model, x, y, loss)
    return _losses(wrapped, loss, x, y)


@eqx.filter_jit
def _grads(wrapped, loss, x, y, chunk_size):
    params, static = eqx.partition(wrapped, trainable(wrapped))

    def row(xk, yk):
        g = jax.grad(lambda p: loss(eqx.combine(p, static), xk, yk))(params)
        # same leaf order as flat_weights
        return jnp.concatenate([leaf.reshape(-1) for leaf in jax.tree_util.tree_leaves(g)])

    if x.shape[0] <= chunk_size:
        return jax.vmap(row)(x, y)
    return jax.lax.map(lambda xy: row(xy[0], xy[1]), (x, y), batch_size=chunk_size)


def per_example_grads(model, x, y, *, loss=None, chunk_size: int = 2048) -> Float[Array, "N d"]:
    """Rows ``g_k = grad_w f_k(w)``, shape ``(n_examples, n_params)``, in the model's dtype.

    ``loss(model, x_i, y_i) -> scalar`` is the per-example loss (default
    :class:`sdesim.nn.CrossEntropyLoss`). ``chunk_size`` examples are
    differentiated at once (vmap); with more examples, chunks run in
    sequence (``lax.map``), so peak memory is one chunk's activations plus
    the ``N x d`` output. Column order is that of :func:`flat_weights`.
    """
    chunk_size = _check_chunk(chunk_size)
    wrapped, loss, x, y = _prepare(model, x, y, loss)
    return _grads(wrapped, loss, x, y, int(min(chunk_size, x.shape[0])))


@eqx.filter_jit
def _full_grad(wrapped, loss, x, y):
    params, static = eqx.partition(wrapped, trainable(wrapped))
    g = jax.grad(lambda p: jnp.mean(_adapt.batch_losses(eqx.combine(p, static), loss, x, y)))(params)
    return jnp.concatenate([leaf.reshape(-1) for leaf in jax.tree_util.tree_leaves(g)])


def full_gradient(model, x, y, *, loss=None) -> Float[Array, " d"]:
    """``grad f = (1/N) sum_k g_k`` by differentiating the mean loss of the batch.

    An independent code path from :func:`per_example_grads` (one backward
    pass through the batched network for :class:`sdesim.nn.Sequential`; the
    gradient of the mean of the vmapped losses otherwise), used as a
    minibatch gradient in tests.
    """
    wrapped, loss, x, y = _prepare(model, x, y, loss)
    return _full_grad(wrapped, loss, x, y)
