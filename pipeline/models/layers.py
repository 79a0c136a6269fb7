"""This project's two small Keras layers: registered serialisables (no Lambda layers), so a saved
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
