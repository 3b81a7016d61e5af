"""One CPU device per core: the speed-up of sharding the particle axis on a CPU.

On CPU, XLA runs one device's elementwise loops on one thread; sdesim shards
particles over devices, so several CPU devices let a run use several cores.
XLA reads its device count once, when JAX starts its backend, so this must be
asked for before the first computation. ``import sdesim`` does not do it (it
changes nothing outside sdesim); the ``sdesim`` command line does it for its
own process.
"""

from __future__ import annotations

import os
from typing import Optional

__all__ = ["use_cpu_devices"]

_FLAG = "--xla_force_host_platform_device_count"


def _backend_started() -> bool:
    try:
        from jax._src.xla_bridge import backends_are_initialized
    except ImportError:  # pragma: no cover - another jax version: let XLA decide
        return False
    return bool(backends_are_initialized())


def use_cpu_devices(n: Optional[int] = None) -> int:
    """Ask XLA for ``n`` CPU devices (default: ``SDESIM_CPU_DEVICES``, else one per core).

    Equivalent to starting Python with
    ``XLA_FLAGS=--xla_force_host_platform_device_count=N``. Call it before any
    JAX computation; afterwards it raises ``RuntimeError`` (the count is fixed
    once JAX has started). A device count already present in ``XLA_FLAGS`` is
    kept. Returns the number of CPU devices that will be used.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if _FLAG in flags:
        return int(flags.split(_FLAG + "=")[1].split()[0])
    if n is None:
        env = os.environ.get("SDESIM_CPU_DEVICES", "auto")
        n = (os.cpu_count() or 1) if env == "auto" else int(env)
    n = int(n)
    if n < 1:
        raise ValueError(f"n: expected a positive device count, got {n}")
    if _backend_started():
        raise RuntimeError("use_cpu_devices: JAX has already started; call it before the first computation "
                           f"or start Python with XLA_FLAGS={_FLAG}={n}")
    if n > 1:
        os.environ["XLA_FLAGS"] = f"{flags} {_FLAG}={n}".strip()
    return n
