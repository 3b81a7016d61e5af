"""Option objects of :func:`sdesim.simulate`: groups of arguments that travel together.

In the manner of ``diffrax.SaveAt``. They are an alternative to the plain
keywords, which stay the simple path: ``save_at=SaveAt(every=10, burn_in=100)``
is ``save_every=10, burn_in=100``. Giving a keyword and the object that also
holds it raises ``ValueError``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

from ._validate import check_nonneg_int, check_positive_int

__all__ = ["SaveAt", "Checkpointing"]

KEEPS = ("trajectory", "stats")


@dataclasses.dataclass(frozen=True)
class SaveAt:
    """What :func:`sdesim.simulate` keeps (``save_at=``), frozen.

    Attributes:
        every: steps between snapshots, a divisor of ``n_steps`` (``save_every``);
            ``None``: the final state only.
        burn_in: steps run first and not saved (``burn_in``).
        keep: ``"trajectory"`` (snapshots) or ``"stats"`` (in-loop statistics) (``keep``).
        stats_bins, stats_box: the histogram of the statistics (``stats_bins``, ``stats_box``).
    """

    every: Optional[int] = None
    burn_in: int = 0
    keep: str = "trajectory"
    stats_bins: Optional[int] = None
    stats_box: Any = None

    def __post_init__(self):
        if self.every is not None:
            check_positive_int(self.every, "SaveAt.every")
        check_nonneg_int(self.burn_in, "SaveAt.burn_in")
        if self.keep not in KEEPS:
            raise ValueError(f"SaveAt.keep: expected 'trajectory' or 'stats', got {self.keep!r}")
        if self.stats_bins is not None:
            check_positive_int(self.stats_bins, "SaveAt.stats_bins")


@dataclasses.dataclass(frozen=True)
class Checkpointing:
    """How :func:`sdesim.simulate` is cut for checkpoints and resumed (``checkpoint=``), frozen.

    Attributes:
        every: at most this many steps per compiled piece (``checkpoint_every``).
        on_piece: called after every piece with what a checkpoint needs (``on_piece``).
        resume: such a dict: continue after that piece, bit-identically (``resume``).
    """

    every: Optional[int] = None
    on_piece: Optional[Callable] = None
    resume: Optional[dict] = None

    def __post_init__(self):
        if self.every is not None:
            check_positive_int(self.every, "Checkpointing.every")
        if self.on_piece is not None and not callable(self.on_piece):
            raise ValueError(f"Checkpointing.on_piece: expected a callable, got {type(self.on_piece).__name__}")


#: keyword of simulate -> (option object argument, its field, the keyword's default)
_FIELDS = {
    "save_every": ("save_at", "every", None),
    "burn_in": ("save_at", "burn_in", 0),
    "keep": ("save_at", "keep", "trajectory"),
    "stats_bins": ("save_at", "stats_bins", None),
    "stats_box": ("save_at", "stats_box", None),
    "checkpoint_every": ("checkpoint", "every", None),
    "on_piece": ("checkpoint", "on_piece", None),
    "resume": ("checkpoint", "resume", None),
}
_CLASSES = {"save_at": SaveAt, "checkpoint": Checkpointing}


def _given(value, default) -> bool:
    """Whether a keyword was set: not None where its default is None, else different from the default."""
    if default is None:
        return value is not None
    try:
        return bool(value != default)
    except (TypeError, ValueError):
        return True


def merge_options(keywords: dict, **objects) -> dict:
    """The keywords of :func:`sdesim.simulate` with the fields of the given option objects filled in.

    ``objects``: ``save_at`` and ``checkpoint`` (``None`` where not given).
    ``ValueError`` naming the argument for an object of the wrong type, or a
    keyword given together with the object that holds it.
    """
    out = dict(keywords)
    for arg, obj in objects.items():
        if obj is None:
            continue
        cls = _CLASSES[arg]
        if not isinstance(obj, cls):
            raise ValueError(f"{arg}: expected sdesim.{cls.__name__}, got {type(obj).__name__}")
        for kw, (owner, field, default) in _FIELDS.items():
            if owner != arg:
                continue
            if _given(keywords[kw], default):
                raise ValueError(f"{kw}: given both as a keyword and in {arg}={cls.__name__}(...); "
                                 f"give it once ({arg}={cls.__name__}({field}=...) or {kw}=...)")
            out[kw] = getattr(obj, field)
    return out
