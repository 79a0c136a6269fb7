"""The language-model kind: the character LM, its windows, the NumPy recompute in lanes, the run
format, the document paths, select & match."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from pipeline import runformat
from pipeline.analysis import match
from pipeline.cli import main
from pipeline.analysis import lstm
from pipeline.core.config import merge
from pipeline.datasets import text as corpora
from pipeline.kinds import language_model


def test_lm102_windows_cover_every_next_character_once_and_reset_at_document_starts():
    from pipeline.models.char_lm import make_windows
    lengths = np.array([7, 1, 12, 5, 30])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    ids = np.arange(lengths.sum(), dtype=np.int32)          # id = stream position
    windows = make_windows(ids, starts, lengths, np.array([0, 2, 3, 4, 1]), n_lanes=2, window=4,
                           rng=np.random.default_rng(0))
    real = windows.weights > 0
    assert real.sum() == (lengths - 1).sum()                 # one target per character with a next one
    assert np.array_equal(np.sort(windows.inputs[real]), np.sort(np.concatenate(
        [np.arange(s, s + n - 1) for s, n in zip(starts, lengths)])))
    assert np.all(windows.targets[real] == windows.inputs[real] + 1)
    # a lane's state is reset exactly where a document's first window starts
    first_windows = np.isin(windows.inputs[:, :, 0], starts) & real[:, :, 0]
    assert np.all(windows.reset[first_windows] == 1)
    assert np.all(windows.reset[real[:, :, 0] & ~first_windows] == 0)


def test_lm103_numpy_recompute_equals_keras_for_every_document():
    from pipeline.models.char_lm import build_char_lm, zero_states
    from pipeline.models.keras_weights import network_weights
    corpus = corpora.parens_corpus(n_documents=12, seed=1)
    vocabulary = corpus.vocabulary()
    ids = corpus.encode(vocabulary)
    model = build_char_lm(len(vocabulary), [10, 6], embedding=5, dropout=0.2)
    weights = network_weights(model, padding="none")[0]
    first = lstm.lane_layer(weights.layers[0], weights.embedding[ids], corpus.lengths, n_lanes=5, chunk=16)
    second = lstm.lane_layer(weights.layers[1], first["h"], corpus.lengths, n_lanes=3)
    # One Keras call on the documents right-padded to the longest: outputs at real steps are exact.
    longest = int(corpus.lengths.max())
    batch = np.zeros((len(corpus.lengths), longest), np.int32)
    for i, (start, length) in enumerate(zip(corpus.starts, corpus.lengths)):
        batch[i, :length] = ids[start:start + length]
    probabilities, h0, c0, h1, c1 = (np.asarray(t) for t in model.predict_on_batch(
        [batch, *zero_states(model, len(batch))]))
    recomputed = lstm.step_probabilities(weights, second["h"])
    for i, (start, length) in enumerate(zip(corpus.starts, corpus.lengths)):
        np.testing.assert_allclose(probabilities[i, :length], recomputed[start:start + length], atol=1e-5)
        if length == longest:                     # no padding: Keras' final states are the document's
            np.testing.assert_allclose(h0[i], first["h"][start + length - 1], atol=1e-5)
            np.testing.assert_allclose(c1[i], second["c"][start + length - 1], atol=1e-5)
    gates = first["forget_gate"]
    assert gates.min() >= 0 and gates.max() <= 1 and np.abs(first["candidate"]).max() <= 1


def test_lm104_a_text_run_has_the_language_model_format(text_run, text_runs_dir):
    manifest = text_run.manifest
    assert set(runformat.MANIFEST_KEYS) <= set(manifest)
    assert manifest["kind"] == "language_model" and manifest["status"] == "complete"
    assert manifest["classes"] == sorted(set("()01234\n"))
    assert set(manifest["annotations"]) == {"depth"}
    for split in ("train", "validation", "test"):
        metrics = manifest["metrics"][split]
        assert 0 < metrics["accuracy"] <= 1
        assert metrics["bits_per_char"] == pytest.approx(metrics["loss"] / np.log(2), rel=1e-4)
    examples = text_run.examples()
    assert list(examples.columns[:5]) == ["example_id", "name", "split", "length", "row_start"]
    assert np.array_equal(examples["row_start"], np.concatenate([[0], np.cumsum(examples["length"])[:-1]]))
    n = int(examples["length"].sum())
    steps = text_run.steps("text")
    assert len(steps) == n and list(steps.columns) == ["example_id", "t", "char", "depth"]
    assert "".join(steps["char"]).count("\n") == len(examples)
    for name in [runformat.steps_file(0, kind) for kind in runformat.TENSOR_KINDS] + ["steps/predictions.parquet"]:
        table = text_run.read_table(name, columns=["example_id", "t"])
        assert len(table) == n
        assert np.array_equal(table["example_id"], steps["example_id"]) and np.array_equal(table["t"], steps["t"])
    predictions = text_run.steps("predictions")
    last = (examples["row_start"] + examples["length"] - 1).to_numpy()
    assert predictions["true_prob"].isna().sum() == len(examples)
    assert predictions["true_prob"].iloc[last].isna().all() and (predictions["target"].iloc[last] == -1).all()
    has_next = predictions["target"] >= 0
    chars = steps["char"].to_numpy()
    assert np.array_equal(np.asarray(manifest["classes"])[predictions["target"][has_next]],
                          chars[np.flatnonzero(has_next) + 1])
    # the manifest's metrics are the predictions' own, per split
    split = examples["split"].to_numpy()[steps["example_id"]]
    test_rows = has_next.to_numpy() & (split == "test")
    accuracy = np.mean(predictions["top1_class"][test_rows] == predictions["target"][test_rows])
    assert manifest["metrics"]["test"]["accuracy"] == pytest.approx(accuracy, abs=1e-6)
    history = text_run.history()
    assert {"loss", "val_loss", "accuracy", "val_accuracy", "bits_per_char", "grad_norm"} <= set(history)


def test_lm105_the_saved_model_reloads_in_safe_mode(text_run):
    from pipeline.models.keras_weights import load_keras_model
    model = load_keras_model(text_run.path / language_model.MODEL_FILE)
    assert not any("lambda" in type(layer).__name__.lower() for layer in model.layers)
    assert model.outputs[0].shape[-1] == len(text_run.classes)


def test_lm106_an_unchanged_text_run_resumes_without_recomputing(text_runs_dir):
    from factories import TEXT_FAST
    config = merge(language_model.default_config("parens"), TEXT_FAST)
    summary = language_model.run_language_model(config, text_runs_dir)
    assert [stage.seconds for stage in summary.stages] == [None] * 4
    assert [stage.note for stage in summary.stages][:3] == ["unchanged"] * 3


def test_lm107_nesting_level_4_selection_matches_nesting_level_4_ranges(text_run):
    """LSTMVis' Figure 7: select a nesting-level-4 group; its top matches are level-4 ranges too."""
    text = "".join(text_run.steps("text", columns=["char"])["char"])
    depth = text_run.steps("text", columns=["depth"])["depth"].to_numpy()
    starts = text_run.examples()["row_start"].to_numpy()
    states = np.asfortranarray(text_run.step_matrix(0, "h"))
    group = max(re.finditer(r"\(4+", text), key=lambda m: (len(m.group()), -m.start()))
    first, last = group.start(), group.end() - 1           # "(" opening level 4 .. its last "4"
    assert np.all(depth[first:last + 1] == 4)
    cells = match.select_cells(states, first, last, 0.3, boundaries=starts)
    assert len(cells) > 0
    found = match.match(states, cells, 0.3, top_k=50, boundaries=starts)
    assert len(found) == 50
    level_4 = np.mean([np.all(depth[m.start:m.end + 1] == 4) for m in found])
    assert level_4 >= 0.8


