"""Example paths view (Figures 3 and 5): every filtered example's projected path.

The class filter does not hide here: the chosen classes are drawn in colour over the others,
faded, to compare signs (drink vs danger, think vs crazy).
"""

from __future__ import annotations

import dash
from dash import Input, Output, dcc, html

from dashboard import data, state
from dashboard.figures import as_sent, message_figure
from dashboard.figures.paths import paths_figure
from dashboard.views import is_hidden
from pipeline import runformat

VIEW_ID = "paths"
TITLE = "Example paths"

GRAPH = "paths-graph"
METHOD = "paths-method"
DIMS = "paths-dims"
SYMLOG = "paths-symlog"

URL_PARAMS = [
    state.UrlParam("paths_method", METHOD, "value", "ae"),
    state.UrlParam("paths_dims", DIMS, "value", "2"),
    state.UrlParam("paths_symlog", SYMLOG, "value", [], "bool", on_value="on"),
]

GRAPH_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


def layout():
    return html.Div(className="view-body", children=[
        html.Div(className="view-options", children=[
            dcc.RadioItems(id=METHOD, value="ae", inline=True,
                           options=[{"label": "autoencoder", "value": "ae"},
                                    {"label": "PCA", "value": "pca"}]),
            dcc.RadioItems(id=DIMS, value="2", inline=True,
                           options=[{"label": "2-D", "value": "2"}, {"label": "3-D", "value": "3"}]),
            dcc.Checklist(id=SYMLOG, value=[], inline=True,
                          options=[{"label": "symlog", "value": "on"}]),
            html.Span("Choose classes in the filter bar to compare them; click a point to select "
                      "its example.", className="hint"),
        ]),
        dcc.Loading(dcc.Graph(id=GRAPH, config=GRAPH_CONFIG, className="graph-tall"),
                    delay_show=300),
    ])


def register_callbacks(app: dash.Dash) -> None:
    @app.callback(Output(GRAPH, "figure"), *state.FILTER_INPUTS, state.TAB_INPUT,
                  state.SELECTED_INPUT, Input(METHOD, "value"), Input(DIMS, "value"),
                  Input(SYMLOG, "value"))
    def draw(run_id, classes, splits, hands, correctness, tab, selected, method, dims, symlog):
        if is_hidden(VIEW_ID, tab):
            return dash.no_update
        return paths_view_figure(run_id, classes, splits, hands, correctness, selected, method,
                                 dims, symlog)

    @app.callback(Output(state.SELECTED, "data", allow_duplicate=True),
                  Input(GRAPH, "clickData"), prevent_initial_call=True)
    def select(click):
        example = state.example_from_click(click)
        return dash.no_update if example is None else example


def paths_view_figure(run_id, classes, splits, hands, correctness, selected, method, dims, symlog):
    """Examples outside the class choice stay in the scene (faded), so classes are not filtered."""
    try:
        return _paths_scene(data.get_run(run_id), classes, splits, hands, correctness, selected,
                            method, dims, bool(symlog))
    except runformat.RunError as error:
        return message_figure(str(error))


@data.run_cached(maxsize=16)
def _paths_scene(run, classes, splits, hands, correctness, selected, method, dims, symlog):
    """Memoised as sent: at Auslan size the scene costs 110-190 ms to build and ~35 ms to encode,
    and is asked for again and again (tab switches, selections elsewhere, other users)."""
    projection_id = f"{method or 'ae'}{dims or '2'}"
    frame = data.filtered_examples(run, None, splits, hands, correctness)
    points = data.projection(run, projection_id)
    points = points[points["example_id"].isin(frame["example_id"])]
    return as_sent(paths_figure(points, data.labels(run), highlight=classes, selected=selected,
                                symlog=symlog, title=_title(projection_id, frame, classes)))


def _title(projection_id: str, frame, classes) -> str:
    if not classes:
        return f"{projection_id} · {len(frame):,} examples"
    chosen = int(frame["label"].isin(classes).sum())
    return f"{projection_id} · {chosen:,} of {len(frame):,} examples in colour ({', '.join(classes)})"
