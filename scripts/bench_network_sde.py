"""Cost per chain-step of SGD, SGLD and the SDE on a network's finite-sum loss.

Kernels (``sdesim.chains``), all on the same ``FiniteSum.from_model`` loss:
``sgd`` (minibatch b), ``sgld`` (full gradient + isotropic noise), ``sde``
exact through the explicit factor ``L(x)`` (``sde(fs.problem())``: the
per-example gradients ``G (N x d)`` every step), ``sde`` exact as one weighted
gradient (``sde(fs)``), ``sde`` with ``noise_examples=M``, and ``sde`` with
``D`` frozen at the start (``LowRankDiagonal`` from ``nn.diffusion_spectrum``).
SGLD's step (one full-batch gradient and ``d`` normals) is the reference for
"the cost of a gradient". Timed after compilation as the
median of ``--repeats`` runs of ``--steps`` steps of ``--chains`` chains.

    python scripts/bench_network_sde.py            # MLP 49-16-10 (tanh) on 7x7, small-fc on 8x8 digits
    python scripts/bench_network_sde.py --quick

Writes ``benchmarks/network_sde_<backend>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import sdesim
from sdesim import chains, nn
from sdesim.cli import atomic_write_text


def _models(key):
    mlp = eqx.nn.MLP(49, 10, 16, 1, activation=jnp.tanh, key=key)
    return {"mlp_49_16_10": (mlp, nn.CrossEntropyLoss(weight_decay=1e-4)),
            "small_fc": (nn.small_fc(key), None)}


def _time(kernel, x0, chains_, steps, repeats):
    run = lambda: chains.run_chains(kernel, x0, n_chains=chains_, n_steps=steps, seed=0)  # noqa: E731
    run()  # compile
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) / (chains_ * steps)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-data", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--noise-examples", type=int, default=32)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default="benchmarks")
    args = ap.parse_args(argv)
    if args.quick:
        args.n_data, args.steps, args.repeats = 200, 10, 1
    rows = []
    for name, (model, loss) in _models(jax.random.PRNGKey(0)).items():
        if isinstance(model, eqx.nn.MLP):  # one flat 7x7 example -> 10 logits
            d_in = nn.load_digits(classes=10, size=7).subset(args.n_data).flatten()
        else:  # sdesim's small-fc: 8x8 digits
            d_in = nn.load_digits(classes=10, size=8).subset(args.n_data)
        x, y = d_in.x_train, d_in.y_train
        fs = chains.FiniteSum.from_model(model, x, y, loss=loss)
        lr, b = 0.05, 32
        spec = nn.diffusion_spectrum(model, x, y, loss=loss)
        frozen = sdesim.problems.custom(fs.full_grad, spec.to_noise(diag="residual"), fs.dim)
        kernels = {
            "sgd": chains.sgd(fs, lr, b),
            "sgld": chains.sgld(fs, lr, b, noise_power=fs.noise_power(fs.x0)),
            "sde_factor": chains.sde(fs.problem(), lr, b),
            "sde_one_gradient": chains.sde(fs, lr, b),
            f"sde_{args.noise_examples}_examples": chains.sde(fs, lr, b, noise_examples=args.noise_examples),
            "sde_frozen_D": chains.sde(frozen, lr, b),
        }
        per = {k: _time(ker, fs.x0, args.chains, args.steps, args.repeats) for k, ker in kernels.items()}
        row = {"model": name, "dim": fs.dim, "n_data": fs.n_data, "rank": int(spec.rank),
               "s_per_chain_step": per,
               "sde_one_gradient_over_sgld": per["sde_one_gradient"] / per["sgld"],
               "sde_factor_over_one_gradient": per["sde_factor"] / per["sde_one_gradient"]}
        rows.append(row)
        print(json.dumps(row, indent=1), flush=True)
    meta = dict(backend=jax.default_backend(), devices=len(jax.devices()), cpu_count=os.cpu_count(),
                jax=jax.__version__, time=time.strftime("%Y-%m-%d %H:%M:%S"), argv=vars(args))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = jax.default_backend() + ("_quick" if args.quick else "")
    atomic_write_text(out / f"network_sde_{tag}.json", json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = ["| model | d | N | " + " | ".join(rows[0]["s_per_chain_step"]) + " | SDE / SGLD |",
             "|---" * (len(rows[0]["s_per_chain_step"]) + 4) + "|"]
    for r in rows:
        cells = " | ".join(f"{v * 1e3:.3g} ms" for v in r["s_per_chain_step"].values())
        lines.append(f"| {r['model']} | {r['dim']} | {r['n_data']} | {cells} | "
                     f"{r['sde_one_gradient_over_sgld']:.2f}x |")
    atomic_write_text(out / f"network_sde_{tag}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))



if __name__ == "__main__":
    main()
