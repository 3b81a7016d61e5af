"""Ensemble benchmark: sdesim vs hand-written lax.scan, diffrax, NumPy (and torchsde).

Protocol (after diffrax's benchmarks/): every implementation integrates the
same SDE with Euler--Maruyama for the same number of steps and particles in
float32; each is compiled / warmed up once, then timed with
``block_until_ready`` as the median of ``--repeats`` warm calls. sdesim is
timed through the public ``sdesim.simulate`` (final state only), so its
numbers include host overhead; compile time is reported separately.

Problems: Example 19 (2D, D = I); an OU process in d = 64 with a dense
anisotropic constant D; a 2D problem with state-dependent D(x)
(``anisotropic_double_well``). "noise floor" = drawing the Gaussian noise alone
(``jax.random.normal`` of the same shape in a ``lax.scan``), the cost sdesim
cannot go below with Gaussian noise.

    sdesim bench                                # 1e3, 1e5, 1e6 particles
    sdesim bench --quick                        # 1e3 particles, few steps
    sdesim bench --sizes 100000 --problems ex19
    python scripts/bench_ensemble.py ...        # the same, from a checkout

Writes ``benchmarks/ensemble_<backend>.json`` and ``.md`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .. import problems
from .._integrate import simulate
from .._io import atomic_write_text



# --------------------------------------------------------------------------- problems
def make_problems():
    rng = np.random.default_rng(0)
    d = 64
    A = rng.normal(size=(d, d)) / np.sqrt(d)
    F = np.eye(d) + 0.3 * (A - A.T)  # stable, non-symmetric
    B = rng.normal(size=(d, d)) / np.sqrt(d)
    D = B @ B.T + 0.1 * np.diag(np.linspace(0.1, 2.0, d))  # anisotropic SPD
    return {
        "ex19": dict(problem=problems.rotating_double_well(1.5), beta_inv=1.0, dt=0.01),
        "ou64": dict(problem=problems.linear(F, D), beta_inv=0.5, dt=0.01, F=F, L=np.linalg.cholesky(D)),
        "statedep": dict(problem=problems.anisotropic_double_well(0.5), beta_inv=0.5, dt=0.005),
    }


def compiled_call(f, *args):
    """AOT-compile the jitted ``f`` on ``args``; return (timed call, compile seconds)."""
    t0 = time.perf_counter()
    comp = f.lower(*args).compile()
    c = time.perf_counter() - t0
    return (lambda: comp(*args).block_until_ready()), c


def timeit(fn, repeats):
    fn()  # warm
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


# --------------------------------------------------------------------------- implementations
def run_sdesim(spec, n, steps, method="euler"):
    p = spec["problem"]
    kw = dict(beta_inv=spec["beta_inv"], n_particles=n, n_steps=steps, dt=spec["dt"], seed=0, method=method)
    e = simulate(p, **kw)  # compiles
    compile_s = e.compile_s

    def call():
        simulate(p, **kw)

    return call, compile_s


def run_scan(spec, n, steps):
    """A plain hand-written lax.scan Euler--Maruyama loop (the baseline)."""
    p = spec["problem"]
    dt, bi = spec["dt"], spec["beta_inv"]
    diff = p.diffusion
    nd = diff.noise_dim
    scale = float(np.sqrt(2 * bi * dt))
    drift = jax.vmap(lambda x: -p.grad_f(x).astype(jnp.float32))
    if diff.is_constant:
        if hasattr(diff, "factor"):
            Lt = jnp.asarray(diff.factor, jnp.float32).T
            noise = lambda x, z: z @ Lt  # noqa: E731
        else:
            noise = lambda x, z: z * jnp.sqrt(diff.scale).astype(jnp.float32)  # noqa: E731
    else:
        noise = jax.vmap(lambda x, z: diff.apply(x, z).astype(jnp.float32))

    @jax.jit
    def loop(x, key):
        def step(x, s):
            z = jax.random.normal(jax.random.fold_in(key, s), (x.shape[0], nd), jnp.float32)
            return x + drift(x) * dt + scale * noise(x, z), None

        return jax.lax.scan(step, x, jnp.arange(steps))[0]

    return compiled_call(loop, jnp.zeros((n, p.dim), jnp.float32), jax.random.key(0))


def run_floor(spec, n, steps):
    """Drawing the Gaussian noise alone, same shapes, in a lax.scan."""
    nd = spec["problem"].diffusion.noise_dim
    dim = spec["problem"].dim

    @jax.jit
    def loop(acc, key):
        def step(acc, s):
            z = jax.random.normal(jax.random.fold_in(key, s), (acc.shape[0], nd), jnp.float32)
            return acc + z[:, :dim], None

        return jax.lax.scan(step, acc, jnp.arange(steps))[0]

    x0 = jnp.zeros((n, dim), jnp.float32)
    key = jax.random.key(0)
    loop.lower(x0, key).compile()
    return (lambda: loop(x0, key).block_until_ready()), 0.0


def run_memory_floor(spec, n, steps):
    """Reading and writing the state once per step (x <- x * c + c), in a lax.scan."""
    dim = spec["problem"].dim

    @jax.jit
    def loop(x):
        def step(x, s):
            return x * jnp.float32(0.999) + jnp.float32(1e-3), None

        return jax.lax.scan(step, x, jnp.arange(steps))[0]

    x0 = jnp.zeros((n, dim), jnp.float32)
    loop.lower(x0).compile()
    return (lambda: loop(x0).block_until_ready()), 0.0


def run_stream_floor(spec, n, steps):
    """Drawing sdesim's own counter-based normals alone (``(noise_dim, n)`` per step), in a loop."""
    from ..noise import normals, stream_keys

    nd = spec["problem"].diffusion.noise_dim
    dim = spec["problem"].dim
    keys = stream_keys(0, nd, 0)

    @jax.jit
    def loop(acc, pidx):
        def step(s, acc):
            return acc + normals(keys, pidx, s.astype(jnp.uint32), nd)[:dim]

        return jax.lax.fori_loop(0, steps, step, acc)

    acc = jnp.zeros((dim, n), jnp.float32)
    pidx = jnp.arange(n, dtype=jnp.uint32)
    loop.lower(acc, pidx).compile()
    return (lambda: loop(acc, pidx).block_until_ready()), 0.0


