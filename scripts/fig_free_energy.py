"""Theorem 5: the free energy F(rho_t) = E[Phi] - beta^-1 H(rho_t) decreases monotonically.

Thin wrapper: the figure lives in sdesim.experiments.figures.fig_free_energy (also: sdesim figures --only free_energy).
"""

import sys

from sdesim.experiments import run_figure

if __name__ == "__main__":
    sys.exit(0 if run_figure("fig_free_energy", sys.argv[1:]) else 1)
