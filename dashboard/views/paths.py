"""Example paths view (Figures 3 and 5): every filtered example's projected path.

The class filter does not hide here: the chosen classes are drawn in colour over the others,
faded, to compare signs (drink vs danger, think vs crazy). A language model's run shows its
documents' paths instead, one colour per document (the split filter applies). The method and
dimensions picked are drawn when the run has them, else the closest projection it has (the
title names it). A recording that kept pictures by epoch (``every=N``) also gets an epoch slider:
the paths as they were at each kept epoch, all in the one space the recording fitted on every kept
epoch's states, under axes fixed to the extent of them all (so the pictures compare); the last
activations view shares the slider's code (``epoch_controls``, ``register_epoch_callbacks``).
"""

from __future__ import annotations

import dash
from dash import ClientsideFunction, Input, Output, State, dcc, html

from dashboard import data, filters, state
from dashboard.figures import as_sent, message_figure, raster, sent
from dashboard.figures.paths import axis_name, document_paths_figure, paths_spec, projection_title
from dashboard.views import big, controls, is_hidden
from pipeline import runformat

VIEW_ID = "paths"
TITLE = "Example paths"

GRAPH = "paths-graph"
METHOD = "paths-method"
DIMS = "paths-dims"
SYMLOG = "paths-symlog"
BY_EPOCH, EPOCH = "paths-by-epoch", "paths-epoch"
STATES = "paths-states"
HIDDEN = {"display": "none"}
MAX_EPOCH_LABELS = 12

URL_PARAMS = [
    state.UrlParam("paths_method", METHOD, "value", "ae"),
    state.UrlParam("paths_dims", DIMS, "value", "2"),
    state.UrlParam("paths_symlog", SYMLOG, "value", [], "bool", on_value="on"),
    state.UrlParam("paths_by_epoch", BY_EPOCH, "value", [], "bool", on_value="on"),
    state.UrlParam("paths_epoch", EPOCH, "value", None, "int"),
    state.UrlParam("paths_states", STATES, "value", controls.FIRST_STATES),
]

GRAPH_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}
METHODS = [{"label": "autoencoder", "value": "ae"}, {"label": "PCA", "value": "pca"}]

#: The request guard's checks of this view's controls whose options a callback sets (dimensions
#: and symlog have fixed choices, checked by themselves).
VALUE_CHECKS = {(METHOD, "value"): filters.one_of(*(option["value"] for option in METHODS)),
                (EPOCH, "value"): filters.epoch, (STATES, "value"): filters.projected_states}


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
        html.Div(className="view-options", children=[controls.states_picker(STATES)]),
        epoch_controls(BY_EPOCH, EPOCH),
        dcc.Loading(dcc.Graph(id=GRAPH, config=GRAPH_CONFIG, className="graph-tall"),
                    delay_show=300),
    ])


def applies_to(manifest: runformat.Manifest) -> bool:
    """Any run with a projection that has a point per step (trained, imported or recorded;
    classifiers' examples and language models' documents alike), or a recording's pictures by
    epoch."""
    return bool(data.path_projection_ids(manifest)) or bool(manifest.get("epoch_projections"))


# -- the epoch slider (this view's and the last activations') -----------------------------------

def epoch_controls(switch_id: str, slider_id: str) -> html.Div:
    """A switch and a slider over a recording's kept epochs, in a box ``{slider_id}-box`` shown
    only for runs that kept pictures by epoch."""
    return html.Div(id=f"{slider_id}-box", className="view-options epoch-box", style=HIDDEN, children=[
        dcc.Checklist(id=switch_id, value=[], inline=True,
                      options=[{"label": "as it was at epoch", "value": "on"}]),
        html.Div(style={"width": "28em"}, children=dcc.Slider(
            id=slider_id, min=0, max=1, step=None, marks={}, value=None, included=False)),
        html.Span("every kept epoch in one space, on the same axes", className="hint"),
    ])


