"""Inspector (click-to-inspect): everything about the selected example in one place.

Its input channels per hand, its path over the paths of its true and predicted classes, its
confidence in both over time, its nearest neighbours at the last step and its metadata; plus a
list of the filtered misclassified examples to pick from. The States choice (the paths view's)
picks which layer's h, c or gate both the path and the neighbours look at. For any classification run:
a part the run has no data for (inputs, predictions, a 2-D path projection) says so, in words for
where the run came from.
"""

from __future__ import annotations

import dash
import numpy as np
import pandas as pd
from dash import ALL, Input, Output, ctx, dcc, html

from dashboard import data, filters, state
from dashboard.figures import message_figure, sent
from dashboard.figures import series
from dashboard.figures.paths import axis_name
from dashboard.figures.inspector import confidence_spec, example_path_figure, hand_groups, inputs_spec
from dashboard.views import attention_matrix, controls, is_hidden, why
from dashboard.views.paths import GRAPH_CONFIG, register_states_callback
from pipeline import runformat

VIEW_ID = "inspector"
TITLE = "Inspector"

META = "inspector-meta"
INPUTS = "inspector-inputs"
PATH = "inspector-path"
CONFIDENCE = "inspector-confidence"
NEAREST = "inspector-nearest"
MISTAKES = "inspector-mistakes"
PROJECTION = "inspector-projection"
SYMLOG = "inspector-symlog"
STATES = "inspector-states"
NEAREST_TITLE = "inspector-nearest-title"
LINK = "example-link"              # pattern id {"type": LINK, "list": ..., "index": example_id}
N_NEAREST = 8
MAX_MISTAKES = 200

#: The why panels' sliders (their ranges are set per example) and the states choice.
VALUE_CHECKS = {**why.VALUE_CHECKS, (STATES, "value"): filters.projected_states}

URL_PARAMS = [
    state.UrlParam("inspector_projection", PROJECTION, "value", "ae2"),
    state.UrlParam("inspector_symlog", SYMLOG, "value", [], "bool", on_value="on"),
    state.UrlParam("inspector_states", STATES, "value", controls.FIRST_STATES),
]

NOTHING_SELECTED = "Click an example in any view, or pick a misclassified one from the list."


def applies_to(manifest: runformat.Manifest) -> bool:
    """Any classification run, trained or imported; its parts say what the run lacks (inputs,
    predictions, a 2-D path projection)."""
    return manifest.is_classification


def layout():
    graph = {"config": GRAPH_CONFIG}
    return html.Div(className="view-body inspector", children=[
        html.Div(className="inspector-main", children=[
            html.Div(id=META, className="inspector-meta", children=NOTHING_SELECTED),
            html.Div(className="inspector-row", children=[
                html.Div(className="panel", children=[
                    html.H3("Path among its classes"),
                    html.Div(className="view-options", children=[
                        dcc.RadioItems(id=PROJECTION, value="ae2", inline=True,
                                       options=[{"label": "autoencoder", "value": "ae2"},
                                                {"label": "PCA", "value": "pca2"}]),
                        dcc.Checklist(id=SYMLOG, value=[], inline=True,
                                      options=[{"label": "symlog", "value": "on"}]),
                    ]),
                    html.Div(className="view-options", children=[controls.states_picker(STATES)]),
                    dcc.Loading(dcc.Graph(id=PATH, className="graph-panel", **graph), delay_show=300)]),
                html.Div(className="panel", children=[
                    html.H3("Confidence over time"),
                    dcc.Loading(dcc.Graph(id=CONFIDENCE, className="graph-panel", **graph), delay_show=300)]),
            ]),
            html.Div(className="panel", children=[
                html.H3("Input channels"),
                dcc.Loading(dcc.Graph(id=INPUTS, className="graph-inputs", **graph), delay_show=300)]),
            why.panel(),                 # attribution and what-if edits (dashboard.views.why)
            attention_matrix.panel(),    # imported sequence-to-sequence attention, when the run has it
        ]),
        html.Div(className="inspector-side", children=[
            html.H3("Nearest examples (last step)", id=NEAREST_TITLE),
            dcc.Loading(html.Div(id=NEAREST, className="example-list"), delay_show=300),
            html.H3("Misclassified (filtered)"),
            html.Div(id=MISTAKES, className="example-list mistakes"),
        ]),
    ])


