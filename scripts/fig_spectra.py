"""Trajectory spectra (Fig. 3-style analysis) on reference processes and Example 19.

Thin wrapper: the figure lives in sdesim.experiments.figures.fig_spectra (also: sdesim figures --only spectra).
"""

import sys

from sdesim.experiments import run_figure

if __name__ == "__main__":
    sys.exit(0 if run_figure("fig_spectra", sys.argv[1:]) else 1)
