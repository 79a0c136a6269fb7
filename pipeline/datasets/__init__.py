"""Data sets as the pipeline sees them: padded sequences, labels and per-example metadata."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipeline.core.errors import DataError

__all__ = ["DataError", "SequenceDataset"]


@dataclass
class SequenceDataset:
    """Sequences of equal padded length for a classifier.

    ``X[i, T - lengths[i]:]`` holds example ``i``'s real frames when ``padding == "left"``
    (the zeros come first, as in the Auslan study); ``X[i, :lengths[i]]`` when ``"right"``.
    """

    name: str
    source: str
    X: np.ndarray                 # float32 (n, T, channels)
    lengths: np.ndarray           # int32 (n,)
    labels: np.ndarray            # int32 (n,), index into classes
    classes: list[str]
    channels: list[str]           # one name per input channel, e.g. "left_x"
    meta: pd.DataFrame            # n rows of per-example metadata (signer, session, file, ...)
    padding: str = "left"
    hands: dict[str, list[int]] = field(default_factory=dict)  # hand -> channel indices
    notes: dict = field(default_factory=dict)  # what loading dropped, merged or skipped, for the manifest

    def __post_init__(self):
        n = len(self.X)
        if self.X.ndim != 3 or self.X.shape[2] != len(self.channels):
            raise DataError(f"{self.name}: X has shape {self.X.shape}, expected (n, T, {len(self.channels)})")
        if len(self.lengths) != n or len(self.labels) != n or len(self.meta) != n:
            raise DataError(f"{self.name}: X, lengths, labels and meta disagree on the number of examples")
        if self.padding not in ("left", "right"):
            raise DataError(f"{self.name}: padding must be 'left' or 'right', not {self.padding!r}")

    @property
    def n_steps(self) -> int:
        return self.X.shape[1]

    def real_steps(self, i: int) -> np.ndarray:
        """The unpadded frames of example ``i``, shape (lengths[i], channels)."""
        length = int(self.lengths[i])
        return self.X[i, self.n_steps - length:] if self.padding == "left" else self.X[i, :length]
