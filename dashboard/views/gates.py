"""Gate saturation view: how often the sigmoid gates sit near 0 or 1, over time and per cell."""

from __future__ import annotations

import dash
import numpy as np
from dash import Input, Output, dcc, html

from dashboard import data, filters, state, views
from dashboard.figures import gates as figures
from dashboard.figures import as_sent, message_figure
from dashboard.figures.alignment import aligned_positions
from dashboard.views.controls import (GRAPH_CONFIG, LAST_LAYER, alignment_switch, chosen_layer, field,
                                      layer_options, layer_picker)
from pipeline import runformat

VIEW_ID = "gates"
TITLE = "Gate saturation"

LAYER, ALIGN, THRESHOLDS = "gates-layer", "gates-align", "gates-thresholds"
GATE, STATISTIC, ORDER = "gates-gate", "gates-statistic", "gates-order"
OVER_TIME, CELLS, HISTOGRAM = "gates-over-time", "gates-cells", "gates-histogram"

#: The layer picker's options are the run's layers; the thresholds are two numbers in [0, 1].
VALUE_CHECKS = {(LAYER, "value"): filters.layer, (THRESHOLDS, "value"): filters.numbers(2, 0.0, 1.0)}

URL_PARAMS = [
    state.UrlParam("gates_layer", LAYER, "value", LAST_LAYER),
    state.UrlParam("gates_align", ALIGN, "value", "end"),
    state.UrlParam("gates_gate", GATE, "value", "forget_gate"),
]


def applies_to(manifest: runformat.Manifest) -> bool:
    """Classification runs that recorded the sigmoid gates of a layer (an import of h and c only
    has none)."""
    return manifest.is_classification and bool(gate_layers(manifest))


def gate_layers(manifest: runformat.Manifest) -> list[int]:
    return [layer.index for layer in manifest.layers
            if set(runformat.SIGMOID_GATES) <= set(layer.tensors)]


def _gate_layer(run: runformat.Run, value) -> int:
    """The picked layer if it has gates, else the last layer that has them."""
    layer = chosen_layer(run, value)
    layers = gate_layers(run.manifest)
    if not layers:
        raise runformat.RunError(f"run {run.run_id!r} recorded no gate activations "
                                 f"(its tensors: {', '.join(run.layers[-1].tensors) if run.layers else 'none'})")
    return layer if layer in layers else layers[-1]


def layout():
    return html.Div(children=[
        html.Div(className="view-options", children=[
            layer_picker(LAYER),
            alignment_switch(ALIGN),
            field("Saturated below / above", html.Div(style={"width": "16em"}, children=dcc.RangeSlider(
                id=THRESHOLDS, min=0, max=1, step=0.01, value=[figures.DEFAULT_LOW, figures.DEFAULT_HIGH],
                marks={v: f"{v:g}" for v in (0, 0.1, 0.5, 0.9, 1)}, allowCross=False,
                tooltip={"placement": "bottom"}))),
        ]),
        dcc.Loading(dcc.Graph(id=OVER_TIME, config=GRAPH_CONFIG, className="graph-panel"), delay_show=300),
        html.Div(className="view-options", children=[
            field("Heatmap gate", dcc.RadioItems(id=GATE, value="forget_gate", inline=True, options=[
                {"label": figures.gate_label(g), "value": g} for g in figures.GATES])),
            field("Cell value", dcc.RadioItems(id=STATISTIC, value="saturated", inline=True, options=[
                {"label": label, "value": key} for key, label in figures.CELL_STATISTICS.items()])),
            field("Cells", dcc.RadioItems(id=ORDER, value="saturation", inline=True, options=[
                {"label": "most saturated first", "value": "saturation"},
                {"label": "by index", "value": "index"}])),
        ]),
        html.Div(style={"display": "grid", "gridTemplateColumns": "minmax(0, 3fr) minmax(0, 2fr)",
                        "gap": "1em"},
                 children=[dcc.Loading(dcc.Graph(id=CELLS, config=GRAPH_CONFIG), delay_show=300),
                           dcc.Loading(dcc.Graph(id=HISTOGRAM, config=GRAPH_CONFIG), delay_show=300)]),
    ])


def _filters(classes, splits, hands, correctness) -> tuple:
    return tuple(classes or ()), None if splits is None else tuple(splits), \
        None if hands is None else tuple(hands), correctness


