"""The typed result of ``sdesim run``: :class:`RunSummary`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["RunSummary", "EXPERIMENT_KINDS"]

#: The experiment kinds a run directory can hold.
EXPERIMENT_KINDS = ("ensemble", "toy2d", "longrun")

_COMMON = ("experiment", "n_diverged", "config", "versions")


@dataclass(frozen=True)
class RunSummary:
    """What one ``sdesim run`` measured, frozen: the typed form of its ``summary.json``.

    Returned by :func:`run_experiment` and :func:`run_chains_experiment`.

    Attributes:
        out: the run directory (``summary.json`` is ``out / "summary.json"``).
        experiment: ``"ensemble"``, ``"toy2d"`` or ``"longrun"``.
        n_diverged: particles or chains that left the finite range, over all
            forms / kernels (excluded from every statistic).
        config: the normalised config the run used.
        versions: versions of sdesim, jax, jaxlib, numpy and the backend.
        numbers: the experiment's own measured numbers, as in ``summary.json``:
            for ``ensemble`` ``mean``, ``cov``, ``particle_steps_per_s``,
            ``problem``, ``beta_inv`` and ``forms`` (per form: statistics,
            ``wall_s``, ``compile_s`` and, in 2D, ``density_check``); for
            ``toy2d`` the TVs, modes and circulations of
            :func:`sdesim.experiments.compare_2d`; for ``longrun`` ``kernels``
            (per kernel: losses, accuracies, gradient norms, spectral tests).

    ``summary["key"]`` reads a key of ``summary.json`` (common field or
    number); :meth:`to_dict` gives the whole JSON object back.
    """

    out: Path
    experiment: str
    n_diverged: int
    config: dict = field(repr=False)
    versions: dict = field(repr=False)
    numbers: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if self.experiment not in EXPERIMENT_KINDS:
            raise ValueError(f"experiment: must be one of {EXPERIMENT_KINDS}, got {self.experiment!r}")

    @classmethod
    def from_dict(cls, out, summary: dict) -> "RunSummary":
        """From a ``summary.json`` object (``experiment`` defaults to ``"ensemble"``)."""
        s = dict(summary)
        kind = s.pop("experiment", "ensemble")
        return cls(out=Path(out), experiment=kind, n_diverged=int(s.pop("n_diverged")),
                   config=s.pop("config"), versions=s.pop("versions"), numbers=s)

    @classmethod
    def read(cls, out) -> "RunSummary":
        """The summary of the finished run in directory ``out``."""
        import json

        path = Path(out) / "summary.json"
        if not path.exists():
            raise ValueError(f"out: {out} holds no finished run (summary.json missing)")
        return cls.from_dict(out, json.loads(path.read_text()))

    def to_dict(self) -> dict[str, Any]:
        """The ``summary.json`` object."""
        return {"experiment": self.experiment, "n_diverged": self.n_diverged, **self.numbers,
                "config": self.config, "versions": self.versions}

    def __getitem__(self, key: str):
        if key in _COMMON:
            return getattr(self, key)
        return self.numbers[key]
