"""The classification kind through the stage engine: the run it writes, resume, recompute, bad input, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from factories import fast_config, random_dataset
from pipeline import runformat
from pipeline.core import stages, steps
from pipeline.analysis.layout import StepLayout
from pipeline.datasets import DataError
from pipeline.kinds import classification

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------
# The session's synthetic run, read back through runformat.Run

def test_cls102_manifest_has_the_fixed_keys_and_the_run_details(synthetic_run):
    manifest = synthetic_run.manifest
    assert set(runformat.MANIFEST_KEYS) <= set(manifest)
    assert manifest["status"] == "complete" and manifest["kind"] == "classification"
    assert set(manifest["stages"]) >= {"data", "train", "extract"}
    assert all({"input_hash", "seconds"} <= set(record) for record in manifest["stages"].values())
    assert manifest["layers"] == [{"index": 0, "units": 12}]
    assert manifest["n_examples"] == len(synthetic_run.examples())
    assert sum(manifest["splits"].values()) == manifest["n_examples"]
    assert set(manifest["metrics"]) == {"train", "validation", "test"}
    assert {"tensorflow", "keras", "numpy", "pandas", "pyarrow", "python"} <= set(manifest["versions"])
    assert manifest["top_k"] == 5 and set(manifest["hands"]) == {"left", "right"}
    assert len(manifest["channels"]) == 22 and manifest["dataset"]["name"] == "synthetic"


def test_cls103_examples_table_describes_every_sequence(synthetic_run):
    examples = synthetic_run.examples()
    assert examples["example_id"].tolist() == list(range(len(examples)))
    lengths = examples["length"].to_numpy()
    np.testing.assert_array_equal(examples["row_start"], np.concatenate([[0], np.cumsum(lengths)[:-1]]))
    assert set(examples["split"]) == {"train", "validation", "test"}
    assert (examples["label_name"] == np.array(synthetic_run.classes)[examples["label"]]).all()
    assert (examples["correct"] == (examples["prediction"] == examples["label"])).all()
    assert examples["confidence"].between(0, 1).all() and examples["true_prob"].between(0, 1).all()
    assert {"signer", "session"} <= set(examples.columns)            # the data set's metadata
    test = examples[examples["split"] == "test"]
    assert test["correct"].mean() == pytest.approx(synthetic_run.manifest["metrics"]["test"]["accuracy"], abs=1e-6)


def test_cls104_step_tables_hold_exactly_the_real_steps_in_order(synthetic_run):
    examples = synthetic_run.examples()
    n_rows = int(examples["length"].sum())
    for kind in runformat.TENSOR_KINDS:
        matrix = synthetic_run.step_matrix(0, kind)
        assert matrix.shape == (n_rows, 12) and matrix.dtype == np.float32
    some = synthetic_run.step_matrix(0, "forget_gate", units=[0, 5])
    np.testing.assert_array_equal(some, synthetic_run.step_matrix(0, "forget_gate")[:, [0, 5]])
    for name in ("inputs", "predictions"):
        table = synthetic_run.steps(name, columns=["example_id", "t"])
        assert len(table) == n_rows
        np.testing.assert_array_equal(table["example_id"], np.repeat(examples["example_id"], examples["length"]))
        rows = synthetic_run.rows_of(3)
        assert table["t"].iloc[rows].tolist() == list(range(int(examples.loc[3, "length"])))


def test_cls105_predictions_end_with_the_examples_prediction(synthetic_run):
    examples = synthetic_run.examples()
    predictions = synthetic_run.steps("predictions")
    assert [c for c in predictions.columns if c.startswith("top")] == [
        f"top{j}_{what}" for j in range(1, 6) for what in ("class", "prob")]
    last = examples["row_start"] + examples["length"] - 1
    np.testing.assert_array_equal(predictions["top1_class"].to_numpy()[last], examples["prediction"])
    np.testing.assert_allclose(predictions["true_prob"].to_numpy()[last], examples["true_prob"])


def test_cls106_inputs_are_the_raw_frames(synthetic_run):
    from pipeline.datasets.registry import load_dataset
    dataset = load_dataset(synthetic_run.manifest["config"]["dataset"])
    inputs = synthetic_run.steps("inputs", columns=dataset.channels).to_numpy()
    layout = StepLayout(dataset.lengths, dataset.n_steps)
    np.testing.assert_array_equal(inputs, layout.real_rows(dataset.X))


def test_cls107_history_has_one_row_per_epoch(synthetic_run):
    history = synthetic_run.history()
    assert history["epoch"].tolist() == list(range(1, len(history) + 1))
    assert {"loss", "val_accuracy", "grad_norm", "layer0_forget_gate_saturated"} <= set(history.columns)


def test_cls108_saved_model_reloads_in_safe_mode(synthetic_run):
    from pipeline.models.keras_weights import load_keras_model
    model = load_keras_model(synthetic_run.path / classification.MODEL_FILE)
    assert model.output_shape == (None, len(synthetic_run.classes))


# ---------------------------------------------------------------------------------------------
# Resuming, recomputing, refusing bad input (small random data; no projections)

def _config(**overrides):
    return fast_config("random", **{"train": {"epochs": 2}, "model": {"units": [6]},
                                    "project": {"methods": []}, "attribute": {"methods": []}, **overrides})


def _loader(config):
    return random_dataset(seed=config["seed"])


def _ran(summary):
    return {stage.name: stage.seconds is not None for stage in summary.stages}


def test_cls109_interrupted_run_resumes_without_retraining(tmp_path, monkeypatch):
    real_write = steps.write_steps

    def broken(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(steps, "write_steps", broken)
    with pytest.raises(RuntimeError, match="interrupted"):
        classification.run_classification(_config(), tmp_path, loader=_loader)
    manifest = json.loads((tmp_path / "random" / "manifest.json").read_text())
    assert set(manifest["stages"]) == {"data", "train"} and manifest["status"] == "incomplete"
    model_file = tmp_path / "random" / "models" / "classifier.keras"
    trained_at = model_file.stat().st_mtime_ns

    monkeypatch.setattr(steps, "write_steps", real_write)
    summary = classification.run_classification(_config(), tmp_path, loader=_loader)
    assert _ran(summary) == {"data": False, "train": False, "extract": True, "attribute": False, "project": False}
    assert summary.status == "complete"
    assert model_file.stat().st_mtime_ns == trained_at
    run = runformat.Run.open(tmp_path, "random")
    assert "prediction" in run.examples() and len(run.steps("predictions")) == run.examples()["length"].sum()

    again = classification.run_classification(_config(), tmp_path, loader=_loader)
    assert not any(_ran(again).values())


def test_cls110_changed_setting_recomputes_its_stage_and_later_ones(tmp_path, monkeypatch):
    classification.run_classification(_config(), tmp_path, loader=_loader)
    summary = classification.run_classification(_config(extract={"top_k": 2}), tmp_path, loader=_loader)
    assert _ran(summary) == {"data": False, "train": False, "extract": True, "attribute": False, "project": False}
    assert "top3_class" not in runformat.Run.open(tmp_path, "random").steps("predictions")
    summary = classification.run_classification(_config(extract={"top_k": 2}, train={"epochs": 1}), tmp_path, loader=_loader)
    assert _ran(summary) == {"data": False, "train": True, "extract": True, "attribute": False, "project": False}
    assert len(runformat.Run.open(tmp_path, "random").history()) == 1
    summary = classification.run_classification(_config(extract={"top_k": 2}, train={"epochs": 1}), tmp_path,
                                  loader=_loader, force=True)
    assert all(_ran(summary)[stage] for stage in ("data", "train", "extract"))


def test_cls111_right_padded_data_is_stored_like_left_padded(tmp_path, monkeypatch):
    left = random_dataset(seed=9)
    classification.run_classification(_config(), tmp_path, loader=lambda config: random_dataset(seed=9, padding="right"))
    run = runformat.Run.open(tmp_path, "random")
    layout = StepLayout(left.lengths, left.n_steps)
    np.testing.assert_array_equal(run.steps("inputs", columns=left.channels).to_numpy(), layout.real_rows(left.X))


def test_cls112_bad_data_changes_nothing_in_an_existing_run(tmp_path, monkeypatch):
    classification.run_classification(_config(), tmp_path, loader=_loader)
    run_dir = tmp_path / "random"
    before = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")}

    def bad(config):
        raise DataError("broken.tsd, line 3: 21 fields, expected 22")

    with pytest.raises(DataError, match="broken.tsd"):
        classification.run_classification(_config(dataset={"seed": 1}), tmp_path, loader=bad)
    assert {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")} == before
    with pytest.raises(DataError):
        classification.run_classification(_config(), tmp_path, run_id="fresh", loader=bad)
    assert not (tmp_path / "fresh").exists()


def test_cls113_default_run_ids_are_readable():
    assert classification.default_run_id(fast_config("synthetic")) == "synthetic"
    assert classification.default_run_id(fast_config("auslan")) == "auslan"
    assert classification.default_run_id(fast_config("auslan", dataset={"his_hers": "merge"})) == "auslan-merged"


def test_cls114_source_listing_changes_when_a_file_changes(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.tsd").write_text("1 2\n")
    first = stages.source_listing(tmp_path)
    (tmp_path / "a" / "x.tsd").write_text("1 2 3\n")
    assert stages.source_listing(tmp_path) != first
    with pytest.raises(DataError, match="nowhere"):
        stages.source_listing(tmp_path / "nowhere")


# ---------------------------------------------------------------------------------------------
# The command line

def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env={**__import__("os").environ, "PYTHONPATH": str(REPO)})


def test_cls115_cli_missing_source_folder_exits_2_naming_it(tmp_path):
    missing = tmp_path / "no-such-auslan"
    result = _cli("run", "auslan", "--source", str(missing), "--runs", str(tmp_path / "runs"), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "no-such-auslan" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs" / "auslan").exists()


def test_cls116_cli_help_explains_with_examples(tmp_path):
    result = _cli("run", "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "python -m pipeline run auslan --source" in result.stdout and "--force" in result.stdout


def test_cls117_cli_options_become_the_config():
    from pipeline.cli import build_parser
    from pipeline.cli.run import classification_config as config_from_args
    args = build_parser().parse_args(["run", "auslan", "--source", "d", "--merge-his-hers", "--units", "100,50",
                                      "--epochs", "7", "--batch-size", "16", "--seed", "3"])
    config = config_from_args(args)
    assert config["dataset"]["his_hers"] == "merge" and config["dataset"]["source"] == "d"
    assert config["model"]["units"] == [100, 50]
    assert (config["train"]["epochs"], config["train"]["batch_size"], config["train"]["seed"]) == (7, 16, 3)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "synthetic", "--units", "100,x"])


def test_cls101_decisive_step_is_where_the_prediction_stops_changing(synthetic_run):
    examples = synthetic_run.examples()
    steps = synthetic_run.steps("predictions")
    for _, row in examples.sample(40, random_state=0).iterrows():
        rows = steps.iloc[int(row["row_start"]):int(row["row_start"] + row["length"])]
        top1 = rows["top1_class"].to_numpy()
        decisive = int(row["decisive_step"])
        assert (top1[decisive:] == row["prediction"]).all()
        assert decisive == 0 or top1[decisive - 1] != row["prediction"]
        assert row["decisive_fraction"] == pytest.approx(decisive / row["length"])
        if row["correct"]:
            assert row["overtaken_step"] == -1
        else:
            ahead = rows["predicted_prob"].to_numpy() > rows["true_prob"].to_numpy()
            overtaken = int(row["overtaken_step"])
            assert ahead[overtaken:].all() and (overtaken == 0 or not ahead[overtaken - 1])