def step_cost(spec, n=4096):
    """XLA's own count of FLOPs and bytes for one Euler--Maruyama step, per particle."""
    from ..noise import normals, stream_keys

    p = spec["problem"]
    nd = p.diffusion.noise_dim
    dt, bi = spec["dt"], spec["beta_inv"]
    keys = stream_keys(0, nd, 0)

    def one_step(x, pidx):
        z = normals(keys, pidx, 7, nd)
        g = jax.vmap(lambda xi, zi: p.diffusion.apply(xi, zi).astype(jnp.float32), in_axes=1, out_axes=1)(x, z)
        b = jax.vmap(lambda xi: p.drift(xi, bi, "ito").astype(jnp.float32), in_axes=1, out_axes=1)(x)
        return x + b * dt + np.sqrt(2 * bi * dt) * g

    x = jnp.zeros((p.dim, n), jnp.float32)
    pidx = jnp.arange(n, dtype=jnp.uint32)
    try:
        ca = jax.jit(one_step).lower(x, pidx).compile().cost_analysis()
        ca = ca[0] if isinstance(ca, (list, tuple)) else ca
        return dict(flops=float(ca.get("flops", float("nan"))) / n,
                    bytes=float(ca.get("bytes accessed", float("nan"))) / n)
    except Exception as e:  # noqa: BLE001
        return dict(error=str(e)[:100])


