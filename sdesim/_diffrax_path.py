"""``simulate(..., method="diffrax")``: the same SDE through ``diffrax.diffeqsolve``.

For users who want diffrax's solvers (higher order, adaptive stepping). Each
particle gets its own ``VirtualBrownianTree`` keyed by ``fold_in(key(seed), p)``,
so results are reproducible by seed and independent of chunking, but the noise
differs from the native path's counter-based noise. The SDE is written as
``dx = b(x) dt + sqrt(2 beta^-1) L(x) dW`` with ``L L^T = D`` (Itô), i.e. a
``MultiTerm(ODETerm(b), ControlTerm(sqrt(2 beta^-1) L, W))``.

Divergence is judged on the host from the snapshots, with the same rule as the
native path: from the first snapshot with a coordinate NaN, inf or beyond
``divergence_bound`` on, the particle's snapshots are NaN.
"""

from __future__ import annotations

import time

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["simulate_diffrax"]


def simulate_diffrax(problem, x_init, *, beta_inv, n_steps, dt, seed, form, save_every, burn_in,
                     dtype, solver=None, adaptive=False, divergence_bound=None, particle_offset=0):
    from ._integrate import Ensemble, _cast_floats, _divergence_report, _mark_diverged, default_divergence_bound

    if divergence_bound is None:
        divergence_bound = default_divergence_bound(dtype)
    problem = _cast_floats(problem, dtype)

    solver = diffrax.Euler() if solver is None else solver
    every = save_every if save_every is not None else n_steps
    n_saves = n_steps // every
    steps = burn_in + every * np.arange(1, n_saves + 1)
    t1 = float((burn_in + n_steps) * dt)
    ts = jnp.asarray(steps * dt, dtype)
    diff = problem.diffusion
    factor = diff.noise_factor
    scale = float(np.sqrt(2.0 * beta_inv))
    nd = diff.noise_dim

    def drift(t, x, args):
        return problem.drift(x, beta_inv, form).astype(x.dtype)

    def noise(t, x, args):
        return (scale * factor(x)).astype(x.dtype)

    controller = (
        diffrax.PIDController(rtol=1e-3, atol=1e-3) if adaptive else diffrax.ConstantStepSize()
    )

    def one(x0, key):
        bm = diffrax.VirtualBrownianTree(
            0.0, t1, tol=dt / 2, shape=jax.ShapeDtypeStruct((nd,), dtype), key=key
        )
        terms = diffrax.MultiTerm(diffrax.ODETerm(drift), diffrax.ControlTerm(noise, bm))
        sol = diffrax.diffeqsolve(
            terms, solver, jnp.asarray(0.0, dtype), jnp.asarray(t1, dtype), jnp.asarray(dt, dtype), x0, saveat=diffrax.SaveAt(ts=ts),
            stepsize_controller=controller, max_steps=None if not adaptive else 16 * (burn_in + n_steps),
        )
        return sol.ys

    base = jax.random.key(seed)
    # particle p's Brownian tree is keyed by its global index p (a process's slice starts at particle_offset)
    pidx = jnp.arange(particle_offset, particle_offset + x_init.shape[0], dtype=jnp.uint32)
    keys = jax.vmap(lambda i: jax.random.fold_in(base, i))(pidx)
    run = jax.jit(jax.vmap(one))
    t0 = time.perf_counter()
    comp = run.lower(x_init, keys).compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ys = np.asarray(comp(x_init, keys))  # (n_particles, n_saves, dim)
    run_s = time.perf_counter() - t0
    x_out = np.swapaxes(ys, 0, 1).astype(dtype)
    _mark_diverged(x_out, divergence_bound)
    finite, div_step = _divergence_report(x_out, steps)
    return Ensemble(
        x=x_out, t=steps * dt, step=steps, finite=finite, diverged_step=div_step, dt=dt,
        beta_inv=beta_inv, form=form, method="diffrax", seed=seed, burn_in=burn_in,
        save_every=save_every, compile_s=compile_s, run_s=run_s, n_steps_total=burn_in + n_steps,
        divergence_bound=divergence_bound, particle_offset=particle_offset,
    )
