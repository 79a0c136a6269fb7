"""Long series drawn decimated on the server, detail redrawn on zoom (``dashboard.figures.series``).

An imported run whose first sequence is 30,000 steps long (inputs, gates and per-step
predictions): the inspector's input channels, its confidence over time and the gates over time
send at most ``MAX_SERIES_POINTS`` points per line, keep the spikes and gaps, say so in the
title, and a zoom sends every step of the window; the cell heatmap averages steps in bins.
"""

from __future__ import annotations

import dash
import numpy as np
import pytest

from factories import decoded, figure_of, post

from dashboard import data, state
from dashboard.figures import series
from dashboard.figures import gates as gate_figures
from dashboard.views import gates, inspector
from pipeline.importers.arrays import read_arrays
from pipeline.kinds.imported import write_run

LONG = 30_000
RUN_ID = "long-import"
SPIKE = 12_345           # where the first channel of the long sequence spikes


@pytest.fixture(scope="module")
def long_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("long")
    rng = np.random.default_rng(3)
    lengths = np.array([LONG, 400, 300, 200])
    rows = int(lengths.sum())
    inputs = np.cumsum(rng.normal(0, 0.05, (rows, 3)), axis=0).astype(np.float32)
    inputs[SPIKE, 0] = 50.0
    h = np.tanh(inputs @ rng.normal(0, 0.5, (3, 4))).astype(np.float32)
    predictions = rng.dirichlet(np.ones(2), rows).astype(np.float32)
    gates = {name: (1 / (1 + np.exp(-rng.normal(0, 2, (rows, 4))))).astype(np.float32)
             for name in ("input_gate", "forget_gate", "output_gate")}
    path = root / "long.npz"
    np.savez(path, h=h, **gates, lengths=lengths, labels=np.array([0, 1, 0, 1]), classes=np.array(["a", "b"]),
             inputs=inputs, channels=np.array(["left_x", "left_y", "right_x"]), predictions=predictions)
    write_run(read_arrays(path), root / "runs", RUN_ID, project_settings={"methods": []})
    data.configure(root / "runs")
    data.clear_memos()
    yield root / "runs", inputs
    data.clear_memos()


def test_ser001_short_series_are_drawn_whole_and_long_ones_keep_spikes_and_gaps():
    x = np.arange(100)
    assert np.array_equal(series.shown_points(x, np.zeros(100)), x)
    x = np.arange(200_000)
    y = np.sin(x / 500.0)
    y[77_777], y[150_000] = 9.0, -9.0
    y[40_000:40_050] = np.nan
    shown = series.shown_points(x, y)
    assert len(shown) <= series.MAX_SERIES_POINTS and np.all(np.diff(shown) > 0)
    assert {77_777, 150_000} <= set(shown.tolist())
    assert np.isnan(y[shown]).any(), "a gap must stay a gap, not be bridged"


def test_ser002_a_window_keeps_one_point_beyond_each_edge_and_all_steps_when_few():
    x = np.arange(100_000)
    y = np.cos(x / 50.0)
    shown = series.shown_points(x, y, series.Window(1_000.5, 2_000.2))
    assert np.array_equal(shown, np.arange(1_000, 2_002))
    wide = series.shown_points(x, y, series.Window(10_000, 90_000))
    assert len(wide) <= series.MAX_SERIES_POINTS and wide[0] == 9_999 and wide[-1] == 90_001


@pytest.mark.parametrize("relayout, expected", [
    ({"xaxis.range[0]": 10, "xaxis.range[1]": 4.5}, series.Window(4.5, 10.0)),
    ({"xaxis.range": [1, 2], "yaxis.range": [0, 1]}, series.Window(1.0, 2.0)),
    ({"xaxis.autorange": True, "yaxis.autorange": True}, series.WHOLE),
    ({"autosize": True}, None),
    ({"yaxis.range[0]": 0, "yaxis.range[1]": 1}, None),
    ({"xaxis.range[0]": "nan", "xaxis.range[1]": 3}, None),
    ("not a dict", None),
    (None, None),
])
def test_ser003_windows_from_relayout_events(relayout, expected):
    assert series.window_from_relayout(relayout) == expected


def _points(figure) -> list[int]:
    return [len(trace.x) for trace in figure.data]


def test_ser004_the_inspector_sends_a_long_example_decimated_and_its_zoom_in_full(long_run):
    _, inputs = long_run
    whole = figure_of(inspector.inspect_inputs(RUN_ID, 0))
    assert len(whole.data) == 3 and max(_points(whole)) <= series.MAX_SERIES_POINTS
    assert f"of {LONG:,} steps drawn" in whole.layout.title.text
    assert max(whole.data[0].y) == pytest.approx(50.0), "the spike is drawn"
    assert whole.layout.uirevision == f"inputs-{RUN_ID}-0"
    zoomed = figure_of(inspector.inspect_inputs(RUN_ID, 0, {"xaxis.range[0]": 5_000, "xaxis.range[1]": 6_000}))
    assert _points(zoomed) == [1_003] * 3 and not zoomed.layout.title.text
    assert list(zoomed.layout.xaxis.range) == [5_000, 6_000]
    assert np.allclose(zoomed.data[1].y, inputs[4_999:6_002, 1])
    mounted = figure_of(inspector.inspect_inputs(RUN_ID, 0, {"autosize": True}))   # not a zoom: drawn whole
    assert _points(mounted) == _points(whole) and mounted.layout.xaxis.range is None
    back = figure_of(inspector.inspect_inputs(RUN_ID, 0, {"xaxis.autorange": True}))
    assert _points(back) == _points(whole) and back.layout.xaxis.range is None
    short = figure_of(inspector.inspect_inputs(RUN_ID, 1))
    assert _points(short) == [400] * 3 and short.layout.title.text is None
    assert inspector.inspect_inputs(RUN_ID, 1, {"xaxis.range[0]": 5, "xaxis.range[1]": 60}) is dash.no_update


