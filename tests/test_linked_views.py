"""Issue 14's linked views on the small real synthetic run: the examples table (follows the filter
bar and a chosen set, a click on a row selects its example), box/lasso selection shared by the
paths, last activations and the table (a clear control drops it), and the checks of their
values. View functions and registered callbacks are called as functions."""

from __future__ import annotations

import dash
import numpy as np
import plotly.graph_objects as go
import pytest

from factories import decoded
from dashboard import data, filters, state, views
from dashboard.app import create_app
from dashboard.views import controls, examples_table, last_step, paths

ALL_SPLITS = list(state.SPLITS)
ALL_HANDS = list(state.HANDS)


@pytest.fixture(scope="module")
def app(synthetic_runs_dir):
    return create_app(synthetic_runs_dir)


@pytest.fixture(scope="module")
def run(app, synthetic_runs_dir):
    data.configure(synthetic_runs_dir)
    return data.get_run("synthetic")


def registered(app, output):
    for key, entry in app.callback_map.items():
        if output in {part.split("@")[0] for part in key.strip(".").split("...")}:
            return entry["callback"].__wrapped__
    raise KeyError(output)


def test_tbl001_the_table_lists_the_filtered_examples_with_their_columns(run):
    columns, rows, styles, note = examples_table.table_rows("synthetic", [], ALL_SPLITS, ALL_HANDS, "all", None)
    frame = data.examples(run)
    assert [c["name"] for c in columns] == ["id", "sign", "split", "signer", "session", "length",
                                            "prediction", "confidence", "correct"]
    assert len(rows) == len(frame) and note.startswith(f"{len(frame):,} examples")
    first = rows[0]
    row = data.example_row(run, first["id"])
    assert (first["sign"], first["split"], first["length"]) == (row["label"], row["split"], row["length"])
    assert first["correct"] == ("true" if row["correct"] else "false")
    assert abs(first["confidence"] - float(row["confidence"])) < 1e-3
    assert next(c for c in columns if c["name"] == "confidence")["type"] == "numeric"   # sorts as numbers
    sign = run.classes[1]
    _, wrong, _, _ = examples_table.table_rows("synthetic", [sign], ["test"], ALL_HANDS, "misclassified", None)
    expected = data.filtered_examples(run, [sign], ["test"], ALL_HANDS, "misclassified")
    assert [r["id"] for r in wrong] == expected["example_id"].tolist()         # follows the filter bar
    assert all(r["correct"] == "false" and r["sign"] == sign for r in wrong)


def test_tbl002_a_click_on_a_row_selects_its_example_and_the_row_is_marked(app, run):
    select = registered(app, f"{state.SELECTED}.data")
    picks = [entry["callback"].__wrapped__ for entry in app.callback_map.values()
             if {"id": examples_table.TABLE, "property": "active_cell"} in entry.get("inputs", [])]
    assert len(picks) == 1 and select is not None
    example = int(data.examples(run)["example_id"].iat[5])
    assert picks[0]({"row": 0, "column": 1, "column_id": "sign", "row_id": example}) == example
    assert picks[0](None) is dash.no_update
    _, _, styles, _ = examples_table.table_rows("synthetic", [], ALL_SPLITS, ALL_HANDS, "all", example)
    assert {"filter_query": f"{{id}} = {example}"} in [s["if"] for s in styles]
    fill = registered(app, f"{examples_table.TABLE}.data")
    assert fill("synthetic", [], ALL_SPLITS, ALL_HANDS, "all", "paths", None, None) == [dash.no_update] * 4


