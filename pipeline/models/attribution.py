"""Integrated gradients of a classifier's class probability with respect to every input (step x
channel), in batches.

The baseline is the padding. The classifier standardises its raw inputs and keeps all-zero frames
(the padding) at exactly 0, so in standardised space the padding, the training mean and "no signal"
coincide: the baseline is the all-zero standardised sequence, the path runs from it to the
example's standardised frames, and attributions are taken with respect to those (the raw-space path
would jump at the first step off zero, where the Standardise layer switches a frame from padding to
real). Completeness: the attributions of an example sum to p(x) - p(baseline); the gap is reported
per example, relative to |p(x) - p(baseline)|.

The rule: the trapezoid rule, refined where it errs. Along the path the class probability is far
from smooth: it typically switches from ~0 to ~1 over a tenth of the path, and for many Auslan
signs it jumps within 1/256 of it (the LSTM's state tips into another attractor). Gauss-Legendre
nodes, which assume a smooth integrand, did worse than the trapezoid rule with as many gradients
(256 Auslan signs: median gap 15% with 16 nodes, 11% with 16 trapezoid intervals), and uniform
refinement pays everywhere for a few narrow jumps (64 intervals: median 2.2%, p90 22%). So each
example starts on ``steps`` equal intervals and, while its gap is over ``tolerance``, up to
``REFINED_PER_ROUND`` intervals with the largest local error (and at least ``SPLIT_SHARE`` of the
worst one's) are halved, up to ``max_steps`` intervals. The local error is exact: every gradient
evaluation also returns p(alpha x), and p' integrates over [a, b] to p(b) - p(a).

Padding: the classifier does not mask it; every example runs through its leading zero frames, in
the same states whatever the example (and whatever alpha: the baseline is 0 there too). So the
examples are batched by length and each batch runs from the state its common leading padding
leaves (computed once, step by step): the same numbers up to rounding, and on Auslan (lengths 45-89
of 90) a third less work.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from pipeline.models.keras_weights import PASS_THROUGH
from pipeline.models.layers import MaskedSoftmax, Standardise

REFINED_PER_ROUND = 4       # intervals halved per example and round (one gradient call per round)
SPLIT_SHARE = 0.25          # ... among those erring at least this share of the worst one's error
POINTS_PER_CALL = 1024      # path points per gradient evaluation (memory: activations of each)
MIN_WIDTH = 2.0 ** -20      # narrower intervals are not halved again (alpha is float32)
RULE = "trapezoid, adaptive"


@dataclass
class Attributions:
    values: np.ndarray          # (n, T, channels) float32; 0 on the padding
    gaps: np.ndarray            # (n,) completeness gap, relative to |p(x) - p(baseline)|
    intervals: np.ndarray       # (n,) trapezoid intervals each example ended with


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


class _Network:
    """The network on standardised inputs, run from given LSTM states (those after a cut padding)."""

    def __init__(self, model: keras.Model):
        if any(isinstance(layer, MaskedSoftmax) for layer in model.layers):
            raise ValueError("integrated gradients here run the network to its last step's h; an attention "
                             "model pools every step (not supported)")
        tail, self.mean, self.std = network_tail(model)
        self.layers = [layer for layer in tail.layers if not isinstance(layer, keras.layers.InputLayer)]
        self.lstms = [layer for layer in self.layers if isinstance(layer, keras.layers.LSTM)]
        if not self.lstms:
            raise ValueError("integrated gradients need a model with LSTM layers")
        before_last = self.layers[:self.layers.index(self.lstms[-1])]
        other = [type(layer).__name__ for layer in before_last if not isinstance(layer, keras.layers.LSTM)]
        if any(name not in PASS_THROUGH for name in other):
            raise ValueError(f"integrated gradients: layers between the LSTMs must do nothing at "
                             f"inference, not {', '.join(other)}")
        self.n_channels = int(model.inputs[0].shape[-1])
        state = [tf.TensorSpec((1, layer.units), tf.float32) for layer in self.lstms for _ in range(2)]
        self.gradients = tf.function(self._gradients, input_signature=[
            tf.TensorSpec((None, None, self.n_channels), tf.float32), tf.TensorSpec((None,), tf.int32), *state])

    def padding_states(self, n_steps: int) -> list[list[tf.Tensor]]:
        """The LSTMs' states (h, c of each layer, flat) after 0..n_steps zero frames."""
        states = [tf.zeros((1, layer.units)) for layer in self.lstms for _ in range(2)]
        trajectory = [states]
        zero = tf.zeros((1, self.n_channels))
        for _ in range(n_steps):
            x, states = zero, list(states)
            for k, layer in enumerate(self.lstms):
                x, (states[2 * k], states[2 * k + 1]) = layer.cell(x, [states[2 * k], states[2 * k + 1]])
            trajectory.append(states)
        return trajectory

    def _gradients(self, points, chosen, *states):
        size = tf.shape(points)[0]
        with tf.GradientTape() as tape:
            tape.watch(points)
            x, k = points, 0
            for layer in self.layers:
                if isinstance(layer, keras.layers.LSTM):
                    initial = [tf.repeat(states[2 * k], size, axis=0), tf.repeat(states[2 * k + 1], size, axis=0)]
                    x, k = layer(x, initial_state=initial, training=False), k + 1
                else:
                    x = layer(x, training=False)
            picked = tf.gather(x, chosen, axis=1, batch_dims=1)
        return tape.gradient(picked, points), picked


