"""Benchmark the pipeline on the real Auslan data: seconds per stage and extraction throughput.

    python bench/pipeline.py [--source DIR] [--epochs N] [--units 100[,100]] [--repeat 3]

Builds a fresh run in a temporary folder (deleted afterwards), prints each stage's time, the
accuracy per split, then times the NumPy extraction alone (h, c, gates of every layer and the
per-step probabilities, no writing) in real time steps per second, total and per layer.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pipeline.cli.common import format_summary, units_list  # noqa: E402
from pipeline.analysis import lstm  # noqa: E402
from pipeline.core import predictions  # noqa: E402
from pipeline.core.config import merge  # noqa: E402
from pipeline.analysis.layout import StepLayout  # noqa: E402
from pipeline.core.progress import Progress  # noqa: E402
from pipeline.kinds.classification import WEIGHTS_FILE, default_config, read_prepared, run_classification  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=str(REPO.parent / "shared" / "data" / "auslan"))
    parser.add_argument("--epochs", type=int, help="cap the training epochs (default: the config's)")
    parser.add_argument("--units", type=units_list, help="LSTM units per layer (default: the config's)")
    parser.add_argument("--repeat", type=int, default=3, help="extraction timings to take the best of")
    args = parser.parse_args()

    overrides = {"dataset": {"source": args.source}, "train": {}, "model": {}}
    if args.epochs:
        overrides["train"]["epochs"] = args.epochs
    if args.units:
        overrides["model"]["units"] = args.units
    config = merge(default_config("auslan"), overrides)
    print(f"cpus: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}, units {config['model']['units']}, epochs <= {config['train']['epochs']}")

    with tempfile.TemporaryDirectory(prefix="lstm-lens-bench-") as runs:
        started = time.perf_counter()
        summary = run_classification(config, runs, progress=Progress())
        print(format_summary(summary))
        print(f"\nwhole run: {time.perf_counter() - started:.1f} s")
        project_seconds = json.loads((summary.path / "manifest.json").read_text()).get("projection_seconds", {})
        print("project sub-steps: " + ", ".join(f"{name} {s:.1f} s" for name, s in project_seconds.items()))
        bench_extraction(summary.path, args.repeat)


def bench_extraction(run_path: Path, repeat: int) -> None:
    prepared = read_prepared(run_path)
    weights = lstm.NetworkWeights.load(run_path / WEIGHTS_FILE)
    rows = StepLayout(prepared.lengths, prepared.X.shape[1]).real_rows(prepared.X)
    steps = int(prepared.lengths.sum())
    n, T = prepared.X.shape[:2]
    best_total, best_layers = float("inf"), []
    for _ in range(repeat):
        layer_seconds = []
        clock = time.perf_counter()
        for tensors in lstm.layer_steps(weights, rows, prepared.lengths):
            layer_seconds.append(time.perf_counter() - clock)
            last_h = tensors["h"]
            clock = time.perf_counter()
        predictions.top_k(lstm.step_probabilities(weights, last_h), 5)
        layer_seconds.append(time.perf_counter() - clock)
        if sum(layer_seconds) < best_total:
            best_total, best_layers = sum(layer_seconds), layer_seconds
    print(f"\nextraction (best of {repeat}): {n} sequences, {steps} real steps ({n * T} padded)")
    print(f"  all layers + probabilities: {best_total:.3f} s, {steps / best_total:,.0f} steps/s")
    for index, seconds in enumerate(best_layers[:-1]):
        print(f"  layer {index} (h, c, 4 gates): {seconds:.3f} s, {steps / seconds:,.0f} steps/s")
    print(f"  probabilities + top-5: {best_layers[-1]:.3f} s")


if __name__ == "__main__":
    main()
