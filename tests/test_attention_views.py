"""The Attention view and the inspector's attention-matrix panel: figures as pure functions, and
the callbacks as functions on the small attention runs (tests/attention_runs.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from attention_runs import ATTENTION_RUN, MATRIX_LENGTHS, MATRIX_RUN, T_OUT
from dashboard import data
from dashboard.app import create_app
from dashboard.figures import attention as figures
from dashboard.views import VIEWS, applies, attention, attention_matrix, why
from factories import callbacks_of, component_ids


@pytest.fixture(scope="module")
def runs(attention_runs_dir):
    data.configure(attention_runs_dir)
    return attention_runs_dir


@pytest.fixture(scope="module")
def run(runs):
    return data.get_run(ATTENTION_RUN)


def message(figure) -> str:
    annotations = figure.layout.annotations
    return annotations[0].text if annotations and not figure.data else ""


def toy():
    """Two examples of lengths 4 and 2: weights peaking at the end and at the start."""
    attention_rows = pd.DataFrame({"example_id": [0, 0, 0, 0, 1, 1], "t": [0, 1, 2, 3, 0, 1],
                                   "attention": [0.1, 0.1, 0.2, 0.6, 0.75, 0.25]})
    examples = pd.DataFrame({"example_id": [0, 1], "length": [4, 2], "label": ["a", "b"], "correct": [True, False]})
    return attention_rows, examples


def test_attv001_aligned_times_and_weights_relative_to_an_even_share():
    rows, examples = toy()
    lengths = examples.set_index("example_id")["length"]
    end = figures.aligned(rows, lengths, "end")
    assert end["x"].tolist() == [-3, -2, -1, 0, -1, 0]
    np.testing.assert_allclose(end["relative"], [0.4, 0.4, 0.8, 2.4, 1.5, 0.5])
    assert figures.aligned(rows, lengths, "share")["x"].tolist() == [0, 5, 10, 15, 0, 10]
    with pytest.raises(ValueError):
        figures.aligned(rows, lengths, "middle")


def test_attv002_class_means_per_aligned_step():
    rows, examples = toy()
    means = figures.class_means(rows, examples, "start")
    a = means[means["label"] == "a"]
    np.testing.assert_allclose(a["mean"], [0.4, 0.4, 0.8, 2.4])
    assert a["n"].tolist() == [1, 1, 1, 1]
    figure = figures.class_means_figure(means, ["b", "a"], "start")
    assert [trace.name for trace in figure.data] == ["b", "a"]
    assert message(figures.class_means_figure(means, ["zzz"], "start")).startswith("No attention weights")


def test_attv003_heatmap_rows_by_class_mistakes_marked_and_clickable():
    rows, examples = toy()
    figure = figures.examples_heatmap_figure(rows, examples, ["a", "b"], "start", selected=1)
    heatmap, marks = figure.data
    assert heatmap.z.shape == (2, 4) and np.isnan(heatmap.z[1, 2])
    assert heatmap.customdata[1, 0] == 1 and list(marks.customdata) == [1]
    assert list(marks.y) == ["b · 1"]
    assert figure.layout.shapes[0].y0 == 0.5                    # the selected example's row
    order = figures.heatmap_rows(examples.assign(label=["b", "b"]), ["a", "b"])
    assert order["example_id"].tolist() == [1, 0]                # mistakes first within a class


def test_attv004_example_figure_marks_a_mistake_and_the_peak():
    t = np.arange(4)
    figure = figures.example_attention_figure(t, np.array([0.1, 0.1, 0.2, 0.6]), np.random.default_rng(0).normal(
        size=(4, 3)), ["x", "y", "z"], np.linspace(0.2, 0.4, 4), np.linspace(0.3, 0.6, 4), "a", "b", 7)
    assert "misclassified: true a, predicted b" in figure.layout.title.text
    assert "peak weight at step 3 of 4" in figure.layout.title.text
    np.testing.assert_allclose(figure.data[0].y, [0.4, 0.4, 0.8, 2.4])
    assert [trace.type for trace in figure.data] == ["bar", "heatmap", "scatter", "scatter"]


def test_attv005_matrix_figure_rows_are_output_steps():
    matrix = pd.DataFrame({"t_out": [0, 0, 1, 1, 2, 2], "t_in": [0, 1, 0, 1, 0, 1],
                           "attention": [1.0, 0.0, 0.5, 0.5, 0.0, 1.0]})
    figure = figures.attention_matrix_figure(matrix, 3)
    assert figure.data[0].z.shape == (3, 2)
    np.testing.assert_allclose(figure.data[0].z[2], [0, 1])
    assert figure.layout.yaxis.title.text == "output step"


def test_attv101_the_view_applies_to_attention_runs_only(runs, synthetic_run, run):
    assert applies(attention, run.manifest)
    assert not applies(attention, synthetic_run.manifest)
    assert not applies(attention, data.get_run(MATRIX_RUN).manifest)
    assert attention in VIEWS


def test_attv102_callbacks_listen_to_components_that_exist(runs):
    app = create_app(runs)
    ids = component_ids(app.layout())
    found = list(callbacks_of(app, [attention]))
    assert len(found) >= 3
    for outputs, callback in found:
        wanted = outputs + [item["id"] for item in callback["inputs"] + callback["state"]]
        assert set(wanted) <= ids, set(wanted) - ids
    assert {attention_matrix.BOX, attention_matrix.GRAPH} <= ids


def test_attv103_view_callbacks_draw_the_run(run):
    examples = data.examples(run)
    wrong = examples[~examples["correct"]]
    example = int(wrong["example_id"].iat[0])
    figure = attention.example_view(ATTENTION_RUN, example)
    assert f"Example {example}: " in figure.layout.title.text and "misclassified: true" in figure.layout.title.text
    bars = figure.data[0]
    stored = attention.attention_table(run)
    weights = stored[stored["example_id"] == example]["attention"].to_numpy()
    np.testing.assert_allclose(bars.customdata, weights, rtol=1e-6)
    assert message(attention.example_view(ATTENTION_RUN, None)) == attention.NOTHING_SELECTED

    chosen = list(run.classes[:3])
    classes = attention.classes_view(ATTENTION_RUN, chosen, None, None, "all", None, "share")
    assert [trace.name for trace in classes.data] == chosen
    selected_classes = attention.classes_view(ATTENTION_RUN, [], None, None, "all", example, "end")
    row = data.example_row(run, example)
    assert [trace.name for trace in selected_classes.data] == [row["label"], row["prediction"]]

    heatmap = attention.heatmap_view(ATTENTION_RUN, [], ["test"], None, "misclassified", example, "end")
    test_wrong = examples[(examples["split"] == "test") & ~examples["correct"]]
    assert heatmap.data[0].z.shape[0] == len(test_wrong)
    assert set(heatmap.data[1].customdata) == set(test_wrong["example_id"])
    refused = attention.heatmap_view(ATTENTION_RUN, [], None, None, "all", None, "sideways")
    assert "'sideways' is not one of the choices" in message(refused)


def test_attv104_the_view_says_what_a_run_without_attention_lacks(synthetic_runs_dir):
    previous = data.runs_dir()
    data.configure(synthetic_runs_dir)
    try:
        figure = attention.heatmap_view("synthetic", [], None, None, "all", None, "end")
        assert "stores no attention weights per step" in message(figure)
    finally:
        data.configure(previous)


def test_attv105_inspector_matrix_panel(runs):
    assert attention_matrix.box_style(MATRIX_RUN) is None
    assert attention_matrix.box_style(ATTENTION_RUN) == attention_matrix.HIDDEN
    figure = attention_matrix.matrix_view(MATRIX_RUN, 2)
    z = figure.data[0].z
    assert z.shape == (T_OUT, MATRIX_LENGTHS[2])
    np.testing.assert_allclose(z.sum(axis=1), 1, atol=1e-5)
    assert int(np.argmax(z[-1])) == MATRIX_LENGTHS[2] - 1
    assert "has no attention matrices" in message(attention_matrix.matrix_view(ATTENTION_RUN, 0))


def test_attv106_why_panel_says_attribution_is_not_for_attention_models(run):
    assert "attribution is not computed for attention models" in why.no_attribution_message(run)
    assert why.no_whatif_message(run) is None
    old = why.original_answer(run, 0)
    stored = attention.attention_table(run)
    np.testing.assert_allclose(old["attention"], stored[stored["example_id"] == 0]["attention"], atol=1e-6)


def test_attv107_every_callback_answers_for_the_attention_runs(runs, client_for):
    from test_callbacks_imports import FAILURE_WORDS, answer, answers_for, tabs, texts_of
    client = client_for(runs)
    for run_id, attention_tab in ((ATTENTION_RUN, True), (MATRIX_RUN, False)):
        answers = answers_for(client, run_id, selected=2)
        assert tabs(answers)["attention"] is attention_tab
        shown = texts_of(answers)
        assert not [text for text in shown if any(word in text for word in FAILURE_WORDS)], (run_id, shown)
    matrix = answer(answers, attention_matrix.GRAPH)["figure"]
    assert matrix["data"][0]["type"] == "heatmap"
    assert answer(answers, attention_matrix.BOX)["style"] is None