def register_callbacks(app: dash.Dash) -> None:
    # Four callbacks, not one: the browser asks for them at once and each stays small.
    @app.callback(Output(META, "children"), Output(NEAREST, "children"),
                  Input(state.RUN, "value"), state.TAB_INPUT, state.SELECTED_INPUT, Input(STATES, "value"))
    def summarise(run_id, tab, selected, states=None):
        return [dash.no_update] * 2 if is_hidden(VIEW_ID, tab) else inspect_summary(run_id, selected, states)

    register_states_callback(app, STATES, "paths", 2)

    @app.callback(Output(NEAREST_TITLE, "children"), Input(state.RUN, "value"), Input(STATES, "value"))
    def name_nearest(run_id, states=None):
        return nearest_title(run_id, states)

    @app.callback(Output(INPUTS, "figure"), Input(state.RUN, "value"), state.TAB_INPUT,
                  state.SELECTED_INPUT, Input(INPUTS, "relayoutData"))
    def draw_inputs(run_id, tab, selected, relayout=None):
        if is_hidden(VIEW_ID, tab):
            return dash.no_update
        return inspect_inputs(run_id, selected, relayout if relayout and ctx.triggered_id == INPUTS else None)

    @app.callback(Output(PATH, "figure"), Input(state.RUN, "value"), state.TAB_INPUT,
                  state.SELECTED_INPUT, Input(PROJECTION, "value"), Input(SYMLOG, "value"), Input(STATES, "value"))
    def draw_path(run_id, tab, selected, projection_id, symlog, states=None):
        if is_hidden(VIEW_ID, tab):
            return dash.no_update
        return inspect_path(run_id, selected, projection_id, bool(symlog), states)

    @app.callback(Output(CONFIDENCE, "figure"), Input(state.RUN, "value"), state.TAB_INPUT,
                  state.SELECTED_INPUT, Input(CONFIDENCE, "relayoutData"))
    def draw_confidence(run_id, tab, selected, relayout=None):
        if is_hidden(VIEW_ID, tab):
            return dash.no_update
        return inspect_confidence(run_id, selected, relayout if relayout and ctx.triggered_id == CONFIDENCE else None)

    @app.callback(Output(MISTAKES, "children"), *state.FILTER_INPUTS, state.TAB_INPUT,
                  state.SELECTED_INPUT)
    def list_mistakes(run_id, classes, splits, hands, correctness, tab, selected):
        if is_hidden(VIEW_ID, tab):
            return dash.no_update
        return mistakes_list(run_id, classes, splits, hands, correctness, selected)

    @app.callback(Output(state.SELECTED, "data", allow_duplicate=True),
                  Input({"type": LINK, "list": ALL, "index": ALL}, "n_clicks"),
                  prevent_initial_call=True)
    def select_from_list(clicks):
        if not ctx.triggered or not ctx.triggered[0].get("value"):
            return dash.no_update                 # a list was redrawn, nothing was clicked
        return int(ctx.triggered_id["index"])

    @app.callback(Output(state.SELECTED, "data", allow_duplicate=True),
                  Input(PATH, "clickData"), prevent_initial_call=True)
    def select_from_path(click):
        example = state.example_from_click(click)
        return dash.no_update if example is None else example

    why.register_callbacks(app)
    attention_matrix.register_callbacks(app)


def classifier_run(run_id) -> runformat.Run:
    run = data.get_run(run_id)
    if not applies_to(run.manifest):
        raise runformat.RunError(f"the inspector is for classification runs; run {run.run_id!r} is a language "
                                 f"model's (its documents have no class): see Example paths and Text heatmap")
    return run


def selected_row(run_id, selected) -> tuple[runformat.Run, pd.Series]:
    run = classifier_run(run_id)
    row = data.example_row(run, filters.example_id(run, selected))
    if row is None:
        raise runformat.RunError(f"run {run.run_id!r} has no example {selected}")
    return run, row


