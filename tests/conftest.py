"""Shared test set-up: x64 available (tests pick float32/float64 explicitly).

The suite fakes ``SDESIM_CPU_DEVICES`` CPU devices (default 4), appended to any
``XLA_FLAGS`` already set (e.g. ``--xla_cpu_max_isa=AVX2`` to run the tests on
another vectorised code path). Tests that need several devices skip with a
reason when fewer are present.
"""

import os

if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    _n = int(os.environ.get("SDESIM_CPU_DEVICES", "4"))
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={_n}").strip()

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def quick_figures(tmp_path_factory):
    """``sdesim figures --quick`` once per session, in a fresh process: ``(out_dir, stdout, t_start)``."""
    out = tmp_path_factory.mktemp("figures")
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_ENABLE_X64")}  # as a user runs it
    env["MPLBACKEND"] = "Agg"
    t_start = time.time()
    r = subprocess.run([sys.executable, "-m", "sdesim.cli", "figures", "--quick", "--out", str(out)],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    return out, r.stdout, t_start
