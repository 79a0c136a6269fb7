"""The core views' figures as data: pure functions, so their traces are checked without a browser."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from factories import decoded
from dashboard.figures import FADED, HIGHLIGHT, class_colors, message_figure
from dashboard.figures.inspector import (confidence_figure, example_path_figure, hand_groups,
                                         inputs_figure)
from dashboard.figures.last_step import MAX_MISTAKE_LABELS, MISTAKE_LABEL, last_step_figure
from dashboard.figures.paths import MAX_JOINED_POINTS, decimate, document_paths_figure, gapped, paths_figure

CLASSES = ["drink", "danger", "think", "crazy"]


def make_points(lengths, three_d=False, seed=0) -> pd.DataFrame:
    """Projected paths of len(lengths) examples, ids 0.., in (example_id, t) order."""
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(len(lengths)), lengths)
    t = np.concatenate([np.arange(n) for n in lengths])
    frame = pd.DataFrame({"example_id": ids, "t": t,
                          "x": rng.normal(size=len(ids)).astype(np.float32),
                          "y": rng.normal(size=len(ids)).astype(np.float32)})
    if three_d:
        frame["z"] = rng.normal(size=len(ids)).astype(np.float32)
    return frame


def labels_for(n) -> pd.Series:
    return pd.Series([CLASSES[i % len(CLASSES)] for i in range(n)], index=pd.RangeIndex(n),
                     name="label")


# -- paths ------------------------------------------------------------------------------------

def marked(figure):
    """The traces whose markers are coloured by time step."""
    return [t for t in figure.data if "markers" in (t.mode or "") and t.marker.colorscale]


def test_fig001_gapped_puts_one_gap_after_each_path():
    points = make_points([3, 2, 4])
    arrays = gapped(points, ["x", "example_id", "t"])
    assert arrays["x"].dtype == np.float32 and arrays["example_id"].dtype == np.int16
    assert len(arrays["x"]) == 9 + 3
    assert np.flatnonzero(np.isnan(arrays["x"])).tolist() == [3, 6, 11]
    assert arrays["example_id"].tolist()[:4] == [0, 0, 0, -1]


def test_fig002_one_trace_per_class_coloured_by_time_and_hover_names_the_sign():
    points = make_points([5] * 40)
    figure = paths_figure(points, labels_for(40))
    assert len(figure.data) == len(CLASSES) and all(isinstance(t, go.Scattergl) for t in figure.data)
    traces = marked(figure)
    assert [t.name for t in traces] == CLASSES                 # one per class, not one per example
    colour = np.concatenate([np.asarray(t.marker.color, dtype=float) for t in traces])
    assert colour.max() == 4 and {(t.marker.cmin, t.marker.cmax) for t in traces} == {(0, 4)}
    assert [t.marker.showscale for t in traces] == [True, False, False, False]   # one colour scale
    assert sum(np.isnan(np.asarray(t.x, dtype=float)).sum() for t in traces) == 40
    ids = set().union(*(set(np.asarray(t.customdata)) for t in traces))
    assert ids == set(range(40)) | {-1}
    # Example ids as plain values, not a typed array: plotly.js leaves a typed customdata out of a
    # lasso's points (browser test_brsel001), and the chosen set would be empty.
    assert not any(isinstance(t.to_plotly_json()["customdata"], np.ndarray) for t in traces)
    # Steps for the hover as a typed int16 array: plotly validates a list point by point and
    # turns an integer array for a text attribute into float64.
    assert all(decoded(t.text).dtype == np.int16 for t in traces)


def test_lbl001_hovering_any_path_point_names_sign_example_and_step():
    points = make_points([3] * 8)
    for highlight in (None, ["drink"]):
        figure = paths_figure(points, labels_for(8), highlight=highlight)
        for trace in figure.data:
            if trace.hoverinfo == "skip":
                continue
            ids = np.asarray(trace.customdata)
            (sign,) = set(labels_for(8)[ids[ids >= 0]])                  # a trace holds one class
            assert trace.hovertemplate.startswith(f"<b>{sign}</b>")
            assert "example %{customdata}" in trace.hovertemplate and "step %{text}" in trace.hovertemplate
            assert set(decoded(trace.text)[ids >= 0]) == {0, 1, 2}
        assert not [t for t in figure.data if t.hoverinfo == "skip" and t.name != "example 1"]
    odd = paths_figure(make_points([2]), pd.Series(["%{x} {y}"], index=[0]))
    assert "%{x}" not in odd.data[0].hovertemplate.split("<br>")[0]     # a name is never a template


def test_fig003_chosen_classes_coloured_by_class_time_as_size_others_faded_not_hidden():
    points = make_points([6] * 8)
    figure = paths_figure(points, labels_for(8), highlight=["drink", "danger"])
    faded = [t for t in figure.data if t.legendgroup == "other"]
    assert [t.showlegend for t in faded] == [True, False] and faded[0].name == "other classes"
    assert {t.line.color for t in faded} == {FADED}
    assert sum(len(t.x) for t in faded) == 4 * 6 + 4          # think and crazy stay in the scene
    drink, danger = [t for t in figure.data if t.legendgroup != "other"]
    assert (drink.name, danger.name) == ("drink", "danger") and drink.showlegend and danger.showlegend
    assert (drink.line.color, danger.line.color) == tuple(HIGHLIGHT[:2])     # in the order chosen
    assert (drink.marker.color, danger.marker.color) == tuple(HIGHLIGHT[:2])  # points by class too
    sizes = np.asarray(drink.marker.size, dtype=float)[np.asarray(drink.customdata) == 0]
    assert np.all(np.diff(sizes) > 0)                                       # time as marker size
    assert set(np.asarray(drink.customdata)) == {0, 4, -1}
    names = sorted(a.text for a in figure.layout.annotations)
    assert names == ["danger", "drink"]


def test_fig004_class_names_sit_at_the_median_last_step():
    points = make_points([4, 4])
    points.loc[points["t"] == 3, ["x", "y"]] = [[1.0, 2.0], [3.0, 4.0]]
    labels = pd.Series(["drink", "drink"], index=[0, 1])
    figure = paths_figure(points, labels)
    (note,) = figure.layout.annotations
    assert (note.text, note.x, note.y) == ("drink", 2.0, 3.0)


def test_fig005_decimation_caps_points_and_keeps_last_steps():
    points = make_points([500] * 30)
    kept = decimate(points, max_points=3000)
    assert len(kept) <= 3000
    last = kept.groupby("example_id")["t"].max()
    assert (last == 499).all()
    figure = paths_figure(points, labels_for(30), max_points=3000)
    assert sum(np.isfinite(np.asarray(t.x, dtype=float)).sum() for t in marked(figure)) <= 3000


def test_fig009_many_document_steps_are_points_and_only_the_selected_document_is_joined():
    names = pd.Series([f"doc{i}" for i in range(12)])
    few = document_paths_figure(make_points([MAX_JOINED_POINTS // 12] * 12), names, title="t")
    assert {trace.mode for trace in few.data} == {"lines+markers"} and few.layout.title.text == "t"
    many = make_points([MAX_JOINED_POINTS // 12 + 1] * 12)
    figure = document_paths_figure(many, names, selected=3, title="t")
    *steps, path = figure.data
    assert {trace.mode for trace in steps} == {"markers"}
    assert sum(len(trace.x) for trace in steps) == len(many)                   # no gaps: points only
    assert path.mode == "lines+markers" and len(path.x) == (many["example_id"] == 3).sum()
    assert figure.layout.title.text == f"t · {len(many):,} steps as points: select a document to draw its path"


def test_fig006_three_d_uses_scatter3d_and_symlog_is_applied():
    points = make_points([5] * 4, three_d=True)
    points["x"] = np.float32(100.0)
    figure = paths_figure(points, labels_for(4), symlog=True)
    assert all(isinstance(t, go.Scatter3d) for t in figure.data)
    finite = np.concatenate([np.asarray(t.x, dtype=float) for t in marked(figure)])
    assert np.allclose(finite[np.isfinite(finite)], np.log1p(100.0), rtol=1e-5)


def test_fig007_selected_example_is_drawn_on_top():
    points = make_points([5, 6, 7])
    figure = paths_figure(points, labels_for(3), selected=1)
    top = figure.data[-1]
    assert top.name == "example 1" and len(top.x) == 6 and top.line.color == "black"


def test_fig008_no_examples_gives_a_message_not_an_error():
    figure = paths_figure(make_points([3]).iloc[:0], labels_for(0))
    assert figure.layout.annotations[0].text == "No examples match the filters."
    assert message_figure("x").layout.annotations[0].text == "x"


# -- last step --------------------------------------------------------------------------------

def make_last(n, wrong=()):
    examples = pd.DataFrame({"example_id": np.arange(n), "label": labels_for(n).to_numpy()})
    examples["prediction"] = examples["label"]
    for i in wrong:
        examples.loc[i, "prediction"] = "crazy" if examples.loc[i, "label"] != "crazy" else "drink"
    examples["correct"] = examples["label"] == examples["prediction"]
    examples["hand_usage"] = np.where(np.arange(n) % 2, "two-handed", "one-handed")
    points = pd.DataFrame({"example_id": np.arange(n), "x": np.arange(n, dtype=np.float32),
                           "y": np.zeros(n, np.float32)})
    return points, examples


def test_fig101_misclassified_are_x_markers_labelled_true_to_predicted_apart_from_each_other():
    points, examples = make_last(12, wrong=[1, 5])
    figure = last_step_figure(points, examples, CLASSES)
    wrong = next(t for t in figure.data if t.name == "misclassified")
    assert wrong.marker.symbol == "x" and list(wrong.x) == [1.0, 5.0]
    labels = [a for a in figure.layout.annotations if "\u2192" in a.text]
    assert sorted((a.x, a.text) for a in labels) == [(1.0, "danger \u2192 crazy"), (5.0, "danger \u2192 crazy")]
    assert all(a.font.color == MISTAKE_LABEL for a in labels)
    crowded = points.assign(x=np.float32(0), y=np.float32(0))              # every mistake on one spot
    many = make_last(12, wrong=range(0, 12, 2))[1]
    lifts = [a.ay for a in last_step_figure(crowded, many, CLASSES).layout.annotations if "\u2192" in a.text]
    assert len(lifts) == 6 and len(set(lifts)) == 6                        # stacked, none on another
    correct = figure.data[0]
    assert len(correct.x) == 10
    first = int(correct.marker.color[0])                       # a class number on a stepped scale
    stops = {round(v * (len(CLASSES)), 6): c for v, c in correct.marker.colorscale}
    assert first == 0 and stops[0] == class_colors(CLASSES)["drink"]
    assert stops[2] == class_colors(CLASSES)["think"]


def test_fig102_colour_by_hand_gives_one_legend_entry_per_hand_usage():
    points, examples = make_last(10)
    figure = last_step_figure(points, examples, CLASSES, color_by="hand")
    names = [t.name for t in figure.data if t.mode == "markers"]
    assert names == ["one-handed", "two-handed"]
    only_wrong = last_step_figure(points, examples[examples["hand_usage"] == "two-handed"].assign(
        correct=False, prediction="drink"), CLASSES, color_by="hand")
    assert [t.name for t in only_wrong.data if t.mode == "markers"] == ["two-handed", "misclassified"]


def test_fig103_too_many_mistakes_keep_markers_but_drop_labels():
    n = MAX_MISTAKE_LABELS + 20
    points, examples = make_last(n, wrong=range(n))
    figure = last_step_figure(points, examples, CLASSES)
    assert any(t.name == "misclassified" and len(t.x) == n for t in figure.data)
    assert not any("\u2192" in a.text for a in figure.layout.annotations)


def test_fig104_customdata_carries_the_example_id_for_clicks():
    from dashboard.state import example_from_click
    points, examples = make_last(4, wrong=[2])
    figure = last_step_figure(points, examples, CLASSES, selected=3)
    wrong = next(t for t in figure.data if t.name == "misclassified")
    assert example_from_click({"points": [{"customdata": list(wrong.customdata[0])}]}) == 2
    assert figure.data[-1].name == "example 3"


# -- inspector --------------------------------------------------------------------------------

def test_fig201_inputs_are_split_into_one_panel_per_hand():
    channels = [f"{hand}_{q}" for hand in ("left", "right") for q in ("x", "y", "thumb")]
    steps = pd.DataFrame({"t": np.arange(5), **{c: np.arange(5, dtype=np.float32) for c in channels}})
    groups = hand_groups(channels)
    assert groups == {"left": channels[:3], "right": channels[3:]}
    assert hand_groups(channels, {"left": [0, 1, 2], "right": [3, 4]}) == {
        "left": channels[:3], "right": channels[3:5], "inputs": channels[5:]}
    figure = inputs_figure(steps, groups)
    assert len(figure.data) == 6
    assert {t.yaxis for t in figure.data} == {"y", "y2"}
    assert sum(t.showlegend for t in figure.data) == 3      # one legend entry per quantity
    left_x, right_x = figure.data[0], figure.data[3]
    assert left_x.line.color == right_x.line.color


def test_fig202_example_path_over_true_and_predicted_classes():
    points = make_points([5] * 8)
    labels = labels_for(8)
    figure = example_path_figure(points, labels, 0, "drink", "danger")
    names = [t.name for t in figure.data]
    assert names == ["true class: drink", "predicted class: danger", "example 0"]
    assert set(np.asarray(figure.data[0].customdata)) == {4, -1}       # the other drink, a gap
    correct = example_path_figure(points, labels, 0, "drink", "drink")
    assert [t.name for t in correct.data] == ["true class: drink", "example 0"]


def test_fig203_confidence_gaps_where_prediction_was_not_in_top_k():
    t = np.arange(6)
    predicted = np.array([np.nan, np.nan, 0.2, 0.4, 0.6, 0.8], dtype=np.float32)
    figure = confidence_figure(t, np.linspace(0.1, 0.3, 6), predicted, "drink", "danger", top_k=5)
    assert len(figure.data) == 2
    assert "not in the top 5 at 2 of 6 steps" in figure.layout.title.text
    assert np.isnan(np.asarray(figure.data[1].y, dtype=float)[:2]).all()


@pytest.mark.parametrize("builder", [
    lambda: inputs_figure(pd.DataFrame(columns=["t"]), {}),
    lambda: confidence_figure(np.arange(0), np.arange(0), np.arange(0), "a", "b"),
    lambda: example_path_figure(make_points([3]), labels_for(1), 9, "drink", "drink"),
])
def test_fig204_missing_data_gives_a_message_figure(builder):
    figure = builder()
    assert not figure.data and figure.layout.annotations


def many_classes(n_classes=40, per_class=3):
    """Last steps of ``n_classes`` classes, each class's points around its own centre."""
    names = [f"sign{k:02d}" for k in range(n_classes)]
    n = n_classes * per_class
    label = np.repeat(names, per_class)
    centre = np.repeat(np.arange(n_classes, dtype=np.float32), per_class)
    examples = pd.DataFrame({"example_id": np.arange(n), "label": label, "prediction": label, "correct": True})
    points = pd.DataFrame({"example_id": np.arange(n), "x": centre + np.tile([-0.1, 0.0, 0.1], n_classes),
                           "y": centre * 2})
    return names, points, examples


