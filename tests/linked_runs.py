"""A copy of the small synthetic run whose projections picture two layer/tensor pairs: its own
(the last layer's h) and a PCA of layer 0's c written beside them (id ``pca2-l0c``; the pipeline
itself projects one pair per run), for the states choice of the paths and last activations."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from pipeline import runformat

SECOND = "pca2-l0c"


def two_state_runs(folder: Path, synthetic_runs_dir: Path) -> Path:
    """``folder`` holding ``synthetic`` with a second projected pair (layer 0's c), returned."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "synthetic"
    shutil.copytree(Path(synthetic_runs_dir) / "synthetic", target)
    run = runformat.Run(target)
    cells = run.step_matrix(0, "c")
    table = pd.read_parquet(target / runformat.PROJECTIONS_FILE)
    rows = table[table["projection"] == "pca2"].sort_values(["example_id", "t"]).copy()
    frame = run.examples().sort_values("example_id")
    order = np.concatenate([np.arange(s, s + n) for s, n in zip(frame["row_start"], frame["length"])])
    codes = PCA(2, random_state=0).fit_transform(cells[order]).astype(np.float32)
    rows = rows.assign(projection=SECOND, x=codes[:, 0], y=codes[:, 1])
    pd.concat([table, rows], ignore_index=True).to_parquet(target / runformat.PROJECTIONS_FILE, index=False)
    manifest = json.loads((target / runformat.MANIFEST_FILE).read_text())
    manifest["projections"].append({"id": SECOND, "method": "pca", "dims": 2, "layer": 0, "state": "c",
                                    "scope": "paths", "params": {}, "quality": {}})
    (target / runformat.MANIFEST_FILE).write_text(json.dumps(manifest))
    return folder
