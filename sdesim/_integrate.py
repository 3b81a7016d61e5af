"""The ensemble integrator: ``sdesim.simulate``.

Integrates, for every particle independently, the Itô SDE

    dx = b(x) dt + sqrt(2 beta^-1 D(x)) dW

where ``b`` is the drift of the chosen form (see :meth:`AbstractProblem.drift`):

* ``form="ito"``:        ``b = -grad f``
* ``form="atype"``:      ``b = -(D+Q) grad Phi + beta^-1 div(D+Q)`` (exact Itô
  conversion of the A-type SDE; stationary density exp(-beta Phi))
* ``form="atype_naive"``: ``b = -(D+Q) grad Phi`` (the A-type equation read
  naively as Itô -- a *different* process when div(D+Q) != 0; for contrast only)

Schemes (``method``), step ``h = dt``, ``xi`` the step's noise variables:

* ``"euler"`` -- Euler--Maruyama ``x' = x + b(x) h + sqrt(2 beta^-1 h) L(x) xi``
  (strong order 1/2, weak order 1);
* ``"weak_euler"`` -- the same with two-point ``xi = +-1`` (simplified weak
  Euler; weak order 1, one random bit per variable instead of a Gaussian);
* ``"heun"`` -- stochastic Heun for additive noise (``D`` constant):
  predictor ``x~ = x + b h + s``, corrector ``x' = x + (b(x) + b(x~)) h/2 + s``
  (weak order 2 for additive noise);
* ``"diffrax"`` -- any diffrax SDE solver (default ``diffrax.Euler()``) with a
  per-particle ``VirtualBrownianTree``; adaptive with ``adaptive=True`` and a
  solver that supports it. Its noise comes from diffrax's Brownian tree, so it
  is reproducible by seed but not equal to the native path's noise.

Everything runs as one jit-compiled program per (problem type, shapes, form,
method, segment length): ``vmap`` over particles, ``lax.scan`` over steps,
particles swept in cache-sized blocks, no host round-trips inside the loop.
Snapshots are copied to the host between segments, so device memory stays
bounded. Noise obeys the contract of :mod:`sdesim.noise`: the same seed gives
the same numbers whatever ``chunk_size`` or segmenting.

**Divergence.** A particle has diverged at the first saved snapshot at which a
coordinate is NaN, infinite or beyond the bound ``|x_i| > B``
(``divergence_bound``). The check runs inside the compiled loop at every
snapshot (the NaN check and the bound are one comparison, ``|x| <= B`` being
false for NaN); a particle that fails it is set to NaN there, so it stays
diverged exactly like a particle that overflowed: counted in ``n_diverged``,
its first diverged snapshot step in ``diverged_step``, left out of
``samples()``, ``mean()`` and ``cov()`` (all its snapshots), and of the in-loop
statistics of ``keep="stats"`` from that snapshot on (those reducers cannot
see the future; its earlier snapshots stay pooled, as for NaN). Burn-in is
not checked (only snapshots are), so the result does not depend on how the run
is cut into pieces; NaN is absorbing anyway.

The default ``B`` (:func:`default_divergence_bound`) keeps pooled second
moments finite: with ``finfo(dtype).max < 2^e`` (``e = 128`` float32, ``1024``
float64), ``B = 2^(e/2 - 20)`` -- ``2^44 = 1.8e13`` in float32, ``2^492 = 1.3e148``
in float64, i.e. ``sqrt(finfo.max) / 2^20``. Every product ``x_i x_j`` of kept
values is ``<= B^2 = 2^(e - 40)``, so a sum of ``N`` of them (the in-loop sums
``sum x x^T``, which are accumulated in the run's dtype, and the host's float64
pooling) cannot overflow for ``N < 2^40``, and centred sums
``sum (x - mean)^2 <= 4 N B^2`` not for ``N < 2^38 = 2.7e11`` pooled values
(particles times snapshots). A finite value above ``B`` carries no
information a run can use (in float32 its grid spacing exceeds ``10^6``).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import Any, Callable, NamedTuple, Optional

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from . import _noise
from ._options import Checkpointing, SaveAt, merge_options
from ._problem import FORMS, AbstractProblem
from ._segments import plan_segments, saves_per_segment
from ._solvers import SOLVER_NAMES, AbstractSolver, Diffrax, as_solver
from ._validate import (
    check_divergence_bound,
    check_finite_array,
    check_initial_state,
    check_nonneg_int,
    check_positive,
    check_positive_int,
    check_save_every,
)

__all__ = ["Ensemble", "simulate", "METHODS", "default_divergence_bound", "SaveAt", "Checkpointing"]

METHODS = tuple(SOLVER_NAMES)  # the config file's method strings

#: State bytes per cache block inside the compiled loop: big enough for XLA to split a block's
#: vector operations over the CPU's threads, small enough to stay in the last-level cache.
BLOCK_BYTES = 2**20
#: Fewest particles per block (below this, per-step overheads dominate).
MIN_BLOCK = 8192


def default_block_size(dim: int, itemsize: int = 4, backend: Optional[str] = None) -> int:
    """Particles per cache block.

    On CPU ``BLOCK_BYTES`` of state, at least ``MIN_BLOCK`` particles. On an
    accelerator no blocking: all of a device's particles form one block, so
    every step is one wide kernel.
    """
    backend = backend or jax.default_backend()
    if backend != "cpu":
        return 2**31 - 1
    return max(MIN_BLOCK, BLOCK_BYTES // (dim * itemsize))
#: Upper bound on the snapshot buffer of one segment (bytes) before it goes to the host.
SEGMENT_BYTES = 128 * 2**20
#: ``log2`` of the margin of the default divergence bound below ``sqrt(finfo.max)``.
DIVERGENCE_MARGIN_BITS = 20


def default_divergence_bound(dtype) -> float:
    """``2^(e/2 - 20)`` with ``finfo(dtype).max < 2^e``: float32 ``2^44``, float64 ``2^492`` (module docstring)."""
    e = int(np.finfo(dtype).maxexp)
    return float(2.0 ** (e // 2 - DIVERGENCE_MARGIN_BITS))


@dataclasses.dataclass(frozen=True)
class Ensemble:
    """Result of :func:`simulate` (and of :func:`sdesim.chains.run_chains`), frozen.

    The initial state is not a snapshot (``includes_initial`` is False): the
    first snapshot is taken ``save_every`` steps after the burn-in.

    Attributes:
        x: snapshots, shape ``(n_saved, n_particles, dim)`` (NumPy; may hold
           non-finite values for diverged particles -- use :meth:`samples`).
        t: snapshot times ``(n_saved,)`` (``t = step * dt``, burn-in included).
        step: snapshot step indices ``(n_saved,)``.
        finite: ``(n_particles,)`` bool, False for particles that diverged
           (NaN, inf or ``|x_i| > divergence_bound`` at a snapshot; module docstring).
        diverged_step: ``(n_particles,)`` first saved step at which the particle
           had diverged (-1 if it never did).
        divergence_bound: the bound used (``None`` where unknown).
    """

    x: np.ndarray
    t: np.ndarray
    step: np.ndarray
    finite: np.ndarray
    diverged_step: np.ndarray
    dt: float
    beta_inv: float
    form: str
    method: str
    seed: int
    burn_in: int
    save_every: Optional[int]
    compile_s: float = 0.0
    run_s: float = 0.0
    n_steps_total: int = 0
    stats: Optional[dict] = None
    particle_offset: int = 0
    divergence_bound: Optional[float] = None

    #: The initial state is not among the snapshots.
    includes_initial = False

    @property
    def n_particles(self) -> int:
        return self.finite.shape[0]

    @property
    def dim(self) -> int:
        return self.x.shape[2] if self.x is not None else len(self.stats["mean"])

    @property
    def n_diverged(self) -> int:
        return int(np.sum(~self.finite))

    @property
    def particle_steps_per_s(self) -> float:
        return self.n_particles * self.n_steps_total / max(self.run_s, 1e-12)

    def samples(self) -> np.ndarray:
        """All snapshots of the finite particles pooled, shape ``(n_saved * n_finite, dim)``."""
        if self.x is None:
            raise ValueError("samples: this run kept statistics only (keep='stats'); use mean(), cov(), stats")
        return self.x[:, self.finite, :].reshape(-1, self.dim)

    def mean(self) -> np.ndarray:
        if self.x is None:
            return self.stats["mean"]
        return self.samples().astype(np.float64).mean(axis=0)

    def cov(self) -> np.ndarray:
        if self.x is None:
            return self.stats["cov"]
        s = self.samples().astype(np.float64)
        return np.atleast_2d(np.cov(s, rowvar=False))

    def to_xarray(self):
        """Snapshots as an ``xarray.DataArray`` with dims (time, particle, dim)."""
        try:
            import xarray as xr
        except ImportError as e:  # pragma: no cover - optional
            raise ImportError("to_xarray needs xarray: pip install xarray") from e
        return xr.DataArray(
            self.x,
            dims=("time", "particle", "dim"),
            coords={"time": self.t, "step": ("time", self.step)},
            attrs={"dt": self.dt, "beta_inv": self.beta_inv, "form": self.form, "seed": self.seed},
        )


# ---------------------------------------------------------------------------
# compiled core
# ---------------------------------------------------------------------------


def _block_run(problem, x, pidx, keys, step0, params, every, *, form, method, n_out, dtype, reduce):
    """Advance one block of particles by ``n_out * every`` steps.

    The state is laid out particle-last, ``x (dim, n)`` (struct of arrays):
    every coordinate is one contiguous vector, so the drift, the noise factor
    and the hash of the counter-based noise (:mod:`sdesim.noise`, which
    produces its numbers as ``(noise_dim, n)``) are plain vector operations.
    ``pidx (n,)`` are the global particle indices, ``keys`` the stream keys.

    Returns ``(x_final, payload)``: the ``n_out`` snapshots ``(n_out, dim, n)``,
    or with ``reduce=(bins, box)`` running statistics of the snapshots computed
    inside the loop (see :func:`_snapshot_stats`), so nothing per-snapshot is kept.
    """
    diff = problem.diffusion
    nd = diff.noise_dim
    # (beta_inv, dt, sqrt(2 beta_inv dt), divergence bound), rounded to dtype on the host from
    # float64, so the numbers do not depend on whether JAX's x64 mode is on; the bound is +inf
    # in pieces that keep no snapshot (nothing is marked there)
    beta_inv, dt, scale, bound = params[0], params[1], params[2], params[3]

    drift = jax.vmap(lambda xi: problem.drift(xi, beta_inv, form).astype(dtype), in_axes=1, out_axes=1)
    if diff.is_constant:
        x_any = jnp.zeros((problem.dim,), dtype)
        noise_of = jax.vmap(lambda z: diff.apply(x_any, z), in_axes=1, out_axes=1)

        def noise(x, z):
            return noise_of(z).astype(dtype)
    else:
        apply = jax.vmap(diff.apply, in_axes=(1, 1), out_axes=1)

        def noise(x, z):
            return apply(x, z).astype(dtype)

    solver = method  # an AbstractSolver (sdesim.AbstractSolver): the scheme and its noise

    def advance(x, i):
        s0 = (step0 + i * every).astype(jnp.uint32)

        def body(k, carry):
            x, state = carry
            s = s0 + k.astype(jnp.uint32)
            return solver.step(x, s, state, drift=drift, noise=noise, dt=dt, scale=scale, keys=keys, pidx=pidx,
                               noise_dim=nd, dtype=dtype)

        return jax.lax.fori_loop(0, every, body, (x, solver.init(keys, pidx, s0, nd, dtype)))[0]

    if reduce is None:

        def inner(x, i):
            x = advance(x, i)
            x = jnp.where(_within(x, bound)[None, :], x, jnp.nan)
            return x, x

        return jax.lax.scan(inner, x, jnp.arange(n_out, dtype=step0.dtype))

    bins, box = reduce
    n = x.shape[1]

    def inner_stats(carry, i):
        x, bad = carry
        x = advance(x, i)
        fin = _within(x, bound)
        x = jnp.where(fin[None, :], x, jnp.nan)
        step_now = step0 + (i + 1) * every
        bad = jnp.where((bad < 0) & ~fin, step_now, bad)
        return (x, bad), _snapshot_stats(x, fin, bins, box)

    (x, bad), st = jax.lax.scan(
        inner_stats, (x, jnp.full((n,), -1, step0.dtype)), jnp.arange(n_out, dtype=step0.dtype)
    )
    st = jax.tree_util.tree_map(lambda a: a.sum(axis=0), st)  # over snapshots
    st["bad"] = bad
    return x, st


def _within(x, bound):
    """``(n,)`` bool: every coordinate of the column ``|x_i| <= bound`` (False for NaN)."""
    return jnp.all(jnp.abs(x) <= bound, axis=0)


def _snapshot_stats(x, fin, bins, box):
    """Count, sum, sum of outer products (and a 2D histogram of x[:2]) of the finite columns of ``x (dim, n)``."""
    w = fin.astype(x.dtype)
    xs = jnp.where(fin[None, :], x, 0.0)
    out = {"n": jnp.sum(w), "s1": xs.sum(axis=1), "s2": xs @ xs.T}
    if bins:
        (x0, x1), (y0, y1) = box
        ix = jnp.floor((xs[0] - x0) / (x1 - x0) * bins).astype(jnp.int32)
        iy = jnp.floor((xs[1] - y0) / (y1 - y0) * bins).astype(jnp.int32)
        inside = fin & (ix >= 0) & (ix < bins) & (iy >= 0) & (iy < bins)
        flat = jnp.where(inside, ix * bins + iy, bins * bins)
        h = jnp.zeros((bins * bins + 1,), jnp.int32).at[flat].add(1)
        out["hist"] = h[:-1].reshape(bins, bins)
    return out


def _segment(problem, x, pidx, keys, step0, params, every, *, form, method, n_out, block, dtype, reduce):
    """All particles ``x (n, dim)``: sweep cache-sized blocks through the whole segment.

    The state is transposed to the particle-last layout ``(dim, n)`` for the
    loop and back on the way out (once per segment and per snapshot).
    """
    n, dim = x.shape
    problem = _cast_floats(problem, dtype)
    kw = dict(form=form, method=method, n_out=n_out, dtype=dtype, reduce=reduce)
    xt = x.T
    if n <= block:
        xf, out = _block_run(problem, xt, pidx, keys, step0, params, every, **kw)
        if reduce is None:
            out = jnp.swapaxes(out, 1, 2)
        return xf.T, out
    nb = -(-n // block)
    pad = nb * block - n
    # padded particles start at NaN so reducers ignore them; they are sliced off anyway
    xp = jnp.pad(xt, ((0, 0), (0, pad)), constant_values=jnp.nan).reshape(dim, nb, block).transpose(1, 0, 2)
    pp = jnp.pad(pidx, (0, pad)).reshape(nb, block)

    def one(args):
        xb, pb = args
        return _block_run(problem, xb, pb, keys, step0, params, every, **kw)

    xf, out = jax.lax.map(one, (xp, pp))  # xf (nb, dim, block)
    xf = xf.transpose(0, 2, 1).reshape(nb * block, dim)[:n]
    if reduce is None:  # (nb, n_out, dim, block) -> (n_out, n, dim)
        out = out.transpose(1, 0, 3, 2).reshape(n_out, nb * block, dim)[:, :n]
    else:
        bad = out.pop("bad").reshape(nb * block)[:n]
        out = jax.tree_util.tree_map(lambda a: a.sum(axis=0), out)
        out["bad"] = bad
    return xf, out


def _sharded_segment(problem, x, pidx, keys, step0, params, every, *, n_shards, **static):
    """Shard the particle axis over ``n_shards`` local devices (``jax.shard_map``).

    Every device runs :func:`_segment` on its own particles; the noise of a
    particle depends only on its global index, so the result equals the
    single-device run bit for bit. Reducer statistics are summed with ``psum``.
    """
    from jax.sharding import Mesh
    from jax.sharding import PartitionSpec as P

    mesh = Mesh(np.array(jax.devices()[:n_shards]), ("p",))
    reduce = static["reduce"]

    def local(problem, x, pidx, keys, step0, params, every):
        xf, out = _segment(problem, x, pidx, keys, step0, params, every, **static)
        if reduce is not None:
            bad = out.pop("bad")
            out = jax.lax.psum(out, "p")
            out["bad"] = bad
        return xf, out

    if reduce is None:
        out_specs = (P("p"), P(None, "p"))
    else:
        keys_ = ["n", "s1", "s2"] + (["hist"] if reduce[0] else [])
        out_specs = (P("p"), {**{k: P() for k in keys_}, "bad": P("p")})
    f = jax.shard_map(local, mesh=mesh, in_specs=(P(), P("p"), P("p"), P(), P(), P(), P()),
                      out_specs=out_specs, check_vma=False)
    return f(problem, x, pidx, keys, step0, params, every)


def _cast_floats(tree, dtype):
    """Cast every floating-point array leaf of a PyTree to ``dtype``."""

    def cast(leaf):
        if eqx.is_array(leaf) and jnp.issubdtype(leaf.dtype, jnp.floating):
            return leaf.astype(dtype)
        return leaf

    return jax.tree_util.tree_map(cast, tree)


_STATIC = ("form", "method", "n_out", "block", "dtype", "reduce")
_segment_jit = jax.jit(_segment, static_argnames=_STATIC)
_sharded_jit = jax.jit(_sharded_segment, static_argnames=_STATIC + ("n_shards",))
_COMPILED: dict = {}


def _compiled_segment(problem, x, pidx, keys, step0, params, every, **static):
    """AOT-compiled segment, cached on (problem structure, shapes, statics)."""
    leaves, treedef = jax.tree_util.tree_flatten(problem)
    sig = (
        treedef,
        tuple((jnp.shape(l), jnp.result_type(l)) for l in leaves),
        x.shape,
        x.dtype,
        keys.shape,
        tuple(sorted(static.items())),
    )
    hit = _COMPILED.get(sig)
    if hit is not None:
        return hit, 0.0
    t0 = time.perf_counter()
    if static.get("n_shards", 1) > 1:
        comp = _sharded_jit.lower(problem, x, pidx, keys, step0, params, every, **static).compile()
    else:
        static = {k: v for k, v in static.items() if k != "n_shards"}
        comp = _segment_jit.lower(problem, x, pidx, keys, step0, params, every, **static).compile()
    _COMPILED[sig] = comp
    return comp, time.perf_counter() - t0


def compiled_cache_size() -> int:
    """Number of distinct compiled segment programs (for tests of no re-tracing)."""
    return len(_COMPILED)


# ---------------------------------------------------------------------------
# the run plan: every argument validated and resolved before work starts
# ---------------------------------------------------------------------------


def _check_problem(problem, form, method) -> AbstractSolver:
    """Validate problem, form and method; return the solver object."""
    if not isinstance(problem, AbstractProblem):
        raise ValueError(f"problem: expected an sdesim problem (sdesim.problems.*), got {type(problem).__name__}")
    if form not in FORMS:
        raise ValueError(f"form: expected one of {FORMS}, got {form!r}")
    if form != "ito" and not problem.has_atype:
        raise ValueError(f"form: {form!r} needs a problem that carries Phi and Q; {type(problem).__name__} does not")
    solver = as_solver(method)
    if solver.additive_noise_only and not problem.diffusion.is_constant:
        raise ValueError(f"method: {solver.name!r} needs additive (constant) noise; use 'euler' for state-dependent D(x)")
    return solver


def _refuse_loop_options(**given) -> None:
    """The diffrax path runs outside the compiled loop: refuse the loop's options instead of ignoring them."""
    defaults = dict(keep="trajectory", checkpoint_every=None, resume=None, chunk_size=None, block_size=None,
                    devices=None, out_array=None, on_piece=None, progress=False)
    for name, value in given.items():
        if value is not None and value is not False and value != defaults[name]:
            raise ValueError(f"{name}: not supported with method='diffrax' (it runs outside sdesim's compiled "
                             f"loop); use method='euler', 'weak_euler' or 'heun', or drop {name}")


