"""Import a saved Keras model (``.keras``) and its inputs: every LSTM layer's h, c and gates.

The model is loaded with ``safe_mode=True`` (no code in the file runs) and read as a chain:

    [Standardise | Embedding] -> LSTM (-> Dropout) x N -> [LastStep] -> [Dense softmax]

(``Standardise``/``LastStep`` are this project's layers; Dropout does nothing at inference). Any
other layer is refused with its name: the NumPy recompute (``pipeline.analysis.lstm``) would not be the
model. LSTMs must use tanh/sigmoid and run forwards. A softmax Dense head gives per-step class (or
next-token) probabilities: the head applied to the last LSTM's h at every step.

How sequences start: ``padding="left"`` (default for float inputs of a fixed length, the
convention of this project's classifiers) runs each sequence after zero frames, left-padded to the
model's input length, as Keras did in training; ``padding="none"`` runs each sequence from a zero
state (models on token ids, or trained on ragged or masked batches).

The weights are read by ``models.keras_weights``, the reader of this project's own models too.
Before anything is written the recompute is checked against the model itself: the h of every
LSTM layer, by Keras, for the first ``CHECK_SEQUENCES`` sequences, to ``tolerance``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.core.errors import DataError
from pipeline.analysis.lstm import NetworkWeights
from pipeline.importers.arrays import channel_names, detect_format, from_fields, open_fields, safe_name
from pipeline.importers.base import ImportedRun, StepArray, file_fingerprint, model_blocks, name_predictions

CHECK_SEQUENCES = 8


def read_keras(model_path, inputs_path, padding: str | None = None, name: str | None = None,
               scheduler=None, tolerance: float = 1e-5) -> ImportedRun:
    """The run of a saved Keras model on the sequences in ``inputs_path`` (npz/HDF5/parquet).

    The inputs file holds ``inputs`` (flat (steps, channels) with lengths/offsets, or padded
    (sequences, steps, channels) with lengths; token ids for an Embedding model) and any of the
    per-sequence and per-step fields of an arrays import (labels, classes, split, tokens, ...).
    """
    inputs_path = Path(inputs_path)
    if not inputs_path.exists():
        raise DataError(f"{inputs_path}: no such inputs file")
    from pipeline.models.keras_weights import check_against_keras, load_keras_model, network_weights
    model = load_keras_model(model_path)
    weights, lstms = network_weights(model, padding)
    fields = dict(open_fields(inputs_path, detect_format(inputs_path)))
    if "inputs" not in fields:
        raise DataError(f"{inputs_path}: no field named inputs (the model's input sequences)")
    fields["inputs"] = _input_field(fields["inputs"], weights, inputs_path)
    imported = from_fields(fields, name or safe_name(Path(model_path)), str(Path(model_path).resolve()),
                           "keras", fingerprint=[file_fingerprint(model_path), file_fingerprint(inputs_path)],
                           extra_fields=("inputs",))
    lengths = imported.lengths
    padding_of_inputs = imported.options["padding"]
    inputs = StepArray("inputs", fields["inputs"], lengths, padding_of_inputs)
    if weights.padding == "left":
        n_steps = weights.n_steps or int(lengths.max())
        if lengths.max() > n_steps:
            raise DataError(f"a sequence has {int(lengths.max())} steps but the model reads {n_steps}")
        weights = weights.with_padding("left", n_steps)
    _check_channels(model, weights, inputs, inputs_path)
    sample = lengths[:CHECK_SEQUENCES]
    error = check_against_keras(model, lstms, weights, inputs.read(0, int(sample.sum())), sample)
    if error > tolerance:
        raise DataError(f"the NumPy recompute differs from Keras by {error:.2e} (> {tolerance:g}) on "
                        f"the first sequences: the model has something the recompute does not know; "
                        f"export its states yourself and import arrays (try --padding none/left)")
    model_blocks(imported, weights, inputs, scheduler)
    if imported.n_predictions:
        name_predictions(imported)
    if weights.embedding is None:
        imported.inputs = inputs
        imported.channels = channel_names(fields, inputs.width, inputs_path)
    imported.options = {"padding": weights.padding, "inputs_padding": padding_of_inputs,
                        "inputs": str(inputs_path.resolve())}
    imported.notes = {"model": {"file": Path(model_path).name, "layers": len(weights.layers),
                                "padding": weights.padding, "n_steps": weights.n_steps,
                                "checked_sequences": min(CHECK_SEQUENCES, len(lengths)),
                                "max_abs_difference_h": float(error)}}
    return imported


def _input_field(field, weights: NetworkWeights, path):
    values = np.asarray(field[()])          # numpy, npz member or HDF5 dataset
    if weights.embedding is not None:
        if not np.issubdtype(values.dtype, np.integer):
            raise DataError(f"{path}: inputs has dtype {values.dtype}, expected integer token ids "
                            f"(the model starts with an Embedding)")
        if values.size and (values.min() < 0 or values.max() >= len(weights.embedding)):
            raise DataError(f"{path}: inputs holds token id {int(values.max())}, but the Embedding has "
                            f"{len(weights.embedding)} entries")
        return values[..., None]
    if not np.issubdtype(values.dtype, np.floating):
        raise DataError(f"{path}: inputs has dtype {values.dtype}, expected floating point")
    return values


def _check_channels(model, weights, inputs, path):
    if weights.embedding is not None:
        return
    expected = model.inputs[0].shape[-1]
    if expected is not None and inputs.width != expected:
        raise DataError(f"{path}: inputs has {inputs.width} channels but the model reads {expected}")
