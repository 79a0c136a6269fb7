"""Study view: the Auslan study's claims measured on the run (``python -m pipeline report RUN``).

Shown for a classification run whose manifest records a report; the numbers come from the report
file the manifest names (``report.numbers``), read like any other file of the run (inside its
folder, never through a link out of it). Per run, not per example: the filters do not apply.
"""

from __future__ import annotations

import json

import dash
from dash import Input, Output, dcc, html

from dashboard import data, state, views
from dashboard.figures.study import study_panel
from pipeline import runformat

VIEW_ID = "study"
TITLE = "Study"
BODY = "study-body"


def applies_to(manifest: runformat.Manifest) -> bool:
    return manifest.is_classification and isinstance(manifest.get("report"), dict)


def layout():
    return html.Div(children=[
        html.P("Tempczyk & Bartołd's claims about the Auslan LSTM, each with our number and a verdict "
               "(holds / does not hold / unclear / not applicable), computed from this run.", className="hint"),
        dcc.Loading(html.Div(id=BODY), delay_show=300),
    ])


@data.run_cached(maxsize=8)
def report_of(run: runformat.Run) -> dict:
    record = run.manifest.get("report")
    name = record.get("numbers") if isinstance(record, dict) else None
    if not isinstance(name, str):
        raise runformat.RunError(f"run {run.run_id!r} has no study report: run `python -m pipeline report "
                                 f"{run.run_id}`")
    try:
        report = json.loads(run.file_path(name).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise runformat.RunError(f"{run.run_id}/{name} cannot be read ({type(error).__name__}); run "
                                 f"`python -m pipeline report {run.run_id}` again") from error
    if not isinstance(report, dict):
        raise runformat.RunError(f"{run.run_id}/{name} is not a study report")
    return report


def body(run_id):
    try:
        run = data.get_run(run_id)
        return study_panel(report_of(run), run.manifest)
    except runformat.RunError as error:
        return html.P(str(error), className="warning")


def register_callbacks(app):
    @app.callback(Output(BODY, "children"), Input(state.RUN, "value"), state.TAB_INPUT)
    def _body(run_id, tab):
        if views.is_hidden(VIEW_ID, tab):
            return dash.no_update
        return body(run_id)
