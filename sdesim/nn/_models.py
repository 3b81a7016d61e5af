"""Small equinox networks mirroring the paper's (docs/paper.md §10), scaled to 8x8 digits.

Every model is a :class:`Sequential` of batch-level layers: it maps a batch of
images ``(B, C, H, W)`` to logits ``(B, n_classes)``.

* ``model(x)``                       -- **evaluation mode**: batch-norm uses its
  running statistics (an affine map per example), dropout is the identity.
  The diffusion matrix ``D`` is always measured in this mode, so the loss of
  example ``k`` depends on example ``k`` only.
* ``model.forward_train(x, key)``    -- training mode: batch-norm normalises with
  the batch statistics, dropout is active; returns ``(logits, new_model)``
  where ``new_model`` carries the updated running statistics
  (``r <- (1 - momentum) r + momentum * batch_stat``, PyTorch's convention
  with ``momentum = 0.1`` and the unbiased batch variance).

The *weights* are the trainable parameters: linear/conv weights and biases and
the batch-norm scale/shift. Running statistics are buffers (not weights):
:func:`trainable` returns the filter that separates them, :func:`n_weights`
counts weights. Initialisation follows PyTorch's default
``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` for weights and biases, drawn with a
NumPy generator seeded by the JAX key (deterministic in the key).

Architectures (paper -> ours):

* tiny-fc    : 7x7 inputs, 16 hidden units, 5 classes (Fig. 3):
  ``Linear(49,16) - BN - ReLU - Linear(16,5)``.
* small-fc   : "two layers, batch-norm, ReLU, 64 hidden units" on 7x7 MNIST;
  ours on 8x8 digits: ``Linear(64,64) - BN - ReLU - Linear(64,10)``, 4 938
  weights (``hidden=(64, 64)`` gives two hidden layers).
* small-lenet: conv 8 and 16 channels with batch-norm and dropout 0.1, FC 128
  (13 338 weights on 28x28 MNIST with 5x5 kernels); ours on 8x8 digits uses
  3x3 kernels with padding 1 and 2x2 max-pooling:
  ``Conv(1,8) - BN - ReLU - Pool - Drop - Conv(8,16) - BN - ReLU - Pool - Drop
  - Linear(64,128) - ReLU - Linear(128,10)``, 10 906 weights.

At the paper's scale, on 28x28 MNIST (:func:`small_lenet_mnist`,
:func:`small_fc_mnist`):

* small-lenet, 5x5 kernels without padding, 3x3 then 2x2 max-pooling:
  ``Conv(1,8,5) - BN - ReLU - Pool3 - Drop - Conv(8,16,5) - BN - ReLU - Pool2 -
  Drop - Linear(64,128) - BN - ReLU - Drop - Linear(128,10)``
  (28 -> 24 -> 8 -> 4 -> 2), 13 338 weights -- exactly the count the paper
  gives for its small-lenet.
* small-fc on 7x7 MNIST with two hidden layers of 64:
  ``Linear(49,64) - BN - ReLU - Linear(64,64) - BN - ReLU - Linear(64,10)``,
  8 266 weights (``hidden`` sets the width: ``h^2 + 65 h + 10`` weights).
"""

from __future__ import annotations

from typing import Optional, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

__all__ = [
    "Sequential",
    "Linear",
    "Conv2d",
    "BatchNorm",
    "RunningStats",
    "ReLU",
    "MaxPool2d",
    "Dropout",
    "Flatten",
    "tiny_fc",
    "small_fc",
    "small_lenet",
    "small_lenet_mnist",
    "small_fc_mnist",
    "make_model",
    "trainable",
    "n_weights",
    "describe",
]


def _np_rng(key) -> np.random.Generator:
    """A NumPy generator seeded by the bits of a JAX key (raw uint32 or typed)."""
    try:
        bits = np.asarray(jax.random.key_data(key))
    except (TypeError, ValueError):
        bits = np.asarray(key)
    return np.random.default_rng([int(b) for b in bits.astype(np.uint64).ravel()])


def _split(key, n: int):
    """``n`` child keys (raw uint32 pairs) derived from ``key`` with NumPy.

    Initialisation runs eagerly; drawing with NumPy avoids compiling a JAX
    random kernel for every weight shape (seconds on a small CPU), while the
    weights stay a deterministic function of the key.
    """
    return list(_np_rng(key).integers(0, 2**32, size=(n, 2), dtype=np.uint32))


