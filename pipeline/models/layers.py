"""This project's small Keras layers: registered serialisables (no Lambda layers), so a saved
model reloads with ``safe_mode=True``."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="lstm_lens")
class Standardise(keras.layers.Layer):
    """``(x - mean) / std`` per channel on real frames; all-zero frames (padding) stay exactly 0.

    Inside the model so that a saved model takes raw inputs. ``extract.standardise`` mirrors it.
    """

    def __init__(self, mean, std, **kwargs):
        super().__init__(**kwargs)
        self.mean = [float(v) for v in mean]
        self.std = [float(v) for v in std]

    def call(self, x):
        mean = keras.ops.convert_to_tensor(self.mean, dtype=x.dtype)
        std = keras.ops.convert_to_tensor(self.std, dtype=x.dtype)
        real = keras.ops.any(keras.ops.not_equal(x, 0), axis=-1, keepdims=True)
        return keras.ops.where(real, (x - mean) / std, keras.ops.zeros_like(x))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "std": self.std}


@keras.saving.register_keras_serializable(package="lstm_lens")
class LastStep(keras.layers.Layer):
    """The last time step of a sequence: (batch, T, units) -> (batch, units)."""

    def call(self, x):
        return x[:, -1, :]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


@keras.saving.register_keras_serializable(package="lstm_lens")
class MaskedSoftmax(keras.layers.Layer):
    """Attention weights: a softmax of per-step scores over the real steps only.

    ``[scores (batch, T, 1), raw inputs (batch, T, channels)] -> (batch, T)``. A step is real from
    the sequence's first frame that is not all zeros on (sequences are left-padded with zero
    frames), so the padding gets weight exactly 0 and the real steps' weights sum to 1.
    ``analysis.attention`` mirrors it.
    """

    def call(self, inputs):
        scores, x = inputs
        scores = keras.ops.squeeze(scores, axis=-1)
        started = keras.ops.cast(keras.ops.any(keras.ops.not_equal(x, 0), axis=-1), scores.dtype)
        real = keras.ops.cumsum(started, axis=1) > 0
        lowest = keras.ops.min(scores, axis=1, keepdims=True)
        top = keras.ops.max(keras.ops.where(real, scores, lowest), axis=1, keepdims=True)
        exp = keras.ops.where(real, keras.ops.exp(scores - top), keras.ops.zeros_like(scores))
        return exp / keras.ops.maximum(keras.ops.sum(exp, axis=1, keepdims=True), 1e-30)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0][:2])


@keras.saving.register_keras_serializable(package="lstm_lens")
class WeightedSum(keras.layers.Layer):
    """Attention pooling: ``[h (batch, T, units), weights (batch, T)] -> sum_t w_t h_t (batch, units)``."""

    def call(self, inputs):
        h, weights = inputs
        return keras.ops.sum(h * keras.ops.expand_dims(weights, -1), axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], input_shape[0][2])
