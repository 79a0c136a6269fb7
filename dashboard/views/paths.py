"""Example paths view (Figures 3 and 5): every filtered example's projected path.

The class filter does not hide here: the chosen classes are drawn in colour over the others,
faded, to compare signs (drink vs danger, think vs crazy). A language model's run shows its
documents' paths instead, one colour per document (the split filter applies). The method and
dimensions picked are drawn when the run has them, else the closest projection it has (the
title names it).
"""

from __future__ import annotations

import dash
from dash import Input, Output, dcc, html

from dashboard import data, filters, state
from dashboard.figures import as_sent, message_figure
from dashboard.figures.paths import document_paths_figure, paths_figure
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
METHODS = [{"label": "autoencoder", "value": "ae"}, {"label": "PCA", "value": "pca"}]

#: The request guard's checks of this view's controls whose options a callback sets (dimensions
#: and symlog have fixed choices, checked by themselves).
VALUE_CHECKS = {(METHOD, "value"): filters.one_of(*(option["value"] for option in METHODS))}


def layout():
    return html.Div(className="view-body", children=[
        html.Div(className="view-options", children=[
            dcc.RadioItems(id=METHOD, value="ae", inline=True, options=METHODS),
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


def applies_to(manifest: runformat.Manifest) -> bool:
    """Any run with a projection that has a point per step (trained, imported or recorded;
    classifiers' examples and language models' documents alike)."""
    return bool(data.path_projection_ids(manifest))


def method_options(run_id) -> list[dict]:
    """The method choices, the ones the run lacks disabled."""
    try:
        ids = data.path_projection_ids(data.get_run(run_id).manifest)
    except runformat.RunError:
        ids = []
    return [{**option, "disabled": bool(ids) and not any(i.rstrip("0123456789") == option["value"]
                                                         for i in ids)}
            for option in METHODS]


def chosen_projection(manifest: runformat.Manifest, method: str | None, dims: str | None) -> str:
    """``{method}{dims}`` when the run has that path projection, else the closest it has: the
    same dimensions by another method, then any path projection."""
    ids = data.path_projection_ids(manifest)
    if not ids:
        raise runformat.RunError(data.no_projections_message(manifest, "projection with a point per step"))
    wanted = f"{method or 'ae'}{dims or '2'}"
    same_dims = [i for i in ids if i.endswith(str(dims or "2"))]
    return wanted if wanted in ids else (same_dims or ids)[0]


def register_callbacks(app: dash.Dash) -> None:
    @app.callback(Output(METHOD, "options"), Input(state.RUN, "value"))
    def show_methods(run_id):
        return method_options(run_id)

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
        run = data.get_run(run_id)
        classes, splits, hands, correctness = filters.filter_bar(run, classes, splits, hands, correctness)
        selected = filters.example_id(run, selected)
        projection_id = chosen_projection(run.manifest, method, dims)
        if run.manifest.is_language_model:
            return _document_scene(run, splits, selected, projection_id, bool(symlog))
        return _paths_scene(run, classes, splits, hands, correctness, selected, projection_id, bool(symlog))
    except runformat.RunError as error:
        return message_figure(str(error))


@data.run_cached(maxsize=16, shared=True)
def _paths_scene(run, classes, splits, hands, correctness, selected, projection_id, symlog):
    """Memoised as sent: at Auslan size the scene costs 110-190 ms to build and ~35 ms to encode,
    and is asked for again and again (tab switches, selections elsewhere, other users)."""
    frame = data.filtered_examples(run, None, splits, hands, correctness)
    points = data.projection(run, projection_id)
    points = points[points["example_id"].isin(frame["example_id"])]
    return as_sent(paths_figure(points, data.labels(run), highlight=classes, selected=selected,
                                symlog=symlog, title=_title(projection_id, frame, classes)))


@data.run_cached(maxsize=16, shared=True)
def _document_scene(run, splits, selected, projection_id, symlog):
    """A language model's documents as paths, one colour per document (memoised like the paths)."""
    frame = data.filtered_examples(run, None, splits)
    points = data.projection(run, projection_id)
    points = points[points["example_id"].isin(frame["example_id"])]
    steps = int(frame["length"].sum())
    return as_sent(document_paths_figure(
        points, data.labels(run), selected=selected, symlog=symlog,
        title=f"{projection_id} · {plural(len(frame), 'document')}, {steps:,} steps (hover: document and step)"))


def plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _title(projection_id: str, frame, classes) -> str:
    if not classes:
        return f"{projection_id} · {len(frame):,} examples"
    chosen = int(frame["label"].isin(classes).sum())
    return f"{projection_id} · {chosen:,} of {len(frame):,} examples in colour ({', '.join(classes)})"
