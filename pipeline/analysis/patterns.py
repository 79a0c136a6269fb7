"""The on/off patterns of many phrases (LSTMVis, Strobelt et al. 2017, Figure 9).

A phrase is a maximal run of characters with one annotation value inside one document (a
bracket-depth segment, a quoted span, a run of one token type). Its pattern is the set of cells
that stay above the threshold throughout it, LSTMVis' "on" cells. If patterns of phrases of one
class resemble each other more than those of other classes, the network keeps that class in a
few cells: the separation score is the leave-one-out k-nearest-neighbour accuracy of the class
from the pattern (Hamming distance), against the accuracy of always guessing the commonest class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_PHRASES = 3000          # phrases taken at most (evenly spread over the text): k-NN is quadratic
K = 5


@dataclass(frozen=True)
class Phrases:
    starts: np.ndarray      # first row of each phrase
    ends: np.ndarray        # row after its last
    values: np.ndarray      # its annotation value
    n_found: int            # phrases in the whole text, before the spread sample


def phrases(values: np.ndarray, document_starts: np.ndarray, min_length: int = 2,
            limit: int = MAX_PHRASES) -> Phrases:
    """The maximal runs of one value, split at document starts, of at least ``min_length`` rows."""
    values = np.asarray(values)
    n = len(values)
    if n == 0:
        return Phrases(*(np.zeros(0, np.int64),) * 3, n_found=0)
    change = np.ones(n, dtype=bool)
    change[1:] = values[1:] != values[:-1]
    starts_at = np.asarray(document_starts, np.int64)
    change[starts_at[(starts_at >= 0) & (starts_at < n)]] = True
    starts = np.flatnonzero(change)
    ends = np.append(starts[1:], n)
    keep = ends - starts >= max(int(min_length), 1)
    starts, ends = starts[keep], ends[keep]
    found = len(starts)
    if found > limit:
        chosen = np.linspace(0, found - 1, limit).round().astype(np.int64)
        starts, ends = starts[chosen], ends[chosen]
    return Phrases(starts, ends, values[starts], found)


def on_patterns(states: np.ndarray, found: Phrases, threshold: float) -> np.ndarray:
    """(phrases, cells) booleans: the cell stays above ``threshold`` over the whole phrase."""
    patterns = np.zeros((len(found.starts), states.shape[1]), dtype=bool)
    for i, (start, end) in enumerate(zip(found.starts, found.ends)):
        patterns[i] = states[start:end].min(axis=0) > threshold
    return patterns


def knn_accuracy(patterns: np.ndarray, labels: np.ndarray, k: int = K) -> float:
    """Leave-one-out k-NN accuracy under Hamming distance (a tie goes to the nearer class)."""
    n = len(labels)
    if n <= k:
        return float("nan")
    a = patterns.astype(np.float32)
    distance = a @ (1 - a).T + (1 - a) @ a.T
    np.fill_diagonal(distance, np.inf)
    neighbours = np.argsort(distance, axis=1, kind="stable")[:, :k]
    codes, encoded = np.unique(labels, return_inverse=True)
    votes = np.zeros((n, len(codes)))
    for rank in range(k):
        votes[np.arange(n), encoded[neighbours[:, rank]]] += 1 + (k - rank) * 1e-3
    return float(np.mean(votes.argmax(axis=1) == encoded))


def commonest_share(labels: np.ndarray) -> float:
    """Accuracy of always guessing the commonest class: the chance level the score is read against."""
    if len(labels) == 0:
        return float("nan")
    return float(np.unique(labels, return_counts=True)[1].max() / len(labels))


def pca_2d(patterns: np.ndarray) -> np.ndarray:
    """(phrases, 2) PCA coordinates of the patterns (zeros where they do not vary)."""
    x = patterns.astype(np.float64)
    x -= x.mean(axis=0)
    if not np.any(x):
        return np.zeros((len(x), 2))
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    coords = x @ vt[:2].T
    return np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
