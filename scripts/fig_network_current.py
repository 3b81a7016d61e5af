"""Is SGD on a real network out of equilibrium? A(tau) of SGD, SGLD and the SDE on an MNIST MLP, and Example 19's map.

Thin wrapper: the figure lives in sdesim.experiments.figures.fig_network_current
(also: sdesim figures --only network_current).
"""

import sys

from sdesim.experiments import run_figure

if __name__ == "__main__":
    sys.exit(0 if run_figure("fig_network_current", sys.argv[1:]) else 1)
