"""The A-type SDE by its definition (zero-mass limit) and the naive-Itô contrast.

Thin wrapper: the figure lives in sdesim.experiments.figures.fig_zero_mass (also: sdesim figures --only zero_mass).
"""

import sys

from sdesim.experiments import run_figure

if __name__ == "__main__":
    sys.exit(0 if run_figure("fig_zero_mass", sys.argv[1:]) else 1)
