"""Attention view: where an attention-pooling classifier puts its weight (steps/attention.parquet).

For runs whose manifest says ``attention: pooling`` (a classifier trained with ``--attention``, or
an import with per-step ``attention``): (a) the selected example's weights over time above its
input channels and its confidence in the true and predicted class; (b) per class, the mean weight
over time, for the classes chosen in the filter bar (else the selected example's true and
predicted class, else the first few); (c) a heatmap of the filtered examples by time, sorted by
class with mistakes marked. Weights are shown relative to an even share (weight x length,
``figures.attention``); time aligned at the sign's start, its end or as a share of it. A click on
the heatmap selects an example.
"""

from __future__ import annotations

import dash
import numpy as np
import pandas as pd
from dash import Input, Output, dcc, html

from dashboard import data, filters, state
from dashboard.figures import message_figure
from dashboard.figures.attention import (ALIGNS, class_means, class_means_figure, example_attention_figure,
                                         examples_heatmap_figure)
from dashboard.views import is_hidden
from dashboard.views.controls import GRAPH_CONFIG
from pipeline import runformat

VIEW_ID = "attention"
TITLE = "Attention"

ALIGN = "attention-align"
EXAMPLE = "attention-example"
CLASSES = "attention-classes"
HEATMAP = "attention-heatmap"
ALIGN_OPTIONS = [{"label": "from the start", "value": "start"}, {"label": "to the end", "value": "end"},
                 {"label": "share of the sign", "value": "share"}]
DEFAULT_CLASSES = 5
NOTHING_SELECTED = "Select an example (click a row of the heatmap below, or one in any view) to see its weights."

URL_PARAMS = [state.UrlParam("attention_align", ALIGN, "value", "end")]


def applies_to(manifest: runformat.Manifest) -> bool:
    """Classification runs that store pooling attention weights per step."""
    return manifest.is_classification and manifest.attention == "pooling"


def layout():
    graph = {"config": GRAPH_CONFIG}
    return html.Div(className="view-body", children=[
        html.Div(className="view-options", children=[
            dcc.RadioItems(id=ALIGN, value="end", inline=True, options=ALIGN_OPTIONS),
            html.Span("Weights as weight x length: 1 is an even share of the sign. Click a heatmap row "
                      "to select its example.", className="hint"),
        ]),
        html.Div(className="panel", children=[
            html.H3("The selected example: attention, inputs and confidence"),
            dcc.Loading(dcc.Graph(id=EXAMPLE, className="graph-tall", **graph), delay_show=300)]),
        html.Div(className="panel", children=[
            html.H3("Mean attention per class over time"),
            dcc.Loading(dcc.Graph(id=CLASSES, className="graph-panel", **graph), delay_show=300)]),
        html.Div(className="panel", children=[
            html.H3("Filtered examples by time"),
            dcc.Loading(dcc.Graph(id=HEATMAP, **graph), delay_show=300)]),
    ])


def register_callbacks(app: dash.Dash) -> None:
    @app.callback(Output(EXAMPLE, "figure"), Input(state.RUN, "value"), state.TAB_INPUT, state.SELECTED_INPUT)
    def draw_example(run_id, tab, selected):
        return dash.no_update if is_hidden(VIEW_ID, tab) else example_view(run_id, selected)

    @app.callback(Output(CLASSES, "figure"), *state.FILTER_INPUTS, state.TAB_INPUT, state.SELECTED_INPUT,
                  Input(ALIGN, "value"))
    def draw_classes(run_id, classes, splits, hands, correctness, tab, selected, align):
        if is_hidden(VIEW_ID, tab):
            return dash.no_update
        return classes_view(run_id, classes, splits, hands, correctness, selected, align)

    @app.callback(Output(HEATMAP, "figure"), *state.FILTER_INPUTS, state.TAB_INPUT, state.SELECTED_INPUT,
                  Input(ALIGN, "value"))
    def draw_heatmap(run_id, classes, splits, hands, correctness, tab, selected, align):
        if is_hidden(VIEW_ID, tab):
            return dash.no_update
        return heatmap_view(run_id, classes, splits, hands, correctness, selected, align)

    @app.callback(Output(state.SELECTED, "data", allow_duplicate=True), Input(HEATMAP, "clickData"),
                  prevent_initial_call=True)
    def select(click):
        example = state.example_from_click(click)
        return dash.no_update if example is None else example


@data.run_cached(maxsize=4)
def attention_table(run: runformat.Run) -> pd.DataFrame:
    """steps/attention.parquet: example_id, t, attention (one row per stored step)."""
    if run.manifest.attention != "pooling" or not run.has(runformat.ATTENTION_FILE):
        raise runformat.RunError(f"run {run.run_id[:60]!r} stores no attention weights per step (train with "
                                 f"--attention, or import a per-step 'attention' field)")
    return run.read_table(runformat.ATTENTION_FILE)


