"""The language model writes text (issue 12, part 2): the NumPy step-by-step generation equals the
Keras model's next-character probabilities, is deterministic for a seed, and refuses bad seeds."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline import runformat
from pipeline.analysis import generate
from pipeline.analysis.lstm import NetworkWeights


@pytest.fixture(scope="module")
def weights(text_run) -> NetworkWeights:
    return NetworkWeights.load(text_run.path / runformat.WEIGHTS_FILE)


def test_gen001_written_text_has_the_keras_models_probabilities(text_run, weights):
    from pipeline.kinds import language_model
    from pipeline.models.char_lm import zero_states
    from pipeline.models.keras_weights import load_keras_model
    vocabulary = text_run.classes
    written = generate.write(weights, vocabulary, "(((", 40, temperature=1.0, random_seed=3)
    assert len(written.tokens) == 43 and written.n_seed == 3 and written.text.startswith("(((")
    model = load_keras_model(text_run.path / language_model.MODEL_FILE)
    ids = np.array([[vocabulary.index(ch) for ch in written.tokens]], np.int32)
    probabilities, *states = (np.asarray(t) for t in model.predict_on_batch([ids, *zero_states(model, 1)]))
    # the probability the model gave each written token, at the step before it
    keras_chosen = probabilities[0, np.arange(2, 42), ids[0, 3:]]
    np.testing.assert_allclose(written.chosen_probability, keras_chosen, atol=1e-5)
    np.testing.assert_allclose(written.states[(0, "h")][-1], states[0][0], atol=1e-5)
    np.testing.assert_allclose(written.states[(0, "c")][-1], states[1][0], atol=1e-5)
    gate = written.states[(0, "forget_gate")]
    assert gate.shape == (43, weights.layers[0].units) and gate.min() >= 0 and gate.max() <= 1


def test_gen002_the_same_seed_writes_the_same_text_and_temperature_zero_is_greedy(text_run, weights):
    vocabulary = text_run.classes
    first = generate.write(weights, vocabulary, "((", 60, temperature=1.0, random_seed=7)
    again = generate.write(weights, vocabulary, "((", 60, temperature=1.0, random_seed=7)
    other = generate.write(weights, vocabulary, "((", 60, temperature=1.0, random_seed=8)
    assert first.text == again.text and first.text != other.text
    greedy = generate.write(weights, vocabulary, "((", 20, temperature=0.0, random_seed=1)
    assert greedy.text == generate.write(weights, vocabulary, "((", 20, temperature=0.0, random_seed=99).text
    assert np.all(greedy.chosen_probability >= 1.0 / len(vocabulary))   # the argmax is at least uniform


@pytest.mark.parametrize("seed, length, temperature, message", [
    ("", 10, 1.0, "type a seed"),
    ("(\u00e9", 10, 1.0, "lacks: '\u00e9'"),
    ("(", -1, 1.0, "length must be between"),
    ("(", 10, -0.5, "temperature must be between"),
])
def test_gen003_bad_requests_are_refused_with_a_reason(text_run, weights, seed, length, temperature, message):
    with pytest.raises(ValueError, match=message):
        generate.write(weights, text_run.classes, seed, length, temperature)


def test_gen004_top_cells_rank_by_spread_over_the_written_part():
    states = np.zeros((10, 3), np.float32)
    states[:4, 0] = [5, -5, 5, -5]          # varies in the seed only
    states[4:, 2] = np.linspace(-1, 1, 6)
    states[4:, 1] = np.linspace(0, 0.1, 6)
    assert [cell for cell, _ in generate.top_cells(states, first=4)] == [2, 1, 0]


# -- the "Model writes" view ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def run_id(text_runs_dir, text_run) -> str:
    from dashboard import data
    data.configure(text_runs_dir)
    return text_run.run_id


def shown_text(body) -> str:
    import html
    import re
    return html.unescape(re.sub(r"<[^>]+>", "", body.children))


def test_gen010_the_view_writes_after_the_seed_colours_by_the_cell_and_ranks_cells(run_id, text_run):
    from dashboard.views import writer
    body, legend, status, ranking = writer.render(run_id, "((", 50, 0.8, 4, "last", "c", 1)
    text = shown_text(body)
    expected = generate.write(NetworkWeights.load(text_run.path / runformat.WEIGHTS_FILE), text_run.classes,
                              "((", 50, 0.8, 4).text
    assert text == expected and len(text) == 52
    assert "outline:2px solid" in body.children                 # the seed is outlined
    assert "50 characters written after a 2-character seed" in status
    cells = [button.id["cell"] for button in ranking[1:]]
    assert len(cells) == 10 and len(set(cells)) == 10
    other = writer.render(run_id, "((", 50, 0.8, 4, "last", "c", cells[0])[0]
    assert shown_text(other) == text and other.children != body.children     # same text, other colours


@pytest.mark.parametrize("seed, cell, message", [("(x", 0, "lacks: 'x'"), ("((", 999, "cell 999 does not exist")])
def test_gen011_the_view_says_what_is_wrong_with_a_request(run_id, seed, cell, message):
    from dashboard.views import writer
    body, legend, status, ranking = writer.render(run_id, seed, 20, 1.0, 0, "last", "h", cell)
    assert message in body.children and body.className == "message" and ranking == []


def test_gen012_the_view_is_offered_for_language_models_with_weights_only(run_id, text_run, synthetic_run):
    import dataclasses

    from dashboard.views import writer
    assert writer.applies_to(text_run.manifest) and not writer.applies_to(synthetic_run.manifest)
    files = {name: info for name, info in text_run.manifest.files.items() if name != runformat.WEIGHTS_FILE}
    assert not writer.applies_to(dataclasses.replace(text_run.manifest, files=files))   # an LSTMVis import
    picks = writer.seed_options(run_id)
    assert picks and all(0 < len(pick["value"]) <= writer.PICK_CHARS for pick in picks)