def _uniform(key, shape, fan_in, dtype):
    bound = 1.0 / np.sqrt(fan_in)
    return jnp.asarray(_np_rng(key).uniform(-bound, bound, size=shape), dtype=dtype)


class Linear(eqx.Module):
    """``y = x W^T + b`` on ``(B, in)``."""

    weight: Float[Array, "out in"]
    bias: Float[Array, " out"]

    def __init__(self, n_in: int, n_out: int, *, key: PRNGKeyArray, dtype=jnp.float32):
        k1, k2 = _split(key, 2)
        self.weight = _uniform(k1, (n_out, n_in), n_in, dtype)
        self.bias = _uniform(k2, (n_out,), n_in, dtype)

    def __call__(self, x, *, train=False, key=None):
        return x @ self.weight.T + self.bias[None, :], self


class Conv2d(eqx.Module):
    """2D convolution (cross-correlation, stride 1) on ``(B, C, H, W)``."""

    weight: Float[Array, "out in kh kw"]
    bias: Float[Array, " out"]
    padding: int = eqx.field(static=True)

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, padding: int = 1, *, key, dtype=jnp.float32):
        k1, k2 = _split(key, 2)
        fan_in = c_in * kernel * kernel
        self.weight = _uniform(k1, (c_out, c_in, kernel, kernel), fan_in, dtype)
        self.bias = _uniform(k2, (c_out,), fan_in, dtype)
        self.padding = int(padding)

    def __call__(self, x, *, train=False, key=None):
        p = self.padding
        y = jax.lax.conv_general_dilated(
            x, self.weight, window_strides=(1, 1), padding=((p, p), (p, p)),
            dimension_numbers=("NCHW", "OIHW", "NCHW"),
        )
        return y + self.bias[None, :, None, None], self


class RunningStats(eqx.Module):
    """Batch-norm buffers (running mean and variance); not trainable weights."""

    mean: Array
    var: Array


class BatchNorm(eqx.Module):
    """Batch normalisation over all axes but the channel axis 1.

    Training: ``y = gamma (x - mu_B) / sqrt(var_B + eps) + beta`` (biased batch
    variance); evaluation: the same with the running statistics.
    """

    weight: Array
    bias: Array
    stats: RunningStats
    momentum: float = eqx.field(static=True)
    eps: float = eqx.field(static=True)

    def __init__(self, channels: int, *, momentum: float = 0.1, eps: float = 1e-5, dtype=jnp.float32):
        self.weight = jnp.ones((channels,), dtype)
        self.bias = jnp.zeros((channels,), dtype)
        self.stats = RunningStats(jnp.zeros((channels,), dtype), jnp.ones((channels,), dtype))
        self.momentum = float(momentum)
        self.eps = float(eps)

    def __call__(self, x, *, train=False, key=None):
        shape = (1, -1) + (1,) * (x.ndim - 2)
        axes = (0,) + tuple(range(2, x.ndim))
        if train:
            mean = jnp.mean(x, axis=axes)
            var = jnp.var(x, axis=axes)
            n = x.size // x.shape[1]
            m = self.momentum
            new_stats = RunningStats(
                jax.lax.stop_gradient((1 - m) * self.stats.mean + m * mean),
                jax.lax.stop_gradient((1 - m) * self.stats.var + m * var * n / max(n - 1, 1)),
            )
            new = eqx.tree_at(lambda b: b.stats, self, new_stats)
        else:
            mean, var, new = self.stats.mean, self.stats.var, self
        y = (x - mean.reshape(shape)) * jax.lax.rsqrt(var.reshape(shape) + self.eps)
        return y * self.weight.reshape(shape) + self.bias.reshape(shape), new


class ReLU(eqx.Module):
    def __call__(self, x, *, train=False, key=None):
        return jax.nn.relu(x), self


class MaxPool2d(eqx.Module):
    """Non-overlapping ``size x size`` max pooling on ``(B, C, H, W)`` (floor)."""

    size: int = eqx.field(static=True, default=2)

    def __call__(self, x, *, train=False, key=None):
        s = self.size
        y = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 1, s, s), (1, 1, s, s), "VALID")
        return y, self


class Dropout(eqx.Module):
    """Inverted dropout with probability ``p`` (identity in evaluation mode)."""

    p: float = eqx.field(static=True, default=0.1)

    def __call__(self, x, *, train=False, key=None):
        if not train or self.p == 0.0:
            return x, self
        if key is None:
            raise ValueError("key: dropout in training mode needs a PRNG key")
        keep = jax.random.bernoulli(key, 1.0 - self.p, x.shape)
        return jnp.where(keep, x / (1.0 - self.p), jnp.zeros_like(x)), self


