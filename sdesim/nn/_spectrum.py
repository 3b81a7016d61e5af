"""The diffusion matrix ``D`` of a network and its eigenspectrum (docs/paper.md §1, §10).

Definition (per-example gradient covariance, independent of lr and b)::

    D = (1/N) sum_k g_k g_k^T - g g^T = (1/N) G_c^T G_c,      g = (1/N) sum_k g_k,

with ``G`` the ``(N, d)`` matrix of per-example gradients (rows ``g_k``) and
``G_c = G - 1 g^T`` its centred version. ``D`` is symmetric PSD with
``rank D <= min(N - 1, d)`` (the rows of ``G_c`` sum to zero).

Eigenvalues
-----------
* ``"gram"`` path (``N < d``): the non-zero eigenvalues of ``D`` are those of
  the ``N x N`` Gram matrix ``K = G_c G_c^T / N``; with ``K u = lam u`` the
  unit eigenvector of ``D`` is ``v = G_c^T u / sqrt(N lam)``. The remaining
  ``d - N`` eigenvalues are exactly zero and are appended as zeros. Cost
  ``O(N^2 d + N^3)``; ``D`` (``d x d``) is never formed.
* ``"dense"`` path (``d <= N``): ``eigh(G_c^T G_c / N)``.
Both run in float64 NumPy/LAPACK whatever the gradients' dtype: all
eigenvalues by ``syevd`` (``numpy.linalg.eigvalsh``), and only the top-``k``
eigenvectors by ``syevr`` on an index subset (``scipy.linalg.eigh``).

Summary statistics are over **all d eigenvalues** (zeros included):
``mean = tr D / d``, ``std`` (population, ``ddof=0``), ``var = std**2``.

Numerical rank
--------------
numpy's ``matrix_rank`` rule applied to ``D``: eigenvalues above
``threshold = lam_max * d * eps``. ``eps`` is the machine epsilon of the
dtype the **gradients** were computed in -- float32 (1.19e-7) for models in
the default float32, as in the paper's PyTorch runs; float64 (2.22e-16) when
the gradients are float64 -- unless ``eps=`` is given. ``rank_fraction =
rank / d``. The float32 rule is a relative cut at ``d * 1.2e-7`` (about
``1e-3 lam_max`` at ``d = 10^4``), so it measures the effective rank, not
the exact one (which is ``N - 1`` for generic data).

Minibatch gradients (the link to SGD's temperature)
---------------------------------------------------
For a minibatch of ``b`` examples drawn uniformly, ``g_b = (1/b) sum_{k in B} g_k``:

* with replacement (i.i.d. draws): ``Cov(g_b) = D / b``;
* without replacement: ``Cov(g_b) = (D / b) (N - b) / (N - 1)`` -- the exact
  finite-population correction (``Cov(g_i, g_j) = -D/(N-1)`` for two distinct
  draws, so ``Var(sum) = b D - b(b-1) D/(N-1) = b D (N-b)/(N-1)``). The
  paper's ``(1 - b/N)`` is its large-``N`` approximation.

:func:`minibatch_covariance_factor` returns ``c`` with ``Cov(g_b) = c D``; it
is ``2 beta^-1 / lr`` of :func:`sdesim.temperature` (``beta^-1 = lr c / 2``)
and uses the exact factor by default (``finite_population="exact"``), the
paper's with ``finite_population="paper"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Union

import numpy as np
import scipy.linalg

from .._diffusion import LowRankDiagonal
from . import _adapt

__all__ = [
    "DiffusionSpectrum",
    "diffusion_spectrum",
    "diffusion_matrix",
    "minibatch_covariance_factor",
]


def minibatch_covariance_factor(batch: int, n_data: int, replacement: bool = True, *,
                                finite_population: str = "exact") -> float:
    """``c`` with ``Cov(minibatch gradient) = c D``: ``1/b`` with replacement; without,
    ``(N-b)/((N-1) b)`` (``finite_population="exact"``, the default: the true
    covariance of a uniform ``b``-subset) or ``(1 - b/N)/b`` (``"paper"``).

    Computed by :func:`sdesim.temperature` as ``c = 2 beta^-1 / lr`` (one
    definition of the finite-population factor in sdesim). With replacement
    ``n_data`` is checked but does not enter (``b > N`` is allowed).
    """
    from .._temperature import temperature

    b, N = int(batch), int(n_data)
    if isinstance(batch, bool) or b != batch or b <= 0:
        raise ValueError(f"batch: expected a positive integer, got {batch!r}")
    if isinstance(n_data, bool) or N != n_data or N <= 0:
        raise ValueError(f"n_data: expected a positive integer, got {n_data!r}")
    if replacement:
        return 2.0 * temperature(1.0, b)
    return 2.0 * temperature(1.0, b, N, replacement=False, finite_population=finite_population)


@dataclass(frozen=True, eq=False)
class DiffusionSpectrum:
    """Eigenspectrum of a measured diffusion matrix ``D`` (see the module docstring).

    Attributes
    ----------
    eigvals : float64 ``(d,)``, descending; all ``d`` eigenvalues of ``D``
        (exact zeros beyond ``min(N, d)`` on the Gram path; tiny negative
        round-off values are kept, not clipped).
    eigvecs : float64 ``(d, k)`` unit eigenvectors of the top ``k``
        eigenvalues in weight space (``k = top_k``), or ``None`` when ``k = 0``.
    diag : float64 ``(d,)``, the diagonal of ``D`` (``mean_k (g_k - g)_i^2``).
    mean_gradient : float64 ``(d,)``, ``g`` (the full-batch gradient).
    n_examples, dim : ``N`` and ``d``.
    rank : number of eigenvalues above ``threshold = lam_max * d * eps``.
    eps, eps_dtype : the epsilon used and the dtype it belongs to.
    method : ``"gram"`` or ``"dense"``.
    unravel_fn : for a spectrum measured on a model, the map from a flat
        ``(d,)`` vector to a parameter PyTree (see :meth:`unravel`); ``None``
        for a gradient matrix.
    """

    eigvals: np.ndarray
    eigvecs: Optional[np.ndarray]
    diag: np.ndarray
    mean_gradient: np.ndarray
    n_examples: int
    dim: int
    rank: int
    threshold: float
    eps: float
    eps_dtype: str
    method: str
    meta: dict = field(default_factory=dict)
    unravel_fn: Optional[Callable] = field(default=None, repr=False)

    def unravel(self, v):
        """A flat ``(d,)`` vector (an eigenvector, :attr:`mean_gradient`, :attr:`diag`)
        as a parameter PyTree: shaped like the model with ``None`` where it has
        no weights (as ``eqx.filter_grad`` returns gradients), or the
        ``params`` PyTree of a function model."""
        if self.unravel_fn is None:
            raise ValueError("unravel: this spectrum was measured from a gradient matrix, which carries no "
                             "parameter structure; pass the model to diffusion_spectrum")
        return self.unravel_fn(np.asarray(v))

    def eigvec_tree(self, k: int = 0):
        """The eigenvector of the ``k``-th largest eigenvalue as a parameter PyTree (:meth:`unravel`)."""
        n = 0 if self.eigvecs is None else self.eigvecs.shape[1]
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not (0 <= k < n):
            raise ValueError(f"k: expected an integer in [0, {n}) (eigenvectors kept: top_k={n}), got {k!r}")
        return self.unravel(self.eigvecs[:, int(k)])

    @property
    def mean(self) -> float:
        """Mean of the ``d`` eigenvalues, ``tr D / d``."""
        return float(np.mean(self.eigvals))

    @property
    def std(self) -> float:
        """Population standard deviation of the ``d`` eigenvalues."""
        return float(np.std(self.eigvals))

    @property
    def var(self) -> float:
        return float(np.var(self.eigvals))

    @property
    def trace(self) -> float:
        return float(np.sum(self.eigvals))

    @property
    def rank_fraction(self) -> float:
        """``rank / d`` (multiply by 100 for the paper's percentages)."""
        return self.rank / self.dim

    @property
    def architecture_score(self) -> float:
        """Remark 16: ``rank(D)/d + var(lambda(D))`` (lower: less noise to fight)."""
        return self.rank_fraction + self.var

    def temperature_normaliser(self, lr: float, batch: int) -> float:
        """Remark 15: ``(lr / b) * mean lambda(D)``; keep it constant across settings."""
        if not (float(lr) > 0):
            raise ValueError(f"lr: expected a positive number, got {lr!r}")
        if int(batch) <= 0:
            raise ValueError(f"batch: expected a positive integer, got {batch!r}")
        return float(lr) / int(batch) * self.mean

    def to_noise(
        self, rank: Optional[int] = None, diag: Union[None, str, float, np.ndarray] = None
    ) -> LowRankDiagonal:
        """Export ``D`` as the core's low-rank (+ diagonal) noise model.

        ``factor = V_r sqrt(lam_r)`` (``d x r``, the top ``r`` eigenpairs; ``r``
        defaults to the numerical :attr:`rank`), so ``factor factor^T`` is the
        best rank-``r`` approximation of ``D``. ``diag``:

        * ``None`` -- pure low rank, ``r`` normals per step;
        * ``"residual"`` -- ``diag(D) - diag(factor factor^T)`` (clipped at 0):
          the exported matrix then has the measured diagonal and trace;
        * a float ``c`` -- an isotropic floor ``c I``; an array ``(d,)`` -- as is.

        The result is :class:`sdesim.diffusion.LowRankDiagonal`; pass it to
        ``sdesim.problems.custom(grad_f, noise, d)``: the SDE in weight space
        then runs with two thin products per step, never a ``d x d`` matrix.
        """
        r = self.rank if rank is None else rank
        if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 1:
            raise ValueError(f"rank: expected a positive integer, got {rank!r}")
        k = 0 if self.eigvecs is None else self.eigvecs.shape[1]
        if r > k:
            raise ValueError(
                f"rank: {r} eigenvectors requested but {k} were kept; "
                f"call diffusion_spectrum(..., top_k={r})"
            )
        factor = self.eigvecs[:, :r] * np.sqrt(np.clip(self.eigvals[:r], 0.0, None))[None, :]
        if diag is None:
            d = None
        elif isinstance(diag, str):
            if diag != "residual":
                raise ValueError(f"diag: expected None, 'residual', a number or a ({self.dim},) array, got {diag!r}")
            d = np.clip(self.diag - np.sum(factor**2, axis=1), 0.0, None)
        else:
            arr = np.asarray(diag, dtype=np.float64)
            if arr.ndim == 0:
                arr = np.full(self.dim, float(arr))
            if arr.shape != (self.dim,) or not np.all(np.isfinite(arr)) or np.any(arr < 0):
                raise ValueError(f"diag: expected a non-negative finite scalar or ({self.dim},) array")
            d = arr
        return LowRankDiagonal(factor, d)

    def summary(self) -> dict:
        """JSON-ready numbers."""
        return {
            "n_examples": self.n_examples,
            "dim": self.dim,
            "rank": self.rank,
            "rank_fraction": self.rank_fraction,
            "rank_percent": 100.0 * self.rank_fraction,
            "rank_bound_percent": 100.0 * min(self.n_examples - 1, self.dim) / self.dim,
            "eig_mean": self.mean,
            "eig_std": self.std,
            "eig_max": float(self.eigvals[0]),
            "trace": self.trace,
            "threshold": self.threshold,
            "eps": self.eps,
            "eps_dtype": self.eps_dtype,
            "method": self.method,
            "architecture_score": self.architecture_score,
            "grad_norm_over_sqrt_d": float(np.linalg.norm(self.mean_gradient) / np.sqrt(self.dim)),
            **self.meta,
        }


def _as_grads(grads) -> np.ndarray:
    G = np.asarray(grads)
    if G.ndim != 2:
        raise ValueError(f"grads: expected an (N, d) matrix of per-example gradients, got shape {G.shape}")
    if G.shape[0] < 1 or G.shape[1] < 1:
        raise ValueError(f"grads: empty matrix of shape {G.shape}")
    if not np.issubdtype(G.dtype, np.number) or np.iscomplexobj(G):
        raise ValueError(f"grads: expected real numbers, got dtype {G.dtype}")
    if not np.all(np.isfinite(G)):
        raise ValueError("grads: contains NaN or inf")
    return G


def diffusion_matrix(grads) -> np.ndarray:
    """Dense ``D = G_c^T G_c / N`` in float64 (``d x d``; for small ``d`` only)."""
    G = _as_grads(grads).astype(np.float64)
    Gc = G - G.mean(axis=0, keepdims=True)
    return Gc.T @ Gc / G.shape[0]


def _check_count(v, name):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
        raise ValueError(f"{name}: expected a positive integer, got {v!r}")
    return int(v)


def _check_orientation(G: np.ndarray, n: int, source: str) -> None:
    """Rows of ``G`` must be the ``n`` examples (``source`` says where ``n`` came from)."""
    rows, cols = G.shape
    if rows == n:
        return
    if cols == n:
        raise ValueError(
            f"grads: has shape {G.shape} but {source} says N = {n} examples; the rows must be the "
            f"examples, (N, d) = ({n}, {rows}): pass grads.T"
        )
    raise ValueError(f"grads: has {rows} rows but {source} says N = {n} examples; expected an (N, d) matrix")


def diffusion_spectrum(
    grads_or_model,
    x=None,
    y=None,
    *,
    loss=None,
    n_examples: Optional[int] = None,
    method: str = "auto",
    top_k: Optional[int] = None,
    eps: Optional[float] = None,
    chunk_size: int = 2048,
) -> DiffusionSpectrum:
    """Eigenspectrum of ``D = (1/N) sum_k g_k g_k^T - g g^T``.

    Parameters
    ----------
    grads_or_model : an ``(N, d)`` matrix of per-example gradients (rows are
        examples), or a model in any form of :mod:`sdesim.nn` -- an equinox
        module mapping one example (``eqx.nn.MLP``), a
        :class:`sdesim.nn.FunctionModel` or ``(apply_fn, params)``, or an
        :class:`sdesim.nn.Sequential`. With a model, ``x (N, ...)`` and
        ``y (N, ...)`` are required and the gradients are computed (evaluation
        mode) by :func:`sdesim.nn.per_example_grads`; the result then maps
        flat vectors back to parameter PyTrees (:meth:`DiffusionSpectrum.eigvec_tree`).
    x, y : the data (with a gradient matrix, only their length is used, as ``n_examples``).
    loss : per-example ``loss(model, x_i, y_i) -> scalar`` (default
        :class:`sdesim.nn.CrossEntropyLoss`); only with a model.
    n_examples : the number of examples ``N``; a gradient matrix whose rows
        are not ``N`` is refused (``grads.T`` is named when its columns are).
        A bare matrix is taken as ``(N, d)`` as given (``N`` rows).
    method : ``"auto"`` (Gram when ``N < d``, dense otherwise), ``"gram"``, ``"dense"``.
    top_k : number of eigenvectors to keep (``None``: the numerical rank; 0: none).
    eps : epsilon of the rank threshold ``lam_max * d * eps`` (default: the
        machine epsilon of the gradients' dtype; float64 for integer input).
    chunk_size : examples per vmapped chunk when gradients are computed here.

    Returns
    -------
    :class:`DiffusionSpectrum` with ``.eigvals, .mean, .std, .rank_fraction``.
    """
    if n_examples is not None:
        n_examples = _check_count(n_examples, "n_examples")
    unravel_fn = None
    if _adapt.is_model(grads_or_model):
        if x is None or y is None:
            raise ValueError("x, y: a model needs the data (x, y) to measure D on")
        n_x = np.shape(x)[0] if np.ndim(x) else 0
        if n_examples is not None and n_examples != n_x:
            raise ValueError(f"n_examples: {n_examples} given but x has {n_x} examples")
        from ._pergrad import per_example_grads

        wrapped, restore = _adapt.as_model(grads_or_model)
        G = np.asarray(per_example_grads(grads_or_model, x, y, loss=loss, chunk_size=chunk_size))
        unravel_fn = _adapt.Flat(wrapped, restore).tree
    else:
        if loss is not None:
            raise ValueError("loss: only used with a model; got a gradient matrix")
        G = _as_grads(grads_or_model)
        lengths = {name: int(np.shape(v)[0]) for name, v in (("x", x), ("y", y)) if v is not None and np.ndim(v)}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"x, y: different numbers of examples {lengths}")
        if n_examples is not None:
            _check_orientation(G, n_examples, "n_examples")
        elif lengths:
            name, n = next(iter(lengths.items()))
            _check_orientation(G, n, f"{name} (length {n})")
    G = _as_grads(G)
    if eps is None:
        eps_dtype = G.dtype if np.issubdtype(G.dtype, np.floating) else np.dtype(np.float64)
        eps = float(np.finfo(eps_dtype).eps)
        eps_name = np.dtype(eps_dtype).name
    else:
        if not (float(eps) > 0):
            raise ValueError(f"eps: expected a positive number, got {eps!r}")
        eps, eps_name = float(eps), "user"
    if method not in ("auto", "gram", "dense"):
        raise ValueError(f"method: expected 'auto', 'gram' or 'dense', got {method!r}")
    N, d = G.shape
    if method == "auto":
        method = "gram" if N < d else "dense"
    G64 = G.astype(np.float64)
    g = G64.mean(axis=0)
    Gc = G64 - g[None, :]
    diag = np.einsum("ki,ki->i", Gc, Gc) / N
    if top_k is not None and (isinstance(top_k, bool) or int(top_k) < 0):
        raise ValueError(f"top_k: expected a non-negative integer, got {top_k!r}")
    # the symmetric matrix whose eigenpairs we need: N x N (Gram) or d x d (dense)
    M = Gc @ Gc.T / N if method == "gram" else Gc.T @ Gc / N
    M = 0.5 * (M + M.T)
    n = M.shape[0]
    w = np.linalg.eigvalsh(M)[::-1]  # all eigenvalues, descending (LAPACK syevd)
    eigvals = np.zeros(d)
    m = min(n, d)
    eigvals[:m] = w[:m]
    lam_max = max(float(eigvals[0]), 0.0)
    threshold = lam_max * d * eps
    rank = int(np.sum(eigvals > threshold))
    k = rank if top_k is None else int(top_k)
    k = min(k, int(np.sum(eigvals > 0)))
    if k == 0:
        vecs = None
    else:
        # only the top-k eigenvectors (LAPACK syevr on a subset: far cheaper than all n)
        wk, Uk = scipy.linalg.eigh(M, subset_by_index=[n - k, n - 1], driver="evr")
        wk, Uk = wk[::-1], Uk[:, ::-1]
        if method == "gram":
            vecs = Gc.T @ (Uk / np.sqrt(N * wk)[None, :])  # v = G_c^T u / sqrt(N lam)
        else:
            vecs = np.ascontiguousarray(Uk)
    return DiffusionSpectrum(
        eigvals=eigvals, eigvecs=vecs, diag=diag, mean_gradient=g, n_examples=N, dim=d,
        rank=rank, threshold=threshold, eps=eps, eps_dtype=eps_name, method=method,
        unravel_fn=unravel_fn,
    )
