"""Compact storage: bytes per step of each per-step tensor in float32 and float16, the error float16
adds, and whether any select & match result changes at the dashboard's default threshold.

    python bench/storage.py                        # builds a small parenthesis-language text run (~1 min)
    python bench/storage.py --runs DIR --run-id ID # an existing run (its stored values are the reference)

Every table is written twice by the run format's own writer (``runformat.step_table`` +
``write_parquet``: zstd, byte-stream-split), float32 and float16, into a temp dir; bytes per step is
file size / rows. The error is max |float16 - float32| (and, for h and c, the largest relative
error). Select & match: queries made as a user makes them in the dashboard (a random range of 4
steps selected; its cells at or above the threshold, 0.3, are the query; top 50), run on the
float32 states and on their float16 copy; a query "changes" when its selected cells or any of its
ranked matches (start, end, score) differ. The reference run is built with every tensor in float32
(``extract.storage``), so nothing was rounded before the comparison.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline import runformat  # noqa: E402
from pipeline.analysis.match import match, select_cells  # noqa: E402

THRESHOLD = 0.3          # dashboard/views/select_match.py DEFAULT_THRESHOLD
SELECT_LENGTH, TOP_K = 4, 50
ALL32 = dict.fromkeys(runformat.TENSOR_KINDS, "float32")


def build_text_run(runs: Path) -> str:
    from pipeline.core.config import merge
    from pipeline.kinds import language_model
    config = merge(language_model.default_config("parens"), {
        "dataset": {"n_documents": 400}, "model": {"units": [64], "embedding": 8},
        "train": {"epochs": 8, "window": 64, "learning_rate": 0.01, "patience": 3},
        "extract": {"storage": ALL32}, "project": {"methods": []}})
    summary = language_model.run_language_model(config, runs)
    return summary.run_id


def table_bytes(folder: Path, matrix: np.ndarray, dtype: str) -> int:
    n = len(matrix)
    path = folder / f"t-{dtype}.parquet"
    table = runformat.step_table(np.zeros(n, np.int32), np.arange(n, dtype=np.int32), matrix,
                                 runformat.unit_columns(matrix.shape[1]), dtype)
    runformat.write_parquet(table, path)
    size = path.stat().st_size
    path.unlink()
    return size


def queries(rng, states: np.ndarray, count: int) -> list[tuple[int, int]]:
    found, tries = [], 0
    while len(found) < count and tries < 50 * count:
        tries += 1
        start = int(rng.integers(0, len(states) - SELECT_LENGTH))
        if len(select_cells(states, start, start + SELECT_LENGTH - 1, THRESHOLD)):
            found.append((start, start + SELECT_LENGTH - 1))
    return found


def match_changes(states: np.ndarray, compact: np.ndarray, selections) -> tuple[int, int, int]:
    """(queries whose selected cells differ, queries whose ranked matches differ, queries)."""
    cells_changed = results_changed = 0
    for start, end in selections:
        cells, cells16 = (select_cells(s, start, end, THRESHOLD) for s in (states, compact))
        if not np.array_equal(cells, cells16):
            cells_changed += 1
        exact = [(m.start, m.end, m.score) for m in match(states, cells, THRESHOLD, top_k=TOP_K)]
        rounded = [(m.start, m.end, m.score) for m in match(compact, cells16, THRESHOLD, top_k=TOP_K)]
        results_changed += exact != rounded
    return cells_changed, results_changed, len(selections)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path)
    parser.add_argument("--run-id")
    parser.add_argument("--queries", type=int, default=40, help="select & match queries per tensor")
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())} ({os.cpu_count()} CPUs)")
    with tempfile.TemporaryDirectory(prefix="lens-storage-") as scratch:
        scratch_path = Path(scratch)
        if args.runs is None:
            args.runs = scratch_path / "runs"
            t0 = time.perf_counter()
            args.run_id = build_text_run(args.runs)
            print(f"built text run {args.run_id!r} (every tensor float32) in {time.perf_counter() - t0:.0f} s")
        run = runformat.Run.open(args.runs, args.run_id)
        rng = np.random.default_rng(0)
        rows_total = None
        totals = {"float32": 0, "default": 0, "float16": 0}
        print(f"run {run.run_id}: kind {run.kind}, layers {[(item.index, item.units) for item in run.layers]}\n")
        print(f"{'tensor':<22} {'B/step f32':>10} {'B/step f16':>10} {'ratio':>6} {'max |err|':>10} "
              f"{'max rel err':>11} {'saturation flips':>16}  select & match at {THRESHOLD} (cells / results changed)")
        for layer in run.layers:
            for kind in layer.tensors:
                states = run.step_matrix(layer.index, kind)
                rows_total = len(states)
                compact = states.astype(np.float16).astype(np.float32)
                b32, b16 = table_bytes(scratch_path, states, "float32"), table_bytes(scratch_path, states, "float16")
                totals["float32"] += b32
                totals["float16"] += b16
                totals["default"] += b16 if runformat.DEFAULT_STORAGE.get(kind) == "float16" else b32
                error = np.abs(compact - states)
                scale = np.abs(states)
                relative = float((error[scale > 1e-3] / scale[scale > 1e-3]).max()) if (scale > 1e-3).any() else 0.0
                flips = ""
                if kind in runformat.SIGMOID_GATES:
                    changed = ((states < 0.1) != (compact < 0.1)) | ((states > 0.9) != (compact > 0.9))
                    flips = f"{changed.mean():.2e}"
                matched = ""
                if kind in ("h", "c"):
                    selections = queries(rng, states, args.queries)
                    cells, results, n = match_changes(states, compact, selections)
                    matched = f"{cells} / {results} of {n}"
                print(f"layer {layer.index} {kind:<14} {b32 / rows_total:10.1f} {b16 / rows_total:10.1f} "
                      f"{b16 / b32:6.2f} {error.max():10.2e} {relative:11.2e} {flips:>16}  {matched}", flush=True)
        print(f"\nall per-step tensors: {totals['float32'] / rows_total:.0f} B/step in float32, "
              f"{totals['default'] / rows_total:.0f} B/step with the default storage (gates float16), "
              f"{totals['float16'] / rows_total:.0f} B/step all float16 ({rows_total:,} steps)")
    print(f"total {time.perf_counter() - started:.0f} s; load average at end: "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
