"""Import a PyTorch ``nn.LSTM`` model (a state_dict) and its inputs: h, c and gates of every layer.

No pickle of user files: the weights are read with ``torch.load(weights_only=True)`` (tensors and
plain containers only) into an ``nn.LSTM(input_size, hidden_size, num_layers, batch_first=True)``
built from the command line's description, so nothing in the file can run code. We do not take
TorchScript files: loading one runs the program it holds, and it hides the module structure the
recompute needs (and TorchScript is deprecated in recent PyTorch).

The state_dict may hold more than the LSTM (a whole model's): the LSTM's keys are found by their
suffixes (``weight_ih_l0`` ...; ``--prefix`` picks one LSTM when there are several). A softmax
head, if any, is a Linear layer named by ``--head`` (e.g. ``fc``), or found when exactly one
Linear reads the LSTM's hidden size; its per-step probabilities are written.

PyTorch's gate order is i, f, g, o in ``weight_ih_l{k}`` (4*hidden, input) and ``weight_hh_l{k}``
(4*hidden, hidden), with two biases ``bias_ih`` + ``bias_hh``; that is Keras' column layout
(i, f, c, o) once transposed, so the recompute is ``pipeline``'s own. Every sequence starts from
a zero state (PyTorch's default for a packed or single sequence). Before anything is written the
recompute is checked against ``nn.LSTM`` itself on the first sequences: the last layer's output at
every step and each layer's final h and c, to ``tolerance`` (1e-5).

PyTorch is optional: this module imports it only when called, and says how to install it.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from pipeline.core.errors import DataError
from pipeline.analysis.layout import row_starts
from pipeline.analysis.lstm import LSTMWeights, NetworkWeights
from pipeline.core.steps import recompute_block
from pipeline.importers.arrays import channel_names, detect_format, from_fields, open_fields, safe_name
from pipeline.importers.base import ImportedRun, StepArray, file_fingerprint, model_blocks, name_predictions

CHECK_SEQUENCES = 16
LSTM_KEY = re.compile(r"^(.*?)weight_ih_l(\d+)$")
LSTM_PARAMETER = re.compile(r"(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l\d+(_reverse)?")


def _torch():
    try:
        import torch
    except ImportError:
        raise DataError("PyTorch is not installed; `pip install torch` to import PyTorch models "
                        "(or export the states and import arrays)") from None
    return torch


def load_state_dict(path) -> dict:
    torch = _torch()
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such weights file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:   # torch raises UnpicklingError, RuntimeError, ... for refused files
        raise DataError(f"{path}: not a state_dict that loads with weights_only=True "
                        f"({type(error).__name__}: {str(error).splitlines()[0]}); save it with "
                        f"torch.save(model.state_dict(), path)") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(hasattr(v, "shape") for v in state.values()):
        raise DataError(f"{path}: expected a state_dict (names -> tensors), got {type(state).__name__}")
    return state


def lstm_prefix(state: dict, prefix: str | None, path) -> str:
    prefixes = sorted({m.group(1) for key in state if (m := LSTM_KEY.match(key))})
    if prefix is not None:
        prefix = prefix if not prefix or prefix.endswith(".") else prefix + "."
        if prefix not in prefixes:
            raise DataError(f"{path}: no LSTM weights under {prefix!r} (found: {prefixes or 'none'})")
        return prefix
    if not prefixes:
        raise DataError(f"{path}: no nn.LSTM weights (keys ending in weight_ih_l0)")
    if len(prefixes) > 1:
        raise DataError(f"{path}: several LSTMs ({', '.join(p or '<root>' for p in prefixes)}); pick one with --prefix")
    return prefixes[0]


def build_lstm(state: dict, prefix: str, input_size: int, hidden_size: int, num_layers: int, path):
    """The nn.LSTM the arguments describe, with the file's weights (strict: every key must fit)."""
    torch = _torch()
    lstm = torch.nn.LSTM(input_size, hidden_size, num_layers, batch_first=True)
    own = {key[len(prefix):]: value for key, value in state.items()
           if key.startswith(prefix) and LSTM_PARAMETER.fullmatch(key[len(prefix):])}
    try:
        lstm.load_state_dict(own, strict=True)
    except RuntimeError as error:
        raise DataError(f"{path}: the LSTM weights under {prefix or '<root>'!r} do not fit "
                        f"nn.LSTM(input_size={input_size}, hidden_size={hidden_size}, "
                        f"num_layers={num_layers}): {str(error).strip()}") from None
    return lstm.eval()


def head_weights(state: dict, prefix: str, head: str | None, hidden_size: int, path):
    """(kernel (hidden, classes), bias) of the softmax head, or (None, None)."""
    candidates = sorted(key[:-len("weight")] for key, value in state.items()
                        if key.endswith("weight") and len(value.shape) == 2 and value.shape[1] == hidden_size
                        and not key.startswith(prefix or "\0") and f"{key[:-len('weight')]}bias" in state)
    if head is not None:
        head = head if head.endswith(".") else head + "."
        if f"{head}weight" not in state:
            raise DataError(f"{path}: no Linear weights {head}weight for --head")
        weight = state[f"{head}weight"]
        if len(weight.shape) != 2 or weight.shape[1] != hidden_size:
            raise DataError(f"{path}: {head}weight has shape {tuple(weight.shape)}, expected "
                            f"(classes, {hidden_size}) to read the LSTM's h")
    elif len(candidates) == 1:
        head = candidates[0]
    else:
        return None, None, candidates
    bias = state.get(f"{head}bias")
    kernel = state[f"{head}weight"].detach().numpy().T.astype(np.float32)
    bias = (np.zeros(kernel.shape[1], np.float32) if bias is None else bias.detach().numpy().astype(np.float32))
    return kernel, bias, [head]