def run_diffrax_vbt(spec, n, steps):
    """diffrax the documented way: vmap(diffeqsolve) with a VirtualBrownianTree per particle."""
    import diffrax

    p = spec["problem"]
    dt, bi = spec["dt"], spec["beta_inv"]
    diff = p.diffusion
    nd = diff.noise_dim
    t1 = steps * dt
    scale = float(np.sqrt(2 * bi))
    factor = diff.noise_factor

    def one(x0, key):
        drift = diffrax.ODETerm(lambda t, y, a: -p.grad_f(y).astype(jnp.float32))
        g = lambda t, y, a: (scale * factor(y)).astype(jnp.float32)  # noqa: E731
        bm = diffrax.VirtualBrownianTree(0.0, t1, tol=dt / 2, shape=jax.ShapeDtypeStruct((nd,), jnp.float32), key=key)
        terms = diffrax.MultiTerm(drift, diffrax.ControlTerm(g, bm))
        return diffrax.diffeqsolve(terms, diffrax.Euler(), 0.0, t1, dt, x0, saveat=diffrax.SaveAt(t1=True)).ys

    keys = jax.random.split(jax.random.key(0), n)
    return compiled_call(jax.jit(jax.vmap(one)), jnp.zeros((n, p.dim), jnp.float32), keys)


def run_diffrax_batched(spec, n, steps):
    """diffrax with one batched state (n, dim) and an UnsafeBrownianPath (its fastest set-up)."""
    import diffrax
    import lineax as lx

    p = spec["problem"]
    dt, bi = spec["dt"], spec["beta_inv"]
    diff = p.diffusion
    nd = diff.noise_dim
    scale = float(np.sqrt(2 * bi))
    t1 = steps * dt
    struct = jax.ShapeDtypeStruct((n, nd), jnp.float32)
    apply = jax.vmap(lambda x, z: diff.apply(x, z).astype(jnp.float32))

    def g(t, y, a):
        return lx.FunctionLinearOperator(lambda w: scale * apply(y, w), struct)

    drift = diffrax.ODETerm(lambda t, y, a: jax.vmap(lambda x: -p.grad_f(x).astype(jnp.float32))(y))

    @jax.jit
    def solve(x0, key):
        bm = diffrax.UnsafeBrownianPath(shape=struct, key=key)
        terms = diffrax.MultiTerm(drift, diffrax.ControlTerm(g, bm))
        return diffrax.diffeqsolve(terms, diffrax.Euler(), 0.0, t1, dt, x0, saveat=diffrax.SaveAt(t1=True),
                                   max_steps=steps + 2, adjoint=diffrax.ForwardMode()).ys

    return compiled_call(solve, jnp.zeros((n, p.dim), jnp.float32), jax.random.key(0))


