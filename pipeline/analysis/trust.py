"""How far to trust a low-dimensional picture of LSTM states: measures that need no TensorFlow.

A 2-D autoencoder picture invites readings like "these two signs end close together". These
functions say how much of that is the network and how much the projection: neighbours kept from
the full space, agreement between autoencoders trained with different seeds (after removing the
rotation, reflection and scale that make two equally good codes look different), and where
misclassified examples fall.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.linalg import orthogonal_procrustes
from scipy.spatial.distance import cdist

# ---------------------------------------------------------------------------------------------
# Aligning codes of different seeds

@dataclass
class Alignment:
    """``x -> scale * (x - source_mean) @ rotation + target_mean``: a similarity transform."""

    rotation: np.ndarray
    scale: float
    source_mean: np.ndarray
    target_mean: np.ndarray
    disparity: float          # residual squared error / target's squared spread, in [0, 1]

    def apply(self, points: np.ndarray) -> np.ndarray:
        return self.scale * (np.asarray(points) - self.source_mean) @ self.rotation + self.target_mean


def procrustes_align(source: np.ndarray, target: np.ndarray) -> Alignment:
    """The rotation/reflection, uniform scale and shift that best map ``source`` onto ``target``.

    Rows are corresponding points (the same examples coded by two autoencoders). Unlike
    ``scipy.spatial.procrustes``, the target keeps its own frame, so every seed can be drawn in the
    coordinates of the first one.
    """
    source, target = np.asarray(source, dtype=float), np.asarray(target, dtype=float)
    if source.shape != target.shape:
        raise ValueError(f"cannot align {source.shape} points onto {target.shape} points")
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    a, b = source - source_mean, target - target_mean
    rotation, singular_sum = orthogonal_procrustes(a, b)
    norm_a = float((a ** 2).sum())
    scale = singular_sum / norm_a if norm_a > 0 else 1.0
    spread = float((b ** 2).sum())
    residual = float(((scale * a @ rotation - b) ** 2).sum())
    return Alignment(rotation, float(scale), source_mean, target_mean,
                     residual / spread if spread > 0 else 0.0)


# ---------------------------------------------------------------------------------------------
# Neighbourhoods

def nearest_neighbours(points: np.ndarray, k: int) -> np.ndarray:
    """Indices of each point's ``k`` nearest other points, nearest first."""
    points = np.asarray(points, dtype=float)
    if not 0 < k < len(points):
        raise ValueError(f"k={k} needs between 1 and {len(points) - 1} neighbours")
    distances = cdist(points, points)
    np.fill_diagonal(distances, np.inf)
    nearest = np.argpartition(distances, k, axis=1)[:, :k]
    order = np.take_along_axis(distances, nearest, axis=1).argsort(axis=1)
    return np.take_along_axis(nearest, order, axis=1)


class Neighbourhoods:
    """The neighbour ranks of the full space, computed once, to score several pictures of it."""

    def __init__(self, full: np.ndarray, k: int = 10):
        full = np.asarray(full, dtype=float)
        if not 0 < k < len(full) / 2:
            raise ValueError(f"k={k} needs between 1 and {len(full) // 2 - 1} neighbours")
        distances = cdist(full, full)
        np.fill_diagonal(distances, np.inf)
        order = np.argsort(distances, axis=1, kind="stable")
        n = len(full)
        self.k = k
        self.nearest = order[:, :k]
        self.rank = np.empty((n, n), dtype=np.int32)          # rank[i, j]: 1 = i's nearest
        self.rank[np.arange(n)[:, None], order] = np.arange(1, n + 1, dtype=np.int32)

    def preservation(self, low: np.ndarray) -> float:
        """Mean over points of the fraction of its ``k`` nearest neighbours in the full space that
        are also among its ``k`` nearest in ``low``: 1.0 when the picture keeps every neighbourhood."""
        low_nearest = nearest_neighbours(low, self.k)
        return float((np.take_along_axis(self.rank, low_nearest, axis=1) <= self.k).mean())

    def trustworthiness(self, low: np.ndarray) -> float:
        """Venna & Kaski's trustworthiness (as ``sklearn.manifold.trustworthiness``): 1 minus a
        penalty for neighbours in ``low`` that are far in the full space, by how far they rank."""
        n, k = len(self.rank), self.k
        excess = np.take_along_axis(self.rank, nearest_neighbours(low, k), axis=1) - k
        return float(1 - excess[excess > 0].sum() * 2 / (n * k * (2 * n - 3 * k - 1)))


def knn_preservation(full: np.ndarray, low: np.ndarray, k: int = 10) -> float:
    """``Neighbourhoods(full, k).preservation(low)``, for a single picture."""
    return Neighbourhoods(full, k).preservation(low)


