"""Hand usage of glove-recorded signs: one-handed or two-handed, from how much each hand moves.

The measure is the left hand's mean frame-to-frame movement divided by the right hand's, where a
hand's movement is the mean absolute change of its position channels (x, y, z) between consecutive
*real* frames. Padding frames are never looked at, so the ratio does not depend on how much padding
there is (the study's version, the smallest 950 absolute differences of the padded sequence, did).

Why positions only: a resting hand's orientation and finger-bend sensors still jitter from frame to
frame, and that jitter can be as large as a moving hand's per-frame change. On the synthetic signs,
all eleven channels give a resting left hand a ratio of about 0.85; the positions give 0.06-0.23
for every one-handed sign and 0.6-1.04 for every two-handed one. On Auslan the positions give a
clearly bimodal ratio (modes near 0.04 and 0.8, 6.5% of examples between 0.15 and 0.35), and
98.4% of examples get the label of their sign's majority.

Why 0.25: it is the study's threshold and it sits in the valley between the two modes. On
Auslan it labels 54% of the examples one-handed, as the data's SOURCE.md reports ("in 55% of
signs the left hand's mean change is below 0.25 x the right's").

Channels count as positions when their names end in ``_x``, ``_y`` or ``_z``; a data set whose
hand channels are named otherwise is measured on all of each hand's channels.
Pure NumPy/pandas: the dashboard may import it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.datasets import SequenceDataset

ONE_HANDED_BELOW = 0.25
ONE_HANDED, TWO_HANDED = "one-handed", "two-handed"


def mean_movement(frames: np.ndarray) -> float:
    """Mean absolute change between consecutive frames, over frames and channels (0 for < 2 frames)."""
    if len(frames) < 2:
        return 0.0
    return float(np.abs(np.diff(frames, axis=0)).mean())


def position_channels(dataset: SequenceDataset, hand: str) -> list[int]:
    """The hand's x, y, z channels by name; all of the hand's channels if none is named so."""
    channels = dataset.hands[hand]
    positions = [c for c in channels if dataset.channels[c].rsplit("_", 1)[-1] in ("x", "y", "z")]
    return positions or list(channels)


def hand_ratios(dataset: SequenceDataset) -> np.ndarray:
    """Left-hand movement / right-hand movement per example, over real frames only.

    NaN where the right hand does not move at all (the ratio says nothing there).
    """
    left, right = position_channels(dataset, "left"), position_channels(dataset, "right")
    ratios = np.full(len(dataset.X), np.nan)
    for i in range(len(dataset.X)):
        frames = dataset.real_steps(i)
        moved_right = mean_movement(frames[:, right])
        if moved_right > 0:
            ratios[i] = mean_movement(frames[:, left]) / moved_right
    return ratios


def hand_usage(ratios: np.ndarray, threshold: float = ONE_HANDED_BELOW) -> np.ndarray:
    """``"one-handed"`` where the left hand moves less than ``threshold`` x the right, else two-handed.

    A NaN ratio (the right hand never moves) gets no label: None.
    """
    ratios = np.asarray(ratios, dtype=float)
    labels = np.where(ratios < threshold, ONE_HANDED, TWO_HANDED).astype(object)
    labels[np.isnan(ratios)] = None
    return labels


def hand_columns(dataset: SequenceDataset, threshold: float = ONE_HANDED_BELOW) -> pd.DataFrame | None:
    """``hand_ratio`` and ``hand_usage`` columns for examples.parquet, or None for data without hands.

    Data sets without a left and a right hand get no columns at all rather than made-up ones.
    """
    if not {"left", "right"} <= set(dataset.hands):
        return None
    ratios = hand_ratios(dataset)
    return pd.DataFrame({"hand_ratio": ratios.astype(np.float32),
                         "hand_usage": pd.array(hand_usage(ratios, threshold), dtype="string")})


def hand_usage_counts(usage) -> dict:
    """``{"one-handed": n, "two-handed": m}`` (plus ``"unknown"`` if any), for the manifest."""
    usage = pd.Series(usage, dtype="string")
    counts = {ONE_HANDED: int((usage == ONE_HANDED).sum()), TWO_HANDED: int((usage == TWO_HANDED).sum())}
    unknown = int(usage.isna().sum())
    if unknown:
        counts["unknown"] = unknown
    return counts
