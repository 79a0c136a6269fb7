"""``LensCallback``: record a Keras model's LSTMs where it trains, in two lines.

    from pipeline.record import LensCallback
    model.fit(x, y, callbacks=[LensCallback("data/runs/my-model", inputs=x_val, labels=y_val)])

Any Keras model whose LSTM layers form a chain is taken: stacked, with or without
``return_sequences`` on the last one, after Masking, Embedding or this project's Standardise, with
any head. A softmax Dense directly on the last LSTM gives per-step probabilities; any other head
gives the model's own final predictions. Bidirectional LSTMs are refused with a message (the
backward direction reads the future; record a forward LSTM or import the two directions' arrays).
Everything is checked when training begins, before the first epoch.
"""

from __future__ import annotations

import keras
import numpy as np

from pipeline.core.errors import DataError
from pipeline.models.keras_weights import check_against_keras, network_weights
from pipeline.record.session import Recording

CHECK_SEQUENCES = 8


class LensCallback(keras.callbacks.Callback):
    """Writes the run ``run`` (a folder under a runs folder) while ``model.fit`` trains.

    ``inputs`` (and ``labels``, ``classes``, ``split``, ``lengths``, ``names``) are the examples to
    record, as the model takes them; ``padding`` says which side of ``inputs`` the padding is on.
    ``every=N`` also keeps the weights of every N-th epoch. ``project`` overrides the projection
    settings (``{"methods": []}``: none). ``tolerance``: the largest accepted difference between the
    NumPy recompute and Keras' own h on the first sequences.
    """

    def __init__(self, run, *, inputs, labels=None, classes=None, split=None, lengths=None, names=None,
                 padding: str = "right", every: int = 0, project: dict | None = None,
                 tolerance: float = 1e-5):
        super().__init__()
        self.recording = Recording(run, inputs, labels=labels, classes=classes, split=split, lengths=lengths,
                                   names=names, padding=padding, every=every, project=project,
                                   framework="keras")
        self.tolerance = tolerance
        self.path = None

    def _weights(self):
        masked = any(isinstance(layer, keras.layers.Masking) for layer in self.model.layers)
        recording = self.recording
        # How the model saw the padding: skipped by a Masking layer, or run through (left padding).
        padding = "none" if masked or recording.padding == "right" else "left"
        weights, lstms = network_weights(self.model, padding="none", any_head=True)
        if padding == "left":
            weights = weights.with_padding("left", int(recording.inputs.shape[1]))
        return weights, lstms

    def on_train_begin(self, logs=None):
        recording = self.recording
        weights, lstms = self._weights()
        shape = tuple(self.model.inputs[0].shape[1:])
        given = recording.inputs.shape[1:]
        if len(shape) != len(given) or any(a is not None and a != b for a, b in zip(shape, given)):
            raise DataError(f"inputs have shape (n, {', '.join(map(str, given))}) but the model takes "
                            f"(n, {', '.join('None' if a is None else str(a) for a in shape)})")
        sample = np.arange(min(CHECK_SEQUENCES, len(recording.lengths)))
        x, lengths = recording.rows(sample)
        error = check_against_keras(self.model, lstms, weights, x, lengths)
        if error > self.tolerance:
            raise DataError(f"the NumPy recompute differs from Keras by {error:.2e} (> {self.tolerance:g}) "
                            f"on the first sequences; check padding= (the side the padding is on) and "
                            f"lengths=")
        self.check_error = error
        recording.start()

    def on_epoch_end(self, epoch, logs=None):
        self.recording.epoch(epoch + 1, logs or {}, self._weights()[0])

    def on_train_end(self, logs=None):
        recording = self.recording
        weights, _ = self._weights()
        final = None
        if weights.head_kernel is None and recording.labels is not None:
            output = np.asarray(self.model.predict(recording.inputs, verbose=0))
            if output.ndim == 2 and output.shape[1] >= len(recording.classes) and np.allclose(output.sum(axis=1), 1, atol=1e-3):
                final = output
        self.path = recording.finish(weights, final, notes={"max_abs_difference_h": float(self.check_error),
                                                            "per_step_head": weights.head_kernel is not None})
