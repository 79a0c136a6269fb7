"""Benchmark of the dashboard on a big run: time per view cold and warm, worker memory, bytes on disk.

    python bench/bigrun.py --runs /tmp/bigruns --examples 10000     # builds synthetic-10000 if absent
    python bench/bigrun.py --runs /tmp/bigruns --run-id syn10k      # times a run built before

The run is ``pipeline run synthetic --examples N`` with 2 epochs (accuracy is not the point), no
attribution and no t-SNE: on the 2-core machine, N=10,000 took 287 s of attribution and 948 s of
projections (t-SNE ~330 s) of 1,660 s. The trust measures score a sample of at most
``project.TRUST_SAMPLE`` examples (their exact form holds n x n matrices: ~2 GB at 10,000). Each view's callback function runs in a fresh
process with an empty shared cache: its first answer is "cold" (parquet reads, then the figure),
then "warm" answers with other filters, another class pair, zooms and the first call again (a
memo hit). Printed: p50/p95 of the warm answers, the worker's RSS after them and its peak, the
run's bytes on disk and per step, and the load average (wall time on a shared machine includes
other processes' work).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ALL_SPLITS = ["train", "validation", "test"]
VIEWS = ("paths", "paths zoomed", "last activations", "last activations zoomed", "inspector path",
         "gates over time", "gates per cell", "cells ranking", "cells heatmap", "film", "training")


def build(runs: Path, run_id: str, examples: int, epochs: int) -> None:
    from pipeline.cli.common import format_summary
    from pipeline.core.config import merge
    from pipeline.core.progress import Progress
    from pipeline.kinds import classification

    config = merge(classification.default_config("synthetic"), {
        "dataset": {"examples": examples}, "train": {"epochs": epochs}, "attribute": {"methods": []},
        "project": {"methods": ["autoencoder", "pca"]}})
    print(format_summary(classification.run_classification(config, runs, run_id, progress=Progress())))


def windows(ranges: dict, n: int = 3) -> list[dict]:
    """Zooms into ``ranges``: the left half, then ever smaller boxes around the centre."""
    (x0, x1), (y0, y1) = ranges["x"], ranges["y"]
    cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
    boxes = [(x0, cx, y0, y1)] + [(cx - w / 2 ** (k + 2), cx + w / 2 ** (k + 2), cy - h / 2 ** (k + 2),
                                   cy + h / 2 ** (k + 2)) for k in range(n)]
    return [{"xaxis.range[0]": a, "xaxis.range[1]": b, "yaxis.range[0]": c, "yaxis.range[1]": d}
            for a, b, c, d in boxes]


def cases(view: str, run, selected: int):
    """The view's first call and its later ones: ``[(function, args, kwargs), ...]``."""
    from dashboard import data
    from dashboard.figures import raster
    from dashboard.views import cells, film, gates, inspector, last_step, paths, training

    rid, classes = run.run_id, run.classes
    bars = [([], ALL_SPLITS, None, "all"), (classes[:2], ALL_SPLITS, None, "all"),
            ([], ["test"], None, "all"), (classes[2:5], ["train"], None, "misclassified"),
            ([], ALL_SPLITS, None, "correct")]
    path_method = "ae" if "ae2" in run.manifest.projection_ids else "pca"
    last_method = path_method + "2"
    if view.startswith("paths"):
        calls = [(paths.paths_view_figure, (rid, *bar, selected, path_method, "2", []), {}) for bar in bars]
    elif view.startswith("last activations"):
        calls = [(last_step.last_step_view_figure, (rid, *bar, selected, last_method, "class", []), {})
                 for bar in bars]
    elif view == "inspector path":
        frame = data.examples(run)
        calls = [(inspector.inspect_path, (rid, int(e), last_method, False), {})
                 for e in [selected, *frame["example_id"].iloc[1:5]]]
    elif view == "gates over time":
        calls = [(gates.summary_figures, (rid, *bar, "last", "end", [0.1, 0.9]), {}) for bar in bars]
    elif view == "gates per cell":
        calls = [(gates.cells_figure, (rid, *bar, "last", "end", [0.1, 0.9], "forget_gate", "saturated",
                                       "saturation"), {}) for bar in bars]
    elif view == "cells ranking":
        calls = [(cells.ranking_figure, (rid, *bar, "last", "h", "last", 0), {}) for bar in bars]
    elif view == "cells heatmap":
        calls = [(cells.heatmap_figure, (rid, *bar, "last", "h", 3, "end"), {}) for bar in bars]
    elif view == "film":
        calls = [(film.film_source, (rid, *bar, None, "end"), {}) for bar in bars]
    else:
        calls = [(training.figure, (rid,), {})] * 3
    if view.endswith("zoomed"):     # zooms of the first scene, as its relayoutData would ask
        function, args, _ = calls[0]
        first = function(*args)
        layout = first.get("layout", {}) if isinstance(first, dict) else first.to_plotly_json()["layout"]
        ranges = {a: tuple(layout.get(f"{a}axis", {}).get("range") or (-1, 1)) for a in ("x", "y")}
        calls = [(function, args, {"window": raster.zoom_window(box)}) for box in windows(ranges)]
        calls.append((function, args, {"window": "reset"}))
    return calls + [calls[0]]          # the first call again: a memo hit


