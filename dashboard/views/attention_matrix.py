"""The inspector's attention-matrix panel (not a view of its own: ``inspector`` places it and
registers its callbacks): for a run with imported sequence-to-sequence attention
(attention_matrix.parquet, manifest ``attention: matrix``), the selected example's matrix as a
heatmap, output steps as rows and input steps as columns. Hidden for other runs."""

from __future__ import annotations

import dash
import numpy as np
import pandas as pd
from dash import Input, Output, dcc, html

from dashboard import data, filters, state
from dashboard.figures import message_figure
from dashboard.figures.attention import attention_matrix_figure
from dashboard.views import is_hidden
from dashboard.views.controls import GRAPH_CONFIG
from pipeline import runformat

VIEW_ID = "inspector"               # the view this panel lives in
BOX = "inspector-attention-matrix-box"
GRAPH = "inspector-attention-matrix"
HIDDEN = {"display": "none"}
NOTHING_SELECTED = "Select an example to see its attention matrix."


def panel() -> html.Div:
    """The panel, placed by the inspector's layout (hidden until a run with matrices is shown)."""
    return html.Div(id=BOX, className="panel", style=HIDDEN, children=[
        html.H3("Attention matrix: output steps by input steps"),
        dcc.Loading(dcc.Graph(id=GRAPH, config=GRAPH_CONFIG), delay_show=300)])


def register_callbacks(app: dash.Dash) -> None:
    @app.callback(Output(BOX, "style"), Input(state.RUN, "value"), state.TAB_INPUT)
    def show(run_id, tab):
        return dash.no_update if is_hidden(VIEW_ID, tab) else box_style(run_id)

    @app.callback(Output(GRAPH, "figure"), Input(state.RUN, "value"), state.TAB_INPUT, state.SELECTED_INPUT)
    def draw(run_id, tab, selected):
        return dash.no_update if is_hidden(VIEW_ID, tab) else matrix_view(run_id, selected)


def box_style(run_id) -> dict | None:
    try:
        return None if data.get_run(run_id).manifest.attention == "matrix" else HIDDEN
    except runformat.RunError:
        return HIDDEN


@data.run_cached(maxsize=2)
def matrices(run: runformat.Run) -> tuple[pd.DataFrame, np.ndarray]:
    """attention_matrix.parquet sorted by example, and where each example's rows start."""
    if run.manifest.attention != "matrix" or not run.has(runformat.ATTENTION_MATRIX_FILE):
        raise runformat.RunError(f"run {run.run_id[:60]!r} has no attention matrices ({runformat.ATTENTION_MATRIX_FILE})")
    table = run.read_table(runformat.ATTENTION_MATRIX_FILE).sort_values(["example_id", "t_out", "t_in"],
                                                                        kind="stable").reset_index(drop=True)
    return table, table["example_id"].to_numpy()


def matrix_view(run_id, selected):
    if selected is None:
        return message_figure(NOTHING_SELECTED)
    try:
        run = data.get_run(run_id)
        example = filters.example_id(run, selected)
        table, ids = matrices(run)
    except runformat.RunError as error:
        return message_figure(str(error))
    lo, hi = np.searchsorted(ids, example, side="left"), np.searchsorted(ids, example, side="right")
    return attention_matrix_figure(table.iloc[lo:hi], example)