def test_tbl003_forged_cells_and_sets_are_refused_before_any_work(app, run):
    def request(component, prop, value):
        return {"inputs": [{"id": component, "property": prop, "value": value}],
                "state": [{"id": state.RUN, "property": "value", "value": "synthetic"}]}
    checks = views.value_checks()
    cell = {"row": 0, "column": 0, "column_id": "id", "row_id": 10 ** 9}
    assert "has no example 1000000000" in filters.check_request(request(examples_table.TABLE, "active_cell", cell), checks)
    assert "a dict" in filters.check_request(request(examples_table.TABLE, "active_cell", [1]), checks)
    assert "has no example" in filters.check_request(request(state.CHOSEN, "data", [0, 10 ** 9]), checks)
    assert filters.check_request(request(state.CHOSEN, "data", [0, 1]), checks) is None
    with pytest.raises(filters.Refused, match="has no example"):
        filters.example_ids(run, [0, 10 ** 9])
    with pytest.raises(filters.Refused, match="whole number"):
        filters.example_ids(run, [0, "1"])
    with pytest.raises(filters.Refused, match="a list"):
        filters.example_ids(run, {"a": 1})
    assert filters.example_ids(run, [3, 3, 1]) == [3, 1] and filters.example_ids(run, None) is None
    _, _, _, note = examples_table.table_rows("synthetic", [], ALL_SPLITS, ALL_HANDS, "all", None, [1, "x"])
    assert note.startswith("an example id is a whole number")


def test_sel002_a_lasso_in_paths_or_last_activations_chooses_a_set_the_others_show(app, run):
    frame = data.examples(run)
    ids = frame["example_id"].to_numpy()[[2, 7, 11]].tolist()
    lasso = {"points": [{"customdata": i} for i in ids] + [{"customdata": ids[0]}, {"customdata": -1}],
             "lassoPoints": {"x": [0, 1, 1], "y": [0, 0, 1]}}
    # the lasso's points become ids in the browser (assets/lens-selection.js; browser test brsel001):
    # registered for both graphs, the points themselves never sent
    choosers = [entry for entry in app._callback_list if entry.get("clientside_function")
                and entry["inputs"][0]["property"] == "selectedData"]
    assert sorted(entry["inputs"][0]["id"] for entry in choosers) == sorted([last_step.GRAPH, paths.GRAPH])
    assert all(entry["output"].startswith(f"{state.CHOSEN}.data") for entry in choosers)
    assert lasso["points"]
    # the table lists the set; the paths draw it in colour, the rest faded; last activations the same
    _, rows, _, note = examples_table.table_rows("synthetic", [], ALL_SPLITS, ALL_HANDS, "all", None, ids)
    assert sorted(r["id"] for r in rows) == sorted(ids) and "chosen set" in note
    figure = paths.paths_view_figure("synthetic", [], ALL_SPLITS, ALL_HANDS, "all", None, "ae", "2", [],
                                     None, None, ids)
    coloured = {int(i) for t in figure["data"] if t.get("legendgroup") != "other"
                for i in t["customdata"] if i >= 0}
    assert coloured == set(ids)
    ends = last_step.last_step_view_figure("synthetic", [], ALL_SPLITS, ALL_HANDS, "all", None, "ae2", "class",
                                           [], None, None, None, ids)
    outside = next(t for t in ends["data"] if t["name"] == "outside the selection")
    assert len(decoded(outside["x"])) == len(frame) - len(ids)


def test_sel003_the_clear_control_drops_the_chosen_set_and_the_bar_says_how_many(app):
    clear = [entry["callback"].__wrapped__ for key, entry in app.callback_map.items()
             if state.CHOSEN in key and "selection-clear-set" in str(entry.get("inputs"))]
    assert len(clear) == 1 and clear[0](1) is None
    from dashboard import layout
    assert layout.chosen_text("synthetic", [1, 2, 3]).startswith("3 examples chosen")
    assert layout.chosen_text("synthetic", None) == ""


@pytest.fixture
def two_states(tmp_path_factory, synthetic_runs_dir):
    from linked_runs import two_state_runs
    folder = two_state_runs(tmp_path_factory.mktemp("two-states") / "runs", synthetic_runs_dir)
    previous = data.runs_dir()
    data.configure(folder)
    yield folder
    data.configure(previous)