def worker(runs: Path, run_id: str, view: str) -> None:
    """One view in this fresh process: the first answer (cold) and the later ones (warm)."""
    import psutil

    started = time.perf_counter()
    from dashboard import data
    imported = time.perf_counter() - started
    data.configure(runs)
    run = data.get_run(run_id)
    frame = data.examples(run)
    wrong = frame[~frame["correct"].astype(bool)] if "correct" in frame else frame
    selected = int((wrong if len(wrong) else frame)["example_id"].iat[0])
    opened = time.perf_counter() - started
    calls = cases(view, run, selected)
    times, kinds = [], []
    for function, args, kwargs in calls:
        wall = time.perf_counter()
        figure = function(*args, **kwargs)
        times.append(time.perf_counter() - wall)
        first = figure[0] if isinstance(figure, tuple) else figure
        layout = first.get("layout", {}) if isinstance(first, dict) else {} if first is None else \
            first.to_plotly_json().get("layout", {})
        kinds.append("none" if first is None else "image" if layout.get("images") else "points")
    print(json.dumps({"view": view, "import_s": imported, "open_s": opened - imported, "times": times,
                      "kinds": kinds, "rss": psutil.Process().memory_info().rss,
                      "peak_rss": peak_rss()}))


def peak_rss() -> int:
    """This process's peak RSS (VmHWM: ru_maxrss would keep a parent's peak across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def percentile(values, q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, required=True, help="where the big run is (or goes); not the repo")
    parser.add_argument("--run-id", help="default: synthetic-N")
    parser.add_argument("--examples", type=int, default=10_000, help="signs of a run to build (default 10000)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--views", nargs="*", default=list(VIEWS), choices=VIEWS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    run_id = args.run_id or f"synthetic-{args.examples}"
    if args.worker:
        worker(args.runs, run_id, args.worker)
        return
    from pipeline import runformat
    try:
        complete = runformat.Run.open(args.runs, run_id).manifest.complete
    except runformat.RunError:
        complete = False
    if not complete:                      # absent or incomplete: build it (a stopped build resumes)
        wall = time.perf_counter()
        build(args.runs, run_id, args.examples, args.epochs)
        print(f"built {run_id} in {time.perf_counter() - wall:.0f} s, load {os.getloadavg()[0]:.1f}")
    run = runformat.Run.open(args.runs, run_id)
    steps = int(run.examples()["length"].sum())
    files = [p for p in (args.runs / run_id).rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    step_files = sum(p.stat().st_size for p in files if "steps" in p.parts)
    print(f"run {run_id}: {run.manifest['n_examples']:,} examples, {steps:,} steps; {size / 1e9:.2f} GB on "
          f"disk ({size / steps:.0f} bytes per step; per-step tables {step_files / steps:.0f}), "
          f"load {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"{'view':26s} {'kind':>6s} {'cold s':>7s} {'warm p50':>9s} {'p95':>6s} {'n':>3s} "
          f"{'RSS MB':>7s} {'peak MB':>8s} {'import+open s':>13s}  load")
    for view in args.views:
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, "LSTM_LENS_CACHE": cache}
            done = subprocess.run([sys.executable, __file__, "--runs", str(args.runs), "--run-id", run_id,
                                   "--worker", view], capture_output=True, text=True, env=env, timeout=1800)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode or not lines:
            print(f"{view:26s} failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        result = json.loads(lines[-1])
        cold, warm = result["times"][0], result["times"][1:]
        kinds = "/".join(sorted(set(result["kinds"])))
        print(f"{view:26s} {kinds:>6s} {cold:7.3f} {percentile(warm, 0.5):9.3f} {percentile(warm, 0.95):6.3f} "
              f"{len(warm):3d} {result['rss'] / 2**20:7.0f} {result['peak_rss'] / 2**20:8.0f} "
              f"{result['import_s'] + result['open_s']:13.1f}  {os.getloadavg()[0]:.2f}")
        print(f"{'':26s} each: " + ", ".join(f"{t:.3f} {k}" for t, k in zip(result["times"], result["kinds"])))


if __name__ == "__main__":
    main()