def epoch_slider(run_id) -> list:
    """The box's style and the slider's min, max and marks (the kept epochs) for a run."""
    try:
        kept = data.get_run(run_id).kept_epochs
    except runformat.RunError:
        kept = []
    if not kept:
        return [HIDDEN, 0, 1, {}]
    every = max(1, -(-len(kept) // MAX_EPOCH_LABELS))        # label at most ~12 of the marks
    marks = {epoch: str(epoch) if i % every == 0 or epoch == kept[-1] else ""
             for i, epoch in enumerate(kept)}
    return [None, kept[0], kept[-1], marks]


def epoch_value(run_id, search, param: state.UrlParam):
    """The slider's value when the run changes: the URL's epoch if the run kept it, else its last
    kept epoch (None for a run without pictures by epoch)."""
    try:
        kept = data.get_run(run_id).kept_epochs
    except runformat.RunError:
        return dash.no_update
    if not kept:
        return None
    wanted = state.decode_search(search, [param])[param.component_id]
    return wanted if wanted in kept else kept[-1]


def register_epoch_callbacks(app: dash.Dash, slider_id: str, param: state.UrlParam) -> None:
    @app.callback(Output(f"{slider_id}-box", "style"), Output(slider_id, "min"), Output(slider_id, "max"),
                  Output(slider_id, "marks"), Input(state.RUN, "value"))
    def show_epochs(run_id):
        return epoch_slider(run_id)

    # After the URL sync (whose output the run picker is); the URL holds the epoch a link names.
    @app.callback(Output(slider_id, "value", allow_duplicate=True), Input(state.RUN, "value"),
                  State(state.URL, "search"), prevent_initial_call="initial_duplicate")
    def keep_epoch(run_id, search):
        return epoch_value(run_id, search, param)


def by_epoch(run: runformat.Run, switch, has_projections: bool) -> bool:
    """Whether to draw the pictures by epoch: the switch is on (or the run has nothing else to
    draw) and the run kept them."""
    return bool(run.kept_epochs) and (bool(switch) or not has_projections)


def epoch_title(run: runformat.Run, epoch: int, what: str) -> str:
    described = run.manifest.get("epoch_projections") or {}
    kept = run.kept_epochs
    method = str(described.get("method", "pca")).upper() if isinstance(described, dict) else "PCA"
    return (f"epoch {epoch} ({kept.index(epoch) + 1} of {len(kept)} kept) · {what} · one {method} space "
            f"fitted on every kept epoch")


def method_options(run_id) -> list[dict]:
    """The method choices, the ones the run lacks disabled."""
    try:
        ids = data.path_projection_ids(data.get_run(run_id).manifest)
    except runformat.RunError:
        ids = []
    return [{**option, "disabled": bool(ids) and not any(i.rstrip("0123456789") == option["value"]
                                                         for i in ids)}
            for option in METHODS]


def chosen_projection(manifest: runformat.Manifest, method: str | None, dims: str | None,
                      states: str | None = None) -> str:
    """The path projection by ``method`` in ``dims`` dimensions of the ``states`` pair (None or
    one the run lacks: its first) when the run has it, else the closest it has: the same
    dimensions by another method, then any path projection of those states, then any."""
    ids = data.path_projection_ids(manifest)
    if not ids:
        raise runformat.RunError(data.no_projections_message(manifest, "projection with a point per step"))
    states = controls.chosen_states(manifest, states, "paths")
    wanted_dims = int(dims) if str(dims or "2").isdigit() else 2
    found = data.projection_for(manifest, method or "ae", wanted_dims, states, "paths")
    if found:
        return found
    same = [str(e["id"]) for e in data.projection_entries(manifest, "paths")
            if data.projection_state(e) == states]
    same_dims = [i for i in same if i in data.path_projection_ids(manifest, wanted_dims)]
    return (same_dims or same or ids)[0]


def register_callbacks(app: dash.Dash) -> None:
    @app.callback(Output(METHOD, "options"), Input(state.RUN, "value"))
    def show_methods(run_id):
        return method_options(run_id)

    register_states_callback(app, STATES, "paths")

    register_epoch_callbacks(app, EPOCH, URL_PARAMS[-1])

    @app.callback(Output(GRAPH, "figure"), *state.FILTER_INPUTS, state.TAB_INPUT,
                  state.SELECTED_INPUT, Input(METHOD, "value"), Input(DIMS, "value"),
                  Input(SYMLOG, "value"), Input(BY_EPOCH, "value"), Input(EPOCH, "value"),
                  state.CHOSEN_INPUT, Input(STATES, "value"))
    def draw(run_id, classes, splits, hands, correctness, tab, selected, method, dims, symlog,
             switch=None, epoch=None, chosen=None, states=None):
        if is_hidden(VIEW_ID, tab):
            return dash.no_update
        return paths_view_figure(run_id, classes, splits, hands, correctness, selected, method,
                                 dims, symlog, switch, epoch, chosen, states)

    @app.callback(Output(GRAPH, "figure", allow_duplicate=True), Input(GRAPH, "relayoutData"),
                  *(State(i.component_id, i.component_property) for i in state.FILTER_INPUTS),
                  State(state.SELECTED, "data"), State(METHOD, "value"), State(DIMS, "value"),
                  State(SYMLOG, "value"), State(BY_EPOCH, "value"), State(EPOCH, "value"),
                  State(state.CHOSEN, "data"), State(STATES, "value"), prevent_initial_call=True)
    def zoom(relayout, run_id, classes, splits, hands, correctness, selected, method, dims, symlog,
             switch=None, epoch=None, chosen=None, states=None):
        """A zoom of a scene drawn as an image re-draws it (``views.big``); other scenes zoom in
        the browser."""
        window = raster.zoom_window(relayout)
        if window is None:
            return dash.no_update
        figure = paths_view_figure(run_id, classes, splits, hands, correctness, selected, method, dims,
                                   symlog, switch, epoch, chosen, states, window=window)
        return dash.no_update if figure is None else figure

    @app.callback(Output(state.SELECTED, "data", allow_duplicate=True),
                  Input(GRAPH, "clickData"), prevent_initial_call=True)
    def select(click):
        example = state.example_from_click(click)
        return dash.no_update if example is None else example

    register_choose_callback(app, GRAPH)


def register_states_callback(app: dash.Dash, picker_id: str, scope: str | None, dims: int | None = None) -> None:
    """The states choice's options and note follow the run (``controls.states_options``); its first
    pair's value is ``controls.FIRST_STATES``, ticked until another is clicked."""
    @app.callback(Output(picker_id, "options"), Output(f"{picker_id}-note", "children"), Input(state.RUN, "value"))
    def show_states(run_id):
        return list(controls.states_options(run_id, scope, dims))


def register_choose_callback(app: dash.Dash, graph_id: str) -> None:
    """A box or lasso on ``graph_id`` chooses the examples it covers (``state.CHOSEN``), in the
    browser (``assets/lens-selection.js``: a lasso over the paths covers tens of thousands of
    points, too many to send; only their example ids go to the views); a cleared selection keeps
    the set (the selection bar's "Clear chosen set" drops it)."""
    app.clientside_callback(ClientsideFunction(namespace="lens", function_name="chosen"),
                            Output(state.CHOSEN, "data", allow_duplicate=True), Input(graph_id, "selectedData"),
                            State(state.CHOSEN, "data"), prevent_initial_call=True)


def paths_view_figure(run_id, classes, splits, hands, correctness, selected, method, dims, symlog,
                      switch=None, epoch=None, chosen=None, states=None, window=None):
    """Examples outside the class choice stay in the scene (faded), so classes are not filtered.
    ``switch`` (on) and ``epoch`` (None: the last kept): a recording's paths at that epoch.
    ``chosen``: a set of examples (a box or lasso's) drawn in colour by class, the rest faded.
    ``states``: which ``"layer:tensor"`` the projection pictures (None: the run's first).
    ``window``: a zoom (``raster.zoom_window``; "reset": the whole scene) of a scene drawn as an
    image, re-drawn (``views.big``); None back for any other scene, which the browser zooms."""
    try:
        run = data.get_run(run_id)
        classes, splits, hands, correctness = filters.filter_bar(run, classes, splits, hands, correctness)
        selected = filters.example_id(run, selected)
        epoch = filters.epoch(run, epoch)
        chosen = filters.example_ids(run, chosen)
        filters.projected_states(run, states)
        if by_epoch(run, switch, bool(data.path_projection_ids(run.manifest))):
            return None if window is not None else _epoch_scene(run, classes, splits, hands, correctness, selected,
                                run.kept_epochs[-1] if epoch is None else epoch, bool(symlog), chosen)
        projection_id = chosen_projection(run.manifest, method, dims, states)
        if window is not None:
            return None if run.manifest.is_language_model else _zoomed_paths(
                run, classes, splits, hands, correctness, selected, projection_id, bool(symlog), chosen,
                None if window == "reset" else window)
        if run.manifest.is_language_model:
            return _document_scene(run, splits, selected, projection_id, bool(symlog))
        return _paths_scene(run, classes, splits, hands, correctness, selected, projection_id, bool(symlog),
                            chosen)
    except runformat.RunError as error:
        return message_figure(str(error))


@data.run_cached(maxsize=16, shared=True)
def _paths_scene(run, classes, splits, hands, correctness, selected, projection_id, symlog, chosen=None):
    """Memoised as sent: at Auslan size the scene costs 110-190 ms to build and ~35 ms to encode,
    and is asked for again and again (tab switches, selections elsewhere, other users)."""
    frame = data.filtered_examples(run, None, splits, hands, correctness)
    points = data.projection(run, projection_id)
    rows = big.big_scene(points, frame)
    if rows is not None:        # a big run: an image of the steps (views.big)
        return sent(big.raster_scene(run, points, rows, classes, selected, chosen, symlog, _title(
            projection_id, frame, classes, chosen, _states_named(run, projection_id)), axis_name(projection_id)))
    points = points[points["example_id"].isin(frame["example_id"])]
    return sent(paths_spec(points, data.labels(run), highlight=classes, selected=selected,
                                symlog=symlog, title=_title(projection_id, frame, classes, chosen, _states_named(run, projection_id)),
                                axis_title=axis_name(projection_id), chosen_ids=chosen))


@data.run_cached(maxsize=16, shared=True)
def _zoomed_paths(run, classes, splits, hands, correctness, selected, projection_id, symlog, chosen, window):
    """A zoom of a scene drawn as an image: its steps as paths once the window holds at most
    ``raster.MAX_VECTOR_POINTS``, else the window as an image; None for a scene of points."""
    frame = data.filtered_examples(run, None, splits, hands, correctness)
    points = data.projection(run, projection_id)
    rows = big.big_scene(points, frame)
    if rows is None:
        return None
    if window is None:         # a reset: the whole scene, as first drawn (memoised)
        return _paths_scene(run, classes, splits, hands, correctness, selected, projection_id, symlog, chosen)
    title = _title(projection_id, frame, classes, chosen, _states_named(run, projection_id))
    axis_title = axis_name(projection_id)
    return sent(big.zoomed_or_image(
        run, points, rows, window, symlog, raster.MAX_VECTOR_POINTS,
        lambda part: paths_spec(part, data.labels(run), highlight=classes, selected=selected, symlog=symlog,
                                title=f"{title} · zoomed: {len(part):,} steps", axis_title=axis_title,
                                chosen_ids=chosen),
        lambda at: big.raster_scene(run, points, rows, classes, selected, chosen, symlog, title, axis_title, at)))


@data.run_cached(maxsize=16, shared=True)
def _epoch_scene(run, classes, splits, hands, correctness, selected, epoch, symlog, chosen=None):
    """The recorded examples' (or documents') paths at one kept epoch, on the axes of all of them."""
    language = run.manifest.is_language_model
    frame = (data.filtered_examples(run, None, splits) if language
             else data.filtered_examples(run, None, splits, hands, correctness))
    points = data.epoch_picture(run, epoch)
    points = points[points["example_id"].isin(frame["example_id"])]
    ranges = data.epoch_ranges(run)
    if language:
        return as_sent(document_paths_figure(points, data.labels(run), selected=selected, symlog=symlog,
                                             ranges=ranges, title=epoch_title(run, epoch, plural(len(frame), "document"))))
    what = _title("paths", frame, classes).split(" · ", 1)[1]
    return sent(paths_spec(points, data.labels(run), highlight=classes, selected=selected, symlog=symlog,
                                title=epoch_title(run, epoch, what), ranges=ranges, axis_title="PCA",
                                chosen_ids=chosen))


@data.run_cached(maxsize=16, shared=True)
def _document_scene(run, splits, selected, projection_id, symlog):
    """A language model's documents as paths, one colour per document (memoised like the paths)."""
    frame = data.filtered_examples(run, None, splits)
    points = data.projection(run, projection_id)
    points = points[points["example_id"].isin(frame["example_id"])]
    steps = int(frame["length"].sum())
    return as_sent(document_paths_figure(
        points, data.labels(run), selected=selected, symlog=symlog,
        title=f"{projection_title(projection_id)} · {plural(len(frame), 'document')}, {steps:,} steps "
              f"(hover: document and step)"))


def _states_named(run: runformat.Run, projection_id: str) -> str:
    """The projection's ``"layer:tensor"`` when the run's projections picture more than one."""
    if len(data.projection_states(run.manifest)) < 2:
        return ""
    entry = next((e for e in run.manifest.projections if str(e.get("id")) == projection_id), None)
    return data.projection_state(entry) if entry else ""


def plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _title(projection_id: str, frame, classes, chosen=None, states: str = "") -> str:
    name = projection_title(projection_id) + (f" of {controls.states_label(states, None)}" if states else "")
    if chosen is not None:
        inside = frame["example_id"].isin(chosen) & (frame["label"].isin(classes) if classes else True)
        return (f"{name} · {int(inside.sum()):,} chosen of {len(frame):,} examples in colour "
                f"(marker size: time step)")
    if not classes:
        return f"{name} · {len(frame):,} examples (hover: sign, example, step)"
    chosen = int(frame["label"].isin(classes).sum())
    return (f"{name} · {chosen:,} of {len(frame):,} examples in colour ({', '.join(classes)}; "
            f"marker size: time step)")
