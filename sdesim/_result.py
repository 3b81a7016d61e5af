"""The shared base of sdesim's frozen result types.

Results are frozen dataclasses: fields are read as attributes
(``res.tv_sgd_sde``), and :meth:`Result.to_dict` gives a plain dict (for JSON).
Item access (``res["tv_sgd_sde"]``) is kept for code written against the
dict-returning 0.1 functions.
"""

from __future__ import annotations

import dataclasses

__all__ = ["Result"]


class Result:
    """Mixin for frozen dataclass results: ``to_dict()``, ``keys()`` and item access by field name."""

    def to_dict(self) -> dict:
        """The fields as a dict (values as they are; no deep copy)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def keys(self):
        return [f.name for f in dataclasses.fields(self)]

    def __getitem__(self, name: str):
        if name not in self.keys():
            raise KeyError(name)
        return getattr(self, name)

    def __contains__(self, name) -> bool:
        return name in self.keys()
