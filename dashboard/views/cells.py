"""Cells view: one cell's activation for every filtered example over time, and the cells that best
separate the chosen classes (click a bar to show that cell, click a heatmap row to inspect it; the
selected example's row is marked)."""

from __future__ import annotations

import dash
import numpy as np
from dash import Input, Output, State, dcc, html

from dashboard import data, filters, state, views
from dashboard.figures import cells as figures
from dashboard.figures import message_figure, sent
from dashboard.figures.alignment import aligned_positions, example_rows, padded
from dashboard.views.controls import (GRAPH_CONFIG, LAST_LAYER, alignment_switch, chosen_layer, field,
                                      layer_options, layer_picker, register_layer_tick)
from pipeline import runformat

VIEW_ID = "cells"
TITLE = "Cells"

LAYER, KIND, UNIT, SUMMARY, ALIGN = "cells-layer", "cells-kind", "cells-unit", "cells-summary", "cells-align"
RANKING, HEATMAP = "cells-ranking", "cells-heatmap"
KINDS = {"h": "hidden state h", "c": "cell state c"}

VALUE_CHECKS = {(LAYER, "value"): filters.layer}     # the layer picker's options are the run's layers

URL_PARAMS = [
    state.UrlParam("cells_layer", LAYER, "value", LAST_LAYER),
    state.UrlParam("cells_kind", KIND, "value", "h"),
    state.UrlParam("cell", UNIT, "value", 0, "int"),
    state.UrlParam("cells_rank", SUMMARY, "value", "last"),
]


def applies_to(manifest: runformat.Manifest) -> bool:
    """Classification runs: the ranking compares the classes' examples."""
    return manifest.is_classification


def layout():
    return html.Div(children=[
        html.Div(className="view-options", children=[
            layer_picker(LAYER),
            field("Tensor", dcc.RadioItems(id=KIND, value="h", inline=True,
                                           options=[{"label": label, "value": key}
                                                    for key, label in KINDS.items()])),
            field("Cell u", dcc.Input(id=UNIT, type="number", value=0, min=0, step=1, debounce=True,
                                      style={"width": "5em"})),
            field("Rank cells by", dcc.RadioItems(id=SUMMARY, value="last", inline=True, options=[
                {"label": label, "value": key} for key, label in figures.SUMMARIES.items()])),
            alignment_switch(ALIGN),
        ]),
        html.Div(style={"display": "grid", "gridTemplateColumns": "minmax(0, 1fr) minmax(0, 3fr)",
                        "gap": "1em"},
                 children=[dcc.Loading(dcc.Graph(id=RANKING, config=GRAPH_CONFIG), delay_show=300),
                           dcc.Loading(dcc.Graph(id=HEATMAP, config=GRAPH_CONFIG), delay_show=300)]),
    ])


@data.run_cached(maxsize=8, shared=True)
def example_summaries(run: runformat.Run, layer: int, kind: str, summary: str) -> np.ndarray:
    """(examples, units): every example's last-step value or mean over time, in data.examples order
    (the run's precomputed table when it has one, else from every step: both summaries of a
    tensor from one read of its table, kept in the process)."""
    precomputed = data.example_states(run, layer, kind, summary)
    if precomputed is not None:
        return precomputed
    values = data.step_matrix(run, layer, kind)
    if summary == "last":
        return np.ascontiguousarray(values[data.last_step_rows(run)], dtype=np.float32)
    frame = data.examples(run)
    rows, _, _ = example_rows(frame["row_start"], frame["length"])
    return figures.per_example_summary(np.asarray(values[rows], np.float32), frame["length"],
                                       summary).astype(np.float32)


def classifier_run(run_id) -> runformat.Run:
    run = data.get_run(run_id)
    if not applies_to(run.manifest):
        raise runformat.RunError(f"the cells view compares classes; run {run.run_id!r} is a language model's "
                                 f"(see Text heatmap for its cells)")
    return run


def _unit(run: runformat.Run, layer: int, value) -> int:
    units = {item.index: item.units for item in run.layers}.get(layer)
    try:
        value = int(value)
    except (TypeError, ValueError):
        return 0
    return value if units is None or 0 <= value < units else 0


def ranking_figure(run_id, classes, splits, hands, correctness, layer, kind, summary, unit):
    """Bars of the cells with the highest F statistic across the filtered examples' classes."""
    try:
        run = classifier_run(run_id)
        layer = chosen_layer(run, layer)
        frame = data.filtered_examples(run, *filters.filter_bar(run, classes, splits, hands, correctness))
        summaries = example_summaries(run, layer, kind, summary)
        index = frame.index.to_numpy()
        if not np.array_equal(index, np.arange(len(summaries))):    # every example: no copy
            summaries = summaries[index]
        scores = figures.separation_scores(summaries, frame["label"].to_numpy())
    except runformat.RunError as error:
        return message_figure(str(error))
    return figures.ranking_figure(scores, summary, kind, _unit(run, layer, unit),
                                  n_classes=frame["label"].nunique())