class Flatten(eqx.Module):
    def __call__(self, x, *, train=False, key=None):
        return x.reshape(x.shape[0], -1), self


class Sequential(eqx.Module):
    """A chain of batch-level layers; ``name`` is a label for reports."""

    layers: tuple
    name: str = eqx.field(static=True, default="model")

    def __call__(self, x: Float[Array, "batch ..."]) -> Float[Array, "batch classes"]:
        """Evaluation-mode logits."""
        x = jnp.asarray(x, dtype=self.dtype)
        for layer in self.layers:
            x, _ = layer(x, train=False)
        return x

    def forward_train(self, x, key: PRNGKeyArray):
        """Training-mode logits and the model with updated batch-norm buffers."""
        x = jnp.asarray(x, dtype=self.dtype)
        new_layers = []
        keys = jax.random.split(key, len(self.layers))
        for layer, k in zip(self.layers, keys):
            x, new = layer(x, train=True, key=k)
            new_layers.append(new)
        return x, eqx.tree_at(lambda m: m.layers, self, tuple(new_layers))

    @property
    def dtype(self):
        leaves = [l for l in jax.tree_util.tree_leaves(self) if eqx.is_inexact_array(l)]
        return leaves[0].dtype if leaves else jnp.float32


def trainable(model):
    """Filter spec: True on weights, False on batch-norm running statistics."""
    return jax.tree_util.tree_map(
        lambda n: False if isinstance(n, RunningStats) else eqx.is_inexact_array(n),
        model,
        is_leaf=lambda n: isinstance(n, RunningStats),
    )


def n_weights(model) -> int:
    """Number of trainable weights ``d`` (batch-norm buffers excluded)."""
    params, _ = eqx.partition(model, trainable(model))
    return int(sum(np.prod(l.shape) for l in jax.tree_util.tree_leaves(params)))


def describe(model) -> str:
    """One line per layer with its weight count, and the total."""
    lines = [f"{getattr(model, 'name', type(model).__name__)}:"]
    for layer in getattr(model, "layers", ()):
        lines.append(f"  {type(layer).__name__:<10} {n_weights(layer):>7d}")
    lines.append(f"  total weights d = {n_weights(model)}")
    return "\n".join(lines)


def _check_int(v, name):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
        raise ValueError(f"{name}: expected a positive integer, got {v!r}")
    return int(v)


def _fc(n_in, hidden, n_classes, key, dtype, name, batchnorm=True):
    n_in = _check_int(n_in, "n_in")
    n_classes = _check_int(n_classes, "n_classes")
    hidden = (hidden,) if isinstance(hidden, (int, np.integer)) else tuple(hidden)
    if len(hidden) == 0:
        raise ValueError("hidden: need at least one hidden layer")
    keys = _split(key, len(hidden) + 1)
    layers = [Flatten()]
    prev = n_in
    for h, k in zip(hidden, keys[:-1]):
        h = _check_int(h, "hidden")
        layers.append(Linear(prev, h, key=k, dtype=dtype))
        if batchnorm:
            layers.append(BatchNorm(h, dtype=dtype))
        layers.append(ReLU())
        prev = h
    layers.append(Linear(prev, n_classes, key=keys[-1], dtype=dtype))
    return Sequential(tuple(layers), name)


def tiny_fc(key: PRNGKeyArray, *, n_in: int = 49, n_classes: int = 5, hidden=16,
            batchnorm: bool = True, dtype=jnp.float32) -> Sequential:
    """tiny-fc: ``Linear(n_in,16) - BN - ReLU - Linear(16,5)`` (7x7 inputs, 5 classes)."""
    return _fc(n_in, hidden, n_classes, key, dtype, "tiny-fc", batchnorm)


def small_fc(key: PRNGKeyArray, *, n_in: int = 64, n_classes: int = 10, hidden=64,
             batchnorm: bool = True, dtype=jnp.float32) -> Sequential:
    """small-fc: ``Linear(n_in,64) - BN - ReLU - Linear(64,10)`` (4 938 weights on 8x8)."""
    return _fc(n_in, hidden, n_classes, key, dtype, "small-fc", batchnorm)