def test_lm108_cli_errors_name_the_problem_and_write_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\nnot \xff fine\n")
    runs = tmp_path / "runs"
    assert main(["run", "text", "--source", str(bad), "--runs", str(runs), "--quiet"]) == 2
    assert "bad.txt: not UTF-8 text: byte 0xff at byte offset 9 (line 2)" in capsys.readouterr().err
    assert main(["run", "text", "--corpus", "file", "--runs", str(runs), "--quiet"]) == 2
    assert "--source FILE" in capsys.readouterr().err
    assert not runs.exists()


def test_lm109_cli_builds_a_text_run_from_a_file(tmp_path):
    source = tmp_path / "poem.txt"
    source.write_text("".join(f"Line {i}: \u201cquoted {i % 7}\u201d (and {i})\n\n" for i in range(400)))
    runs = tmp_path / "runs"
    code = main(["run", "text", "--source", str(source), "--runs", str(runs), "--units", "8",
                 "--epochs", "1", "--embedding", "4", "--quiet"])
    assert code == 0
    run = runformat.Run.open(runs, "text-poem")
    assert run.kind == "language_model" and run.manifest["dataset"]["corpus"] == "poem"
    assert set(run.manifest["annotations"]) == {"char_class", "column", "inside_quotes", "paren_depth", "word_start",
                                                "word_position"}
    steps = run.steps("text")
    assert "".join(steps["char"]) == source.read_text()
    assert isinstance(steps["char_class"].dtype, pd.CategoricalDtype)
    assert json.loads((run.path / "manifest.json").read_text())["config"]["model"]["units"] == [8]


def test_lm101_text_runs_get_document_paths_through_state_space(text_run):
    """PCA paths of every document (the example-paths view of a text run)."""
    assert text_run.manifest.projection_ids == ["pca2", "pca3"]
    paths = text_run.projections("pca2")
    examples = text_run.examples()
    assert len(paths) == int(examples["length"].sum()) and paths["last"].sum() == len(examples)
    assert paths.groupby("example_id")["t"].max().tolist() == (examples["length"] - 1).tolist()
    described = text_run.manifest.projections[0]
    assert described["method"] == "pca" and described["scope"] == "paths"
    assert described["params"]["explained_variance_ratio"][0] > 0
