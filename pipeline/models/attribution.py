"""Integrated gradients of a classifier's class probability with respect to every input (step x
channel), in batches.

The baseline is the padding. The classifier standardises its raw inputs and keeps all-zero frames
(the padding) at exactly 0, so in standardised space the padding, the training mean and "no signal"
coincide: the baseline is the all-zero standardised sequence, the path runs from it to the
example's standardised frames, and attributions are taken with respect to those (the raw-space path
would jump at the first step off zero, where the Standardise layer switches a frame from padding to
real). Completeness: the attributions of an example sum to p(x) - p(baseline); the gap is reported
per example, relative to |p(x) - p(baseline)|.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from pipeline.models.layers import Standardise


def network_tail(model: keras.Model) -> tuple[keras.Model, np.ndarray | None, np.ndarray | None]:
    """The model without its Standardise layer (it takes standardised inputs), and the mean/std."""
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    mean = std = None
    if layers and isinstance(layers[0], Standardise):
        mean, std = np.array(layers[0].mean, np.float32), np.array(layers[0].std, np.float32)
        layers = layers[1:]
    inputs = keras.Input(shape=model.inputs[0].shape[1:])
    x = inputs
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, x), mean, std


def standardised(X: np.ndarray, mean: np.ndarray | None, std: np.ndarray | None) -> np.ndarray:
    if mean is None:
        return np.asarray(X, np.float32)
    real = np.any(X != 0, axis=-1, keepdims=True)
    return np.where(real, (X - mean) / std, 0).astype(np.float32)


def integrated_gradients(model: keras.Model, X: np.ndarray, classes: np.ndarray, steps: int = 32,
                         batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Attributions (n, T, channels) of each example's class ``classes[i]`` and the completeness gap
    (n,) of each. ``X`` holds raw left-padded inputs, as the model takes them."""
    tail, mean, std = network_tail(model)
    Z = standardised(X, mean, std)
    # The trapezoid rule on ``steps`` intervals: weights 1/2, 1, ..., 1, 1/2 (divided by steps).
    alphas = np.linspace(0.0, 1.0, steps + 1, dtype=np.float32)
    weights = np.full(steps + 1, 1.0 / steps, np.float32)
    weights[[0, -1]] *= 0.5
    attributions = np.zeros_like(Z)
    gaps = np.zeros(len(Z), np.float32)

    @tf.function(reduce_retracing=True)
    def gradients(points, chosen):
        with tf.GradientTape() as tape:
            tape.watch(points)
            probabilities = tail(points, training=False)
            picked = tf.gather(probabilities, chosen, axis=1, batch_dims=1)
        return tape.gradient(picked, points), picked

    for first in range(0, len(Z), batch):
        z = Z[first:first + batch]
        chosen = np.asarray(classes[first:first + batch], np.int32)
        total = np.zeros_like(z)
        values = []
        for alpha, weight in zip(alphas, weights):
            grad, picked = gradients(tf.constant(alpha * z), tf.constant(chosen))
            total += weight * grad.numpy()
            values.append(picked.numpy())
        attributions[first:first + batch] = total * z
        change = values[-1] - values[0]                  # p(x) - p(baseline)
        summed = attributions[first:first + batch].sum(axis=(1, 2))
        gaps[first:first + batch] = np.abs(summed - change) / np.maximum(np.abs(change), 1e-6)
    return attributions, gaps
