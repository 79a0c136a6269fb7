"""Figures of the gate saturation, cells, training and prediction film views, checked as data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from plotly.io.json import to_json_plotly
from scipy import stats

from dashboard.figures import alignment, cells, film, gates, training


# -- alignment ----------------------------------------------------------------------------------

def test_fgvw001_example_rows_and_positions_align_at_either_end():
    rows, t, owner = alignment.example_rows([10, 2], [3, 2])
    assert rows.tolist() == [10, 11, 12, 2, 3]
    assert t.tolist() == [0, 1, 2, 0, 1]
    assert owner.tolist() == [0, 0, 0, 1, 1]
    lengths = np.array([3, 2])[owner]
    assert alignment.step_positions(t, lengths, 3, "start").tolist() == [0, 1, 2, 0, 1]
    assert alignment.step_positions(t, lengths, 3, "end").tolist() == [0, 1, 2, 1, 2]
    assert alignment.step_axis(3, "end").tolist() == [-2, -1, 0]
    grid = alignment.padded(np.arange(5, dtype=np.float32), owner,
                            alignment.step_positions(t, lengths, 3, "end"), 2, 3)
    assert np.isnan(grid[1, 0]) and grid[1, 1:].tolist() == [3.0, 4.0]
    with pytest.raises(ValueError, match="alignment"):
        alignment.step_positions(t, lengths, 3, "middle")


# -- gate saturation ----------------------------------------------------------------------------

def _gate_rows():
    """Two examples of lengths 3 and 1, two units, aligned at the end (positions 0, 1, 2 and 2)."""
    values = np.array([[0.05, 0.50],    # example 0, t=0: one of two units below 0.1
                       [0.95, 0.99],    # t=1: both above 0.9
                       [0.50, 0.50],    # t=2: none
                       [0.02, 0.92]],   # example 1, its only step, aligned with t=2: both
                      dtype=np.float32)
    position = np.array([0, 1, 2, 2])
    return values, position


def test_fgvw002_saturation_by_step_counts_unit_example_pairs_exactly():
    values, position = _gate_rows()
    result = gates.saturation_by_step(values, position, 3, 0.1, 0.9)
    np.testing.assert_allclose(result["low"], [0.5, 0.0, 0.25])
    np.testing.assert_allclose(result["high"], [0.0, 1.0, 0.25])
    assert result["examples"].tolist() == [1, 1, 2]
    stricter = gates.saturation_by_step(values, position, 3, 0.03, 0.97)
    np.testing.assert_allclose(stricter["low"] + stricter["high"], [0.0, 0.5, 0.25])
    with pytest.raises(ValueError, match="thresholds"):
        gates.saturation_by_step(values, position, 3, 0.9, 0.1)


def test_fgvw003_cell_step_matrix_fraction_saturated_and_mean_with_empty_steps_nan():
    values, position = _gate_rows()
    saturated = gates.cell_step_matrix(values, position, 4, "saturated", 0.1, 0.9)
    assert saturated.shape == (2, 4)
    np.testing.assert_allclose(saturated[:, :3], [[1.0, 1.0, 0.5], [0.0, 1.0, 0.5]])
    assert np.isnan(saturated[:, 3]).all()
    mean = gates.cell_step_matrix(values, position, 3, "mean")
    np.testing.assert_allclose(mean, [[0.05, 0.95, 0.26], [0.50, 0.99, 0.71]], rtol=1e-6)


def test_fgvw004_cells_stuck_at_an_extreme_sort_first_and_histograms_are_fractions():
    grid = np.array([[0.1, 0.2], [1.0, 1.0], [0.5, np.nan]], dtype=np.float32)
    assert gates.sort_cells(grid, "saturation").tolist() == [1, 2, 0]
    assert gates.sort_cells(grid, "index").tolist() == [0, 1, 2]
    figure = gates.cell_heatmap_figure(grid, "end", "forget_gate")
    assert list(figure.data[0].y) == ["u1", "u2", "u0"]
    np.testing.assert_array_equal(figure.data[0].z[0], [1.0, 1.0])
    edges, fractions = gates.gate_histograms({"input_gate": np.array([0.0, 0.05, 0.5, 1.0])}, bins=10)
    assert len(edges) == 11 and fractions["input_gate"].sum() == pytest.approx(1.0)
    assert fractions["input_gate"][0] == pytest.approx(0.5)
    assert fractions["input_gate"][-1] == pytest.approx(0.25)


def test_fgvw005_saturation_figure_has_a_line_per_gate_and_the_example_count():
    values, position = _gate_rows()
    by_gate = {gate: gates.saturation_by_step(values, position, 3) for gate in gates.GATES}
    figure = gates.saturation_figure(by_gate, "end", 0.1, 0.9, n_examples=2, layer=0)
    names = [trace.name for trace in figure.data]
    assert names == ["input", "forget", "output", "examples at step"]
    np.testing.assert_allclose(figure.data[1].y, [0.5, 1.0, 0.5])
    assert list(figure.data[0].x) == [-2, -1, 0]
    assert figure.data[3].yaxis == "y2" and list(figure.data[3].y) == [1, 1, 2]


# -- cells ----------------------------------------------------------------------------------------

def test_fgvw006_heatmap_rows_are_grouped_by_class_order_then_example_id():
    labels = ["b", "a", "b", "a", "c"]
    ids = [4, 3, 1, 0, 2]
    order = cells.class_sorted_rows(labels, ["a", "b", "c"], ids)
    assert [labels[i] for i in order] == ["a", "a", "b", "b", "c"]
    assert [ids[i] for i in order] == [0, 3, 1, 4, 2]


def test_fgvw007_heatmap_rows_are_decimated_evenly_and_keep_every_class():
    labels = np.repeat(["a", "b", "c", "d"], [3000, 1000, 500, 10])
    order = cells.class_sorted_rows(labels, ["a", "b", "c", "d"], np.arange(len(labels)), max_rows=2000)
    assert len(order) == 2000
    kept = pd.Series(labels[order]).value_counts()
    assert set(kept.index) == {"a", "b", "c", "d"}
    assert kept["a"] == pytest.approx(2000 * 3000 / 4510, abs=2)


def test_fgvw008_cell_activation_figure_labels_rows_and_marks_class_boundaries():
    grid = np.arange(12, dtype=np.float32).reshape(4, 3)
    grid[0, 0] = np.nan
    figure = cells.cell_activation_figure(grid, ["a", "a", "b", "c"], [5, 7, 1, 2], "end", unit=3,
                                          kind="h", n_total=10)
    heatmap, boundaries = figure.data
    assert list(heatmap.y) == ["a #5", "a #7", "b #1", "c #2"]
    assert [cells.example_id_from_row_label(y) for y in heatmap.y] == [5, 7, 1, 2]
    assert [y for y in boundaries.y if y is not None] == [1.5, 1.5, 2.5, 2.5]
    assert list(figure.layout.yaxis2.ticktext) == ["a", "b", "c"]
    assert list(figure.layout.yaxis2.tickvals) == [0.5, 2, 3]
    assert "4 of 10 examples" in figure.layout.title.text and "u3" in figure.layout.title.text
    assert np.isnan(heatmap.z[0][0])


def test_fgvw009_a_planted_separating_cell_ranks_first_with_the_anova_f_statistic():
    rng = np.random.default_rng(0)
    labels = np.repeat(["x", "y", "z"], 40)
    summary = rng.normal(0, 1, (120, 6))
    summary[:, 4] += np.repeat([-3.0, 0.0, 3.0], 40)       # cell 4 separates the classes
    summary[:, 2] = 1.0                                     # a constant cell has no F
    scores = cells.separation_scores(summary, labels)
    assert np.nanargmax(scores) == 4 and np.isnan(scores[2])
    expected = stats.f_oneway(*(summary[labels == name, 0] for name in "xyz")).statistic
    assert scores[0] == pytest.approx(expected)
    figure = cells.ranking_figure(scores, "last", "h", selected_unit=4, top=3)
    bars = figure.data[0]
    assert list(bars.y)[0] == "u4" and bars.customdata[0] == 4 and len(bars.y) == 3
    assert isinstance(bars.customdata, (list, tuple))     # numpy would reach a click as nothing
    assert bars.marker.color[0] != bars.marker.color[1]               # the shown cell stands out
    assert np.isnan(cells.separation_scores(summary[:40], labels[:40])).all()   # one class only


def test_fgvw010_per_example_summary_takes_the_last_step_or_the_mean():
    values = np.array([[1.0], [3.0], [10.0], [7.0], [8.0], [9.0]], dtype=np.float32)
    lengths = [2, 1, 3]
    assert cells.per_example_summary(values, lengths, "last")[:, 0].tolist() == [3.0, 10.0, 9.0]
    assert cells.per_example_summary(values, lengths, "mean")[:, 0].tolist() == [2.0, 10.0, 8.0]


# -- training -------------------------------------------------------------------------------------

def _history() -> pd.DataFrame:
    return pd.DataFrame({
        "epoch": [1, 2, 3, 4],
        "loss": [2.0, 1.0, 0.5, 0.4], "accuracy": [0.3, 0.6, 0.8, 0.85],
        "val_loss": [2.1, 1.2, 0.9, 1.1], "val_accuracy": [0.25, 0.5, 0.7, 0.65],
        "grad_norm": [3.0, 2.0, 1.0, 0.9],
        "layer0_forget_gate_mean": [0.5, 0.6, 0.7, 0.7], "layer0_forget_gate_saturated": [0.1, 0.2, 0.3, 0.3],
        "layer0_input_gate_mean": [0.5, 0.5, 0.4, 0.4], "layer0_input_gate_saturated": [0.1, 0.1, 0.2, 0.2],
        "layer1_output_gate_mean": [0.5, 0.5, 0.5, 0.6], "layer1_output_gate_saturated": [0.0, 0.1, 0.1, 0.1],
    })


def test_fgvw011_training_figure_curves_test_marker_and_best_epoch():
    history = _history()
    metrics = {"test": {"accuracy": 0.66, "loss": 0.95}}
    figure = training.training_figure(history, metrics)
    assert training.best_epoch(history) == 3
    by_name = {}
    for trace in figure.data:
        by_name.setdefault(trace.name, []).append(trace)
    assert len(by_name["train"]) == 2 and len(by_name["validation"]) == 2
    np.testing.assert_allclose(by_name["validation"][0].y, history["val_loss"])
    tests = by_name["test (best weights)"]
    assert sorted(float(trace.y[0]) for trace in tests) == [0.66, 0.95]
    assert all(list(trace.x) == [3] for trace in tests)
    best_lines = [shape for shape in figure.layout.shapes if shape.x0 == 3 and shape.x1 == 3]
    assert len(best_lines) == 5                                          # one on every panel
    gate_traces = [t for t in figure.data if "gate" in (t.name or "")]
    assert len(gate_traces) == 6
    assert [t.name for t in gate_traces if t.showlegend] == ["input gate, layer 0", "forget gate, layer 0",
                                                            "output gate, layer 1"]
    dashed = [t.line.dash for t in gate_traces if t.name.endswith("layer 1")]
    assert set(dashed) == {"dash"}
    assert "epoch 3" in figure.layout.title.text


def test_fgvw012_training_figure_without_validation_has_no_best_epoch():
    history = _history().drop(columns=["val_loss", "val_accuracy"])
    figure = training.training_figure(history, {})
    assert training.best_epoch(history) is None
    assert not figure.layout.shapes
    with pytest.raises(ValueError, match="epoch"):
        training.training_figure(history.drop(columns=["epoch"]))


def test_fgvw022_training_panels_a_history_lacks_say_so():
    history = _history()[["epoch", "loss", "accuracy", "val_loss", "val_accuracy"]]     # a text run's
    figure = training.training_figure(history, {})
    notes = [(note.xref, note.yref) for note in figure.layout.annotations if note.text == "not in this run's history"]
    assert notes == [("x3 domain", "y3 domain"), ("x4 domain", "y4 domain"), ("x5 domain", "y5 domain")]
    assert figure.layout.yaxis3.range == (0, 1) and figure.layout.yaxis.range is None
    assert not [note for note in training.training_figure(_history(), {}).layout.annotations
                if note.text == "not in this run's history"]


# -- prediction film ------------------------------------------------------------------------------

def _paths(n_examples: int, n_steps: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(n_steps // 2, n_steps + 1, n_examples)
    lengths[0] = n_steps
    present = np.zeros((n_examples, n_steps), dtype=bool)
    for i, length in enumerate(lengths):
        present[i, n_steps - length:] = True
    x = np.where(present, rng.normal(size=present.shape), np.nan).astype(np.float32)
    y = np.where(present, rng.normal(size=present.shape), np.nan).astype(np.float32)
    return present, x, y


def test_fgvw013_frame_positions_are_capped_and_end_on_the_last_step():
    assert film.frame_positions(20, 60).tolist() == list(range(20))
    positions = film.frame_positions(137, 60)
    assert len(positions) == 60 and positions[0] == 0 and positions[-1] == 136


def test_fgvw014_film_frames_slider_steps_and_heads():
    present, x, y = _paths(6, 10)
    classes = ["a", "b", "c"]
    class_index = np.array([0, 1, 2, 0, 1, 2])
    positions = film.frame_positions(10, 4)
    assert positions.tolist() == [0, 3, 6, 9]
    probability = np.where(present, 0.5, np.nan).astype(np.float32)
    figure = film.film_figure(x, y, class_index, classes, np.arange(100, 106), [f"ex{i}" for i in range(6)],
                              "end", positions, probability, "ae2", note="6 of 6")
    assert len(figure.frames) == len(positions) == 4
    slider = figure.layout.sliders[0]
    names = [frame.name for frame in figure.frames]
    assert [step.label for step in slider.steps] == names == ["-9", "-6", "-3", "0"]
    assert slider.active == 3
    assert [button.label for button in figure.layout.updatemenus[0].buttons] == ["▶ Play", "❚❚ Pause"]
    assert len(figure.data) == 2 + len(classes)                          # paths, heads, legend entries
    second = figure.frames[1]
    assert list(second.traces) == [0, 1]
    heads = second.data[1]
    np.testing.assert_array_equal(heads.x, x[:, 3])
    assert [row[0] for row in heads.customdata] == list(range(100, 106))
    assert isinstance(heads.customdata[0], (list, tuple))               # a click reads a list
    # frame 1's path goes through the frames' columns 0 and 3 of each example, one NaN between
    path_x = np.asarray(second.data[0].x)
    np.testing.assert_array_equal(path_x[np.isfinite(path_x)], x[:, [0, 3]][present[:, [0, 3]]])
    assert np.isnan(path_x).sum() == (present[:, [0, 3]].any(axis=1)).sum()
    # the figure opens on the last frame, path markers coloured by class
    np.testing.assert_array_equal(figure.data[0].x, figure.frames[-1].data[0].x)
    np.testing.assert_array_equal(figure.data[0].marker.color, figure.frames[-1].data[0].marker.color)
    assert figure.data[0].marker.coloraxis == "coloraxis" and figure.layout.coloraxis.cmax == 2.5


def test_fgvw015_film_plan_caps_examples_frames_and_path_points():
    present, _, _ = _paths(2528, 90)
    class_index = np.arange(2528) % 94
    plan = film.film_plan(present, class_index, max_examples=300, max_frames=60)
    assert len(plan.examples) == 300 and 30 <= len(plan.positions) < 60   # coarser frames first
    assert plan.positions[-1] == 89
    assert film.path_points(present[plan.examples], plan.positions) <= film.PATH_POINT_BUDGET
    assert len(np.unique(class_index[plan.examples])) == 94                # classes keep their share
    tight = film.film_plan(present, class_index, point_budget=10_000)
    assert 0 < len(tight.examples) < 300 and len(tight.positions) == 30    # then fewer examples
    assert film.path_points(present[tight.examples], tight.positions) <= 10_000
    few = film.film_plan(present[:40], class_index[:40])
    assert len(few.examples) == 40 and len(few.positions) == 60


def test_fgvw016_film_figure_for_auslan_sized_data_stays_under_3_mb():
    present, x, y = _paths(2528, 57, seed=1)
    class_index = np.arange(2528) % 94
    plan = film.film_plan(present, class_index)
    e = plan.examples
    figure = film.film_figure(x[e], y[e], class_index[e], [f"class{k}" for k in range(94)], e,
                              [f"example {i}" for i in e], "end", plan.positions,
                              np.where(present[e], 0.3, np.nan).astype(np.float32))
    assert len(e) == 300
    text = to_json_plotly(figure)
    assert len(text) < 3_000_000, len(text)
    sent = json.loads(text)
    assert sent["data"][0]["x"]["dtype"] == "f4" and sent["frames"][0]["data"][1]["x"]["dtype"] == "f4"


def test_fgvw017_film_colours_follow_the_given_class_colours_and_legend():
    present, x, y = _paths(4, 6)
    figure = film.film_figure(x, y, np.array([0, 1, 1, 0]), ["think", "crazy"], np.arange(4),
                              ["a", "b", "c", "d"], "start", film.frame_positions(6),
                              colours=["#111111", "#eeeeee"])
    scale = figure.layout.coloraxis.colorscale
    assert [entry[1] for entry in scale] == ["#111111", "#111111", "#eeeeee", "#eeeeee"]
    legend = figure.data[2:]
    assert [trace.name for trace in legend] == ["think", "crazy"]
    assert [trace.marker.color for trace in legend] == ["#111111", "#eeeeee"]


# -- the selected example, marked (issue 14) ------------------------------------------------------

def test_fgvw018_film_marks_the_selected_example_in_every_frame():
    present, x, y = _paths(6, 10)
    positions = film.frame_positions(10, 4)
    args = (x, y, np.array([0, 1, 2, 0, 1, 2]), ["a", "b", "c"], np.arange(100, 106),
            [f"ex{i}" for i in range(6)], "end", positions)
    figure = film.film_figure(*args, selected=103)
    assert (figure.layout.xaxis.title.text, figure.layout.yaxis.title.text) == ("Autoencoder code 1",
                                                                                "Autoencoder code 2")
    marked = figure.data[2]
    assert marked.name == "selected: #103" and marked.line.color == "black"
    assert all(list(frame.traces) == [0, 1, 2] for frame in figure.frames)
    for frame, column in zip(figure.frames, positions):
        path = np.asarray(frame.data[2].x)
        # its own path through the frames so far, the head (the last point) the biggest marker
        np.testing.assert_array_equal(path, x[3, positions[:list(positions).index(column) + 1]])
        sizes = np.asarray(frame.data[2].marker.size)
        assert sizes[-1] > sizes[:-1].max(initial=0)
    assert set(np.asarray(figure.data[2].customdata).tolist()) == {103}      # a click selects it again
    unmarked = film.film_figure(*args, selected=999)                       # not among the drawn: no mark
    assert len(unmarked.data) == len(figure.data) - 1
    assert all(list(frame.traces) == [0, 1] for frame in unmarked.frames)


def test_fgvw019_cells_heatmap_outlines_the_selected_row_and_keeps_it_when_decimated():
    grid = np.arange(12, dtype=np.float32).reshape(4, 3)
    figure = cells.cell_activation_figure(grid, ["a", "a", "b", "c"], [5, 7, 1, 2], "end", unit=3,
                                          kind="h", selected=1)
    (outline,) = [shape for shape in figure.layout.shapes if shape.name == "selected"]
    assert (outline.yref, outline.y0, outline.y1) == ("y2", 1.5, 2.5)      # row 2 (b #1) on the class axis
    assert (outline.x0, outline.x1) == (-2.5, 0.5)
    (label,) = [note for note in figure.layout.annotations if note.name == "selected"]
    assert label.text.endswith("#1") and label.y == 2
    plain = cells.cell_activation_figure(grid, ["a", "a", "b", "c"], [5, 7, 1, 2], "end", unit=3, kind="h")
    assert not plain.layout.shapes and not plain.layout.annotations
    labels = np.repeat(["a", "b"], [3000, 1000])
    ids = np.arange(len(labels))
    order = cells.class_sorted_rows(labels, ["a", "b"], ids, max_rows=2000)
    dropped = int(np.setdiff1d(ids, ids[order])[0])
    kept = cells.class_sorted_rows(labels, ["a", "b"], ids, max_rows=2000, keep=dropped)
    assert dropped in ids[kept] and len(kept) == 2001
    assert list(ids[kept]) == sorted(ids[kept])                              # still in class order


# -- readable gate axes (issue 14) ----------------------------------------------------------------

def _tick_labels(axis) -> list[str]:
    """The labels a linear axis shows from 0 to its range's end (d3's "%" format is Python's)."""
    count = int(np.floor(axis.range[1] / axis.dtick + 1e-9)) + 1
    return [format(k * axis.dtick, axis.tickformat) for k in range(count)]