def test_lyr001_paths_and_last_activations_offer_the_layer_and_tensor_pairs_the_run_projected(two_states):
    from linked_runs import SECOND
    from dashboard.views import controls
    run = data.get_run("synthetic")
    last = data.last_layer(run)
    assert data.projection_states(run.manifest) == [f"{last}:h", "0:c"]
    options, note = controls.states_options("synthetic", "paths")
    assert [o["value"] for o in options] == [controls.FIRST_STATES, "0:c"] and note == ""   # the first, ticked
    assert options[0]["label"] == f"layer {last} (last) · h (hidden state)"
    assert options[1]["label"].startswith("layer 0") and options[1]["label"].endswith(" · c (cell state)")
    own = paths.paths_view_figure("synthetic", [], ALL_SPLITS, ALL_HANDS, "all", None, "pca", "2", [])
    other = paths.paths_view_figure("synthetic", [], ALL_SPLITS, ALL_HANDS, "all", None, "pca", "2", [],
                                    None, None, None, "0:c")
    assert other["layout"]["title"]["text"].startswith("PCA 2-D of layer 0 · c (cell state)")
    assert own["layout"]["title"]["text"].startswith(f"PCA 2-D of layer {last} · h (hidden state)")
    assert paths.chosen_projection(run.manifest, "ae", "2", "0:c") == SECOND        # the pair has only PCA
    assert paths.chosen_projection(run.manifest, "ae", "2", None) == "ae2"
    assert paths.chosen_projection(run.manifest, "ae", "2", controls.FIRST_STATES) == "ae2"
    assert last_step.chosen_projection(run.manifest, "ae2", controls.FIRST_STATES) == "ae2"
    assert last_step.chosen_projection(run.manifest, "ae2", "0:c") == SECOND
    assert not np.allclose(decoded(own["data"][0]["x"])[:5], decoded(other["data"][0]["x"])[:5], equal_nan=True)
    refused = paths.paths_view_figure("synthetic", [], ALL_SPLITS, ALL_HANDS, "all", None, "pca", "2", [],
                                      None, None, None, "7:forget_gate")
    assert "has no projections of '7:forget_gate'" in refused["layout"]["annotations"][0]["text"]


def test_lyr002_with_one_projected_pair_the_view_says_so_and_how_to_picture_another(app, synthetic_runs_dir):
    from dashboard.views import controls
    data.configure(synthetic_runs_dir)
    options, note = controls.states_options("synthetic", "paths")
    assert len(options) == 1 and "one layer's one tensor per run" in note
    assert "python -m pipeline project synthetic --layer L --state c" in note


def test_txt001_a_phrase_that_is_not_found_says_so_beside_the_search(app):
    from dashboard.views import text_heatmap
    assert text_heatmap.search_note(text_heatmap.FIND, "no such phrase", None) == "'no such phrase' does not occur in the text"
    assert text_heatmap.search_note(text_heatmap.SEARCH, "x" * 60, None).startswith("'" + "x" * 37 + "...'")
    assert text_heatmap.search_note(text_heatmap.FIND, "def", [10, 13]) == ""            # found: nothing to say
    assert text_heatmap.search_note(text_heatmap.FORWARD, "def", None) == ""             # paging is no search
    writers = [key for key in app.callback_map if f"{text_heatmap.SEARCH_NOTE}.children" in key]
    assert len(writers) == 1 and f"{text_heatmap.POS}.value" in writers[0]               # the move callback says it


SIGN_VIEWS = ("paths", "last_step", "inspector", "examples_table", "confusion", "decisive", "compare", "gates",
              "cells", "training", "film", "study")


def _uncued(component, cued: bool = False) -> list[str]:
    """Ids of the graphs and callback-filled lists under ``component`` that no dcc.Loading with a
    delay of at least 300 ms wraps (no delay: a fast answer flashes a spinner)."""
    from dash import dash_table, dcc
    if isinstance(component, dcc.Loading):
        cued = cued or (getattr(component, "delay_show", 0) or 0) >= 300
    found = []
    if isinstance(component, (dcc.Graph, dash_table.DataTable)) and not cued:
        found.append(component.id)
    children = getattr(component, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children]:
        if hasattr(child, "to_plotly_json"):
            found += _uncued(child, cued)
    return found


def test_load001_every_sign_view_shows_a_delayed_loading_cue_over_its_graphs():
    from dash import dcc
    for name in SIGN_VIEWS:
        view = getattr(views, name)
        layout = view.layout()
        assert _uncued(layout) == [], name
        loadings = [c for c in _walk(layout) if isinstance(c, dcc.Loading)]
        assert loadings and all((c.delay_show or 0) >= 300 for c in loadings), name
    # the study view draws no graph: its body is cued itself
    from dashboard.views import study
    assert any(isinstance(c, dcc.Loading) and getattr(c.children, "id", None) == study.BODY
               for c in _walk(study.layout()))


