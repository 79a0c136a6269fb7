"""Callbacks of the gate saturation, cells, training and prediction film views, called as functions
on the small real run of the synthetic signs (tests/conftest.py)."""

from __future__ import annotations


import dash
import numpy as np
import plotly.graph_objects as go
import pytest

from dashboard import data, state
from dashboard.app import create_app
from dashboard.figures import HIGHLIGHT, class_colors
from dashboard.figures import cells as cell_figures
from dashboard.views import cells, controls, film, gates, training
from factories import callbacks_of, component_ids, figure_of

MY_VIEWS = (gates, cells, training, film)
ALL_SPLITS = list(state.SPLITS)


@pytest.fixture(scope="module")
def run(synthetic_runs_dir):
    data.configure(synthetic_runs_dir)
    return data.get_run("synthetic")





def _message(figure) -> str:
    """The text of a message figure, a go.Figure or as sent ("" for a real figure)."""
    figure = go.Figure(figure) if isinstance(figure, dict) else figure
    annotations = figure.layout.annotations
    return annotations[0].text if annotations and not figure.data else ""


def test_cbvw102_view_callbacks_listen_to_components_that_exist(synthetic_runs_dir):
    app = create_app(synthetic_runs_dir)
    ids = component_ids(app.layout())
    found = list(callbacks_of(app, MY_VIEWS))
    assert len(found) >= 12
    for outputs, callback in found:
        wanted = outputs + [item["id"] for item in callback["inputs"] + callback["state"]]
        assert set(wanted) <= ids, set(wanted) - ids


def test_cbvw103_hidden_views_do_no_work(synthetic_runs_dir):
    app = create_app(synthetic_runs_dir)
    figure_ids = ("graph", "over-time", "cells", "ranking", "heatmap", "source")   # the film: its source
    figure_callbacks = [(outputs, cb) for outputs, cb in callbacks_of(app, MY_VIEWS)
                        if any(o.endswith(figure_ids) for o in outputs) and "callback" in cb]   # not clientside
    assert len(figure_callbacks) == 7           # gates over time also redraws on its own zoom (no tab input)
    for outputs, callback in figure_callbacks:
        names = [item["id"] for item in callback["inputs"] + callback.get("state", [])]
        arguments = {"run-picker": "synthetic", "view-tabs": "paths"}
        result = callback["callback"].__wrapped__(*[arguments.get(name) for name in names])
        results = result if isinstance(result, tuple) else (result,)
        assert all(r is dash.no_update for r in results), outputs


def test_cbvw104_gate_saturation_over_time_matches_the_step_tables(run):
    over_time, histogram = map(figure_of, gates.summary_figures("synthetic", [], ALL_SPLITS, None, "all",
                                                                "last", "end", [0.1, 0.9]))
    values = run.step_matrix(0, "input_gate")
    expected = np.mean((values < 0.1) | (values > 0.9))
    line = next(trace for trace in over_time.data if trace.name == "input")
    examples = next(trace for trace in over_time.data if trace.name == "examples at step").y
    weighted = np.nansum(np.asarray(line.y, dtype=np.float64) * examples) / examples.sum()
    assert weighted == pytest.approx(expected)
    assert examples[-1] == len(data.examples(run))                   # every example ends at step 0
    for bars in histogram.data:
        assert float(np.sum(bars.y)) == pytest.approx(1.0, abs=1e-5)
    nothing = gates.summary_figures("synthetic", [], [], None, "all", "last", "end", [0.1, 0.9])
    assert all("no examples" in _message(figure) for figure in nothing)
    crossed = gates.cells_figure("synthetic", [], ALL_SPLITS, None, "all", "last", "end", [0.6, 0.6],
                                 "forget_gate", "saturated", "index")
    assert "threshold" in _message(crossed)


