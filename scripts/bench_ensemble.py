"""Ensemble benchmark: thin wrapper of ``sdesim bench`` (module sdesim.experiments.bench)."""

import sys

from sdesim.experiments import bench

if __name__ == "__main__":
    bench.main(sys.argv[1:])
