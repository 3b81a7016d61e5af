"""Any model, any per-example loss: how :mod:`sdesim.nn` and
:meth:`sdesim.chains.FiniteSum.from_model` read a user's network.

Models
------
A *model* is a PyTree in one of three forms:

* an :class:`equinox.Module` that maps ONE example ``x_i`` to an output
  (``eqx.nn.MLP(49, 10, 16, 1)`` maps ``(49,) -> (10,)``);
* a pure function with a parameter PyTree: :class:`FunctionModel` ``(apply_fn,
  params)``, or the plain pair ``(apply_fn, params)``; the output for one
  example is ``apply_fn(params, x_i)``. A flax module adapts as
  ``(lambda p, x: module.apply(p, x), variables)``, a haiku transform as
  ``(lambda p, x: f.apply(p, None, x), params)``;
* sdesim's own :class:`sdesim.nn.Sequential` (``tiny_fc``, ``small_fc``,
  ``small_lenet``), which maps a batch ``(B, ...)``; it is used per example
  as ``model(x_i[None])[0]`` in evaluation mode, and trains in training mode
  (batch-norm on batch statistics, dropout).

Other models are treated as deterministic functions of their weights (no
dropout keys, no mutable state); put equinox layers with such behaviour in
inference mode.

Weights
-------
The weights ``w`` are the floating-point array leaves of the model
(:func:`sdesim.nn.trainable`: ``eqx.is_inexact_array``, batch-norm running
statistics of :class:`Sequential` excluded), each raveled in C order and
concatenated in ``jax.tree_util.tree_leaves`` order -- the order of
:func:`jax.flatten_util.ravel_pytree` over ``eqx.partition(model,
trainable(model))[0]``. ``d = len(w)``. Mapping a flat vector back keeps the
vector's dtype (a float64 chain evaluates the model in float64).

Loss
----
A per-example loss is ``loss(model, x_i, y_i) -> scalar`` where ``model``
maps one example (a :class:`Sequential` is handed over already wrapped so
that it does). The full loss is ``f(w) = (1/N) sum_k loss(model_w, x_k, y_k)``.
The default, :class:`CrossEntropyLoss`, is

    f_k(w) = -log softmax(model_w(x_k))[y_k] + (lambda / 2) ||w||^2

with integer labels and ``lambda = weight_decay`` (default 0). The decay
term is the same for every example, so it shifts every per-example gradient
by ``lambda w``: the mean gradient changes, the diffusion matrix
``D = (1/N) sum_k (g_k - g)(g_k - g)^T`` does not.
"""

from __future__ import annotations

from typing import Any, Callable, Tuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._models import Sequential, trainable

__all__ = ["FunctionModel", "CrossEntropyLoss"]


class FunctionModel(eqx.Module):
    """A pure function with a parameter PyTree: ``output = apply_fn(params, x_i)`` for ONE example.

    ``params`` is any PyTree (dicts, lists, flax ``variables``); its
    floating-point leaves are the weights. ``apply_fn`` must be hashable (a
    function is) and is not differentiated.
    """

    apply_fn: Callable = eqx.field(static=True)
    params: Any

    def __call__(self, x):
        return self.apply_fn(self.params, x)


class CrossEntropyLoss(eqx.Module):
    """Per-example softmax cross-entropy ``-log softmax(model(x_i))[y_i] + (lambda/2) ||w||^2``.

    ``y_i`` is an integer class label; ``model(x_i)`` are the logits
    ``(n_classes,)``. ``weight_decay = lambda >= 0`` adds the L2 penalty over
    all weights ``w`` (see :func:`sdesim.nn.trainable`), biases included.
    """

    weight_decay: float = eqx.field(static=True, default=0.0)

    def __check_init__(self):
        wd = self.weight_decay
        if isinstance(wd, bool) or not isinstance(wd, (int, float, np.floating, np.integer)) \
                or not np.isfinite(wd) or wd < 0:
            raise ValueError(f"weight_decay: expected a non-negative number, got {wd!r}")

    def penalty(self, model):
        """``(lambda / 2) ||w||^2`` (0.0 without weight decay)."""
        if not self.weight_decay:
            return 0.0
        leaves = jax.tree_util.tree_leaves(eqx.filter(model, trainable(model)))
        return 0.5 * self.weight_decay * sum(jnp.sum(jnp.square(l)) for l in leaves)

    def from_logits(self, logits, label):
        """``-log softmax(logits)[label]`` for one example (no penalty)."""
        return -jax.nn.log_softmax(logits)[label]

    def __call__(self, model, x, y):
        return self.from_logits(model(x), y) + self.penalty(model)


