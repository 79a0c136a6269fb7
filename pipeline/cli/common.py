"""What every command line shares: the runs folder, argument types, the summary printed at the end."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

# Both tools honour LSTM_LENS_RUNS: the dashboard serves the folder the pipeline writes.
DEFAULT_RUNS_DIR = Path(os.environ.get("LSTM_LENS_RUNS") or Path("data") / "runs")


def units_list(text: str) -> list[int]:
    """``"100"`` -> [100]; ``"100,50"`` -> [100, 50] (stacked LSTM layers, input side first)."""
    try:
        units = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None
    if not units or min(units) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: every layer needs at least one unit")
    return units


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def runs_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument("--runs", default=str(DEFAULT_RUNS_DIR), metavar="DIR",
                        help="folder that holds the runs (default: $LSTM_LENS_RUNS or %(default)s)")


def format_summary(summary) -> str:
    """Metrics per split, time per stage, where the run is."""
    lines = [f"run {summary.run_id} ({summary.status}): {summary.path}", ""]
    keys = [k for k in ("accuracy", "loss", "bits_per_char", "bits_per_token", "perplexity")
            if any(k in (summary.metrics.get(split) or {}) for split in ("train", "validation", "test"))]
    if keys:
        lines.append(f"  {'split':<12}" + "".join(f"{k:>16}" for k in keys))
        for split in ("train", "validation", "test"):
            metrics = summary.metrics.get(split)
            if metrics:
                lines.append(f"  {split:<12}" + "".join(f"{metrics.get(k, float('nan')):>16.4f}" for k in keys))
    lines += ["", f"  {'stage':<12}{'seconds':>10}  note"]
    for stage in summary.stages:
        seconds = "skipped" if stage.seconds is None else f"{stage.seconds:.1f}"
        lines.append(f"  {stage.name:<12}{seconds:>10}  {stage.note}".rstrip())
    return "\n".join(lines)