def _walk(component):
    yield component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children]:
        if hasattr(child, "to_plotly_json"):
            yield from _walk(child)


@pytest.fixture
def stacked(stacked_runs_dir):
    previous = data.runs_dir()
    data.configure(stacked_runs_dir)
    yield data.get_run("stacked")
    data.configure(previous)


def test_lyr003_the_film_pictures_either_layer_of_a_stacked_run(stacked):
    from linked_runs import LOWER, STACKED
    from dashboard.views import film
    assert [layer.index for layer in stacked.layers] == [0, 1]
    options, note = controls.states_options(STACKED, "paths", 2)
    assert [o["value"] for o in options] == [controls.FIRST_STATES, "0:h"] and note == ""
    assert [o["value"] for o in film.projection_options(STACKED, "0:h")] == [LOWER]
    assert {"ae2", "pca2"} <= {o["value"] for o in film.projection_options(STACKED, None)}
    everything = ([], ALL_SPLITS, ALL_HANDS, "all")
    lower = go.Figure(decoded(film.film_figure(STACKED, *everything, "ae2", "end", None, "0:h")))
    upper = go.Figure(decoded(film.film_figure(STACKED, *everything, "pca2", "end", None, None)))
    assert f"projection '{LOWER}' of layer 0 · h (hidden state)" in lower.layout.title.text
    assert "projection 'pca2' of layer 1 (last) · h (hidden state)" in upper.layout.title.text
    # the heads of the last frame are the examples' last steps in layer 0's own projection
    points = data.projection(stacked, LOWER)
    ends = points.groupby("example_id").tail(1).set_index("example_id")["x"]
    heads = lower.data[1]
    ids = [row[0] for row in heads.customdata]
    np.testing.assert_allclose(np.asarray(heads.x), ends.loc[ids].to_numpy(), rtol=1e-6)
    refused = film.film_figure(STACKED, *everything, "ae2", "end", None, "0:c")
    assert "has no projections of '0:c'" in refused["layout"]["annotations"][0]["text"]
    assert "'0:c'" in filters.check_request(
        {"inputs": [{"id": film.STATES, "property": "value", "value": "0:c"}],
         "state": [{"id": state.RUN, "property": "value", "value": STACKED}]}, views.value_checks())


def test_lyr004_the_inspector_looks_at_the_chosen_layer_for_its_path_and_neighbours(stacked):
    from linked_runs import LOWER, STACKED
    from dashboard.views import inspector
    example = int(data.examples(stacked)["example_id"].iat[3])
    path = inspector.inspect_path(STACKED, example, "ae2", False, "0:h")
    assert path.layout.title.text == "in layer 0 · h (hidden state)"
    assert path.layout.xaxis.title.text == "PCA 1" and path.layout.yaxis.title.text == "PCA 2"
    own = next(trace for trace in path.data if trace.name == f"example {example}")
    points = data.projection(stacked, LOWER)
    np.testing.assert_allclose(own.x, points[points["example_id"] == example]["x"].to_numpy(), rtol=1e-6)
    upper = inspector.inspect_path(STACKED, example, "ae2", False, None)
    assert upper.layout.title.text == "in layer 1 (last) · h (hidden state)"
    assert upper.layout.xaxis.title.text == "Autoencoder code 1"
    for pair, layer in (("0:h", 0), (None, 1)):
        _, links = inspector.inspect_summary(STACKED, example, pair)
        assert inspector.nearest_title(STACKED, pair).startswith(f"Nearest examples (last step of layer {layer}")
        hidden = data.last_step_matrix(stacked, layer, "h")
        position = int(np.searchsorted(data.examples(stacked)["example_id"], example))
        distance = np.linalg.norm(hidden - hidden[position], axis=1)
        distance[position] = np.inf
        expected = data.examples(stacked)["example_id"].to_numpy()[np.argsort(distance, kind="stable")[:8]]
        assert [child.id["index"] for child in links.children] == expected.tolist()
    meta, _ = inspector.inspect_summary(STACKED, example, "3:h")
    assert "has no projections of '3:h'" in meta.children


