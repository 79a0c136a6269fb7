"""Importing per-step states from npz, HDF5 and parquet arrays (docs/import-format.md)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from pipeline import runformat
from pipeline.cli import main
from pipeline.core import steps
from pipeline.datasets import DataError
from pipeline.importers import base as importers
from pipeline.importers.arrays import read_arrays
from pipeline.kinds.imported import write_run

LENGTHS = np.array([5, 1, 7, 3])


def ragged(rng, width, lengths=LENGTHS):
    return rng.normal(size=(int(lengths.sum()), width)).astype(np.float32)


def padded(flat, lengths, T, side="right"):
    out = np.zeros((len(lengths), T, flat.shape[1]), flat.dtype)
    start = 0
    for i, length in enumerate(lengths):
        offset = T - length if side == "left" else 0
        out[i, offset:offset + length] = flat[start:start + length]
        start += length
    return out


@pytest.fixture
def classification_npz(tmp_path):
    rng = np.random.default_rng(1)
    n_rows = int(LENGTHS.sum())
    fields = {
        "h": ragged(rng, 6), "c": ragged(rng, 6), "forget_gate": ragged(rng, 6), "layer1_h": ragged(rng, 3),
        "lengths": LENGTHS, "labels": np.array([0, 2, 1, 2]), "classes": np.array(["yes", "no", "maybe"]),
        "predictions": rng.dirichlet(np.ones(3), size=n_rows).astype(np.float32),
        "split": np.array(["train", "validation", "test", "test"]), "names": np.array(["a", "b", "c", "d"]),
        "meta_signer": np.array(["s1", "s2", "s1", "s2"]),
    }
    path = tmp_path / "states.npz"
    np.savez(path, **fields)
    return path, fields


def test_imp105_npz_ragged_classification_round_trip(classification_npz, tmp_path):
    path, fields = classification_npz
    run_path, written = write_run(read_arrays(path), tmp_path / "runs", top_k=2)
    assert written
    run = runformat.Run(run_path)
    manifest = run.manifest
    for key in runformat.MANIFEST_KEYS:
        assert key in manifest
    assert manifest["kind"] == "classification" and manifest["status"] == "complete"
    assert manifest["classes"] == ["yes", "no", "maybe"] and manifest["n_examples"] == 4
    assert manifest["dataset"]["format"] == "npz"
    assert run.manifest["layers"] == [{"index": 0, "units": 6, "tensors": ["h", "c", "forget_gate"]},
                          {"index": 1, "units": 3, "tensors": ["h"]}]
    np.testing.assert_array_equal(run.step_matrix(0, "h"), fields["h"])
    np.testing.assert_array_equal(run.step_matrix(0, "forget_gate", [1, 4]), fields["forget_gate"][:, [1, 4]])
    np.testing.assert_array_equal(run.step_matrix(1, "h"), fields["layer1_h"])

    examples = run.examples()
    assert examples["row_start"].tolist() == [0, 5, 6, 13]
    assert examples["length"].tolist() == LENGTHS.tolist()
    assert examples["label_name"].tolist() == ["yes", "maybe", "no", "maybe"]
    assert examples["signer"].tolist() == ["s1", "s2", "s1", "s2"]
    assert examples["name"].tolist() == ["a", "b", "c", "d"]
    last = np.cumsum(LENGTHS) - 1
    expected = fields["predictions"][last].argmax(axis=1)
    assert examples["prediction"].tolist() == expected.tolist()
    assert examples["correct"].tolist() == (expected == fields["labels"]).tolist()
    test = expected[2:] == fields["labels"][2:]
    assert manifest["metrics"]["test"]["accuracy"] == pytest.approx(test.mean())

    steps = run.steps("predictions")
    assert steps[["example_id", "t"]].values[:6].tolist() == [[0, 0], [0, 1], [0, 2], [0, 3], [0, 4], [1, 0]]
    assert steps["top1_class"].tolist() == fields["predictions"].argmax(axis=1).tolist()
    ids = np.repeat(np.arange(4), LENGTHS)
    true_prob = fields["predictions"][np.arange(len(ids)), fields["labels"][ids]]
    np.testing.assert_allclose(steps["true_prob"], true_prob, rtol=1e-6)


def test_imp106_hdf5_padded_left_with_tokens_makes_a_language_model(tmp_path):
    rng = np.random.default_rng(2)
    flat = ragged(rng, 4)
    tokens = np.array(list("helloxabcdefgxyz"))
    kinds = np.array(["letter"] * 16)
    kinds[[5, 13]] = "mark"
    path = tmp_path / "states.h5"
    with h5py.File(path, "w") as f:
        f["h"] = padded(flat, LENGTHS, 9, "left")
        f["lengths"] = LENGTHS
        f["padding"] = "left"
        f["tokens"] = np.char.encode(tokens, "utf-8")          # HDF5 keeps text as bytes
        f["annotation_kind"] = np.char.encode(kinds, "utf-8")
        f["annotation_depth"] = np.arange(16, dtype=np.int32)
    run = runformat.Run(write_run(read_arrays(path, name="padded"), tmp_path / "runs")[0])
    assert run.kind == "language_model" and run.run_id == "padded"
    np.testing.assert_array_equal(run.step_matrix(0, "h"), flat)
    text = run.steps("text")
    assert "".join(text["char"]) == "helloxabcdefgxyz"          # single characters: no separator
    assert text["t"].tolist()[:7] == [0, 1, 2, 3, 4, 0, 0]
    assert run.manifest["annotations"]["kind"] == {"kind": "categorical", "description": "",
                                                   "categories": ["letter", "mark"]}
    assert run.manifest["annotations"]["depth"]["kind"] == "numeric"
    assert text["depth"].tolist() == list(range(16))
    assert run.manifest["metrics"] == {"test": {}}              # nothing to score without predictions


def test_imp107_parquet_long_table(tmp_path):
    rng = np.random.default_rng(3)
    flat = ragged(rng, 3)
    ids = np.repeat([10, 11, 12, 13], LENGTHS)
    frame = pd.DataFrame({"example_id": ids, **{f"h.{j}": flat[:, j] for j in range(3)},
                          "labels": np.repeat([1, 0, 1, 1], LENGTHS), "token": "x"})
    frame = frame.drop(columns="token")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({"classes": json.dumps(["cat", "dog"])})
    path = tmp_path / "states.parquet"
    pq.write_table(table, path)
    run = runformat.Run(write_run(read_arrays(path), tmp_path / "runs")[0])
    assert run.classes == ["cat", "dog"]
    assert run.examples()["label_name"].tolist() == ["dog", "cat", "dog", "dog"]
    assert run.examples()["length"].tolist() == LENGTHS.tolist()
    np.testing.assert_array_equal(run.step_matrix(0, "h"), flat)

    labels = np.repeat([1, 0, 1, 1], LENGTHS)
    labels[2] = 0                                                # changes inside sequence 0
    pq.write_table(pa.Table.from_pandas(frame.assign(labels=labels), preserve_index=False), path)
    with pytest.raises(DataError, match="labels changes within a sequence at row 2"):
        read_arrays(path)


def test_imp108_one_long_stream_and_offsets(tmp_path):
    rng = np.random.default_rng(4)
    stream = ragged(rng, 5)
    np.savez(tmp_path / "stream.npz", h=stream)
    imported = read_arrays(tmp_path / "stream.npz")
    assert imported.lengths.tolist() == [16] and imported.kind == "language_model"
    run = runformat.Run(write_run(imported, tmp_path / "runs")[0])
    assert run.steps("text")["char"].tolist() == [importers.PLACEHOLDER_TOKEN] * 16

    np.savez(tmp_path / "offsets.npz", h=stream, offsets=np.array([0, 5, 6, 13, 16]))
    assert read_arrays(tmp_path / "offsets.npz").lengths.tolist() == LENGTHS.tolist()


def test_imp109_partitioned_tables_read_like_files(classification_npz, tmp_path, monkeypatch):
    monkeypatch.setattr(steps, "BLOCK_ROWS", 3)          # blocks straddle the parts
    path, fields = classification_npz
    run = runformat.Run(write_run(read_arrays(path), tmp_path / "runs", partition_rows=4)[0])
    folder = run.path / "steps" / "layer0-h.parquet"
    parts = sorted(p.name for p in folder.iterdir())
    assert parts == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet", "part-00003.parquet"]
    assert [pq.ParquetFile(folder / p).metadata.num_rows for p in parts] == [4, 4, 4, 4]
    np.testing.assert_array_equal(run.step_matrix(0, "h"), fields["h"])       # the store's reader
    dataset = ds.dataset(folder, format="parquet")                             # what Dask/Spark read
    assert dataset.to_table(columns=["example_id"]).column(0).to_pylist() == np.repeat(range(4), LENGTHS).tolist()
    assert run.manifest["partition_rows"] == 4
    assert len(run.steps("predictions")) == 16


@pytest.mark.parametrize("fields, message", [
    ({"h": np.zeros((1000, 2), np.float32), "lengths": np.array([990])}, "h has 1000 rows but lengths sum to 990"),
    ({"h": np.zeros((6, 2), np.float32), "lengths": np.array([3, 3]), "labels": np.array(["a", "b"])},
     "labels has dtype <U1, expected integer"),
    ({"h": np.zeros((6, 2), np.int64)}, "h has dtype int64, expected floating point"),
    ({"h": np.zeros((6, 2), np.float32), "hidden": np.zeros(6)}, "unknown field\\(s\\) hidden"),
    ({"h": np.zeros((6, 2), np.float32), "lengths": np.array([3, 3]), "split": np.array(["train", "dev"])},
     "split has value\\(s\\) \\['dev'\\]"),
    ({"h": np.zeros((6, 2), np.float32), "tokens": np.array(list("abcde"))}, "tokens has 5 rows but lengths sum to 6"),
    ({"h": np.zeros((6, 2), np.float32), "offsets": np.array([0, 2, 5])}, "offsets ends at 5 but the states have 6 rows"),
    ({"h": np.zeros((6, 2), np.float32), "c": np.zeros((6, 3), np.float32)}, "h has 2 units but c has 3"),
    ({"h": np.zeros((2, 4, 2), np.float32), "lengths": np.array([4, 5])}, "padded to 4 steps but lengths has a sequence of 5"),
    ({"h": np.zeros((6, 2), np.float32), "lengths": np.array([3, 3]), "labels": np.array([0, 2]),
      "classes": np.array(["a", "b"])}, "class index 2 but classes names only 2"),
])
def test_imp110_bad_arrays_name_the_field(tmp_path, fields, message):
    np.savez(tmp_path / "bad.npz", **fields)
    with pytest.raises(DataError, match=message):
        read_arrays(tmp_path / "bad.npz")


def test_imp111_command_line_imports_skips_unchanged_and_reports_errors(classification_npz, tmp_path, capsys):
    path, _ = classification_npz
    runs = tmp_path / "runs"
    assert main(["import", "arrays", str(path), "--runs", str(runs), "--run-id", "mine"]) == 0
    assert "run mine (classification, imported)" in capsys.readouterr().out
    assert main(["import", "arrays", str(path), "--runs", str(runs), "--run-id", "mine"]) == 0
    assert "unchanged" in capsys.readouterr().out
    np.savez(tmp_path / "bad.npz", h=np.zeros((10, 2), np.float32), lengths=np.array([4, 4]))
    assert main(["import", "arrays", str(tmp_path / "bad.npz"), "--runs", str(runs), "--run-id", "mine"]) == 2
    assert "h has 10 rows but lengths sum to 8" in capsys.readouterr().err
    assert runformat.Run.open(runs, "mine").manifest["status"] == "complete"      # the old run is intact


def test_imp112_importing_again_replaces_what_the_old_run_had(classification_npz, tmp_path):
    path, fields = classification_npz
    runs = tmp_path / "runs"
    write_run(read_arrays(path), runs, "same", partition_rows=5)
    np.savez(tmp_path / "smaller.npz", h=fields["h"], lengths=LENGTHS)
    run = runformat.Run(write_run(read_arrays(tmp_path / "smaller.npz"), runs, "same")[0])
    assert run.kind == "language_model" and run.manifest["layers"] == [{"index": 0, "units": 6, "tensors": ["h"]}]
    assert sorted(p.name for p in (run.path / "steps").iterdir()) == ["layer0-h.parquet", "text.parquet"]
    assert (run.path / "steps" / "layer0-h.parquet").is_file()          # no longer a folder of parts
    assert "classes" in run.manifest and run.manifest["classes"] == []
    np.testing.assert_array_equal(run.step_matrix(0, "h"), fields["h"])


# ---------------------------------------------------------------------------------------------
# No second-class runs: imports carry their inputs and get projections like trained runs

@pytest.fixture
def signs_npz(tmp_path):
    """Thirty sequences of two classes whose states drift apart: enough for every projection."""
    rng = np.random.default_rng(4)
    lengths = rng.integers(3, 12, 30)
    labels = np.arange(30) % 2
    rows = int(lengths.sum())
    drift = np.repeat(labels, lengths)[:, None] * np.linspace(0, 1, 6)[None, :]
    fields = {"h": (rng.normal(0, 0.3, (rows, 6)) + drift).astype(np.float32), "lengths": lengths,
              "labels": labels, "classes": np.array(["left", "right"]),
              "inputs": rng.normal(size=(rows, 3)).astype(np.float32), "channels": np.array(["x", "y", "z"]),
              "split": np.array(["train"] * 20 + ["validation"] * 5 + ["test"] * 5)}
    path = tmp_path / "signs.npz"
    np.savez(path, **fields)
    return path, fields


SMALL_PROJECTIONS = {"hidden": [16, 8], "max_epochs": 3, "tsne_iterations": 250}


def test_imp101_an_import_keeps_its_inputs_and_gets_projections(signs_npz, tmp_path):
    path, fields = signs_npz
    run = runformat.Run(write_run(read_arrays(path), tmp_path / "runs", project_settings=SMALL_PROJECTIONS)[0])
    assert run.manifest["channels"] == ["x", "y", "z"] and run.manifest.origin == "imported"
    inputs = run.steps("inputs")
    np.testing.assert_array_equal(inputs[["x", "y", "z"]].to_numpy(), fields["inputs"])
    assert inputs["t"].iloc[run.rows_of(1)].tolist() == list(range(int(fields["lengths"][1])))
    assert set(run.manifest.projection_ids) == {"ae2", "ae3", "pca2", "pca3", "tsne2"}
    assert {"import", "project"} == set(run.manifest.stages)
    paths = run.projections("pca2")
    assert len(paths) == int(fields["lengths"].sum()) and paths["last"].sum() == 30
    quality = {p["id"]: p["quality"] for p in run.manifest.projections}
    assert 0 < quality["pca2"]["knn_preservation"] <= 1 and "trustworthiness" in quality["tsne2"]


def test_imp102_no_project_skips_and_the_project_command_adds_them(signs_npz, tmp_path, capsys):
    path, _ = signs_npz
    runs = tmp_path / "runs"
    assert main(["import", "arrays", str(path), "--runs", str(runs), "--run-id", "later", "--no-project",
                 "--quiet"]) == 0
    run = runformat.Run.open(runs, "later")
    assert run.manifest.projection_ids == [] and not run.has(runformat.PROJECTIONS_FILE)
    assert main(["project", "later", "--runs", str(runs), "--methods", "pca", "--quiet"]) == 0
    run = runformat.Run.open(runs, "later")
    assert run.manifest.projection_ids == ["pca2", "pca3"] and run.manifest.complete
    assert main(["project", "later", "--runs", str(runs), "--methods", "umap"]) == 2
    assert "project.methods: unknown umap" in capsys.readouterr().err


def test_imp103_channels_that_do_not_fit_the_inputs_are_refused(signs_npz, tmp_path):
    path, fields = signs_npz
    np.savez(tmp_path / "bad.npz", **{**fields, "channels": np.array(["x", "y"])})
    with pytest.raises(DataError, match="channels names 2 distinct channels but inputs has 3"):
        read_arrays(tmp_path / "bad.npz")


def test_imp104_two_units_give_2d_pictures_only(signs_npz, tmp_path):
    path, fields = signs_npz
    np.savez(tmp_path / "narrow.npz", **{**fields, "h": fields["h"][:, :2]})
    run = runformat.Run(write_run(read_arrays(tmp_path / "narrow.npz"), tmp_path / "runs",
                                  project_settings=SMALL_PROJECTIONS)[0])
    assert set(run.manifest.projection_ids) == {"ae2", "pca2", "tsne2"}
    assert run.manifest["projection_training"]["dims_skipped"]["dims"] == [3]