def numpy_model(spec, name):
    """Hand-written NumPy ``(drift(x), noise(x, z), noise_dim)`` of a benchmark problem, ``x (n, dim)``."""
    p = spec["problem"]
    if name == "ex19":
        lam = np.float32(float(p.lam))

        def drift(x):
            x1, x2 = x[:, 0], x[:, 1]
            x1s, x2s = x1 * x1, x2 * x2
            w = lam * np.exp((1 - 2 * x1s) / 4 + x2s / 2 - x1s * x2s / 2 - x2s * x2s / 4)
            return np.stack([-x1 * (x1s - 1) - w * x2, -x2 + w * x1], axis=1)

        noise = lambda x, z: z  # noqa: E731
        nd = 2
    elif name == "ou64":
        Ft = spec["F"].T.astype(np.float32)
        Lt = spec["L"].T.astype(np.float32)
        drift = lambda x: -(x @ Ft)  # noqa: E731
        noise = lambda x, z: z @ Lt  # noqa: E731
        nd = 64
    else:
        # AnisotropicDoubleWell written out by hand (derivatives done on paper; checked against the
        # problem's autodiff grad_f in tests/test_bench_formulas.py):
        #   grad f = (D + Q) grad Phi - beta_ref^-1 div(D + Q),  (div M)_i = sum_j d_j M_ij
        #   div D = (0, 0.4 (1 - tanh(x1)^2)),  div Q = (-q1 sin x1 sin x2, -q1 cos x1 cos x2)
        a_, q0, q1, bref = (np.float32(float(v)) for v in (p.a, p.q0, p.q1, p.beta_inv))

        def drift(x):
            x1, x2 = x[:, 0], x[:, 1]
            t1, t2 = np.tanh(x1), np.tanh(x2)
            s1, c1, s2, c2 = np.sin(x1), np.cos(x1), np.sin(x2), np.cos(x2)
            x1s = x1 * x1
            d11, d12, d22 = 1 + 0.5 * t2 * t2, 0.4 * t1, 0.6 + 0.3 * x1s / (1 + x1s)
            q = q0 + q1 * s1 * c2
            g1, g2 = x1 * (x1s - 1) + 0.5 * a_ * x2, x2 + 0.5 * a_ * x1
            f1 = d11 * g1 + (d12 + q) * g2 - bref * (-q1 * s1 * s2)
            f2 = (d12 - q) * g1 + d22 * g2 - bref * (0.4 * (1 - t1 * t1) - q1 * c1 * c2)
            return -np.stack([f1, f2], axis=1)

        def noise(x, z):
            x1, x2 = x[:, 0], x[:, 1]
            x1s = x1 * x1
            d11 = 1 + 0.5 * np.tanh(x2) ** 2
            d12 = 0.4 * np.tanh(x1)
            d22 = 0.6 + 0.3 * x1s / (1 + x1s)
            l11 = np.sqrt(d11)
            l21 = d12 / l11
            l22 = np.sqrt(np.maximum(d22 - l21 * l21, 0))
            return np.stack([l11 * z[:, 0], l21 * z[:, 0] + l22 * z[:, 1]], axis=1)

        nd = 2

    return drift, noise, nd


def run_numpy(spec, n, steps, name):
    """Vectorised NumPy Euler--Maruyama, float32, hand-written drifts (:func:`numpy_model`)."""
    dt, bi = spec["dt"], spec["beta_inv"]
    scale = np.float32(np.sqrt(2 * bi * dt))
    rng = np.random.default_rng(0)
    dt32 = np.float32(dt)
    p = spec["problem"]
    drift, noise, nd = numpy_model(spec, name)

    def call():
        x = np.zeros((n, p.dim), np.float32)
        for _ in range(steps):
            z = rng.standard_normal((n, nd), dtype=np.float32)
            x = x + drift(x) * dt32 + scale * noise(x, z)
        return x

    return call, 0.0


def run_torchsde(spec, n, steps, name):
    import torch
    import torchsde

    torch.set_num_threads(os.cpu_count() or 1)
    dt, bi = spec["dt"], spec["beta_inv"]
    scale = float(np.sqrt(2 * bi))
    p = spec["problem"]
    if name != "ex19" and name != "ou64":
        raise NotImplementedError
    if name == "ex19":
        lam = float(p.lam)

        class SDE(torch.nn.Module):
            noise_type, sde_type = "diagonal", "ito"

            def f(self, t, x):
                x1, x2 = x[:, 0], x[:, 1]
                x1s, x2s = x1 * x1, x2 * x2
                w = lam * torch.exp((1 - 2 * x1s) / 4 + x2s / 2 - x1s * x2s / 2 - x2s * x2s / 4)
                return torch.stack([-x1 * (x1s - 1) - w * x2, -x2 + w * x1], dim=1)

            def g(self, t, x):
                return torch.full_like(x, scale)
    else:
        Ft = torch.tensor(spec["F"].T, dtype=torch.float32)
        L = torch.tensor(spec["L"], dtype=torch.float32)

        class SDE(torch.nn.Module):
            noise_type, sde_type = "general", "ito"

            def f(self, t, x):
                return -(x @ Ft)

            def g(self, t, x):
                return (scale * L).expand(x.shape[0], 64, 64)

    sde = SDE()
    ts = torch.tensor([0.0, steps * dt])

    def call():
        x0 = torch.zeros(n, p.dim)
        with torch.no_grad():
            torchsde.sdeint(sde, x0, ts, method="euler", dt=dt)

    return call, 0.0


