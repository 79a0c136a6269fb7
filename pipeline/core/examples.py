"""examples.parquet: one row per example, the same columns for every run kind.

``example_id, [name], [label, label_name], split, length, row_start``, then the data set's own
metadata (signer, hand usage, ...), then the prediction columns the extract stage adds
(``core.predictions``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.core.errors import DataError
from pipeline.analysis.layout import row_starts
from pipeline.core.predictions import CLASSIFICATION_COLUMNS, LANGUAGE_MODEL_COLUMNS

BASE_COLUMNS = ("example_id", "name", "label", "label_name", "split", "length", "row_start")
RESERVED = BASE_COLUMNS + CLASSIFICATION_COLUMNS + LANGUAGE_MODEL_COLUMNS



def examples_table(lengths: np.ndarray, split: np.ndarray, *, labels: np.ndarray | None = None,
                   classes: list[str] | None = None, names: np.ndarray | None = None,
                   meta: pd.DataFrame | None = None) -> pd.DataFrame:
    lengths = np.asarray(lengths, np.int64)
    frame: dict[str, object] = {"example_id": np.arange(len(lengths), dtype=np.int32)}
    if names is not None:
        frame["name"] = np.asarray(names, dtype=object)
    if labels is not None:
        labels = np.asarray(labels, np.int32)
        frame["label"] = labels
        frame["label_name"] = np.asarray(classes, dtype=object)[labels]
    frame["split"] = np.asarray(split, dtype=object)
    frame["length"] = lengths.astype(np.int32)
    frame["row_start"] = row_starts(lengths)
    table = pd.DataFrame(frame)
    if meta is not None and len(meta.columns):
        clash = sorted(set(meta.columns) & set(RESERVED))
        if clash:
            raise DataError(f"metadata column(s) {', '.join(clash)} clash with the run's own "
                                f"columns; rename them")
        table = pd.concat([table, meta.reset_index(drop=True)], axis=1)
    return table


def with_predictions(examples: pd.DataFrame, per_example: pd.DataFrame) -> pd.DataFrame:
    """The examples with the extract stage's per-example columns (replacing earlier ones)."""
    kept = examples.drop(columns=[c for c in per_example.columns if c in examples])
    return pd.concat([kept.reset_index(drop=True), per_example.reset_index(drop=True)], axis=1)
