"""Decisive step view: how early each class is recognised.

Per class, the distribution of its filtered examples' decisive steps (the first step after which
the prediction never changes again, examples.parquet) as a fraction of the sign's length; sorted
by the latest median (signs recognised late), by the share decided in the last tenth (signs that
flip at the end) or in the run's class order. A click on a point selects its example.
"""

from __future__ import annotations

import dash
from dash import Input, Output, dcc, html

from dashboard import data, filters, state
from dashboard.figures import message_figure, sent
from dashboard.figures.decisive import LATE, class_summary, decided, decisive_spec, sorted_classes
from dashboard.views import is_hidden
from dashboard.views.controls import GRAPH_CONFIG
from pipeline import runformat

VIEW_ID = "decisive"
TITLE = "Decisive step"

GRAPH = "decisive-graph"
SORT = "decisive-sort"
SORT_OPTIONS = [{"label": "recognised latest first", "value": "late"},
                {"label": "flips at the end first", "value": "flip"},
                {"label": "class order", "value": "class"}]

URL_PARAMS = [state.UrlParam("decisive_sort", SORT, "value", "late")]


def applies_to(manifest: runformat.Manifest) -> bool:
    """Classification runs with per-step predictions (the decisive step is computed from them)."""
    return manifest.is_classification and data.has_predictions(manifest)


def layout():
    return html.Div(className="view-body", children=[
        html.Div(className="view-options", children=[
            dcc.RadioItems(id=SORT, value="late", inline=True, options=SORT_OPTIONS),
            html.Span(f"The step after which the prediction never changes again, as a share of the sign; "
                      f"dotted: the last tenth ({LATE:.0%}). Click a point to select its example.",
                      className="hint"),
        ]),
        dcc.Loading(dcc.Graph(id=GRAPH, config=GRAPH_CONFIG, className="graph-tall"), delay_show=300),
    ])


def register_callbacks(app: dash.Dash) -> None:
    @app.callback(Output(GRAPH, "figure"), *state.FILTER_INPUTS, state.TAB_INPUT, state.SELECTED_INPUT,
                  Input(SORT, "value"))
    def draw(run_id, classes, splits, hands, correctness, tab, selected, sort):
        if is_hidden(VIEW_ID, tab):
            return dash.no_update
        return decisive_view(run_id, classes, splits, hands, correctness, selected, sort)

    @app.callback(Output(state.SELECTED, "data", allow_duplicate=True), Input(GRAPH, "clickData"),
                  prevent_initial_call=True)
    def select(click):
        example = state.example_from_click(click)
        return dash.no_update if example is None else example


def decisive_view(run_id, classes, splits, hands, correctness, selected, sort="late"):
    try:
        run = data.get_run(run_id)
        classes, splits, hands, correctness = filters.filter_bar(run, classes, splits, hands, correctness)
        selected = filters.example_id(run, selected)
        filters.one_of(*[o["value"] for o in SORT_OPTIONS])(run, sort)
        if not run.manifest.is_classification:
            raise runformat.RunError(f"run {run.run_id[:60]!r} is a language model's: its documents have no class "
                                     f"to be recognised")
        if "decisive_step" not in data.examples(run):
            raise runformat.RunError(f"run {run.run_id[:60]!r} has no decisive steps in its examples (written "
                                     f"before they were recorded: {data.resume_hint(run.manifest)} with --force)")
        frame = data.filtered_examples(run, classes, splits, hands, correctness)
    except runformat.RunError as error:
        return message_figure(str(error))
    summary = class_summary(frame, run.classes)
    if summary.empty:
        return message_figure("No examples with a decisive step among the filtered ones.")
    order = sorted_classes(summary, sort or "late")
    n = len(decided(frame))
    latest = ", ".join(f"{name} ({summary.at[name, 'median']:.0%})" for name in sorted_classes(summary, "late")[:5])
    title = f"{n:,} examples · median decisive step latest in: {latest}"
    return sent(decisive_spec(frame, order, selected, title=title))
