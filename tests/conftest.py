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
