"""Every ```python block of README.md and docs/*.md runs as written.

The blocks of one file form one tutorial: they run in order, in one namespace,
in a fresh Python interpreter (so the examples see JAX's defaults, not this
suite's x64 mode and fake CPU devices), with a temporary directory as the
working directory and the checkout first on ``sys.path``. One test per file,
parametrised by its path, so a new ``docs/*.md`` with a python block is picked
up without editing this file; files without one are not collected. A failing
block is reported with its file and line (tracebacks point into the Markdown).

After the last block, the expressions of ``CHECKS`` are evaluated in the
file's namespace: they assert the values that the blocks' comments state. Each
check names the comment text it stands for and fails if that text is no longer
in the file's blocks, so the table cannot silently drift from the docs.

The examples are sized to run as written (about a minute of CPU for all files
on 2 cores); no environment variable shrinks them.
"""

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# (comment text in the file's python blocks, expression that must be true after the blocks)
CHECKS = {
    "README.md": [
        ("# (20, 10000, 2): (time, particle, dim)", "ito.x.shape == (20, 10000, 2)"),
        ("# [True, True], [3.31, 3.95]",
         "list(map(bool, cyc.is_cycle)) == [True, True]"
         " and np.allclose(np.asarray(cyc.period), [3.31, 3.95], atol=0.005)"),
        ("# an sdesim.Ensemble: (n_saved, n_chains, dim)", "ens.x.shape == (60, 2000, 2)"),
        ("# equal within sampling error (about 1 %)",
         "np.linalg.norm(ens.cov() - cov) < 0.03 * np.linalg.norm(cov)"),
    ],
    "docs/sgd_vs_langevin.md": [
        ("# an sdesim.Ensemble: (n_saved, n_chains, dim)", "ens.x.shape == (60, 2000, 2)"),
        ("# equal within sampling error (about 1 %)",
         "np.linalg.norm(ens.cov() - cov) < 0.03 * np.linalg.norm(cov)"),
    ],
    "docs/nn.md": [
        ("# Linear-BN-ReLU-Linear, 917 weights", "nn.n_weights(model) == 917"),
        ("# (1, 4, 917): the last step only, 0", "ens.x.shape == (1, 4, 917) and ens.n_diverged == 0"),
    ],
    "docs/your_network.md": [
        ("# d = 970 weights", "nn.n_weights(mlp) == 49 * 16 + 16 + 16 * 10 + 10 == 970"),
        ("# test accuracy about 0.87; rank about half of d although N - 1 = 999 > d = 970",
         "0.8 < fit.checkpoints[-1].val_accuracy < 0.93 and len(ranks) == 3"
         " and all(0.35 < r < 0.6 for r in ranks) and len(x) == 1000"),
        ("# 0.00078125 for all three",
         "beta_inv == 0.05 / 64 and all(k.beta_inv == beta_inv for k in kernels.values())"),
        ("# (150 snapshots, 8 chains, 970)",
         "all(Xn.shape == (150, 8, 970) for Xn in X.values())"
         " and all(ens.n_diverged == 0 for ens in runs.values())"),
        ("# the same mean loss for all three (within 0.01)",
         "max(f_mean.values()) - min(f_mean.values()) < 0.01"),
        ("# SGD and the SDE: about 0.9 of the spread in range(D); SGLD: much less, and a spread several times larger",
         "0.75 < in_D['sgd'] < 0.98 and 0.75 < in_D['sde'] < 0.98 and in_D['sgld'] < 0.5"
         " and spread['sgld'] > 3 * spread['sgd'] and abs(spread['sde'] / spread['sgd'] - 1) < 0.3"
         " and all(0.0 <= l.p_value <= 1.0 and l.matrix.shape == (2, 2) for l in lag.values())"),
    ],
    "docs/potential.md": [
        ("ss.rho.sum() * ss.dx * ss.dy == 1", "abs(float(ss.rho.sum()) * ss.dx * ss.dy - 1) < 1e-9"),
        ("# -β⁻¹ log ρ, min 0", "float(np.min(ss.phi)) == 0.0"),
        ("# exp(tL) ρ0, (2, 64, 64)", "op.evolve(rho0, [0.1, 1.0]).shape == (2, 64, 64)"),
        ("# L(τ) of the overdamped process, exact: 0.151",
         "abs(sdesim.fokker_planck_lag_wedge(op, rho64, tau) - 0.151) < 0.001"),
        ("# F = (D + Q) U", "np.allclose((np.asarray(D) + np.asarray(Q)) @ np.asarray(U), F)"),
        ("# free energy along an ensemble (Theorem 5)", "bool(fe.is_decreasing())"),
    ],
}