class _PerExample(eqx.Module):
    """A batch-level :class:`Sequential` seen as a per-example model (evaluation mode)."""

    model: Sequential

    def __call__(self, x):
        return self.model(x[None])[0]


# ---------------------------------------------------------------------------
# recognising and wrapping


def is_pair(obj) -> bool:
    return isinstance(obj, tuple) and len(obj) == 2 and callable(obj[0]) \
        and not isinstance(obj[0], (np.ndarray, jax.Array))


def is_model(obj) -> bool:
    """A model in any accepted form (not a gradient matrix)."""
    return isinstance(obj, eqx.Module) or is_pair(obj)


def as_model(model) -> Tuple[eqx.Module, Callable]:
    """``(wrapped, restore)``: a per-example equinox module and the map back to the user's form."""
    if isinstance(model, Sequential):
        return _PerExample(model), lambda m: m.model
    if is_pair(model):
        return FunctionModel(model[0], model[1]), lambda m: (m.apply_fn, m.params)
    if isinstance(model, eqx.Module):
        if not callable(model):
            raise ValueError(f"model: {type(model).__name__} is not callable; expected a module mapping one example")
        return model, lambda m: m
    raise ValueError(
        f"model: expected an equinox.Module mapping one example, a FunctionModel(apply_fn, params) "
        f"or a pair (apply_fn, params), got {type(model).__name__}"
    )


def is_batch_level(wrapped) -> bool:
    return isinstance(wrapped, _PerExample)


def resolve_loss(loss):
    if loss is None:
        return CrossEntropyLoss()
    if not callable(loss):
        raise ValueError(f"loss: expected a callable loss(model, x_i, y_i) -> scalar, got {type(loss).__name__}")
    return loss


def model_dtype(wrapped):
    leaves = jax.tree_util.tree_leaves(eqx.filter(wrapped, trainable(wrapped)))
    if not leaves:
        raise ValueError("model: has no floating-point weights")
    return leaves[0].dtype


def param_tree(wrapped):
    """The part of ``wrapped`` a user calls parameters (gradients come back in this form)."""
    if isinstance(wrapped, _PerExample):
        return wrapped.model
    if isinstance(wrapped, FunctionModel):
        return wrapped.params
    return wrapped


class Flat:
    """Flat weight vector of a (wrapped) model and the maps back.

    ``w0`` -- the ``(d,)`` weights (leaves raveled and concatenated in
    ``tree_leaves`` order); ``wrapped(v)`` -- the per-example module with
    weights ``v``; ``model(v)`` -- the same in the user's form; ``tree(v)``
    -- a parameter PyTree shaped like the model's weights (``None`` where the
    model has no weights, e.g. batch-norm buffers), as ``eqx.filter_grad``
    would return a gradient; for a function model, the ``params`` PyTree.
    """

    def __init__(self, wrapped, restore: Callable = lambda m: m):
        self.params, self.static = eqx.partition(wrapped, trainable(wrapped))
        leaves, self.treedef = jax.tree_util.tree_flatten(self.params)
        self.shapes = [tuple(l.shape) for l in leaves]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.dim = int(sum(self.sizes))
        self.restore = restore
        if self.dim == 0:
            raise ValueError("model: has no floating-point weights")
        self.w0 = jnp.concatenate([jnp.ravel(l) for l in leaves])

    def unravel(self, v):
        """Weights PyTree (``eqx.partition`` form) from a flat vector; keeps ``v``'s dtype."""
        if not hasattr(v, "shape"):
            v = np.asarray(v)
        if tuple(v.shape) != (self.dim,):
            raise ValueError(f"w: expected a flat weight vector of shape ({self.dim},), got {tuple(v.shape)}")
        parts, off = [], 0
        for shape, size in zip(self.shapes, self.sizes):
            parts.append(v[off : off + size].reshape(shape))
            off += size
        return jax.tree_util.tree_unflatten(self.treedef, parts)

    def wrapped(self, v):
        return eqx.combine(self.unravel(v), self.static)

    def model(self, v):
        return self.restore(self.wrapped(v))

    def tree(self, v):
        return param_tree(self.unravel(v))


# ---------------------------------------------------------------------------
# inputs


def _first_line(e: Exception) -> str:
    msg = str(e).strip().splitlines()
    text = msg[0] if msg else ""
    return f"{type(e).__name__}: {text[:300]}"


