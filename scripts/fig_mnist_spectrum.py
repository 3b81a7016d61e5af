"""Figs. 1-2 on real MNIST: the spectrum of D during training, and rank(D) versus N and d.

Thin wrapper: the figure lives in sdesim.experiments.figures.fig_mnist_spectrum (also: sdesim figures --only mnist_spectrum).
"""

import sys

from sdesim.experiments import run_figure

if __name__ == "__main__":
    sys.exit(0 if run_figure("fig_mnist_spectrum", sys.argv[1:]) else 1)
