"""The study's classifier: standardise -> stacked LSTMs -> last step -> softmax, and its training.

Input(T, channels) -> LSTM(units, return_sequences=True) x N -> last step -> Dense(classes, softmax).
Every LSTM returns its full sequence so that each layer's h can be checked against the NumPy
recompute (``core.lstm``).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from pipeline.core.layout import StepLayout
from pipeline.core.lstm import gate_statistics
from pipeline.core.progress import QUIET, Progress
from pipeline.models.keras_weights import network_weights
from pipeline.models.layers import LastStep, Standardise

MODEL_FILE = "models/classifier.keras"
DIAGNOSTIC_SAMPLE = 128     # training examples used for the per-epoch gradient norm and gate stats


def build_classifier(n_steps: int, n_channels: int, n_classes: int, units: list[int],
                     mean: np.ndarray | None = None, std: np.ndarray | None = None,
                     dropout: float = 0.0) -> keras.Model:
    """The uncompiled classifier; with ``mean``/``std`` it standardises its raw inputs itself.

    ``dropout`` drops LSTM inputs while training only; the trained network is the same shape.
    """
    if not units or any(int(u) < 1 for u in units):
        raise ValueError(f"model.units must be a non-empty list of positive integers, not {units!r}")
    inputs = keras.Input(shape=(n_steps, n_channels), name="inputs")
    x = inputs
    if mean is not None:
        x = Standardise(mean, std, name="standardise")(x)
    for index, n_units in enumerate(units):
        x = keras.layers.LSTM(int(n_units), return_sequences=True, dropout=float(dropout),
                              name=f"lstm_{index}")(x)
    x = LastStep(name="last_step")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="classes")(x)
    return keras.Model(inputs, outputs, name="classifier")


def channel_stats(X: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of the real (unpadded) frames of left-padded ``X``.

    A constant channel gets std 1, so that it becomes 0 instead of dividing by zero.
    """
    real = np.arange(X.shape[1])[None, :] >= (X.shape[1] - np.asarray(lengths))[:, None]
    frames = X[real].astype(np.float64)
    mean, std = frames.mean(axis=0), frames.std(axis=0)
    std[std < 1e-6] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


@dataclass
class Training:
    model: keras.Model
    history: pd.DataFrame       # one row per epoch
    mean: np.ndarray | None
    std: np.ndarray | None


def train_classifier(X: np.ndarray, lengths: np.ndarray, labels: np.ndarray, split: np.ndarray,
                     n_classes: int, model_config: dict, train_config: dict,
                     progress: Progress = QUIET) -> Training:
    """Train on ``split == "train"`` with early stopping on the validation loss (best weights kept).

    ``X`` holds raw left-padded inputs; standardisation statistics come from the training split.
    Deterministic for a given ``train_config["seed"]`` on a given machine.
    """
    keras.utils.set_random_seed(int(train_config["seed"]))
    split = np.asarray(split)
    train, validation = split == "train", split == "validation"
    if not train.any() or not validation.any():
        raise ValueError("training needs examples in both the train and the validation split")
    mean = std = None
    if model_config.get("standardise", True):
        mean, std = channel_stats(X[train], lengths[train])
    model = build_classifier(X.shape[1], X.shape[2], n_classes, list(model_config["units"]), mean, std,
                             dropout=model_config["dropout"])
    model.compile(optimizer=keras.optimizers.Adam(float(train_config["learning_rate"])),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  jit_compile=bool(train_config["jit_compile"]))

    train_ids = np.flatnonzero(train)
    sample = np.random.default_rng(int(train_config["seed"])).permutation(train_ids)[:DIAGNOSTIC_SAMPLE]
    diagnostics = TrainingDiagnostics(X[sample], lengths[sample], labels[sample])
    epochs = int(train_config["epochs"])
    with progress.bar(epochs, "train", "epoch") as bar:
        callbacks = [
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=int(train_config["patience"]),
                                          restore_best_weights=True),
            diagnostics,
            _ProgressBar(bar),
        ]
        fit = model.fit(X[train], labels[train], batch_size=int(train_config["batch_size"]),
                        epochs=epochs, validation_data=(X[validation], labels[validation]),
                        shuffle=True, verbose=0, callbacks=callbacks)
    history = pd.DataFrame({"epoch": np.arange(1, len(fit.history["loss"]) + 1, dtype=np.int32),
                            **{k: fit.history[k] for k in ("loss", "accuracy", "val_loss", "val_accuracy")}})
    history = pd.concat([history, pd.DataFrame(diagnostics.rows)], axis=1)
    return Training(model, history, mean, std)


class TrainingDiagnostics(keras.callbacks.Callback):
    """At each epoch end: the global L2 gradient norm and the gate statistics on a fixed sample.

    The sample is small (``DIAGNOSTIC_SAMPLE`` examples) so the callback costs a few percent
    of an epoch; gate statistics are recomputed in NumPy from the current weights.
    """

    def __init__(self, X: np.ndarray, lengths: np.ndarray, labels: np.ndarray):
        super().__init__()
        self.lengths = lengths
        self.rows_x = StepLayout(lengths, X.shape[1]).real_rows(X)
        self.x = tf.constant(X)
        self.y = tf.constant(labels)
        self.rows: list[dict] = []
        self._loss = keras.losses.SparseCategoricalCrossentropy()
        self._grad_norm = None

    def _gradient_norm(self) -> float:
        if self._grad_norm is None:
            variables = self.model.trainable_variables

            @tf.function
            def grad_norm(x, y):
                with tf.GradientTape() as tape:
                    loss = self._loss(y, self.model(x, training=False))
                return tf.linalg.global_norm(tape.gradient(loss, variables))

            self._grad_norm = grad_norm
        return float(self._grad_norm(self.x, self.y))

    def on_epoch_end(self, epoch, logs=None):
        row = {"grad_norm": self._gradient_norm()}
        row.update(gate_statistics(network_weights(self.model)[0], self.rows_x, self.lengths))
        self.rows.append(row)


class _ProgressBar(keras.callbacks.Callback):
    def __init__(self, bar):
        super().__init__()
        self.bar = bar

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.bar.set_postfix(loss=f"{logs.get('loss', float('nan')):.3f}",
                             val_acc=f"{logs.get('val_accuracy', float('nan')):.3f}", refresh=False)
        self.bar.update()
