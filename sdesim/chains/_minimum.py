r"""Full-batch minimisation of a finite-sum loss, with a second-order check of what was found.

Chains started far from a minimum spend most of their steps relaxing, and
:func:`sdesim.analysis.linearise` needs a point where ``grad f = 0`` and the
Hessian is positive definite. :func:`find_minimum` finds such a point with
deterministic full-batch methods and then *classifies* it from the Hessian's
extreme eigenvalues, so that a saddle (where gradient descent and
quasi-Newton methods stall, ``grad f = 0`` with an indefinite Hessian) is
never reported as a minimum.

Methods.

* ``"lbfgs"``: L-BFGS (``optax.lbfgs``: two-loop recursion, memory 10,
  zoom line search with the strong Wolfe conditions) run inside one compiled
  ``while`` loop that stops when ``|grad f| <= gtol``. optax is used rather
  than ``optimistix.LBFGS`` because its loop is ours: the stopping rule is
  the gradient norm itself (optimistix stops on a Cauchy criterion on steps
  and values, not on ``|grad f|``). With ``polish=True`` (default) the
  result is then refined by Newton--CG until ``|grad f| <= gtol``.
* ``"newton-cg"``: line-search Newton--CG from ``x0`` (truncated Newton;
  Nocedal & Wright, *Numerical Optimization*, 2nd ed., Algorithm 7.1).

Newton--CG. At ``x`` with ``g = grad f(x)`` the Newton direction solves
``H p = -g`` (``H = hess f(x)``), approximately, by conjugate gradients on
Hessian-vector products ``H v = d/de grad f(x + e v)`` (one ``jvp`` of the
gradient; ``H`` is never formed). CG starts from ``p = 0`` and stops when the
residual ``|H p + g| <= eta |g|`` with the forcing term
``eta = min(0.5, sqrt|g|)`` (superlinear convergence), after ``cg_maxiter``
iterations, or when a search direction ``s`` has ``s^T H s <= 0``
(non-positive curvature): then it returns the current ``p``, or ``-g`` if that
happens at the first iteration, which is always a descent direction
(``g^T p < 0``). The step ``x <- x + a p`` takes the largest
``a = 2^-j`` (``j = 0..40``) with the Armijo condition

    f(x + a p) <= f(x) + c1 a g^T p + 16 eps |f(x)|,      c1 = 1e-4,

where the last term (``eps`` the machine epsilon of the working dtype)
admits the last Newton steps whose decrease ``~ g^T H^-1 g / 2`` is below the
rounding of ``f``. Newton--CG steps from a point on the stable manifold of a
saddle can converge to the saddle (the Newton direction does not see
negative curvature the gradient has no component along); the classification
below is what catches that.

Classification. With ``lambda_min <= lambda_max`` the extreme eigenvalues of
the Hessian at the returned ``x``:

* ``converged = |grad f| <= gtol``;
* ``is_minimum = converged and lambda_min >= -eig_tol``;
* ``status``: ``"minimum"`` (``is_minimum``), ``"saddle"`` (converged with
  ``lambda_min <= -eig_tol``), ``"not_converged"`` (otherwise).

Saddles. Quasi-Newton and Newton iterations converge to saddles as well as
minima (the Newton step is attracted to any nondegenerate critical point),
and networks have many, e.g. at ``w = 0`` or where hidden units coincide.
With ``escape_saddles=k`` a point classified as a saddle is left along the
unit eigenvector ``v`` of ``lambda_min < 0`` by the largest step
``h = max(1, |x| / 10) 2^-j`` with ``f(x + h v) <= f(x) + lambda_min h^2 / 4``
(half the decrease of the quadratic model, which holds for small ``h``
since ``grad f = 0``), and the minimisation restarts there, up to ``k``
times; ``n_escaped`` counts them.

``eig_tol`` defaults to ``sqrt(eps) * max(|lambda_min|, |lambda_max|)``
(``1.5e-8`` times the largest curvature in float64, ``3.5e-4`` in float32):
the rounding error of a Hessian computed by automatic differentiation is
``O(eps |H|)``, and a second-order minimum can have exactly flat directions
(symmetries of a network), which must not be called saddles. A minimum with
``lambda_min <= eig_tol`` is reported as degenerate in ``message``: the
linear chain is then not confined along the flat direction
(:func:`sdesim.analysis.linearise` refuses it).

The eigenvalues come from the dense Hessian (``dim`` Hessian-vector products,
``numpy.linalg.eigh``) up to ``dense_max = 2000`` parameters, and above that
from implicitly restarted Lanczos (ARPACK ``eigsh``) on Hessian-vector
products, which needs no ``dim x dim`` matrix.

Precision. In float32 the gradient of a loss of size ``O(1)`` cannot be
resolved much below ``~1e-6`` (rounding of the per-example sum), so
``gtol = 1e-6`` may be out of reach; use float64
(``jax.config.update("jax_enable_x64", True)``, the default working dtype
when enabled) or a larger ``gtol``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.sparse.linalg

from .._validate import check_nonneg_int, check_positive, check_positive_int

__all__ = ["Minimum", "find_minimum", "MINIMUM_STATUSES", "METHODS"]

MINIMUM_STATUSES = ("minimum", "saddle", "not_converged")
METHODS = ("lbfgs", "newton-cg")

#: Largest dimension for which the Hessian is formed densely for its eigenvalues.
DENSE_MAX = 2000

_C1 = 1e-4
_MAX_HALVINGS = 40


@dataclasses.dataclass(frozen=True)
class Minimum:
    """Result of :func:`find_minimum` (module docstring for the definitions).

    Attributes:
        x: ``(dim,)`` the point found (float64 NumPy).
        value: ``f(x)``; grad_norm: ``|grad f(x)|`` (Euclidean).
        hess_min_eig, hess_max_eig: extreme eigenvalues of ``hess f(x)``.
        min_eigvec: ``(dim,)`` unit eigenvector of ``hess_min_eig``: the
            direction to leave a saddle along.
        n_steps: optimiser iterations (L-BFGS plus Newton--CG, over all starts); n_hvp:
            Hessian-vector products spent in CG (the eigenvalues' cost excluded).
        converged: ``grad_norm <= gtol``; is_minimum: ``converged and
            hess_min_eig >= -eig_tol``; status: ``"minimum"``, ``"saddle"`` or
            ``"not_converged"``; message: one line saying which and why.
        gtol, eig_tol: the tolerances used; method: the method;
        hess_method: ``"dense"`` or ``"lanczos"``; dtype: the working dtype;
        n_escaped: saddles left on the way (``escape_saddles``).
    """

    x: np.ndarray
    value: float
    grad_norm: float
    hess_min_eig: float
    hess_max_eig: float
    min_eigvec: np.ndarray
    n_steps: int
    n_hvp: int
    converged: bool
    is_minimum: bool
    status: str
    message: str
    gtol: float
    eig_tol: float
    method: str
    hess_method: str
    dtype: str
    n_escaped: int = 0


def _objective(fs) -> tuple[Callable, int]:
    from ._chains import FiniteSum

    if isinstance(fs, FiniteSum):
        return fs.value, fs.dim
    if callable(fs):
        return fs, None
    raise ValueError(f"fs: expected a FiniteSum or a callable f(x) -> scalar, got {type(fs).__name__}")


def _working_dtype(dtype):
    if dtype is None:
        return jnp.dtype(jnp.float64 if jax.config.jax_enable_x64 else jnp.float32)
    dt = jnp.dtype(dtype)
    if dt not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64)):
        raise ValueError(f"dtype: expected float32 or float64, got {dtype!r}")
    if dt == jnp.dtype(jnp.float64) and not jax.config.jax_enable_x64:
        raise ValueError("dtype: float64 needs jax.config.update('jax_enable_x64', True) first")
    return dt


# ---------------------------------------------------------------------------
# L-BFGS (optax) in one compiled loop
# ---------------------------------------------------------------------------


def _lbfgs(f, x0, gtol, max_steps):
    """``(x, n_iter)`` after L-BFGS until ``|grad f| <= gtol``, ``max_steps`` or a stall."""
    opt = optax.lbfgs()
    vg = optax.value_and_grad_from_state(f)

    def body(carry):
        x, state, k, f_prev, stall = carry
        value, grad = vg(x, state=state)
        upd, state = opt.update(grad, state, x, value=value, grad=grad, value_fn=f)
        x_new = optax.apply_updates(x, upd)
        # a stall: the line search returned no decrease five times in a row
        stall = jnp.where(value < f_prev, 0, stall + 1)
        return x_new, state, k + 1, value, stall

    def cond(carry):
        x, state, k, _, stall = carry
        g = optax.tree_utils.tree_get(state, "grad")
        gn = jnp.linalg.norm(g)
        return (k == 0) | ((k < max_steps) & (gn > gtol) & (stall < 5) & jnp.isfinite(gn))

    @jax.jit
    def run(x0):
        st = opt.init(x0)
        inf = jnp.asarray(jnp.inf, x0.dtype)
        x, _, k, _, _ = jax.lax.while_loop(cond, body, (x0, st, jnp.int32(0), inf, jnp.int32(0)))
        return x, k

    x, k = run(x0)
    return x, int(k)


# ---------------------------------------------------------------------------
# Newton--CG
# ---------------------------------------------------------------------------


def _newton_parts(f):
    grad = jax.grad(f)

    def hvp(x, v):
        return jax.jvp(grad, (x,), (v,))[1]

    @jax.jit
    def direction(x, g, maxiter):
        """Truncated CG for ``H p = -g`` (module docstring); returns ``(p, n_hvp)``."""
        gn = jnp.linalg.norm(g)
        tol = jnp.minimum(0.5, jnp.sqrt(gn)) * gn

        def cond(c):
            j, p, r, s, rr, done = c
            return (j < maxiter) & ~done

        def body(c):
            j, p, r, s, rr, done = c
            Hs = hvp(x, s)
            sHs = s @ Hs
            neg = ~(sHs > 0)  # also catches NaN
            a = rr / jnp.where(neg, 1.0, sHs)
            p_new = p + a * s
            r_new = r + a * Hs
            rr_new = r_new @ r_new
            small = jnp.sqrt(rr_new) <= tol
            s_new = -r_new + (rr_new / rr) * s
            p_out = jnp.where(neg, jnp.where(j == 0, -g, p), p_new)
            keep = lambda new, old: jnp.where(neg, old, new)  # noqa: E731
            return (j + 1, p_out, keep(r_new, r), keep(s_new, s), keep(rr_new, rr), neg | small)

        z = jnp.zeros_like(g)
        j, p, *_ = jax.lax.while_loop(cond, body, (jnp.int32(0), z, g, -g, g @ g, gn == 0))
        p = jnp.where(jnp.all(p == 0), -g, p)  # maxiter = 0 or g = 0
        return p, j

    @jax.jit
    def line_search(x, fx, g, p):
        """Largest ``a = 2^-j`` with the Armijo condition (with the rounding allowance)."""
        e = jnp.finfo(x.dtype).eps
        slope = g @ p
        allow = 16 * e * jnp.abs(fx)

        def cond(c):
            j, a, ok = c
            return (j < _MAX_HALVINGS) & ~ok

        def body(c):
            j, a, _ = c
            a = jnp.where(j == 0, 1.0, a * 0.5).astype(x.dtype)
            ft = f(x + a * p)
            ok = jnp.isfinite(ft) & (ft <= fx + _C1 * a * slope + allow)
            return j + 1, a, ok

        j, a, ok = jax.lax.while_loop(cond, body, (jnp.int32(0), jnp.asarray(1.0, x.dtype), jnp.asarray(False)))
        return a, ok

    value_and_grad = jax.jit(jax.value_and_grad(f))
    return value_and_grad, direction, line_search


def _newton_cg(f, x, gtol, max_steps, cg_maxiter):
    """Newton--CG iterations from ``x``; returns ``(x, n_iter, n_hvp, stalled)``."""
    value_and_grad, direction, line_search = _newton_parts(f)
    n_hvp = 0
    for k in range(max_steps):
        fx, g = value_and_grad(x)
        gn = float(jnp.linalg.norm(g))
        if not math.isfinite(gn) or gn <= gtol:
            return x, k, n_hvp, False
        p, j = direction(x, g, jnp.int32(cg_maxiter))
        n_hvp += int(j)
        a, ok = line_search(x, fx, g, p)
        if not bool(ok):
            return x, k, n_hvp, True
        x = x + a * p
    return x, max_steps, n_hvp, False


# ---------------------------------------------------------------------------
# Hessian extreme eigenvalues
# ---------------------------------------------------------------------------


def _hessian_extremes(f, x, dense_max, chunk=64):
    """``(lambda_min, lambda_max, v_min, how)`` of ``hess f(x)``; ``how`` is "dense" or "lanczos"."""
    d = x.shape[0]
    grad = jax.grad(f)
    hvp1 = jax.jit(lambda v: jax.jvp(grad, (x,), (v,))[1])
    if d <= dense_max:
        hvps = jax.jit(jax.vmap(lambda v: jax.jvp(grad, (x,), (v,))[1]))
        eye = jnp.eye(d, dtype=x.dtype)
        rows = [np.asarray(hvps(eye[s:s + chunk]), dtype=np.float64) for s in range(0, d, chunk)]
        H = np.concatenate(rows, axis=0)
        H = 0.5 * (H + H.T)
        if not np.all(np.isfinite(H)):
            return math.nan, math.nan, np.full(d, np.nan), "dense"
        lam, V = np.linalg.eigh(H)
        return float(lam[0]), float(lam[-1]), V[:, 0], "dense"
    op = scipy.sparse.linalg.LinearOperator(
        (d, d), dtype=np.float64,
        matvec=lambda v: np.asarray(hvp1(jnp.asarray(np.ravel(v), x.dtype)), dtype=np.float64))
    v0 = np.random.default_rng(0).standard_normal(d)
    tol = float(np.sqrt(np.finfo(np.dtype(x.dtype.name)).eps))
    out = []
    for which in ("SA", "LA"):
        try:
            lam, vec = scipy.sparse.linalg.eigsh(op, k=1, which=which, v0=v0, tol=tol, maxiter=20 * d)
            out.append((float(lam[0]), vec[:, 0]))
        except scipy.sparse.linalg.ArpackNoConvergence:
            out.append((math.nan, np.full(d, np.nan)))
    return out[0][0], out[1][0], out[0][1], "lanczos"


# ---------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------


def _escape_step(f, x, v, lam):
    """Largest ``h = h0 2^-j`` (``j = 0..40``, ``h0 = max(1, |x| / 10)``) with
    ``f(x + h v) <= f(x) + lam h^2 / 4`` (``lam < 0``): half the decrease the
    quadratic model ``f(x) + lam h^2 / 2`` predicts. ``None`` if there is none."""
    fj = jax.jit(f)
    f0 = float(fj(x))
    vj = jnp.asarray(v, x.dtype)
    h0 = max(1.0, float(jnp.linalg.norm(x)) / 10.0)
    for j in range(_MAX_HALVINGS + 1):
        h = h0 * 2.0**-j
        ft = float(fj(x + h * vj))
        if math.isfinite(ft) and ft <= f0 + 0.25 * lam * h * h:
            return h
    return None


def find_minimum(fs, x0, *, gtol: float = 1e-6, max_steps: int = 1000, method: str = "lbfgs",
                 polish: bool = True, polish_steps: int = 100, cg_maxiter: Optional[int] = None,
                 eig_tol: Optional[float] = None, dense_max: int = DENSE_MAX, escape_saddles: int = 0,
                 dtype=None) -> Minimum:
    """Minimise the full-batch loss from ``x0`` and classify the point found (module docstring).

    Args:
        fs: a :class:`FiniteSum` (its ``value``), or any callable ``f(x) -> scalar``.
        x0: ``(dim,)`` starting point.
        gtol: target ``|grad f|`` (Euclidean norm).
        max_steps: iterations of the main method (L-BFGS or Newton--CG), per start.
        method: ``"lbfgs"`` (optax L-BFGS, then a Newton--CG polish if
            ``polish``) or ``"newton-cg"`` (line-search Newton--CG throughout).
        polish_steps: Newton--CG iterations allowed for the polish.
        cg_maxiter: CG iterations (Hessian-vector products) per Newton step;
            default ``min(2 dim, 500)``.
        eig_tol: curvature tolerance of the classification; default
            ``sqrt(eps) * max(|lambda_min|, |lambda_max|)``.
        dense_max: up to this ``dim`` the Hessian's eigenvalues come from the
            dense matrix, above it from Lanczos on Hessian-vector products.
        escape_saddles: how many times to leave a saddle and minimise again:
            step ``x <- x + h v`` along the unit eigenvector ``v`` of the
            negative eigenvalue ``lambda_min``, ``h`` the largest of
            ``max(1, |x| / 10) 2^-j`` with ``f(x + h v) <= f(x) + lambda_min h^2 / 4``
            (half the second-order decrease). Default 0: report the saddle.
        dtype: working dtype, default float64 when JAX's x64 mode is on, else float32.

    Returns a :class:`Minimum`; a saddle is reported as ``status="saddle"``
    with ``is_minimum=False`` (never raised), so check ``result.is_minimum``
    or ``result.message`` before linearising there.
    """
    f, dim = _objective(fs)
    gtol = check_positive(gtol, "gtol")
    max_steps = check_positive_int(max_steps, "max_steps")
    polish_steps = check_positive_int(polish_steps, "polish_steps")
    dense_max = check_positive_int(dense_max, "dense_max")
    escape_saddles = check_nonneg_int(escape_saddles, "escape_saddles")
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    dt = _working_dtype(dtype)
    x0 = np.asarray(x0, dtype=np.float64)
    if x0.ndim != 1 or (dim is not None and x0.shape != (dim,)):
        raise ValueError(f"x0: expected shape ({dim if dim is not None else 'dim'},), got {x0.shape}")
    if not np.all(np.isfinite(x0)):
        raise ValueError("x0: contains NaN or inf")
    d = x0.shape[0]
    out = jax.eval_shape(f, jax.ShapeDtypeStruct((d,), dt))
    if getattr(out, "shape", None) != ():
        raise ValueError(f"fs: f(x) must return a scalar, got shape {getattr(out, 'shape', out)}")
    cg_maxiter = min(2 * d, 500) if cg_maxiter is None else check_positive_int(cg_maxiter, "cg_maxiter")
    if eig_tol is not None:
        eig_tol = check_positive(eig_tol, "eig_tol")

    def fw(x):
        return jnp.asarray(f(x), dt)

    x = jnp.asarray(x0, dt)
    n_steps = n_hvp = n_escaped = 0
    while True:
        x, k, h, stalled = _optimise(fw, x, method, gtol, max_steps, polish, polish_steps, cg_maxiter)
        n_steps += k
        n_hvp += h
        res = _classify(fw, x, gtol, eig_tol, dense_max, dt, stalled, n_steps, n_hvp, method)
        if res.status != "saddle" or n_escaped >= escape_saddles:
            break
        hstep = _escape_step(fw, x, res.min_eigvec, res.hess_min_eig)
        if hstep is None:
            break
        x = x + hstep * jnp.asarray(res.min_eigvec, dt)
        n_escaped += 1
    if n_escaped:
        res = dataclasses.replace(res, message=res.message + f" (after leaving {n_escaped} saddle(s))")
    return dataclasses.replace(res, n_escaped=n_escaped)


def _optimise(fw, x, method, gtol, max_steps, polish, polish_steps, cg_maxiter):
    """One start: ``(x, n_steps, n_hvp, stalled)``."""
    if method == "lbfgs":
        x, n_steps = _lbfgs(fw, x, gtol, max_steps)
        if not polish:
            return x, n_steps, 0, False
        x, k, n_hvp, stalled = _newton_cg(fw, x, gtol, polish_steps, cg_maxiter)
        return x, n_steps + k, n_hvp, stalled
    return _newton_cg(fw, x, gtol, max_steps, cg_maxiter)


def _classify(fw, x, gtol, eig_tol, dense_max, dt, stalled, n_steps, n_hvp, method) -> Minimum:
    value, g = jax.jit(jax.value_and_grad(fw))(x)
    value = float(value)
    gn = float(jnp.linalg.norm(g))
    lam_min, lam_max, v_min, how = _hessian_extremes(fw, x, dense_max)
    scale = max(abs(lam_min), abs(lam_max)) if math.isfinite(lam_min) and math.isfinite(lam_max) else math.nan
    tol = eig_tol if eig_tol is not None else math.sqrt(float(jnp.finfo(dt).eps)) * scale
    if not (tol > 0):  # H = 0 (or unknown): only an exact zero curvature is accepted
        tol = 0.0 if math.isfinite(scale) else math.nan
    converged = math.isfinite(gn) and gn <= gtol
    curvature_known = math.isfinite(lam_min) and math.isfinite(tol)
    is_minimum = bool(converged and curvature_known and lam_min >= -tol)
    where = f"|grad f| = {gn:.3g}, Hessian eigenvalues in [{lam_min:.3g}, {lam_max:.3g}] ({how})"
    if not converged:
        status = "not_converged"
        why = "the line search stalled" if stalled else f"after {n_steps} steps"
        message = f"not converged: {where}; |grad f| > gtol = {gtol:.3g} ({why})"
        if curvature_known and lam_min < -tol:
            message += "; negative curvature: the iterate is near a saddle or on a slope"
        if dt == jnp.dtype(jnp.float32):
            message += "; float32 may not resolve the gradient below ~1e-6: use float64 or a larger gtol"
    elif not curvature_known:
        status = "not_converged"
        message = f"not certified: {where}; the smallest Hessian eigenvalue did not converge"
    elif lam_min < -tol:
        status = "saddle"
        message = (f"saddle, not a minimum: {where}; the Hessian has a negative eigenvalue "
                   f"{lam_min:.3g} < -eig_tol = {-tol:.3g}; leave along min_eigvec (escape_saddles=1 does it)")
    else:
        status = "minimum"
        message = f"minimum: {where}"
        if lam_min <= tol:
            message += (f"; degenerate: smallest eigenvalue {lam_min:.3g} within eig_tol = {tol:.3g} of 0 "
                        f"(a flat direction)")
    return Minimum(
        x=np.asarray(x, dtype=np.float64), value=value, grad_norm=gn, hess_min_eig=lam_min, hess_max_eig=lam_max,
        min_eigvec=np.asarray(v_min, dtype=np.float64), n_steps=int(n_steps), n_hvp=int(n_hvp),
        converged=bool(converged), is_minimum=is_minimum, status=status, message=message, gtol=gtol,
        eig_tol=float(tol), method=method, hess_method=how, dtype=jnp.dtype(dt).name, n_escaped=0,
    )
