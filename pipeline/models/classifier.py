"""The study's classifier: standardise -> stacked LSTMs -> last step -> softmax, and its training.

Input(T, channels) -> LSTM(units, return_sequences=True) x N -> last step -> Dense(classes, softmax).
Every LSTM returns its full sequence so that each layer's h can be checked against the NumPy
recompute (``core.lstm``). With ``model.attention`` the last step is replaced by attention pooling:
a score per step (``Dense(1)`` on the last LSTM's h), a softmax over the real steps
(``layers.MaskedSoftmax``, the padding gets 0) and the weighted sum of h (``layers.WeightedSum``).

Training (``train_classifier``) keeps the weights of the epoch with the lowest validation loss
(Keras' ``EarlyStopping(restore_best_weights=True)`` restores them whether or not training stopped
early). Three options of the ``train`` config, all off when absent:

- ``lr_schedule``: ``"plateau"`` halves the learning rate (``lr_factor``) after ``lr_patience``
  epochs without a lower validation loss, down to ``min_lr``; ``"cosine"`` lowers it along half a
  cosine from ``learning_rate`` at the first epoch to ``min_lr`` at epoch ``epochs`` (a fixed budget:
  the last epochs take small steps whatever the validation loss does); ``"none"`` keeps it constant.
- ``augment``: a dict of glove-data augmentations drawn afresh for every training example at every
  epoch (``augment_sequences``), on the training split only: ``time_warp`` (the sign performed up to
  that fraction faster or slower, with a smooth change of pace within it), ``scale`` (std of one
  amplitude factor per example on every channel's deviation from the example's mean: bigger or
  smaller movements), ``offset`` (std of a per-example, per-channel shift, in channel stds: where a signer holds
  the hands, how the glove sits) and ``noise`` (std of per-frame noise, in channel stds). ``None``,
  ``{}`` or all zeros: no augmentation, and training is exactly as without the option.
- ``ema``: the momentum of an exponential moving average of the weights (Polyak averaging,
  Keras' ``use_ema``): validation, early stopping, the schedule and the kept weights all use the
  averaged weights. ``0`` or absent: off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from pipeline.analysis.layout import StepLayout
from pipeline.analysis.lstm import gate_statistics
from pipeline.core.progress import QUIET, Progress
from pipeline.models.keras_weights import network_weights
from pipeline.models.layers import LastStep, MaskedSoftmax, Standardise, WeightedSum

MODEL_FILE = "models/classifier.keras"
# Training examples for the per-epoch gradient norm and gate statistics. With 128 the NumPy gate
# recompute alone took 0.45 s of an Auslan epoch of ~3.5 s; 32 examples are ~1,800 steps per gate.
DIAGNOSTIC_SAMPLE = 32


def build_classifier(n_steps: int, n_channels: int, n_classes: int, units: list[int],
                     mean: np.ndarray | None = None, std: np.ndarray | None = None,
                     dropout: float = 0.0, attention: bool = False) -> keras.Model:
    """The uncompiled classifier; with ``mean``/``std`` it standardises its raw inputs itself.

    ``dropout`` drops LSTM inputs while training only; the trained network is the same shape.
    ``attention``: attention pooling over the real steps instead of the last step (module docstring).
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
    if attention:
        scores = keras.layers.Dense(1, name="attention_score")(x)
        weights = MaskedSoftmax(name="attention")([scores, inputs])
        x = WeightedSum(name="attention_pool")([x, weights])
    else:
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
    ``train_config`` may add ``lr_schedule`` and ``augment`` (module docstring). Deterministic for a
    given ``train_config["seed"]`` on a given machine.
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
                             dropout=model_config["dropout"], attention=bool(model_config.get("attention", False)))
    ema = float(train_config.get("ema") or 0.0)
    if not 0.0 <= ema < 1.0:
        raise ValueError(f"train.ema must be a momentum from 0 (off) to below 1, not {ema}")
    model.compile(optimizer=keras.optimizers.Adam(float(train_config["learning_rate"]), use_ema=ema > 0,
                                                  ema_momentum=ema or 0.99),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  jit_compile=bool(train_config["jit_compile"]))

    train_ids = np.flatnonzero(train)
    sample = np.random.default_rng(int(train_config["seed"])).permutation(train_ids)[:DIAGNOSTIC_SAMPLE]
    diagnostics = TrainingDiagnostics(X[sample], lengths[sample], labels[sample])
    epochs = int(train_config["epochs"])
    batch_size = int(train_config["batch_size"])
    schedule = _lr_schedule(train_config)
    augment = augmentation_of(train_config)
    with progress.bar(epochs, "train", "epoch") as bar:
        callbacks = [
            # first: the averaged weights are in the model when the callbacks after it look
            *([keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if ema else []),
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=int(train_config["patience"]),
                                          restore_best_weights=True),
            *schedule,
            diagnostics,
            _ProgressBar(bar),
        ]
        if augment:
            scale = std if std is not None else channel_stats(X[train], lengths[train])[1]
            batches = augmented_batches(X[train], lengths[train], labels[train], batch_size, augment, scale,
                                        seed=int(train_config["seed"]))
            fit = model.fit(batches, steps_per_epoch=-(-int(train.sum()) // batch_size), epochs=epochs,
                            validation_data=(X[validation], labels[validation]), shuffle=False, verbose=0,
                            callbacks=callbacks)
        else:
            fit = model.fit(X[train], labels[train], batch_size=batch_size,
                            epochs=epochs, validation_data=(X[validation], labels[validation]),
                            shuffle=True, verbose=0, callbacks=callbacks)
    logged = ("loss", "accuracy", "val_loss", "val_accuracy") + (("learning_rate",) if schedule else ())
    history = pd.DataFrame({"epoch": np.arange(1, len(fit.history["loss"]) + 1, dtype=np.int32),
                            **{k: np.asarray(fit.history[k], dtype=np.float64) for k in logged}})
    history = pd.concat([history, pd.DataFrame(diagnostics.rows)], axis=1)
    return Training(model, history, mean, std)


# ---------------------------------------------------------------------------------------------
# Learning-rate schedule and augmentation (both optional, both off when the config leaves them out)

LR_SCHEDULES = ("none", "plateau", "cosine")
AUGMENTATIONS = ("time_warp", "scale", "offset", "noise")


def _lr_schedule(train_config: dict) -> list[keras.callbacks.Callback]:
    name = train_config.get("lr_schedule") or "none"
    if name not in LR_SCHEDULES:
        raise ValueError(f"train.lr_schedule must be one of {', '.join(LR_SCHEDULES)}, not {name!r}")
    if name == "none":
        return []
    if name == "cosine":
        top, bottom = float(train_config["learning_rate"]), float(train_config.get("min_lr", 1e-5))
        last = max(int(train_config["epochs"]) - 1, 1)
        return [keras.callbacks.LearningRateScheduler(
            lambda epoch: bottom + 0.5 * (top - bottom) * (1.0 + math.cos(math.pi * min(epoch, last) / last)))]
    return [keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=float(train_config.get("lr_factor", 0.5)),
                                              patience=int(train_config.get("lr_patience", 10)),
                                              min_lr=float(train_config.get("min_lr", 1e-5)), verbose=0)]


