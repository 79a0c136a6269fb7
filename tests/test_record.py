"""Recording a user's own model where it trains: the Keras callback and the PyTorch recorder write
ordinary runs (history every epoch, every tensor at the end) that equal the framework's own outputs."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import runformat
from pipeline.core.errors import DataError
from pipeline.record.session import Recording

keras = pytest.importorskip("keras")
NO_PROJECTIONS = {"methods": []}


def _signs(n=24, T=9, C=3, seed=0):
    """Right-padded sequences of two classes: class 1 drifts upwards."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, T + 1, n)
    labels = np.arange(n) % 2
    x = np.zeros((n, T, C), np.float32)
    for i, length in enumerate(lengths):
        x[i, :length] = rng.normal(0, 1, (length, C)) + labels[i] * np.linspace(0, 2, length)[:, None]
    return x, lengths, labels


def test_rec001_keras_callback_on_a_users_model(tmp_path):
    """A model of the user's own (Masking, two LSTMs, a Dense relu and a softmax): history rows each
    epoch, every tensor equal to Keras' own, the model's final predictions in the examples."""
    x, lengths, labels = _signs()
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((9, 3)), keras.layers.Masking(0.0),
                              keras.layers.LSTM(6, return_sequences=True), keras.layers.LSTM(5),
                              keras.layers.Dense(4, activation="relu"), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    from pipeline.record import LensCallback
    callback = LensCallback(tmp_path / "runs" / "mine", inputs=x, labels=labels, classes=["flat", "up"],
                            lengths=lengths, project={"methods": ["pca"]})
    model.fit(x, labels, epochs=3, batch_size=8, verbose=0, callbacks=[callback])

    run = runformat.Run.open(tmp_path / "runs", "mine")
    assert run.manifest.origin == "recorded" and run.manifest.complete and run.kind == "classification"
    history = run.history()
    assert history["epoch"].tolist() == [1, 2, 3]
    assert {"loss", "accuracy", "layer0_forget_gate_saturated", "layer1_h_spread"} <= set(history)
    assert [(layer.index, layer.units) for layer in run.layers] == [(0, 6), (1, 5)]
    assert run.step_matrix(1, "input_gate").shape == (int(lengths.sum()), 5)
    probe = keras.Model(model.inputs, [model.layers[1].output])
    keras_h = probe.predict(x, verbose=0)
    ours = run.step_matrix(0, "h")
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    for i, (start, length) in enumerate(zip(starts, lengths)):
        np.testing.assert_allclose(ours[start:start + length], keras_h[i, :length], atol=1e-5)
    expected = model.predict(x, verbose=0)
    examples = run.examples()
    assert examples["prediction"].tolist() == expected.argmax(axis=1).tolist()
    np.testing.assert_allclose(examples["confidence"], expected.max(axis=1), atol=1e-5)
    assert run.manifest.projection_ids == ["pca2", "pca3"] and not run.has(runformat.PREDICTIONS_FILE)


def test_rec002_a_softmax_on_the_lstm_gives_per_step_predictions_and_left_padding(tmp_path):
    x, lengths, labels = _signs(seed=2)
    left = np.zeros_like(x)
    for i, length in enumerate(lengths):
        left[i, 9 - length:] = x[i, :length]
    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((9, 3)), keras.layers.LSTM(4), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    from pipeline.record import LensCallback
    callback = LensCallback(tmp_path / "runs" / "left", inputs=left, labels=labels, lengths=lengths,
                            padding="left", project=NO_PROJECTIONS, every=1)
    model.fit(left, labels, epochs=2, verbose=0, callbacks=[callback])
    run = runformat.Run.open(tmp_path / "runs", "left")
    steps = run.steps("predictions")
    last = (run.examples()["row_start"] + run.examples()["length"] - 1).to_numpy()
    np.testing.assert_allclose(steps["predicted_prob"].to_numpy()[last], model.predict(left, verbose=0).max(axis=1),
                               atol=1e-5)
    assert sorted(p.name for p in (run.path / "models" / "epochs").iterdir()) == ["epoch-00001.npz", "epoch-00002.npz"]
    assert run.manifest["channels"] == ["input0", "input1", "input2"]
    # The representation forming: each kept epoch's paths in one common space.
    run = runformat.Run.open(tmp_path / "runs", "left")
    pictures = run.read_table(runformat.EPOCH_PROJECTIONS_FILE)
    assert run.manifest["epoch_projections"]["epochs"] == [1, 2] and run.manifest.complete
    assert (pictures.groupby("epoch").size() == int(lengths.sum())).all()
    first, second = (pictures[pictures["epoch"] == e][["x", "y"]].to_numpy() for e in (1, 2))
    assert not np.allclose(first, second)            # training moved the states


