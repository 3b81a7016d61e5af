"""SGD vs SDE(D) vs Langevin on a 2D SGD-on-data toy with exact, state-dependent D(x).

Thin wrapper: the figure lives in sdesim.experiments.figures.fig_sgd_vs_langevin (also: sdesim figures --only sgd_vs_langevin).
"""

import sys

from sdesim.experiments import run_figure

if __name__ == "__main__":
    sys.exit(0 if run_figure("fig_sgd_vs_langevin", sys.argv[1:]) else 1)
