"""Cutting a run into segments: how many snapshots each compiled call keeps.

One planner for the ensemble integrator (:func:`sdesim.simulate`, whose
snapshot buffer per segment is bounded in bytes and whose pieces are bounded by
``checkpoint_every``) and for the chains (:func:`sdesim.chains.run_chains`,
bounded by ``max_segment_bytes``; :func:`sdesim.chains.stream_chains`, by
``chunk_saves``). The cut never changes a number: the noise depends only on
(seed, particle or chain, step).
"""

from __future__ import annotations


def saves_per_segment(bytes_per_save: int, max_bytes: int) -> int:
    """Most snapshots whose buffer fits in ``max_bytes`` (at least one)."""
    return max(1, max_bytes // max(bytes_per_save, 1))


def plan_segments(n: int, cap: int, *, equal: bool = True) -> list[int]:
    """Cut ``n`` snapshots (or steps) into consecutive segments of at most ``cap``; the lengths, in order.

    ``equal=True`` prefers equal segments -- one compiled program serves them
    all -- when a divisor of ``n`` lies in ``[cap // 4, cap]``. Otherwise (and
    with ``equal=False``) full segments of ``cap`` and the remainder last.
    """
    if n <= cap:
        return [n]
    if equal:
        for seg in range(cap, max(cap // 4, 1) - 1, -1):
            if n % seg == 0:
                return [seg] * (n // seg)
    full, rest = divmod(n, cap)
    return [cap] * full + ([rest] if rest else [])
