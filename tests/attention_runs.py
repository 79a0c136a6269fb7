"""Small runs with attention for the tests (pipeline, callbacks, browser), built once per session:

- ``synthetic-attention``: the synthetic signs with an attention-pooling classifier (``FAST``
  settings: a few epochs, 12 units), its projections light (PCA only);
- ``matrix-import``: an arrays import of 12 labelled sequences with inputs and a
  sequence-to-sequence attention matrix per sequence (``attention``, T_out x T_in, right-padded).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from factories import fast_config

ATTENTION_RUN = "synthetic-attention"
MATRIX_RUN = "matrix-import"
MATRIX_LENGTHS = np.array([6, 4, 9, 5, 7, 3, 8, 6, 5, 9, 4, 7])
T_OUT = 5


def attention_config() -> dict:
    return fast_config("synthetic", model={"attention": True}, project={"methods": ["pca"]})


def matrix_npz(folder: Path) -> Path:
    """An npz with states, inputs, labels and a (12, T_OUT, 9) attention matrix, right-padded;
    output step o of sequence i looks at input step round(o * (length - 1) / (T_OUT - 1)) most."""
    rng = np.random.default_rng(3)
    lengths = MATRIX_LENGTHS
    rows, t_in = int(lengths.sum()), int(lengths.max())
    labels = np.arange(len(lengths)) % 2
    inputs = rng.normal(0, 1, (rows, 3)).astype(np.float32)
    h = np.tanh(inputs @ rng.normal(0, 0.8, (3, 4))).astype(np.float32)
    matrix = np.zeros((len(lengths), T_OUT, t_in), np.float32)
    for i, length in enumerate(lengths):
        steps = np.arange(length)
        for o in range(T_OUT):
            peak = o * (length - 1) / (T_OUT - 1)
            scores = -((steps - peak) ** 2)
            matrix[i, o, :length] = np.exp(scores) / np.exp(scores).sum()
    path = Path(folder) / "matrix-import.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, h=h, lengths=lengths, labels=labels, classes=np.array(["one", "two"]),
             inputs=inputs, attention=matrix)
    return path


def attention_runs(runs: Path) -> Path:
    """The folder ``runs`` with both runs in it."""
    from pipeline.importers.arrays import read_arrays
    from pipeline.kinds.classification import run_classification
    from pipeline.kinds.imported import write_run
    summary = run_classification(attention_config(), runs, ATTENTION_RUN)
    assert summary.status == "complete"
    write_run(read_arrays(matrix_npz(runs.parent / "imports"), MATRIX_RUN), runs,
              project_settings={"methods": ["pca"]})
    return runs
