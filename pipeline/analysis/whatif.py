"""What if the input were different: edits of a sequence and the network's answer to them, recomputed
with the same NumPy forward pass as extraction (``analysis.lstm``) from a run's ``models/weights.npz``.
Pure, so the dashboard's inspector can call it (no TensorFlow), and the pipeline's occlusion too.

An edited frame is set to the training mean of each channel: after standardisation that is exactly
0, the value the padding has, so "gone" means what the network sees before a sign starts.
"""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits

from pipeline.analysis.attention import attention_weights, head_probabilities
from pipeline.analysis.layout import row_starts
from pipeline.analysis.lstm import (NetworkWeights, _activate, _halved, layer_steps, lstm_step, network_inputs,
                                    step_probabilities)


def neutral_frame(weights: NetworkWeights, n_channels: int) -> np.ndarray:
    """The raw frame that standardises to 0 (the channel means), or zeros without standardisation."""
    return (np.zeros(n_channels, np.float32) if weights.mean is None
            else np.asarray(weights.mean, np.float32))


def mask_window(frames: np.ndarray, weights: NetworkWeights, start: int, stop: int) -> np.ndarray:
    """``frames`` (steps, channels) with steps ``start:stop`` replaced by the neutral frame."""
    edited = np.array(frames, np.float32, copy=True)
    edited[max(start, 0):max(stop, 0)] = neutral_frame(weights, frames.shape[1])
    return edited


def drop_channels(frames: np.ndarray, weights: NetworkWeights, channels) -> np.ndarray:
    """``frames`` with some channels (e.g. one hand's) held at their neutral value throughout."""
    edited = np.array(frames, np.float32, copy=True)
    channels = list(channels)
    edited[:, channels] = neutral_frame(weights, frames.shape[1])[channels]
    return edited


def cut_at(frames: np.ndarray, step: int) -> np.ndarray:
    """The sequence's first ``step`` frames (at least one): the sign stopped early."""
    return np.array(frames[:max(1, int(step))], np.float32, copy=True)


def answer(weights: NetworkWeights, frames: np.ndarray, layer: int = -1) -> dict[str, np.ndarray]:
    """The network on one sequence of real frames: the class probabilities after every step
    (steps, classes; an attention network's pools the steps so far) and the chosen layer's h
    (steps, units); an attention network's weights over the frames too (``attention``, (steps,))."""
    frames = np.asarray(frames, np.float32)
    lengths = np.array([len(frames)])
    tensors = list(layer_steps(weights, frames, lengths))
    out = {"h": tensors[layer]["h"]}
    if weights.head_kernel is not None:
        out["probabilities"] = head_probabilities(weights, tensors[-1]["h"], lengths)
    if weights.has_attention:
        out["attention"] = attention_weights(weights, tensors[-1]["h"], lengths)
    return out


def occlusion(weights: NetworkWeights, rows: np.ndarray, lengths: np.ndarray, classes: np.ndarray,
              window: int = 5, batch: int = 1024) -> np.ndarray:
    """Per real step: how much the final probability of ``classes[i]`` (one class per sequence) drops
    when the window of ``window`` frames holding that step is replaced by the neutral frame.

    Windows tile each sequence (0..w-1, w..2w-1, ...). A window at step s leaves the states before s
    as they were, so each edited copy runs from the sequence's own states at s - 1 (one pass over
    the sequences) over its steps s.. only, ``batch`` copies at a time: half the work of running
    every copy from the start. BLAS runs single-threaded, as in ``analysis.lstm.lane_layer`` (on
    the Auslan run at load 6: 4 s against 20 s with two threads). Returns (rows,) float32.
    """
    if weights.has_attention:
        raise ValueError("occlusion runs each copy to its last step's h: not an attention model's answer")
    with threadpool_limits(1, user_api="blas"):
        return _occlusion(weights, rows, lengths, classes, window, batch)


