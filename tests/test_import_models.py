"""Importing saved models: a Keras .keras file and a PyTorch nn.LSTM state_dict, plus inputs."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from pipeline import runformat
from pipeline.cli import main
from pipeline.datasets import DataError
from pipeline.importers.keras_model import read_keras
from pipeline.kinds.imported import write_run
from pipeline.models.classifier import build_classifier
from pipeline.models.keras_weights import save_model

LENGTHS = np.array([6, 2, 9, 4, 9])


def sequences(rng, channels, lengths=LENGTHS):
    return rng.normal(1.0, 2.0, (int(lengths.sum()), channels)).astype(np.float32)


def left_padded(flat, lengths, T):
    out = np.zeros((len(lengths), T, flat.shape[1]), flat.dtype)
    start = 0
    for i, length in enumerate(lengths):
        out[i, T - length:] = flat[start:start + length]
        start += length
    return out


def keras_step_outputs(model, layer_names, batch):
    probe = keras.Model(model.inputs, [model.get_layer(n).output for n in layer_names])
    return probe.predict(batch, verbose=0)


def test_imm001_keras_classifier_every_layer_matches_keras(tmp_path):
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    flat = sequences(rng, 4)
    mean, std = flat.mean(axis=0), flat.std(axis=0)
    model = build_classifier(10, 4, 3, [8, 5], mean, std)
    save_model(model, tmp_path / "model.keras")
    np.savez(tmp_path / "inputs.npz", inputs=flat, lengths=LENGTHS, labels=np.array([0, 1, 2, 1, 0]),
             classes=np.array(["a", "b", "c"]))

    imported = read_keras(tmp_path / "model.keras", tmp_path / "inputs.npz")
    assert imported.notes["model"]["padding"] == "left" and imported.notes["model"]["n_steps"] == 10
    run = runformat.Run(write_run(imported, tmp_path / "runs", run_id="k")[0])
    assert run.kind == "classification" and run.classes == ["a", "b", "c"]
    assert [layer.units for layer in run.layers] == [8, 5]
    assert run.manifest["layers"][0]["tensors"] == list(runformat.TENSOR_KINDS)

    batch = left_padded(flat, LENGTHS, 10)
    h0, h1 = keras_step_outputs(model, ["lstm_0", "lstm_1"], batch)
    real = np.concatenate([np.arange(10 - n, 10) + 10 * i for i, n in enumerate(LENGTHS)])
    np.testing.assert_allclose(run.step_matrix(0, "h"), h0.reshape(-1, 8)[real], atol=1e-5)
    np.testing.assert_allclose(run.step_matrix(1, "h"), h1.reshape(-1, 5)[real], atol=1e-5)
    # c and the gates obey the LSTM equations with the h Keras computed.
    i, f, g, o = (run.step_matrix(0, k) for k in ("input_gate", "forget_gate", "candidate", "output_gate"))
    c = run.step_matrix(0, "c")
    np.testing.assert_allclose(run.step_matrix(0, "h"), o * np.tanh(c), atol=1e-6)
    first = run.examples()["row_start"].to_numpy()
    later = np.setdiff1d(np.arange(len(c)), first)
    np.testing.assert_allclose(c[later], f[later] * c[later - 1] + i[later] * g[later], atol=1e-5)
    # The per-example prediction is the model's own.
    probabilities = model.predict(batch, verbose=0)
    assert run.examples()["prediction"].tolist() == probabilities.argmax(axis=1).tolist()
    np.testing.assert_allclose(run.examples()["confidence"], probabilities.max(axis=1), atol=1e-5)


def test_imm002_keras_token_model_runs_each_sequence_from_zero(tmp_path):
    keras.utils.set_random_seed(1)
    chars = keras.Input(shape=(None,), dtype="int32")
    x = keras.layers.Embedding(7, 4)(chars)
    x = keras.layers.LSTM(6, return_sequences=True, name="lstm")(x)
    x = keras.layers.Dropout(0.2)(x)
    model = keras.Model(chars, keras.layers.Dense(7, activation="softmax")(x))
    model.save(tmp_path / "lm.keras")
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 7, int(LENGTHS.sum()))
    alphabet = np.array(list("abcdefg"))
    np.savez(tmp_path / "inputs.npz", inputs=ids, lengths=LENGTHS, tokens=alphabet[ids],
             vocabulary=alphabet)

    run = runformat.Run(write_run(read_keras(tmp_path / "lm.keras", tmp_path / "inputs.npz"), tmp_path / "runs",
                              run_id="lm")[0])
    assert run.kind == "language_model" and run.manifest["imported"]["model"]["padding"] == "none"
    start = 0
    for length in LENGTHS:                                # each sequence alone, from a zero state
        h = keras_step_outputs(model, ["lstm"], ids[None, start:start + length])
        np.testing.assert_allclose(run.step_matrix(0, "h")[start:start + length], h[0], atol=1e-5)
        start += length
    predictions = run.steps("predictions")
    assert predictions["target"].tolist()[:6] == ids[1:6].tolist() + [-1]
    assert 0 <= run.manifest["metrics"]["test"]["accuracy"] <= 1


def test_imm003_keras_refuses_layers_it_cannot_recompute(tmp_path):
    inputs = keras.Input(shape=(5, 3))
    x = keras.layers.Conv1D(4, 2, padding="same", name="smoothing")(inputs)
    x = keras.layers.LSTM(4)(x)
    keras.Model(inputs, x).save(tmp_path / "conv.keras")
    np.savez(tmp_path / "inputs.npz", inputs=np.zeros((2, 5, 3), np.float32))
    with pytest.raises(DataError, match="layer 'smoothing' \\(Conv1D\\) is not supported"):
        read_keras(tmp_path / "conv.keras", tmp_path / "inputs.npz")
    with pytest.raises(DataError, match="inputs has 3 channels but the model reads 4"):
        model = build_classifier(5, 4, 2, [3])
        save_model(model, tmp_path / "four.keras")
        read_keras(tmp_path / "four.keras", tmp_path / "inputs.npz")


# ---------------------------------------------------------------------------------------------
# PyTorch (optional): skipped when it is not installed

def torch_reference(torch, lstm, x):
    """h, c and the four gates of every layer, step by step, straight from PyTorch's equations."""
    out, layer_input = [], torch.from_numpy(x)
    for k in range(lstm.num_layers):
        w_ih, w_hh = getattr(lstm, f"weight_ih_l{k}"), getattr(lstm, f"weight_hh_l{k}")
        b = getattr(lstm, f"bias_ih_l{k}") + getattr(lstm, f"bias_hh_l{k}")
        hidden = lstm.hidden_size
        h = torch.zeros(hidden)
        c = torch.zeros(hidden)
        rows = {kind: [] for kind in ("h", "c", "input_gate", "forget_gate", "candidate", "output_gate")}
        for x_t in layer_input:
            z = w_ih @ x_t + w_hh @ h + b
            i, f, g, o = (z[j * hidden:(j + 1) * hidden] for j in range(4))
            i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
            c = f * c + i * g
            h = o * torch.tanh(c)
            for kind, value in zip(rows, (h, c, i, f, g, o)):
                rows[kind].append(value)
        out.append({kind: torch.stack(values).detach().numpy() for kind, values in rows.items()})
        layer_input = torch.stack(rows["h"])
    return out