@pytest.mark.parametrize("top", [0.35, 0.03, 0.012, 0.004])
def test_fgvw020_gate_histogram_percent_ticks_are_unique_and_cover_the_bars(top):
    edges = np.linspace(0, 1, 51)
    fraction = np.full(50, (1 - top) / 49)
    fraction[-1] = top                                     # most values saturated near 1, the rest flat
    figure = gates.gate_histogram_figure(edges, {"forget_gate": fraction})
    labels = _tick_labels(figure.layout.yaxis)
    assert len(labels) == len(set(labels)) >= 3, labels
    assert figure.layout.yaxis.range[1] >= top
    assert figure.layout.legend.y < 0                      # under the plot, off the bars near 1


def test_fgvw021_examples_at_step_axis_has_round_ticks():
    stats = {"low": np.full(90, 0.2), "high": np.full(90, 0.1), "examples": np.linspace(10, 2661, 90)}
    figure = gates.saturation_figure({"forget_gate": stats}, "end", 0.1, 0.9, 2661)
    right = figure.layout.yaxis2
    mantissa = right.dtick / 10 ** np.floor(np.log10(right.dtick))
    assert mantissa in (1, 2, 5) and right.range[1] >= 2661 and right.range[1] % right.dtick == 0
    assert right.tickformat == ",d"
    assert gates.nice_ticks(648) == (200, 800) and gates.nice_ticks(0.012) == (0.005, 0.015)
