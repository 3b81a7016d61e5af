"""Find and run the figure modules of :mod:`sdesim.experiments.figures`."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import traceback

__all__ = ["figure_names", "run_figure"]


def figure_names() -> list[str]:
    """Names of the figure modules (``fig_potential``, ...), sorted."""
    from . import figures

    return sorted(m.name for m in pkgutil.iter_modules(figures.__path__) if m.name.startswith("fig_"))


def run_figure(name: str, argv=()) -> bool:
    """Import figure module ``name`` and call its ``main(argv)``; True if it succeeded.

    Runs in this process (compiled programs are shared between figures) and
    restores the global state a figure may change: JAX's x64 flag, open
    matplotlib figures, ``sys.argv``. An exception is printed, not raised, so
    that the other figures still run.
    """
    if name not in figure_names():
        raise ValueError(f"name: no figure module {name!r}; expected one of {figure_names()}")
    import jax
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x64 = bool(jax.config.jax_enable_x64)
    saved_argv, ok = sys.argv, False
    try:
        mod = importlib.import_module(f"{__package__}.figures.{name}")
        sys.argv = [mod.__file__] + list(argv)
        ok = mod.main(list(argv)) in (0, None)
    except SystemExit as e:
        ok = e.code in (0, None)
    except Exception:  # report, then go on with the next figure
        traceback.print_exc()
    finally:
        sys.argv = saved_argv
        jax.config.update("jax_enable_x64", x64)  # some figures switch float64 on for themselves
        plt.close("all")
    return ok
