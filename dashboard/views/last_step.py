"""Last activations view (Figure 4; Figures 11-13 for mistakes): where each example ends.

Mistakes are marked when the run recorded predictions (an import without them says so in the
title); a language model's run shows where each document ends, one colour per document. A
recording that kept pictures by epoch gets the epoch slider of the paths view: where each example
ended at that epoch, in the recording's one space, on fixed axes (mistakes are not marked there:
the run's verdicts are the final model's)."""

from __future__ import annotations

import dash
from dash import Input, Output, State, dcc, html

from dashboard import data, filters, state
from dashboard.figures import as_sent, message_figure, raster, sent
from dashboard.figures.last_step import last_step_spec
from dashboard.figures.paths import axis_name, document_paths_figure, projection_title
from dashboard.views import big, controls, is_hidden
from dashboard.views.paths import (GRAPH_CONFIG, by_epoch, epoch_controls, epoch_title, plural,
                                   register_choose_callback, register_epoch_callbacks,
                                   register_states_callback)
from pipeline import runformat

VIEW_ID = "last_step"
TITLE = "Last activations"

GRAPH = "last_step-graph"
PROJECTION = "last_step-projection"
COLOR_BY = "last_step-color"
SYMLOG = "last_step-symlog"
NAMES = "last_step-names"
STATES = "last_step-states"
BY_EPOCH, EPOCH = "last_step-by-epoch", "last_step-epoch"
PROJECTIONS = (("ae2", "autoencoder"), ("pca2", "PCA"), ("tsne2", "t-SNE"))

#: The request guard's check of the projection choice (its options are set per run).
VALUE_CHECKS = {(PROJECTION, "value"): filters.one_of(*(value for value, _ in PROJECTIONS)),
                (EPOCH, "value"): filters.epoch, (STATES, "value"): filters.projected_states}

URL_PARAMS = [
    state.UrlParam("last_projection", PROJECTION, "value", "ae2"),
    state.UrlParam("last_color", COLOR_BY, "value", "class"),
    state.UrlParam("last_symlog", SYMLOG, "value", [], "bool", on_value="on"),
    state.UrlParam("last_names", NAMES, "value", [], "bool", on_value="on"),
    state.UrlParam("last_states", STATES, "value", controls.FIRST_STATES),
    state.UrlParam("last_by_epoch", BY_EPOCH, "value", [], "bool", on_value="on"),
    state.UrlParam("last_epoch", EPOCH, "value", None, "int"),
]


def layout():
    return html.Div(className="view-body", children=[
        html.Div(className="view-options", children=[
            dcc.RadioItems(id=PROJECTION, value="ae2", inline=True,
                           options=[{"label": label, "value": value} for value, label in PROJECTIONS]),
            dcc.RadioItems(id=COLOR_BY, value="class", inline=True,
                           options=[{"label": "colour by class", "value": "class"},
                                    {"label": "colour by hand usage", "value": "hand"}]),
            dcc.Checklist(id=SYMLOG, value=[], inline=True,
                          options=[{"label": "symlog", "value": "on"}]),
            dcc.Checklist(id=NAMES, value=[], inline=True,
                          options=[{"label": "name every class", "value": "on"}]),
            html.Span("Classes chosen in the filter bar are named and keyed; x: misclassified (labelled true \u2192 predicted). Click to select.",
                      className="hint"),
        ]),
        html.Div(className="view-options", children=[controls.states_picker(STATES)]),
        epoch_controls(BY_EPOCH, EPOCH),
        dcc.Loading(dcc.Graph(id=GRAPH, config=GRAPH_CONFIG, className="graph-tall"),
                    delay_show=300),
    ])


