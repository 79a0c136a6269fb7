"""The confusion view: the matrix and its class order as pure functions, its callbacks on the small
synthetic run (tests/conftest.py)."""

from __future__ import annotations

import dataclasses

import dash
import numpy as np
import pandas as pd
import pytest

from dashboard import data, state
from dashboard.app import create_app
from dashboard.figures.confusion import (accuracy_figure, confusion_counts, confusion_figure,
                                         per_class_accuracy, similarity_order)
from dashboard.views import confusion
from factories import callbacks_of, component_ids, figure_of


@pytest.fixture(scope="module")
def run(synthetic_runs_dir):
    data.configure(synthetic_runs_dir)
    return data.get_run("synthetic")


def test_cnf001_counts_are_true_by_predicted():
    matrix = confusion_counts(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 0, 0]), 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [2, 0, 1]]


def test_cnf002_classes_confused_with_each_other_end_up_side_by_side():
    rng = np.random.default_rng(0)
    n = 12
    matrix = np.diag(rng.integers(20, 30, n))
    pairs = [(0, 7), (3, 10), (5, 1)]
    for a, b in pairs:
        matrix[a, b] = matrix[b, a] = 6
    order = similarity_order(matrix).tolist()
    assert sorted(order) == list(range(n))
    for a, b in pairs:
        assert abs(order.index(a) - order.index(b)) == 1, (a, b, order)
    assert similarity_order(matrix).tolist() == order                       # deterministic


def test_cnf003_a_94_class_matrix_names_every_class_and_the_hover_names_both_and_the_count():
    n = 94
    classes = [f"sign{i:02d}" for i in range(n)]
    matrix = np.diag(np.full(n, 5))
    matrix[3, 40] = 2
    order = similarity_order(matrix)
    figure = confusion_figure(matrix, classes, order, marked=("sign03", "sign40"))
    correct, mistakes = figure.data
    names = [classes[i] for i in order]
    assert list(mistakes.x) == names and list(mistakes.y) == names
    assert figure.layout.xaxis.dtick == 1 and figure.layout.yaxis.dtick == 1        # every class labelled
    assert figure.layout.height >= 900
    row, column = names.index("sign03"), names.index("sign40")
    z = np.asarray(mistakes.z, dtype=float)
    assert np.isfinite(z).sum() == 1 and z[row, column] == pytest.approx(2 / 7)
    assert np.isnan(np.asarray(correct.z, dtype=float)[row, column])            # the diagonal apart
    assert mistakes.text[row][column].startswith("2 examples")
    assert "true %{y}" in mistakes.hovertemplate and "predicted %{x}" in mistakes.hovertemplate
    (shape,) = figure.layout.shapes
    assert (shape.x0 + 0.5, shape.y0 + 0.5) == (column, row)


def test_cnf004_per_class_accuracy_per_split_counts_examples():
    frame = pd.DataFrame({"label": ["a", "a", "b", "b", "a"], "split": ["test", "test", "test", "train", "train"],
                          "correct": [True, False, True, True, True]})
    table = per_class_accuracy(frame, ["a", "b", "c"], ["train", "test"]).set_index(["split", "class"])
    assert table.loc[("test", "a"), "accuracy"] == 0.5
    assert table.loc[("test", "b"), "examples"] == 1
    assert np.isnan(table.loc[("test", "c"), "accuracy"])
    figure = accuracy_figure(table.reset_index(), ["b", "a", "c"])
    assert [trace.name for trace in figure.data] == ["train", "test"]
    assert list(figure.data[1].x) == ["b", "a", "c"] and figure.data[1].y[1] == 0.5


def test_cnf005_view_matrix_of_a_split_matches_the_examples(run):
    matrix, accuracy = map(figure_of, confusion.confusion_view("synthetic", None, "test"))
    frame = data.examples(run)
    test = frame[frame["split"] == "test"]
    counts = np.nan_to_num(np.asarray(matrix.data[0].z, float)) + np.nan_to_num(np.asarray(matrix.data[1].z, float))
    assert counts.shape == (len(run.classes),) * 2
    wrong = int((~test["correct"]).sum())
    assert f"{wrong:,} of {len(test):,}" in matrix.layout.title.text
    assert {trace.name for trace in accuracy.data} == set(state.SPLITS)
    for trace in accuracy.data:
        part = frame[frame["split"] == trace.name]
        expected = part.groupby("label")["correct"].mean()
        got = dict(zip(trace.x, trace.y))
        assert all(got[name] == pytest.approx(value) for name, value in expected.items())
    everything = figure_of(confusion.confusion_view("synthetic", None, "all")[0])
    assert f"of {len(frame):,} examples" in everything.layout.title.text
    refused, _ = confusion.confusion_view("synthetic", None, "holdout")
    assert "not a split" in refused.layout.annotations[0].text


def test_cnf006_a_click_on_a_cell_sets_the_filter_bar_and_lists_the_cells_examples(run):
    frame = data.examples(run)
    wrong = frame[(frame["split"] == "test") & ~frame["correct"]].iloc[0]
    true, predicted = wrong["label"], wrong["prediction"]
    click = {"points": [{"x": predicted, "y": true}]}
    cell, classes, splits, correctness = confusion.cell_filters("synthetic", click, "test")
    assert (classes, splits, correctness) == ([true], ["test"], "misclassified")
    assert cell == {"true": true, "predicted": predicted, "split": "test"}
    shown = data.filtered_examples(run, classes, splits, None, correctness)
    expected = frame[(frame["split"] == "test") & (frame["label"] == true) & (frame["prediction"] == predicted)]
    assert set(expected["example_id"]) <= set(shown["example_id"])
    listing = confusion.cell_examples("synthetic", None, cell)
    buttons = listing[1].children
    assert sorted(b.id["index"] for b in buttons) == sorted(expected["example_id"].tolist())
    assert all(b.id["type"] == "example-link" for b in buttons)              # the inspector's links select
    diagonal = confusion.cell_filters("synthetic", {"points": [{"x": true, "y": true}]}, "all")
    assert diagonal[1:] == [[true], list(state.SPLITS), "correct"]
    for forged in ({"points": [{"x": "no such sign", "y": true}]}, {"points": []}, None):
        assert confusion.cell_filters("synthetic", forged, "test") == [dash.no_update] * 4


def test_cnf007_the_view_needs_a_classifier_with_predictions_and_hidden_it_does_no_work(run, synthetic_runs_dir):
    assert confusion.applies_to(run.manifest)
    text = dataclasses.replace(run.manifest, kind="language_model")
    assert not confusion.applies_to(text)
    bare = dataclasses.replace(run.manifest, stages={}, metrics={})
    assert not confusion.applies_to(bare)
    app = create_app(synthetic_runs_dir)
    ids = component_ids(app.layout())
    found = [(outputs, cb) for outputs, cb in callbacks_of(app, [confusion]) if outputs[0].startswith("confusion-")]
    assert len(found) == 3                                       # the URL sync writes its split too
    for outputs, callback in found:
        wanted = outputs + [item["id"] for item in callback["inputs"] + callback["state"]]
        assert set(wanted) <= ids, set(wanted) - ids
    draw = next(cb for outputs, cb in found if confusion.MATRIX in outputs)
    names = [item["id"] for item in draw["inputs"]]
    values = {state.RUN: "synthetic", state.TABS: "paths"}
    assert draw["callback"].__wrapped__(*[values.get(name) for name in names]) == (dash.no_update,) * 2
