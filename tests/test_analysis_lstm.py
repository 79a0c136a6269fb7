"""The one NumPy forward pass against Keras itself: h to 1e-5, last-step probabilities to predict;
both layouts (left-padded and lanes) agree with a plain recurrence."""

from __future__ import annotations

import numpy as np
import pytest

from factories import random_dataset
from pipeline.analysis import lstm
from pipeline.core import predictions
from pipeline.analysis.layout import StepLayout
from pipeline.models import classifier, layers
from pipeline.models.keras_weights import network_weights

keras = pytest.importorskip("keras")


def _model(units, dataset, seed=0):
    """An untrained (randomly initialised) classifier with standardisation: weights are weights."""
    keras.utils.set_random_seed(seed)
    mean, std = classifier.channel_stats(dataset.X, dataset.lengths)
    return classifier.build_classifier(dataset.n_steps, len(dataset.channels), len(dataset.classes),
                                   units, mean, std)


@pytest.mark.parametrize("units", [[7], [6, 5]], ids=["one-layer", "two-layers"])
def test_lstm001_recomputed_h_equals_keras_layer_output(units):
    data = random_dataset(n=40, n_steps=15)
    model = _model(units, data)
    layout = StepLayout(data.lengths, data.n_steps)
    layers = list(lstm.layer_steps(network_weights(model)[0], layout.real_rows(data.X), data.lengths))
    assert len(layers) == len(units)
    for index, tensors in enumerate(layers):
        keras_h = keras.Model(model.inputs, model.get_layer(f"lstm_{index}").output).predict(data.X, verbose=0)
        np.testing.assert_allclose(tensors["h"], layout.real_rows(keras_h), atol=1e-5, rtol=0)
        assert tensors["h"].dtype == np.float32 and tensors["h"].shape == (layout.n_rows, units[index])


def test_lstm002_c_and_gates_equal_a_plain_padded_recurrence():
    """The padding shortcut gives what stepping every example through all T steps gives."""
    data = random_dataset(n=25, n_steps=12, seed=3)
    weights = network_weights(_model([5], data, seed=3))[0]
    layer = weights.layers[0]
    x = lstm.standardise(data.X, weights.mean, weights.std)
    u = layer.units
    h = np.zeros((len(x), u), np.float32)
    c = np.zeros((len(x), u), np.float32)
    expected = {kind: [] for kind in ("h", "c", *lstm.GATE_KINDS)}
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    for t in range(data.n_steps):
        z = x[:, t] @ layer.kernel + h @ layer.recurrent + layer.bias
        i, f, g, o = sigmoid(z[:, :u]), sigmoid(z[:, u:2 * u]), np.tanh(z[:, 2 * u:3 * u]), sigmoid(z[:, 3 * u:])
        c = f * c + i * g
        h = o * np.tanh(c)
        for kind, value in zip(expected, (h, c, i, f, g, o)):
            expected[kind].append(value)
    layout = StepLayout(data.lengths, data.n_steps)
    (tensors,) = lstm.layer_steps(weights, layout.real_rows(data.X), data.lengths)
    lanes = list(lstm.layer_steps(weights.with_padding("none"), layout.real_rows(data.X), data.lengths))
    for kind, steps in expected.items():
        np.testing.assert_allclose(tensors[kind], layout.real_rows(np.stack(steps, axis=1)), atol=1e-5,
                                   err_msg=kind)
    # Sequences that start at their first real frame: the first step of the left-padded ones whose
    # padding is empty agrees, the others differ (they ran through zero frames first).
    full = np.flatnonzero(data.lengths == data.n_steps)
    rows = np.concatenate([np.arange(layout.row_start[i], layout.row_start[i] + data.lengths[i]) for i in full])
    np.testing.assert_allclose(lanes[0]["h"][rows], tensors["h"][rows], atol=1e-6)