@data.run_cached(maxsize=16)
def gate_summary(run: runformat.Run, layer: int, filters: tuple, align: str, low: float, high: float) -> dict:
    """Saturation by step and value histograms of the three sigmoid gates for the filtered examples."""
    frame = data.filtered_examples(run, *filters)
    rows, _, position, n_steps = aligned_positions(frame["row_start"], frame["length"], align)
    by_step, values = {}, {}
    for gate in figures.GATES:
        values[gate] = data.step_matrix(run, layer, gate)[rows]
        by_step[gate] = figures.saturation_by_step(values[gate], position, n_steps, low, high)
    edges, fractions = figures.gate_histograms(values)
    return {"by_step": by_step, "edges": edges, "fractions": fractions, "n_examples": len(frame)}


@data.run_cached(maxsize=16, shared=True)
def cell_grid(run: runformat.Run, layer: int, filters: tuple, align: str, gate: str, statistic: str,
              low: float, high: float) -> np.ndarray:
    frame = data.filtered_examples(run, *filters)
    rows, _, position, n_steps = aligned_positions(frame["row_start"], frame["length"], align)
    return figures.cell_step_matrix(data.step_matrix(run, layer, gate)[rows], position, n_steps,
                                    statistic, low, high)


def _checked(run_id, classes, splits, hands, correctness, thresholds):
    """The run, the filters and the thresholds, or raise ``runformat.RunError`` with what to change."""
    run = data.get_run(run_id)
    filters.numbers(2, 0.0, 1.0)(run, thresholds)
    chosen = _filters(*filters.filter_bar(run, classes, splits, hands, correctness))
    low, high = (float(v) for v in (thresholds or (figures.DEFAULT_LOW, figures.DEFAULT_HIGH)))
    if not low < high:
        raise runformat.RunError("choose a lower threshold below the upper one")
    if data.filtered_examples(run, *chosen).empty:
        raise runformat.RunError("no examples pass the filters")
    return run, chosen, low, high


def summary_figures(run_id, classes, splits, hands, correctness, layer, align, thresholds):
    """(saturation over time, histogram) for the filters and options."""
    try:
        run, filters, low, high = _checked(run_id, classes, splits, hands, correctness, thresholds)
        return _summary_scenes(run, _gate_layer(run, layer), filters, align, low, high)
    except runformat.RunError as error:
        return message_figure(str(error)), message_figure(str(error))


@data.run_cached(maxsize=16, shared=True)
def _summary_scenes(run: runformat.Run, layer: int, filters: tuple, align: str, low: float,
                    high: float) -> tuple:
    """Both figures as sent: plotly's validation alone costs ~140 ms per call."""
    summary = gate_summary(run, layer, filters, align, low, high)
    return (as_sent(figures.saturation_figure(summary["by_step"], align, low, high, summary["n_examples"],
                                              layer)),
            as_sent(figures.gate_histogram_figure(summary["edges"], summary["fractions"], low, high)))


def cells_figure(run_id, classes, splits, hands, correctness, layer, align, thresholds, gate, statistic,
                 order):
    try:
        run, filters, low, high = _checked(run_id, classes, splits, hands, correctness, thresholds)
        grid = cell_grid(run, _gate_layer(run, layer), filters, align, gate, statistic, low, high)
    except runformat.RunError as error:
        return message_figure(str(error))
    return figures.cell_heatmap_figure(grid, align, gate, statistic, order, low, high)


def register_callbacks(app: dash.Dash) -> None:
    @app.callback(Output(LAYER, "options"), Output(f"{LAYER}-box", "style"), Input(state.RUN, "value"))
    def show_layers(run_id):
        return layer_options(run_id)

    @app.callback(Output(OVER_TIME, "figure"), Output(HISTOGRAM, "figure"), *state.FILTER_INPUTS,
                  state.TAB_INPUT, Input(LAYER, "value"), Input(ALIGN, "value"), Input(THRESHOLDS, "value"))
    def update_summary(run_id, classes, splits, hands, correctness, tab, layer, align, thresholds):
        if views.is_hidden(VIEW_ID, tab):
            return dash.no_update, dash.no_update
        return summary_figures(run_id, classes, splits, hands, correctness, layer, align, thresholds)

    @app.callback(Output(CELLS, "figure"), *state.FILTER_INPUTS, state.TAB_INPUT, Input(LAYER, "value"),
                  Input(ALIGN, "value"), Input(THRESHOLDS, "value"), Input(GATE, "value"),
                  Input(STATISTIC, "value"), Input(ORDER, "value"))
    def update_cells(run_id, classes, splits, hands, correctness, tab, layer, align, thresholds, gate,
                     statistic, order):
        if views.is_hidden(VIEW_ID, tab):
            return dash.no_update
        return cells_figure(run_id, classes, splits, hands, correctness, layer, align, thresholds, gate,
                            statistic, order)
