"""Per-example gradients ``g_k = grad f_k(x)`` of a network, as an ``(N, d)`` matrix.

``f_k(x) = CE(model_x(image_k), label_k)`` is the cross-entropy (natural log)
of example ``k`` with the model in evaluation mode (see
:mod:`sdesim.nn._models`); ``model`` is any equinox module mapping a batch ``(B, ...)`` to logits
``(B, classes)`` (the :mod:`sdesim.nn` models do so in evaluation mode);
``x`` is the flat vector of the ``d`` trainable
weights in the order of :func:`jax.flatten_util.ravel_pytree` over the
weights (:func:`flat_weights`). The full loss is ``f = (1/N) sum_k f_k``.

Implementation: ``jax.grad`` of the single-example loss with respect to the
weight PyTree, each per-example gradient concatenated into one row, vmapped
over examples -- inside :func:`jax.lax.map` with ``batch_size=chunk_size``
when ``N > chunk_size``, so memory for activations stays bounded by the
chunk and one compiled program serves every chunk. (Differentiating with
respect to the flat vector through ``unravel`` is slower: the transpose of
each slice materialises a full-length cotangent per leaf.)
"""

from __future__ import annotations

from typing import Callable, Tuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float, Int

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
    """``(w, rebuild)``: the flat weight vector and ``rebuild(w') -> model``.

    Batch-norm running statistics are kept from ``model``.
    """
    params, static = eqx.partition(model, trainable(model))
    flat, unravel = ravel_pytree(params)

    def rebuild(w):
        return eqx.combine(unravel(w), static)

    return flat, rebuild


def _model_dtype(model):
    leaves = [l for l in jax.tree_util.tree_leaves(model) if eqx.is_inexact_array(l)]
    if not leaves:
        raise ValueError("model: has no floating-point weights")
    return leaves[0].dtype


def _check_xy(x, y, name="x"):
    x = np.asarray(x) if not isinstance(x, jax.Array) else x
    y = np.asarray(y) if not isinstance(y, jax.Array) else y
    if x.ndim < 2:
        raise ValueError(f"{name}: expected a batch of examples (N, ...), got shape {x.shape}")
    if y.shape != (x.shape[0],):
        raise ValueError(f"y: expected shape ({x.shape[0]},) to match x, got {y.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{name}: no examples")
    return x, y


def per_example_loss(model, x, y) -> Float[Array, " N"]:
    """``f_k`` for every example (evaluation mode)."""
    x, y = _check_xy(x, y)
    return cross_entropy(model(x), jnp.asarray(y))


@eqx.filter_jit
def _grads(model, x, y, chunk_size):
    params, static = eqx.partition(model, trainable(model))

    def row(xk, yk):
        def loss_k(p):
            logits = eqx.combine(p, static)(xk[None])
            return cross_entropy(logits, yk[None])[0]

        g = jax.grad(loss_k)(params)
        # same leaf order as ravel_pytree(params) in flat_weights
        return jnp.concatenate([leaf.reshape(-1) for leaf in jax.tree_util.tree_leaves(g)])

    if x.shape[0] <= chunk_size:
        return jax.vmap(row)(x, y)
    return jax.lax.map(lambda xy: row(xy[0], xy[1]), (x, y), batch_size=chunk_size)


def per_example_grads(model, x, y, *, chunk_size: int = 2048) -> Float[Array, "N d"]:
    """Rows ``g_k = grad_w f_k(w)``, shape ``(N, d)``, in the model's dtype.

    ``chunk_size`` examples are differentiated at once (vmap); with more
    examples, chunks run in sequence (``lax.map``), so peak memory is one
    chunk's activations plus the ``N x d`` output. Column order is that of
    :func:`flat_weights`.
    """
    x, y = _check_xy(x, y)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size <= 0:
        raise ValueError(f"chunk_size: expected a positive integer, got {chunk_size!r}")
    x = jnp.asarray(x, dtype=_model_dtype(model))
    y = jnp.asarray(y, dtype=jnp.int32)
    return _grads(model, x, y, int(min(chunk_size, x.shape[0])))


@eqx.filter_jit
def _full_grad(model, x, y):
    flat, rebuild = flat_weights(model)
    return jax.grad(lambda w: jnp.mean(cross_entropy(rebuild(w)(x), y)))(flat)


def full_gradient(model, x, y) -> Float[Array, " d"]:
    """``grad f = (1/N) sum_k g_k`` by differentiating the mean loss of the batch.

    An independent code path from :func:`per_example_grads` (one backward pass
    through the batched network), used as a minibatch gradient in tests.
    """
    x, y = _check_xy(x, y)
    return _full_grad(model, jnp.asarray(x, dtype=_model_dtype(model)), jnp.asarray(y, dtype=jnp.int32))