def test_ser005_confidence_over_time_is_decimated_the_same_way(long_run):
    whole = figure_of(inspector.inspect_confidence(RUN_ID, 0))
    assert whole.data and max(_points(whole)) <= series.MAX_SERIES_POINTS
    assert f"of {LONG:,} steps drawn" in whole.layout.title.text
    zoomed = figure_of(inspector.inspect_confidence(RUN_ID, 0, {"xaxis.range[0]": 100, "xaxis.range[1]": 1_099}))
    assert set(_points(zoomed)) == {1_002}
    assert inspector.inspect_confidence(RUN_ID, 2, {"xaxis.range[0]": 1, "xaxis.range[1]": 9}) is dash.no_update


def test_ser006_a_zoom_posted_to_the_app_comes_back_with_the_window_in_full(long_run, client_for):
    runs, _ = long_run
    client = client_for(runs)
    relayout = {"xaxis.range[0]": 20_000, "xaxis.range[1]": 20_500}
    body = {"output": f"{inspector.INPUTS}.figure",
            "outputs": {"id": inspector.INPUTS, "property": "figure"},
            "inputs": [{"id": state.RUN, "property": "value", "value": RUN_ID},
                       {"id": state.TABS, "property": "value", "value": inspector.VIEW_ID},
                       {"id": state.SELECTED, "property": "data", "value": 0},
                       {"id": inspector.INPUTS, "property": "relayoutData", "value": relayout}],
            "changedPropIds": [f"{inspector.INPUTS}.relayoutData"]}
    response = post(client, body)
    assert response.status_code == 200, response.data[:300]
    figure = response.get_json()["response"][inspector.INPUTS]["figure"]
    assert figure["layout"]["xaxis"]["range"] == [20_000, 20_500]
    assert all(len(trace["x"]["bdata"] if isinstance(trace["x"], dict) else trace["x"]) for trace in figure["data"])
    body["inputs"][3]["value"] = {"autosize": True}
    again = post(client, body)                    # the graph's autosize on mount: the whole example
    assert again.status_code == 200
    assert "range" not in again.get_json()["response"][inspector.INPUTS]["figure"]["layout"]["xaxis"]


FILTERS = ([], list(state.SPLITS), list(state.HANDS), "all")


def test_ser007_gates_over_time_of_a_long_run_are_decimated_and_a_zoom_redraws_the_window(long_run):
    options = (None, "start", [0.1, 0.9])
    whole, _ = gates.summary_figures(RUN_ID, *FILTERS, *options)
    lines = [trace for trace in whole["data"] if trace.get("yaxis") != "y2"]
    assert len(lines) == 3 and all(len(decoded(t["x"])) <= series.MAX_SERIES_POINTS for t in lines)
    assert f"of {LONG:,} steps drawn" in whole["layout"]["title"]["text"]
    zoom = {"xaxis.range[0]": 29_000, "xaxis.range[1]": 29_499}
    zoomed = gates.zoomed_over_time(zoom, RUN_ID, *FILTERS, *options)
    assert [len(decoded(t["x"])) for t in zoomed["data"]] == [502] * 4
    assert zoomed["layout"]["xaxis"]["range"] == [29_000, 29_499]
    assert gates.zoomed_over_time({"autosize": True}, RUN_ID, *FILTERS, *options) is dash.no_update
    cells = gates.cells_figure(RUN_ID, *FILTERS, *options, "forget_gate", "mean", "index")
    heatmap = cells["data"][0]
    assert len(decoded(heatmap["x"])) <= gate_figures.MAX_HEATMAP_STEPS
    assert "bins of 20" in cells["layout"]["title"]["text"]


def test_ser008_binned_steps_average_only_the_steps_that_have_values():
    grid = np.array([[1.0, 3.0, np.nan, np.nan, 5.0], [0.0, 0.0, 1.0, np.nan, np.nan]])
    binned, starts, width = gate_figures.binned_steps(grid, max_steps=3)
    assert width == 2 and starts.tolist() == [0, 2, 4]
    assert np.allclose(binned, [[2.0, np.nan, 5.0], [0.0, 1.0, np.nan]], equal_nan=True)
    same, starts, width = gate_figures.binned_steps(grid, max_steps=5)
    assert same is grid and width == 1
