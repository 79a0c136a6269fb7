"""Confusion view: the confusion matrix of one split and per-class accuracy in every split.

The classes are ordered by similarity (``figures.confusion.similarity_order``, computed once per
run over all its examples, so the order stays put when the split changes). A click on a cell
filters the other views to that cell's examples with the filter bar (class = the true class, split
= this split, examples = correct on the diagonal, misclassified elsewhere) and lists the cell's
examples here, each a link that selects it. The matrix itself always shows every class (only the
hand filter applies to it): filtering it by the class it was clicked on would hide it.
"""

from __future__ import annotations

import dash
import numpy as np
from dash import Input, Output, State, dcc, html

from dashboard import data, filters, state
from dashboard.figures import message_figure, sent
from dashboard.figures.confusion import (accuracy_spec, confusion_counts, confusion_spec, per_class_accuracy,
                                         similarity_order)
from dashboard.views import is_hidden
from dashboard.views.controls import GRAPH_CONFIG
from dashboard.views.inspector import example_links
from pipeline import runformat

VIEW_ID = "confusion"
TITLE = "Confusion"

MATRIX = "confusion-matrix"
ACCURACY = "confusion-accuracy"
SPLIT = "confusion-split"
CELL = "confusion-cell"              # Store: {"true": name, "predicted": name, "split": split} clicked
CELL_LIST = "confusion-cell-examples"
ALL_SPLITS = "all"
MAX_LISTED = 200

URL_PARAMS = [state.UrlParam("confusion_split", SPLIT, "value", "test")]


def applies_to(manifest: runformat.Manifest) -> bool:
    """Classification runs whose examples carry the model's predictions."""
    return manifest.is_classification and (data.has_predictions(manifest) or any(
        isinstance(m, dict) and m.get("accuracy") is not None for m in manifest.metrics.values()))


def layout():
    return html.Div(className="view-body", children=[
        html.Div(className="view-options", children=[
            dcc.RadioItems(id=SPLIT, value="test", inline=True,
                           options=[{"label": s, "value": s} for s in (*state.SPLITS, ALL_SPLITS)]),
            html.Span("Classes confused with each other sit side by side. Click a cell to filter the other "
                      "views to its examples (only the hand filter applies to the matrix).", className="hint"),
        ]),
        dcc.Store(id=CELL, data=None),
        dcc.Loading(dcc.Graph(id=MATRIX, config=GRAPH_CONFIG), delay_show=300),
        dcc.Loading(html.Div(id=CELL_LIST, className="example-list"), delay_show=300),
        html.H3("Accuracy per class and split"),
        dcc.Loading(dcc.Graph(id=ACCURACY, config=GRAPH_CONFIG), delay_show=300),
    ])


def register_callbacks(app: dash.Dash) -> None:
    @app.callback(Output(MATRIX, "figure"), Output(ACCURACY, "figure"), Input(state.RUN, "value"),
                  Input(state.HAND, "value"), state.TAB_INPUT, Input(SPLIT, "value"), Input(CELL, "data"))
    def draw(run_id, hands, tab, split, cell):
        if is_hidden(VIEW_ID, tab):
            return dash.no_update, dash.no_update
        return confusion_view(run_id, hands, split, cell)

    @app.callback(Output(CELL, "data"), Output(state.CLASS, "value", allow_duplicate=True),
                  Output(state.SPLIT, "value", allow_duplicate=True),
                  Output(state.CORRECT, "value", allow_duplicate=True),
                  Input(MATRIX, "clickData"), State(state.RUN, "value"), State(SPLIT, "value"),
                  prevent_initial_call=True)
    def click_cell(click, run_id, split):
        return cell_filters(run_id, click, split)

    @app.callback(Output(CELL_LIST, "children"), Input(state.RUN, "value"), Input(state.HAND, "value"),
                  state.TAB_INPUT, Input(CELL, "data"), state.SELECTED_INPUT)
    def list_cell(run_id, hands, tab, cell, selected):
        if is_hidden(VIEW_ID, tab):
            return dash.no_update
        return cell_examples(run_id, hands, cell, selected)