# --------------------------------------------------------------------------- weak-scheme bias
def weak_bias(problems, n2d=1_000_000, n_ou=20_000):
    """Stationary bias of the two-point weak scheme next to Gaussian EM (same dt, same runs).

    Example 19: TV distance of the final-state 2D histogram (``n2d`` independent
    particles after t = 20) to the exact exp(-Phi / beta^-1), with the TV
    that multinomial sampling alone gives. OU d = 64: largest z-score of the
    pooled covariance against the exact stationary covariance of the EM chain
    ``S = A S A^T + 2 beta^-1 h D``, ``A = I - h F`` (scipy), which both
    schemes share exactly (their noises have equal second moments).
    """
    from scipy.linalg import solve_discrete_lyapunov

    out = {}
    spec = problems["ex19"]
    p, bi, dt = spec["problem"], spec["beta_inv"], spec["dt"]
    box, bins = ((-2.5, 2.5), (-3.0, 3.0)), 40
    sub = 8
    xs = [np.linspace(a + (b - a) / (2 * bins * sub), b - (b - a) / (2 * bins * sub), bins * sub) for a, b in box]
    X, Y = np.meshgrid(*xs, indexing="ij")
    pts = jnp.asarray(np.stack([X.ravel(), Y.ravel()], 1))
    w = np.exp(-np.asarray(jax.vmap(p.phi)(pts)).reshape(X.shape) / bi)
    P = w.reshape(bins, sub, bins, sub).sum(axis=(1, 3))
    P /= P.sum()
    for method in ("euler", "weak_euler"):
        e = simulate(p, beta_inv=bi, n_particles=n2d, n_steps=2000, dt=dt, seed=1, method=method,
                            keep="stats", stats_bins=bins, stats_box=box)
        H = e.stats["hist"] / e.stats["hist"].sum()
        out[f"ex19_tv_{method}"] = float(0.5 * np.abs(H - P).sum())
        out[f"ex19_hist_{method}"] = H
    out["ex19_tv_euler_vs_weak"] = float(0.5 * np.abs(out.pop("ex19_hist_euler") - out.pop("ex19_hist_weak_euler")).sum())
    out["ex19_tv_sampling"] = float(0.5 * np.sum(np.sqrt(2 * P * (1 - P) / (np.pi * n2d))))
    out["ex19_n"] = n2d

    spec = problems["ou64"]
    F, L, bi, dt = spec["F"], spec["L"], spec["beta_inv"], spec["dt"]
    A = np.eye(64) - dt * F
    S = solve_discrete_lyapunov(A, 2 * bi * dt * (L @ L.T))
    se = np.sqrt((np.outer(np.diag(S), np.diag(S)) + S**2) / n_ou)
    for method in ("euler", "weak_euler"):
        e = simulate(spec["problem"], beta_inv=bi, n_particles=n_ou, n_steps=1500, dt=dt, seed=1,
                            method=method, keep="stats")
        C = e.stats["cov"]
        out[f"ou64_max_z_{method}"] = float(np.max(np.abs(C - S) / se))
        out[f"ou64_rel_frob_{method}"] = float(np.linalg.norm(C - S) / np.linalg.norm(S))
    out["ou64_n"] = n_ou
    return out