def integrated_gradients(model: keras.Model, X: np.ndarray, classes: np.ndarray, steps: int = 4,
                         batch: int = 256, tolerance: float = 0.02, max_steps: int = 32) -> Attributions:
    """Attributions of each example's class ``classes[i]``, its completeness gap and how many
    trapezoid intervals it took (``steps`` to ``max_steps``; module docstring). ``X`` holds raw
    left-padded inputs, as the model takes them."""
    if steps < 1 or max_steps < steps or batch < 1 or tolerance < 0:
        raise ValueError(f"integrated gradients need 1 <= steps <= max_steps, batch >= 1 and "
                         f"tolerance >= 0, not steps={steps}, max_steps={max_steps}, batch={batch}, "
                         f"tolerance={tolerance}")
    network = _Network(model)
    X = np.asarray(X, np.float32)
    Z = standardised(X, network.mean, network.std)
    real = np.any(X != 0, axis=-1)
    lead = np.where(real.any(axis=1), np.argmax(real, axis=1), X.shape[1])     # leading padding frames
    classes = np.asarray(classes, np.int32)
    trajectory = network.padding_states(int(lead.max(initial=0)))
    out = Attributions(np.zeros_like(Z), np.zeros(len(Z), np.float32), np.zeros(len(Z), np.int32))
    order = np.argsort(-lead, kind="stable")                        # similar lengths side by side
    for first in range(0, len(Z), batch):
        ids = order[first:first + batch]
        cut = int(lead[ids].min())
        z = Z[ids, cut:]
        values, out.gaps[ids], out.intervals[ids] = _integrate(network, z, classes[ids], trajectory[cut],
                                                               steps, tolerance, max_steps)
        out.values[ids, cut:] = values
    return out


