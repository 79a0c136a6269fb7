"""Prediction film view: the filtered examples' projected paths growing step by step (play/pause,
step slider); a click on a path's head selects that example, and the selected example (when the
filters let it through) is always drawn, marked in every frame. The States choice (the paths
view's) picks which layer's h, c or gate the film's projection pictures, among those the run has;
the Projection choice then lists that pair's 2-D path projections. The server sends the figure
without its frames (a store, ``SOURCE``); the browser builds them (assets/lens-film.js)."""

from __future__ import annotations

import dash
import numpy as np
import pandas as pd
from dash import ClientsideFunction, Input, Output, dcc, html

from dashboard import data, filters, state, views
from dashboard.figures import film as figures
from dashboard.figures import HIGHLIGHT, class_colors, message_spec, sent, untyped
from dashboard.figures.alignment import example_rows, padded, step_positions
from dashboard.views import controls
from dashboard.views.controls import GRAPH_CONFIG, alignment_switch, field
from dashboard.views.paths import register_states_callback
from pipeline import runformat

VIEW_ID = "film"
TITLE = "Prediction film"

PROJECTION, ALIGN, GRAPH, STATES = "film-projection", "film-align", "film-graph", "film-states"
SOURCE = "film-source"          # the figure without its frames; the browser expands it (lens.film)
DEFAULT_PROJECTION = "ae2"

def _check_projection(run: runformat.Run | None, value) -> None:
    """The projection choice (options set per run): the default, or a 2-D path projection the run has."""
    if value is None or value == DEFAULT_PROJECTION:
        return
    if not isinstance(value, str) or (run is not None and value not in film_projections(run.manifest)):
        raise filters.Refused(f"{str(value)[:40]!r} is not a projection the film can draw for this run")


VALUE_CHECKS = {(PROJECTION, "value"): _check_projection, (STATES, "value"): filters.projected_states}

URL_PARAMS = [
    state.UrlParam("film_projection", PROJECTION, "value", DEFAULT_PROJECTION),
    state.UrlParam("film_align", ALIGN, "value", "end"),
    state.UrlParam("film_states", STATES, "value", controls.FIRST_STATES),
]


def film_projections(manifest: runformat.Manifest, states: str | None = None) -> list[str]:
    """Ids of the 2-D projections with a point per step (the film needs whole paths), of the
    ``states`` pair only when one is given."""
    return [str(entry["id"]) for entry in data.projection_entries(manifest, "paths", 2)
            if states is None or data.projection_state(entry) == states]


def applies_to(manifest: runformat.Manifest) -> bool:
    """Any run with a 2-D path projection: classifiers' examples coloured by class, language
    models' documents one colour each."""
    return bool(film_projections(manifest))


def layout():
    return html.Div(children=[
        html.Div(className="view-options", children=[controls.states_picker(STATES)]),
        html.Div(className="view-options", children=[
            # Radio items, not a Dropdown: a Dropdown drops a URL value its options do not hold yet.
            field("Projection", dcc.RadioItems(id=PROJECTION, options=[], value=DEFAULT_PROJECTION,
                                               inline=True)),
            alignment_switch(ALIGN),
            html.Span(f"At most {figures.MAX_EXAMPLES} examples and {figures.MAX_FRAMES} frames are drawn; "
                      "long paths get fewer frames (every k-th step), then fewer examples. The title says "
                      "how many. Click a head to select its example.", className="hint"),
        ]),
        dcc.Loading([dcc.Store(id=SOURCE), dcc.Graph(id=GRAPH, config=GRAPH_CONFIG)], delay_show=300),
    ])


def projection_options(run_id, states=None) -> list[dict]:
    """The chosen states pair's 2-D path projections (the run's first pair's for None)."""
    try:
        manifest = data.get_run(run_id).manifest
    except runformat.RunError:
        return []
    ids = film_projections(manifest, controls.chosen_states(manifest, states, "paths"))
    names = {"ae": "autoencoder", "pca": "PCA"}
    return [{"label": f"{names.get(pid.partition('-')[0].rstrip('0123456789'), pid)} ({pid})", "value": pid}
            for pid in ids]


