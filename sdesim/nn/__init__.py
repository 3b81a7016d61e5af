"""Deep networks: data, small models, training, per-example gradients and the
diffusion matrix ``D`` with its eigenspectrum (docs/paper.md §1, §10; docs/nn.md).

Typical use::

    import jax, sdesim.nn as nn
    data = nn.load_digits()                                   # 8x8, 10 classes
    model = nn.small_fc(jax.random.PRNGKey(0))                # 4 938 weights
    run = nn.train(model, data, epochs=30, lr=0.05)           # SGD + Nesterov
    spec = nn.diffusion_spectrum(run.model, data.x_train, data.y_train)
    spec.eigvals, spec.mean, spec.std, spec.rank_fraction
    noise = spec.to_noise(diag="residual")                    # LowRankDiagonal

Any model: an equinox module mapping ONE example (``eqx.nn.MLP``), a
``FunctionModel(apply_fn, params)`` or the pair ``(apply_fn, params)``, with a
per-example ``loss(model, x_i, y_i)`` (default ``CrossEntropyLoss()``)::

    mlp = eqx.nn.MLP(64, 10, 32, 1, activation=jax.numpy.tanh, key=jax.random.PRNGKey(0))
    flat = data.flatten()                                     # (N, 64) vectors
    run = nn.train(mlp, flat, epochs=5, optimizer=optax.adam(1e-2))
    spec = nn.diffusion_spectrum(run.model, flat.x_train, flat.y_train)
    spec.eigvec_tree(0)                                       # top eigenvector, MLP-shaped
"""

from ._adapt import CrossEntropyLoss as CrossEntropyLoss
from ._adapt import FunctionModel as FunctionModel
from ._data import DataFileError as DataFileError
from ._data import Dataset as Dataset
from ._data import augment_shifts as augment_shifts
from ._data import downsample as downsample
from ._data import global_contrast_normalize as global_contrast_normalize
from ._data import load_cifar as load_cifar
from ._data import load_digits as load_digits
from ._data import load_mnist as load_mnist
from ._data import make_dataset as make_dataset
from ._data import read_idx as read_idx
from ._data import standardize as standardize
from ._data import write_idx as write_idx
from ._data import zca_whiten as zca_whiten
from ._models import BatchNorm as BatchNorm
from ._models import Conv2d as Conv2d
from ._models import Dropout as Dropout
from ._models import Flatten as Flatten
from ._models import Linear as Linear
from ._models import MaxPool2d as MaxPool2d
from ._models import ReLU as ReLU
from ._models import RunningStats as RunningStats
from ._models import Sequential as Sequential
from ._models import describe as describe
from ._models import make_model as make_model
from ._models import n_weights as n_weights
from ._models import small_fc as small_fc
from ._models import small_lenet as small_lenet
from ._models import small_fc_mnist as small_fc_mnist
from ._models import small_lenet_mnist as small_lenet_mnist
from ._models import tiny_fc as tiny_fc
from ._models import trainable as trainable
from ._pergrad import cross_entropy as cross_entropy
from ._pergrad import flat_weights as flat_weights
from ._pergrad import full_gradient as full_gradient
from ._pergrad import per_example_grads as per_example_grads
from ._pergrad import per_example_loss as per_example_loss
from ._spectrum import DiffusionSpectrum as DiffusionSpectrum
from ._spectrum import diffusion_matrix as diffusion_matrix
from ._spectrum import diffusion_spectrum as diffusion_spectrum
from ._spectrum import minibatch_covariance_factor as minibatch_covariance_factor
from ._train import Checkpoint as Checkpoint
from ._train import TrainResult as TrainResult
from ._train import accuracy as accuracy
from ._train import evaluate as evaluate
from ._train import load_checkpoint as load_checkpoint
from ._train import lr_schedule as lr_schedule
from ._train import minibatch_indices as minibatch_indices
from ._train import save_checkpoint as save_checkpoint
from ._train import train as train