def heatmap_figure(run_id, classes, splits, hands, correctness, layer, kind, unit, align, selected=None,
                   chosen=None):
    """One cell for the filtered examples (rows grouped by class, decimated past MAX_ROWS, the
    ``selected`` example kept and marked); ``chosen``: a box or lasso's set (only those examples)."""
    try:
        run = classifier_run(run_id)
        layer = chosen_layer(run, layer)
        unit = _unit(run, layer, unit)
        selected = filters.example_id(run, selected)
        filtered = filters.filter_bar(run, classes, splits, hands, correctness)
        return _heatmap_scene(run, *filtered, layer, kind, unit, align, selected, filters.example_ids(run, chosen))
    except runformat.RunError as error:
        return message_figure(str(error))


@data.run_cached(maxsize=32, shared=True)
def _heatmap_scene(run, classes, splits, hands, correctness, layer, kind, unit, align, selected, chosen) -> dict:
    """The heatmap as sent, memoised: tab switches and clicks elsewhere ask for it again."""
    frame = data.filtered_examples(run, classes, splits, hands, correctness)
    if frame.empty:
        raise runformat.RunError("no examples pass the filters")
    frame = data.keep_chosen(frame, chosen)
    rows_of = frame.iloc[figures.class_sorted_rows(frame["label"], run.classes, frame["example_id"], keep=selected)]
    column = data.step_matrix(run, layer, kind, [unit])[:, 0]
    rows, owner, position, n_steps = aligned_positions(rows_of["row_start"], rows_of["length"], align)
    grid = padded(column[rows], owner, position, len(rows_of), n_steps)
    return sent(figures.cell_activation_spec(grid, rows_of["label"].to_numpy(), rows_of["example_id"].to_numpy(),
                                             align, unit, kind, n_total=len(frame), selected=selected))


def last_unit(run_id, layer) -> int | None:
    """The highest cell index of the layer (the cell input's max)."""
    try:
        run = data.get_run(run_id)
    except runformat.RunError:
        return None
    units = {item.index: item.units for item in run.layers}.get(chosen_layer(run, layer))
    return None if not units else units - 1


def unit_from_click(click_data) -> int | None:
    """The cell a click on the ranking bars names (bars carry the unit in customdata)."""
    if not click_data or not click_data.get("points"):
        return None
    custom = click_data["points"][0].get("customdata")
    return None if custom is None else int(custom[0] if isinstance(custom, (list, tuple)) else custom)


def example_from_heatmap_click(click_data) -> int | None:
    if not click_data or not click_data.get("points"):
        return None
    return figures.example_id_from_row_label(click_data["points"][0].get("y"))


def register_callbacks(app: dash.Dash) -> None:
    register_layer_tick(app, LAYER)
    @app.callback(Output(LAYER, "options"), Output(f"{LAYER}-box", "style"), Input(state.RUN, "value"))
    def show_layers(run_id):
        return layer_options(run_id)

    @app.callback(Output(UNIT, "max"), Input(state.RUN, "value"), Input(LAYER, "value"))
    def limit_units(run_id, layer):
        return last_unit(run_id, layer)

    @app.callback(Output(RANKING, "figure"), *state.FILTER_INPUTS, state.TAB_INPUT, Input(LAYER, "value"),
                  Input(KIND, "value"), Input(SUMMARY, "value"), Input(UNIT, "value"))
    def update_ranking(run_id, classes, splits, hands, correctness, tab, layer, kind, summary, unit):
        if views.is_hidden(VIEW_ID, tab):
            return dash.no_update
        return ranking_figure(run_id, classes, splits, hands, correctness, layer, kind, summary, unit)

    @app.callback(Output(HEATMAP, "figure"), *state.FILTER_INPUTS, state.TAB_INPUT, Input(LAYER, "value"),
                  Input(KIND, "value"), Input(UNIT, "value"), Input(ALIGN, "value"), state.SELECTED_INPUT,
                  state.CHOSEN_INPUT)
    def update_heatmap(run_id, classes, splits, hands, correctness, tab, layer, kind, unit, align, selected=None,
                       chosen=None):
        if views.is_hidden(VIEW_ID, tab):
            return dash.no_update
        return heatmap_figure(run_id, classes, splits, hands, correctness, layer, kind, unit, align, selected,
                              chosen)

    @app.callback(Output(UNIT, "value", allow_duplicate=True), Input(RANKING, "clickData"),
                  State(UNIT, "value"), prevent_initial_call=True)
    def pick_ranked_cell(click_data, current):
        unit = unit_from_click(click_data)
        return dash.no_update if unit is None or unit == current else unit

    @app.callback(Output(state.SELECTED, "data", allow_duplicate=True), Input(HEATMAP, "clickData"),
                  prevent_initial_call=True)
    def select_example(click_data):
        example_id = example_from_heatmap_click(click_data)
        return dash.no_update if example_id is None else example_id
