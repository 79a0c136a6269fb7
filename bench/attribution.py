"""Time the attribute stage alone on a copy of a finished classification run (the real Auslan one).

    python bench/attribution.py RUN --work DIR [--set key=value ...]

Copies the run folder ``RUN`` (left untouched) to ``DIR/<run id>``, reruns only the attribute stage
there with the current defaults (``--set steps=16`` etc. override them), and prints the stage's
wall and process CPU seconds with the load average before and after (the machines are shared),
the seconds of each method, the completeness gaps and the shapes of the outputs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pipeline import attribute, runformat  # noqa: E402
from pipeline.core.progress import QUIET  # noqa: E402
from pipeline.core.stages import StageContext  # noqa: E402
from pipeline.kinds.classification import stage_hashes  # noqa: E402
from pipeline.runformat import Run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a finished classification run (not modified)")
    parser.add_argument("--work", type=Path, required=True, help="folder the copy is made in")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="an attribute setting (JSON value), e.g. steps=16")
    args = parser.parse_args()
    source = args.run.resolve()
    target = args.work.resolve() / source.name
    if target == source:
        raise SystemExit("--work must not be the run's own folder")
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)

    manifest = json.loads((target / runformat.MANIFEST_FILE).read_text())
    overrides = {key: json.loads(value) for key, value in (item.split("=", 1) for item in args.set)}
    config = {**manifest["config"], "attribute": {**attribute.DEFAULTS, **overrides}}
    ctx = StageContext(config, stage_hashes(config), target.parent, target.name,
                       ["data", "train", "extract", "attribute", "project"], QUIET)
    ctx.stage = "attribute"
    load_before = os.getloadavg()
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        note = attribute.attribute_stage(ctx)
    finally:
        ctx.close()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    load_after = os.getloadavg()

    run = Run(target)
    described = run.manifest["attribution"]
    print(f"attribute stage: {wall:.1f} s wall, {cpu:.1f} s process CPU, load average "
          f"{' '.join(f'{v:.1f}' for v in load_before)} -> {' '.join(f'{v:.1f}' for v in load_after)}")
    print(f"  {note}")
    print("  " + json.dumps({k: v for k, v in described.items() if k != "baseline"}))
    gaps = run.examples()["completeness_gap"].to_numpy()
    print(f"  completeness gap: median {np.median(gaps):.2%}, p90 {np.quantile(gaps, 0.9):.2%}, "
          f"max {gaps.max():.2%}, over 5% {np.mean(gaps > 0.05):.1%} of {len(gaps)}")
    for name in (*runformat.ATTRIBUTION_FILES.values(), runformat.OCCLUSION_FILE, runformat.ATTRIBUTION_BY_CLASS_FILE):
        table = run.read_table(name)
        print(f"  {name}: {table.shape[0]} rows x {table.shape[1]} columns {list(table.columns[:4])}...")


if __name__ == "__main__":
    main()
