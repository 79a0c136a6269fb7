"""Small imported runs for the dashboard's tests (callbacks and browser): what people bring from
elsewhere, written with the pipeline's own importers (docs/import-format.md).

- ``npz``: an arrays import with labels, split and inputs but no predictions (ids ``npz-import``);
- ``lstmvis``: an LSTMVis project in LSTMVis' own format (``lstm.yml``, HDF5 states, a word
  dictionary, a part-of-speech track), a language-model stream (``lstmvis-tiny-books``);
- ``torch``: a ``torch.nn.LSTM`` model's state_dict (seeded) with a softmax head and its inputs in
  an npz (``torch-import``); None when PyTorch is not installed.

Each is a few dozen sequences with light projection settings, so all three take seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: Projections cheap enough for tests: one autoencoder seed, a few epochs, small layers.
PROJECT = {"seeds": 1, "max_epochs": 3, "hidden": [16, 8]}
N_SEQUENCES = 36
CHANNELS = ["x", "y", "z"]
WORDS = ["the", "cat", "sat", "on", "a", "mat", "(", ")", "and", "dog"]
POS = ["DET", "NOUN", "VERB", "ADP", "PUNCT"]

NPZ_RUN = "npz-import"
LSTMVIS_RUN = "lstmvis-tiny-books"
TORCH_RUN = "torch-import"


def _sequences(rng, n: int = N_SEQUENCES, channels: int = len(CHANNELS)):
    lengths = rng.integers(4, 13, n).astype(np.int64)
    labels = (np.arange(n) % 3).astype(np.int64)
    inputs = np.concatenate([rng.normal(label, 1.0, (length, channels)) for label, length in
                             zip(labels, lengths)]).astype(np.float32)
    split = np.where(np.arange(n) % 6 == 0, "test", np.where(np.arange(n) % 6 == 3, "validation", "train"))
    return lengths, labels, inputs, split


def npz_import(folder: Path) -> Path:
    """An npz of per-step states with labels and inputs, no predictions."""
    rng = np.random.default_rng(11)
    lengths, labels, inputs, split = _sequences(rng)
    rows = int(lengths.sum())
    h = np.tanh(inputs @ rng.normal(0, 0.8, (len(CHANNELS), 6)) + rng.normal(0, 0.1, (rows, 6)))
    c = np.cumsum(h, axis=0) / 10
    path = Path(folder) / "npz-import.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, h=h.astype(np.float32), c=c.astype(np.float32), lengths=lengths, labels=labels,
             classes=np.array(["low", "mid", "high"]), split=split.astype(str), inputs=inputs,
             channels=np.array(CHANNELS))
    return path


def lstmvis_project(folder: Path, n_positions: int = 240, cells: int = 8) -> Path:
    """An LSTMVis project folder: one layer's output and state, a word sequence, a POS track."""
    import h5py
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    word_ids = rng.integers(1, len(WORDS) + 1, n_positions)          # LSTMVis' ids start at 1
    with h5py.File(folder / "states.h5", "w") as f:
        f["output1"] = rng.normal(0, 1.0, (n_positions, cells)).astype(np.float32)
        f["states1"] = np.cumsum(rng.normal(0, 0.3, (n_positions, cells)), axis=0).astype(np.float32)
    with h5py.File(folder / "train.h5", "w") as f:
        f["word_ids"] = word_ids
    (folder / "words.dict").write_text("".join(f"{w} {i}\n" for i, w in enumerate(WORDS, start=1)))
    with h5py.File(folder / "pos.h5", "w") as f:
        f["pos"] = rng.integers(0, len(POS), n_positions)
    (folder / "pos.dict").write_text("".join(f"{p} {i}\n" for i, p in enumerate(POS)))
    (folder / "lstm.yml").write_text("""\
name: tiny books
description: a generated LSTMVis project
files: {states: states.h5, train: train.h5, words: words.dict, pos: pos.h5, pos_dict: pos.dict}
word_sequence: {file: train, path: word_ids, dict_file: words}
states:
  file: states
  types: [{type: state, layer: 1, path: states1}, {type: output, layer: 1, path: output1}]
meta:
  part_of_speech: {file: pos, path: pos, dict: pos_dict, vis: {type: discrete, range: dict}}
""")
    return folder


def torch_model(folder: Path) -> tuple[Path, Path] | None:
    """A seeded ``nn.LSTM`` (2 layers) with a Linear head, its state_dict and inputs; None
    without PyTorch."""
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)

    class Classifier(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(len(CHANNELS), 8, 2, batch_first=True)
            self.fc = torch.nn.Linear(8, 3)

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / "classifier.pt"
    torch.save(Classifier().eval().state_dict(), weights)
    lengths, labels, inputs, split = _sequences(np.random.default_rng(7))
    sequences = folder / "sequences.npz"
    np.savez(sequences, inputs=inputs, lengths=lengths, labels=labels, split=split.astype(str),
             channels=np.array(CHANNELS), classes=np.array(["left", "up", "right"]))
    return weights, sequences


def write_imports(runs_dir: Path, sources: Path, project: dict | None = None) -> dict[str, str]:
    """Write the three imports into ``runs_dir`` (their sources under ``sources``); returns
    ``{"npz": run id, "lstmvis": run id, "torch": run id}`` (no "torch" without PyTorch)."""
    from pipeline.importers.arrays import read_arrays
    from pipeline.importers.lstmvis import read_lstmvis
    from pipeline.kinds.imported import write_run

    settings = PROJECT if project is None else project
    written = {}
    write_run(read_arrays(npz_import(sources)), runs_dir, NPZ_RUN, project_settings=settings)
    written["npz"] = NPZ_RUN
    write_run(read_lstmvis(lstmvis_project(sources / "lstmvis")), runs_dir, LSTMVIS_RUN,
              project_settings=settings)
    written["lstmvis"] = LSTMVIS_RUN
    model = torch_model(sources / "torch")
    if model is not None:
        from pipeline.importers.torch_model import read_torch
        write_run(read_torch(model[0], model[1], len(CHANNELS), 8, 2), runs_dir, TORCH_RUN,
                  project_settings=settings)
        written["torch"] = TORCH_RUN
    return written


_built: dict = {}


def session_imports(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """The three imports in one runs folder, written once per test process (the callback tests
    and the browser tests share them)."""
    if "runs" not in _built:
        root = tmp_path_factory.mktemp("imports")
        _built["ids"] = write_imports(root / "runs", root / "sources")
        _built["runs"] = root / "runs"
    return _built["runs"], _built["ids"]
