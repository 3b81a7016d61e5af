r"""SGD linearised at a minimum: stationary covariances and the predicted lag antisymmetry.

Model. Near a minimum ``w*`` of ``f = (1/N) sum_k f_k`` write ``x = w - w*``,
``H = hess f(w*)`` (symmetric) and ``D = D(w*) = (1/N) sum_k g_k g_k^T - g g^T``
(:meth:`sdesim.chains.FiniteSum.diffusion`). One SGD step with a minibatch of
``b`` examples is, to first order in ``x`` and with the noise frozen at ``w*``,

    x_{k+1} = M x_k + lr xi_k,     M = I - lr H,     Cov xi = c D,

with ``c = 1/b`` (``b`` i.i.d. indices) or ``c = (N - b)/((N - 1) b)`` (a
uniform ``b``-subset; :func:`sdesim.chains.subset_factor`). Its SDE limit
(``dt = lr``, ``beta^-1 = lr c / 2``, docs/conventions.md) is the OU process

    dx = -H x dt + sqrt(2 beta^-1 D) dW.

Stationary covariances.

* continuous (OU): ``H Sigma + Sigma H = 2 beta^-1 D = lr c D`` (Lyapunov;
  :func:`sdesim.ou_stationary_covariance`);
* discrete chain: ``Sigma = M Sigma M^T + lr^2 c D`` (discrete Lyapunov; needs
  ``0 < lr lambda < 2`` for every Hessian eigenvalue ``lambda``). It keeps the
  ``O(lr)`` discretisation correction that the OU drops:
  ``H Sigma + Sigma H - lr H Sigma H = lr c D``.

In the eigenbasis of ``H`` (``H = V diag(lambda) V^T``, ``D~ = V^T D V``) both
are explicit: ``Sigma~_ij = lr c D~_ij / (lambda_i + lambda_j)`` (OU) and
``lr^2 c D~_ij / (1 - (1 - lr lambda_i)(1 - lr lambda_j))`` (discrete).

Which one applies. Both freeze ``D`` at ``w*``. For least squares the
gradient noise grows with ``x`` (the minibatch Hessian ``H_B != H`` multiplies
``x``), so the exact stationary covariance of the SGD chain is the one of
:func:`sdesim.chains.linreg_stationary` (exact at every ``lr``; it includes
this multiplicative term); the discrete Lyapunov solution here equals
:func:`sdesim.chains.linreg_discrete_lyapunov` and the OU one
:func:`sdesim.chains.linreg_ou_covariance`, both correct to leading order in
``lr``. For a general loss the discrete Lyapunov solution is the
linearisation's answer, valid while the stationary spread stays in the region
where ``f`` is quadratic and ``D`` nearly constant.

Lag antisymmetry. The conditional mean of the linear chain is
``E[x_{k+tau} | x_k] = M^tau x_k`` (the noise has mean zero and, for least
squares, ``E M_B = M`` exactly, so this holds for the exact chain too). Hence
``C(tau) = E[x_k x_{k+tau}^T] = Sigma (M^tau)^T`` and

    A(tau) = (C - C^T)/2 = (Sigma (M^tau)^T - M^tau Sigma) / 2        (discrete, tau in steps),
    A(tau) = (Sigma e^{-H^T tau} - e^{-H tau} Sigma) / 2              (OU, tau in time = steps * lr).

Here ``H`` is symmetric, so ``A`` vanishes at every lag iff ``Sigma`` commutes
with ``H``; for the frozen-noise models that is iff ``D`` commutes with ``H``
(then ``Sigma`` is a function of ``H`` and ``D``'s common eigenbasis). For
small ``tau``, ``A(tau) ~= tau Omega`` (OU) and ``A(1) = lr Omega``
(discrete) with the antisymmetric

    Omega = (H Sigma - Sigma H) / 2,

which is also the probability current: the OU's stationary current velocity
is ``v(x) = -H x + beta^-1 D Sigma^-1 x = -Omega Sigma^-1 x`` (use
``H Sigma - beta^-1 D = (H Sigma - Sigma H)/2``). ``Omega``'s eigenvalues come
in pairs ``± i omega``; the real plane of the pair with the largest
``omega`` is where the predicted circulation is strongest
(:meth:`LinearisedStationary.max_current_plane`).

Large models. ``H`` is formed densely from Hessian-vector products
(``jvp`` of the gradient, one column each) when ``dim <= dense_max``.
Otherwise pass ``basis`` (``dim x k`` orthonormal columns; ``H_k = B^T H B``
from ``k`` Hessian-vector products, ``D_k = B^T D B`` from the per-example
gradients) or ``n_modes=k`` (the top ``k`` Hessian eigenvectors by Lanczos on
Hessian-vector products). The restricted model is exact for an ``H``-invariant
subspace (``n_modes``): ``B^T x`` is then itself the linear chain with
``H_k, D_k``; for any other ``basis`` it is a Galerkin approximation.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
import scipy.sparse.linalg

from .._linear import ou_stationary_covariance
from .._validate import check_positive, check_positive_int

__all__ = ["LinearisedStationary", "linearise"]

#: Largest dimension for which the Hessian is formed densely by default.
DENSE_MAX = 2000


@dataclasses.dataclass(frozen=True)
class LinearisedStationary:
    """SGD linearised at ``w_star`` (module docstring); matrices in the coordinates of ``basis``.

    Attributes:
        w_star: ``(dim,)`` the expansion point; grad_norm: ``|grad f(w_star)|``.
        basis: ``(dim, k)`` orthonormal columns of the subspace, or ``None`` (``k = dim``).
        H: ``(k, k)`` Hessian; D: ``(k, k)`` gradient-noise covariance ``D(w_star)``.
        hessian_eigenvalues: ``(k,)`` ascending; hessian_eigenvectors: ``(k, k)`` columns.
        lr, batch, sampling: the SGD run; noise_factor: ``c`` with ``Cov(grad f_B) = c D``;
        beta_inv: ``lr c / 2``.
        sigma_ou: ``H S + S H = 2 beta^-1 D``; sigma_discrete: ``S = M S M^T + lr^2 c D``.
    """

    w_star: np.ndarray
    grad_norm: float
    basis: Optional[np.ndarray]
    H: np.ndarray
    D: np.ndarray
    hessian_eigenvalues: np.ndarray
    hessian_eigenvectors: np.ndarray
    lr: float
    batch: int
    sampling: str
    noise_factor: float
    beta_inv: float
    sigma_ou: np.ndarray
    sigma_discrete: np.ndarray

    @property
    def M(self) -> np.ndarray:
        """``I - lr H``, the mean one-step map."""
        return np.eye(self.H.shape[0]) - self.lr * self.H

    def _sigma(self, discrete, sigma):
        if sigma is None:
            return self.sigma_discrete if discrete else self.sigma_ou
        k = self.H.shape[0]
        s = np.asarray(sigma, dtype=np.float64)
        if s.shape != (k, k) or not np.all(np.isfinite(s)):
            raise ValueError(f"sigma: expected a finite ({k}, {k}) covariance, got shape {s.shape}")
        return 0.5 * (s + s.T)

    def propagator(self, lag, discrete: bool = True) -> np.ndarray:
        """``M^lag`` (discrete, ``lag`` steps) or ``expm(-H lag lr)`` (OU at ``tau = lag * lr``)."""
        lam, V = self.hessian_eigenvalues, self.hessian_eigenvectors
        if discrete:
            f = (1.0 - self.lr * lam) ** lag
        else:
            f = np.exp(-lam * lag * self.lr)
        return (V * f) @ V.T

    def predicted_A(self, lag, discrete: bool = True, *, sigma=None, basis=None) -> np.ndarray:
        """Predicted ``A(tau) = (Sigma P^T - P Sigma) / 2`` with ``P = M^lag`` or ``expm(-H tau)``.

        Args:
            lag: lag in SGD steps, an int or a sequence (``(n_lags, k, k)`` out).
                A lag of ``l`` snapshots saved every ``s`` steps is ``l * s``.
                With ``discrete=False`` the OU prediction at time
                ``tau = lag * lr`` (``dt = lr``); ``lag`` may then be fractional.
            discrete: the discrete chain (``sigma_discrete``) or the OU (``sigma_ou``).
            sigma: a stationary covariance to use instead, e.g. the exact one
                of least-squares SGD, ``sdesim.chains.linreg_stationary(...)[1]``,
                for which the discrete formula is exact (module docstring).
            basis: ``(dim, m)`` columns in parameter coordinates (e.g.
                :meth:`max_current_plane`); returns ``basis^T A basis`` (lifted
                through ``self.basis`` when the model lives in a subspace), the
                quantity that ``lag_antisymmetry(x, lag, basis=basis)`` estimates.
        """
        S = self._sigma(discrete, sigma)
        lags = np.atleast_1d(np.asarray(lag, dtype=np.float64))
        if lags.ndim != 1 or np.any(lags < 0) or not np.all(np.isfinite(lags)):
            raise ValueError(f"lag: expected non-negative lag(s), got {lag!r}")
        if discrete and np.any(lags != np.round(lags)):
            raise ValueError(f"lag: the discrete chain needs integer lags (steps), got {lag!r}")
        out = []
        for L in lags:
            P = self.propagator(L, discrete)
            out.append(0.5 * (S @ P.T - P @ S))
        A = np.stack(out)
        if basis is not None:
            W = self._lift(basis)
            A = np.einsum("ia,nij,jb->nab", W, A, W)
        return A[0] if np.ndim(lag) == 0 else A

    def _lift(self, basis):
        """Coefficients of parameter-space columns ``basis`` in the model's coordinates."""
        B = np.asarray(basis, dtype=np.float64)
        d = self.w_star.shape[0]
        if B.ndim != 2 or B.shape[0] != d or not np.all(np.isfinite(B)):
            raise ValueError(f"basis: expected a finite ({d}, m) matrix, got shape {B.shape}")
        return B if self.basis is None else self.basis.T @ B

    def current_matrix(self, discrete: bool = True, *, sigma=None) -> np.ndarray:
        """``Omega = (H Sigma - Sigma H) / 2`` (antisymmetric; ``A(tau) ~= tau Omega`` for small ``tau``)."""
        S = self._sigma(discrete, sigma)
        W = 0.5 * (self.H @ S - S @ self.H)
        return 0.5 * (W - W.T)

    def max_current_plane(self, discrete: bool = True, *, sigma=None) -> np.ndarray:
        """``(dim, 2)`` orthonormal basis of the invariant plane of ``Omega`` with the largest ``|omega|``.

        ``Omega``'s eigenvalues are ``± i omega_j``; for the largest ``omega``
        the eigenvector ``u = a + i b`` of ``i Omega`` (eigenvalue ``omega``)
        spans the plane ``{a, b}`` (``Omega a = omega b``, ``Omega b = -omega a``).
        Oriented so that ``e1^T Omega e2 = +omega``: the predicted projected
        ``A(tau)[0, 1] > 0`` at small ``tau``. Returned in parameter
        coordinates (lifted through ``basis`` when the model lives in a subspace),
        ready for ``lag_antisymmetry(x, lag, basis=...)``.
        """
        Om = self.current_matrix(discrete, sigma=sigma)
        if Om.shape[0] < 2:
            raise ValueError("basis: the model has fewer than 2 dimensions, no plane")
        w, U = np.linalg.eigh(1j * Om)
        S = self._sigma(discrete, sigma)
        if w[-1] <= 1e-12 * np.linalg.norm(self.H) * np.linalg.norm(S):
            raise ValueError("sigma: Omega = 0, no predicted current (Sigma commutes with H)")
        u = U[:, -1]
        u = u * np.exp(-1j * np.angle(u[np.argmax(np.abs(u))]))  # fix the phase
        a, b = u.real, u.imag  # |a| = |b|, a . b = 0: u is orthogonal to conj(u)
        Q, _ = np.linalg.qr(np.stack([a, b], axis=1))
        if Q[:, 0] @ Om @ Q[:, 1] < 0:
            Q[:, 1] = -Q[:, 1]
        return Q if self.basis is None else self.basis @ Q


