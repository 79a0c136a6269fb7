"""The one Keras weight reader: a model's numbers as ``core.lstm.NetworkWeights``, checked.

A model is read as a chain:

    [Standardise | Embedding] -> LSTM (-> Dropout) x N -> [LastStep | attention] -> [Dense softmax]

(``Standardise``/``LastStep`` are this project's layers; Dropout does nothing at inference;
attention is this project's pooling: ``Dense(1)`` scores -> ``MaskedSoftmax`` -> ``WeightedSum``,
read as ``NetworkWeights.attention_kernel``/``attention_bias``). Any
other layer is refused with its name: the NumPy recompute would not be the model. LSTMs must use
tanh/sigmoid and run forwards. A softmax Dense head gives per-step probabilities: the head applied
to the last LSTM's h at every step. Our own classifiers, our character LMs and a user's saved
models all go through here.

How sequences start: ``padding="left"`` (the default for float inputs of a fixed length, the
convention of this project's classifiers) runs each sequence after zero frames, left-padded to the
model's input length, as Keras did in training; ``padding="none"`` runs each from a zero state.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np

from pipeline.core.errors import DataError
from pipeline.analysis.layout import row_starts
from pipeline.analysis.lstm import LSTMWeights, NetworkWeights
from pipeline.core.steps import recompute_block
from pipeline.models.layers import LastStep, MaskedSoftmax, Standardise, WeightedSum
from pipeline.runformat import WEIGHTS_FILE

PASS_THROUGH = ("Dropout", "SpatialDropout1D", "GaussianDropout", "GaussianNoise", "ActivityRegularization")


def load_keras_model(path: str | os.PathLike) -> keras.Model:
    """A saved model in safe mode: no code in the file runs while loading."""
    path = Path(path)
    if path.suffix != ".keras":
        raise DataError(f"{path.name}: expected a Keras model saved in the native format (.keras)")
    if not path.is_file():
        raise DataError(f"{path.name}: no such model file")
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as error:      # Keras raises many types for unreadable or unsafe files
        raise DataError(f"{path.name}: cannot load the model in safe mode ({type(error).__name__}: "
                        f"{error})") from None


def save_model(model: keras.Model, path: str | os.PathLike) -> None:
    """Save in Keras' native format under a temporary name, then rename into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_trained(model: keras.Model, run_path: Path, model_file: str,
                 padding: str | None = None) -> tuple[NetworkWeights, list[str]]:
    """A model trained here, saved twice: Keras' native file, and its NumPy weights (the .npz the
    extract stage and the dashboard recompute from). Returns the weights and the files written."""
    save_model(model, run_path / model_file)
    weights, _ = network_weights(model, padding)
    weights.save(run_path / WEIGHTS_FILE)
    return weights, [model_file, WEIGHTS_FILE]