def register_callbacks(app: dash.Dash) -> None:
    @app.callback(Output(PROJECTION, "options"), Input(state.RUN, "value"))
    def show_projections(run_id):
        return projection_options(run_id)

    register_epoch_callbacks(app, EPOCH, next(p for p in URL_PARAMS if p.component_id == EPOCH))
    register_states_callback(app, STATES, None)

    @app.callback(Output(GRAPH, "figure"), *state.FILTER_INPUTS, state.TAB_INPUT,
                  state.SELECTED_INPUT, Input(PROJECTION, "value"), Input(COLOR_BY, "value"),
                  Input(SYMLOG, "value"), Input(BY_EPOCH, "value"), Input(EPOCH, "value"),
                  Input(NAMES, "value"), state.CHOSEN_INPUT, Input(STATES, "value"))
    def draw(run_id, classes, splits, hands, correctness, tab, selected, projection_id, color_by,
             symlog, switch=None, epoch=None, names=None, chosen=None, states=None):
        if is_hidden(VIEW_ID, tab):
            return dash.no_update
        return last_step_view_figure(run_id, classes, splits, hands, correctness, selected,
                                     projection_id, color_by, symlog, switch, epoch, names, chosen, states)

    @app.callback(Output(GRAPH, "figure", allow_duplicate=True), Input(GRAPH, "relayoutData"),
                  *(State(i.component_id, i.component_property) for i in state.FILTER_INPUTS),
                  State(state.SELECTED, "data"), State(PROJECTION, "value"), State(COLOR_BY, "value"),
                  State(SYMLOG, "value"), State(BY_EPOCH, "value"), State(EPOCH, "value"),
                  State(NAMES, "value"), State(state.CHOSEN, "data"), State(STATES, "value"),
                  prevent_initial_call=True)
    def zoom(relayout, run_id, classes, splits, hands, correctness, selected, projection_id, color_by,
             symlog, switch=None, epoch=None, names=None, chosen=None, states=None):
        """A zoom of a scene drawn as an image re-draws it (``views.big``)."""
        window = raster.zoom_window(relayout)
        if window is None:
            return dash.no_update
        figure = last_step_view_figure(run_id, classes, splits, hands, correctness, selected, projection_id,
                                       color_by, symlog, switch, epoch, names, chosen, states, window=window)
        return dash.no_update if figure is None else figure

    @app.callback(Output(state.SELECTED, "data", allow_duplicate=True),
                  Input(GRAPH, "clickData"), prevent_initial_call=True)
    def select(click):
        example = state.example_from_click(click)
        return dash.no_update if example is None else example

    register_choose_callback(app, GRAPH)


def applies_to(manifest: runformat.Manifest) -> bool:
    """Any run with a 2-D projection that places each example's (or document's) last step, or a
    recording's pictures by epoch."""
    return bool(data.last_step_projection_ids(manifest)) or bool(manifest.get("epoch_projections"))


def projection_options(run_id) -> list[dict]:
    """The projection choices, the ones the run lacks disabled."""
    try:
        ids = data.last_step_projection_ids(data.get_run(run_id).manifest)
    except runformat.RunError:
        ids = []
    return [{"label": label, "value": value, "disabled": bool(ids) and value not in ids}
            for value, label in PROJECTIONS]


def chosen_projection(manifest: runformat.Manifest, value: str | None, states: str | None = None) -> str:
    """The 2-D projection ``value`` ("ae2", "pca2", "tsne2") of the ``states`` pair (None or one
    the run lacks: its first) when the run has it, else the first of those it has."""
    ids = data.last_step_projection_ids(manifest)
    if not ids:
        raise runformat.RunError(data.no_projections_message(manifest, "2-D projection"))
    pairs = data.projection_states(manifest, dims=2)
    states = states if states in pairs else pairs[0]
    method = str(value or "ae2").rstrip("0123456789")
    for key in (method, *(pid.rstrip("0123456789") for pid, _ in PROJECTIONS)):
        found = data.projection_for(manifest, key, 2, states)
        if found:
            return found
    return ids[0]


def last_step_view_figure(run_id, classes, splits, hands, correctness, selected, projection_id,
                          color_by, symlog, switch=None, epoch=None, names=None, chosen=None, states=None,
                          window=None):
    """``switch`` (on) and ``epoch`` (None: the last kept): where a recording's examples ended at
    that epoch. ``names`` (on): every class named at its centroid, however many. ``chosen``: a set
    of examples (a box or lasso's) drawn as usual over the others in grey. ``window``: a zoom
    (``raster.zoom_window``; "reset": all of it) of a scene drawn as an image, re-drawn
    (``views.big``); None back for any other scene, which the browser zooms by itself."""
    try:
        run = data.get_run(run_id)
        classes, splits, hands, correctness = filters.filter_bar(run, classes, splits, hands, correctness)
        selected = filters.example_id(run, selected)
        epoch = filters.epoch(run, epoch)
        chosen = filters.example_ids(run, chosen)
        filters.projected_states(run, states)
        if by_epoch(run, switch, bool(data.last_step_projection_ids(run.manifest))):
            return None if window is not None else _epoch_scene(run, classes, splits, hands, correctness, selected,
                                run.kept_epochs[-1] if epoch is None else epoch, color_by or "class",
                                bool(symlog), bool(names), chosen)
        projection_id = chosen_projection(run.manifest, projection_id, states)
        if window is not None:
            return None if run.manifest.is_language_model else _zoomed_last_steps(
                run, classes, splits, hands, correctness, selected, projection_id, color_by or "class",
                bool(symlog), bool(names), chosen, None if window == "reset" else window)
        if run.manifest.is_language_model:
            return _document_scene(run, splits, selected, projection_id, bool(symlog))
        return _last_step_scene(run, classes, splits, hands, correctness, selected, projection_id,
                                color_by or "class", bool(symlog), bool(names), chosen)
    except runformat.RunError as error:
        return message_figure(str(error))