def test_imm004_torch_state_dict_gates_match_pytorch(tmp_path):
    torch = pytest.importorskip("torch")
    from pipeline.importers.torch_model import read_torch

    torch.manual_seed(0)

    class Tagger(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = torch.nn.LSTM(5, 7, 2, batch_first=True)
            self.fc = torch.nn.Linear(7, 3)

    model = Tagger().eval()
    torch.save(model.state_dict(), tmp_path / "tagger.pt")
    rng = np.random.default_rng(2)
    flat = sequences(rng, 5)
    np.savez(tmp_path / "inputs.npz", inputs=flat, lengths=LENGTHS, labels=np.array([0, 2, 1, 1, 0]))

    imported = read_torch(tmp_path / "tagger.pt", tmp_path / "inputs.npz", 5, 7, 2)
    assert imported.options["prefix"] == "encoder." and imported.options["head"] == "fc."
    assert imported.notes["model"]["max_abs_difference"] <= 1e-5
    run = runformat.Run(write_run(imported, tmp_path / "runs", run_id="t")[0])
    start = 0
    with torch.no_grad():
        for length in LENGTHS:
            reference = torch_reference(torch, model.encoder, flat[start:start + length])
            for layer, tensors in enumerate(reference):
                for kind, values in tensors.items():
                    np.testing.assert_allclose(run.step_matrix(layer, kind)[start:start + length], values,
                                               atol=1e-5, err_msg=f"layer {layer} {kind}")
            start += length
        # The per-example prediction: the head on PyTorch's own output at each sequence's last step.
        expected = []
        for sequence in np.split(flat, np.cumsum(LENGTHS)[:-1]):
            output, _ = model.encoder(torch.from_numpy(sequence[None]))
            expected.append(torch.softmax(model.fc(output[0, -1]), dim=0).numpy())
    expected = np.array(expected)
    assert run.examples()["prediction"].tolist() == expected.argmax(axis=1).tolist()
    np.testing.assert_allclose(run.examples()["confidence"], expected.max(axis=1), atol=1e-5)


def test_imm005_torch_refuses_pickled_modules_and_wrong_shapes(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    from pipeline.importers.torch_model import read_torch

    np.savez(tmp_path / "inputs.npz", inputs=np.zeros((4, 3), np.float32))
    torch.save(torch.nn.LSTM(3, 4), tmp_path / "module.pt")          # a pickled module, not weights
    with pytest.raises(DataError, match="weights_only=True"):
        read_torch(tmp_path / "module.pt", tmp_path / "inputs.npz", 3, 4)
    torch.save(torch.nn.LSTM(3, 4).state_dict(), tmp_path / "lstm.pt")
    with pytest.raises(DataError, match="do not fit nn.LSTM\\(input_size=3, hidden_size=5"):
        read_torch(tmp_path / "lstm.pt", tmp_path / "inputs.npz", 3, 5)
    assert main(["import", "torch", str(tmp_path / "lstm.pt"), "--inputs", str(tmp_path / "inputs.npz"),
                 "--input-size", "3", "--hidden", "4", "--runs", str(tmp_path / "runs")]) == 0
    assert "run lstm (language_model, imported)" in capsys.readouterr().out
