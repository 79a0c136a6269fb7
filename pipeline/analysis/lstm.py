"""The one NumPy forward pass of an LSTM network: h, c and the four gates at every real step.

Keras hands back only each layer's h; the views also want c, the gates and the probabilities after
every step, so every run kind recomputes its network here from its weights (float32, Keras' kernel
layout: gate columns i, f, c, o; PyTorch's weights are converted on import). Two layouts:

- **left-padded** (``padding="left"``): each sequence runs after ``n_steps - length`` zero frames,
  as the study's classifiers saw them in training. Before its first real frame every sequence is in
  the same state, so that shared padding trajectory is computed once, and at step ``t`` only the
  sequences already past their padding are updated (a prefix of them, sorted longest first).
- **lanes** (``padding="none"``): each sequence from a zero state; sequences run back to back in
  ``lanes`` side by side, one matrix product per step for all lanes (language models, imports).

``sigmoid(z) = 0.5 tanh(z / 2) + 0.5``: halving the i, f, o columns (exact in floating point) lets one
tanh call serve all four gates. Results equal Keras' and PyTorch's (tests check to 1e-5).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
from threadpoolctl import threadpool_limits

from pipeline.analysis.layout import StepLayout, lane_layout
from pipeline.runformat import GATE_KINDS, SIGMOID_GATES, atomic_path

OPTIONAL_ARRAYS = ("head_kernel", "head_bias", "mean", "std", "embedding", "attention_kernel", "attention_bias")
SATURATION = (0.1, 0.9)   # a sigmoid gate below/above these is "saturated" (shut/open)
PADDINGS = ("left", "none")


@dataclass(frozen=True)
class LSTMWeights:
    kernel: np.ndarray      # (inputs, 4 * units)
    recurrent: np.ndarray   # (units, 4 * units)
    bias: np.ndarray        # (4 * units,)

    @property
    def units(self) -> int:
        return self.recurrent.shape[0]


@dataclass(frozen=True)
class NetworkWeights:
    """Stacked LSTMs and what surrounds them: input standardisation or an embedding, a softmax head."""

    layers: list[LSTMWeights]
    head_kernel: np.ndarray | None = None   # (units of the last layer, outputs): softmax probabilities
    head_bias: np.ndarray | None = None
    mean: np.ndarray | None = None          # per input channel; None when inputs are not standardised
    std: np.ndarray | None = None
    embedding: np.ndarray | None = None     # (vocabulary, dims): inputs are token ids
    padding: str = "none"                   # "left": left-padded to n_steps; "none": from a zero state
    n_steps: int = 0
    # Attention pooling before the head (``analysis.attention``): a score per step, (units, 1) and (1,).
    attention_kernel: np.ndarray | None = None
    attention_bias: np.ndarray | None = None

    def __post_init__(self):
        if self.padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, not {self.padding!r}")
        if self.padding == "left" and self.n_steps < 1:
            raise ValueError("left padding needs n_steps, the padded length")

    @property
    def has_attention(self) -> bool:
        return self.attention_kernel is not None

    @property
    def n_outputs(self) -> int:
        return 0 if self.head_kernel is None else int(self.head_kernel.shape[1])

    def with_padding(self, padding: str, n_steps: int = 0) -> NetworkWeights:
        return replace(self, padding=padding, n_steps=n_steps)

    def save(self, path: str | os.PathLike) -> None:
        """The weights as a plain .npz (no pickle): what the dashboard may recompute from."""
        arrays = {"padding": np.array(self.padding), "n_steps": np.array(self.n_steps)}
        for name in OPTIONAL_ARRAYS:
            value = getattr(self, name)
            if value is not None:
                arrays[name] = np.asarray(value, np.float32)
        for index, layer in enumerate(self.layers):
            arrays[f"layer{index}_kernel"] = layer.kernel
            arrays[f"layer{index}_recurrent"] = layer.recurrent
            arrays[f"layer{index}_bias"] = layer.bias
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> NetworkWeights:
        with np.load(path, allow_pickle=False) as data:
            layers, index = [], 0
            while f"layer{index}_kernel" in data:
                layers.append(LSTMWeights(data[f"layer{index}_kernel"], data[f"layer{index}_recurrent"],
                                          data[f"layer{index}_bias"]))
                index += 1
            optional = {name: data.get(name)
                        for name in OPTIONAL_ARRAYS}
            return cls(layers, padding=str(data["padding"]), n_steps=int(data["n_steps"]), **optional)


def standardise(X: np.ndarray, mean: np.ndarray | None, std: np.ndarray | None) -> np.ndarray:
    """``(X - mean) / std`` on real frames; all-zero frames (the padding) stay exactly zero.

    The mirror of the classifier's ``Standardise`` layer: a saved model takes raw inputs.
    """
    X = np.asarray(X, dtype=np.float32)
    if mean is None:
        return X
    real = np.any(X != 0, axis=-1, keepdims=True)
    scaled = (X - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.where(real, scaled, np.float32(0)).astype(np.float32, copy=False)


def _halved(weights: LSTMWeights) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kernel, recurrent kernel and bias with the sigmoid gates' columns halved (see above)."""
    u = weights.units
    scale = np.full(4 * u, 0.5, dtype=np.float32)
    scale[2 * u:3 * u] = 1.0
    return ((weights.kernel * scale).astype(np.float32), (weights.recurrent * scale).astype(np.float32),
            (weights.bias * scale).astype(np.float32))


