"""Milliseconds per what-if edit in the inspector, on an Auslan-sized model with random weights.

The model: 22 channels, one LSTM of 100 units, a softmax over 94 classes, left-padded to 90 steps
(the study's). Each edit is what the page pays after a slider moves: the edit of the frames, the
NumPy forward pass (``pipeline.analysis.whatif``), and the figure built as sent
(``dashboard.figures.why.whatif_figure``, serialised to JSON as Dash does). The goal is under
200 ms; the load average is printed beside, the machines being shared.

    python bench/whatif.py [--repeats 30] [--length 85]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import plotly.utils

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dashboard.figures.why import whatif_figure  # noqa: E402
from pipeline.analysis import whatif  # noqa: E402
from pipeline.analysis.lstm import LSTMWeights, NetworkWeights  # noqa: E402

UNITS, CHANNELS, CLASSES, STEPS = 100, 22, 94, 90


def random_network(seed: int = 0) -> NetworkWeights:
    rng = np.random.default_rng(seed)
    scale = 1 / np.sqrt(UNITS)
    layer = LSTMWeights(rng.normal(0, scale, (CHANNELS, 4 * UNITS)).astype(np.float32),
                        rng.normal(0, scale, (UNITS, 4 * UNITS)).astype(np.float32),
                        rng.normal(0, 0.1, 4 * UNITS).astype(np.float32))
    return NetworkWeights([layer], head_kernel=rng.normal(0, scale, (UNITS, CLASSES)).astype(np.float32),
                          head_bias=np.zeros(CLASSES, np.float32), mean=rng.normal(0, 1, CHANNELS).astype(np.float32),
                          std=np.ones(CHANNELS, np.float32), padding="left", n_steps=STEPS)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--length", type=int, default=85, help="frames of the edited sign (at most 90)")
    args = parser.parse_args(argv)
    weights = random_network()
    rng = np.random.default_rng(1)
    frames = rng.normal(0, 1, (min(args.length, STEPS), CHANNELS)).astype(np.float32)
    left = list(range(11))
    classes = [f"sign{i}" for i in range(CLASSES)]
    plane, centre = np.eye(UNITS, dtype=np.float32)[:2], np.zeros(UNITS, np.float32)
    old = whatif.answer(weights, frames)
    edits = {
        "mask a window": lambda k: (whatif.mask_window(frames, weights, k % 40, k % 40 + 10), (k % 40, k % 40 + 10)),
        "drop one hand": lambda k: (whatif.drop_channels(frames, weights, left), None),
        "cut at step k": lambda k: (whatif.cut_at(frames, 20 + k % 60), (20 + k % 60, len(frames))),
    }
    print(f"what-if edits: {UNITS} units, {CHANNELS} channels, {CLASSES} classes, {len(frames)} of {STEPS} steps, "
          f"{args.repeats} repeats each")
    for name, edit in edits.items():
        compute, total = [], []
        for k in range(args.repeats):
            started = time.perf_counter()
            edited, span = edit(k)
            new = whatif.answer(weights, edited)
            computed = time.perf_counter()
            figure = whatif_figure(old, new, 0, 1, classes, plane, centre, name, span)
            json.dumps(figure, cls=plotly.utils.PlotlyJSONEncoder)
            done = time.perf_counter()
            compute.append(computed - started)
            total.append(done - started)
        print(f"  {name:14s} recompute median {1000 * np.median(compute):6.1f} ms, with the figure as sent "
              f"median {1000 * np.median(total):6.1f} ms, p95 {1000 * np.quantile(total, 0.95):6.1f} ms")
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"load average (1, 5, 15 min): {load} on {os.cpu_count()} cores; goal: under 200 ms per edit")


if __name__ == "__main__":
    main()
