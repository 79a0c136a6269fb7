"""The failure signs of LSTM training that the literature names, read from a run's history, each
with the threshold used: gates stuck saturated, the hidden state collapsed to a constant, an
exploding gradient norm. Pure, for the dashboard's training view (and the report)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

SATURATED_SHARE = 0.9          # a gate saturated (below 0.1 or above 0.9) at >= 90% of steps
COLLAPSED_SPREAD = 1e-3        # last-step h varies across examples by less than this (mean std)
EXPLODING_FACTOR = 10.0        # gradient norm above 10x the median of the epochs before it
SATURATED = re.compile(r"^layer(\d+)_(input_gate|forget_gate|output_gate)_saturated$")
SPREAD = re.compile(r"^layer(\d+)_h_spread$")


@dataclass(frozen=True)
class TrainingWarning:
    sign: str            # "saturated gate", "collapsed state", "exploding gradient"
    epoch: int           # the latest epoch showing it
    value: float
    threshold: str       # the rule, in words
    text: str            # one line for the page


def training_warnings(history: pd.DataFrame) -> list[TrainingWarning]:
    """The signs present at the latest epoch (gates, state) or at any epoch (gradient)."""
    if history is None or history.empty or "epoch" not in history:
        return []
    last = history.iloc[-1]
    epoch = int(last["epoch"])
    found = []
    for column in history.columns:
        match = SATURATED.match(column)
        if match and _finite(last[column]) and last[column] >= SATURATED_SHARE:
            gate = match.group(2).replace("_", " ")
            found.append(TrainingWarning("saturated gate", epoch, float(last[column]),
                                 f"saturated (< 0.1 or > 0.9) at >= {SATURATED_SHARE:.0%} of steps",
                                 f"layer {match.group(1)} {gate}: saturated at {last[column]:.0%} of steps "
                                 f"(epoch {epoch}); it has stopped learning to gate"))
        match = SPREAD.match(column)
        if match and _finite(last[column]) and last[column] < COLLAPSED_SPREAD:
            found.append(TrainingWarning("collapsed state", epoch, float(last[column]),
                                 f"last-step h spread across examples < {COLLAPSED_SPREAD:g}",
                                 f"layer {match.group(1)}: the hidden state barely differs between examples "
                                 f"(spread {last[column]:.1e}, epoch {epoch}); it carries no information"))
    if "grad_norm" in history:
        norms = history["grad_norm"].to_numpy(np.float64)
        for i in range(1, len(norms)):
            earlier = norms[:i][np.isfinite(norms[:i])]
            if len(earlier) and np.isfinite(norms[i]) and norms[i] > EXPLODING_FACTOR * np.median(earlier):
                found.append(TrainingWarning("exploding gradient", int(history["epoch"].iloc[i]), float(norms[i]),
                                     f"gradient norm > {EXPLODING_FACTOR:g}x the median of earlier epochs",
                                     f"gradient norm {norms[i]:.3g} at epoch {int(history['epoch'].iloc[i])}, "
                                     f"{norms[i] / np.median(earlier):.0f}x the earlier median"))
    return found


def _finite(value) -> bool:
    try:
        return bool(np.isfinite(float(value)))
    except (TypeError, ValueError):
        return False
