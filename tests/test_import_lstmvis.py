"""Importing an LSTMVis project: the tests write a small one in LSTMVis' own format.

The format follows LSTMVis' README, docs/chapter/meta.md and lstmdata/data_handler.py:
``lstm.yml`` naming HDF5 files (states ``states{k}``/``output{k}`` of shape (positions, cells),
word ids of shape (positions,)), ``.dict`` files of ``word id`` lines, and meta tracks.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from pipeline import runformat
from pipeline.analysis import match
from pipeline.cli import main
from pipeline.datasets import DataError
from pipeline.importers.lstmvis import read_lstmvis
from pipeline.kinds.imported import write_run

WORDS = ["<s>", "<unk>", "</s>", "the", "cat", "sat", "on", "mat", "(", ")"]
POS = ["DET", "NOUN", "VERB", "ADP", "PUNCT", "X"]


def make_project(folder, n_positions=60, cells=8, seed=0):
    """An LSTMVis project: two layers (output and state), a word sequence, two meta tracks."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    word_ids = rng.integers(1, len(WORDS) + 1, n_positions)          # LSTMVis' ids start at 1
    states = {name: rng.normal(0, 1.5, (n_positions, cells)).astype(np.float32)
              for name in ("output1", "states1", "output2", "states2")}
    with h5py.File(folder / "states.h5", "w") as f:
        for name, values in states.items():
            f[name] = values
    with h5py.File(folder / "train.h5", "w") as f:
        f["word_ids"] = word_ids
    (folder / "words.dict").write_text("".join(f"{w} {i}\n" for i, w in enumerate(WORDS, start=1)))
    pos_ids = rng.integers(0, len(POS), n_positions)
    with h5py.File(folder / "pos.h5", "w") as f:
        f["pos"] = pos_ids
        f["depth"] = np.arange(n_positions) % 4
    (folder / "pos.dict").write_text("".join(f"{p} {i}\n" for i, p in enumerate(POS)))
    (folder / "lstm.yml").write_text("""\
name: tiny books  # project name
description: a generated LSTMVis project

files: # assign files to reference name
  states: states.h5
  train: train.h5
  words: words.dict
  pos: pos.h5
  pos_dict: pos.dict

word_sequence:
  file: train
  path: word_ids
  dict_file: words

states:
  file: states
  types: [
    {type: state, layer: 1, path: states1},
    {type: output, layer: 1, path: output1, transform: none},
    {type: state, layer: 2, path: states2},
    {type: output, layer: 2, path: output2}
  ]

meta:
  part_of_speech:
    file: pos
    path: pos
    dict: pos_dict
    vis:
      type: discrete
      range: dict
  depth:
    file: pos
    path: depth
    vis:
      type: scalar
      range: [0, 3]
""")
    return word_ids, pos_ids, states


def test_ilv001_lstmvis_project_becomes_a_language_model_run(tmp_path):
    word_ids, pos_ids, states = make_project(tmp_path / "tiny")
    run = runformat.Run(write_run(read_lstmvis(tmp_path / "tiny"), tmp_path / "runs")[0])
    assert run.run_id == "lstmvis-tiny-books"
    assert run.kind == "language_model" and run.manifest["status"] == "complete"
    assert run.manifest["n_examples"] == 1 and run.examples()["length"].tolist() == [60]
    assert run.manifest["layers"] == [{"index": 0, "units": 8, "tensors": ["h", "c"]},
                          {"index": 1, "units": 8, "tensors": ["h", "c"]}]
    # LSTMVis shows tanh(value) unless the type says transform: none; we store what it shows.
    np.testing.assert_array_equal(run.step_matrix(0, "h"), states["output1"])
    np.testing.assert_allclose(run.step_matrix(0, "c"), np.tanh(states["states1"]), rtol=1e-6)
    np.testing.assert_allclose(run.step_matrix(1, "h"), np.tanh(states["output2"]), rtol=1e-6)
    assert run.manifest["imported"]["lstmvis"]["states"]["layer0-c"] == {
        "path": "states1", "lstmvis_layer": 1, "transform": "tanh"}

    text = run.steps("text")
    assert text["token"].tolist() == [WORDS[i - 1] for i in word_ids]
    assert text["char"].tolist()[:2] == [WORDS[word_ids[0] - 1] + " ", WORDS[word_ids[1] - 1] + " "]
    assert text["part_of_speech"].astype(str).tolist() == [POS[i] for i in pos_ids]
    assert run.manifest["annotations"]["part_of_speech"]["kind"] == "categorical"
    assert run.manifest["annotations"]["depth"]["kind"] == "numeric"
    assert text["depth"].tolist() == (np.arange(60) % 4).tolist()


def test_ilv002_select_and_match_on_an_imported_project_equals_the_engine_on_lstmvis_values(tmp_path):
    _, _, states = make_project(tmp_path / "tiny")
    run = runformat.Run(write_run(read_lstmvis(tmp_path / "tiny"), tmp_path / "runs")[0])
    shown = np.tanh(states["states2"])                    # what LSTMVis matches on
    cells = match.select_cells(shown, 10, 11, 0.3)
    ours = match.match(str(run.path / runformat.steps_file(1, "c")), cells, 0.3, top_k=10)
    assert len(cells) and len(ours) > 1
    assert ours == match.match(shown, cells, 0.3, top_k=10)


def test_ilv003_raw_keeps_the_stored_values(tmp_path):
    _, _, states = make_project(tmp_path / "tiny")
    run = runformat.Run(write_run(read_lstmvis(tmp_path / "tiny", raw=True), tmp_path / "runs")[0])
    np.testing.assert_array_equal(run.step_matrix(1, "c"), states["states2"])


def test_ilv004_command_line_and_errors_name_the_file(tmp_path, capsys):
    make_project(tmp_path / "data" / "tiny")
    runs = tmp_path / "runs"
    assert main(["import", "lstmvis", str(tmp_path / "data" / "tiny"), "--runs", str(runs)]) == 0
    assert "lstmvis-tiny-books (language_model, imported)" in capsys.readouterr().out
    assert main(["import", "lstmvis", str(tmp_path / "data"), "--runs", str(runs)]) == 2
    assert "projects inside it: tiny" in capsys.readouterr().err

    project = tmp_path / "data" / "tiny"
    (project / "words.dict").write_text("the 1\ncat\n")
    with pytest.raises(DataError, match=r"words.dict, line 2: expected 'word id'"):
        read_lstmvis(project)
    (project / "words.dict").write_text("the 1\n")
    with pytest.raises(DataError, match="word_sequence has id .* that words.dict does not list"):
        read_lstmvis(project)
    make_project(project)
    with h5py.File(project / "states.h5", "a") as f:
        del f["output2"]
        f["output2"] = np.zeros((59, 8), np.float32)
    with pytest.raises(DataError, match=r"states.types\[3\] \(output2\) has shape \(59, 8\), expected \(60, cells\)"):
        read_lstmvis(project)
    config = (project / "lstm.yml").read_text().replace("path: states2", "path: cells2")
    (project / "lstm.yml").write_text(config)
    with pytest.raises(DataError, match="states.h5: no dataset 'cells2'"):
        read_lstmvis(project)