def _occlusion(weights, rows, lengths, classes, window, batch):
    lengths = np.asarray(lengths, np.int64)
    classes = np.asarray(classes, np.int64)
    starts = row_starts(lengths)
    x = network_inputs(weights, rows)                   # standardised: the neutral frame is 0
    states = [(tensors["h"], tensors["c"]) for tensors in layer_steps(weights, rows, lengths)]
    base = step_probabilities(weights, states[-1][0][starts + lengths - 1])[np.arange(len(lengths)), classes]
    pads = weights.n_steps - lengths if weights.padding == "left" else np.zeros_like(lengths)
    padding = _padding_states(weights, int(pads.max(initial=0)), x.shape[1])
    per_sequence = -(-lengths // window)
    sequence = np.repeat(np.arange(len(lengths)), per_sequence)
    first = (np.arange(len(sequence)) - np.repeat(row_starts(per_sequence), per_sequence)) * window
    drop = np.zeros(len(rows), np.float32)
    for lo in range(0, len(sequence), batch):
        i, w0 = sequence[lo:lo + batch], first[lo:lo + batch]
        before = np.maximum(starts[i] + w0 - 1, 0)
        initial = [(np.where((w0 > 0)[:, None], h[before], h_pad[pads[i]]),
                    np.where((w0 > 0)[:, None], c[before], c_pad[pads[i]]))
                   for (h, c), (h_pad, c_pad) in zip(states, padding)]
        final = _run_from(weights, x, starts[i] + w0, lengths[i] - w0, window, initial)
        edited = step_probabilities(weights, final)[np.arange(len(i)), classes[i]]
        width = np.minimum(window, lengths[i] - w0)
        at = np.repeat(starts[i] + w0 - row_starts(width), width) + np.arange(width.sum())
        drop[at] = np.repeat(base[i] - edited, width)
    return drop


def _padding_states(weights: NetworkWeights, steps: int, n_inputs: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per layer, h and c after 0..``steps`` zero frames (the left padding), (steps + 1, units)."""
    x = np.zeros((steps, n_inputs), np.float32)
    out = []
    for layer in weights.layers:
        h = np.zeros((steps + 1, layer.units), np.float32)
        c = np.zeros((steps + 1, layer.units), np.float32)
        for t in range(steps):
            step = lstm_step(layer, x[t:t + 1], h[t:t + 1], c[t:t + 1])
            h[t + 1], c[t + 1] = step["h"][0], step["c"][0]
        out.append((h, c))
        x = h[1:]
    return out


def _run_from(weights: NetworkWeights, x: np.ndarray, first: np.ndarray, steps: np.ndarray, window: int,
              initial: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The last layer's final h of copies that run from the states ``initial`` (per layer) over
    ``x[first[j]:first[j] + steps[j]]`` with their first ``window`` frames neutral (0).

    Time-major and aligned at their ends, longest first: at each step the running copies are a
    prefix of them, their rows one contiguous block (as ``analysis.lstm.padded_layer``).
    """
    order = np.argsort(-steps, kind="stable")
    longest = int(steps[order[0]])
    active = np.searchsorted(-steps[order], np.arange(longest) - longest, side="right")
    bounds = np.concatenate([[0], np.cumsum(active)])
    job = np.concatenate([np.arange(n) for n in active])
    offset = np.concatenate([t - (longest - steps[order[:n]]) for t, n in zip(range(longest), active)])
    inputs = x[first[order][job] + offset]
    inputs[offset < window] = 0
    for layer, (h0, c0) in zip(weights.layers, initial):
        kernel, recurrent, bias = _halved(layer)
        u = layer.units
        Z = inputs @ kernel
        Z += bias
        h, c = h0[order], c0[order]
        for n, lo, hi in zip(active, bounds[:-1], bounds[1:]):
            z = Z[lo:hi]
            z += h[:n] @ recurrent
            _activate(z, u)
            c[:n] = z[:, u:2 * u] * c[:n] + z[:, :u] * z[:, 2 * u:3 * u]
            h[:n] = z[:, 3 * u:] * np.tanh(c[:n])
            Z[lo:hi, :u] = h[:n]                        # this layer's output, the next one's input
        inputs = Z[:, :u]
    final = np.empty_like(h)
    final[order] = h
    return final
