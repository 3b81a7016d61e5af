"""SGD temperature (Chaudhari & Soatto 2018, §1 and Remark 12)."""

from __future__ import annotations

from ._validate import check_positive

__all__ = ["temperature"]


def temperature(lr: float, batch: int, n_data: int | None = None, replacement: bool = True) -> float:
    """``beta^-1 = lr / (2 b)``; without replacement times ``(1 - b / N)``.

    With time measured so that one SGD step is ``dt = lr``, one step of the SDE
    ``dx = -grad f dt + sqrt(2 beta^-1 D) dW`` adds noise of covariance
    ``2 beta^-1 D lr = lr^2 D / b`` -- the covariance of ``lr * grad f_b``.
    Sampling ``b`` of ``N`` examples without replacement shrinks the minibatch
    gradient covariance by the finite-population factor; the paper's Remark 12
    uses ``(1 - b/N)`` (the exact factor for a uniform subset is
    ``(N - b) / (N - 1)``, see ``docs/conventions.md``).
    """
    lr = check_positive(lr, "lr")
    if isinstance(batch, bool) or int(batch) != batch or batch <= 0:
        raise ValueError(f"batch: expected a positive integer, got {batch!r}")
    batch = int(batch)
    beta_inv = lr / (2.0 * batch)
    if n_data is not None:
        if isinstance(n_data, bool) or int(n_data) != n_data or n_data <= 0:
            raise ValueError(f"n_data: expected a positive integer, got {n_data!r}")
        if batch > n_data:
            raise ValueError(f"batch: batch size {batch} exceeds n_data={int(n_data)}")
    if not replacement:
        if n_data is None:
            raise ValueError("n_data: required when replacement=False")
        beta_inv *= 1.0 - batch / n_data
    return beta_inv
