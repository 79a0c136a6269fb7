"""Benchmark the project stage alone on an existing run: wall seconds per sub-step, CPU seconds.

    python bench/project.py RUN_DIR [--set key=value ...]

RUN_DIR is a finished run (e.g. ``data/runs/auslan`` from ``python -m pipeline run auslan
--source ../shared/data/auslan``). It is copied to a temporary folder, so the run itself is not
touched. ``--set`` overrides the config's ``project`` section (``--set seeds=1 --set dims=[2]``).
CPU seconds beside wall seconds tell a busy machine (CPU < wall x cores) from a slow stage.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pipeline.core.progress import Progress  # noqa: E402
from pipeline.project import run_projection_stage  # noqa: E402


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a project setting; the value is read as JSON when it parses")
    args = parser.parse_args()
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value)
        except ValueError:
            overrides[key] = value
    config = json.loads((args.run / "manifest.json").read_text())["config"]
    config = {**config, "project": {**config.get("project", {}), **overrides}}
    print(f"cpus: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}, overrides {overrides or 'none'}")

    with tempfile.TemporaryDirectory(prefix="lstm-lens-bench-project-") as folder:
        run_path = Path(folder) / args.run.name
        shutil.copytree(args.run, run_path)
        wall, cpu = time.perf_counter(), _cpu_seconds()
        updates = run_projection_stage(run_path, config, Progress())
        wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
    print(f"project stage: {wall:.1f} s wall, {cpu:.1f} s CPU")
    for name, seconds in updates["projection_seconds"].items():
        print(f"  {name:18s} {seconds:7.1f} s")
    for entry in updates["projections"]:
        quality = ", ".join(f"{k} {v:.4f}" for k, v in entry["quality"].items())
        epochs = f" ({entry['params']['epochs']} epochs)" if "epochs" in entry["params"] else ""
        print(f"  {entry['id']:10s}{epochs:13s} {quality}")


if __name__ == "__main__":
    main()