def test_axs001_inputs_and_distance_plots_name_their_axes():
    import pandas as pd
    from dashboard.figures.compare import aligned_paths_figure
    from dashboard.figures.inspector import example_path_figure, inputs_figure
    from dashboard.figures.why import whatif_figure
    steps = pd.DataFrame({"t": [0, 1, 2], "left_x": [0.1, 0.2, 0.3], "right_x": [0.3, 0.2, 0.1],
                          "right_roll": [0.0, 0.5, 1.0]})
    inputs = inputs_figure(steps, {"left": ["left_x"], "right": ["right_x", "right_roll"]})
    assert inputs.layout.xaxis.title.text == "time step"
    assert inputs.layout.yaxis.title.text == inputs.layout.yaxis2.title.text == "value (as recorded)"
    points = pd.DataFrame({"example_id": [1, 1, 2, 2], "t": [0, 1, 0, 1], "x": [0.0, 1.0, 0.5, 0.2],
                           "y": [0.0, 1.0, 0.3, 0.1]})
    labels = pd.Series(["a", "a"], index=[1, 2])
    path = example_path_figure(points, labels, 1, "a", "a", symlog=True, axis_title="PCA")
    assert (path.layout.xaxis.title.text, path.layout.yaxis.title.text) == ("PCA 1 (symlog)", "PCA 2 (symlog)")
    pair = aligned_paths_figure(points, points, labels, ["a"], "one", "two", 0.1, "Autoencoder code")
    assert pair.layout.xaxis.title.text == pair.layout.xaxis2.title.text == "Autoencoder code 1"
    assert pair.layout.yaxis.title.text == "Autoencoder code 2"
    old = {"probabilities": np.array([[0.5, 0.3, 0.2], [0.6, 0.3, 0.1]]), "h": np.zeros((2, 3))}
    new = {"probabilities": np.array([[0.2, 0.2, 0.6]]), "h": np.ones((1, 3))}
    context = pd.DataFrame({"x": [0.0, 1.0], "y": [0.0, 1.0], "label": ["a", "b"]})
    whatif = whatif_figure(old, new, 1, 0, ["a", "b", "c"], np.eye(3)[:2], np.zeros(3), "cut", (1, 2), context)
    assert whatif["layout"]["xaxis2"]["title"]["text"] == "PCA 1"
    assert whatif["layout"]["yaxis2"]["title"]["text"] == "PCA 2"


def test_sel004_the_film_and_the_cells_heatmap_show_only_the_chosen_set(app, run):
    from dashboard.views import cells, film
    frame = data.examples(run)
    ids = frame["example_id"].to_numpy()[[1, 5, 9]].tolist()
    movie = film.film_figure("synthetic", [], ALL_SPLITS, ALL_HANDS, "all", None, "end", None, None, ids)
    title = movie["layout"]["title"]["text"]
    assert "3 of 3 chosen examples" in title, title
    everyone = film.film_figure("synthetic", [], ALL_SPLITS, ALL_HANDS, "all", None, "end")
    assert f"of {len(frame)} filtered examples" in everyone["layout"]["title"]["text"]
    heatmap = go.Figure(decoded(cells.heatmap_figure("synthetic", [], ALL_SPLITS, ALL_HANDS, "all", "last", "h", 0, "end",
                                                   None, ids)))
    from dashboard.figures.cells import example_id_from_row_label
    rows = next(trace.y for trace in heatmap.data if trace.type == "heatmap")
    assert {example_id_from_row_label(row) for row in rows} == set(ids)
    # a set the filters hide says so
    other_class = [name for name in run.classes if name not in set(frame.loc[frame["example_id"].isin(ids), "label"])]
    hidden = cells.heatmap_figure("synthetic", other_class[:1], ALL_SPLITS, ALL_HANDS, "all", "last", "h", 0, "end",
                                  None, ids)
    assert "none of the 3 chosen examples pass the filters" in hidden.layout.annotations[0].text
