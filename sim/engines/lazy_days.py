"""Days drawn through an inverse CDF one slot column at a time, on first use.

Why. The cohort holds, per patient, a fixed-width row of uniforms for each purpose
(`sim.model.randomness.SLOTS`: up to 24 slots, so that two scenarios always share their draws). Most patients use
the first slot or two. Transforming every slot of every patient up front cost the SimPy engine about a fifth of its
time; transforming a column when the first patient reaches it gives the same numbers (the transform is
elementwise) for a fraction of the work.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


class LazyDays:
    """`days.item(k, j)`: the transform of `uniforms[k, j]`, computed for the whole column j when first asked."""

    __slots__ = ("_columns", "_transform", "_uniforms")

    def __init__(self, uniforms: np.ndarray, transform: Callable[[np.ndarray], np.ndarray]) -> None:
        self._uniforms = uniforms
        self._transform = transform
        self._columns: list[np.ndarray | None] = [None] * uniforms.shape[1]

    def item(self, k: int, j: int) -> float:
        column = self._columns[j]
        if column is None:
            # A contiguous copy: numpy then takes the same elementwise loop as on the whole matrix (same bits).
            column = self._columns[j] = self._transform(np.ascontiguousarray(self._uniforms[:, j]))
        return column.item(k)

    def matrix(self) -> np.ndarray:
        """Every slot transformed (for tests and for callers that need the whole table)."""
        return np.column_stack([self._transform(np.ascontiguousarray(self._uniforms[:, j]))
                                for j in range(self._uniforms.shape[1])])
