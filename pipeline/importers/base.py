"""What every importer hands over: an ``ImportedRun`` (layout, examples, per-step blocks), and the
checks they share, each naming the field at fault.

An importer (``arrays``, ``lstmvis``, ``keras_model``, ``torch_model``) only reads: it turns its input
into an ``ImportedRun``; ``kinds.imported.write_run`` writes it as an ordinary run. Labels make a
``classification`` run; without labels the run is a ``language_model`` run (a stream or set of token
sequences: the text views and select & match). Sequences without tokens get the placeholder token
``PLACEHOLDER_TOKEN`` so that those views can still draw them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipeline.core import steps
from pipeline.core.errors import DataError
from pipeline.analysis.layout import row_starts, sequence_blocks
from pipeline.core.stages import source_listing
from pipeline.core.steps import Key, StepSource, network_source
from pipeline.importers.attention import ImportedAttention
from pipeline.runformat import CLASSIFICATION, LANGUAGE_MODEL, SPLITS

DEFAULT_SPLIT = "test"        # imported sequences are data a finished model is looked at on
PLACEHOLDER_TOKEN = "\u00b7"


@dataclass
class ImportedRun:
    """Everything an importer found, checked; ``blocks()`` yields the per-step tensors.

    ``blocks()`` yields ``(first_row, {key: (rows, width) array, "predictions": ...})`` for
    consecutive row ranges covering ``[0, sum(lengths))`` in order.
    """

    name: str
    source: str
    format: str                                   # "npz", "hdf5", "parquet", "lstmvis", "keras", ...
    lengths: np.ndarray                           # (n,) real steps of each sequence
    widths: dict[Key, int]                        # units of each tensor
    blocks: Callable[[], Iterator[tuple[int, dict[object, np.ndarray]]]]
    n_predictions: int = 0                        # columns of the per-step probabilities (0: none)
    labels: np.ndarray | None = None              # (n,) class indices
    classes: list[str] = field(default_factory=list)
    split: np.ndarray | None = None               # (n,) train / validation / test
    names: np.ndarray | None = None               # (n,) a name per sequence
    meta: pd.DataFrame | None = None              # n rows of per-example metadata
    tokens: np.ndarray | None = None              # (rows,) str: what was read at each step
    separator: str = ""                           # shown after each token ("" for characters)
    vocabulary: list[str] = field(default_factory=list)   # names of the prediction columns (LM)
    annotations: dict[str, np.ndarray] = field(default_factory=dict)   # (rows,) each
    descriptions: dict[str, str] = field(default_factory=dict)
    options: dict = field(default_factory=dict)   # how the import was asked for (the run's config)
    notes: dict = field(default_factory=dict)     # what the import did (transforms, checks)
    fingerprint: list = field(default_factory=list)   # what the input hash covers
    inputs: StepArray | None = None             # the model's input at each step (float channels)
    channels: list[str] = field(default_factory=list)  # names of the inputs' channels
    attention: ImportedAttention | None = None   # pooling weights per step, or a matrix per sequence

    @property
    def kind(self) -> str:
        return CLASSIFICATION if self.labels is not None else LANGUAGE_MODEL

    def step_source(self) -> StepSource:
        return StepSource(self.lengths, self.widths, self.blocks, self.n_predictions)

    @property
    def n_rows(self) -> int:
        return int(self.lengths.sum())

    @property
    def row_start(self) -> np.ndarray:
        return row_starts(self.lengths)

    @property
    def layers(self) -> list[dict]:
        return self.step_source().layers


# ---------------------------------------------------------------------------------------------
# Checks shared by the importers: each error names the field at fault

def check_lengths(lengths, field_name: str = "lengths") -> np.ndarray:
    arr = np.asarray(lengths)
    if arr.ndim != 1 or not len(arr):
        raise DataError(f"{field_name} must be a non-empty 1-D array (one length per sequence), "
                        f"got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise DataError(f"{field_name} has dtype {arr.dtype}, expected integer")
    if arr.min() < 1:
        bad = int(np.flatnonzero(arr < 1)[0])
        raise DataError(f"{field_name}[{bad}] is {int(arr[bad])}: every sequence needs at least one step")
    return arr.astype(np.int64)


def lengths_from_offsets(offsets, n_rows: int | None, field_name: str = "offsets") -> np.ndarray:
    """CSR offsets ``[0, end_0, end_1, ..., n_rows]`` -> lengths."""
    arr = np.asarray(offsets)
    if arr.ndim != 1 or len(arr) < 2 or not np.issubdtype(arr.dtype, np.integer):
        raise DataError(f"{field_name} must be a 1-D integer array [0, end of sequence 0, ..., total "
                        f"steps], got shape {arr.shape} and dtype {arr.dtype}")
    if arr[0] != 0:
        raise DataError(f"{field_name} must start at 0, got {int(arr[0])}")
    if n_rows is not None and arr[-1] != n_rows:
        raise DataError(f"{field_name} ends at {int(arr[-1])} but the states have {n_rows} rows")
    return check_lengths(np.diff(arr), f"{field_name} (differences)")


def check_labels(labels, classes, n: int) -> tuple[np.ndarray, list[str]]:
    arr = np.asarray(labels)
    if arr.shape != (n,):
        raise DataError(f"labels has shape {arr.shape}, expected ({n},): one class index per sequence")
    if not np.issubdtype(arr.dtype, np.integer):
        raise DataError(f"labels has dtype {arr.dtype}, expected integer (class indices; give the class "
                        f"names in 'classes')")
    if arr.min() < 0:
        raise DataError(f"labels has a negative class index ({int(arr.min())})")
    n_classes = int(arr.max()) + 1
    if classes is None:
        classes = [f"class{k}" for k in range(n_classes)]
    classes = [str(c) for c in classes]
    if n_classes > len(classes):
        raise DataError(f"labels has class index {n_classes - 1} but classes names only {len(classes)}")
    if len(set(classes)) != len(classes):
        raise DataError("classes has repeated names")
    return arr.astype(np.int32), classes


def check_split(split, n: int) -> np.ndarray:
    arr = np.asarray(split).astype(str)
    if arr.shape != (n,):
        raise DataError(f"split has shape {arr.shape}, expected ({n},): one split per sequence")
    bad = sorted(set(arr.tolist()) - set(SPLITS))
    if bad:
        raise DataError(f"split has value(s) {bad[:3]}; use {', '.join(SPLITS)}")
    return arr.astype(object)


def check_rows(name: str, values, n_rows: int, lengths_from: str = "lengths") -> None:
    if len(values) != n_rows:
        raise DataError(f"{name} has {len(values)} rows but {lengths_from} sum to {n_rows}")


def check_float(name: str, dtype) -> None:
    if not np.issubdtype(np.dtype(dtype), np.floating):
        raise DataError(f"{name} has dtype {np.dtype(dtype)}, expected floating point")


def as_strings(name: str, values) -> np.ndarray:
    """Text values (unicode or UTF-8 bytes, as npz and HDF5 store them) as an object array."""
    arr = np.asarray(values)
    if arr.dtype.kind == "S" or (arr.dtype.kind == "O" and len(arr) and isinstance(arr.flat[0], bytes)):
        try:
            return np.array([v.decode("utf-8") for v in arr.ravel()], dtype=object).reshape(arr.shape)
        except UnicodeDecodeError as error:
            raise DataError(f"{name} holds bytes that are not UTF-8 text ({error})") from None
    if arr.dtype.kind not in "UO":
        raise DataError(f"{name} has dtype {arr.dtype}, expected text")
    return arr.astype(object)


# ---------------------------------------------------------------------------------------------
# Row blocks of stored arrays (flat ragged or padded), read without loading everything

class StepArray:
    """A per-step tensor stored flat ``(rows, D)`` or padded ``(n, T, D)``, read by row range.

    Works on anything that slices like an array: numpy arrays, memory maps, h5py datasets.
    Padded arrays hold each sequence's real steps first (``padding="right"``) or last (``"left"``).
    """

    def __init__(self, name: str, array, lengths: np.ndarray, padding: str = "right", finite: bool = True):
        self.name, self.array, self.padding, self.finite = name, array, padding, finite
        self.file = ""            # the file it is read from, named in the errors of ``read``
        self.lengths = lengths
        self.row_start = row_starts(lengths)
        shape = tuple(array.shape)
        self.padded = len(shape) == 3
        n_rows = int(lengths.sum())
        if len(shape) == 2:
            check_rows(name, array, n_rows)
        elif len(shape) == 3:
            if shape[0] != len(lengths):
                raise DataError(f"{name} is padded with shape {shape}: {shape[0]} sequences but lengths "
                                f"has {len(lengths)}")
            if lengths.max() > shape[1]:
                raise DataError(f"{name} is padded to {shape[1]} steps but lengths has a sequence of "
                                f"{int(lengths.max())}")
        else:
            raise DataError(f"{name} has shape {shape}: expected (steps, units) or padded "
                            f"(sequences, steps, units)")
        if padding not in ("right", "left"):
            raise DataError(f"padding must be 'right' or 'left', not {padding!r}")
        self.width = int(shape[-1])
        if self.width < 1:
            raise DataError(f"{name} has shape {shape}: no units (its last axis is empty); every step "
                            f"needs at least one value")
        self.dtype = array.dtype

    def read(self, r0: int, r1: int) -> np.ndarray:
        """Rows ``[r0, r1)``; a float block with NaN or infinity is refused (``finite``), naming
        the sequence, step and unit."""
        where = f"{self.file}: {self.name}" if self.file else self.name
        try:
            block = self._read(r0, r1)
        except OSError as error:          # a damaged HDF5 dataset, a file gone while importing
            raise DataError(f"{where}: cannot read rows {r0} .. {r1 - 1} ({error})") from None
        if self.finite and block.dtype.kind in "fc" and not np.isfinite(block).all():
            row, unit = (int(i) for i in np.argwhere(~np.isfinite(block.reshape(len(block), -1)))[0])
            example = int(np.searchsorted(self.row_start, r0 + row, side="right")) - 1
            step = r0 + row - int(self.row_start[example])
            value = block.reshape(len(block), -1)[row, unit]
            raise DataError(f"{where} is {value} at sequence {example}, step {step}, unit {unit} "
                            f"(row {r0 + row}): every value must be a finite number")
        return block

    def _read(self, r0: int, r1: int) -> np.ndarray:
        if not self.padded:
            return np.asarray(self.array[r0:r1])
        e0 = int(np.searchsorted(self.row_start, r0, side="right")) - 1
        e1 = int(np.searchsorted(self.row_start, r1 - 1, side="right"))
        block = np.asarray(self.array[e0:e1])
        rows = np.arange(r0, r1)
        example = np.searchsorted(self.row_start, rows, side="right") - 1
        t = rows - self.row_start[example]
        if self.padding == "left":
            t = t + block.shape[1] - self.lengths[example]
        return block[example - e0, t]


def array_blocks(tensors: dict[object, StepArray], lengths: np.ndarray, whole_sequences: bool = True,
                 transform: Callable[[object, np.ndarray], np.ndarray] | None = None):
    """``ImportedRun.blocks`` for stored arrays, about ``BLOCK_ROWS`` rows at a time from each tensor.

    A classifier's blocks hold whole sequences (its final prediction is read at the last step); a
    stream (one long sequence) is cut anywhere, so it never has to fit in memory. Each block is
    checked as it is read (``StepArray.read``): NaN or infinite states and predictions are refused
    with a DataError naming the field, sequence, step and unit.
    """
    lengths = np.asarray(lengths, np.int64)
    n_rows, starts = int(lengths.sum()), row_starts(lengths)

    def spans():
        if whole_sequences:
            for first, last in sequence_blocks(lengths, steps.BLOCK_ROWS):
                yield int(starts[first]), int(starts[last - 1] + lengths[last - 1])
        else:
            for r0 in range(0, n_rows, steps.BLOCK_ROWS):
                yield r0, min(r0 + steps.BLOCK_ROWS, n_rows)

    def blocks():
        for r0, r1 in spans():
            out = {}
            for key, array in tensors.items():
                values = array.read(r0, r1).astype(np.float32, copy=False)
                out[key] = transform(key, values) if transform else values
            yield r0, out
    return blocks


def file_fingerprint(path) -> list:
    """Name, size and mtime of a file or of every file under a folder: what an import depends on."""
    return source_listing(path)




def name_predictions(imported: ImportedRun) -> None:
    """Name the columns of a model head's probabilities: the classes, or the vocabulary."""
    width = imported.n_predictions
    if imported.kind == CLASSIFICATION:
        if len(imported.classes) < width:
            imported.classes = imported.classes + [f"class{k}" for k in range(len(imported.classes), width)]
        elif len(imported.classes) > width:
            raise DataError(f"there are {len(imported.classes)} classes but the model's head has {width} outputs")
    else:
        imported.vocabulary = imported.vocabulary or [f"token{k}" for k in range(width)]
        if len(imported.vocabulary) != width:
            raise DataError(f"the model's head has {width} outputs but vocabulary has {len(imported.vocabulary)} entries")


def model_blocks(imported: ImportedRun, weights, inputs: StepArray, scheduler=None) -> None:
    """Make ``imported`` produce its tensors by recomputing ``weights`` on ``inputs``."""
    source = network_source(weights, inputs.read, imported.lengths, scheduler=scheduler)
    imported.widths, imported.blocks = source.widths, source.blocks
    imported.n_predictions = source.n_outputs
