"""Attention pooling (issue 12): the classifier option, its NumPy mirror, the stored weights,
what attribution and what-if do with it, and the import format's ``attention`` field."""

from __future__ import annotations

import numpy as np
import pytest

from attention_runs import ATTENTION_RUN, MATRIX_LENGTHS, MATRIX_RUN, T_OUT, attention_config
from pipeline import runformat
from pipeline.analysis import whatif
from pipeline.analysis.attention import attention_weights, pooled_probabilities
from pipeline.analysis.layout import StepLayout
from pipeline.analysis.lstm import LSTMWeights, NetworkWeights, layer_steps
from pipeline.cli import main
from pipeline.core.errors import DataError
from pipeline.importers.arrays import read_arrays
from pipeline.kinds import classification
from pipeline.kinds.imported import write_run


@pytest.fixture(scope="module")
def run(attention_runs_dir):
    return runformat.Run.open(attention_runs_dir, ATTENTION_RUN)


@pytest.fixture(scope="module")
def model(run):
    from pipeline.models import keras_weights
    return keras_weights.load_keras_model(run.path / classification.MODEL_FILE)


@pytest.fixture(scope="module")
def prepared(run):
    return classification.read_prepared(run.path)


def test_att001_keras_weights_sum_to_one_over_real_steps_and_are_zero_on_padding(model, prepared):
    import keras
    probe = keras.Model(model.inputs, model.get_layer("attention").output)
    weights = probe.predict(prepared.X, verbose=0)
    pads = prepared.X.shape[1] - prepared.lengths
    real = np.arange(prepared.X.shape[1])[None, :] >= pads[:, None]
    assert np.all(weights[~real] == 0)
    np.testing.assert_allclose((weights * real).sum(axis=1), 1, atol=1e-5)
    assert weights[real].std() > 0           # trained scores: not a uniform average


def test_att002_the_model_reloads_in_safe_mode_without_lambda_layers(model, run, prepared):
    import keras
    from pipeline.models.layers import MaskedSoftmax, WeightedSum
    again = keras.saving.load_model(run.path / classification.MODEL_FILE, safe_mode=True, compile=False)
    kinds = {type(layer) for layer in again.layers}
    assert {MaskedSoftmax, WeightedSum} <= kinds and keras.layers.Lambda not in kinds
    np.testing.assert_allclose(again.predict(prepared.X[:20], verbose=0), model.predict(prepared.X[:20], verbose=0),
                               atol=1e-6)


def test_att003_numpy_head_recompute_equals_keras(model, run, prepared):
    import keras
    weights = NetworkWeights.load(run.path / runformat.WEIGHTS_FILE)
    assert weights.has_attention
    layout = StepLayout(prepared.lengths, prepared.X.shape[1])
    h = list(layer_steps(weights, layout.real_rows(prepared.X), prepared.lengths))[-1]["h"]
    ends = layout.row_start + prepared.lengths - 1
    keras_probabilities = model.predict(prepared.X, verbose=0)
    np.testing.assert_allclose(pooled_probabilities(weights, h, prepared.lengths)[ends], keras_probabilities,
                               atol=1e-5)
    keras_weights = keras.Model(model.inputs, model.get_layer("attention").output).predict(prepared.X, verbose=0)
    np.testing.assert_allclose(attention_weights(weights, h, prepared.lengths),
                               layout.real_rows(keras_weights[..., None])[:, 0], atol=1e-5)
    # The what-if views' recompute of one example: its last step is the model's answer.
    first = layout.row_start[0]
    answer = whatif.answer(weights, layout.real_rows(prepared.X)[first:first + prepared.lengths[0]])
    np.testing.assert_allclose(answer["probabilities"][-1], keras_probabilities[0], atol=1e-5)
    np.testing.assert_allclose(answer["attention"].sum(), 1, atol=1e-6)


def test_att004_stored_weights_one_row_per_step_summing_to_one(run):
    table = run.read_table(runformat.ATTENTION_FILE)
    steps = run.read_table(runformat.INPUTS_FILE, columns=["example_id", "t"])
    assert run.manifest.attention == "pooling"
    assert table[["example_id", "t"]].equals(steps[["example_id", "t"]])
    np.testing.assert_allclose(table.groupby("example_id")["attention"].sum(), 1, atol=1e-5)
    assert (table["attention"] >= 0).all()