def _noise_factor(n_data, batch, sampling):
    from ..chains import subset_factor

    if sampling == "replacement":
        return 1.0 / batch
    if sampling == "subset":
        return subset_factor(n_data, batch) / batch
    raise ValueError(f"sampling: expected 'replacement' or 'subset' (shuffling has no one-step noise "
                     f"covariance), got {sampling!r}")


def _hvp_columns(fs, w, V, chunk=64):
    """``H V`` for columns ``V (dim, k)``: one Hessian-vector product (jvp of the gradient) each."""
    hvp = jax.jit(jax.vmap(lambda v: jax.jvp(fs.full_grad, (w,), (v,))[1]))
    cols = []
    for s in range(0, V.shape[1], chunk):
        cols.append(np.asarray(hvp(jnp.asarray(V[:, s:s + chunk].T, w.dtype)), dtype=np.float64))
    return np.concatenate(cols, axis=0).T


def linearise(fs, w_star, lr: float, batch: int, *, sampling: str = "replacement", basis=None,
              n_modes: Optional[int] = None, dense_max: int = DENSE_MAX) -> LinearisedStationary:
    """Linearise SGD on ``fs`` at the minimum ``w_star`` (module docstring).

    Args:
        fs: a :class:`sdesim.chains.FiniteSum`.
        w_star: ``(dim,)`` a (local) minimum; its gradient norm is recorded, not enforced.
        lr, batch, sampling: the SGD run (``"replacement"`` or ``"subset"``).
        basis: ``(dim, k)`` orthonormal columns: work in this subspace.
        n_modes: work in the span of the top ``n_modes`` Hessian eigenvectors
            (``basis`` then holds them, largest eigenvalue first).
        dense_max: largest ``dim`` for the dense Hessian; larger models need
            ``basis`` or ``n_modes``.

    Raises ``ValueError`` naming ``w_star`` if the (restricted) Hessian is not
    positive definite and ``lr`` if ``lr lambda >= 2`` for some eigenvalue
    (the discrete chain has no stationary law).
    """
    from ..chains import FiniteSum

    if not isinstance(fs, FiniteSum):
        raise ValueError(f"fs: expected a FiniteSum, got {type(fs).__name__}")
    lr = check_positive(lr, "lr")
    batch = check_positive_int(batch, "batch")
    c = _noise_factor(fs.n_data, batch, sampling)
    d = fs.dim
    w_np = np.asarray(w_star, dtype=np.float64)
    if w_np.shape != (d,) or not np.all(np.isfinite(w_np)):
        raise ValueError(f"w_star: expected a finite ({d},) vector, got shape {w_np.shape}")
    w = jnp.asarray(w_np)
    dense_max = check_positive_int(dense_max, "dense_max")
    if basis is not None and n_modes is not None:
        raise ValueError("basis: give basis or n_modes, not both")
    if n_modes is not None:
        n_modes = check_positive_int(n_modes, "n_modes")
        if n_modes > d:
            raise ValueError(f"n_modes: {n_modes} exceeds dim={d}")
        if d <= dense_max:
            lam, V = np.linalg.eigh(_sym(_hvp_columns(fs, w, np.eye(d))))
            basis = V[:, ::-1][:, :n_modes]
        else:
            hvp = jax.jit(lambda v: jax.jvp(fs.full_grad, (w,), (v,))[1])
            op = scipy.sparse.linalg.LinearOperator(
                (d, d), matvec=lambda v: np.asarray(hvp(jnp.asarray(np.ravel(v), w.dtype)), np.float64),
                dtype=np.float64)
            lam_top, vecs = scipy.sparse.linalg.eigsh(op, k=n_modes, which="LA")
            basis = vecs[:, np.argsort(lam_top)[::-1]]
    if basis is not None:
        basis = np.asarray(basis, dtype=np.float64)
        if basis.ndim != 2 or basis.shape[0] != d or basis.shape[1] < 1 or not np.all(np.isfinite(basis)):
            raise ValueError(f"basis: expected a finite ({d}, k) matrix, got shape {basis.shape}")
        if not np.allclose(basis.T @ basis, np.eye(basis.shape[1]), atol=1e-8):
            raise ValueError("basis: columns must be orthonormal")
        H = _sym(basis.T @ _hvp_columns(fs, w, basis))
        Lk = basis.T @ np.asarray(fs.diffusion_factor(w), dtype=np.float64)
        D = Lk @ Lk.T
    else:
        if d > dense_max:
            raise ValueError(f"basis: dim={d} exceeds dense_max={dense_max}; pass basis or n_modes")
        H = _sym(_hvp_columns(fs, w, np.eye(d)))
        D = np.asarray(fs.diffusion(w), dtype=np.float64)
    D = _sym(D)
    lam, V = np.linalg.eigh(H)
    if lam[0] <= 0:
        raise ValueError(f"w_star: not a strict minimum (smallest Hessian eigenvalue {lam[0]:.3g})")
    if lr * lam[-1] >= 2.0:
        raise ValueError(f"lr: lr * largest Hessian eigenvalue = {lr * lam[-1]:.3g} >= 2, "
                         f"the discrete chain has no stationary law")
    beta_inv = lr * c / 2.0
    k = H.shape[0]
    S_ou = ou_stationary_covariance(H, D, beta_inv)
    M = np.eye(k) - lr * H
    S_d = scipy.linalg.solve_discrete_lyapunov(M, lr * lr * c * D)
    grad_norm = float(jnp.linalg.norm(fs.full_grad(w)))
    return LinearisedStationary(
        w_star=w_np, grad_norm=grad_norm, basis=basis, H=H, D=D, hessian_eigenvalues=lam,
        hessian_eigenvectors=V, lr=lr, batch=batch, sampling=sampling, noise_factor=c, beta_inv=beta_inv,
        sigma_ou=S_ou, sigma_discrete=_sym(S_d),
    )


def _sym(a):
    a = np.asarray(a, dtype=np.float64)
    return 0.5 * (a + a.T)