def inspect_summary(run_id, selected, states=None) -> list:
    """The metadata of ``selected`` and its nearest examples at the last step, in the layer and
    tensor of the ``states`` pair (None: the run's first projected pair; the last layer's h when
    its projections do not say)."""
    if selected is None:
        return [NOTHING_SELECTED, None]
    try:
        run, row = selected_row(run_id, selected)
        filters.projected_states(run, states)
        layer, tensor = looked_at(run, states)
        neighbours = data.nearest_examples(run, int(selected), N_NEAREST, layer, tensor)
    except runformat.RunError as error:
        return [html.Div(str(error), className="error"), None]
    return [metadata_table(row, data.no_predictions_message(run.manifest)),
            example_links(neighbours, "nearest", extra="distance")]


def nearest_title(run_id, states) -> str:
    """The nearest examples' heading: which layer and tensor they are nearest in."""
    try:
        run = classifier_run(run_id)
        filters.projected_states(run, states)
    except runformat.RunError:
        return "Nearest examples (last step)"
    layer, tensor = looked_at(run, states)
    return f"Nearest examples (last step of {controls.states_label(f'{layer}:{tensor}', data.last_layer(run))})"


def looked_at(run: runformat.Run, states) -> tuple[int, str]:
    """The layer and tensor of the chosen (else the first) projected pair; the last layer where
    the projections do not name it, h where the run has no projections."""
    pair = controls.chosen_states(run.manifest, states, "paths") or "?:h"
    layer, _, tensor = pair.partition(":")
    return (int(layer) if layer.isdigit() else data.last_layer(run)), tensor


def zoom_window(row: pd.Series, relayout) -> series.Window | None:
    """What a series figure of the example in ``row`` draws: the whole example (no event, or an
    event that is not a zoom, such as the graph's autosize on mount), the window a zoom asks for,
    or None (a zoom of a short example, whose every step is drawn already)."""
    window = series.WHOLE if relayout is None else series.window_from_relayout(relayout)
    if window is None:
        return series.WHOLE              # not a zoom (the graph's autosize on mount): draw it whole
    if relayout is not None and int(row["length"]) <= series.MAX_SERIES_POINTS:
        return None
    return window


def inspect_inputs(run_id, selected, relayout=None):
    """The example's input channels over time; ``relayout``: the zoom event that asked for them
    again (None when the example or run changed)."""
    if selected is None:
        return message_figure(NOTHING_SELECTED)
    try:
        run, row = selected_row(run_id, selected)
        if not data.has_inputs(run.manifest):
            raise runformat.RunError(no_inputs_message(run.manifest))
        window = zoom_window(row, relayout)
        if window is None:
            return dash.no_update
        steps = data.example_steps(data.inputs(run), run, int(selected))
    except runformat.RunError as error:
        return message_figure(str(error))
    channels = [c for c in steps.columns if c not in ("example_id", "t")]
    return sent(inputs_spec(steps, hand_groups(channels, run.manifest.get("hands")), window,
                            revision=f"inputs-{run.run_id}-{int(selected)}"))


def no_inputs_message(manifest: runformat.Manifest) -> str:
    if manifest.origin == "imported":
        return "this import kept no inputs (give an inputs field, docs/import-format.md)"
    return f"run {manifest.run_id!r} kept no input channels ({runformat.INPUTS_FILE})"


def inspect_path(run_id, selected, projection_id, symlog, states=None):
    """The path of ``selected`` over the paths of its true and predicted classes, in a projection
    of the ``states`` pair."""
    if selected is None:
        return message_figure(NOTHING_SELECTED)
    try:
        run, row = selected_row(run_id, selected)
        filters.projected_states(run, states)
        chosen = path_projection(run.manifest, projection_id, states)
        points = data.projection(run, chosen)
    except runformat.RunError as error:
        return message_figure(str(error))
    labels = data.labels(run)
    predicted = row.get("prediction", row["label"])
    wanted = labels.index[labels.isin([row["label"], predicted]).to_numpy()]
    points = points[points["example_id"].isin(wanted)]
    return example_path_figure(points, labels, int(selected), row["label"], predicted, symlog=symlog,
                               axis_title=axis_name(chosen), pictures=controls.pictured(run, chosen))


def path_projection(manifest: runformat.Manifest, value: str | None, states: str | None = None) -> str:
    """The 2-D path projection picked ("ae2", "pca2") of the ``states`` pair (None: the run's
    first), else that pair's other method, else one the run has."""
    ids = data.path_projection_ids(manifest, dims=2)
    if not ids:
        raise runformat.RunError(data.no_projections_message(manifest, "2-D projection with a point per step"))
    states = controls.chosen_states(manifest, states, "paths")
    method = str(value or "ae2").rstrip("0123456789")
    for key in (method, "ae", "pca"):
        found = data.projection_for(manifest, key, 2, states, "paths")
        if found:
            return found
    return value if value in ids else next((pid for pid in ("ae2", "pca2") if pid in ids), ids[0])



