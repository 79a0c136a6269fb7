"""Phrase patterns view (LSTMVis Figure 9): do the cells' on/off patterns tell phrases apart?

For a language-model run: every phrase of one annotation (a maximal run of one value in a
document: a bracket-depth segment, a quoted span, a run of one token type), the set of cells on
throughout it (above the threshold), projected with PCA and coloured by the value. The title gives
the separation score, the k-NN accuracy of the value from the pattern, beside the accuracy of
always guessing the commonest value. A click on a point opens the phrase in the text heatmap.
"""

from __future__ import annotations

import dash
import numpy as np
from dash import Input, Output, State, ctx, dcc, html

from dashboard import data, state, views
from dashboard.figures import message_figure
from dashboard.figures.patterns import patterns_figure
from dashboard.views import text_heatmap as text
from dashboard.views.controls import (GRAPH_CONFIG, LAST_LAYER, chosen_layer, field, layer_options,
                                      layer_picker, register_layer_tick)
from pipeline import runformat
from pipeline.analysis import patterns as engine

VIEW_ID = "patterns"
TITLE = "Phrase patterns"
ANNOTATION, LAYER, STATE_KIND, THRESHOLD, MIN_LENGTH = ("patterns-annotation", "patterns-layer", "patterns-kind",
                                                        "patterns-threshold", "patterns-min-length")
GRAPH = "patterns-graph"
MAX_VALUES = 24            # annotations with more distinct values (a column number) are not offered
SHOWN_CHARS = 40
SHOWN_WORDS = 12

URL_PARAMS = [
    state.UrlParam("patterns_annotation", ANNOTATION, "value", ""),
    state.UrlParam("patterns_layer", LAYER, "value", LAST_LAYER),
    state.UrlParam("patterns_kind", STATE_KIND, "value", "h"),
    state.UrlParam("patterns_threshold", THRESHOLD, "value", 0.3),
]


def applies_to(manifest: runformat.Manifest) -> bool:
    return manifest.is_language_model and bool(manifest.annotations)


@data.run_cached(maxsize=8)
def annotation_choices(run: runformat.Run) -> list[str]:
    """Annotations with a few distinct values (categories, depths, flags), the run's order."""
    chosen = []
    for name, info in text.annotation_names(run).items():
        if info.get("kind") == "categorical" or len(np.unique(text.annotation(run, name))) <= MAX_VALUES:
            chosen.append(name)
    return chosen


@data.run_cached(maxsize=16)
def phrase_patterns(run: runformat.Run, name: str, layer: int, kind: str, threshold: float,
                    min_length: int) -> tuple:
    """(phrases, their patterns, value labels) of one annotation."""
    values = text.annotation(run, name)
    found = engine.phrases(values, data.examples(run)["row_start"].to_numpy(), min_length)
    patterns = engine.on_patterns(text.states(run, layer, kind), found, threshold)
    categories = text.annotation_names(run)[name].get("categories")
    labels = np.array([categories[int(v)] if categories else str(v) for v in found.values], dtype=object)
    return found, patterns, labels


def figure(run_id, name, layer, kind, threshold, min_length):
    try:
        run = text.text_run(run_id)
        choices = annotation_choices(run)
        if not choices:
            return message_figure(f"run {run.run_id!r} has no annotation with few values to group phrases by")
        name = name if name in choices else choices[0]
        layer = chosen_layer(run, layer)
        kind = kind if kind in text.STATE_KINDS else "h"
        threshold = float(threshold if threshold is not None else 0.3)
        found, patterns, labels = phrase_patterns(run, name, layer, kind, threshold, max(int(min_length or 2), 1))
    except runformat.RunError as error:
        return message_figure(str(error))
    if len(found.starts) < engine.K + 2:
        return message_figure(f"only {len(found.starts)} phrases of {name} are at least {min_length} "
                              f"{text.step_name(run)} long")
    if not patterns.any():
        return message_figure(f"no cell stays above {threshold:g} throughout any phrase: lower the threshold")
    score, chance = engine.knn_accuracy(patterns, labels), engine.commonest_share(labels)
    stream = text.chars(run)
    most = text.window_size(run, SHOWN_CHARS, SHOWN_WORDS)
    shown = ["".join(stream[s:min(e, s + most)]).replace("\n", "\u21b5") + ("\u2026" if e - s > most else "")
             for s, e in zip(found.starts, found.ends)]
    sampled = f" (evenly spread sample of {found.n_found:,})" if found.n_found > len(found.starts) else ""
    title = (f"{len(found.starts):,} phrases of {name}{sampled} \u00b7 layer {layer} {kind} on above {threshold:g}"
             f"<br>k-NN (k={engine.K}) accuracy of {name} from the pattern {score:.2f} vs {chance:.2f} "
             f"guessing the commonest value \u00b7 PCA of the on/off patterns of {patterns.shape[1]} cells")
    return patterns_figure(engine.pca_2d(patterns), labels, shown, found.starts, found.ends, title)


