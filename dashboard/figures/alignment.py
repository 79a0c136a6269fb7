"""Putting sequences of different lengths on one time axis.

Per-step tables hold only real steps (see pipeline.runformat), so example ``i`` owns the rows
``[row_start[i], row_start[i] + length[i])``. Views that compare examples step by step need a
common axis: aligned at the start (step ``t``) or at the end (steps before the last one, which is
the step a classifier reads). These helpers turn row ranges into positions on that axis with
vectorised numpy, never a loop over examples.
"""

from __future__ import annotations

import numpy as np

ALIGNMENTS = {"end": "steps to end (0 = last step)", "start": "steps from start"}


def check_alignment(align: str) -> str:
    if align not in ALIGNMENTS:
        raise ValueError(f"unknown alignment {align!r}; expected one of {', '.join(ALIGNMENTS)}")
    return align


def example_rows(row_start, length) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The step-table rows of the given examples, concatenated in the examples' order.

    Returns ``(rows, t, owner)``: the row indices, each row's step ``t`` within its example and
    the position of its example in the input arrays.
    """
    row_start = np.asarray(row_start, dtype=np.int64)
    length = np.asarray(length, dtype=np.int64)
    if np.any(length < 0):
        raise ValueError("example lengths must not be negative")
    owner = np.repeat(np.arange(len(length)), length)
    offsets = np.cumsum(length) - length
    t = np.arange(int(length.sum()), dtype=np.int64) - offsets[owner]
    return row_start[owner] + t, t, owner


def step_positions(t: np.ndarray, row_length: np.ndarray, n_steps: int, align: str) -> np.ndarray:
    """Each row's column on an axis of ``n_steps`` columns (``n_steps`` >= every length)."""
    check_alignment(align)
    t = np.asarray(t, dtype=np.int64)
    if align == "start":
        return t
    return n_steps - np.asarray(row_length, dtype=np.int64) + t


def step_axis(n_steps: int, align: str) -> np.ndarray:
    """The tick values of the columns: ``0..n-1`` from the start, ``-(n-1)..0`` to the end."""
    check_alignment(align)
    columns = np.arange(n_steps)
    return columns if align == "start" else columns - (n_steps - 1)


def aligned_positions(row_start, length, align: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``(rows, owner, position, n_steps)`` for the given examples on a common axis."""
    rows, t, owner = example_rows(row_start, length)
    length = np.asarray(length, dtype=np.int64)
    n_steps = int(length.max()) if len(length) else 0
    return rows, owner, step_positions(t, length[owner], n_steps, align), n_steps


def padded(values: np.ndarray, owner: np.ndarray, position: np.ndarray, n_examples: int,
           n_steps: int) -> np.ndarray:
    """Scatter per-row values into an ``(n_examples, n_steps)`` float32 grid; missing steps are NaN."""
    grid = np.full((n_examples, n_steps), np.nan, dtype=np.float32)
    grid[owner, position] = values
    return grid
