"""The paper's experiments (``sdesim.experiments``), runnable from an installed package.

The 2D SGD / SDE / Langevin toy (:func:`compare_2d`), the sampling-without-
replacement and linear-scaling experiments (:func:`replacement_rows`,
:func:`linear_scaling_rows`) and the resumable long run of a small network
(:func:`longrun`, :func:`analyse_longrun`). ``sdesim figures`` runs the
figure scripts built on them.
"""

from ._longrun import analyse as analyse_longrun
from ._longrun import StaleRunError as StaleRunError
from ._longrun import code_fingerprint as code_fingerprint
from ._longrun import digits_finite_sum as digits_finite_sum
from ._longrun import digits_metrics as digits_metrics
from ._longrun import discard as discard_longrun
from ._longrun import longrun as longrun
from ._replacement import linear_scaling_rows as linear_scaling_rows
from ._replacement import linreg_data as linreg_data
from ._replacement import measure_trace_cov as measure_trace_cov
from ._replacement import replacement_rows as replacement_rows
from ._toy2d import Toy2D as Toy2D
from ._toy2d import Toy2DComparison as Toy2DComparison
from ._toy2d import compare_2d as compare_2d
from ._toy2d import toy_regression_2d as toy_regression_2d
from ._figure_runner import figure_names as figure_names
from ._figure_runner import run_figure as run_figure
from . import bench as bench