def _initial_state(x0, n_particles, dim, dtype):
    if x0 is None:
        return jnp.zeros((n_particles, dim), dtype)
    return jnp.asarray(check_initial_state(x0, "x0", n_particles, dim), dtype)


def _resolve_dtype(dtype):
    dt = jnp.dtype(dtype)
    if dt not in (jnp.dtype("float32"), jnp.dtype("float64")):
        raise ValueError(f"dtype: expected float32 or float64, got {dtype!r}")
    if dt == jnp.dtype("float64") and not jax.config.jax_enable_x64:
        raise ValueError("dtype: float64 needs jax.config.update('jax_enable_x64', True) first")
    return dt


def _resolve_reduce(keep, stats_bins, stats_box, dim):
    """``None`` for ``keep="trajectory"``; ``(bins, box)`` of the in-loop statistics for ``keep="stats"``."""
    if keep not in ("trajectory", "stats"):
        raise ValueError(f"keep: expected 'trajectory' or 'stats', got {keep!r}")
    if keep == "trajectory":
        return None
    if stats_bins is None:
        return (0, None)
    bins = check_positive_int(stats_bins, "stats_bins")
    box_arr = check_finite_array(stats_box, "stats_box", shape=(2, 2))
    if np.any(box_arr[:, 1] <= box_arr[:, 0]):
        raise ValueError("stats_box: expected [[x0, x1], [y0, y1]] with x0 < x1, y0 < y1")
    if dim < 2:
        raise ValueError("stats_bins: the histogram needs dim >= 2")
    return (bins, tuple(tuple(float(v) for v in row) for row in box_arr))


