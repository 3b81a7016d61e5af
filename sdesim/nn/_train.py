"""Training with optax: SGD with Nesterov momentum, a learning-rate schedule,
checkpoints at fractions of training.

Update (optax ``sgd(lr_t, momentum=0.9, nesterov=True)``)::

    m_{t+1} = mu m_t + grad f_B(x_t),     x_{t+1} = x_t - lr_t (grad f_B(x_t) + mu m_{t+1})

with ``grad f_B`` the mean cross-entropy gradient of a minibatch ``B`` in
training mode (batch-norm on batch statistics, dropout on). Each epoch draws
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
def _predict(model, x):
    return jnp.argmax(model(x), axis=-1), model(x)


def evaluate(model, x, y, *, batch_size: int = 1024):
    """``(mean cross-entropy, accuracy)`` in evaluation mode."""
    n = x.shape[0]
    correct, loss = 0, 0.0
    for s in range(0, n, batch_size):
        xb, yb = jnp.asarray(x[s : s + batch_size]), jnp.asarray(y[s : s + batch_size])
        pred, logits = _predict(model, xb)
        correct += int(jnp.sum(pred == yb))
        loss += float(jnp.sum(cross_entropy(logits, yb)))
    return loss / n, correct / n


def accuracy(model, x, y, *, batch_size: int = 1024) -> float:
    """Fraction of correctly classified examples (evaluation mode)."""
    return evaluate(model, x, y, batch_size=batch_size)[1]


@eqx.filter_jit
def _epoch(model, opt_state, x, y, idx, key, optimizer):
    def step(carry, inp):
        model, opt_state = carry
        bi, k = inp
        params, static = eqx.partition(model, trainable(model))

        def loss_fn(p):
            logits, new_m = eqx.combine(p, static).forward_train(x[bi], k)
            return jnp.mean(cross_entropy(logits, y[bi])), new_m

        (loss, new_m), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        _, new_static = eqx.partition(new_m, trainable(new_m))
        return (eqx.combine(params, new_static), opt_state), loss

    keys = jax.random.split(key, idx.shape[0])
    (model, opt_state), losses = jax.lax.scan(step, (model, opt_state), (idx, keys))
    return model, opt_state, jnp.mean(losses)


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
) -> TrainResult:
    """Train ``model`` on ``data.x_train`` with SGD + Nesterov momentum.

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
    n_batches = N // batch_size
    sched = lr_schedule(lr, epochs * n_batches, schedule)
    optimizer = optax.sgd(sched, momentum=float(momentum) if momentum else None, nesterov=bool(nesterov and momentum))
    params, _ = eqx.partition(model, trainable(model))
    opt_state = optimizer.init(params)
    dtype = model.dtype
    x = jnp.asarray(data.x_train, dtype=dtype)
    y = jnp.asarray(data.y_train, dtype=jnp.int32)
    key = jax.random.PRNGKey(seed)
    hist = {"epoch": [], "train_loss": [], "train_accuracy": [], "val_accuracy": []}
    out: List[Checkpoint] = []
    if checkpoint_dir is not None:
        os.makedirs(checkpoint_dir, exist_ok=True)
    for ep in range(1, epochs + 1):
        key, k_idx, k_drop = jax.random.split(key, 3)
        idx = minibatch_indices(k_idx, N, batch_size, n_batches, replacement)
        model, opt_state, loss = _epoch(model, opt_state, x, y, idx, k_drop, optimizer)
        loss = float(loss)
        if not np.isfinite(loss):
            raise FloatingPointError(f"training diverged at epoch {ep} (loss {loss}); lower lr")
        _, tr_acc = evaluate(model, data.x_train, data.y_train)
        _, va_acc = evaluate(model, data.x_val, data.y_val) if len(data.y_val) else (np.nan, np.nan)
        hist["epoch"].append(ep)
        hist["train_loss"].append(loss)
        hist["train_accuracy"].append(tr_acc)
        hist["val_accuracy"].append(va_acc)
        if verbose:
            print(f"  epoch {ep:4d}  loss {loss:.4f}  train acc {tr_acc:.4f}  val acc {va_acc:.4f}")
        for f in fracs:
            if ckpt_epochs[f] == ep:
                out.append(Checkpoint(f, ep, ep * n_batches, model, loss, tr_acc, va_acc))
                if checkpoint_dir is not None:
                    save_checkpoint(os.path.join(checkpoint_dir, f"ckpt_{100 * f:03.0f}.eqx"), model)
    config = dict(epochs=epochs, batch_size=batch_size, lr=lr, momentum=momentum, nesterov=nesterov,
                  schedule=schedule, replacement=replacement, seed=seed, n_train=N)
    return TrainResult(model, out, hist, config)


def save_checkpoint(path: str, model) -> None:
    """Write all arrays of ``model`` (weights and batch-norm buffers), atomically."""
    tmp = path + ".tmp"
    eqx.tree_serialise_leaves(tmp, model)
    os.replace(tmp, path)


def load_checkpoint(path: str, like):
    """Read a checkpoint into a model with the structure of ``like``."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such checkpoint")
    return eqx.tree_deserialise_leaves(path, like)
