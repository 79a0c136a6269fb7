"""The character (or word) language model: build, train (truncated backpropagation through time), weights.

chars (batch, steps) -> Embedding -> LSTM x N -> Dropout -> Dense(vocabulary, softmax): the
probability of the next token after every token. A token is a character, or a word of a word
run (the same model over a vocabulary of words; its history names bits per token).

Each LSTM takes its initial (h, c) as model inputs and returns its final ones, so training can
carry the state from one window of a document to the next and set it to zero where a document
starts. That is exactly how the language-model kind extracts a run: every document from a zero state, through
all its characters. Documents are therefore independent sequences, in training and in extraction.

Training runs ``lanes`` documents side by side; each lane works through its documents window by
window (``window`` characters a gradient step). The last window of a document is padded and its
padding carries no loss, so a document always starts a fresh window and its state starts at zero.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from pipeline.analysis.layout import assign_lanes
from pipeline.core.progress import QUIET, Progress

MODEL_FILE = "models/char_lm.keras"
LN2 = math.log(2.0)


def build_char_lm(vocabulary_size: int, units: list[int], embedding: int = 32,
                  dropout: float = 0.0) -> keras.Model:
    """Inputs ``[chars, h0_0, c0_0, h0_1, ...]``; outputs ``[probabilities, h_0, c_0, h_1, ...]``."""
    if not units or any(int(u) < 1 for u in units):
        raise ValueError(f"model.units must be a non-empty list of positive integers, not {units!r}")
    if not 0 <= dropout < 1:
        raise ValueError(f"model.dropout must be in [0, 1), not {dropout!r}")
    chars = keras.Input(shape=(None,), dtype="int32", name="chars")
    state_inputs, state_outputs = [], []
    x = keras.layers.Embedding(vocabulary_size, int(embedding), name="embedding")(chars)
    for index, n_units in enumerate(int(u) for u in units):
        h0 = keras.Input(shape=(n_units,), name=f"h0_{index}")
        c0 = keras.Input(shape=(n_units,), name=f"c0_{index}")
        x, h, c = keras.layers.LSTM(n_units, return_sequences=True, return_state=True,
                                    name=f"lstm_{index}")(x, initial_state=[h0, c0])
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"dropout_{index}")(x)
        state_inputs += [h0, c0]
        state_outputs += [h, c]
    probabilities = keras.layers.Dense(vocabulary_size, activation="softmax", name="next_char")(x)
    return keras.Model([chars, *state_inputs], [probabilities, *state_outputs], name="char_lm")


def zero_states(model: keras.Model, batch: int) -> list[np.ndarray]:
    return [np.zeros((batch, int(t.shape[-1])), np.float32) for t in model.inputs[1:]]


# ---------------------------------------------------------------------------------------------
# Windows: documents laid out in lanes for truncated backpropagation through time

@dataclass
class Windows:
    """``steps`` batches of ``lanes`` windows: inputs, next-char targets, loss weights, resets."""

    inputs: np.ndarray     # (steps, lanes, window) int32
    targets: np.ndarray    # (steps, lanes, window) int32
    weights: np.ndarray    # (steps, lanes, window) float32: 1 where a target exists
    reset: np.ndarray      # (steps, lanes) float32: 1 where the lane starts a document (or idles)


def make_windows(ids: np.ndarray, starts: np.ndarray, lengths: np.ndarray, documents: np.ndarray,
                 n_lanes: int, window: int, rng: np.random.Generator | None = None) -> Windows:
    """Lay ``documents`` (indices into starts/lengths) out in lanes; shuffled when ``rng`` is given."""
    documents = np.asarray(documents)
    if rng is not None:
        documents = rng.permutation(documents)
    n_windows = np.maximum(np.ceil((lengths[documents] - 1) / window), 1).astype(np.int64)
    n_lanes = max(1, min(n_lanes, len(documents)))
    lanes = assign_lanes(n_windows, n_lanes)
    steps = max(int(n_windows[lane].sum()) for lane in lanes)
    # One entry per real window: (step, lane, document, k = window number within the document).
    step_ix, lane_ix, doc_ix, k_ix = [], [], [], []
    for lane, items in enumerate(lanes):
        k = np.concatenate([np.arange(n_windows[i]) for i in items])
        step_ix.append(np.arange(len(k)))
        lane_ix.append(np.full(len(k), lane))
        doc_ix.append(np.repeat(documents[items], n_windows[items]))
        k_ix.append(k)
    step_ix, lane_ix, doc_ix, k_ix = (np.concatenate(a) for a in (step_ix, lane_ix, doc_ix, k_ix))
    offset = k_ix[:, None] * window + np.arange(window)[None, :]          # position in the document
    valid = offset < (lengths[doc_ix] - 1)[:, None]
    position = np.where(valid, starts[doc_ix][:, None] + offset, 0)
    inputs = np.zeros((steps, n_lanes, window), np.int32)
    targets = np.zeros((steps, n_lanes, window), np.int32)
    weights = np.zeros((steps, n_lanes, window), np.float32)
    reset = np.ones((steps, n_lanes), np.float32)
    inputs[step_ix, lane_ix] = np.where(valid, ids[position], 0)
    targets[step_ix, lane_ix] = np.where(valid, ids[np.minimum(position + 1, len(ids) - 1)], 0)
    weights[step_ix, lane_ix] = valid
    reset[step_ix, lane_ix] = (k_ix == 0)
    return Windows(inputs, targets, weights, reset)


# ---------------------------------------------------------------------------------------------
# Training

@dataclass
class Training:
    model: keras.Model
    history: pd.DataFrame     # one row per epoch
    best_epoch: int


def train_char_lm(ids: np.ndarray, starts: np.ndarray, lengths: np.ndarray, split: np.ndarray,
                  vocabulary_size: int, model_config: dict, train_config: dict,
                  progress: Progress = QUIET, unit: str = "char") -> Training:
    """Train on the ``train`` documents with early stopping on the validation loss; ``unit``
    (char or token) names the history's bits_per_<unit> columns.

    The learning rate is multiplied by ``lr_decay`` after each epoch; the best epoch's weights
    are kept. Deterministic for a given seed on a given machine.
    """
    keras.utils.set_random_seed(int(train_config["seed"]))
    split = np.asarray(split)
    train_docs, validation_docs = np.flatnonzero(split == "train"), np.flatnonzero(split == "validation")
    if not len(train_docs) or not len(validation_docs):
        raise ValueError("training needs documents in both the train and the validation split")
    model = build_char_lm(vocabulary_size, list(model_config["units"]),
                          int(model_config.get("embedding", 32)), float(model_config.get("dropout", 0.0)))
    learning_rate, decay = float(train_config["learning_rate"]), float(train_config.get("lr_decay", 1.0))
    optimizer = keras.optimizers.Adam(learning_rate, global_clipnorm=float(train_config.get("clipnorm", 5.0)))
    lanes, window = int(train_config["batch_size"]), int(train_config["window"])
    rng = np.random.default_rng(int(train_config["seed"]))
    validation = make_windows(ids, starts, lengths, validation_docs, lanes, window)
    train_step, eval_step = _step_functions(model, optimizer)

    rows, best_loss, best_weights, best_epoch, waited = [], np.inf, None, 0, 0
    epochs, patience = int(train_config["epochs"]), int(train_config["patience"])
    max_seconds = train_config.get("max_seconds")
    started = time.monotonic()
    with progress.bar(epochs, "train", "epoch") as bar:
        for epoch in range(1, epochs + 1):
            tick = time.monotonic()
            optimizer.learning_rate.assign(learning_rate * decay ** (epoch - 1))
            windows = make_windows(ids, starts, lengths, train_docs, lanes, window, rng)
            loss, accuracy, grad_norm = _run_epoch(model, windows, train_step)
            val_loss, val_accuracy, _ = _run_epoch(model, validation, eval_step)
            rows.append({"epoch": epoch, "learning_rate": float(optimizer.learning_rate.numpy()),
                         "loss": loss, "accuracy": accuracy, "val_loss": val_loss,
                         "val_accuracy": val_accuracy, f"bits_per_{unit}": loss / LN2,
                         f"val_bits_per_{unit}": val_loss / LN2, "grad_norm": grad_norm,
                         "seconds": time.monotonic() - tick})
            bar.set_postfix(loss=f"{loss:.3f}", val_loss=f"{val_loss:.3f}",
                            val_acc=f"{val_accuracy:.3f}", refresh=False)
            bar.update()
            if val_loss < best_loss - 1e-4:
                best_loss, best_weights, best_epoch, waited = val_loss, model.get_weights(), epoch, 0
            else:
                waited += 1
                if waited >= patience:
                    break
            if max_seconds and time.monotonic() - started > float(max_seconds):
                progress.note(f"train: stopping after epoch {epoch}, past train.max_seconds={max_seconds}")
                break
    model.set_weights(best_weights)
    return Training(model, pd.DataFrame(rows).astype({"epoch": np.int32}), best_epoch)


def _step_functions(model: keras.Model, optimizer):
    loss_fn = keras.losses.SparseCategoricalCrossentropy(reduction=None)

    def forward(x, y, w, reset, states, training):
        keep = (1.0 - reset)[:, None]
        outputs = model([x, *[s * keep for s in states]], training=training)
        probabilities, new_states = outputs[0], outputs[1:]
        losses = loss_fn(y, probabilities) * w
        correct = tf.cast(tf.equal(tf.argmax(probabilities, axis=-1, output_type=tf.int32), y),
                          tf.float32) * w
        return tf.reduce_sum(losses), tf.reduce_sum(correct), new_states

    @tf.function(reduce_retracing=True)
    def train_step(x, y, w, reset, states):
        with tf.GradientTape() as tape:
            loss_sum, correct, new_states = forward(x, y, w, reset, states, True)
            loss = loss_sum / tf.maximum(tf.reduce_sum(w), 1.0)
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss_sum, correct, new_states, tf.linalg.global_norm(gradients)

    @tf.function(reduce_retracing=True)
    def eval_step(x, y, w, reset, states):
        loss_sum, correct, new_states = forward(x, y, w, reset, states, False)
        return loss_sum, correct, new_states, tf.constant(0.0)

    return train_step, eval_step


def _run_epoch(model: keras.Model, windows: Windows, step) -> tuple[float, float, float]:
    """Mean loss (nats per token), accuracy and mean gradient norm over one pass of the windows."""
    states = [tf.constant(s) for s in zero_states(model, windows.inputs.shape[1])]
    loss_sum = correct = norm_sum = 0.0
    for s in range(len(windows.inputs)):
        loss, hits, states, norm = step(tf.constant(windows.inputs[s]), tf.constant(windows.targets[s]),
                                        tf.constant(windows.weights[s]), tf.constant(windows.reset[s]),
                                        states)
        loss_sum += float(loss)
        correct += float(hits)
        norm_sum += float(norm)
    n = max(float(windows.weights.sum()), 1.0)
    return loss_sum / n, correct / n, norm_sum / max(len(windows.inputs), 1)