def test_rec003_bad_setups_fail_before_the_first_epoch(tmp_path):
    x, lengths, labels = _signs()
    from pipeline.record import LensCallback
    bidirectional = keras.Sequential([keras.Input((9, 3)), keras.layers.Bidirectional(keras.layers.LSTM(3)),
                                      keras.layers.Dense(2, activation="softmax")])
    bidirectional.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(DataError, match="bidirectional LSTMs are not recomputed"):
        bidirectional.fit(x, labels, epochs=1, verbose=0,
                          callbacks=[LensCallback(tmp_path / "runs" / "bi", inputs=x, labels=labels)])
    assert not (tmp_path / "runs" / "bi").exists()
    dense = keras.Sequential([keras.Input((9, 3)), keras.layers.Flatten(), keras.layers.Dense(2)])
    dense.compile("adam", "mse")
    with pytest.raises(DataError, match="not supported here|no LSTM layer"):
        dense.fit(x, np.zeros((24, 2)), epochs=1, verbose=0,
                  callbacks=[LensCallback(tmp_path / "runs" / "dense", inputs=x)])
    lstm = keras.Sequential([keras.Input((9, 3)), keras.layers.LSTM(3)])
    lstm.compile("adam", "mse")
    with pytest.raises(DataError, match=r"inputs have shape \(n, 9, 2\) but the model takes \(n, 9, 3\)"):
        lstm.fit(x, np.zeros((24, 3)), epochs=1, verbose=0,
                 callbacks=[LensCallback(tmp_path / "runs" / "shape", inputs=x[..., :2])])
    with pytest.raises(DataError, match=r"labels has shape \(23,\)"):
        Recording(tmp_path / "runs" / "labels", x, labels=labels[:23])
    with pytest.raises(DataError, match="lengths must give each of the 24 examples 1 to 9 steps"):
        Recording(tmp_path / "runs" / "lengths", x, lengths=lengths + 9)


def test_rec004_the_run_is_readable_while_training(tmp_path):
    """After each epoch the history is on disk and the manifest says training."""
    x, lengths, labels = _signs()
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((9, 3)), keras.layers.LSTM(3), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    from pipeline.record import LensCallback
    seen = []

    class Peek(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            run = runformat.Run.open(tmp_path / "runs", "live")
            seen.append((run.manifest.status, len(run.history()), run.manifest["recording"]["epochs"]))

    callback = LensCallback(tmp_path / "runs" / "live", inputs=x, labels=labels, lengths=lengths, project=NO_PROJECTIONS)
    model.fit(x, labels, epochs=2, verbose=0, callbacks=[callback, Peek()])
    assert seen == [("training", 1, 1), ("training", 2, 2)]
    assert runformat.Run.open(tmp_path / "runs", "live").manifest.status == "complete"


def _torch_reference(torch, lstm, sequence):
    """h and c at every step of one sequence from nn.LSTM itself (batch_first input)."""
    hs, cs = [], []
    state = None
    with torch.no_grad():
        for t in range(len(sequence)):
            step = torch.from_numpy(sequence[t:t + 1][None])
            step = step if lstm.batch_first else step.transpose(0, 1)
            output, state = lstm(step, state)
            hs.append(state[0][-1, 0].numpy().copy())
            cs.append(state[1][-1, 0].numpy().copy())
    return np.array(hs), np.array(cs)


@pytest.mark.parametrize("batch_first", [True, False], ids=["batch-first", "steps-first"])
def test_rec005_torch_recorder_in_the_users_loop(tmp_path, batch_first):
    torch = pytest.importorskip("torch")
    from pipeline.record import TorchRecorder
    torch.manual_seed(0)
    x, lengths, labels = _signs(n=16)

    class Classifier(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = torch.nn.LSTM(3, 5, 2, batch_first=batch_first)
            self.fc = torch.nn.Linear(5, 2)

        def forward(self, inputs):
            output, _ = self.encoder(inputs)
            return self.fc(output[:, -1] if batch_first else output[-1])

    model = Classifier()
    given = torch.from_numpy(x if batch_first else x.transpose(1, 0, 2).copy())
    recorder = TorchRecorder(tmp_path / "runs" / "torch", model, inputs=given, labels=labels, lengths=lengths,
                             head=model.fc, project=NO_PROJECTIONS)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(3):
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(given), torch.from_numpy(labels))
        loss.backward()
        optimiser.step()
        recorder.epoch(loss=loss.item())
    path = recorder.finish()
    run = runformat.Run(path)
    history = run.history()
    assert history["epoch"].tolist() == [1, 2, 3] and (history["grad_norm"] > 0).all()
    assert recorder.error <= 1e-5
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    h, c = run.step_matrix(1, "h"), run.step_matrix(1, "c")
    for start, length, sequence in zip(starts, lengths, x):
        ref_h, ref_c = _torch_reference(torch, model.encoder, sequence[:length])
        np.testing.assert_allclose(h[start:start + length], ref_h, atol=1e-5)
        np.testing.assert_allclose(c[start:start + length], ref_c, atol=1e-5)
    assert run.manifest.origin == "recorded" and "prediction" in run.examples()


def test_rec006_record_torch_a_trained_module_and_refusals(tmp_path):
    torch = pytest.importorskip("torch")
    from pipeline.record import record_torch
    torch.manual_seed(1)
    x, lengths, _ = _signs(n=10)
    lstm = torch.nn.LSTM(3, 4, batch_first=True)
    run = runformat.Run(record_torch(tmp_path / "runs" / "plain", lstm, inputs=x, lengths=lengths,
                                     project=NO_PROJECTIONS))
    assert run.kind == "language_model" and run.step_matrix(0, "forget_gate").shape == (int(lengths.sum()), 4)
    with pytest.raises(DataError, match="bidirectional"):
        record_torch(tmp_path / "runs" / "bi", torch.nn.LSTM(3, 4, bidirectional=True, batch_first=True), inputs=x)
    with pytest.raises(DataError, match=r"expected \(examples, steps, 3\)"):
        record_torch(tmp_path / "runs" / "wide", lstm, inputs=np.zeros((2, 5, 4), np.float32))
    two = torch.nn.Module()
    two.a, two.b = torch.nn.LSTM(3, 2), torch.nn.LSTM(2, 2)
    with pytest.raises(DataError, match="holds 2 nn.LSTM modules"):
        record_torch(tmp_path / "runs" / "two", two, inputs=x)
    assert not (tmp_path / "runs" / "bi").exists() and not (tmp_path / "runs" / "two").exists()
