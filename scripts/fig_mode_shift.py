"""Phi != f, quantified: the most likely location of SGD moves away from the minimum of f linearly in beta^-1.

Thin wrapper: the figure lives in sdesim.experiments.figures.fig_mode_shift (also: sdesim figures --only mode_shift).
"""

import sys

from sdesim.experiments import run_figure

if __name__ == "__main__":
    sys.exit(0 if run_figure("fig_mode_shift", sys.argv[1:]) else 1)