_OPEN = re.compile(r"^(\s*)```python\s*$")
_CLOSE = re.compile(r"^\s*```\s*$")


def python_blocks(path):
    """``[(first_line, source), ...]`` of the ```python blocks of ``path`` (1-based line numbers)."""
    blocks, current, start, indent = [], None, 0, ""
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if current is None:
            m = _OPEN.match(line)
            if m:
                current, start, indent = [], number + 1, m.group(1)
        elif _CLOSE.match(line):
            blocks.append((start, textwrap.dedent("\n".join(current)) + "\n"))
            current = None
        else:
            current.append(line[len(indent):] if line.startswith(indent) else line)
    if current is not None:
        raise AssertionError(f"{path}: ```python block opened at line {start - 1} is never closed")
    return blocks


def doc_files():
    files = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
    return [f.relative_to(ROOT).as_posix() for f in files if python_blocks(f)]


# Runs in the fresh interpreter: argv[1] is a JSON file {"path", "blocks", "checks"}.
_RUNNER = r"""
import ast, json, sys, traceback
spec = json.load(open(sys.argv[1], encoding="utf-8"))
ns = {"__name__": "__main__"}
for start, source in spec["blocks"]:
    tree = ast.parse(source, filename=spec["path"])
    ast.increment_lineno(tree, start - 1)
    try:
        exec(compile(tree, spec["path"], "exec"), ns)
    except BaseException:
        traceback.print_exc()
        print(f"DOCS-FAILED: block starting at {spec['path']}:{start}", flush=True)
        sys.exit(1)
import numpy
failed = []
for comment, expr in spec["checks"]:
    try:
        ok = bool(eval(expr, {"np": numpy, **ns}))
    except BaseException:
        traceback.print_exc()
        ok = False
    if not ok:
        failed.append(f"{comment!r}: {expr} is not true")
if failed:
    print("DOCS-FAILED: checks\n  " + "\n  ".join(failed), flush=True)
    sys.exit(1)
print("DOCS-OK", flush=True)
"""


def _clean_env():
    env = dict(os.environ)
    flags = re.sub(r"--xla_force_host_platform_device_count=\d+", "", env.get("XLA_FLAGS", "")).strip()
    if flags:
        env["XLA_FLAGS"] = flags
    else:
        env.pop("XLA_FLAGS", None)
    env.pop("JAX_ENABLE_X64", None)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    env["MPLBACKEND"] = "Agg"
    return env


def test_check_table_matches_the_docs():
    """Every file of CHECKS has python blocks, and every check's comment is still in them."""
    files = set(doc_files())
    for name, checks in CHECKS.items():
        assert name in files, f"CHECKS names {name}, which has no ```python block"
        text = "".join(source for _, source in python_blocks(ROOT / name))
        for comment, _ in checks:
            assert comment in text, f"{name}: comment {comment!r} of CHECKS is no longer in its python blocks"


@pytest.mark.parametrize("name", doc_files())
def test_doc_blocks_run(name, tmp_path):
    path = ROOT / name
    blocks = python_blocks(path)
    spec = tmp_path / "blocks.json"
    spec.write_text(json.dumps({"path": str(path), "blocks": blocks, "checks": CHECKS.get(name, [])}),
                    encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", _RUNNER, str(spec)], cwd=work, env=_clean_env(),
        capture_output=True, text=True, timeout=900,
    )
    if proc.returncode != 0 or "DOCS-OK" not in proc.stdout:
        out = (proc.stdout + "\n" + proc.stderr)[-6000:]
        pytest.fail(f"{name}: its python blocks do not run as written (exit {proc.returncode}):\n{out}")
