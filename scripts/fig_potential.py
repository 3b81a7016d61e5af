"""Phi-hat from particles vs exact Phi vs the loss f.

Thin wrapper: the figure lives in sdesim.experiments.figures.fig_potential (also: sdesim figures --only potential).
"""

import sys

from sdesim.experiments import run_figure

if __name__ == "__main__":
    sys.exit(0 if run_figure("fig_potential", sys.argv[1:]) else 1)
