"""Figs. 1-2 analogue: eigenspectrum of the diffusion matrix D during training.

Thin wrapper: the figure lives in sdesim.experiments.figures.fig_diffusion_spectrum (also: sdesim figures --only diffusion_spectrum).
"""

import sys

from sdesim.experiments import run_figure

if __name__ == "__main__":
    sys.exit(0 if run_figure("fig_diffusion_spectrum", sys.argv[1:]) else 1)