def test_lbl002_last_activations_name_chosen_classes_at_their_centroids_with_a_colour_key():
    names, points, examples = many_classes()
    crowded = last_step_figure(points, examples, names)
    assert not crowded.layout.annotations                       # 40 classes: no labels unless asked
    asked = last_step_figure(points, examples, names, name_all=True)
    assert sorted(a.text for a in asked.layout.annotations) == names
    chosen = ["sign07", "sign03"]
    shown = examples[examples["label"].isin(chosen)]
    figure = last_step_figure(points, shown, names, highlight=chosen)
    notes = {a.text: (a.x, a.y) for a in figure.layout.annotations}
    assert notes == {"sign07": (7.0, 14.0), "sign03": (3.0, 6.0)}          # one label per class, at its median
    key = [t for t in figure.data if t.name in chosen]
    assert [t.name for t in key] == chosen and all(t.showlegend is not False for t in key)
    assert [t.marker.color for t in key] == list(HIGHLIGHT[:2])            # far apart, in the order chosen
    correct = figure.data[0]
    stops = {round(v * len(names)): c for v, c in correct.marker.colorscale}
    assert {stops[int(code)] for code in correct.marker.color} == set(HIGHLIGHT[:2])  # points match the key
    few = last_step_figure(points[points["example_id"] < 12], examples.iloc[:12], names)
    assert sorted(a.text for a in few.layout.annotations) == names[:4]    # few classes: all named


def test_sel001_a_chosen_set_is_drawn_over_the_others_in_grey():
    points, examples = make_last(12, wrong=[1])
    figure = last_step_figure(points, examples, CLASSES, chosen_ids=[0, 1, 5])
    outside = next(t for t in figure.data if t.name == "outside the selection")
    assert len(outside.x) == 9 and figure.data[0] is outside               # drawn first, underneath
    assert len(figure.data[1].x) == 2 and len(next(t for t in figure.data if t.name == "misclassified").x) == 1
    assert figure.layout.dragmode == "lasso"
    paths = paths_figure(make_points([3] * 6), labels_for(6), chosen_ids=[2, 3])
    coloured = [t for t in paths.data if t.legendgroup != "other"]
    assert {int(i) for t in coloured for i in t.customdata if i >= 0} == {2, 3}
    assert {int(i) for t in paths.data if t.legendgroup == "other" for i in t.customdata if i >= 0} == {0, 1, 4, 5}
    titled = paths_figure(make_points([3] * 2), labels_for(2), axis_title="PCA")
    assert (titled.layout.xaxis.title.text, titled.layout.yaxis.title.text) == ("PCA 1", "PCA 2")