def _resolve_shards(devices, n_particles) -> int:
    """Local devices the particle axis is sharded over (``None``: all, when each gets >= 1024 particles)."""
    n_local = len(jax.local_devices())
    if devices is None:
        return n_local if n_local > 1 and n_particles >= 1024 * n_local else 1
    n_shards = check_positive_int(devices, "devices")
    if n_shards > n_local:
        raise ValueError(f"devices: {n_shards} requested, {n_local} available")
    return n_shards


def _process_share(process_index, process_count, n_particles) -> tuple[int, int]:
    """``(offset, count)``: this process's slice ``[i n / P, (i+1) n / P)`` of the global particles."""
    pc = jax.process_count() if process_count is None else check_positive_int(process_count, "process_count")
    pi = jax.process_index() if process_index is None else check_nonneg_int(process_index, "process_index")
    if pi >= pc:
        raise ValueError(f"process_index: must be < process_count={pc}, got {pi}")
    offset = pi * n_particles // pc
    if pc == 1:
        return offset, n_particles
    count = (pi + 1) * n_particles // pc - offset
    if count == 0:
        raise ValueError(f"n_particles: {count} particles cannot be split over {pc} processes")
    return offset, count


class _Piece(NamedTuple):
    """One compiled call: ``n_out`` snapshots ``every`` steps apart, kept (``keep``) or not (burn-in)."""

    n_out: int
    every: int
    keep: bool

    @property
    def steps(self) -> int:
        return self.n_out * self.every