def test_lstm003_last_step_probabilities_equal_predict():
    data = random_dataset(n=30, n_steps=10, seed=1)
    model = _model([6, 4], data, seed=1)
    weights = network_weights(model)[0]
    layout = StepLayout(data.lengths, data.n_steps)
    *_, last = lstm.layer_steps(weights, layout.real_rows(data.X), data.lengths)
    probabilities = lstm.step_probabilities(weights, last["h"])
    last_rows = layout.row_start + layout.lengths - 1
    np.testing.assert_allclose(probabilities[last_rows], model.predict(data.X, verbose=0), atol=1e-5)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_lstm004_standardise_keeps_padding_exactly_zero_and_matches_the_layer():
    data = random_dataset(n=12, n_steps=8, seed=2)
    mean, std = classifier.channel_stats(data.X, data.lengths)
    ours = lstm.standardise(data.X, mean, std)
    theirs = np.asarray(layers.Standardise(mean, std)(data.X))
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    padding = np.arange(data.n_steps)[None, :] < (data.n_steps - data.lengths)[:, None]
    assert np.all(ours[padding] == 0.0)
    real = ours[~padding]
    np.testing.assert_allclose(real.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(real.std(axis=0), 1.0, atol=1e-4)


def test_lstm005_top_k_is_sorted_and_picks_the_largest():
    probabilities = np.array([[0.1, 0.5, 0.2, 0.2], [0.7, 0.05, 0.05, 0.2]], np.float32)
    classes, probs = predictions.top_k(probabilities, 3)
    assert classes[0, 0] == 1 and set(classes[0, 1:]) == {2, 3}
    assert classes[1].tolist() == [0, 3, 1] or classes[1].tolist() == [0, 3, 2]
    assert np.all(np.diff(probs, axis=1) <= 0)
    assert predictions.top_k(probabilities, 10)[0].shape == (2, 4)     # k is capped at the classes


def test_lstm006_step_layout_round_trip():
    data = random_dataset(n=9, n_steps=6, seed=4)
    layout = StepLayout(data.lengths, data.n_steps)
    rows = layout.real_rows(data.X)
    assert len(rows) == data.lengths.sum()
    np.testing.assert_array_equal(layout.to_padded(rows), data.X)
    first = data.real_steps(1)
    start = layout.row_start[1]
    np.testing.assert_array_equal(rows[start:start + len(first)], first)
    with pytest.raises(ValueError, match="lengths"):
        StepLayout(np.array([0, 3]), 6)


def test_lstm007_weights_round_trip_through_npz(tmp_path):
    data = random_dataset(n=6, n_steps=5, seed=8)
    weights = network_weights(_model([4, 3], data, seed=8))[0]
    weights.save(tmp_path / "weights.npz")
    again = lstm.NetworkWeights.load(tmp_path / "weights.npz")
    assert (again.padding, again.n_steps, len(again.layers)) == ("left", data.n_steps, 2)
    for a, b in zip(weights.layers, again.layers):
        np.testing.assert_array_equal(a.kernel, b.kernel)
    np.testing.assert_array_equal(weights.mean, again.mean)
    with np.load(tmp_path / "weights.npz", allow_pickle=False) as archive:      # no pickled objects
        assert set(archive.files) >= {"layer0_kernel", "head_kernel", "mean", "padding"}


def test_lstm008_predicted_class_probability_is_stored_at_every_step(synthetic_run):
    """Confidence over time needs the final prediction's probability even where it is not top-k."""
    from dashboard import data

    examples = synthetic_run.examples()
    steps = synthetic_run.steps("predictions")
    last = (examples["row_start"] + examples["length"] - 1).to_numpy()
    assert np.allclose(steps["predicted_prob"].to_numpy()[last], examples["confidence"], atol=1e-6)
    wrong = examples[~examples["correct"]].iloc[0]
    probability, _ = data.class_probability(synthetic_run, int(wrong["example_id"]),
                                            int(wrong["prediction"]))
    assert len(probability) == wrong["length"] and not np.isnan(probability).any()