def test_cbvw113_a_chosen_set_narrows_the_gate_views_to_its_examples(run):
    frame = data.examples(run)
    chosen = frame["example_id"].iloc[::7].tolist()                     # splits every class
    part = frame[frame["example_id"].isin(chosen)]
    over_time, _ = map(figure_of, gates.summary_figures("synthetic", [], ALL_SPLITS, None, "all", "last", "end",
                                                        [0.1, 0.9], chosen))
    examples = next(trace for trace in over_time.data if trace.name == "examples at step").y
    assert examples[-1] == len(part)
    rows = np.concatenate([np.arange(s, s + n) for s, n in zip(part["row_start"], part["length"])])
    values = run.step_matrix(0, "input_gate")[rows]
    line = next(trace for trace in over_time.data if trace.name == "input")
    weighted = np.nansum(np.asarray(line.y, dtype=np.float64) * examples) / examples.sum()
    assert weighted == pytest.approx(np.mean((values < 0.1) | (values > 0.9)))
    heatmap = figure_of(gates.cells_figure("synthetic", [], ALL_SPLITS, None, "all", "last", "end", [0.1, 0.9],
                                           "output_gate", "mean", "index", chosen)).data[0]
    last_rows = (part["row_start"] + part["length"] - 1).to_numpy()
    np.testing.assert_allclose(np.asarray(heatmap.z)[:, -1], run.step_matrix(0, "output_gate")[last_rows].mean(axis=0),
                               rtol=1e-5)
    outside = gates.summary_figures("synthetic", [], ["test"], None, "all", "last", "end", [0.1, 0.9],
                                    part[part["split"] != "test"]["example_id"].tolist()[:3])
    assert all("none of the 3 chosen examples pass the filters" in _message(figure) for figure in outside)


def test_cbvw105_gate_cell_heatmap_means_per_cell_and_step(run):
    figure = figure_of(gates.cells_figure("synthetic", [], ALL_SPLITS, None, "all", "last", "end", [0.1, 0.9],
                                          "output_gate", "mean", "index"))
    heatmap = figure.data[0]
    frame = data.examples(run)
    assert np.asarray(heatmap.z).shape == (run.layers[0].units, int(frame["length"].max()))
    last_rows = (frame["row_start"] + frame["length"] - 1).to_numpy()
    expected = run.step_matrix(0, "output_gate")[last_rows].mean(axis=0)
    np.testing.assert_allclose(np.asarray(heatmap.z)[:, -1], expected, rtol=1e-5)


def test_cbvw106_cell_ranking_and_heatmap_for_chosen_classes(run):
    chosen = run.classes[:3]
    figure = cells.ranking_figure("synthetic", chosen, ALL_SPLITS, None, "all", "last", "h", "last", 0)
    frame = data.filtered_examples(run, chosen, ALL_SPLITS, None, "all")
    scores = cell_figures.separation_scores(data.last_step_matrix(run, 0, "h")[frame.index.to_numpy()],
                                            frame["label"])
    bars = figure.data[0]
    assert int(bars.customdata[0]) == int(np.nanargmax(scores))
    assert float(bars.x[0]) == pytest.approx(np.nanmax(scores), rel=1e-5)
    assert "3 classes" in figure.layout.title.text

    heatmap = figure_of(cells.heatmap_figure("synthetic", chosen, ALL_SPLITS, None, "all", "last", "c", 5, "end"))
    rows = [cell_figures.example_id_from_row_label(label) for label in heatmap.data[0].y]
    assert sorted(rows) == sorted(frame["example_id"])
    labels = data.labels(run).loc[rows].tolist()
    assert labels == sorted(labels, key=chosen.index)                  # grouped in class order
    last_rows = data.last_step_rows(run, rows)
    np.testing.assert_allclose(np.asarray(heatmap.data[0].z)[:, -1],
                               run.step_matrix(0, "c", [5])[last_rows, 0])
    assert "u5 (c)" in heatmap.layout.title.text


def test_cbvw107_clicks_pick_a_cell_and_an_example():
    assert cells.unit_from_click({"points": [{"customdata": 7, "x": 3.2, "y": "u7"}]}) == 7
    assert cells.unit_from_click(None) is None
    assert cells.example_from_heatmap_click({"points": [{"x": -3, "y": "think #42", "z": 0.1}]}) == 42
    assert cells.example_from_heatmap_click({"points": []}) is None


