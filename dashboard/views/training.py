"""Training view: the run's learning curves, gradient norm and gate statistics per epoch.

History is per epoch of the whole run, so the example filters do not apply here.
"""

from __future__ import annotations

import dash
from dash import Input, Output, dcc, html

from dashboard import data, state, views
from dashboard.figures import message_figure
from dashboard.figures.training import training_figure
from dashboard.views.controls import GRAPH_CONFIG
from pipeline import runformat

VIEW_ID = "training"
TITLE = "Training"
GRAPH = "training-graph"


def applies_to(manifest: dict) -> bool:
    """False for a run whose recorded stages wrote no history (a model trained elsewhere)."""
    outputs = [name for stage in manifest.get("stages", {}).values() for name in stage.get("outputs", [])]
    return not outputs or "history.parquet" in outputs


def layout():
    return html.Div(children=[
        html.P("Per epoch of training (the example filters do not apply). Gate statistics are measured "
               "on a fixed sample of training examples at the end of each epoch.", className="hint"),
        dcc.Loading(dcc.Graph(id=GRAPH, config=GRAPH_CONFIG)),
    ])


@data.run_cached(maxsize=8)
def history(run: runformat.Run):
    return run.history()


def figure(run_id):
    try:
        run = data.get_run(run_id)
        frame = history(run)
    except runformat.RunError as error:
        return message_figure(str(error))
    if frame.empty:
        return message_figure(f"run {run.run_id!r} has an empty history.parquet")
    return training_figure(frame, run.manifest.get("metrics"))


def register_callbacks(app: dash.Dash) -> None:
    @app.callback(Output(GRAPH, "figure"), Input(state.RUN, "value"), state.TAB_INPUT)
    def update(run_id, tab):
        if views.is_hidden(VIEW_ID, tab):
            return dash.no_update
        return figure(run_id)