def _activate(z: np.ndarray, u: int) -> np.ndarray:
    """Pre-activations (rows, 4u) with halved sigmoid columns -> the gates i, f, g, o, in place."""
    np.tanh(z, out=z)
    for block in (z[..., :2 * u], z[..., 3 * u:]):
        block *= 0.5
        block += 0.5
    return z


def lstm_step(weights: LSTMWeights, x: np.ndarray, h: np.ndarray, c: np.ndarray) -> dict[str, np.ndarray]:
    """One step of one layer for a few rows (x (rows, inputs), h and c (rows, units)): h, c and the
    gates after it. For step-by-step work (a model writing text), where the next input depends
    on the last output."""
    u = weights.units
    z = (x @ weights.kernel + h @ weights.recurrent + weights.bias).astype(np.float32)
    sigmoid = 1.0 / (1.0 + np.exp(-z))
    gates = np.concatenate([sigmoid[:, :2 * u], np.tanh(z[:, 2 * u:3 * u]), sigmoid[:, 3 * u:]], axis=1)
    c = gates[:, u:2 * u] * c + gates[:, :u] * gates[:, 2 * u:3 * u]
    h = gates[:, 3 * u:] * np.tanh(c)
    return _gate_tensors(h.astype(np.float32), c.astype(np.float32), gates.astype(np.float32), u)


def _gate_tensors(h: np.ndarray, c: np.ndarray, z: np.ndarray, u: int) -> dict[str, np.ndarray]:
    out = {"h": h, "c": c}
    for k, kind in enumerate(GATE_KINDS):
        out[kind] = z[:, k * u:(k + 1) * u]
    return out


def padded_layer(weights: LSTMWeights, x_rows: np.ndarray, x_padding: np.ndarray,
                 layout: StepLayout) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """One layer over left-padded sequences; its tensors at the real rows and its padding trajectory.

    ``x_rows`` is the layer's input at the real rows, ``x_padding`` (T, inputs) its input while
    still in the padding (the same for every sequence). The work is laid out time-major: at step
    ``t`` the sequences past their padding are a prefix of them sorted longest first, their rows one
    contiguous block, so the input projection of every row is a single matrix product.
    """
    u, T = weights.units, layout.n_steps
    kernel, recurrent, bias = _halved(weights)
    pads = layout.pads
    h_pad = np.zeros((T, u), np.float32)
    c_pad = np.zeros((T, u), np.float32)
    h = np.zeros((1, u), np.float32)
    c = np.zeros((1, u), np.float32)
    for t in range(int(pads.max())):
        z = _activate(x_padding[t:t + 1] @ kernel + h @ recurrent + bias, u)
        c = z[:, u:2 * u] * c + z[:, :u] * z[:, 2 * u:3 * u]
        h = z[:, 3 * u:] * np.tanh(c)
        h_pad[t], c_pad[t] = h[0], c[0]

    order = np.argsort(pads, kind="stable")            # longest sequences first
    sorted_pads, sorted_starts = pads[order], layout.row_start[order]
    steps = np.arange(int(pads.min()), T)
    active = np.searchsorted(sorted_pads, steps, side="right")     # sequences past their padding
    offsets = np.concatenate([[0], np.cumsum(active)])
    time_major = np.concatenate([sorted_starts[:n] + (t - sorted_pads[:n]) for t, n in zip(steps, active)])

    Z = x_rows[time_major] @ kernel                     # (rows, 4u), becomes the gates in place
    Z += bias
    H = np.empty((layout.n_rows, u), np.float32)
    C = np.empty((layout.n_rows, u), np.float32)
    h = np.zeros((len(order), u), np.float32)          # the state of each sequence, sorted order
    c = np.zeros((len(order), u), np.float32)
    started = 0
    for t, n, lo, hi in zip(steps, active, offsets[:-1], offsets[1:]):
        if n > started and t > 0:                       # these sequences leave the padding now
            h[started:n] = h_pad[t - 1]
            c[started:n] = c_pad[t - 1]
        started = n
        z = Z[lo:hi]
        z += h[:n] @ recurrent
        _activate(z, u)
        c_t, h_t = C[lo:hi], H[lo:hi]
        np.multiply(z[:, u:2 * u], c[:n], out=c_t)
        c_t += z[:, :u] * z[:, 2 * u:3 * u]
        np.tanh(c_t, out=h_t)
        h_t *= z[:, 3 * u:]
        c[:n], h[:n] = c_t, h_t

    rows = np.empty_like(time_major)
    rows[time_major] = np.arange(len(time_major))       # example-major row -> time-major row
    return _gate_tensors(H[rows], C[rows], Z[rows], u), h_pad