def _projection_id(run: runformat.Run, value, states=None) -> str:
    """The projection ``value`` if it pictures the ``states`` pair (None: the run's first), else
    that pair's projection by the same method, the default, or its first."""
    if not film_projections(run.manifest):
        raise runformat.RunError(data.no_projections_message(run.manifest, "2-D projection with a point per step"))
    states = controls.chosen_states(run.manifest, states, "paths")
    ids = film_projections(run.manifest, states) or film_projections(run.manifest)
    if value in ids:
        return value
    method = str(value or DEFAULT_PROJECTION).partition("-")[0].rstrip("0123456789")
    same = data.projection_for(run.manifest, method, 2, states, "paths")
    return same if same in ids else DEFAULT_PROJECTION if DEFAULT_PROJECTION in ids else ids[0]


def film_classes(run_classes: list[str], chosen: list[str] | None, present) -> tuple[list[str], list[str]]:
    """The classes drawn, in the order chosen in the filter (else the run's), and their colours:
    far-apart colours for up to ten chosen classes, the run's class palette otherwise."""
    present = set(present)
    if chosen:
        names = [name for name in chosen if name in present]
        if len(names) <= len(HIGHLIGHT):
            return names, list(HIGHLIGHT[:len(names)])
    else:
        names = [name for name in run_classes if name in present]
    palette = class_colors(run_classes)
    return names, [palette.get(name, "#444444") for name in names]


def film_source(run_id, classes, splits, hands, correctness, projection, align, selected=None, states=None,
                chosen=None) -> dict:
    """What the view sends for the filtered examples (``figures.film_source`` as sent: the figure
    without its frames), capped as ``figures.film_plan`` decides; ``selected`` (an example id) is
    marked; ``states``: the ``"layer:tensor"`` pictured; ``chosen``: a box or lasso's set (only
    those examples)."""
    try:
        run = data.get_run(run_id)
        classes, splits, hands, correctness = filters.filter_bar(run, classes, splits, hands, correctness)
        selected = filters.example_id(run, selected)
        filters.projected_states(run, states)
        chosen = filters.example_ids(run, chosen)
        projection = _projection_id(run, projection, states)
        return _film_scene(run, classes, splits, hands, correctness, projection, align, selected, chosen)
    except runformat.RunError as error:
        return message_spec(str(error))


def film_figure(*args, **kwargs) -> dict:
    """``film_source``'s answer expanded as the browser expands it: the whole figure, frames and
    all, as sent (notebooks, exports, tests)."""
    return expanded(film_source(*args, **kwargs))


def expanded(source: dict) -> dict:
    """A sent film source (``film_source``) as the whole figure, sent (``figures.expand``)."""
    if "film" not in source:
        return source
    film = dict(source["film"])
    for key in ("x", "y", "colour") + (("p",) if film["p"] is not None else ()):
        film[key] = untyped(film[key])
    return sent(figures.expand({**source, "film": film}))


@data.run_cached(maxsize=8, shared=True)
def _film_scene(run, classes, splits, hands, correctness, projection, align, selected=None, chosen=None) -> dict:
    """Memoised as Dash sends it (typed arrays already base64): the same filters come back."""
    return sent(_build_film(run, classes, splits, hands, correctness, projection, align, selected, chosen))


