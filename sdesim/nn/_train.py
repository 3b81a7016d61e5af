"""Training with optax: SGD with Nesterov momentum (or any optax optimizer), a
learning-rate schedule, checkpoints at fractions of training.

Default update (optax ``sgd(lr_t, momentum=0.9, nesterov=True)``)::

    m_{t+1} = mu m_t + grad f_B(x_t),     x_{t+1} = x_t - lr_t (grad f_B(x_t) + mu m_{t+1})

with ``grad f_B`` the gradient of the minibatch loss
``f_B = (1/b) sum_{k in B} f_k``. For sdesim's :class:`sdesim.nn.Sequential`
models ``f_k`` is the cross-entropy in training mode (batch-norm on batch
statistics, dropout on; plus the L2 term of
``loss=CrossEntropyLoss(weight_decay=...)``); for any other model (an
equinox module mapping one example, a function model) ``f_k =
loss(model, x_k, y_k)``, vmapped over the minibatch. ``optimizer=`` replaces
the default by any optax ``GradientTransformation`` (``lr``, ``momentum``,
``nesterov`` and ``schedule`` are then unused). Each epoch draws
``floor(N / b)`` minibatches, without replacement (a fresh permutation, last
partial batch dropped) by default, or i.i.d. with replacement.

Schedules (``lr_t``, ``T`` = total steps): ``"constant"``; ``"step"`` --
``lr`` divided by 10 at 50 % and again at 75 % of training (the paper's
style of schedule); ``"cosine"`` -- ``lr (1 + cos(pi t / T)) / 2``.

Checkpoints are taken at the end of epoch ``max(1, round(f * epochs))`` for
each fraction ``f`` (default 20 %, 40 %, 100 %), kept in memory and, with
``checkpoint_dir``, written as ``ckpt_{100 f:03.0f}.eqx``
(:func:`equinox.tree_serialise_leaves`; read back with :func:`load_checkpoint`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._io import atomic_write
from . import _adapt
from ._adapt import CrossEntropyLoss
from ._data import Dataset
from ._models import trainable
from ._pergrad import cross_entropy

__all__ = [
    "Checkpoint",
    "TrainResult",
    "lr_schedule",
    "minibatch_indices",
    "train",
    "accuracy",
    "evaluate",
    "save_checkpoint",
    "load_checkpoint",
]


@dataclass
class Checkpoint:
    """A model saved at ``fraction`` of training (after ``epoch`` epochs, ``step`` steps)."""

    fraction: float
    epoch: int
    step: int
    model: object
    train_loss: float
    train_accuracy: float
    val_accuracy: float


@dataclass
class TrainResult:
    model: object
    checkpoints: List[Checkpoint]
    history: dict
    config: dict = field(default_factory=dict)


def lr_schedule(lr: float, total_steps: int, kind: str = "step") -> optax.Schedule:
    """``"constant" | "step" | "cosine"`` schedule (see the module docstring)."""
    if not (float(lr) > 0):
        raise ValueError(f"lr: expected a positive number, got {lr!r}")
    T = max(int(total_steps), 1)
    if kind == "constant":
        return optax.constant_schedule(float(lr))
    if kind == "step":
        return optax.piecewise_constant_schedule(float(lr), {int(0.5 * T): 0.1, int(0.75 * T): 0.1})
    if kind == "cosine":
        return optax.cosine_decay_schedule(float(lr), T)
    raise ValueError(f"schedule: expected 'constant', 'step' or 'cosine', got {kind!r}")


def minibatch_indices(key, n_data: int, batch: int, n_batches: int, replacement: bool = False):
    """``(n_batches, batch)`` example indices for one pass.

    Without replacement: consecutive slices of one random permutation (so
    ``n_batches * batch <= n_data``); with replacement: i.i.d. uniform draws.
    """
    if replacement:
        return jax.random.randint(key, (n_batches, batch), 0, n_data)
    if n_batches * batch > n_data:
        raise ValueError(f"batch: {n_batches} batches of {batch} exceed n_data={n_data}")
    perm = jax.random.permutation(key, n_data)
    return perm[: n_batches * batch].reshape(n_batches, batch)


@eqx.filter_jit
def _eval_batch(wrapped, loss, x, y):
    out = _adapt.batch_outputs(wrapped, x)
    # accuracy needs class scores (B, C) and integer labels; otherwise it is nan
    if out.ndim == 2 and jnp.issubdtype(y.dtype, jnp.integer):
        correct = jnp.sum(jnp.argmax(out, axis=-1) == y).astype(jnp.float32)
    else:
        correct = jnp.asarray(jnp.nan, jnp.float32)
    return correct, jnp.sum(_adapt.batch_losses(wrapped, loss, x, y))


def evaluate(model, x, y, *, loss=None, batch_size: int = 1024):
    """``(mean loss, accuracy)`` in evaluation mode.

    The mean loss is ``(1/N) sum_k loss(model, x_k, y_k)`` (default: the
    cross-entropy); the accuracy compares ``argmax`` of the model's outputs
    with integer labels ``y`` (nan when the outputs are not class scores
    ``(C,)`` per example or ``y`` is not integer). Any model form of
    :mod:`sdesim.nn`.
    """
    wrapped, _ = _adapt.as_model(model)
    loss = _adapt.resolve_loss(loss)
    x, y = _adapt.prepare_xy(wrapped, x, y)
    _adapt.check_loss(wrapped, loss, x, y)
    n = x.shape[0]
    correct, total = 0.0, 0.0
    for s in range(0, n, batch_size):
        c, l = _eval_batch(wrapped, loss, x[s : s + batch_size], y[s : s + batch_size])
        correct += float(c)
        total += float(l)
    return total / n, correct / n


def accuracy(model, x, y, *, batch_size: int = 1024) -> float:
    """Fraction of correctly classified examples (evaluation mode; ``argmax`` of the outputs)."""
    return evaluate(model, x, y, batch_size=batch_size)[1]


@eqx.filter_jit
def _epoch(model, opt_state, x, y, idx, key, optimizer, loss):
    """One pass of minibatch steps; ``model`` is the per-example wrapped module."""
    batch_level = _adapt.is_batch_level(model)

    # the scan carries the model's arrays only (functions and other static leaves are closed over)
    arrays, rest = eqx.partition(model, eqx.is_array)

    def step(carry, inp):
        arrays, opt_state = carry
        model = eqx.combine(arrays, rest)
        bi, k = inp
        params, static = eqx.partition(model, trainable(model))

        if batch_level:  # sdesim's Sequential: training mode on the whole minibatch
            def loss_fn(p):
                m = eqx.combine(p, static)
                logits, new_inner = m.model.forward_train(x[bi], k)
                value = jnp.mean(cross_entropy(logits, y[bi]))
                if loss.weight_decay:
                    value = value + loss.penalty(m)
                return value, eqx.tree_at(lambda w: w.model, m, new_inner)
        else:
            def loss_fn(p):
                m = eqx.combine(p, static)
                return jnp.mean(jax.vmap(loss, in_axes=(None, 0, 0))(m, x[bi], y[bi])), m

        (value, new_m), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        _, new_static = eqx.partition(new_m, trainable(new_m))
        new_arrays, _ = eqx.partition(eqx.combine(params, new_static), eqx.is_array)
        return (new_arrays, opt_state), value

    keys = jax.random.split(key, idx.shape[0])
    (arrays, opt_state), losses = jax.lax.scan(step, (arrays, opt_state), (idx, keys))
    return eqx.combine(arrays, rest), opt_state, jnp.mean(losses)


def train(
    model,
    data: Dataset,
    *,
    epochs: int,
    batch_size: int = 32,
    lr: float = 0.1,
    momentum: float = 0.9,
    nesterov: bool = True,
    schedule: str = "step",
    checkpoints: Sequence[float] = (0.2, 0.4, 1.0),
    replacement: bool = False,
    seed: int = 0,
    checkpoint_dir: Optional[str] = None,
    verbose: bool = False,
    loss=None,
    optimizer: Optional[optax.GradientTransformation] = None,
) -> TrainResult:
    """Train ``model`` on ``data.x_train`` with SGD + Nesterov momentum (or ``optimizer``).

    ``model`` is any form of :mod:`sdesim.nn` (an equinox module mapping one
    example, :class:`sdesim.nn.FunctionModel` or ``(apply_fn, params)``, or an
    :class:`sdesim.nn.Sequential`); the trained model comes back in the same
    form. ``loss(model, x_i, y_i) -> scalar`` is the per-example loss
    (default :class:`sdesim.nn.CrossEntropyLoss`; a ``Sequential`` trains in
    training mode and takes only a ``CrossEntropyLoss``). ``optimizer`` is any
    optax ``GradientTransformation``; ``lr``, ``momentum``, ``nesterov`` and
    ``schedule`` build the default one and are unused when it is given.

    Returns a :class:`TrainResult` with the final model, the
    :class:`Checkpoint` list (one per fraction) and a per-epoch ``history``
    (``train_loss``: mean minibatch loss; ``train_accuracy``,
    ``val_accuracy``: evaluation mode).
    """
    for name, v in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
            raise ValueError(f"{name}: expected a positive integer, got {v!r}")
    N = data.n_train
    if batch_size > N:
        raise ValueError(f"batch_size: {batch_size} exceeds the {N} training examples")
    if not (0.0 <= float(momentum) < 1.0):
        raise ValueError(f"momentum: expected a number in [0, 1), got {momentum!r}")
    fracs = sorted({float(f) for f in checkpoints})
    if any(not (0.0 < f <= 1.0) for f in fracs):
        raise ValueError(f"checkpoints: fractions must lie in (0, 1], got {list(checkpoints)}")
    ckpt_epochs = {f: max(1, int(round(f * epochs))) for f in fracs}
    wrapped, restore = _adapt.as_model(model)
    loss = _adapt.resolve_loss(loss)
    if _adapt.is_batch_level(wrapped) and not isinstance(loss, CrossEntropyLoss):
        raise ValueError(
            "loss: sdesim's batch-level models (nn.Sequential) train in training mode with the "
            "cross-entropy; pass loss=None or nn.CrossEntropyLoss(weight_decay=...)"
        )
    if optimizer is not None and not (callable(getattr(optimizer, "init", None))
                                      and callable(getattr(optimizer, "update", None))):
        raise ValueError(f"optimizer: expected an optax GradientTransformation, got {type(optimizer).__name__}")
    x, y = _adapt.prepare_xy(wrapped, data.x_train, data.y_train, name="data.x_train")
    _adapt.check_loss(wrapped, loss, x, y, name="data.x_train")
    n_batches = N // batch_size
    if optimizer is None:
        sched = lr_schedule(lr, epochs * n_batches, schedule)
        optimizer = optax.sgd(sched, momentum=float(momentum) if momentum else None,
                              nesterov=bool(nesterov and momentum))
        opt_name = "sgd"
    else:
        opt_name = "user"
    params, _ = eqx.partition(wrapped, trainable(wrapped))
    opt_state = optimizer.init(params)
    key = jax.random.PRNGKey(seed)
    hist = {"epoch": [], "train_loss": [], "train_accuracy": [], "val_accuracy": []}
    out: List[Checkpoint] = []
    if checkpoint_dir is not None:
        os.makedirs(checkpoint_dir, exist_ok=True)
    for ep in range(1, epochs + 1):
        key, k_idx, k_drop = jax.random.split(key, 3)
        idx = minibatch_indices(k_idx, N, batch_size, n_batches, replacement)
        wrapped, opt_state, value = _epoch(wrapped, opt_state, x, y, idx, k_drop, optimizer, loss)
        value = float(value)
        if not np.isfinite(value):
            raise FloatingPointError(f"training diverged at epoch {ep} (loss {value}); lower lr")
        current = restore(wrapped)
        _, tr_acc = evaluate(current, data.x_train, data.y_train)
        _, va_acc = evaluate(current, data.x_val, data.y_val) if len(data.y_val) else (np.nan, np.nan)
        hist["epoch"].append(ep)
        hist["train_loss"].append(value)
        hist["train_accuracy"].append(tr_acc)
        hist["val_accuracy"].append(va_acc)
        if verbose:
            print(f"  epoch {ep:4d}  loss {value:.4f}  train acc {tr_acc:.4f}  val acc {va_acc:.4f}")
        for f in fracs:
            if ckpt_epochs[f] == ep:
                out.append(Checkpoint(f, ep, ep * n_batches, current, value, tr_acc, va_acc))
                if checkpoint_dir is not None:
                    save_checkpoint(os.path.join(checkpoint_dir, f"ckpt_{100 * f:03.0f}.eqx"), current)
    config = dict(epochs=epochs, batch_size=batch_size, lr=lr, momentum=momentum, nesterov=nesterov,
                  schedule=schedule, replacement=replacement, seed=seed, n_train=N, optimizer=opt_name,
                  loss=type(loss).__name__ if isinstance(loss, CrossEntropyLoss) else getattr(loss, "__name__", "user"),
                  weight_decay=getattr(loss, "weight_decay", None))
    return TrainResult(restore(wrapped), out, hist, config)


def save_checkpoint(path: str, model) -> None:
    """Write all arrays of ``model`` (weights and batch-norm buffers), atomically."""
    atomic_write(path, lambda fh: eqx.tree_serialise_leaves(fh, model))


def load_checkpoint(path: str, like):
    """Read a checkpoint into a model with the structure of ``like``."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such checkpoint")
    return eqx.tree_deserialise_leaves(path, like)