def test_att005_prefix_probabilities_are_the_sequence_stopped_at_each_step():
    rng = np.random.default_rng(0)
    layer = LSTMWeights(rng.normal(0, 0.5, (3, 16)).astype(np.float32),
                        rng.normal(0, 0.5, (4, 16)).astype(np.float32), np.zeros(16, np.float32))
    weights = NetworkWeights([layer], rng.normal(0, 1, (4, 5)).astype(np.float32), np.zeros(5, np.float32),
                             attention_kernel=rng.normal(0, 2, (4, 1)).astype(np.float32),
                             attention_bias=np.zeros(1, np.float32))
    h = rng.uniform(-1, 1, (9, 4)).astype(np.float32)
    lengths = np.array([6, 3])
    per_step = pooled_probabilities(weights, h, lengths)
    for t in range(6):
        scores = h[:t + 1] @ weights.attention_kernel[:, 0]
        w = np.exp(scores - scores.max())
        pooled = (w / w.sum()) @ h[:t + 1]
        logits = pooled @ weights.head_kernel
        expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        np.testing.assert_allclose(per_step[t], expected, atol=1e-6)
    np.testing.assert_allclose(np.add.reduceat(attention_weights(weights, h, lengths), [0, 6]), 1, atol=1e-6)


def test_att006_attribution_is_refused_for_attention_models(attention_runs_dir, run, model, prepared):
    from pipeline.attribute import ATTENTION_REFUSAL
    from pipeline.models import attribution
    summary = classification.run_classification(attention_config(), attention_runs_dir, ATTENTION_RUN)
    note = {stage.name: stage.note for stage in summary.stages}["attribute"]
    assert note == ATTENTION_REFUSAL
    assert not run.has(runformat.ATTRIBUTION_FILES["predicted"]) and not run.has(runformat.OCCLUSION_FILE)
    weights = NetworkWeights.load(run.path / runformat.WEIGHTS_FILE)
    with pytest.raises(ValueError, match="last step"):
        whatif.occlusion(weights, np.zeros((3, weights.layers[0].kernel.shape[0]), np.float32), np.array([3]),
                         np.array([0]))
    with pytest.raises(ValueError, match="attention"):
        attribution.integrated_gradients(model, prepared.X[:2], np.array([0, 0]))


def test_att007_default_runs_keep_their_hashes_and_have_no_attention(synthetic_run):
    config = classification.default_config("synthetic")
    assert config["model"]["attention"] is False
    without = {**config, "model": {k: v for k, v in config["model"].items() if k != "attention"}}
    assert classification.stage_hashes(config) == classification.stage_hashes(without)
    turned_on = {**config, "model": {**config["model"], "attention": True}}
    assert classification.stage_hashes(turned_on)["train"] != classification.stage_hashes(config)["train"]
    assert synthetic_run.manifest.attention is None and not synthetic_run.has(runformat.ATTENTION_FILE)


def test_att008_the_command_line_flag_sets_model_attention():
    from pipeline.cli import build_parser
    from pipeline.cli.run import classification_config
    args = build_parser().parse_args(["run", "synthetic", "--attention"])
    assert classification_config(args)["model"]["attention"] is True
    args = build_parser().parse_args(["run", "synthetic"])
    assert classification_config(args)["model"]["attention"] is False


# ---------------------------------------------------------------------------------------------
# The import format's attention field

LENGTHS = np.array([4, 2, 3])


def softmax_rows(rng, lengths):
    return np.concatenate([np.exp(s) / np.exp(s).sum() for s in (rng.normal(size=n) for n in lengths)])


def import_fields(attention, **extra):
    rng = np.random.default_rng(1)
    rows = int(LENGTHS.sum())
    return {"h": rng.normal(size=(rows, 3)).astype(np.float32), "lengths": LENGTHS,
            "labels": np.array([0, 1, 0]), "attention": attention, **extra}