def test_cbvw108_layer_and_cell_choices_fall_back_to_what_the_run_has(run):
    options, style = controls.layer_options("synthetic")
    assert options == [{"label": "0 (12 units), last", "value": controls.LAST_LAYER}]
    assert style == controls.HIDDEN                                     # one layer: no picker
    assert controls.chosen_layer(run, "last") == 0 and controls.chosen_layer(run, "3") == 0
    two = [{"label": "0 (8 units)", "value": "0"}, {"label": "1 (8 units), last", "value": controls.LAST_LAYER}]
    assert controls.ticked_layer(two, "0") is dash.no_update                    # a layer the run has stays
    assert controls.ticked_layer(two, "1") == controls.ticked_layer(two, "7") == controls.LAST_LAYER  # drawn
    assert controls.ticked_layer([], "0") is dash.no_update
    assert cells.last_unit("synthetic", "last") == 11
    too_far = figure_of(cells.heatmap_figure("synthetic", [], ALL_SPLITS, None, "all", "last", "h", 99, "end"))
    assert "u0 (h)" in too_far.layout.title.text


def test_cbvw109_training_figure_shows_the_run_history_and_test_metrics(run):
    figure = figure_of(training.figure("synthetic"))
    history = run.history()
    train_loss = next(trace for trace in figure.data if trace.name == "train")
    assert list(train_loss.x) == history["epoch"].tolist()
    marks = sorted(float(trace.y[0]) for trace in figure.data if trace.name == "test (best weights)")
    test = run.manifest["metrics"]["test"]
    assert marks == sorted([test["accuracy"], test["loss"]])
    assert training.applies_to(run.manifest)


def test_cbvw110_film_draws_the_filtered_examples_and_clicks_select_them(run):
    assert {"ae2", "pca2"} <= set(film.film_projections(run.manifest))
    assert "ae3" not in film.film_projections(run.manifest)
    figure = go.Figure(film.film_figure("synthetic", [], ALL_SPLITS, None, "misclassified", "pca2", "end"))
    frame = data.filtered_examples(run, [], ALL_SPLITS, None, "misclassified")
    heads = figure.data[1]
    ids = [row[0] for row in heads.customdata]
    assert set(ids) <= set(frame["example_id"]) and len(ids) <= 300
    assert f"{len(ids)} of {len(frame)} filtered examples" in figure.layout.title.text
    assert 0 < len(figure.frames) <= 60
    assert len(figure.layout.sliders[0].steps) == len(figure.frames)
    assert "'pca2'" in figure.layout.title.text
    assert state.example_from_click({"points": [{"customdata": heads.customdata[0]}]}) == ids[0]
    unknown = film.film_figure("no-such-run", [], ALL_SPLITS, None, "all", None, "end")
    assert "no finished run" in _message(unknown)


@pytest.mark.parametrize("align", ["end", "start"])
def test_cbvw113_film_grids_hold_each_drawn_examples_own_points_and_probabilities(run, align):
    """Every drawn example's row of the sent grids is its projected path (and p of its true class)
    at the frames' steps, NaN where it has no step there."""
    from dashboard.figures import untyped
    source = film.film_source("synthetic", [], ALL_SPLITS, None, "all", "pca2", align)
    grids = {key: untyped(source["film"][key]) for key in ("x", "y", "p", "ids")}
    points, predictions = data.projection(run, "pca2"), data.predictions(run)
    frame = data.examples(run).set_index("example_id")
    steps = [int(name) for name in source["film"]["names"]]
    assert len(grids["ids"]) > 10
    for row, example_id in enumerate(grids["ids"]):
        own = points[points["example_id"] == example_id].sort_values("t")
        length, start = int(frame.loc[example_id, "length"]), int(frame.loc[example_id, "row_start"])
        for column, step in enumerate(steps):
            t = length - 1 + step if align == "end" else step
            if 0 <= t < length:
                assert grids["x"][row, column] == np.float32(own["x"].iat[t])
                assert grids["y"][row, column] == np.float32(own["y"].iat[t])
                assert grids["p"][row, column] == np.float32(predictions["true_prob"].iat[start + t])
            else:
                assert np.isnan(grids["x"][row, column]) and np.isnan(grids["p"][row, column])