def knn_label_agreement(points: np.ndarray, labels, k: int = 10) -> float:
    """Mean over points of the fraction of its ``k`` nearest neighbours carrying its label."""
    labels = np.asarray(labels)
    return float((labels[nearest_neighbours(points, k)] == labels[:, None]).mean())


# ---------------------------------------------------------------------------------------------
# Classes

def class_centroids(points: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Mean point per class (NaN rows for classes without examples)."""
    points, labels = np.asarray(points, dtype=float), np.asarray(labels)
    centroids = np.full((n_classes, points.shape[1]), np.nan)
    for c in np.unique(labels):
        centroids[c] = points[labels == c].mean(axis=0)
    return centroids


def centroid_distances(centroids: np.ndarray) -> np.ndarray:
    """Pairwise centroid distances with an infinite diagonal and infinite rows for empty classes."""
    distances = cdist(centroids, centroids)
    distances[np.isnan(distances)] = np.inf
    np.fill_diagonal(distances, np.inf)
    return distances


def nearest_classes(centroids: np.ndarray) -> np.ndarray:
    """Each class's nearest other class (-1 for empty classes)."""
    distances = centroid_distances(centroids)
    nearest = distances.argmin(axis=1)
    nearest[~np.isfinite(distances.min(axis=1))] = -1
    return nearest


def class_rank(distances: np.ndarray, true: int, other: int) -> int:
    """The rank of ``other`` among the classes nearest to ``true`` (1 = the nearest)."""
    return int((distances[true] < distances[true, other]).sum()) + 1


def seed_stability(codes_by_seed: list[np.ndarray], labels: np.ndarray, n_classes: int,
                   full: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-class and per-pair agreement of class neighbourhoods across seeds and with ``full``.

    ``codes_by_seed`` holds the same examples' last-step codes from each seed (aligned or not:
    nearest-class relations do not change under a similarity transform); ``full`` holds their
    full-space last-step states. Returns

    - per class: ``nearest`` (its nearest class in the first seed, the one drawn),
      ``nearest_stability`` (the fraction of the *other* seeds giving it that same nearest class:
      0 never, 1 always; NaN with one seed) and ``nearest_full`` (its nearest class in the full
      space);
    - per unordered pair of classes: ``mutual_nearest``, the fraction of seeds in which the two are
      each other's nearest class; ``either_nearest``, in which at least one is the other's nearest;
      ``mutual_nearest_full``, whether they are mutual nearest in the full space; and ``distance``
      and ``distance_full``, their centroid distance in the first seed and in the full space, each
      divided by the median over pairs, so the two scales compare.
    """
    centroids = [class_centroids(c, labels, n_classes) for c in codes_by_seed]
    nearest = np.array([nearest_classes(c) for c in centroids])
    full_centroids = class_centroids(full, labels, n_classes)
    nearest_full = nearest_classes(full_centroids)
    present = nearest[0] >= 0
    per_class = pd.DataFrame({
        "class": np.arange(n_classes, dtype=np.int32),
        "nearest": nearest[0].astype(np.int32),
        "nearest_stability": (np.where(present, (nearest[1:] == nearest[0]).mean(axis=0), np.nan)
                              if len(nearest) > 1 else np.full(n_classes, np.nan)),
        "nearest_full": nearest_full.astype(np.int32),
    })
    mutual = np.mean([_mutual(row) for row in nearest], axis=0)
    either = np.mean([_one_way(row) | _one_way(row).T for row in nearest], axis=0)
    a, b = np.triu_indices(n_classes, k=1)
    pairs = pd.DataFrame({"class_a": a.astype(np.int32), "class_b": b.astype(np.int32),
                          "mutual_nearest": mutual[a, b].astype(np.float32),
                          "either_nearest": either[a, b].astype(np.float32),
                          "mutual_nearest_full": _mutual(nearest_full)[a, b]})
    for column, cents in (("distance", centroids[0]), ("distance_full", full_centroids)):
        d = cdist(cents, cents)[a, b]
        pairs[column] = (d / np.nanmedian(d)).astype(np.float32)
    return per_class, pairs


def _one_way(nearest: np.ndarray) -> np.ndarray:
    """``m[i, j]``: class ``j`` is class ``i``'s nearest."""
    m = np.zeros((len(nearest), len(nearest)), dtype=bool)
    has = np.flatnonzero(nearest >= 0)
    m[has, nearest[has]] = True
    return m


def _mutual(nearest: np.ndarray) -> np.ndarray:
    m = _one_way(nearest)
    return m & m.T
