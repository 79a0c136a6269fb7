"""Phrase patterns (LSTMVis Figure 9, issue 12 part 4): phrases as runs of one annotation value,
their on/off cell patterns, the k-NN separation score, and the view on the parenthesis run."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.analysis import patterns as engine


def test_pat001_phrases_are_runs_of_one_value_split_at_documents():
    values = np.array([0, 0, 1, 1, 1, 0, 2, 2, 2, 2])
    found = engine.phrases(values, document_starts=np.array([0, 8]), min_length=2)
    assert found.starts.tolist() == [0, 2, 6, 8] and found.ends.tolist() == [2, 5, 8, 10]
    assert found.values.tolist() == [0, 1, 2, 2] and found.n_found == 4
    sampled = engine.phrases(np.repeat(np.arange(100) % 2, 3), np.array([0]), limit=10)
    assert len(sampled.starts) == 10 and sampled.n_found == 100 and sampled.starts[-1] == 297


def test_pat002_a_cell_is_on_only_when_it_stays_above_the_threshold_throughout():
    states = np.array([[0.9, 0.1], [0.8, 0.9], [0.2, 0.9], [0.9, 0.9]], np.float32)
    found = engine.Phrases(np.array([0, 1]), np.array([2, 4]), np.array([0, 1]), 2)
    assert engine.on_patterns(states, found, 0.5).tolist() == [[True, False], [False, True]]


def test_pat003_knn_separates_patterns_that_follow_the_class_and_not_random_ones():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 60)
    prototypes = rng.random((3, 40)) > 0.5
    flips = rng.random((180, 40)) < 0.1
    patterns = prototypes[labels] ^ flips
    assert engine.knn_accuracy(patterns, labels) > 0.95
    assert engine.commonest_share(labels) == pytest.approx(1 / 3)
    noise = rng.random((180, 40)) > 0.5
    assert engine.knn_accuracy(noise, labels) < 0.6
    coords = engine.pca_2d(patterns)
    assert coords.shape == (180, 2)
    centres = np.array([coords[labels == c].mean(axis=0) for c in range(3)])
    assert np.linalg.norm(centres[0] - centres[1]) > 1.0          # the classes apart in the picture


@pytest.fixture(scope="module")
def run_id(text_runs_dir, text_run) -> str:
    from dashboard import data
    data.configure(text_runs_dir)
    return text_run.run_id


def test_pat010_on_the_parenthesis_language_depth_is_separated_above_chance(run_id, text_run):
    from dashboard.views import patterns
    assert "depth" in patterns.annotation_choices(text_run)
    run = patterns.text.text_run(run_id)
    found, on, labels = patterns.phrase_patterns(run, "depth", 0, "h", 0.3, 2)
    score, chance = engine.knn_accuracy(on, labels), engine.commonest_share(labels)
    assert score > chance + 0.15, (score, chance)
    figure = patterns.figure(run_id, "depth", "last", "h", 0.3, 2)
    names = {trace.name for trace in figure.data}
    assert {"1", "2", "3", "4"} <= names
    assert f"accuracy of depth from the pattern {score:.2f} vs {chance:.2f}" in figure.layout.title.text
    point = figure.data[0]
    start, last = point.customdata[0]
    assert len(set(text_run.steps("text", columns=["depth"])["depth"].to_numpy()[start:last + 1])) == 1


def test_pat011_a_click_opens_the_phrase_in_the_text_heatmap_and_bad_values_say_why(run_id):
    from dashboard.views import patterns
    tab, position, marked = patterns.opened_phrase(run_id, {"points": [{"customdata": [120, 125]}]})
    assert tab == "text" and position <= 120 and marked == [120, 126]
    with pytest.raises(patterns.runformat.RunError):
        patterns.opened_phrase(run_id, {"points": [{"customdata": [10 ** 9, 10 ** 9 + 2]}]})
    message = patterns.figure(run_id, "depth", "last", "h", 0.999, 2)
    assert "no cell stays above 0.999" in message.layout.annotations[0].text