def shown_annotation(run_id, name) -> bool:
    """False while the radio is about to switch to the run's first annotation (keep_annotation): the
    figure waits for it instead of drawing one annotation under a radio that shows none."""
    try:
        choices = annotation_choices(text.text_run(run_id))
    except runformat.RunError:
        return True
    return not choices or name in choices


def opened_phrase(run_id, click) -> tuple:
    """(tab, heatmap position, marked rows) that show a clicked phrase in the text heatmap."""
    run = text.text_run(run_id)
    start, last = (int(v) for v in click["points"][0]["customdata"])
    if not 0 <= start <= last < text.n_rows(run):
        raise runformat.RunError(f"rows {start}\u2013{last} are not in the text")
    return text.VIEW_ID, text.window_at(run, start), [start, last + 1]


def layout():
    return html.Div(children=[
        html.Div(className="controls", style={"display": "flex", "flexWrap": "wrap", "gap": "1.2em",
                                              "alignItems": "center"}, children=[
            # radio items: a Dropdown drops a value from the URL that is not among its options yet
            field("Phrases of", dcc.RadioItems(id=ANNOTATION, options=[], value="", inline=True)),
            layer_picker(LAYER),
            field("State", dcc.RadioItems(id=STATE_KIND, value="h", inline=True,
                                          options=[{"label": k, "value": k} for k in text.STATE_KINDS])),
            field("On above", dcc.Slider(id=THRESHOLD, min=0, max=1, step=0.05, value=0.3,
                                         marks={v / 10: f"{v / 10:g}" for v in range(0, 11, 2)},
                                         tooltip={"placement": "bottom"}), style={"width": "16em"}),
            field("Shortest phrase", dcc.Input(id=MIN_LENGTH, type="number", min=1, step=1, value=2,
                                               debounce=True, style={"width": "5em"})),
        ]),
        html.P("Click a point to open its phrase in the text heatmap.", className="hint"),
        dcc.Loading(dcc.Graph(id=GRAPH, config=GRAPH_CONFIG, className="graph-tall"), delay_show=300),
    ])


def register_callbacks(app: dash.Dash) -> None:
    register_layer_tick(app, LAYER)
    @app.callback(Output(LAYER, "options"), Output(f"{LAYER}-box", "style"), Output(ANNOTATION, "options"),
                  Input(state.RUN, "value"))
    def show_options(run_id):
        options, style = layer_options(run_id)
        try:
            names = annotation_choices(text.text_run(run_id))
        except runformat.RunError:
            names = []
        return options, style, [{"label": name, "value": name} for name in names]

    @app.callback(Output(ANNOTATION, "value", allow_duplicate=True), Input(ANNOTATION, "options"),
                  State(ANNOTATION, "value"), prevent_initial_call=True)
    def keep_annotation(options, name):
        """The annotation asked for if the run has it, else its first: the radio always shows one."""
        names = [option["value"] for option in options or []]
        if not names or name in names:
            return dash.no_update
        return names[0]

    @app.callback(Output(GRAPH, "figure"), Input(state.RUN, "value"), state.TAB_INPUT, Input(ANNOTATION, "value"),
                  Input(LAYER, "value"), Input(STATE_KIND, "value"), Input(THRESHOLD, "value"),
                  Input(MIN_LENGTH, "value"))
    def update(run_id, tab, name, layer, kind, threshold, min_length):
        if views.is_hidden(VIEW_ID, tab) or not shown_annotation(run_id, name):
            return dash.no_update
        return figure(run_id, name, layer, kind, threshold, min_length)

    @app.callback(Output(state.TABS, "value", allow_duplicate=True), Output(text.POS, "value", allow_duplicate=True),
                  Output(text.FOUND, "data", allow_duplicate=True), Input(GRAPH, "clickData"),
                  State(state.RUN, "value"), prevent_initial_call=True)
    def open_phrase(click, run_id):
        if not click or not ctx.triggered:
            return dash.no_update, dash.no_update, dash.no_update
        try:
            return opened_phrase(run_id, click)
        except (runformat.RunError, KeyError, IndexError, TypeError, ValueError):
            return dash.no_update, dash.no_update, dash.no_update
