"""LSTM Lens: serve the dashboard (``python app.py``), building the default run first if none exists.

``server`` is the Flask app for gunicorn (``gunicorn app:server``); it reads the runs folder from
``LSTM_LENS_RUNS`` (default data/runs). Importing this module builds nothing and never imports
TensorFlow: runs are built by ``python -m pipeline`` in a child process.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from dashboard import data, deployment
from dashboard.app import create_app

ROOT = Path(__file__).resolve().parent
DEFAULT_RUNS = os.environ.get("LSTM_LENS_RUNS", "data/runs")
DEFAULT_DATASETS = ("synthetic",)      # built before serving: about a minute on two cores
BACKGROUND_DATASETS = ("text",)       # a character LM on Python's own source: minutes, built while serving

if (problem := deployment.startup_problem()):      # a bad login setting, an unreadable folder: one line
    raise SystemExit(f"error: {problem}")
app = create_app(DEFAULT_RUNS)
server = app.server


def build_default_runs(runs_dir: str) -> None:
    """Run the pipeline for each default data set in a child process, its progress in this terminal."""
    for dataset in DEFAULT_DATASETS:
        print(f"No runs in {runs_dir}: building the {dataset!r} run (python -m pipeline run "
              f"{dataset} --runs {runs_dir}) ...", flush=True)
        result = subprocess.run([sys.executable, "-m", "pipeline", "run", dataset, "--runs", runs_dir],
                                cwd=ROOT)
        if result.returncode != 0:
            raise SystemExit(f"building the {dataset!r} run failed (exit {result.returncode}); "
                             f"see the messages above")


# What a stored float32 value of the per-step tables costs on disk after parquet's compression
# (measured 2.7 bytes of 4 on a text run; more after full training, when the gates saturate less).
STORED_BYTES_PER_VALUE = 3.2


def estimated_run_bytes(n_steps: int, units: list[int], tensors: int = 6) -> float:
    """The size of a run's per-step tables (h, c and the four gates of every layer at every step),
    which are nearly all of a run: ``n_steps`` x total units x ``tensors`` stored values."""
    return n_steps * sum(units) * tensors * STORED_BYTES_PER_VALUE


def human_bytes(n: float) -> str:
    """``875e6`` -> ``"0.9 GB"``, ``42e6`` -> ``"42 MB"``: one or two figures, as an estimate has."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size / 10:
            return f"{n / size:.1f} {unit}" if n < 10 * size else f"{n / size:.0f} {unit}"
    return f"{n:.0f} bytes"


def background_note(dataset: str, runs_dir: str) -> str:
    """Where a background run goes and about how much it writes: ``"about 0.9 GB into
    data/runs/text-python (h, c and 4 gates at each of 355,934 characters, 128 cells)"``. The
    Python corpus's size is its modules' source, read without building anything (nor importing
    TensorFlow); for a data set it cannot size, only where."""
    folder = Path(runs_dir)
    if dataset != "text":
        return f"into {folder}"
    try:
        from pipeline.datasets import text as corpora
        from pipeline.kinds import language_model
        config = language_model.default_config("python")
        n_chars = sum(path.stat().st_size for _, path in corpora.python_source_files())
        units = [int(u) for u in config["model"]["units"]]
        run_id = language_model.default_run_id(config)
    except Exception:       # noqa: BLE001 - an estimate only: never a reason not to serve
        return f"into {folder}"
    size = human_bytes(estimated_run_bytes(n_chars, units))
    return (f"about {size} into {folder / run_id} (h, c and 4 gates at each of {n_chars:,} characters, "
            f"{sum(units)} cells)")


def start_background_runs(runs_dir: str) -> None:
    """Build the slower default runs in child processes while the dashboard serves; each shows up in
    the run picker (as "being built" until it completes) on the next page load."""
    for dataset in BACKGROUND_DATASETS:
        log_path = Path(runs_dir) / f"{dataset}-build.log"
        print(f"Building the {dataset!r} run in the background: {background_note(dataset, runs_dir)}; "
              f"log: {log_path}. Reload the page to pick it when it is done.", flush=True)
        with open(log_path, "w") as log:
            subprocess.Popen([sys.executable, "-m", "pipeline", "run", dataset, "--runs", runs_dir,
                              "--quiet"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the LSTM Lens dashboard.")
    parser.add_argument("--runs", default=DEFAULT_RUNS, help="runs folder (default %(default)s)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8050)
    parser.add_argument("--debug", action="store_true", help="Dash debug mode (reloader, dev tools)")
    args = parser.parse_args(argv)
    if not data.list_runs(args.runs):
        build_default_runs(args.runs)
        start_background_runs(args.runs)
    data.configure(args.runs)
    app.server.config["LSTM_LENS_RUNS"] = args.runs
    print(f"LSTM Lens: serving {args.runs} on http://{args.host}:{args.port}/", flush=True)
    app.run(host=args.host, port=args.port, debug=args.debug)


if __name__ == "__main__":
    main()
