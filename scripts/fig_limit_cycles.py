"""Fig. 4: Example 19 (double well with rotation) at lam = 0, 0.5, 1.5.

Thin wrapper: the figure lives in sdesim.experiments.figures.fig_limit_cycles (also: sdesim figures --only limit_cycles).
"""

import sys

from sdesim.experiments import run_figure

if __name__ == "__main__":
    sys.exit(0 if run_figure("fig_limit_cycles", sys.argv[1:]) else 1)