def test_att101_pooling_weights_flat_or_padded_are_stored_per_step(tmp_path):
    rng = np.random.default_rng(2)
    flat = softmax_rows(rng, LENGTHS).astype(np.float32)
    padded = np.zeros((3, 5), np.float32)
    for i, (start, length) in enumerate(zip([0, 4, 6], LENGTHS)):
        padded[i, 5 - length:] = flat[start:start + length]
    for name, fields in (("flat", import_fields(flat)), ("padded", import_fields(padded, padding="left"))):
        path = tmp_path / f"{name}.npz"
        if name == "padded":
            fields["h"] = np.zeros((3, 5, 3), np.float32)
        np.savez(path, **fields)
        run_path, _ = write_run(read_arrays(path), tmp_path / "runs", project_settings={"methods": []})
        run = runformat.Run(run_path)
        assert run.manifest.attention == "pooling"
        np.testing.assert_allclose(run.read_table(runformat.ATTENTION_FILE)["attention"], flat, atol=1e-7)


def test_att102_a_matrix_per_sequence_is_stored_as_rows(attention_runs_dir):
    run = runformat.Run.open(attention_runs_dir, MATRIX_RUN)
    assert run.manifest.attention == "matrix"
    table = run.read_table(runformat.ATTENTION_MATRIX_FILE)
    assert len(table) == T_OUT * int(MATRIX_LENGTHS.sum())
    sums = table.groupby(["example_id", "t_out"])["attention"].sum()
    np.testing.assert_allclose(sums, 1, atol=1e-5)
    last = table[(table["example_id"] == 2) & (table["t_out"] == T_OUT - 1)]
    assert int(last.loc[last["attention"].idxmax(), "t_in"]) == MATRIX_LENGTHS[2] - 1


def bad_matrix():
    matrix = np.zeros((3, 2, 4), np.float32)
    matrix[:, :, 0] = 1
    matrix[1, 1, 0], matrix[1, 1, 1] = 0.5, 0.2
    return matrix


@pytest.mark.parametrize("attention, extra, message", [
    (np.full(9, 1 / 3, np.float32), {}, "attention: the weights of sequence 0 sum to 1.33333"),
    (np.r_[np.full(4, 0.25), [1.5, -0.5], np.full(3, 1 / 3)], {}, "attention holds a negative weight"),
    (np.r_[np.full(4, np.nan), [0.5, 0.5], np.full(3, 1 / 3)], {}, "attention holds values that are not finite"),
    (np.full(7, 0.25), {}, "attention has 7 weights but lengths sum to 9"),
    (np.full((3, 1, 1, 2), 0.5), {}, "attention has shape (3, 1, 1, 2)"),
    (np.array(["a"] * 9), {}, "attention has dtype <U1"),
    (bad_matrix(), {}, "attention: row 1 of sequence 1's matrix sums to 0.7"),
    (np.ones((3, 2, 2), np.float32) / 2, {}, "attention has 2 input columns but the longest sequence has 4"),
    (bad_matrix(), {"attention_out_lengths": np.array([2, 3, 1])}, "attention_out_lengths must lie in [1, 2]"),
    (np.full(9, 1 / 3), {"attention_out_lengths": np.array([1, 1, 1])}, "attention_out_lengths is for a"),
])
def test_att103_bad_attention_fields_are_named(tmp_path, attention, extra, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **import_fields(attention, **extra))
    with pytest.raises(DataError) as caught:
        read_arrays(path)
    assert str(caught.value).startswith("bad.npz: ") and message in str(caught.value)


def test_att104_the_command_line_reports_a_bad_field_in_one_line(tmp_path, capsys):
    path = tmp_path / "bad.npz"
    fields = import_fields(np.full(9, 1 / 3, np.float32))
    fields.pop("attention")
    np.savez(path, attention_out_lengths=np.array([1, 1, 1]), **fields)
    assert main(["import", "arrays", str(path), "--runs", str(tmp_path / "runs"), "--run-id", "bad"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: bad.npz: attention_out_lengths is given without attention"]
    assert not (tmp_path / "runs" / "bad").exists()