def augmentation_of(train_config: dict) -> dict[str, float]:
    """The non-zero augmentation strengths of ``train_config["augment"]`` ({} when none)."""
    augment = train_config.get("augment") or {}
    if not isinstance(augment, dict):
        raise ValueError(f"train.augment must be a dict of {', '.join(AUGMENTATIONS)} (or null), not {augment!r}")
    unknown = sorted(set(augment) - set(AUGMENTATIONS))
    if unknown:
        raise ValueError(f"train.augment: unknown {', '.join(unknown)}; use any of {', '.join(AUGMENTATIONS)}")
    strengths = {name: float(augment.get(name) or 0.0) for name in AUGMENTATIONS}
    if any(value < 0 for value in strengths.values()):
        raise ValueError(f"train.augment: strengths must be >= 0, not {augment!r}")
    return {name: value for name, value in strengths.items() if value > 0}


def augment_sequences(X: np.ndarray, lengths: np.ndarray, augment: dict, channel_std: np.ndarray,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One augmented copy of left-padded ``X`` (raw inputs) and its new lengths.

    Per example: time warping resamples its real frames to ``length * exp(u)`` frames, ``u`` uniform
    in ``±time_warp`` (never longer than the padded width), along a smooth monotone warp of the time
    axis; then its deviations from its own channel means are scaled by one factor ``1 + N(0, scale)``,
    each channel is shifted by ``N(0, offset) x std`` and every frame gets ``N(0, noise) x std``.
    Padding stays exactly zero (so the model's Standardise still tells it from data).
    """
    X = np.asarray(X, dtype=np.float32)
    lengths = np.asarray(lengths, dtype=np.int64)
    n, steps, channels = X.shape
    std = np.asarray(channel_std, dtype=np.float32)
    out = np.zeros_like(X)
    new_lengths = lengths.copy()
    warp = augment.get("time_warp", 0.0)
    for i in range(n):
        length = int(lengths[i])
        frames = X[i, steps - length:]
        if warp > 0 and length > 1:
            target = int(np.clip(round(length * np.exp(rng.uniform(-warp, warp))), 2, steps))
            u = np.linspace(0.0, 1.0, target)
            bend = rng.uniform(-warp, warp) * 2.0          # |bend| < 1/pi keeps the warp monotone
            source = np.clip(u + np.clip(bend, -0.3, 0.3) * np.sin(np.pi * u) / np.pi, 0.0, 1.0) * (length - 1)
            low = np.floor(source).astype(np.int64)
            high = np.minimum(low + 1, length - 1)
            weight = (source - low)[:, None].astype(np.float32)
            frames = frames[low] * (1 - weight) + frames[high] * weight
            new_lengths[i] = target
        out[i, steps - len(frames):] = frames
    real = (np.arange(steps)[None, :] >= (steps - new_lengths)[:, None])[..., None]
    if augment.get("scale", 0.0) > 0 or augment.get("offset", 0.0) > 0 or augment.get("noise", 0.0) > 0:
        counts = np.maximum(real.sum(axis=1), 1)
        mean = (out * real).sum(axis=1, keepdims=True) / counts[:, None]          # per example and channel
        factor = 1.0 + rng.normal(0.0, augment.get("scale", 0.0), (n, 1, 1))
        shift = rng.normal(0.0, augment.get("offset", 0.0), (n, 1, channels)) * std
        noise = rng.normal(0.0, augment.get("noise", 0.0), out.shape) * std
        out = np.where(real, mean + (out - mean) * factor + shift + noise, 0.0).astype(np.float32)
        # A real frame must not become all zeros (Standardise would read it as padding).
        empty = real[..., 0] & ~np.any(out != 0, axis=-1)
        out[empty] = np.float32(1e-6)
    return out, new_lengths


def augmented_batches(X: np.ndarray, lengths: np.ndarray, labels: np.ndarray, batch_size: int,
                      augment: dict, channel_std: np.ndarray, seed: int):
    """An endless generator of ``(x, y)`` batches: each epoch a fresh augmented copy of the data in
    a fresh order, ``ceil(n / batch_size)`` full batches (the last one topped up with random
    examples: one input shape, one compiled step). The same sequence for the same seed."""
    rng = np.random.default_rng([int(seed), 0xA5])
    n = len(X)
    per_epoch = -(-n // batch_size)
    while True:
        data, _ = augment_sequences(X, lengths, augment, channel_std, rng)
        order = np.concatenate([rng.permutation(n), rng.integers(0, n, per_epoch * batch_size - n)])
        for b in range(per_epoch):
            rows = order[b * batch_size:(b + 1) * batch_size]
            yield data[rows], labels[rows]


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
