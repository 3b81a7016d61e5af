"""What every figure module (``sdesim/experiments/figures/fig_*.py``) shares: arguments and the one way figures are saved.

Each script's ``main(argv=None) -> int`` parses its arguments with :func:`parser`
(``--quick``, ``--out``, ``--fresh``) and ends with :func:`save_figure`, which writes

* ``<out>/<name>.png`` and ``<out>/<name>.pdf`` (with ``--quick``:
  ``<name>_quick.png`` only, at low resolution -- rendering is a good part of a
  quick run; quick runs never overwrite the committed figures), and
* ``<out>/<name>.json``: the numbers the figure shows, plus ``quick``,
  ``runtime_s`` (wall seconds from the script's start to the files written),
  ``argv``, ``versions``, ``generated_utc``, ``cpu_count``, ``devices`` and the
  load average when it finished (runtimes on a shared machine depend on it).

``sdesim figures`` imports every script and calls its ``main`` in one process
(compiled programs are shared between figures); ``python scripts/fig_X.py``
runs one alone with the same result.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

from .._io import atomic_write_json

#: Default output directory: ``figures/`` in the working directory (the repository's
#: committed figures when run from a checkout).
FIGURES = Path("figures")
QUICK_DPI = 50


def parser(doc: str | None, quick_help: str = "small sizes (seconds), written as <name>_quick.*") -> argparse.ArgumentParser:
    """An ``ArgumentParser`` with the options every figure script takes (``--quick``, ``--out``, ``--fresh``)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help=quick_help)
    ap.add_argument("--out", default=str(FIGURES), help="output directory (default: ./figures)")
    ap.add_argument("--fresh", action="store_true",
                    help="discard data a previous run kept for resuming (runs/longrun) and start over; "
                         "scripts that keep no data ignore it")
    return ap


def stem(name: str, quick: bool) -> str:
    return name + ("_quick" if quick else "")


def _plain(v):
    """JSON fallback: NumPy scalars and arrays, paths, anything with ``tolist``; non-finite floats stay as JSON NaN."""
    if hasattr(v, "tolist"):
        return v.tolist()
    if isinstance(v, Path):
        return str(v)
    if hasattr(v, "__float__"):
        return float(v)
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


def run_info(script: str, argv) -> dict:
    """Provenance recorded in every figure JSON: ``argv`` is ``[script path] + arguments``."""
    import jax

    try:
        from ..cli import versions

        ver = versions()
    except Exception:  # pragma: no cover - keep figures working without the version helper
        import platform

        ver = {"python": platform.python_version(), "jax": jax.__version__}
    return {
        "argv": [_rel(script)] + [str(a) for a in (sys.argv[1:] if argv is None else argv)],
        "versions": ver,
        "generated_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpu_count": os.cpu_count(),
        "devices": len(jax.devices()),
        "loadavg_end": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }


def _rel(path: str) -> str:
    """``path`` relative to the directory that holds the ``sdesim`` package (``sdesim/experiments/figures/...``)."""
    try:
        return str(Path(path).resolve().relative_to(Path(__file__).resolve().parents[2]))
    except ValueError:
        return str(path)


def save_figure(fig, name: str, numbers: dict, *, quick: bool, t0: float, script: str, out=None, argv=None,
                dpi: int = 130) -> Path:
    """Write ``<out>/<stem>.png``, ``.pdf`` and ``.json`` (``numbers`` + run metadata); close ``fig``.

    Quick runs write ``<name>_quick.png`` (at ``QUICK_DPI``) and ``.json``, no PDF.

    ``t0`` is the script's ``time.time()`` at start: ``runtime_s`` covers the
    whole script, plotting and saving included. ``script`` (the caller's
    ``__file__``) and ``argv`` (its arguments; ``None``: ``sys.argv[1:]``) are
    recorded as ``argv``. Returns the JSON path.
    """
    import matplotlib.pyplot as plt

    out = Path(out) if out is not None else FIGURES
    out.mkdir(parents=True, exist_ok=True)
    base = out / stem(name, quick)
    fig.savefig(f"{base}.png", dpi=QUICK_DPI if quick else dpi)
    if not quick:
        fig.savefig(f"{base}.pdf")
    plt.close(fig)
    meta = run_info(script, argv)
    data = dict(numbers)
    data.update(quick=bool(quick), runtime_s=time.time() - t0, **meta)
    path = atomic_write_json(Path(f"{base}.json"), data, default=_plain, indent=2)
    print(f"wrote {base}.{{png,{'' if quick else 'pdf,'}json}} in {data['runtime_s']:.1f} s", flush=True)
    return path