def torch_weights(lstm, kernel=None, bias=None) -> NetworkWeights:
    """PyTorch's (4h, in) weights, gate rows i, f, g, o -> Keras' (in, 4h) columns i, f, c, o."""
    layers = []
    for k in range(lstm.num_layers):
        w_ih = getattr(lstm, f"weight_ih_l{k}").detach().cpu().numpy()
        w_hh = getattr(lstm, f"weight_hh_l{k}").detach().cpu().numpy()
        b = ((getattr(lstm, f"bias_ih_l{k}") + getattr(lstm, f"bias_hh_l{k}")).detach().cpu().numpy()
             if lstm.bias else np.zeros(w_ih.shape[0], np.float32))
        layers.append(LSTMWeights(np.ascontiguousarray(w_ih.T, np.float32),
                                  np.ascontiguousarray(w_hh.T, np.float32), b.astype(np.float32)))
    return NetworkWeights(layers, kernel, bias, padding="none")


def check_against_torch(lstm, weights: NetworkWeights, inputs: StepArray, lengths) -> float:
    """Largest |ours - PyTorch| over the last layer's output and every layer's final h and c."""
    torch = _torch()
    n = min(CHECK_SEQUENCES, len(lengths))
    sample = np.asarray(lengths[:n])
    x = inputs.read(0, int(sample.sum())).astype(np.float32)
    ours = recompute_block((x, sample), weights)
    starts = row_starts(sample)
    last = len(weights.layers) - 1
    error = 0.0
    with torch.no_grad():
        for start, length in zip(starts, sample):
            sequence = torch.from_numpy(np.ascontiguousarray(x[start:start + length]))[None]
            output, (h_n, c_n) = lstm(sequence)
            rows = slice(start, start + length)
            error = max(error, float(np.abs(output[0].numpy() - ours[(last, "h")][rows]).max()))
            for k in range(len(weights.layers)):
                error = max(error, float(np.abs(h_n[k, 0].numpy() - ours[(k, "h")][start + length - 1]).max()),
                            float(np.abs(c_n[k, 0].numpy() - ours[(k, "c")][start + length - 1]).max()))
    return error


def read_torch(weights_path, inputs_path, input_size: int, hidden_size: int, num_layers: int = 1,
               prefix: str | None = None, head: str | None = None, name: str | None = None,
               scheduler=None, tolerance: float = 1e-5) -> ImportedRun:
    """The run of an nn.LSTM state_dict on the sequences in ``inputs_path`` (see keras_model)."""
    inputs_path = Path(inputs_path)
    if not inputs_path.exists():
        raise DataError(f"{inputs_path}: no such inputs file")
    state = load_state_dict(weights_path)
    prefix = lstm_prefix(state, prefix, weights_path)
    lstm = build_lstm(state, prefix, input_size, hidden_size, num_layers, weights_path)
    kernel, bias, heads = head_weights(state, prefix, head, hidden_size, weights_path)
    weights = torch_weights(lstm, kernel, bias)
    fields = dict(open_fields(inputs_path, detect_format(inputs_path)))
    if "inputs" not in fields:
        raise DataError(f"{inputs_path}: no field named inputs (the model's input sequences)")
    values = np.asarray(fields["inputs"][()])
    if not np.issubdtype(values.dtype, np.floating):
        raise DataError(f"{inputs_path}: inputs has dtype {values.dtype}, expected floating point")
    if values.shape[-1] != input_size:
        raise DataError(f"{inputs_path}: inputs has {values.shape[-1]} channels but --input-size is {input_size}")
    fields["inputs"] = values
    imported = from_fields(fields, name or safe_name(Path(weights_path)), str(Path(weights_path).resolve()),
                           "torch", fingerprint=[file_fingerprint(weights_path), file_fingerprint(inputs_path)],
                           extra_fields=("inputs",))
    inputs = StepArray("inputs", values, imported.lengths, imported.options["padding"])
    error = check_against_torch(lstm, weights, inputs, imported.lengths)
    if error > tolerance:
        raise DataError(f"the NumPy recompute differs from PyTorch by {error:.2e} (> {tolerance:g})")
    model_blocks(imported, weights, inputs, scheduler)
    if imported.n_predictions:
        name_predictions(imported)
    imported.inputs, imported.channels = inputs, channel_names(fields, inputs.width, inputs_path)
    imported.options = {"input_size": input_size, "hidden_size": hidden_size, "num_layers": num_layers,
                        "prefix": prefix, "head": heads[0] if kernel is not None else None,
                        "inputs_padding": imported.options["padding"], "inputs": str(inputs_path.resolve())}
    imported.notes = {"model": {"file": Path(weights_path).name, "framework": "pytorch",
                                "padding": "none (each sequence from a zero state)",
                                "checked_sequences": min(CHECK_SEQUENCES, len(imported.lengths)),
                                "max_abs_difference": float(error),
                                "head_candidates": heads if kernel is None else []}}
    return imported
