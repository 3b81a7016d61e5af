"""Temperature rules as experiments: Remark 12 (with vs without replacement) and Remark 11 (linear scaling).

Thin wrapper: the figure lives in sdesim.experiments.figures.fig_replacement (also: sdesim figures --only replacement).
"""

import sys

from sdesim.experiments import run_figure

if __name__ == "__main__":
    sys.exit(0 if run_figure("fig_replacement", sys.argv[1:]) else 1)
