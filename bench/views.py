"""Benchmark of the dashboard's view functions at Auslan size: paths, last activations, inspector,
gate saturation, cells, training and the prediction film.

    python bench/views.py                          # builds an Auslan-sized run in a temp dir (~1 min)
    python bench/views.py --runs DIR --run ID      # times an existing run instead (e.g. real Auslan)
    python bench/views.py --without-aggregates     # the built run as written before the small tables

The built run has Auslan's shape: 2,528 examples of 45..136 steps (mean ~57), 22 channels, 94
classes, one LSTM layer of 100 units. Its tensors come from the pipeline's NumPy LSTM
(``pipeline.core.steps``) with random weights (no TensorFlow, no training), so gate values are
spread like an untrained network's; sizes and timings are what matter here. Each view's function
is timed cold (first call: parquet reads plus compute, empty caches), warm (the same call again in
this process) and as another gunicorn worker would see it (this process's memos cleared, the
shared disk cache as the first calls left it). Each figure's JSON size is the response Dash sends.
Wall time on a shared machine includes other processes' work: the process CPU time is printed
beside it, and the load average at the end.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from plotly.io.json import to_json_plotly  # noqa: E402

from pipeline import runformat  # noqa: E402

N_EXAMPLES, N_CLASSES, N_CHANNELS, N_UNITS, MAX_LENGTH = 2528, 94, 22, 100, 136


def build_auslan_sized_run(runs_dir: Path, run_id: str = "bench-auslan-size", seed: int = 0,
                           aggregates: bool = True) -> None:
    """A run of Auslan's shape through the pipeline's own writers: the NumPy LSTM (random weights)
    recomputes every tensor and the head's per-step probabilities (``core.steps``), the examples
    table gets the predictions, and the project stage draws PCA paths (no TensorFlow anywhere)."""
    from pipeline.core.examples import examples_table, with_predictions
    from pipeline.analysis.layout import row_ids
    from pipeline.analysis.lstm import LSTMWeights, NetworkWeights
    from pipeline.core.predictions import Predictions
    from pipeline.core.steps import network_source, write_steps
    from pipeline.project import run_projection_stage

    rng = np.random.default_rng(seed)
    lengths = np.clip(45 + rng.exponential(12, N_EXAMPLES), 45, MAX_LENGTH).astype(np.int64)
    labels = np.arange(N_EXAMPLES) % N_CLASSES
    inputs = np.concatenate([np.cumsum(rng.normal(0, 0.1, (length, N_CHANNELS)), axis=0) + labels[i] / N_CLASSES
                             for i, length in enumerate(lengths)]).astype(np.float32)
    units = N_UNITS
    layer = LSTMWeights(kernel=rng.normal(0, 0.4, (N_CHANNELS, 4 * units)).astype(np.float32),
                        recurrent=rng.normal(0, 0.15, (units, 4 * units)).astype(np.float32),
                        bias=rng.normal(0, 1.0, 4 * units).astype(np.float32))
    weights = NetworkWeights(layers=[layer], head_kernel=rng.normal(0, 0.3, (units, N_CLASSES)).astype(np.float32),
                             head_bias=np.zeros(N_CLASSES, np.float32))
    classes = [f"sign{k:02d}" for k in range(N_CLASSES)]
    channels = [f"{hand}_{k}" for hand in ("left", "right") for k in range(N_CHANNELS // 2)]
    writer = runformat.RunWriter(runs_dir, run_id)
    predictions = Predictions(runformat.CLASSIFICATION, lengths, classes, 5, labels=labels)
    outputs = write_steps(writer, network_source(weights, lambda r0, r1: inputs[r0:r1], lengths), predictions)
    ids, t = row_ids(lengths)
    outputs.append(writer.write_table(runformat.INPUTS_FILE, runformat.step_table(ids, t, inputs, channels)))
    split = np.array(["train", "validation", "test"])[rng.choice(3, N_EXAMPLES, p=[0.7, 0.15, 0.15])]
    examples = with_predictions(examples_table(lengths, split, labels=labels, classes=classes),
                                predictions.per_example())
    outputs.append(writer.write_table(runformat.EXAMPLES_FILE, examples))
    if aggregates:                       # as the pipeline's extract stage writes them
        from pipeline.core.aggregates import write_example_states, write_gate_aggregates
        outputs += write_gate_aggregates(writer, examples, [{"index": 0}])
        outputs += write_example_states(writer, examples, [{"index": 0}])
    epochs = np.arange(1, 101)
    history = {"epoch": epochs, "loss": 4 / epochs, "accuracy": 1 - 1 / np.sqrt(epochs),
               "val_loss": 4 / epochs + epochs / 400, "val_accuracy": 0.9 - 1 / np.sqrt(epochs),
               "grad_norm": 1 / np.sqrt(epochs)}
    for gate in runformat.SIGMOID_GATES:
        history[f"layer0_{gate}_mean"] = 0.5 + 0.1 * np.tanh(epochs / 30)
        history[f"layer0_{gate}_saturated"] = 0.3 * np.tanh(epochs / 30)
    outputs.append(writer.write_table(runformat.HISTORY_FILE, pd.DataFrame(history)))
    writer.finish_stage("bench", "bench", 0.0, outputs, kind=runformat.CLASSIFICATION, origin="recorded",
                        dataset={"name": "bench-auslan-size"}, config={}, classes=classes,
                        n_examples=N_EXAMPLES, layers=[{"index": 0, "units": units}], channels=channels,
                        hands={"left": list(range(N_CHANNELS // 2)), "right": list(range(N_CHANNELS // 2, N_CHANNELS))},
                        metrics=predictions.metrics(split), status="complete")
    updates = run_projection_stage(writer.path, {"project": {"methods": ["pca"]}})
    writer.finish_stage("project", "bench", 0.0, updates.pop("projection_outputs"), **updates)


def timed(function, *args):
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def title_of(figure) -> str:
    layout = figure.get("layout", {}) if isinstance(figure, dict) else figure.to_plotly_json().get("layout", {})
    title = layout.get("title")
    return (title.get("text") if isinstance(title, dict) else title) or ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path)
    parser.add_argument("--run", default="bench-auslan-size")
    parser.add_argument("--without-aggregates", action="store_true",
                        help="build the run without the precomputed tables (aggregates/): the views "
                             "then read every step, as for a run written before them")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        # A cache folder of its own: "cold" is cold, and "other worker" finds only what this run put there.
        os.environ["LSTM_LENS_CACHE"] = str(Path(scratch) / "cache")
        runs = args.runs
        if runs is None:
            runs = Path(scratch) / "runs"
            _, wall, cpu = timed(build_auslan_sized_run, runs, args.run, 0, not args.without_aggregates)
            print(f"built an Auslan-sized run in {wall:.1f} s (cpu {cpu:.1f} s)"
                  + (", without aggregates" if args.without_aggregates else ""))
        from dashboard import data
        from dashboard.views import cells, film, gates, inspector, last_step, paths, training

        data.configure(runs)
        run = data.get_run(args.run)
        frame = data.examples(run)
        wrong = frame[~frame["correct"].astype(bool)] if "correct" in frame else frame
        selected = int((wrong if len(wrong) else frame)["example_id"].iat[0])
        print(f"run {args.run}: {len(frame)} examples, {int(frame['length'].sum())} steps "
              f"(mean length {frame['length'].mean():.1f}, max {frame['length'].max()}), "
              f"layers {[(layer.index, layer.units) for layer in run.layers]}, {len(run.classes)} classes, "
              f"projections {', '.join(run.manifest.projection_ids)}")
        every = ([], list(runformat.SPLITS), None, "all")     # no filter
        two = (run.classes[:2], list(runformat.SPLITS), None, "all")
        path_projection = "pca" if "ae2" not in run.manifest.projection_ids else "ae"
        last_projection = "pca2" if "ae2" not in run.manifest.projection_ids else "ae2"
        cases = [
            ("paths (all classes)", paths.paths_view_figure,
             (args.run, *every, selected, path_projection, "2", [])),
            ("paths (two classes)", paths.paths_view_figure,
             (args.run, *two, selected, path_projection, "2", [])),
            ("last activations", last_step.last_step_view_figure,
             (args.run, *every, selected, last_projection, "class", [])),
            ("inspector: path among its classes", inspector.inspect_path,
             (args.run, selected, last_projection, False)),
            ("inspector: nearest + metadata", inspector.inspect_summary, (args.run, selected)),
            ("inspector: inputs", inspector.inspect_inputs, (args.run, selected)),
            ("gates: saturation over time + histogram", gates.summary_figures,
             (args.run, *every, "last", "end", [0.1, 0.9])),
            ("gates: per-cell heatmap (saturated)", gates.cells_figure,
             (args.run, *every, "last", "end", [0.1, 0.9], "forget_gate", "saturated", "saturation")),
            # new options: the step tables are cached, the reductions run again
            ("gates: over time, thresholds 0.05/0.95", gates.summary_figures,
             (args.run, *every, "last", "start", [0.05, 0.95])),
            ("gates: per-cell heatmap (mean value)", gates.cells_figure,
             (args.run, *every, "last", "start", [0.05, 0.95], "input_gate", "mean", "saturation")),
            ("cells: ranking (last step, h)", cells.ranking_figure,
             (args.run, *every, "last", "h", "last", 0)),
            ("cells: ranking (mean over time, c)", cells.ranking_figure,
             (args.run, *every, "last", "c", "mean", 0)),
            ("cells: heatmap of one cell", cells.heatmap_figure, (args.run, *every, "last", "h", 3, "end")),
            ("training", training.figure, (args.run,)),
            ("film (aligned at the end)", film.film_source, (args.run, *every, None, "end")),
            ("film (aligned at the start)", film.film_source, (args.run, *every, None, "start")),
        ]
        results = []
        for name, function, arguments in cases:
            _, cold, cold_cpu = timed(function, *arguments)
            figures, warm, warm_cpu = timed(function, *arguments)
            results.append((name, function, arguments, cold, cold_cpu, warm, warm_cpu, figures))
        # Another gunicorn worker (or this one after a restart): empty in-process memos, the shared
        # disk cache as the calls above left it.
        data.clear_memos()
        print(f"{'view':42s} {'cold s':>7s} {'(cpu)':>6s} {'warm s':>7s} {'(cpu)':>6s} "
              f"{'other worker s':>14s} {'(cpu)':>6s} {'JSON':>9s}")
        for name, function, arguments, cold, cold_cpu, warm, warm_cpu, figures in results:
            _, other, other_cpu = timed(function, *arguments)
            figures = figures if isinstance(figures, tuple) else (figures,)
            figures = [f for f in figures if isinstance(f, dict) or hasattr(f, "to_plotly_json")]
            size = sum(len(to_json_plotly(figure)) for figure in figures)
            print(f"{name:42s} {cold:7.3f} {cold_cpu:6.2f} {warm:7.3f} {warm_cpu:6.2f} {other:14.3f} "
                  f"{other_cpu:6.2f} {size / 1e6:7.2f} MB")
            titles = [title_of(figure) for figure in figures]
            if titles and titles[0] and name.startswith(("film", "cells: heatmap")):
                print(f"    {titles[0]}")
        print(f"load average: {' '.join(f'{v:.2f}' for v in os.getloadavg())} ({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