def inspect_confidence(run_id, selected, relayout=None):
    """The probability of the true and the predicted class after every step; ``relayout`` as
    for ``inspect_inputs``."""
    if selected is None:
        return message_figure(NOTHING_SELECTED)
    try:
        run, row = selected_row(run_id, selected)
        if not data.has_verdicts(run):
            raise runformat.RunError(data.no_predictions_message(run.manifest))
        window = zoom_window(row, relayout)
        if window is None:
            return dash.no_update
        true_prob, k = data.class_probability(run, int(selected), int(row["label_index"]))
        predicted_prob, _ = data.class_probability(run, int(selected), int(row["prediction_index"]))
    except runformat.RunError as error:
        return message_figure(str(error))
    return sent(confidence_spec(np.arange(int(row["length"])), true_prob, predicted_prob,
                                row["label"], row["prediction"], k, window,
                                revision=f"confidence-{run.run_id}-{int(selected)}"))


HIDDEN_META = {"row_start", "label_index", "prediction_index", "label_name", "prediction_name"}


def metadata_table(row: pd.Series, note: str = "") -> html.Div:
    """The example's header (class, prediction and verdict, or ``note`` for a run without
    predictions) over its metadata."""
    if "correct" in row:
        verdict = "correct" if bool(row["correct"]) else "misclassified"
        header = html.Div(className=f"meta-header {verdict}", children=[
            html.Strong(f"Example {int(row['example_id'])}: {row['label']}"),
            html.Span(f" predicted {row['prediction']} ({_percent(row.get('confidence'))}) · {verdict}"),
        ])
    else:
        header = html.Div(className="meta-header", children=[
            html.Strong(f"Example {int(row['example_id'])}: {row['label']}"),
            html.Span(f" · {note}" if note else "")])
    cells = [html.Div([html.Span(name), html.Strong(_text(value))], className="meta-cell")
             for name, value in row.items() if name not in HIDDEN_META]
    return html.Div([header, html.Div(cells, className="meta-grid")])


def _percent(value) -> str:
    return "?" if value is None or pd.isna(value) else f"{float(value):.0%}"


def _text(value) -> str:
    if isinstance(value, (float, np.floating)):
        return "" if np.isnan(value) else f"{value:.3g}"
    return "" if value is None or value is pd.NA else str(value)


def mistakes_list(run_id, classes, splits, hands, correctness, selected=None):
    try:
        run = classifier_run(run_id)
        frame = data.filtered_examples(run, *filters.filter_bar(run, classes, splits, hands, correctness))
        selected = filters.example_id(run, selected)
    except runformat.RunError as error:
        return html.Div(str(error), className="error")
    if "correct" not in frame:
        return html.Div(f"None to list: {data.no_predictions_message(run.manifest)}.", className="hint")
    wrong = frame[~frame["correct"].astype(bool)]
    if wrong.empty:
        return html.Div("None among the filtered examples.", className="hint")
    shown = example_links(wrong.head(MAX_MISTAKES), "mistakes", selected=selected)
    more = len(wrong) - MAX_MISTAKES
    return [shown, html.Div(f"... and {more:,} more (narrow the filters)", className="hint")
            ] if more > 0 else shown


def example_links(frame: pd.DataFrame, list_name: str, extra: str | None = None,
                  selected: int | None = None) -> html.Div:
    """Clickable example rows: "#12 drink → danger (0.91)" (an arrow only for mistakes); the
    selected example's row is marked."""
    items = []
    for _, row in frame.iterrows():
        text = f"#{int(row['example_id'])} {row['label']}"
        if "prediction" in row and row["label"] != row["prediction"]:
            text += f" → {row['prediction']}"
        if extra:
            text += f" ({float(row[extra]):.2f})"
        items.append(html.Button(text, id={"type": LINK, "list": list_name,
                                           "index": int(row["example_id"])},
                                 className="link-button selected"
                                 if row["example_id"] == selected else "link-button", n_clicks=0))
    return html.Div(items, className="links")