def _integrate(network: _Network, z: np.ndarray, chosen: np.ndarray, states: list, steps: int,
               tolerance: float, max_steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One batch: attributions, gaps and intervals of standardised inputs ``z`` (m, T, channels)."""
    m, slots = len(z), max_steps + 1
    per_round = min(REFINED_PER_ROUND, max_steps)
    alpha = np.full((m, slots), np.inf)           # nodes in the order they were added; inf: unused
    value = np.zeros((m, slots))                  # p(alpha z)
    slope = np.zeros((m, slots))                  # d/dalpha p(alpha z) = gradient . z
    grads = np.zeros((m, slots) + z.shape[1:], np.float32)
    count = np.zeros(m, np.int64)

    def evaluate(rows: np.ndarray, alphas: np.ndarray) -> None:
        slot = count[rows] + _rank_within(rows)
        for first in range(0, len(rows), POINTS_PER_CALL):
            part = slice(first, first + POINTS_PER_CALL)
            r, a, s = rows[part], alphas[part], slot[part]
            points = (a[:, None, None] * z[r]).astype(np.float32)
            gradient, picked = network.gradients(tf.constant(points), tf.constant(chosen[r]), *states)
            gradient = gradient.numpy()
            grads[r, s], alpha[r, s], value[r, s] = gradient, a, picked.numpy()
            slope[r, s] = np.einsum("ptc,ptc->p", gradient, z[r], dtype=np.float64)
        np.add.at(count, rows, 1)

    # alpha = 0 is the baseline, the same input for every example: one gradient per class there.
    classes, which = np.unique(chosen, return_inverse=True)
    gradient, picked = network.gradients(tf.zeros((len(classes),) + z.shape[1:]), tf.constant(classes), *states)
    grads[:, 0], value[:, 0], alpha[:, 0] = gradient.numpy()[which], picked.numpy()[which], 0.0
    slope[:, 0] = np.einsum("ptc,ptc->p", grads[:, 0], z, dtype=np.float64)
    count[:] = 1
    evaluate(np.repeat(np.arange(m), steps), np.tile(np.arange(1, steps + 1) / steps, m))
    change = value[:, steps] - value[:, 0]          # p(z) - p(baseline): the nodes 1 and 0
    scale = np.maximum(np.abs(change), 1e-6)
    while True:
        sorted_at, a = _node_order(alpha)
        width = np.diff(a, axis=1)
        used = np.arange(slots - 1)[None, :] < (count - 1)[:, None]
        local = np.where(used, width / 2 * (_sorted(slope, sorted_at, 0) + _sorted(slope, sorted_at, 1))
                         - np.diff(np.take_along_axis(value, sorted_at, axis=1), axis=1), 0.0)
        gap = np.abs(local.sum(axis=1)) / scale
        room = np.minimum(per_round, max_steps - (count - 1))
        error = np.where(used & (width > MIN_WIDTH), np.abs(local), -1.0)
        worst = np.argsort(-error, axis=1)[:, :per_round]
        pick = (np.arange(per_round)[None, :] < room[:, None]) & (gap > tolerance)[:, None]
        chosen_error = np.take_along_axis(error, worst, axis=1)
        pick &= (chosen_error > 0) & (chosen_error >= SPLIT_SHARE * chosen_error[:, :1])
        rows, k = np.nonzero(pick)
        if not len(rows):
            break
        left = np.take_along_axis(a, worst, axis=1)[rows, k]
        right = np.take_along_axis(a, worst + 1, axis=1)[rows, k]
        evaluate(rows, (left + right) / 2)

    sorted_at, a = _node_order(alpha)
    padded = np.concatenate([a[:, :1], a, a[:, -1:]], axis=1)
    weight = np.zeros((m, slots))
    np.put_along_axis(weight, sorted_at, (padded[:, 2:] - padded[:, :-2]) / 2, axis=1)   # trapezoid
    values = np.einsum("ms,mstc->mtc", weight.astype(np.float32), grads) * z
    gaps = np.abs(values.sum(axis=(1, 2), dtype=np.float64) - change) / scale
    return values, gaps.astype(np.float32), (count - 1).astype(np.int32)


def _node_order(alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's nodes in increasing alpha, and those alphas with the unused slots (inf) at 1:
    after the last node, intervals of width 0 and trapezoid weights of 0."""
    order = np.argsort(alpha, axis=1)
    ordered = np.take_along_axis(alpha, order, axis=1)
    return order, np.where(np.isfinite(ordered), ordered, 1.0)


def _sorted(array: np.ndarray, order: np.ndarray, shift: int) -> np.ndarray:
    """``array`` in each row's node order, left (``shift=0``) or right (1) end of each interval."""
    ordered = np.take_along_axis(array, order, axis=1)
    return ordered[:, shift:ordered.shape[1] - 1 + shift]


def _rank_within(rows: np.ndarray) -> np.ndarray:
    """For each entry of ``rows``, how many earlier entries have the same row (0, 1, ...)."""
    order = np.argsort(rows, kind="stable")
    ranks = np.empty(len(rows), np.int64)
    sorted_rows = rows[order]
    starts = np.flatnonzero(np.r_[True, sorted_rows[1:] != sorted_rows[:-1]])
    ranks[order] = np.arange(len(rows)) - np.repeat(starts, np.diff(np.r_[starts, len(rows)]))
    return ranks
