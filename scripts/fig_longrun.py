"""Long runs of SGD on tiny-fc (the paper's Fig. 3 analogue) with an SGLD contrast.

Thin wrapper: the figure lives in sdesim.experiments.figures.fig_longrun (also: sdesim figures --only longrun).
"""

import sys

from sdesim.experiments import run_figure

if __name__ == "__main__":
    sys.exit(0 if run_figure("fig_longrun", sys.argv[1:]) else 1)