def test_cbvw111_film_gives_chosen_classes_far_apart_colours():
    names, colours = film.film_classes(["a", "b", "c"], ["c", "x", "a"], ["a", "c"])
    assert names == ["c", "a"] and colours == list(HIGHLIGHT[:2])
    names, colours = film.film_classes(["a", "b", "c"], [], ["c", "a"])
    assert names == ["a", "c"] and colours == [class_colors(["a", "b", "c"])[name] for name in names]


def test_cbvw101_training_status_is_live_for_a_recording_and_names_failure_signs(tmp_path, synthetic_runs_dir):
    """A complete run: its epochs, no refresh. A run still training: "training now", refreshing; a
    collapsed state in its history is named with its threshold."""

    from dashboard import data
    from dashboard.views import training
    from pipeline.record.session import Recording
    original = data.runs_dir()
    data.configure(synthetic_runs_dir)
    try:
        _live_status(tmp_path, data, training, Recording)
    finally:
        data.configure(original)


def _live_status(tmp_path, data, training, Recording):
    import numpy as np
    import pandas as pd
    body, stop = training.status("synthetic")
    assert stop and "epoch(s)" in str(body[0].children)
    recording = Recording(tmp_path / "runs" / "live", np.zeros((4, 3, 2), np.float32), labels=np.array([0, 1, 0, 1]))
    recording.start()
    writer_history = pd.DataFrame({"epoch": [1, 2], "loss": [1.0, 0.9], "layer0_h_spread": [0.2, 1e-5]})
    from pipeline.runformat import HISTORY_FILE, RunWriter
    RunWriter(tmp_path / "runs", "live").write_table(HISTORY_FILE, writer_history)
    data.configure(tmp_path / "runs")
    body, stop = training.status("live")
    assert not stop and "training now: 2 epoch(s)" in str(body[0].children)
    assert "hidden state barely differs" in str(body[1]) and "rule:" in str(body[1])


def test_cbvw112_film_and_cells_heatmap_mark_the_selected_example(run, monkeypatch):
    frame = data.filtered_examples(run, [], ALL_SPLITS, None, "all")
    example = int(frame["example_id"].iat[-1])
    figure = figure_of(film.film_figure("synthetic", [], ALL_SPLITS, None, "all", "pca2", "end", example))
    (marked,) = [trace for trace in figure.data if trace.name == f"selected: #{example}"]
    points = data.projection(run, "pca2")
    path = points[points["example_id"] == example]
    assert np.isclose(np.asarray(marked.x)[-1], path["x"].iat[-1])          # the last frame: its whole path
    # forced in beside the film's evenly spaced examples, even when they leave it out
    plan = film.figures.film_plan
    monkeypatch.setattr(film.figures, "film_plan", lambda present, index: plan(present, index, max_examples=3))
    def heads(selected):
        return film._build_film(run, [], ALL_SPLITS, None, "all", "pca2", "end", selected)["film"]["ids"]
    left_out = next(int(i) for i in frame["example_id"] if i not in heads(None))
    assert len(heads(None)) == 3 and sorted(heads(left_out)) == sorted([*heads(None), left_out])
    monkeypatch.undo()
    outside = figure_of(film.film_figure("synthetic", [], ALL_SPLITS, None, "misclassified", "pca2", "end",
                                         int(frame[frame["correct"]]["example_id"].iat[0])))
    assert "is filtered out" in outside.layout.title.text and len(outside.frames[0].traces) == 2

    heatmap = figure_of(cells.heatmap_figure("synthetic", [], ALL_SPLITS, None, "all", "last", "h", 0, "end", example))
    (outline,) = [shape for shape in heatmap.layout.shapes if shape.name == "selected"]
    assert heatmap.data[0].y[int(outline.y0 + 0.5)].endswith(f"#{example}")
    none = figure_of(cells.heatmap_figure("synthetic", [], ALL_SPLITS, None, "all", "last", "h", 0, "end", None))
    assert not none.layout.shapes
