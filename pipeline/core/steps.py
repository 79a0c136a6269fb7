"""The extract stage of every run kind: per-step tensors, block by block, into the run's tables.

A ``StepSource`` yields the per-step tensors of consecutive blocks of whole sequences: from a
network's weights (``network_source``: the NumPy forward pass of ``core.lstm``, optionally on a
Dask cluster) or from arrays a user imports. ``write_steps`` streams them into
``steps/layer{L}-{kind}.parquet`` and ``steps/predictions.parquet`` (one file each, or part files;
an attention network's weights into ``steps/attention.parquet``), so a long stream never has to fit in memory, and fills a ``Predictions`` on the way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from pipeline import distributed
from pipeline.core.errors import DataError
from pipeline.analysis.layout import row_starts, sequence_blocks
from pipeline.analysis.attention import attention_weights, head_probabilities
from pipeline.analysis.lstm import NetworkWeights, layer_steps
from pipeline.core.predictions import Predictions
from pipeline.core.progress import QUIET, Progress
from pipeline.runformat import (
    ATTENTION_FILE,
    DEFAULT_STORAGE,
    PREDICTIONS_FILE,
    TENSOR_KINDS,
    RunWriter,
    TableSink,
    remove,
    step_table,
    steps_file,
    unit_columns,
)

# Rows computed and written at a time, here and on a cluster alike: which sequences share a block
# (and so a batch of lanes) moves the last float bits of a few of them, so one size keeps the two
# runs equal. On a cluster a block's answer (h, c and 4 gates of 100 units: 2.4 KB a step) travels
# back and up to distributed.MAX_IN_FLIGHT of them wait per worker: 160 MB each at this size.
BLOCK_ROWS = 1 << 16
PREDICTIONS = "predictions"   # the key of a block's output probabilities
ATTENTION = "attention"       # the key of a block's attention weights, (rows,)

Key = tuple[int, str]         # (layer index, tensor kind), e.g. (0, "h")
Blocks = Callable[[], Iterator[tuple[int, dict]]]



@dataclass
class StepSource:
    """``blocks()`` yields ``(first_row, {key: (rows, width) array, "predictions": (rows, outputs)})``
    for consecutive blocks of whole sequences covering ``[0, sum(lengths))`` in order; with
    ``attention``, also ``"attention": (rows,)``, the pooling weight of every step."""

    lengths: np.ndarray
    widths: dict[Key, int]
    blocks: Blocks
    n_outputs: int = 0
    attention: bool = False

    @property
    def n_rows(self) -> int:
        return int(np.sum(self.lengths))

    @property
    def layers(self) -> list[dict]:
        indices = sorted({layer for layer, _ in self.widths})
        return [{"index": i, "units": int(next(w for (j, _), w in self.widths.items() if j == i)),
                 "tensors": [kind for kind in TENSOR_KINDS if (i, kind) in self.widths]}
                for i in indices]


def network_widths(weights: NetworkWeights) -> dict[Key, int]:
    return {(i, kind): layer.units for i, layer in enumerate(weights.layers) for kind in TENSOR_KINDS}


def recompute_block(block: tuple[np.ndarray, np.ndarray], weights: NetworkWeights, n_lanes: int = 64) -> dict:
    """Every layer's tensors (and the head's probabilities) for one block of whole sequences.

    ``block`` is (raw inputs of the block's real rows, the block's lengths). A top-level function so
    that Dask can send it to a worker.
    """
    x, lengths = block
    out: dict = {}
    h_last = None
    for index, tensors in enumerate(layer_steps(weights, x, lengths, n_lanes)):
        out.update({(index, kind): tensors[kind] for kind in TENSOR_KINDS})
        h_last = tensors["h"]
    if weights.head_kernel is not None:
        out[PREDICTIONS] = head_probabilities(weights, h_last, lengths)
    if weights.has_attention:
        out[ATTENTION] = attention_weights(weights, h_last, lengths)
    return out


def network_source(weights: NetworkWeights, read_rows: Callable[[int, int], np.ndarray],
                   lengths: np.ndarray, block_rows: int | None = None, n_lanes: int = 64,
                   scheduler=None) -> StepSource:
    """The recomputed tensors of ``weights`` on inputs read by ``read_rows(r0, r1)``."""
    lengths = np.asarray(lengths, np.int64)
    starts = row_starts(lengths)
    spans = sequence_blocks(lengths, block_rows or BLOCK_ROWS)

    def blocks():
        def items():
            for first, last in spans:
                r0, r1 = int(starts[first]), int(starts[last - 1] + lengths[last - 1])
                yield read_rows(r0, r1), lengths[first:last]

        results = distributed.ordered_map(recompute_block, items(), scheduler, args=(weights, n_lanes))
        for (first, _), result in zip(spans, results):
            yield int(starts[first]), result

    return StepSource(lengths, network_widths(weights), blocks, weights.n_outputs, weights.has_attention)


def attention_table(ids: np.ndarray, t: np.ndarray, weights: np.ndarray, size: int):
    """One block of steps/attention.parquet: example_id, t, attention (float32)."""
    weights = np.asarray(weights, np.float32).reshape(-1)
    if weights.shape != (size,):
        raise DataError(f"attention: a block of {weights.shape[0]} weights, expected {size} (one per step)")
    return step_table(ids, t, weights[:, None], ["attention"])


def write_steps(writer: RunWriter, source: StepSource, predictions: Predictions | None = None,
                partition_rows: int | None = None, progress: Progress = QUIET,
                storage: dict[str, str] | None = None) -> list[str]:
    """Stream every per-step table of ``source`` into the run; returns the files written.

    ``storage``: ``{tensor kind: "float32" | "float16"}`` over ``runformat.DEFAULT_STORAGE`` (the
    gates in float16, h and c in float32); a run's ``extract.storage`` config.
    """
    dtypes = {**DEFAULT_STORAGE, **(storage or {})}
    starts = row_starts(source.lengths)
    names: dict = {key: steps_file(*key) for key in source.widths}
    if predictions is not None and source.n_outputs:
        names[PREDICTIONS] = PREDICTIONS_FILE
    if source.attention:
        names[ATTENTION] = ATTENTION_FILE
    sinks: dict = {}
    for key, name in names.items():
        if (writer.path / name).is_dir() != (partition_rows is not None):
            remove(writer.path / name)          # a file becomes a folder of parts, or back
        sinks[key] = TableSink(writer.path / name, partition_rows)
    expected = 0
    try:
        with progress.bar(source.n_rows, "extract", "step") as bar:
            for first, tensors in source.blocks():
                if first != expected:
                    raise DataError(f"a block starts at row {first}, expected {expected}")
                size = len(next(iter(tensors.values())))
                rows = np.arange(first, first + size)
                ids = (np.searchsorted(starts, rows, side="right") - 1).astype(np.int32)
                t = (rows - starts[ids]).astype(np.int32)
                for key, values in tensors.items():
                    if key in (PREDICTIONS, ATTENTION):
                        continue
                    if values.shape != (size, source.widths[key]):
                        raise DataError(f"layer {key[0]} {key[1]}: a block of shape {values.shape}, "
                                         f"expected ({size}, {source.widths[key]})")
                    sinks[key].write(first, step_table(ids, t, values, unit_columns(values.shape[1]),
                                                       dtypes.get(key[1], "float32")))
                if PREDICTIONS in sinks:
                    probabilities = tensors[PREDICTIONS]
                    if probabilities.shape != (size, source.n_outputs):
                        raise DataError(f"predictions: a block of shape {probabilities.shape}, "
                                         f"expected ({size}, {source.n_outputs})")
                    sinks[PREDICTIONS].write(first, predictions.block(probabilities, ids, t, rows))
                if ATTENTION in sinks:
                    sinks[ATTENTION].write(first, attention_table(ids, t, tensors[ATTENTION], size))
                expected = first + size
                bar.update(size)
        if expected != source.n_rows:
            raise DataError(f"the states cover {expected} rows but the lengths sum to {source.n_rows}")
    except BaseException:
        for sink in sinks.values():
            sink.abort()
        raise
    for sink in sinks.values():
        sink.close()
    return list(names.values())
