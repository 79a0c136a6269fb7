"""Issue 14's linked views on the small real synthetic run: the examples table (follows the filter
bar and a chosen set, a click on a row selects its example), box/lasso selection shared by the
paths, last activations and the table (a clear control drops it), and the checks of their
values. View functions and registered callbacks are called as functions."""

from __future__ import annotations

import dash
import numpy as np
import pytest

from factories import decoded
from dashboard import data, filters, state, views
from dashboard.app import create_app
from dashboard.views import examples_table, last_step, paths

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
    assert [o["value"] for o in options] == [f"{last}:h", "0:c"] and note == ""
    assert options[1]["label"].startswith("layer 0") and options[1]["label"].endswith(" · c (cell state)")
    own = paths.paths_view_figure("synthetic", [], ALL_SPLITS, ALL_HANDS, "all", None, "pca", "2", [])
    other = paths.paths_view_figure("synthetic", [], ALL_SPLITS, ALL_HANDS, "all", None, "pca", "2", [],
                                    None, None, None, "0:c")
    assert other["layout"]["title"]["text"].startswith("PCA 2-D of layer 0 · c (cell state)")
    assert own["layout"]["title"]["text"].startswith(f"PCA 2-D of layer {last} · h (hidden state)")
    assert paths.chosen_projection(run.manifest, "ae", "2", "0:c") == SECOND        # the pair has only PCA
    assert paths.chosen_projection(run.manifest, "ae", "2", None) == "ae2"
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
