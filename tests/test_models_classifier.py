"""The classifier: safe-mode reload, no Lambda layers, deterministic training, per-epoch history."""

from __future__ import annotations

import numpy as np
import pytest

from factories import random_dataset
from pipeline.core import steps
from pipeline.analysis.layout import StepLayout
from pipeline.core.predictions import Predictions
from pipeline.models import classifier
from pipeline.models.keras_weights import network_weights, save_model

keras = pytest.importorskip("keras")

MODEL = {"units": [8], "standardise": True, "dropout": 0.1}
TRAIN = {"epochs": 2, "batch_size": 16, "learning_rate": 0.01, "patience": 5, "seed": 7,
         "jit_compile": False}


def _split(n):
    return np.array(["train", "train", "train", "validation", "test"] * (n // 5) + ["train"] * (n % 5))


@pytest.fixture(scope="module")
def trained():
    data = random_dataset(n=50, n_steps=12, seed=5)
    split = _split(len(data.labels))
    training = classifier.train_classifier(data.X, data.lengths, data.labels, split, len(data.classes),
                                       MODEL, TRAIN)
    return data, split, training


def test_mdl001_saved_model_reloads_in_safe_mode_and_predicts_the_same(trained, tmp_path):
    data, _, training = trained
    path = tmp_path / "models" / "classifier.keras"
    save_model(training.model, path)
    assert path.is_file() and [p.name for p in path.parent.iterdir()] == ["classifier.keras"]
    reloaded = keras.saving.load_model(path, safe_mode=True)
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in reloaded.layers)
    np.testing.assert_allclose(reloaded.predict(data.X, verbose=0), training.model.predict(data.X, verbose=0),
                               atol=1e-6)


def test_mdl002_history_has_losses_gradient_norms_and_gate_statistics(trained):
    _, _, training = trained
    history = training.history
    assert history["epoch"].tolist() == [1, 2]
    for column in ("loss", "accuracy", "val_loss", "val_accuracy", "grad_norm"):
        assert history[column].notna().all(), column
    assert (history["grad_norm"] > 0).all()
    for gate in ("input_gate", "forget_gate", "output_gate"):
        assert history[f"layer0_{gate}_mean"].between(0, 1).all()
        assert history[f"layer0_{gate}_saturated"].between(0, 1).all()
    assert "layer1_forget_gate_mean" not in history


def test_mdl003_metrics_of_the_numpy_recompute_agree_with_keras(trained):
    data, split, training = trained
    weights = network_weights(training.model)[0]
    rows = StepLayout(data.lengths, data.n_steps).real_rows(data.X)
    source = steps.network_source(weights, lambda r0, r1: rows[r0:r1], data.lengths)
    predictions = Predictions("classification", data.lengths, data.classes, 3, labels=data.labels)
    for _, block in source.blocks():
        ids = np.repeat(np.arange(len(data.lengths)), data.lengths)
        predictions.block(block["predictions"], ids, np.zeros_like(ids), np.arange(len(ids)))
    metrics = predictions.metrics(split)
    assert set(metrics) == {"train", "validation", "test"}
    test = split == "test"
    loss, accuracy = training.model.evaluate(data.X[test], data.labels[test], verbose=0)
    assert metrics["test"]["accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert metrics["test"]["loss"] == pytest.approx(loss, abs=1e-4)


def test_mdl004_training_is_deterministic_for_a_seed(trained):
    data, split, first = trained
    again = classifier.train_classifier(data.X, data.lengths, data.labels, split, len(data.classes),
                                    MODEL, TRAIN)
    for a, b in zip(first.model.get_weights(), again.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(first.history["loss"], again.history["loss"])


def test_mdl005_standardisation_uses_training_real_frames_only():
    data = random_dataset(n=20, n_steps=10, seed=6)
    mean, std = classifier.channel_stats(data.X, data.lengths)
    frames = np.concatenate([data.real_steps(i) for i in range(len(data.lengths))])
    np.testing.assert_allclose(mean, frames.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(std, frames.std(axis=0), rtol=1e-4)


def test_mdl006_build_rejects_empty_units():
    with pytest.raises(ValueError, match="units"):
        classifier.build_classifier(10, 3, 2, [])


# -- learning-rate schedule and augmentation (train.lr_schedule, train.augment) -----------------

AUGMENT = {"time_warp": 0.2, "scale": 0.1, "offset": 0.1, "noise": 0.05}


def test_mdl007_augmentation_keeps_padding_zero_and_lengths_in_range():
    data = random_dataset(n=30, n_steps=12, seed=8)
    std = classifier.channel_stats(data.X, data.lengths)[1]
    out, lengths = classifier.augment_sequences(data.X, data.lengths, AUGMENT, std, np.random.default_rng(0))
    assert out.shape == data.X.shape and out.dtype == np.float32
    assert (lengths >= np.minimum(data.lengths, 2)).all() and (lengths <= data.X.shape[1]).all()
    assert (np.abs(np.log(lengths[data.lengths > 4] / data.lengths[data.lengths > 4])) <= 0.2 + 0.25).all()
    padding = np.arange(12)[None, :] < (12 - lengths)[:, None]
    assert (out[padding] == 0).all()
    assert np.any(out[~padding] != 0, axis=-1).all()          # no real frame reads as padding
    assert not np.allclose(out, data.X)
    again, _ = classifier.augment_sequences(data.X, data.lengths, AUGMENT, std, np.random.default_rng(0))
    np.testing.assert_array_equal(out, again)


def test_mdl008_time_warp_alone_resamples_the_frames_in_order():
    """A ramp stays a monotone ramp from its first to its last value, whatever its new length."""
    X = np.zeros((5, 40, 1), np.float32)
    X[:, 10:, 0] = np.linspace(1, 2, 30)
    out, lengths = classifier.augment_sequences(X, np.full(5, 30), {"time_warp": 0.3}, np.ones(1),
                                                np.random.default_rng(1))
    for row, length in zip(out[:, :, 0], lengths):
        frames = row[40 - length:]
        assert frames[0] == pytest.approx(1) and frames[-1] == pytest.approx(2)
        assert (np.diff(frames) > 0).all()
    assert len(set(lengths.tolist())) > 1


def test_mdl009_zero_augmentation_is_none():
    assert classifier.augmentation_of({"augment": {"time_warp": 0, "noise": 0.0}}) == {}
    assert classifier.augmentation_of({}) == {}
    with pytest.raises(ValueError, match="unknown"):
        classifier.augmentation_of({"augment": {"mirror": 1}})
    with pytest.raises(ValueError, match="lr_schedule"):
        classifier._lr_schedule({"lr_schedule": "sometimes"})


def test_mdl010_augmented_training_with_a_schedule_is_deterministic():
    data = random_dataset(n=50, n_steps=12, seed=5)
    split = _split(len(data.labels))
    train = {**TRAIN, "epochs": 3, "lr_schedule": "plateau", "lr_patience": 1, "augment": AUGMENT}
    first = classifier.train_classifier(data.X, data.lengths, data.labels, split, len(data.classes), MODEL, train)
    again = classifier.train_classifier(data.X, data.lengths, data.labels, split, len(data.classes), MODEL, train)
    for a, b in zip(first.model.get_weights(), again.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert first.history["epoch"].tolist() == [1, 2, 3]
    assert (first.history["learning_rate"] <= TRAIN["learning_rate"] + 1e-9).all()
    np.testing.assert_array_equal(first.history["val_loss"], again.history["val_loss"])


def test_mdl011_best_weights_by_validation_loss_are_kept_even_without_early_stop():
    """Keras restores the best epoch's weights at the end of training, stopped early or not."""
    data = random_dataset(n=50, n_steps=12, seed=5)
    split = _split(len(data.labels))
    train = {**TRAIN, "epochs": 4, "learning_rate": 0.2, "patience": 10}     # a rough ride: val_loss jumps
    training = classifier.train_classifier(data.X, data.lengths, data.labels, split, len(data.classes),
                                           MODEL, train)
    validation = split == "validation"
    loss = training.model.evaluate(data.X[validation], data.labels[validation], verbose=0)[0]
    assert loss == pytest.approx(training.history["val_loss"].min(), rel=1e-4)


def test_mdl012_with_weight_averaging_the_kept_weights_are_the_best_epochs_average():
    """``train.ema``: validation and early stopping see the averaged weights, and the averaged
    weights of the best epoch are the ones kept (not the last raw ones), stopped early or not."""
    data = random_dataset(n=50, n_steps=12, seed=5)
    split = _split(len(data.labels))
    validation = split == "validation"
    for train in ({**TRAIN, "epochs": 5, "learning_rate": 0.05, "patience": 10, "ema": 0.9},
                  {**TRAIN, "epochs": 30, "learning_rate": 0.2, "patience": 1, "ema": 0.5}):     # stops early
        training = classifier.train_classifier(data.X, data.lengths, data.labels, split, len(data.classes),
                                               MODEL, train)
        loss = training.model.evaluate(data.X[validation], data.labels[validation], verbose=0)[0]
        assert loss == pytest.approx(training.history["val_loss"].min(), rel=1e-4)
        assert len(training.history) < 30 or train["epochs"] == 5
    plain = classifier.train_classifier(data.X, data.lengths, data.labels, split, len(data.classes), MODEL,
                                        {**TRAIN, "epochs": 5, "learning_rate": 0.05, "patience": 10})
    averaged = classifier.train_classifier(data.X, data.lengths, data.labels, split, len(data.classes), MODEL,
                                           {**TRAIN, "epochs": 5, "learning_rate": 0.05, "patience": 10, "ema": 0.9})
    assert not np.allclose(plain.model.get_weights()[0], averaged.model.get_weights()[0])
    with pytest.raises(ValueError, match="train.ema"):
        classifier.train_classifier(data.X, data.lengths, data.labels, split, len(data.classes), MODEL,
                                    {**TRAIN, "ema": 1.0})


def test_mdl013_cosine_schedule_falls_from_the_learning_rate_to_min_lr_over_the_epochs():
    data = random_dataset(n=50, n_steps=12, seed=5)
    split = _split(len(data.labels))
    train = {**TRAIN, "epochs": 5, "patience": 10, "lr_schedule": "cosine", "min_lr": 1e-4}
    training = classifier.train_classifier(data.X, data.lengths, data.labels, split, len(data.classes),
                                           MODEL, train)
    rates = training.history["learning_rate"].to_numpy()
    expected = 1e-4 + 0.5 * (0.01 - 1e-4) * (1 + np.cos(np.pi * np.arange(5) / 4))
    np.testing.assert_allclose(rates, expected, rtol=1e-5)
    assert (np.diff(rates) < 0).all()