def _build_film(run, classes, splits, hands, correctness, projection, align, selected=None, chosen=None):
    """The film of the projection ``projection`` (an id the run has: ``_projection_id``)."""
    frame = data.filtered_examples(run, classes, splits, hands, correctness)
    if frame.empty:
        return message_spec("no examples pass the filters")
    frame = data.keep_chosen(frame, chosen)
    which = "filtered" if chosen is None else "chosen"
    points = data.projection(run, projection)
    # p(true class) per step: a classifier's, when it recorded predictions (a language model's
    # true_prob is the next token's, not the document's)
    probabilities = (data.true_probabilities(run)
                     if run.manifest.is_classification and data.has_predictions(run.manifest) else None)
    groups = data.labels(run).loc[frame["example_id"]].to_numpy()

    point_ids = points["example_id"].to_numpy()
    ids = frame["example_id"].to_numpy()
    starts = np.searchsorted(point_ids, ids, side="left")
    lengths = np.searchsorted(point_ids, ids, side="right") - starts
    if not lengths.any():
        return message_spec(f"projection {projection!r} has no steps of the filtered examples")
    n_steps = int(lengths.max())
    # Which steps each example has on the common axis; rows are only gathered for the drawn ones.
    columns = np.arange(n_steps)[None, :]
    present = columns < lengths[:, None] if align == "start" else columns >= n_steps - lengths[:, None]
    if run.manifest.is_classification:
        drawn, colours = film_classes(run.classes, classes, pd.unique(groups))
    else:                                   # documents: one colour each, cycling
        drawn = list(pd.unique(groups))
        colours = [HIGHLIGHT[i % len(HIGHLIGHT)] for i in range(len(drawn))]
    rank = {name: i for i, name in enumerate(drawn)}
    class_index = np.array([rank[name] for name in groups], dtype=np.int16)
    plan = figures.film_plan(present, class_index)
    wanted = np.flatnonzero(ids == selected) if selected is not None else []
    if len(wanted) and wanted[0] not in plan.examples:          # the selected example is always drawn
        plan.examples = np.sort(np.append(plan.examples, wanted[0]))

    rows, t, owner = example_rows(starts[plan.examples], lengths[plan.examples])
    position = step_positions(t, lengths[plan.examples][owner], n_steps, align)
    E = len(plan.examples)
    x = padded(points["x"].to_numpy()[rows], owner, position, E, n_steps)
    y = padded(points["y"].to_numpy()[rows], owner, position, E, n_steps)
    probability = None
    if probabilities is not None:
        step_rows = frame["row_start"].to_numpy()[plan.examples][owner] + t
        probability = padded(probabilities[step_rows], owner, position, E, n_steps)
    chosen = frame.iloc[plan.examples]
    names = groups[plan.examples]
    if "prediction" in chosen:
        hover = [f"#{eid} {label} → predicted {pred}" + (f" ({conf:.0%})" if conf == conf else "")
                 for eid, label, pred, conf in zip(chosen["example_id"], names, chosen["prediction"],
                                                   chosen.get("confidence", np.full(E, np.nan)))]
    else:
        hover = [f"#{eid} {name}" for eid, name in zip(chosen["example_id"], names)]
    stride = int(np.diff(plan.positions).max()) if len(plan.positions) > 1 else 1
    note = (f"{E} of {len(frame)} {which} examples, {len(plan.positions)} frames"
            + (f" (one every {stride} steps)" if stride > 1 else "")
            + (f"; #{selected} (selected) is filtered out" if selected is not None and not len(wanted) else ""))
    return figures.film_source(x, y, class_index[plan.examples], drawn, chosen["example_id"].to_numpy(),
                                 hover, align, plan.positions, probability, projection, note, colours,
                                 "class" if run.manifest.is_classification else "document", selected,
                                 controls.pictured(run, projection))



def register_callbacks(app: dash.Dash) -> None:
    @app.callback(Output(PROJECTION, "options"), Input(state.RUN, "value"), Input(STATES, "value"))
    def show_projections(run_id, states=None):
        return projection_options(run_id, states)

    register_states_callback(app, STATES, "paths", 2)

    app.clientside_callback(ClientsideFunction(namespace="lens", function_name="film"), Output(GRAPH, "figure"),
                            Input(SOURCE, "data"), prevent_initial_call=True)

    @app.callback(Output(SOURCE, "data"), *state.FILTER_INPUTS, state.TAB_INPUT, Input(PROJECTION, "value"),
                  Input(ALIGN, "value"), state.SELECTED_INPUT, Input(STATES, "value"), state.CHOSEN_INPUT)
    def update(run_id, classes, splits, hands, correctness, tab, projection, align, selected=None, states=None,
               chosen=None):
        if views.is_hidden(VIEW_ID, tab):
            return dash.no_update
        return film_source(run_id, classes, splits, hands, correctness, projection, align, selected, states,
                           chosen)

    @app.callback(Output(state.SELECTED, "data", allow_duplicate=True), Input(GRAPH, "clickData"),
                  prevent_initial_call=True)
    def select_example(click_data):
        example_id = state.example_from_click(click_data)
        return dash.no_update if example_id is None else example_id