@data.run_cached(maxsize=16, shared=True)
def _last_step_scene(run, classes, splits, hands, correctness, selected, projection_id, color_by,
                     symlog, names=False, chosen=None):
    """Memoised as sent, like the paths: the same scene is asked for again on every tab switch."""
    frame = data.filtered_examples(run, classes, splits, hands, correctness)
    points = data.last_step_projection(run, projection_id)
    if color_by == "hand" and not data.has_hand_usage(run):
        return as_sent(message_figure("This run has no hand usage to colour by."))
    rows = big.big_scene(points, frame, big.MAX_VECTOR_MARKERS)
    if rows is not None:        # a big run: an image of the last steps (views.big)
        return sent(big.raster_scene(run, points, rows, classes, selected, chosen, symlog,
                                        _scene_title(run, frame, projection_id), axis_name(projection_id),
                                        color_by=color_by))
    return sent(last_step_spec(points, frame, run.classes, color_by=color_by, selected=selected,
                                    symlog=symlog, highlight=classes, name_all=names,
                                    axis_title=axis_name(projection_id), chosen_ids=chosen,
                                    title=_scene_title(run, frame, projection_id)))


def _scene_title(run: runformat.Run, frame, projection_id: str) -> str:
    if data.has_verdicts(run):
        wrong = int((~frame["correct"].astype(bool)).sum())
        verdicts = f"{wrong:,} misclassified"
    else:
        verdicts = data.no_predictions_message(run.manifest)
    return f"{projection_title(projection_id)} · last step of {len(frame):,} examples, {verdicts}"


@data.run_cached(maxsize=16, shared=True)
def _zoomed_last_steps(run, classes, splits, hands, correctness, selected, projection_id, color_by, symlog,
                       names, chosen, window):
    """A zoom of a scene drawn as an image: the window's examples as markers (hover, click) once
    they are at most ``big.MAX_VECTOR_MARKERS``, else the window as an image; None for a scene of
    points."""
    frame = data.filtered_examples(run, classes, splits, hands, correctness)
    points = data.last_step_projection(run, projection_id)
    rows = big.big_scene(points, frame, big.MAX_VECTOR_MARKERS)
    if rows is None or (color_by == "hand" and not data.has_hand_usage(run)):
        return None
    if window is None:         # a reset: the whole scene, as first drawn (memoised)
        return _last_step_scene(run, classes, splits, hands, correctness, selected, projection_id, color_by,
                                symlog, names, chosen)
    title, axis_title = _scene_title(run, frame, projection_id), axis_name(projection_id)
    return sent(big.zoomed_or_image(
        run, points, rows, window, symlog, big.MAX_VECTOR_MARKERS,
        lambda part: last_step_spec(part, frame, run.classes, color_by=color_by, selected=selected,
                                    symlog=symlog, highlight=classes, name_all=names, axis_title=axis_title,
                                    chosen_ids=chosen, title=f"{title} · zoomed: {len(part):,} examples"),
        lambda at: big.raster_scene(run, points, rows, classes, selected, chosen, symlog, title, axis_title, at,
                                    color_by=color_by)))


@data.run_cached(maxsize=16, shared=True)
def _epoch_scene(run, classes, splits, hands, correctness, selected, epoch, color_by, symlog, names=False,
                 chosen=None):
    """Each filtered example's last step at one kept epoch, on the axes of every kept epoch's."""
    points = data.epoch_picture(run, epoch, last_only=True)
    ranges = data.epoch_ranges(run, last_only=True)
    if run.manifest.is_language_model:
        frame = data.filtered_examples(run, None, splits)
        points = points[points["example_id"].isin(frame["example_id"])]
        return as_sent(document_paths_figure(points, data.labels(run), selected=selected, symlog=symlog,
                                             lines=False, ranges=ranges,
                                             title=epoch_title(run, epoch, f"last step of {plural(len(frame), 'document')}")))
    if color_by == "hand" and not data.has_hand_usage(run):
        return as_sent(message_figure("This run has no hand usage to colour by."))
    frame = data.filtered_examples(run, classes, splits, hands, correctness)
    verdicts = [c for c in ("prediction", "correct", "confidence") if c in frame]
    return sent(last_step_spec(points, frame.drop(columns=verdicts), run.classes, color_by=color_by,
                                    selected=selected, symlog=symlog, ranges=ranges, highlight=classes,
                                    name_all=names, axis_title="PCA", chosen_ids=chosen,
                                    title=epoch_title(run, epoch, f"last step of {len(frame):,} examples")))


@data.run_cached(maxsize=16, shared=True)
def _document_scene(run, splits, selected, projection_id, symlog):
    """A language model's documents where they end (their last step), one colour per document."""
    frame = data.filtered_examples(run, None, splits)
    points = data.last_step_projection(run, projection_id)
    points = points[points["example_id"].isin(frame["example_id"])]
    return as_sent(document_paths_figure(points, data.labels(run), selected=selected, symlog=symlog,
                                         lines=False,
                                         title=f"{projection_title(projection_id)} · last step of "
                                               f"{plural(len(frame), 'document')}"))
