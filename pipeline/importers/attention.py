"""The optional ``attention`` field of an arrays import (docs/import-format.md), checked.

Two shapes, told apart by their number of dimensions:

- **pooling**, one weight per step, laid out like the other per-step fields: flat ``(steps,)`` or
  padded ``(sequences, steps)``. A sequence's weights must sum to 1 over its real steps.
- **matrix** (sequence-to-sequence), ``(sequences, T_out, T_in)``: row ``o`` of sequence ``i`` is
  how output step ``o`` weighs the sequence's input steps (its real steps along ``T_in``, padded as
  the states are: ``padding``). ``attention_out_lengths`` (one per sequence, default ``T_out``)
  says how many rows are real; the rest are padding and not read.

Values must be finite and non-negative, and every sequence (pooling) or real output row (matrix)
must sum to 1 within ``TOLERANCE`` over the real input steps: what a softmax gives, stored in
float16 or float32. Padded entries are dropped, not checked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.core.errors import DataError
from pipeline.analysis.layout import row_ids, row_starts

FIELD = "attention"
OUT_LENGTHS = "attention_out_lengths"
TOLERANCE = 1e-3


@dataclass
class ImportedAttention:
    kind: str                              # "pooling" | "matrix" (runformat.ATTENTION_KINDS)
    steps: np.ndarray | None = None        # pooling: (rows,) float32
    matrix: pd.DataFrame | None = None     # matrix: example_id, t_out, t_in, attention


def read_attention(values: np.ndarray, lengths: np.ndarray, padding: str,
                   out_lengths: np.ndarray | None = None) -> ImportedAttention:
    """The checked attention of an import; DataError naming the field otherwise."""
    values = np.asarray(values)
    if values.dtype.kind not in "fiu":
        raise DataError(f"{FIELD} has dtype {values.dtype}, expected float weights")
    if values.ndim in (1, 2):
        if out_lengths is not None:
            raise DataError(f"{OUT_LENGTHS} is for a (sequences, T_out, T_in) {FIELD} matrix; this "
                            f"{FIELD} has one weight per step")
        return ImportedAttention("pooling", steps=_pooling(values, lengths, padding))
    if values.ndim == 3:
        return ImportedAttention("matrix", matrix=_matrix(values, lengths, padding, out_lengths))
    raise DataError(f"{FIELD} has shape {values.shape}: expected one weight per step ((steps,) or padded "
                    f"(sequences, steps)) or a matrix per sequence (sequences, T_out, T_in)")


def _pooling(values: np.ndarray, lengths: np.ndarray, padding: str) -> np.ndarray:
    n, total = len(lengths), int(lengths.sum())
    if values.ndim == 1:
        if len(values) != total:
            raise DataError(f"{FIELD} has {len(values)} weights but lengths sum to {total} (one per step)")
        rows = values.astype(np.float64)
    else:
        if values.shape[0] != n or values.shape[1] < int(lengths.max()):
            raise DataError(f"{FIELD} has shape {values.shape}, expected ({n}, at least {int(lengths.max())}): "
                            f"one padded row of weights per sequence")
        ids, t = row_ids(lengths)
        offset = values.shape[1] - lengths[ids] if padding == "left" else 0
        rows = values[ids, t + offset].astype(np.float64)
    _check_values(rows)
    sums = np.add.reduceat(rows, row_starts(lengths))
    bad = np.flatnonzero(np.abs(sums - 1) > TOLERANCE)
    if len(bad):
        raise DataError(f"{FIELD}: the weights of sequence {int(bad[0])} sum to {sums[bad[0]]:.6g} over its "
                        f"{int(lengths[bad[0]])} real steps; each sequence's must sum to 1 (within {TOLERANCE:g})")
    return rows.astype(np.float32)


def _matrix(values: np.ndarray, lengths: np.ndarray, padding: str, out_lengths) -> pd.DataFrame:
    n, t_out, t_in = values.shape
    if n != len(lengths):
        raise DataError(f"{FIELD} has {n} matrices but there are {len(lengths)} sequences")
    if t_in < int(lengths.max()):
        raise DataError(f"{FIELD} has {t_in} input columns but the longest sequence has {int(lengths.max())} steps")
    if out_lengths is None:
        out_lengths = np.full(n, t_out, np.int64)
    out_lengths = np.asarray(out_lengths)
    if out_lengths.shape != (n,) or out_lengths.dtype.kind not in "iu":
        raise DataError(f"{OUT_LENGTHS} has shape {out_lengths.shape} and dtype {out_lengths.dtype}: "
                        f"expected ({n},) integers, the real output steps of each sequence")
    if out_lengths.min() < 1 or out_lengths.max() > t_out:
        raise DataError(f"{OUT_LENGTHS} must lie in [1, {t_out}] (the matrices' T_out)")
    frames = []
    for i in range(n):
        length, rows = int(lengths[i]), int(out_lengths[i])
        start = t_in - length if padding == "left" else 0
        block = values[i, :rows, start:start + length].astype(np.float64)
        try:
            _check_values(block)
        except DataError as error:
            raise DataError(f"{error} (sequence {i})") from None
        sums = block.sum(axis=1)
        bad = np.flatnonzero(np.abs(sums - 1) > TOLERANCE)
        if len(bad):
            raise DataError(f"{FIELD}: row {int(bad[0])} of sequence {i}'s matrix sums to {sums[bad[0]]:.6g} over "
                            f"its {length} real input steps; each output step's row must sum to 1 "
                            f"(within {TOLERANCE:g})")
        out_t, in_t = np.meshgrid(np.arange(rows), np.arange(length), indexing="ij")
        frames.append(pd.DataFrame({"example_id": np.int32(i), "t_out": out_t.ravel().astype(np.int32),
                                    "t_in": in_t.ravel().astype(np.int32),
                                    "attention": block.ravel().astype(np.float32)}))
    return pd.concat(frames, ignore_index=True)


def _check_values(values: np.ndarray) -> None:
    if not np.all(np.isfinite(values)):
        raise DataError(f"{FIELD} holds values that are not finite (NaN or infinity)")
    if values.size and values.min() < 0:
        raise DataError(f"{FIELD} holds a negative weight ({values.min():.6g}); weights are >= 0")