def _run(run_id) -> runformat.Run:
    run = data.get_run(run_id)
    if not run.manifest.is_classification:
        raise runformat.RunError(f"run {run.run_id[:60]!r} is a language model's: its documents have no classes "
                                 f"to confuse")
    if not data.has_verdicts(run):
        raise runformat.RunError(data.no_predictions_message(run.manifest))
    return run


def _splits(split) -> list[str]:
    if split in (None, ALL_SPLITS):
        return list(state.SPLITS)
    if split not in state.SPLITS:
        raise filters.Refused(f"{str(split)[:40]!r} is not a split")
    return [split]


@data.run_cached(maxsize=8)
def class_order(run: runformat.Run) -> np.ndarray:
    """The run's class positions by similarity, from the confusion matrix of all its examples."""
    frame = data.examples(run)
    n = len(run.classes)
    return similarity_order(confusion_counts(frame["label_index"].to_numpy(), frame["prediction_index"].to_numpy(), n))


def confusion_view(run_id, hands, split, cell=None) -> tuple:
    """The matrix of ``split`` ("all": every split) and the per-class accuracy figure."""
    try:
        run = _run(run_id)
        hands = filters.hands(run, hands)
        splits = _splits(split)
        frame = data.filtered_examples(run, None, splits, hands, "all")
        everything = data.filtered_examples(run, None, None, hands, "all")
    except runformat.RunError as error:
        return message_figure(str(error)), message_figure(str(error))
    order = class_order(run)
    matrix = confusion_counts(frame["label_index"].to_numpy(), frame["prediction_index"].to_numpy(), len(run.classes))
    marked = None
    if isinstance(cell, dict) and cell.get("split") == (split or "test"):
        marked = (str(cell.get("true")), str(cell.get("predicted")))
    where = "all splits" if split == ALL_SPLITS else f"the {splits[0]} split"
    wrong = int(matrix.sum() - np.trace(matrix))
    title = f"{where}: {wrong:,} of {int(matrix.sum()):,} examples misclassified"
    names = [run.classes[i] for i in order]
    table = per_class_accuracy(everything, run.classes, list(state.SPLITS))
    return (sent(confusion_spec(matrix, run.classes, order, title=title, marked=marked)),
            sent(accuracy_spec(table, names)))


def cell_filters(run_id, click, split) -> list:
    """A click on a cell: the cell (for the list here) and the filter bar's class, split and
    correctness set to that cell's examples. A click that names no two classes of the run changes
    nothing."""
    nothing = [dash.no_update] * 4
    points = (click or {}).get("points") or []
    if not points:
        return nothing
    true, predicted = points[0].get("y"), points[0].get("x")
    try:
        run = _run(run_id)
        filters.class_names(run, [true, predicted])
        splits = _splits(split)
    except runformat.RunError:
        return nothing
    cell = {"true": true, "predicted": predicted, "split": split or "test"}
    return [cell, [true], splits, "correct" if true == predicted else "misclassified"]


def cell_examples(run_id, hands, cell, selected=None):
    """The clicked cell's examples as links (clicking one selects it)."""
    if not isinstance(cell, dict):
        return html.Div("Click a cell to list its examples.", className="hint")
    try:
        run = _run(run_id)
        true, predicted = cell.get("true"), cell.get("predicted")
        filters.class_names(run, [true, predicted])          # names of the run's classes, or refused
        frame = data.filtered_examples(run, [true], _splits(cell.get("split")), filters.hands(run, hands), "all")
        selected = filters.example_id(run, selected)
    except runformat.RunError as error:
        return html.Div(str(error), className="error")
    frame = frame[frame["prediction"] == predicted]
    head = f"true {true}, predicted {predicted}: {len(frame):,} example{'' if len(frame) == 1 else 's'}"
    if frame.empty:
        return html.Div(head, className="hint")
    more = len(frame) - MAX_LISTED
    return [html.Div(head + ("" if more <= 0 else f" (first {MAX_LISTED} listed)"), className="hint"),
            example_links(frame.head(MAX_LISTED), "confusion", extra="confidence", selected=selected)]