def network_weights(model: keras.Model, padding: str | None = None,
                    any_head: bool = False) -> tuple[NetworkWeights, list]:
    """The model's numbers, and its LSTM layers (for ``check_against_keras``).

    ``any_head``: accept whatever follows the LSTMs (a recording of a user's model); a softmax
    Dense directly on the last LSTM is still read as the per-step head, anything else is left out.
    """
    layers, lstms, head, mean, std, embedding, score = [], [], None, None, None, None, None
    pooled = any(isinstance(layer, MaskedSoftmax) for layer in model.layers)
    for layer in model.layers:
        name = f"layer {layer.name!r} ({type(layer).__name__})"
        if isinstance(layer, keras.layers.InputLayer) or type(layer).__name__ in PASS_THROUGH:
            continue
        if isinstance(layer, keras.layers.Masking) and not lstms:
            continue               # masked steps are skipped: sequences then run from a zero state
        if isinstance(layer, keras.layers.Bidirectional):
            raise DataError(f"{name}: bidirectional LSTMs are not recomputed here (the backward "
                            f"direction reads the future); record a forward LSTM, or export the two "
                            f"directions' states as arrays and import them")
        if head is not None:
            if any_head:
                head = None        # the softmax was not the last layer: no per-step head
                break
            raise DataError(f"{name} comes after the Dense head; only Dense last is supported")
        if isinstance(layer, Standardise) and not lstms and embedding is None:
            mean, std = np.array(layer.mean, np.float32), np.array(layer.std, np.float32)
        elif isinstance(layer, keras.layers.Embedding) and not lstms and mean is None:
            embedding = np.asarray(layer.embeddings.numpy(), np.float32)
        elif isinstance(layer, keras.layers.LSTM):
            config = layer.get_config()
            if config["activation"] != "tanh" or config["recurrent_activation"] != "sigmoid":
                raise DataError(f"{name}: only tanh/sigmoid LSTMs can be recomputed")
            if config.get("go_backwards"):
                raise DataError(f"{name} runs backwards; only forward LSTMs are supported")
            if lstms and not lstms[-1].get_config()["return_sequences"]:
                raise DataError(f"{name} follows an LSTM that returns only its last step")
            cell = layer.cell
            bias = cell.bias.numpy() if cell.use_bias else np.zeros(4 * cell.units, np.float32)
            layers.append(LSTMWeights(cell.kernel.numpy().astype(np.float32),
                                      cell.recurrent_kernel.numpy().astype(np.float32),
                                      np.asarray(bias, np.float32)))
            lstms.append(layer)
        elif isinstance(layer, LastStep) and lstms:
            continue
        elif (pooled and score is None and lstms and isinstance(layer, keras.layers.Dense)
              and layer.units == 1 and layer.get_config()["activation"] == "linear"):
            score = layer
        elif isinstance(layer, (MaskedSoftmax, WeightedSum)) and score is not None:
            continue
        elif isinstance(layer, keras.layers.Dense) and lstms and layer.get_config()["activation"] == "softmax":
            head = layer
        elif lstms and any_head:
            break
        elif isinstance(layer, keras.layers.Dense) and lstms:
            raise DataError(f"{name}: a Dense head must end in softmax (its per-step probabilities "
                            f"are written); remove other Dense layers or import arrays instead")
        else:
            raise DataError(f"{name} is not supported here (supported: [Masking | Standardise | Embedding] "
                            f"-> LSTM x N with Dropout -> [LastStep] -> [Dense softmax])")
    if not lstms:
        raise DataError(f"model {model.name!r} has no LSTM layer")
    time_steps = model.inputs[0].shape[1] if len(model.inputs) == 1 else None
    if padding is None:
        padding = "left" if embedding is None and time_steps else "none"
    if padding not in ("left", "none"):
        raise DataError(f"padding must be 'left' or 'none', not {padding!r}")
    weights = NetworkWeights(
        layers, None if head is None else head.kernel.numpy().astype(np.float32),
        None if head is None else head.bias.numpy().astype(np.float32), mean, std, embedding,
        padding, int(time_steps or 0) if padding == "left" else 0,
        None if score is None else score.kernel.numpy().astype(np.float32),
        None if score is None else score.bias.numpy().astype(np.float32))
    if pooled and (score is None or head is None):
        raise DataError(f"model {model.name!r}: attention pooling needs a Dense(1) score on the last LSTM "
                        f"and a softmax Dense head after it")
    return weights, lstms


def check_against_keras(model: keras.Model, lstms: list, weights: NetworkWeights, x: np.ndarray,
                        lengths: np.ndarray) -> float:
    """Largest |h_numpy - h_keras| over every LSTM layer on the sequences of ``x`` (their rows)."""
    lengths = np.asarray(lengths, np.int64)
    ours = recompute_block((x, lengths), weights)
    probe = keras.Model(model.inputs, [layer.output for layer in lstms])
    T = weights.n_steps if weights.padding == "left" else int(model.inputs[0].shape[1] or lengths.max())
    batch = np.zeros((len(lengths), T, x.shape[1]), x.dtype)
    starts = row_starts(lengths)
    for i, (start, length) in enumerate(zip(starts, lengths)):
        offset = T - length if weights.padding == "left" else 0
        batch[i, offset:offset + length] = x[start:start + length]
    if weights.embedding is not None:
        batch = batch[..., 0]
    inputs = [batch] + [np.zeros((len(lengths), int(t.shape[-1])), np.float32) for t in model.inputs[1:]]
    outputs = probe.predict(inputs if len(inputs) > 1 else batch, verbose=0)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    error = 0.0
    for index, output in enumerate(outputs):
        for i, (start, length) in enumerate(zip(starts, lengths)):
            offset = T - length if weights.padding == "left" else 0
            ours_h = ours[(index, "h")][start:start + length]
            if output.ndim == 2:            # an LSTM that returns only its last (padded) step
                if offset + length != T:
                    continue
                keras_h, ours_h = output[i:i + 1], ours_h[-1:]
            else:
                keras_h = output[i, offset:offset + length]
            error = max(error, float(np.abs(np.asarray(keras_h) - ours_h).max()))
    return error