def _sds(a):
    return jax.ShapeDtypeStruct(a.shape, a.dtype)


def prepare_xy(wrapped, x, y, name: str = "x"):
    """Arrays ``x (N, ...)`` (floating ones cast to the model's dtype) and ``y (N, ...)``."""
    x = x if isinstance(x, jax.Array) else np.asarray(x)
    y = y if isinstance(y, jax.Array) else np.asarray(y)
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"{name}: expected a batch of examples (N, ...), got shape {x.shape}")
    if y.ndim < 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"y: expected {x.shape[0]} targets (one per example of {name}), got shape {y.shape}")
    if jnp.issubdtype(x.dtype, jnp.floating):
        x = jnp.asarray(x, dtype=model_dtype(wrapped))
    else:
        x = jnp.asarray(x)
    if jnp.issubdtype(y.dtype, jnp.integer) or y.dtype == bool:
        y = jnp.asarray(y, dtype=jnp.int32)
    else:
        y = jnp.asarray(y)
    return x, y


def check_loss(wrapped, loss, x, y, name: str = "x") -> None:
    """Trace (never run) the model and the loss on the first example; raise one clear ValueError.

    With the default cross-entropy the model must give logits ``(C,)`` for
    one example and ``y`` must hold integer labels in ``0..C-1``.
    """
    x0, y0 = _sds(x[0]), _sds(y[0])
    if isinstance(loss, CrossEntropyLoss):
        try:
            out = eqx.filter_eval_shape(lambda m, xi: m(xi), wrapped, x0)
        except Exception as e:  # noqa: BLE001 -- any failure is reported with its first line
            hint = ""
            if x0.ndim > 1:
                flat = jax.ShapeDtypeStruct((int(np.prod(x0.shape)),), x0.dtype)
                try:
                    eqx.filter_eval_shape(lambda m, xi: m(xi), wrapped, flat)
                    hint = (f"; the model accepts the example flattened to {flat.shape}: pass "
                            f"{name}.reshape(len({name}), -1) (or data.flatten() for a Dataset)")
                except Exception:  # noqa: BLE001
                    pass
            raise ValueError(
                f"{name}: the model fails on one example of shape {tuple(x0.shape)} ({_first_line(e)}); "
                f"a model maps ONE example x_i to its output{hint}"
            ) from None
        if getattr(out, "ndim", None) != 1:
            raise ValueError(
                f"model: the default cross-entropy loss needs logits of shape (n_classes,) for one "
                f"example, got {getattr(out, 'shape', out)}; pass loss=loss(model, x_i, y_i) -> scalar"
            )
        if not jnp.issubdtype(y.dtype, jnp.integer):
            raise ValueError(f"y: the default cross-entropy loss needs integer class labels, got dtype {y.dtype}")
        n_cls = int(out.shape[0])
        lo, hi = int(jnp.min(y)), int(jnp.max(y))
        if lo < 0 or hi >= n_cls:
            raise ValueError(f"y: labels must lie in 0..{n_cls - 1} for the model's {n_cls} outputs, "
                             f"got values in [{lo}, {hi}]")
    try:
        out = eqx.filter_eval_shape(loss, wrapped, x0, y0)
    except Exception as e:  # noqa: BLE001
        raise ValueError(
            f"loss: fails on one example (x_i {tuple(x0.shape)}, y_i {tuple(y0.shape)}): {_first_line(e)}; "
            f"expected a per-example loss(model, x_i, y_i) -> scalar"
        ) from None
    if getattr(out, "shape", None) != ():
        raise ValueError(
            f"loss: returned shape {getattr(out, 'shape', out)} for one example; pass a per-example "
            f"loss(model, x_i, y_i) -> scalar"
        )


def batch_outputs(wrapped, x):
    """Outputs for a batch: one batched call for a :class:`Sequential`, ``vmap`` otherwise."""
    if isinstance(wrapped, _PerExample):
        return wrapped.model(x)
    return jax.vmap(wrapped)(x)


def batch_losses(wrapped, loss, x, y):
    """Per-example losses ``(B,)``; a :class:`Sequential` with cross-entropy runs batched."""
    if isinstance(wrapped, _PerExample) and isinstance(loss, CrossEntropyLoss):
        logp = jax.nn.log_softmax(wrapped.model(x), axis=-1)
        ce = -jnp.take_along_axis(logp, y[:, None].astype(jnp.int32), axis=-1)[:, 0]
        return ce + loss.penalty(wrapped)
    return jax.vmap(loss, in_axes=(None, 0, 0))(wrapped, x, y)
