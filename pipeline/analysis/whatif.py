"""What if the input were different: edits of a sequence and the network's answer to them, recomputed
with the same NumPy forward pass as extraction (``analysis.lstm``) from a run's ``models/weights.npz``.
Pure, so the dashboard's inspector can call it (no TensorFlow), and the pipeline's occlusion too.

An edited frame is set to the training mean of each channel: after standardisation that is exactly
0, the value the padding has, so "gone" means what the network sees before a sign starts.
"""

from __future__ import annotations

import numpy as np

from pipeline.analysis.lstm import NetworkWeights, layer_steps, step_probabilities


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
    (steps, classes) and the chosen layer's h (steps, units)."""
    frames = np.asarray(frames, np.float32)
    lengths = np.array([len(frames)])
    tensors = list(layer_steps(weights, frames, lengths))
    out = {"h": tensors[layer]["h"]}
    if weights.head_kernel is not None:
        out["probabilities"] = step_probabilities(weights, tensors[-1]["h"])
    return out


def occlusion(weights: NetworkWeights, rows: np.ndarray, lengths: np.ndarray, classes: np.ndarray,
              window: int = 5, batch: int = 4096) -> np.ndarray:
    """Per real step: how much the final probability of ``classes[i]`` (one class per sequence) drops
    when the window of ``window`` frames holding that step is replaced by the neutral frame.

    Windows tile each sequence (0..w-1, w..2w-1, ...). All edited copies of all sequences run in
    batches through the padded or lane forward pass at once; returns (rows,) float32.
    """
    lengths = np.asarray(lengths, np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    neutral = neutral_frame(weights, rows.shape[1])
    base = _final_probabilities(weights, rows, lengths)[np.arange(len(lengths)), classes]
    drop = np.zeros(len(rows), np.float32)
    jobs = [(i, w0) for i, length in enumerate(lengths) for w0 in range(0, int(length), window)]
    for first in range(0, len(jobs), batch):
        chunk = jobs[first:first + batch]
        pieces, chunk_lengths = [], []
        for i, w0 in chunk:
            frames = rows[starts[i]:starts[i] + lengths[i]].copy()
            frames[w0:w0 + window] = neutral
            pieces.append(frames)
            chunk_lengths.append(lengths[i])
        probabilities = _final_probabilities(weights, np.concatenate(pieces), np.array(chunk_lengths))
        for j, (i, w0) in enumerate(chunk):
            stop = min(w0 + window, int(lengths[i]))
            drop[starts[i] + w0:starts[i] + stop] = base[i] - probabilities[j, classes[i]]
    return drop


def _final_probabilities(weights: NetworkWeights, rows: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    *_, last = layer_steps(weights, rows, lengths)
    ends = np.cumsum(lengths) - 1
    return step_probabilities(weights, last["h"][ends])
