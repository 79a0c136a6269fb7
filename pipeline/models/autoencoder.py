"""Dense denoising autoencoders that draw LSTM states in 2-D or 3-D, as in Tempczyk & Bartołd.

units -> 600 (relu) -> 150 (relu) -> dims (linear) -> 150 (relu) -> 600 (relu) -> units (linear),
Gaussian noise on the input and the clean vector as the target, so the bottleneck has to keep what
tells states apart rather than what is noise. The layer sizes follow the study for 100 units; the
input and output follow the LSTM layer's width.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from pipeline.analysis import dense


@dataclass
class TrainedAutoencoder:
    encoder: keras.Model
    autoencoder: keras.Model
    epochs: int               # epochs run before early stopping
    best_epoch: int           # the epoch whose weights were kept (1-based)
    validation_mse: float     # at the best epoch

    def encode(self, vectors: np.ndarray) -> np.ndarray:
        return dense.forward(vectors, self.encoder_layers())

    def encoder_layers(self) -> list[dense.Layer]:
        """The encoder as NumPy layers (``analysis.dense``): what draws every step of a run."""
        layers = []
        for layer in self.encoder.layers:
            if isinstance(layer, keras.layers.Dense):
                activation = layer.get_config()["activation"]
                if activation not in ("relu", "linear"):
                    raise ValueError(f"encoder layer {layer.name}: activation {activation!r}, expected relu or linear")
                kernel, bias = layer.get_weights()
                layers.append((kernel, bias, activation == "relu"))
        return layers

    def reconstruction_mse(self, vectors: np.ndarray) -> float:
        return float(np.mean((_apply(self.autoencoder, vectors) - vectors) ** 2))


def _apply(model: keras.Model, vectors: np.ndarray, chunk: int = 16384) -> np.ndarray:
    """The model's output in chunks, called directly (``predict`` retraces for every new model)."""
    parts = [model(vectors[i:i + chunk], training=False).numpy() for i in range(0, len(vectors), chunk)]
    return np.concatenate(parts).astype(np.float32)


def build_autoencoder(n_inputs: int, dims: int, hidden=(600, 150),
                      noise: float = 0.1) -> tuple[keras.Model, keras.Model]:
    """The (autoencoder, encoder) pair; the encoder shares the autoencoder's layers."""
    inputs = keras.Input((n_inputs,), name="state")
    x = keras.layers.GaussianNoise(noise, name="noise")(inputs)
    for i, width in enumerate(hidden):
        x = keras.layers.Dense(width, activation="relu", name=f"encode{i}")(x)
    code = keras.layers.Dense(dims, name="code")(x)
    x = code
    for i, width in enumerate(reversed(hidden)):
        x = keras.layers.Dense(width, activation="relu", name=f"decode{i}")(x)
    outputs = keras.layers.Dense(n_inputs, name="reconstruction")(x)
    return (keras.Model(inputs, outputs, name=f"autoencoder{dims}d"),
            keras.Model(inputs, code, name=f"encoder{dims}d"))


def train_autoencoder(train: np.ndarray, validation: np.ndarray, dims: int, seed: int,
                      hidden=(600, 150), noise: float = 0.1, learning_rate: float = 0.001,
                      batch_size: int = 256, max_epochs: int = 100,
                      patience: int = 5) -> TrainedAutoencoder:
    """Fit on ``train`` (already shuffled single-step vectors) with early stopping on ``validation``.

    The best epoch's weights are kept. ``seed`` fixes the initial weights, the noise and the batch
    order, so a run is reproducible on the same machine.
    """
    keras.utils.set_random_seed(seed)
    autoencoder, encoder = build_autoencoder(train.shape[1], dims, hidden, noise)
    autoencoder.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
    stop = keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True)
    history = autoencoder.fit(train, train, validation_data=(validation, validation),
                              batch_size=batch_size, epochs=max_epochs, shuffle=True,
                              callbacks=[stop], verbose=0)
    losses = history.history["val_loss"]
    best = int(np.argmin(losses))
    return TrainedAutoencoder(encoder, autoencoder, len(losses), best + 1, float(losses[best]))
