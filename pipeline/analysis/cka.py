"""Linear centred kernel alignment (Kornblith et al. 2019): how alike two runs' representations of
the same examples are, whatever their units' order, rotation or scale (1: the same up to those)."""

from __future__ import annotations

import numpy as np


def linear_cka(a: np.ndarray, b: np.ndarray) -> float:
    """CKA of (n, d1) and (n, d2) matrices whose rows are the same n examples (or steps)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or len(a) != len(b):
        raise ValueError(f"need two (n, d) matrices with the same rows, got {a.shape} and {b.shape}")
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    cross = np.linalg.norm(b.T @ a) ** 2
    norms = np.linalg.norm(a.T @ a) * np.linalg.norm(b.T @ b)
    return float(cross / norms) if norms > 0 else float("nan")
