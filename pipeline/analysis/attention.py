"""Attention pooling in NumPy: the mirror of the classifier's ``MaskedSoftmax`` and ``WeightedSum``.

A network with ``attention_kernel`` scores every real step of its last LSTM's h
(``s_t = h_t . k + b``), takes the softmax of the scores over a sequence's real steps (the padding
never enters: rows here are real steps only) and feeds the weighted sum of h to its softmax head.

Per-step probabilities ("the answer after step t") are the head on the attention pooling of steps
0..t: the sequence stopped at t. At a sequence's last step that is the model's own answer. The
head is linear in the pooled h, so the prefix poolings are cumulative sums of ``e_i (h_i K)``.
Sums run in float64 from each sequence's largest score (a prefix whose scores all lie over 700
below it would underflow: not a trained network's range).
"""

from __future__ import annotations

import numpy as np

from pipeline.analysis.layout import row_ids, row_starts
from pipeline.analysis.lstm import NetworkWeights, step_probabilities


def step_scores(weights: NetworkWeights, h_rows: np.ndarray) -> np.ndarray:
    """The attention score of every row, (rows,) float64."""
    kernel = np.asarray(weights.attention_kernel, np.float64).reshape(-1)
    bias = float(np.asarray(weights.attention_bias, np.float64).reshape(-1)[0])
    return np.asarray(h_rows, np.float64) @ kernel + bias


def _exp_scores(weights: NetworkWeights, h_rows: np.ndarray, lengths: np.ndarray):
    lengths = np.asarray(lengths, np.int64)
    if np.any(lengths < 1):
        raise ValueError("attention needs sequences of at least one step")
    scores = step_scores(weights, h_rows)
    starts = row_starts(lengths)
    ids, _ = row_ids(lengths)
    exp = np.exp(scores - np.maximum.reduceat(scores, starts)[ids])
    return exp, starts, ids


def attention_weights(weights: NetworkWeights, h_rows: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Each real step's attention weight over its whole sequence, (rows,) float32: sums to 1 per sequence."""
    exp, starts, ids = _exp_scores(weights, h_rows, lengths)
    return (exp / np.add.reduceat(exp, starts)[ids]).astype(np.float32)


def pooled_probabilities(weights: NetworkWeights, h_rows: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The head's probabilities after every step on the attention pooling of the steps so far, (rows, outputs)."""
    exp, starts, _ = _exp_scores(weights, h_rows, lengths)
    projected = np.asarray(h_rows, np.float64) @ np.asarray(weights.head_kernel, np.float64)
    numerator = _segment_cumsum(exp[:, None] * projected, starts)
    denominator = _segment_cumsum(exp, starts)
    logits = numerator / denominator[:, None] + np.asarray(weights.head_bias, np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=1, keepdims=True)
    return logits.astype(np.float32)


def head_probabilities(weights: NetworkWeights, h_rows: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Per-step probabilities of any network with a head: attention pooling where it has one,
    else the head on each step's h."""
    if weights.has_attention:
        return pooled_probabilities(weights, h_rows, lengths)
    return step_probabilities(weights, h_rows)


def _segment_cumsum(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Cumulative sums along axis 0 that restart at every ``starts`` row."""
    total = np.cumsum(values, axis=0)
    before = np.concatenate([np.zeros_like(total[:1]), total[starts[1:] - 1]])
    return total - np.repeat(before, np.diff(np.append(starts, len(values))), axis=0)