def lane_layer(weights: LSTMWeights, x: np.ndarray, lengths: np.ndarray, n_lanes: int = 64,
               chunk: int = 256) -> dict[str, np.ndarray]:
    """One layer over sequences back to back in ``x`` (rows, inputs), each from a zero state.

    BLAS runs single-threaded here: the per-step products are small, and threads fighting over
    busy cores made them 25x slower.
    """
    with threadpool_limits(1, user_api="blas"):
        return _lane_layer(weights, x, lengths, n_lanes, chunk)


def _lane_layer(weights, x, lengths, n_lanes, chunk):
    rows, reset = lane_layout(lengths, n_lanes)
    u = weights.units
    kernel, recurrent, bias = _halved(weights)
    x = np.asarray(x, np.float32)
    out = {kind: np.empty((len(x), u), np.float32) for kind in ("h", "c", *GATE_KINDS)}
    n_lanes, steps = rows.shape
    h = np.zeros((n_lanes, u), np.float32)
    c = np.zeros((n_lanes, u), np.float32)
    for s0 in range(0, steps, chunk):
        block_rows = rows[:, s0:s0 + chunk]
        width = block_rows.shape[1]
        z_in = x[np.maximum(block_rows, 0)] @ kernel + bias            # (lanes, width, 4u)
        z_out = np.empty((n_lanes, width, 4 * u), np.float32)
        h_out = np.empty((n_lanes, width, u), np.float32)
        c_out = np.empty((n_lanes, width, u), np.float32)
        for j in range(width):
            starting = reset[:, s0 + j]
            if starting.any():
                h[starting] = 0
                c[starting] = 0
            z = _activate(z_in[:, j] + h @ recurrent, u)
            c = z[:, u:2 * u] * c + z[:, :u] * z[:, 2 * u:3 * u]
            h = z[:, 3 * u:] * np.tanh(c)
            z_out[:, j], h_out[:, j], c_out[:, j] = z, h, c
        valid = block_rows >= 0
        target = block_rows[valid]
        out["h"][target] = h_out[valid]
        out["c"][target] = c_out[valid]
        z_valid = z_out[valid]
        for k, kind in enumerate(GATE_KINDS):
            out[kind][target] = z_valid[:, k * u:(k + 1) * u]
    return out


def network_inputs(weights: NetworkWeights, x: np.ndarray) -> np.ndarray:
    """What the first LSTM reads at each real row: embedded token ids, or standardised frames."""
    if weights.embedding is not None:
        return weights.embedding[np.asarray(x).reshape(-1)]
    return standardise(x, weights.mean, weights.std)


def layer_steps(weights: NetworkWeights, x_rows: np.ndarray, lengths: np.ndarray,
                n_lanes: int = 64) -> Iterator[dict[str, np.ndarray]]:
    """For each LSTM layer in turn: h, c and the four gates at every real row, (rows, units).

    ``x_rows`` holds the raw inputs of the real rows, sequences back to back ((rows, channels), or
    (rows,) token ids). Layers come one at a time so that a caller can write and drop a layer's
    tensors before the next one is computed.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    x = network_inputs(weights, x_rows)
    if weights.padding == "left":
        layout = StepLayout(lengths, weights.n_steps)
        x_padding = np.zeros((layout.n_steps, x.shape[1]), np.float32)
        for layer in weights.layers:
            tensors, h_pad = padded_layer(layer, x, x_padding, layout)
            yield tensors
            x, x_padding = tensors["h"], h_pad
    else:
        for layer in weights.layers:
            tensors = lane_layer(layer, x, lengths, n_lanes)
            yield tensors
            x = tensors["h"]


def step_probabilities(weights: NetworkWeights, h_rows: np.ndarray) -> np.ndarray:
    """Output probabilities after every step: the softmax head applied to the last layer's h."""
    logits = h_rows @ weights.head_kernel.astype(np.float32) + weights.head_bias.astype(np.float32)
    logits -= logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=1, keepdims=True)
    return logits


def gate_statistics(weights: NetworkWeights, x_rows: np.ndarray, lengths: np.ndarray) -> dict[str, float]:
    """Mean and saturated fraction of each sigmoid gate of each layer over the real steps.

    Keys like ``layer0_forget_gate_mean`` and ``layer0_forget_gate_saturated``.
    """
    stats = {}
    low, high = SATURATION
    for index, tensors in enumerate(layer_steps(weights, x_rows, lengths)):
        for kind in SIGMOID_GATES:
            values = tensors[kind]
            stats[f"layer{index}_{kind}_mean"] = float(values.mean())
            stats[f"layer{index}_{kind}_saturated"] = float(np.mean((values < low) | (values > high)))
    return stats