def _plan_pieces(burn_in, n_steps, save_every, bytes_per_save, checkpoint_every) -> tuple[_Piece, ...]:
    """The run cut into pieces, each one compiled call (:func:`sdesim._segments.plan_segments`).

    Burn-in pieces keep nothing; saving pieces keep their ``n_out`` snapshots.
    ``checkpoint_every`` (steps) bounds the length of a piece so that progress
    and checkpoints happen at least that often. Equal-length pieces are
    preferred so one compiled program serves them all.
    """
    ce = checkpoint_every
    pieces = [_Piece(1, n, False) for n in plan_segments(burn_in, ce or burn_in, equal=False)] if burn_in else []
    if save_every is None:  # one snapshot, at the end of the last piece
        cut = plan_segments(n_steps, ce or n_steps, equal=False)
        return tuple(pieces + [_Piece(1, n, i == len(cut) - 1) for i, n in enumerate(cut)])
    cap = saves_per_segment(bytes_per_save, SEGMENT_BYTES)
    if ce:
        cap = min(cap, max(1, ce // save_every))
    return tuple(pieces + [_Piece(seg, save_every, True) for seg in plan_segments(n_steps // save_every, cap)])


@dataclasses.dataclass(frozen=True)
class _RunPlan:
    """Everything :func:`simulate` does, validated and resolved before any work starts.

    ``n_particles`` and ``x_init`` are this process's share (from
    ``offset``); ``pieces`` is the cut of one particle chunk's run (burn-in and
    saving pieces); ``reduce`` is ``None`` (keep snapshots) or ``(bins, box)``
    (in-loop statistics). ``diffrax`` holds ``(solver, adaptive)`` for the
    diffrax path, which uses no pieces.
    """

    problem: AbstractProblem
    solver: AbstractSolver
    form: str
    beta_inv: float
    dt: float
    seed: int
    n_steps: int
    burn_in: int
    save_every: Optional[int]
    dtype: Any
    divergence_bound: float
    reduce: Optional[tuple]
    x_init: Any
    n_particles: int
    offset: int
    chunk: int
    block: int
    n_shards: int
    pieces: tuple
    progress: Any
    on_piece: Optional[Callable]
    resume: Optional[dict]
    out_array: Any
    diffrax: Optional[tuple]

    @property
    def every(self) -> int:
        return self.save_every if self.save_every is not None else self.n_steps

    @property
    def n_saves(self) -> int:
        return self.n_steps // self.every

    @property
    def total_steps(self) -> int:
        return self.burn_in + self.n_steps

    @property
    def steps(self) -> np.ndarray:
        """Step index of every snapshot."""
        return self.burn_in + self.every * np.arange(1, self.n_saves + 1)

    def static(self) -> dict:
        """The compiled segment's static arguments (all but ``n_out``)."""
        return dict(form=self.form, method=self.solver, block=self.block, dtype=self.dtype, reduce=self.reduce,
                    n_shards=self.n_shards)

    def params(self, keep: bool):
        """``(beta_inv, dt, sqrt(2 beta_inv dt), bound)`` in the run's dtype, rounded from float64.

        The bound is capped at ``finfo.max`` so that +-inf fails ``|x| <= bound``,
        and is +inf in pieces that keep nothing (nothing is marked there).
        """
        bound = min(self.divergence_bound, float(np.finfo(self.dtype).max)) if keep else np.inf
        scale = np.sqrt(2.0 * self.beta_inv * self.dt)
        return jnp.asarray(np.array([self.beta_inv, self.dt, scale, bound], np.float64).astype(self.dtype))

    def keys(self):
        stream = _noise.RADEMACHER_STREAM if self.solver.stream == "two_point" else _noise.GAUSSIAN_STREAM
        return _noise.stream_keys(self.seed, self.problem.diffusion.noise_dim, stream)


def _plan_run(problem, *, beta_inv, n_particles, n_steps, dt, seed, x0, form, save_every, burn_in, method, dtype,
              chunk_size, block_size, progress, solver, adaptive, checkpoint_every, out_array, on_piece, resume,
              keep, stats_bins, stats_box, devices, process_index, process_count, divergence_bound) -> _RunPlan:
    """Validate every argument of :func:`simulate` (one ``ValueError`` naming it) and resolve the run."""
    method = _check_problem(problem, form, method)
    beta_inv = check_positive(beta_inv, "beta_inv")
    n_particles = check_positive_int(n_particles, "n_particles")
    n_steps = check_positive_int(n_steps, "n_steps")
    dt = check_positive(dt, "dt")
    seed = check_nonneg_int(seed, "seed")
    burn_in = check_nonneg_int(burn_in, "burn_in")
    if save_every is not None:
        save_every = check_save_every(save_every, n_steps)
    if chunk_size is not None:
        chunk_size = check_positive_int(chunk_size, "chunk_size")
    if n_particles >= _noise.UINT32_LIMIT:
        raise ValueError(f"n_particles: the noise counter is uint32, expected < 2**32, got {n_particles}")
    if burn_in + n_steps >= 2**31:
        raise ValueError(f"n_steps: burn_in + n_steps must be < 2**31, got {burn_in + n_steps}")
    block_given = check_positive_int(block_size, "block_size") if block_size is not None else None
    reduce = _resolve_reduce(keep, stats_bins, stats_box, problem.dim)
    n_shards = _resolve_shards(devices, n_particles)
    if checkpoint_every is not None:
        checkpoint_every = check_positive_int(checkpoint_every, "checkpoint_every")
    dtype = _resolve_dtype(dtype)
    bound = default_divergence_bound(dtype) if divergence_bound is None else check_divergence_bound(divergence_bound)
    dim = problem.dim
    x_init = _initial_state(x0, n_particles, dim, dtype)
    offset, n_local = _process_share(process_index, process_count, n_particles)
    x_init = x_init[offset : offset + n_local] if n_local < n_particles else x_init
    diffrax_ = None
    if isinstance(method, Diffrax):
        _refuse_loop_options(keep=keep, checkpoint_every=checkpoint_every, resume=resume, chunk_size=chunk_size,
                             block_size=block_given, devices=devices, out_array=out_array, on_piece=on_piece,
                             progress=progress)
        diffrax_ = (method.solver if solver is None else solver, method.adaptive or adaptive)
    elif solver is not None or adaptive:
        raise ValueError("solver: only for method='diffrax' (or sdesim.Diffrax(solver, adaptive)); "
                         f"got a solver with method={method.name!r}")
    if progress and checkpoint_every is None:  # ~20 progress updates (pieces differ only in length)
        checkpoint_every = max(1, (burn_in + n_steps) // 20)
    chunk = n_local if chunk_size is None else min(chunk_size, n_local)
    pieces = () if diffrax_ else _plan_pieces(burn_in, n_steps, save_every, chunk * dim * dtype.itemsize,
                                              checkpoint_every)
    return _RunPlan(
        problem=problem, solver=method, form=form, beta_inv=beta_inv, dt=dt, seed=seed, n_steps=n_steps,
        burn_in=burn_in, save_every=save_every, dtype=dtype, divergence_bound=bound, reduce=reduce,
        x_init=x_init, n_particles=n_local, offset=offset, chunk=chunk,
        block=block_given if block_given is not None else default_block_size(dim, dtype.itemsize),
        n_shards=n_shards, pieces=pieces, progress=progress, on_piece=on_piece, resume=resume,
        out_array=out_array, diffrax=diffrax_,
    )


class _Progress:
    def __init__(self, total_ps: float, enabled, stream=sys.stderr):
        self.total = total_ps
        self.enabled = enabled
        self.stream = stream
        self.t0 = time.perf_counter()

    def __call__(self, done_ps: float):
        if not self.enabled:
            return
        el = time.perf_counter() - self.t0
        rate = done_ps / max(el, 1e-9)
        eta = (self.total - done_ps) / max(rate, 1e-9)
        frac = done_ps / max(self.total, 1)
        if callable(self.enabled):
            self.enabled(frac, rate, eta)
            return
        bar = "#" * int(30 * frac)
        self.stream.write(f"\r[{bar:<30}] {100 * frac:5.1f}%  {rate:.3g} particle-steps/s  ETA {eta:6.1f}s")
        if frac >= 1:
            self.stream.write("\n")
        self.stream.flush()


# ---------------------------------------------------------------------------
# sinks (where kept pieces go) and the loop over pieces
# ---------------------------------------------------------------------------


class _PieceOutput(NamedTuple):
    """What one kept piece of particles ``[start, stop)`` produced: snapshots ``k .. k + n_out`` or their statistics."""

    start: int
    stop: int
    k: int
    n_out: int
    payload: Any


class _TrajectorySink:
    """Keeps every snapshot in ``x (n_saves, n_particles, dim)``: a new array, or the caller's ``out_array``."""

    def __init__(self, plan: _RunPlan):
        shape = (plan.n_saves, plan.n_particles, plan.problem.dim)
        if plan.out_array is None:
            self.x = np.empty(shape, dtype=plan.dtype)
        elif tuple(plan.out_array.shape) != shape:
            raise ValueError(f"out_array: expected shape {shape}, got {plan.out_array.shape}")
        else:
            self.x = plan.out_array
        self.steps = plan.steps

    def write(self, out: _PieceOutput) -> None:
        self.x[out.k : out.k + out.n_out, out.start : out.stop] = np.asarray(out.payload)[:, : out.stop - out.start]

    def finish(self) -> dict:
        """The result's ``x``, ``stats`` (None), ``finite`` and ``diverged_step``."""
        finite, div_step = _divergence_report(np.asarray(self.x), self.steps)
        return dict(x=self.x, stats=None, finite=finite, diverged_step=div_step)


class _StatsSink:
    """Pools the in-loop statistics of every snapshot (float64 sums on the host); keeps no snapshot."""

    def __init__(self, plan: _RunPlan):
        dim = plan.problem.dim
        self.bins, self.box = plan.reduce
        self.acc = {"n": 0.0, "s1": np.zeros(dim), "s2": np.zeros((dim, dim))}
        if self.bins:
            self.acc["hist"] = np.zeros((self.bins, self.bins), np.int64)
        self.bad = np.full((plan.n_particles,), -1, np.int64)  # first diverged step, -1: never

    def write(self, out: _PieceOutput) -> None:
        st = jax.tree_util.tree_map(np.asarray, out.payload)
        for key in self.acc:
            self.acc[key] = self.acc[key] + st[key].astype(np.float64 if key != "hist" else np.int64)
        old = self.bad[out.start : out.stop]
        self.bad[out.start : out.stop] = np.where(old < 0, st["bad"][: out.stop - out.start], old)

    def finish(self) -> dict:
        """The result's ``x`` (None), ``stats`` (count, mean, covariance, histogram), ``finite``, ``diverged_step``."""
        acc = self.acc
        nn = max(acc["n"], 1.0)
        mean = acc["s1"] / nn
        cov = (acc["s2"] - nn * np.outer(mean, mean)) / max(nn - 1.0, 1.0)
        stats = dict(n=acc["n"], mean=mean, cov=cov, hist=acc.get("hist"), box=self.box, bins=self.bins or None)
        return dict(x=None, stats=stats, finite=self.bad < 0, diverged_step=self.bad)


@dataclasses.dataclass
class _Chunk:
    """The particles ``[start, stop)`` of this process in flight: state, step, snapshots kept so far.

    The state is padded with NaN particles to a multiple of the device count
    (``pidx`` covers the padding; its rows are sliced off on the way out).
    """

    start: int
    stop: int
    pidx: Any
    x: Any
    step: int = 0
    k: int = 0

    @classmethod
    def begin(cls, plan: _RunPlan, start: int) -> "_Chunk":
        stop = min(start + plan.chunk, plan.n_particles)
        m_pad = -(-(stop - start) // plan.n_shards) * plan.n_shards
        pidx = jnp.arange(plan.offset + start, plan.offset + start + m_pad, dtype=jnp.uint32)
        return cls(start, stop, pidx, cls._padded(plan.x_init[start:stop], m_pad))

    @staticmethod
    def _padded(x, m_pad):
        return jnp.pad(x, ((0, m_pad - x.shape[0]), (0, 0)), constant_values=jnp.nan) if m_pad > x.shape[0] else x

    @property
    def m(self) -> int:
        return self.stop - self.start

    def restore(self, resume: dict, dtype) -> None:
        """The state at the end of the checkpointed piece (the ``on_piece`` dict ``resume``)."""
        self.x = self._padded(jnp.asarray(resume["x"], dtype), self.pidx.shape[0])
        self.step, self.k = int(resume["step"]), int(resume["k"])


def _schedule(plan: _RunPlan):
    """Every ``(chunk, piece index)`` in run order, a new :class:`_Chunk` at each chunk's first piece."""
    for start in range(0, plan.n_particles, plan.chunk):
        chunk = _Chunk.begin(plan, start)
        for ip in range(len(plan.pieces)):
            yield chunk, ip


def _resume_action(resume: Optional[dict], chunk: _Chunk, ip: int) -> str:
    """``"run"`` the piece, ``"skip"`` it (done before the checkpoint), or ``"restore"`` (its checkpoint)."""
    if resume is None or chunk.start > resume["chunk_start"]:
        return "run"
    if chunk.start < resume["chunk_start"] or ip < resume["piece"]:
        return "skip"
    return "restore" if ip == resume["piece"] else "run"


def _run_piece(plan: _RunPlan, keys, params, chunk: _Chunk, piece: _Piece, sink, clock: dict) -> None:
    """One compiled call: advance ``chunk`` by ``piece``; its snapshots (or statistics) go to ``sink``."""
    step0, every = jnp.int32(chunk.step), jnp.int32(piece.every)
    args = (plan.problem, chunk.x, chunk.pidx, keys, step0, params[piece.keep], every)
    comp, c = _compiled_segment(*args, n_out=piece.n_out, **plan.static())
    clock["compile_s"] += c
    t0 = time.perf_counter()
    chunk.x, payload = comp(*args)
    if piece.keep:
        sink.write(_PieceOutput(chunk.start, chunk.stop, chunk.k, piece.n_out, payload))
        chunk.k += piece.n_out
    else:
        chunk.x.block_until_ready()
    clock["run_s"] += time.perf_counter() - t0
    chunk.step += piece.steps


def _run_pieces(plan: _RunPlan, sink) -> dict:
    """The one loop: every piece of every particle chunk, resumed after ``plan.resume``.

    After each piece that runs, ``on_piece`` gets what a checkpoint needs and
    progress is reported. Returns the compile and run seconds.
    """
    clock = dict(compile_s=0.0, run_s=0.0)
    keys, params = plan.keys(), {keep: plan.params(keep) for keep in (True, False)}
    prog = _Progress(float(plan.n_particles) * plan.total_steps, plan.progress)
    done_ps = 0.0
    n_pieces = len(plan.pieces)
    for chunk, ip in _schedule(plan):
        piece = plan.pieces[ip]
        action = _resume_action(plan.resume, chunk, ip)
        if action == "restore":
            chunk.restore(plan.resume, plan.dtype)
        done_ps += chunk.m * piece.steps
        if action != "run":
            continue
        _run_piece(plan, keys, params, chunk, piece, sink, clock)
        if plan.on_piece is not None:
            plan.on_piece(dict(chunk_start=chunk.start, piece=ip, n_pieces=n_pieces, x=np.asarray(chunk.x)[: chunk.m],
                               step=chunk.step, k=chunk.k,
                               last=(chunk.stop == plan.n_particles and ip == n_pieces - 1)))
        prog(done_ps)
    return clock


def _simulate_diffrax(plan: _RunPlan) -> Ensemble:
    from ._diffrax_path import simulate_diffrax

    solver, adaptive = plan.diffrax
    return simulate_diffrax(
        plan.problem, plan.x_init, beta_inv=plan.beta_inv, n_steps=plan.n_steps, dt=plan.dt, seed=plan.seed,
        form=plan.form, save_every=plan.save_every, burn_in=plan.burn_in, dtype=plan.dtype, solver=solver,
        adaptive=adaptive, divergence_bound=plan.divergence_bound, particle_offset=plan.offset,
    )


# ---------------------------------------------------------------------------
# public entry point
# ---------------------------------------------------------------------------


def simulate(
    problem: AbstractProblem,
    *,
    beta_inv: float,
    n_particles: int,
    n_steps: int,
    dt: float,
    seed: int = 0,
    x0=None,
    form: str = "ito",
    save_every: Optional[int] = None,
    burn_in: int = 0,
    method="euler",
    dtype="float32",
    chunk_size: Optional[int] = None,
    block_size: Optional[int] = None,
    progress=False,
    solver=None,
    adaptive: bool = False,
    checkpoint_every: Optional[int] = None,
    out_array=None,
    on_piece: Optional[Callable] = None,
    resume: Optional[dict] = None,
    keep: str = "trajectory",
    stats_bins: Optional[int] = None,
    stats_box=None,
    devices=None,
    process_index: Optional[int] = None,
    process_count: Optional[int] = None,
    divergence_bound: Optional[float] = None,
    save_at: Optional[SaveAt] = None,
    checkpoint: Optional[Checkpointing] = None,
) -> Ensemble:
    """Integrate an ensemble of independent particles of ``problem``'s SDE.

    Runs ``burn_in`` steps (not saved), then ``n_steps`` steps, saving a
    snapshot every ``save_every`` steps (``None``: only the final state).

    Args:
        problem: an :class:`~sdesim.AbstractProblem` (see :mod:`sdesim.problems`).
        beta_inv: temperature ``beta^-1`` (``sdesim.temperature(lr, b)`` for SGD).
        n_particles, n_steps, dt, seed: as named; ``dt = lr`` reproduces SGD's clock.
        x0: initial state ``(dim,)`` or ``(n_particles, dim)`` (a scalar for
            ``dim == 1``); zeros by default.
        form: ``"ito"``, ``"atype"`` or ``"atype_naive"`` (module docstring).
        method: a solver object -- :class:`sdesim.Euler` (default), :class:`sdesim.WeakEuler`,
            :class:`sdesim.Heun`, :class:`sdesim.Diffrax` (any diffrax solver) -- or its
            name ``"euler"``, ``"weak_euler"``, ``"heun"``, ``"diffrax"`` (as in config files).
        dtype: ``"float32"`` (default) or ``"float64"`` (needs x64 enabled).
        chunk_size: particles per host chunk (bounds device memory); results
            do not depend on it.
        block_size: particles per cache block inside the compiled loop
            (default :func:`default_block_size`: 1 MiB of state); results do
            not depend on it.
        progress: ``True`` for a progress line on stderr, or a callable
            ``(fraction, particle_steps_per_s, eta_s)``.
        solver, adaptive: for ``method="diffrax"`` only (the same as
            ``method=sdesim.Diffrax(solver, adaptive)``). The diffrax path runs
            outside the compiled loop: ``keep="stats"``, ``checkpoint_every``,
            ``resume``, ``chunk_size``, ``block_size``, ``devices``,
            ``out_array``, ``on_piece`` and ``progress`` raise ``ValueError``
            with it. Its Brownian trees are keyed by the global particle
            index, so multi-process runs keep the reproducibility contract.
        checkpoint_every: cut the run into compiled pieces of at most this many
            steps (progress and ``on_piece`` happen between pieces).
        out_array: preallocated ``(n_saved, n_particles, dim)`` array (e.g. a
            ``numpy.memmap``) to write snapshots into, for disk-backed runs.
        on_piece: called on the host after every piece with a dict
            ``chunk_start, piece, x, step, k`` -- what a checkpoint needs.
        resume: such a dict (from a checkpoint): continue after that piece;
            the result is bit-identical to an uninterrupted run.
        keep: ``"trajectory"`` (snapshots in ``Ensemble.x``) or ``"stats"``:
            running count / mean / covariance (and a ``stats_bins`` x
            ``stats_bins`` histogram of the first two coordinates on
            ``stats_box``) over all saved snapshots, reduced inside the
            compiled loop -- memory independent of the number of snapshots.
        devices: number of local devices to shard the particle axis over
            (``None``: all local devices when there are several and at least
            1024 particles per device). Results do not depend on it.
        process_index, process_count: multi-host runs (default: from
            ``jax.process_index()`` / ``jax.process_count()`` after
            ``jax.distributed.initialize()``). Process ``i`` of ``P`` integrates
            the global particles ``[i n / P, (i+1) n / P)`` on its local devices
            and returns them (``Ensemble.particle_offset``); the union over
            processes equals the single-process run bit for bit.
        divergence_bound: a particle with a coordinate ``|x_i|`` above it (or
            NaN/inf) at a snapshot has diverged: counted in ``n_diverged``, set
            to NaN from there on, excluded from every statistic. Default
            :func:`default_divergence_bound` of ``dtype`` (``2^44`` float32,
            ``2^492`` float64: pooled second moments of fewer than ``2^38``
            values cannot overflow); ``float("inf")`` flags only NaN and inf.
        save_at: an :class:`sdesim.SaveAt` instead of ``save_every``, ``burn_in``,
            ``keep``, ``stats_bins``, ``stats_box`` (``SaveAt(every, burn_in, keep,
            stats_bins, stats_box)``, in the manner of ``diffrax.SaveAt``).
        checkpoint: an :class:`sdesim.Checkpointing` instead of ``checkpoint_every``,
            ``on_piece``, ``resume`` (``Checkpointing(every, on_piece, resume)``).
            The keywords are the simple path; giving a keyword together with
            the option object that holds it raises ``ValueError``.

    Returns:
        :class:`Ensemble` with ``x (n_saved, n_particles, dim)``.
    """
    given = dict(
        beta_inv=beta_inv, n_particles=n_particles, n_steps=n_steps, dt=dt, seed=seed, x0=x0, form=form,
        save_every=save_every, burn_in=burn_in, method=method, dtype=dtype, chunk_size=chunk_size,
        block_size=block_size, progress=progress, solver=solver, adaptive=adaptive,
        checkpoint_every=checkpoint_every, out_array=out_array, on_piece=on_piece, resume=resume, keep=keep,
        stats_bins=stats_bins, stats_box=stats_box, devices=devices, process_index=process_index,
        process_count=process_count, divergence_bound=divergence_bound,
    )
    plan = _plan_run(problem, **merge_options(given, save_at=save_at, checkpoint=checkpoint))
    if plan.diffrax is not None:
        return _simulate_diffrax(plan)
    sink = _TrajectorySink(plan) if plan.reduce is None else _StatsSink(plan)
    clock = _run_pieces(plan, sink)
    steps = plan.steps
    return Ensemble(
        **sink.finish(), t=steps * plan.dt, step=steps, dt=plan.dt, beta_inv=plan.beta_inv, form=plan.form,
        method=plan.solver.name, seed=plan.seed, burn_in=plan.burn_in, save_every=plan.save_every,
        compile_s=clock["compile_s"], run_s=clock["run_s"], n_steps_total=plan.total_steps,
        particle_offset=plan.offset, divergence_bound=plan.divergence_bound,
    )


def _mark_diverged(x_out: np.ndarray, bound: float) -> None:
    """On the host, for snapshots computed without the in-loop check: a particle beyond ``bound``
    (or NaN/inf) at a snapshot is set to NaN there and at every later snapshot, in place."""
    bound = min(bound, float(np.finfo(x_out.dtype).max))
    bad = np.zeros(x_out.shape[1], bool)
    for k in range(x_out.shape[0]):
        bad |= ~(np.abs(x_out[k]) <= bound).all(axis=1)
        x_out[k, bad] = np.nan


def _divergence_report(x_out: np.ndarray, steps: np.ndarray):
    bad = ~np.isfinite(x_out).all(axis=2)  # (n_saved, n_particles)
    finite = ~bad.any(axis=0)
    first = np.where(finite, -1, steps[np.argmax(bad, axis=0)])
    return finite, first.astype(np.int64)
