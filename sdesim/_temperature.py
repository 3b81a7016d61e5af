"""SGD temperature (Chaudhari & Soatto 2018, §1 and Remark 12)."""

from __future__ import annotations

from ._validate import check_positive

__all__ = ["temperature"]

FINITE_POPULATION = ("paper", "exact")


def _finite_population_factor(batch: int, n_data: int, finite_population: str) -> float:
    """``1 - b/N`` (``"paper"``) or ``(N - b)/(N - 1)`` (``"exact"``; 0 when ``b = N``)."""
    if finite_population == "paper":
        return 1.0 - batch / n_data
    if batch == n_data:  # the whole data set: no sampling noise (also covers N = 1)
        return 0.0
    return (n_data - batch) / (n_data - 1)


def temperature(lr: float, batch: int, n_data: int | None = None, replacement: bool = True, *,
                finite_population: str = "paper") -> float:
    """``beta^-1 = lr / (2 b)``; without replacement times a finite-population factor.

    With time measured so that one SGD step is ``dt = lr``, one step of the SDE
    ``dx = -grad f dt + sqrt(2 beta^-1 D) dW`` adds noise of covariance
    ``2 beta^-1 D lr = lr^2 D / b`` -- the covariance of ``lr * grad f_b``
    for ``b`` examples drawn with replacement.

    Sampling a uniform ``b``-subset of ``N`` examples without replacement
    (``replacement=False``, ``n_data`` required) shrinks the minibatch
    gradient covariance by a finite-population factor:

    * ``finite_population="paper"`` (default): ``1 - b/N``, the paper's Remark 12;
    * ``finite_population="exact"``: ``(N - b)/(N - 1)``, the exact factor
      (two distinct draws have covariance ``-D/(N - 1)``, so
      ``Var(sum of b) = b D - b(b - 1) D/(N - 1) = b D (N - b)/(N - 1)``).

    They differ by ``O(1/N)`` (``N/(N - 1)`` in the noise part; see
    ``docs/conventions.md``); both are 0 at ``b = N``. This is sdesim's one
    definition of the factor: :func:`sdesim.chains.sgd` (``sampling="subset"``
    reports ``"exact"``) and :func:`sdesim.nn.minibatch_covariance_factor`
    (``"exact"`` by default) call it.
    """
    lr = check_positive(lr, "lr")
    if isinstance(batch, bool) or int(batch) != batch or batch <= 0:
        raise ValueError(f"batch: expected a positive integer, got {batch!r}")
    batch = int(batch)
    if finite_population not in FINITE_POPULATION:
        raise ValueError(f"finite_population: expected 'paper' or 'exact', got {finite_population!r}")
    beta_inv = lr / (2.0 * batch)
    if n_data is not None:
        if isinstance(n_data, bool) or int(n_data) != n_data or n_data <= 0:
            raise ValueError(f"n_data: expected a positive integer, got {n_data!r}")
        if batch > n_data:
            raise ValueError(f"batch: batch size {batch} exceeds n_data={int(n_data)}")
        n_data = int(n_data)
    if not replacement:
        if n_data is None:
            raise ValueError("n_data: required when replacement=False")
        beta_inv *= _finite_population_factor(batch, n_data, finite_population)
    return beta_inv
