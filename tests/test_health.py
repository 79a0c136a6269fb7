"""Training's failure signs, from a history table, each at its threshold."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.analysis.health import COLLAPSED_SPREAD, SATURATED_SHARE, training_warnings


def _history(**columns):
    n = len(next(iter(columns.values())))
    return pd.DataFrame({"epoch": np.arange(1, n + 1), **columns})


def test_hlt001_a_healthy_history_has_no_warnings():
    history = _history(layer0_forget_gate_saturated=[0.2, 0.3, 0.4], layer0_h_spread=[0.3, 0.2, 0.25],
                       grad_norm=[1.0, 1.4, 0.9])
    assert training_warnings(history) == []
    assert training_warnings(pd.DataFrame()) == []


def test_hlt002_each_sign_at_its_threshold():
    history = _history(layer1_input_gate_saturated=[0.5, SATURATED_SHARE + 0.01],
                       layer0_output_gate_saturated=[0.5, SATURATED_SHARE - 0.01],
                       layer0_h_spread=[0.2, COLLAPSED_SPREAD / 2], grad_norm=[1.0, 50.0])
    signs = {(w.sign, w.epoch) for w in training_warnings(history)}
    assert signs == {("saturated gate", 2), ("collapsed state", 2), ("exploding gradient", 2)}
    texts = " ".join(w.text for w in training_warnings(history))
    assert "layer 1 input gate" in texts and "50x" in texts
    assert all(w.threshold for w in training_warnings(history))
