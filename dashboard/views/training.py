"""Training view: the run's learning curves, gradient norm and gate statistics per epoch, and the
failure signs in them (``pipeline.analysis.health``, each with its threshold).

A recording that is still training (``pipeline.record``) is monitored live: the view refreshes
itself every ``REFRESH_MS`` while the run's status is "training", without a reload. History is per
epoch of the whole run, so the example filters do not apply here.
"""

from __future__ import annotations

import dash
from dash import Input, Output, dcc, html

from dashboard import data, state, views
from dashboard.figures import message_figure, message_spec, sent
from dashboard.figures.training import training_spec
from dashboard.views.controls import GRAPH_CONFIG
from pipeline import runformat
from pipeline.analysis.health import training_warnings

VIEW_ID = "training"
TITLE = "Training"
GRAPH = "training-graph"
STATUS, REFRESH = "training-status", "training-refresh"
REFRESH_MS = 2000


def applies_to(manifest: runformat.Manifest) -> bool:
    """False for a run whose recorded stages wrote no history (a model trained elsewhere)."""
    files = data.run_files(manifest)
    return not files or runformat.HISTORY_FILE in files


def layout():
    return html.Div(children=[
        html.P("Per epoch of training (the example filters do not apply). Gate statistics are measured "
               "on a fixed sample of training examples at the end of each epoch.", className="hint"),
        html.Div(id=STATUS, className="training-status"),
        dcc.Interval(id=REFRESH, interval=REFRESH_MS, disabled=True),
        dcc.Loading(dcc.Graph(id=GRAPH, config=GRAPH_CONFIG), delay_show=300),
    ])


@data.run_cached(maxsize=8)
def history(run: runformat.Run):
    if not run.has(runformat.HISTORY_FILE):
        raise runformat.RunError(f"run {run.run_id!r} has no training history: it was "
                                 f"{'trained elsewhere' if run.manifest.origin != 'trained' else 'not trained here'}")
    return run.history()


def figure(run_id):
    try:
        return _figure(data.get_run(run_id))
    except runformat.RunError as error:
        return message_figure(str(error))


@data.run_cached(maxsize=8, shared=True)
def _figure(run: runformat.Run) -> dict:
    """Memoised as sent (a plain-dict figure: 3 ms, where plotly's validation took ~180 ms)."""
    frame = history(run)
    if frame.empty:
        return sent(message_spec(f"run {run.run_id!r} has an empty {runformat.HISTORY_FILE}"))
    return sent(training_spec(frame, run.manifest.metrics))


def status(run_id) -> tuple[list, bool]:
    """The line above the curves (epochs so far, live or not, the failure signs) and whether the
    view should keep refreshing."""
    try:
        run = data.get_run(run_id)
        frame = history(run)
    except runformat.RunError:
        return [], True
    live = run.manifest.status == "training"
    head = (f"training now: {len(frame)} epoch(s) so far, refreshing every {REFRESH_MS // 1000} s"
            if live else f"{len(frame)} epoch(s)")
    signs = training_warnings(frame)
    items = [html.Li(f"{w.text} [rule: {w.threshold}]", className="warning") for w in signs]
    body = [html.Span(head, id=f"{STATUS}-epochs")]
    body.append(html.Ul(items) if items else html.Span(" · no failure signs (saturated gates, collapsed state, "
                                                       "exploding gradient)", className="hint"))
    return body, not live


def register_callbacks(app: dash.Dash) -> None:
    @app.callback(Output(GRAPH, "figure"), Output(STATUS, "children"), Output(REFRESH, "disabled"),
                  Input(state.RUN, "value"), state.TAB_INPUT, Input(REFRESH, "n_intervals"))
    def update(run_id, tab, _ticks):
        if views.is_hidden(VIEW_ID, tab):
            return dash.no_update, dash.no_update, dash.no_update      # no work; the timer keeps its state
        body, stop = status(run_id)
        return figure(run_id), body, stop