def small_lenet(key: PRNGKeyArray, *, in_shape: Sequence[int] = (1, 8, 8), n_classes: int = 10,
                channels=(8, 16), fc: int = 128, dropout: float = 0.1,
                dtype=jnp.float32) -> Sequential:
    """small-lenet: two 3x3 conv blocks (8, 16 channels; BN, ReLU, 2x2 max-pool,
    dropout) then ``Linear(., 128) - ReLU - Linear(128, n_classes)``."""
    c, h, w = (int(v) for v in in_shape)
    n_classes = _check_int(n_classes, "n_classes")
    if not (0.0 <= dropout < 1.0):
        raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
    c1, c2 = (_check_int(v, "channels") for v in channels)
    if h // 4 < 1 or w // 4 < 1:
        raise ValueError(f"in_shape: images of {h}x{w} are too small for two 2x2 poolings")
    k = _split(key, 4)
    layers = (
        Conv2d(c, c1, 3, 1, key=k[0], dtype=dtype), BatchNorm(c1, dtype=dtype), ReLU(), MaxPool2d(2),
        Dropout(dropout),
        Conv2d(c1, c2, 3, 1, key=k[1], dtype=dtype), BatchNorm(c2, dtype=dtype), ReLU(), MaxPool2d(2),
        Dropout(dropout),
        Flatten(),
        Linear(c2 * (h // 4) * (w // 4), _check_int(fc, "fc"), key=k[2], dtype=dtype), ReLU(),
        Linear(fc, n_classes, key=k[3], dtype=dtype),
    )
    return Sequential(layers, "small-lenet")


def small_lenet_mnist(key: PRNGKeyArray, *, n_classes: int = 10, channels=(8, 16), fc: int = 128,
                      dropout: float = 0.1, dtype=jnp.float32) -> Sequential:
    """small-lenet at the paper's scale for 28x28 MNIST ``(B, 1, 28, 28)``: 13 338 weights.

    ``Conv(1,8,5) - BN - ReLU - MaxPool3 - Drop - Conv(8,16,5) - BN - ReLU -
    MaxPool2 - Drop - Linear(64,128) - BN - ReLU - Drop - Linear(128,n_classes)``
    (5x5 kernels, no padding; spatial size 28 -> 24 -> 8 -> 4 -> 2).
    """
    n_classes = _check_int(n_classes, "n_classes")
    if not (0.0 <= dropout < 1.0):
        raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
    c1, c2 = (_check_int(v, "channels") for v in channels)
    fc = _check_int(fc, "fc")
    k = _split(key, 4)
    layers = (
        Conv2d(1, c1, 5, 0, key=k[0], dtype=dtype), BatchNorm(c1, dtype=dtype), ReLU(), MaxPool2d(3),
        Dropout(dropout),
        Conv2d(c1, c2, 5, 0, key=k[1], dtype=dtype), BatchNorm(c2, dtype=dtype), ReLU(), MaxPool2d(2),
        Dropout(dropout),
        Flatten(),
        Linear(c2 * 2 * 2, fc, key=k[2], dtype=dtype), BatchNorm(fc, dtype=dtype), ReLU(), Dropout(dropout),
        Linear(fc, n_classes, key=k[3], dtype=dtype),
    )
    return Sequential(layers, "small-lenet-mnist")


def small_fc_mnist(key: PRNGKeyArray, *, hidden: int = 64, n_in: int = 49, n_classes: int = 10,
                   dtype=jnp.float32) -> Sequential:
    """small-fc at the paper's scale for 7x7 MNIST (``n_in = 49``): two hidden layers of ``hidden``,
    ``Linear(49,h) - BN - ReLU - Linear(h,h) - BN - ReLU - Linear(h,10)``, ``h^2 + 65 h + 10``
    weights (8 266 for ``h = 64``)."""
    h = _check_int(hidden, "hidden")
    return _fc(n_in, (h, h), n_classes, key, dtype, "small-fc-mnist", True)


def make_model(name: str, key: PRNGKeyArray, *, image_shape: Sequence[int], n_classes: int,
               dtype=jnp.float32) -> Sequential:
    """Build ``"tiny-fc" | "small-fc" | "small-lenet"`` for images of ``image_shape``."""
    n_in = int(np.prod(image_shape))
    if name == "tiny-fc":
        return tiny_fc(key, n_in=n_in, n_classes=n_classes, dtype=dtype)
    if name == "small-fc":
        return small_fc(key, n_in=n_in, n_classes=n_classes, dtype=dtype)
    if name == "small-lenet":
        return small_lenet(key, in_shape=image_shape, n_classes=n_classes, dtype=dtype)
    raise ValueError(f"name: unknown model {name!r}; expected tiny-fc, small-fc or small-lenet")