def bias_table(b):
    return "\n".join([
        "Stationary bias of the two-point weak scheme next to Gaussian EM (same dt):",
        "",
        "| problem | measure | Gaussian EM | two-point weak Euler | sampling level |",
        "|---|---|---|---|---|",
        f"| ex19 (dt 0.01, {b['ex19_n']:.0e} particles, t = 20) | TV(histogram, exp(-Phi)) | "
        f"{b['ex19_tv_euler']:.4f} | {b['ex19_tv_weak_euler']:.4f} | {b['ex19_tv_sampling']:.4f} "
        f"(TV EM vs weak: {b['ex19_tv_euler_vs_weak']:.4f}) |",
        f"| ou64 (dt 0.01, {b['ou64_n']:.0e} particles, t = 15) | max z-score of cov vs exact EM chain | "
        f"{b['ou64_max_z_euler']:.2f} | {b['ou64_max_z_weak_euler']:.2f} | ~4 for 2080 entries |",
        f"| ou64 | rel. Frobenius error of cov | {b['ou64_rel_frob_euler']:.4f} | {b['ou64_rel_frob_weak_euler']:.4f} | |",
    ]) + "\n"


# --------------------------------------------------------------------------- driver
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="*", default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--problems", nargs="*", default=["ex19", "ou64", "statedep"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--tag", default="", help="suffix for the output file names")
    ap.add_argument("--out", default="benchmarks", help="output directory (default: ./benchmarks)")
    ap.add_argument("--vbt-max", type=int, default=100_000, help="largest n for vmapped diffrax-VBT (it is slow)")
    ap.add_argument("--torch-max", type=int, default=100_000, help="largest n for torchsde")
    ap.add_argument("--impls", nargs="*", default=None, help="run only these implementations (sdesim always)")
    ap.add_argument("--bias", action="store_true", help="also measure the weak scheme's stationary bias")
    ap.add_argument("--numpy-max-work", type=float, default=3e8, help="skip NumPy above this many particle-steps x dim")
    args = ap.parse_args(argv)
    sizes = args.sizes or ([1000] if args.quick else [1000, 100_000, 1_000_000])
    problems = make_problems()
    try:
        import torchsde  # noqa: F401  (availability probe)

        have_torch = True
    except Exception:
        have_torch = False

    rows = []
    for name in args.problems:
        spec = problems[name]
        for n in sizes:
            steps = args.steps or (20 if args.quick else (200 if n <= 100_000 else 50))
            if name == "ou64" and n >= 1_000_000:
                steps = max(5, steps // 10)
            # slow peers run fewer steps (rates are per particle-step)
            vbt_steps = min(steps, 50 if n * spec["problem"].dim <= 1e6 else 10)
            impls = {
                "sdesim": lambda: run_sdesim(spec, n, steps),
                "sdesim_weak": lambda: run_sdesim(spec, n, steps, "weak_euler"),
                "scan": lambda: run_scan(spec, n, steps),
                "noise_floor": lambda: run_floor(spec, n, steps),
                "stream_floor": lambda: run_stream_floor(spec, n, steps),
                "memory_floor": lambda: run_memory_floor(spec, n, steps),
                "diffrax_batched_unsafe": lambda: run_diffrax_batched(spec, n, steps),
            }
            if n <= args.vbt_max:
                impls["diffrax_vbt"] = lambda: run_diffrax_vbt(spec, n, vbt_steps)
            if n * steps * spec["problem"].dim <= args.numpy_max_work:
                impls["numpy"] = lambda: run_numpy(spec, n, steps, name)
            if have_torch and name in ("ex19", "ou64") and n <= args.torch_max:
                impls["torchsde"] = lambda: run_torchsde(spec, n, steps, name)
            if args.impls:
                impls = {k: v for k, v in impls.items() if k == "sdesim" or k in args.impls}
            res = {}
            for impl, make in impls.items():
                try:
                    call, compile_s = make()
                    st = vbt_steps if impl == "diffrax_vbt" else steps
                    if impl == "torchsde" and n * steps * spec["problem"].dim > 1e8:
                        st = max(5, steps // 10)  # rates are per particle-step; keep the slow peer short
                        call, compile_s = run_torchsde(spec, n, st, name)
                    sec = timeit(call, args.repeats)
                    res[impl] = dict(particle_steps_per_s=n * st / sec, seconds=sec, compile_s=compile_s)
                except Exception as e:  # noqa: BLE001 - report and keep going
                    res[impl] = dict(error=f"{type(e).__name__}: {e}"[:200])
                print(f"{name:9s} n={n:>8d} {impl:24s} "
                      + (f"{res[impl]['particle_steps_per_s']:.3g} ps/s  compile {res[impl]['compile_s']:.2f}s"
                         if "error" not in res[impl] else res[impl]["error"]), flush=True)
            base = res["sdesim"].get("particle_steps_per_s")
            ratios = {k: base / v["particle_steps_per_s"] for k, v in res.items()
                      if "particle_steps_per_s" in v and base and k != "sdesim"}
            rows.append(dict(problem=name, n=n, steps=steps, results=res, sdesim_over=ratios,
                             cost_per_particle_step=step_cost(spec)))
            write(rows, None, args)  # after every row, so a long run never loses finished rows

    write(rows, weak_bias(problems) if args.bias else None, args, final=True)


def write(rows, bias, args, final=False):
    """Write ``ensemble_<tag>.json`` and ``.md`` (atomically: temporary file, then rename)."""
    meta = dict(backend=jax.default_backend(), devices=[str(d) for d in jax.devices()],
                cpu_count=os.cpu_count(), platform=platform.platform(), jax=jax.__version__,
                time=time.strftime("%Y-%m-%d %H:%M:%S"), argv=sys.argv[1:], complete=final)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = jax.default_backend() + ("_quick" if args.quick else "") + (f"_{args.tag}" if args.tag else "")
    md = table(rows, meta) + ("\n" + bias_table(bias) if bias else "")
    for path, text in ((out / f"ensemble_{tag}.json", json.dumps(dict(meta=meta, rows=rows, weak_bias=bias), indent=2)),
                       (out / f"ensemble_{tag}.md", md)):
        atomic_write_text(path, text)
    if final:
        print(md)


def table(rows, meta):
    cols = ["scan", "noise_floor", "stream_floor", "memory_floor", "diffrax_batched_unsafe", "diffrax_vbt", "numpy", "torchsde",
            "sdesim_weak"]
    lines = [
        f"Backend {meta['backend']} ({meta['cpu_count']} CPU cores), jax {meta['jax']}, {meta['time']}.",
        "sdesim = public `simulate` (Euler--Maruyama, float32). Columns: sdesim's particle-steps/s, then "
        "the ratio sdesim / peer (>1: sdesim faster). `noise_floor` < 1 means sdesim reaches that fraction "
        "of the rate of just drawing the noise with `jax.random.normal` (`stream_floor`: with sdesim's own "
        "counter-based stream); `sdesim_weak` < 1 means the two-point scheme is faster.",
        "",
        "| problem | particles | FLOP/ps | bytes/ps | sdesim ps/s | compile s | " + " | ".join(cols) + " |",
        "|---|---|---|---|---|---|" + "---|" * len(cols),
    ]
    for r in rows:
        s = r["results"]["sdesim"]
        if "error" in s:
            continue
        cells = []
        for c in cols:
            v = r["sdesim_over"].get(c)
            cells.append(f"{v:.2f}" if v is not None else "–")
        cost = r.get("cost_per_particle_step", {})
        fl = f"{cost['flops']:.0f}" if "flops" in cost else "–"
        by = f"{cost['bytes']:.0f}" if "bytes" in cost else "–"
        lines.append(f"| {r['problem']} | {r['n']:.0e} | {fl} | {by} | {s['particle_steps_per_s']:.3g} | {s['compile_s']:.1f} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    main()