def example_view(run_id, selected):
    if selected is None:
        return message_figure(NOTHING_SELECTED)
    try:
        run = data.get_run(run_id)
        example = filters.example_id(run, selected)
        row = data.example_row(run, example)
        weights = data.example_steps(attention_table(run), run, example)
        inputs, channels = _inputs(run, example, len(weights))
        true_prob, predicted_prob = _confidence(run, row, len(weights))
    except runformat.RunError as error:
        return message_figure(str(error))
    return example_attention_figure(weights["t"].to_numpy(), weights["attention"].to_numpy(np.float64), inputs,
                                    channels, true_prob, predicted_prob, str(row["label"]),
                                    str(row.get("prediction", row["label"])), example)


def _inputs(run: runformat.Run, example: int, length: int) -> tuple[np.ndarray, list[str]]:
    """The example's input channels (steps, channels), or none when the run kept no inputs."""
    if not data.has_inputs(run.manifest):
        return np.zeros((length, 0), np.float32), []
    steps = data.example_steps(data.inputs(run), run, example)
    channels = list(run.manifest.get("channels") or [c for c in steps.columns if c not in ("example_id", "t")])
    return steps[channels].to_numpy(np.float32), channels


def _confidence(run: runformat.Run, row: pd.Series, length: int) -> tuple[np.ndarray, np.ndarray]:
    """The true and the predicted class's probability after every step (NaN without predictions)."""
    if not data.has_predictions(run.manifest):
        return np.full(length, np.nan), np.full(length, np.nan)
    example = int(row["example_id"])
    true_prob, _ = data.class_probability(run, example, int(row["label_index"]))
    predicted_prob, _ = data.class_probability(run, example, int(row["prediction_index"]))
    return true_prob, predicted_prob


def shown_classes(run: runformat.Run, chosen: list[str], row: pd.Series | None) -> tuple[list[str], str]:
    """The classes the per-class panel draws and why those: the filter bar's, else the selected
    example's true and predicted class, else the first ``DEFAULT_CLASSES`` of the run."""
    if chosen:
        return list(chosen), "the classes chosen in the filter bar"
    if row is not None:
        names = list(dict.fromkeys([str(row["label"]), str(row.get("prediction", row["label"]))]))
        return names, "the selected example's true and predicted class (choose classes in the filter bar)"
    return list(run.classes[:DEFAULT_CLASSES]), (f"the first {DEFAULT_CLASSES} classes (choose classes in the "
                                                 f"filter bar, or select an example)")


def _filtered(run_id, classes, splits, hands, correctness, selected, align):
    """The run, its checked classes and selection, the filtered examples and the attention table
    (both panels of the filtered examples start here; a RunError says what is wrong)."""
    run = data.get_run(run_id)
    classes, splits, hands, correctness = filters.filter_bar(run, classes, splits, hands, correctness)
    selected = filters.example_id(run, selected)
    filters.one_of(*ALIGNS)(run, align)
    frame = data.filtered_examples(run, classes, splits, hands, correctness)
    return run, classes, selected, frame, attention_table(run)


def classes_view(run_id, classes, splits, hands, correctness, selected, align):
    try:
        run, classes, selected, frame, table = _filtered(run_id, classes, splits, hands, correctness, selected, align)
    except runformat.RunError as error:
        return message_figure(str(error))
    row = data.example_row(run, selected) if selected is not None else None
    names, why = shown_classes(run, classes or [], row)
    frame = frame[frame["label"].isin(names)]
    if frame.empty:
        return message_figure(f"No filtered examples of {', '.join(names[:5])}.")
    means = class_means(table, frame, align or "end")
    return class_means_figure(means, names, align or "end", title=f"{len(frame):,} filtered examples of {why}")


def heatmap_view(run_id, classes, splits, hands, correctness, selected, align):
    try:
        run, _, selected, _, _ = _filtered(run_id, classes, splits, hands, correctness, selected, align)
    except runformat.RunError as error:
        return message_figure(str(error))
    return _examples_heatmap(run, classes, splits, hands, correctness, selected, align or "end")


@data.run_cached(maxsize=16)
def _examples_heatmap(run, classes, splits, hands, correctness, selected, align):
    """Memoised per run, filters, selection and alignment (the values checked by ``_filtered``):
    at Auslan size the heatmap of every example takes ~160 ms to build (load 1), and tab switches, clicks
    elsewhere and other users ask for it again."""
    frame = data.filtered_examples(run, classes, splits, hands, correctness)
    return examples_heatmap_figure(attention_table(run), frame, run.classes, align, selected)
