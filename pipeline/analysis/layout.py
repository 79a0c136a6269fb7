"""Where each real step of a set of sequences lives: the row layout of every per-step table.

Rows are the real (unpadded) steps, sorted by (example_id, t), so the rows of example ``i`` are
``[row_start[i], row_start[i] + length[i])``. Two ways of running sequences through an LSTM need
their own maps onto those rows: left-padded batches (``StepLayout``: the study's classifiers, which
read the last step of sequences padded to a fixed length) and lanes of sequences run back to back,
each from a zero state (``lane_layout``: language models, imports of ragged sequences).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np


def row_starts(lengths: np.ndarray) -> np.ndarray:
    lengths = np.asarray(lengths, dtype=np.int64)
    return np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if len(lengths) else lengths


def row_ids(lengths: np.ndarray, first: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(example_id, t) of every row of consecutive sequences ``first, first + 1, ...``."""
    lengths = np.asarray(lengths, dtype=np.int64)
    ids = np.repeat(np.arange(first, first + len(lengths), dtype=np.int32), lengths)
    t = (np.arange(int(lengths.sum())) - np.repeat(row_starts(lengths), lengths)).astype(np.int32)
    return ids, t


@dataclass(frozen=True)
class StepLayout:
    """Where each real step of left-padded sequences lives in the per-step tables."""

    lengths: np.ndarray     # (n,)
    n_steps: int            # T, the padded length

    def __post_init__(self):
        lengths = np.asarray(self.lengths, dtype=np.int64)
        if len(lengths) and (lengths.min() < 1 or lengths.max() > self.n_steps):
            raise ValueError(f"sequence lengths must lie in [1, {self.n_steps}]")
        object.__setattr__(self, "lengths", lengths)

    @property
    def pads(self) -> np.ndarray:
        return self.n_steps - self.lengths

    @property
    def row_start(self) -> np.ndarray:
        return row_starts(self.lengths)

    @property
    def n_rows(self) -> int:
        return int(self.lengths.sum())

    def example_ids(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.lengths)), self.lengths)

    def step_index(self) -> np.ndarray:
        """``t`` of every row: 0 .. length - 1 within each example."""
        return np.arange(self.n_rows) - np.repeat(self.row_start, self.lengths)

    def real_rows(self, X: np.ndarray) -> np.ndarray:
        """The real frames of left-padded ``X`` (n, T, C) as (rows, C), in row order."""
        padded_t = np.repeat(self.pads, self.lengths) + self.step_index()
        return X[self.example_ids(), padded_t]

    def to_padded(self, rows: np.ndarray) -> np.ndarray:
        """The inverse of ``real_rows``: left-padded (n, T, C) with zeros before each sequence."""
        X = np.zeros((len(self.lengths), self.n_steps, rows.shape[1]), dtype=rows.dtype)
        X[self.example_ids(), np.repeat(self.pads, self.lengths) + self.step_index()] = rows
        return X


def assign_lanes(sizes: np.ndarray, n_lanes: int) -> list[list[int]]:
    """Greedy balance: each item (in the given order) goes to the lane with the least so far."""
    heap = [(0, lane) for lane in range(n_lanes)]
    lanes: list[list[int]] = [[] for _ in range(n_lanes)]
    for item, size in enumerate(sizes):
        load, lane = heapq.heappop(heap)
        lanes[lane].append(item)
        heapq.heappush(heap, (load + int(size), lane))
    return lanes


def lane_layout(lengths: np.ndarray, n_lanes: int) -> tuple[np.ndarray, np.ndarray]:
    """Sequences (rows ``0..sum(lengths)``, back to back) spread over lanes, longest first.

    Returns ``rows`` (lanes, steps): the row each lane computes at each step (-1: idle), and
    ``reset`` (lanes, steps): True where a lane starts a sequence (its state goes back to zero).
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    starts = row_starts(lengths)
    order = np.argsort(-lengths, kind="stable")
    lanes = assign_lanes(lengths[order], max(1, min(n_lanes, len(lengths))))
    steps = max(int(lengths[order[items]].sum()) for items in lanes)
    rows = np.full((len(lanes), steps), -1, dtype=np.int64)
    reset = np.zeros((len(lanes), steps), dtype=bool)
    for lane, items in enumerate(lanes):
        sequences = order[items]
        if not len(sequences):
            continue
        lane_rows = np.concatenate([np.arange(starts[d], starts[d] + lengths[d]) for d in sequences])
        rows[lane, :len(lane_rows)] = lane_rows
        firsts = np.concatenate([[0], np.cumsum(lengths[sequences])[:-1]])
        reset[lane, firsts] = True
    return rows, reset


def sequence_blocks(lengths: np.ndarray, block_rows: int) -> list[tuple[int, int]]:
    """Consecutive sequences ``[first, last)`` grouped into blocks of about ``block_rows`` rows:
    every block holds whole sequences, so a sequence's last step is in the block with its first."""
    blocks, first, rows = [], 0, 0
    for i, length in enumerate(lengths):
        rows += int(length)
        if rows >= block_rows:
            blocks.append((first, i + 1))
            first, rows = i + 1, 0
    if first < len(lengths):
        blocks.append((first, len(lengths)))
    return blocks
