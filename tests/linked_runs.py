"""Runs whose projections picture more than one layer/tensor pair, for the states choice of the
paths, last activations, film and inspector (the pipeline itself projects one pair per run):

- ``two_state_runs``: a copy of the small synthetic run (one layer) with a PCA of layer 0's c
  written beside its own projections (id ``pca2-l0c``);
- ``stacked_runs``: a small synthetic run with two LSTM layers (id ``stacked``), its own
  projections picturing the last layer's h, plus a PCA of layer 0's h (id ``pca2-l0h``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from pipeline import runformat

SECOND = "pca2-l0c"
STACKED, LOWER = "stacked", "pca2-l0h"


def add_pca_projection(target: Path, layer: int, tensor: str, projection_id: str) -> None:
    """A 2-D PCA of ``layer``'s ``tensor`` at every step, written into the run at ``target`` beside
    its projections (rows in the order of its ``pca2``) and described in its manifest."""
    run = runformat.Run(target)
    states = run.step_matrix(layer, tensor)
    table = pd.read_parquet(target / runformat.PROJECTIONS_FILE)
    rows = table[table["projection"] == "pca2"].sort_values(["example_id", "t"]).copy()
    frame = run.examples().sort_values("example_id")
    order = np.concatenate([np.arange(s, s + n) for s, n in zip(frame["row_start"], frame["length"])])
    codes = PCA(2, random_state=0).fit_transform(states[order]).astype(np.float32)
    rows = rows.assign(projection=projection_id, x=codes[:, 0], y=codes[:, 1])
    pd.concat([table, rows], ignore_index=True).to_parquet(target / runformat.PROJECTIONS_FILE, index=False)
    manifest = json.loads((target / runformat.MANIFEST_FILE).read_text())
    manifest["projections"].append({"id": projection_id, "method": "pca", "dims": 2, "layer": layer,
                                    "state": tensor, "scope": "paths", "params": {}, "quality": {}})
    (target / runformat.MANIFEST_FILE).write_text(json.dumps(manifest))


def two_state_runs(folder: Path, synthetic_runs_dir: Path) -> Path:
    """``folder`` holding ``synthetic`` with a second projected pair (layer 0's c), returned."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "synthetic"
    shutil.copytree(Path(synthetic_runs_dir) / "synthetic", target)
    add_pca_projection(target, 0, "c", SECOND)
    return folder


def stacked_runs(folder: Path) -> Path:
    """``folder`` holding ``stacked`` (two LSTM layers of 12 and 8 units, trained and projected like
    the tests' synthetic run) with layer 0's h pictured too, returned."""
    from factories import fast_config
    from pipeline.kinds.classification import run_classification
    folder.mkdir(parents=True, exist_ok=True)
    summary = run_classification(fast_config("synthetic", model={"units": [12, 8]}), folder, run_id=STACKED)
    assert summary.status == "complete", summary
    add_pca_projection(folder / STACKED, 0, "h", LOWER)
    return folder
