"""Select & match view (LSTMVis): choose a range of text, find where the same cells switch on.

Select: the hidden (or cell) states over a window of text, one line per cell, the time axis
labelled with the characters (a word run's words: it selects and matches by word). Drag across
the plot (or click a first and a last character, or type the rows) to select a range; the cells at or above the threshold over the whole range are the
selection (optionally also off one step before and/or after it), drawn in colour; a heatmap row
counts the selected cells on at each character. The threshold line can be dragged (click it, then
drag): where it is dropped becomes the threshold.

Match: the top ``TOP_K`` ranges of the whole corpus whose on-cells best overlap the selection
(``pipeline.analysis.match``, ranked as LSTMVis ranks them), each with context, its characters coloured by
a chosen annotation and a match-count heatmap, and how the matches' annotation values distribute.
Each match has a link ("open") that shows it in the text heatmap, marked, on the hypothesis' tensor.
Where the run stores the model's predictions, both show them as a track: the top-1 next token on
its probability, the top-k with theirs on hover.

The match runs in a plain callback: the engine answers in well under a second for the embedded
runs, with the states in memory (column-major, cached per run, layer and state). With
``LSTM_LENS_BACKGROUND=1`` (for big runs) it runs as a Dash background callback instead
(``dashboard.background``: DiskcacheManager, or Celery workers with ``LSTM_LENS_CELERY_BROKER``):
off the request thread, in ``MATCH_PARTS`` row ranges merged exactly (``engine.merge_matches``),
with a progress bar and a Cancel button.
"""

from __future__ import annotations

import time

import dash
import numpy as np
from dash import ALL, Input, Output, State, ctx, dcc, html

from dashboard import background, data, filters, state, views
from dashboard.figures import message_figure
from dashboard.figures import text as figures
from dashboard.views import text_heatmap as text
from dashboard.views.controls import LAST_LAYER, chosen_layer, field, layer_options, layer_picker, register_layer_tick
from pipeline import runformat
from pipeline.analysis import match as engine

VIEW_ID = "match"
TITLE = "Select & match"
WINDOW = 100
WORD_WINDOW = 40              # rows of a word run in the select plot
TOP_K = 50
CONTEXT = 12                  # characters shown either side of a match
LONGEST = 60                  # a longer match is shown as its first 40 and last 20 characters
WORD_CONTEXT, WORD_LONGEST = 5, 24   # ... and in words, of a word run
DEFAULT_THRESHOLD = 0.3
DEFAULT_OFF = ("before",)     # LSTMVis' default: the cells must switch on where the selection starts

LAYER, STATE_KIND, THRESHOLD, OFF, COLOUR_BY = ("match-layer", "match-kind", "match-threshold",
                                                "match-off", "match-colour-by")
POS, BACK, FORWARD, SEARCH, FIND = "match-pos", "match-back", "match-forward", "match-search", "match-find"
START, END, CLEAR, GRAPH, CELLS_TEXT = "match-start", "match-end", "match-clear", "match-graph", "match-cells"
HYPOTHESIS, RESULTS, SUMMARY = "match-hypothesis", "match-results", "match-summary"
OPEN = "match-open"                          # a match's link to the text heatmap (pattern id)
ANNOTATION_KEY = "match-annotation-key"      # the legend of the annotation colours, above the plot
MATCHES_KEY = "match-matches-key"            # ... and again above the match list
MIN_LENGTH, MAX_LENGTH = "match-min-length", "match-max-length"   # the phrase lengths matched
PROGRESS, CANCEL = "match-progress", "match-cancel"
MATCH_PARTS = 16                             # row ranges of a background match (its progress steps)

#: Layer pickers' options are the run's layers: this view's, and the text heatmap's beside it.
#: The state choices' options are the tensors the run stores (h, c, the gates).
VALUE_CHECKS = {(LAYER, "value"): filters.layer, (text.LAYER, "value"): filters.layer,
                (STATE_KIND, "value"): filters.one_of(*runformat.TENSOR_KINDS),
                (text.STATE_KIND, "value"): filters.one_of(*runformat.TENSOR_KINDS)}

URL_PARAMS = [
    state.UrlParam("match_layer", LAYER, "value", LAST_LAYER),
    state.UrlParam("match_kind", STATE_KIND, "value", "h"),
    state.UrlParam("match_pos", POS, "value", 0, "int"),
    state.UrlParam("match_start", START, "value", None, "int"),
    state.UrlParam("match_end", END, "value", None, "int"),
    state.UrlParam("match_threshold", THRESHOLD, "value", DEFAULT_THRESHOLD),
    state.UrlParam("match_off", OFF, "value", list(DEFAULT_OFF), "list"),
    state.UrlParam("match_min_length", MIN_LENGTH, "value", engine.DEFAULT_MIN_LENGTH, "int"),
    state.UrlParam("match_max_length", MAX_LENGTH, "value", None, "int"),
    state.UrlParam("match_colour", COLOUR_BY, "value", text.NONE),
]


def applies_to(manifest: runformat.Manifest) -> bool:
    """Language-model runs (text, or an LSTMVis project's stream)."""
    return manifest.is_language_model


def layout():
    row = {"display": "flex", "flexWrap": "wrap", "gap": "1em", "alignItems": "center"}
    return html.Div(children=[
        html.Div(className="controls", style=row, children=[
            layer_picker(LAYER),
            field("State", dcc.RadioItems(id=STATE_KIND, value="h", inline=True,
                                          options=[{"label": k, "value": k} for k in text.STATE_KINDS])),
            field("Threshold", dcc.Input(id=THRESHOLD, type="number", step=0.05, value=DEFAULT_THRESHOLD,
                                         debounce=True, style={"width": "5em"})),
            field("Also require off", dcc.Checklist(id=OFF, value=list(DEFAULT_OFF), inline=True, options=[
                {"label": "one step before", "value": "before"}, {"label": "one step after", "value": "after"}])),
            field("Match length", html.Div(style={"display": "flex", "gap": "4px"}, children=[
                dcc.Input(id=MIN_LENGTH, type="number", min=1, step=1, value=engine.DEFAULT_MIN_LENGTH,
                          debounce=True, placeholder="min", style={"width": "4.5em"}),
                dcc.Input(id=MAX_LENGTH, type="number", min=1, step=1, value=None, debounce=True,
                          placeholder="max", style={"width": "4.5em"})])),
            field("Colour matches by", dcc.RadioItems(id=COLOUR_BY, options=[], value=text.NONE, inline=True)),
        ]),
        html.Div(className="controls", style=row, children=[
            html.Button("\u25c0 back", id=BACK, className="button"),
            dcc.Input(id=POS, type="number", min=0, step=1, value=0, debounce=True, style={"width": "7em"}),
            html.Button("forward \u25b6", id=FORWARD, className="button"),
            dcc.Input(id=SEARCH, type="text", placeholder="find a phrase", style={"width": "12em"}),
            html.Button("Find next", id=FIND, className="button"),
            field("Selected rows", html.Div(style={"display": "flex", "gap": "4px"}, children=[
                dcc.Input(id=START, type="number", min=0, step=1, value=None, debounce=True,
                          placeholder="first", style={"width": "7em"}),
                dcc.Input(id=END, type="number", min=0, step=1, value=None, debounce=True,
                          placeholder="last", style={"width": "7em"}),
                html.Button("Clear", id=CLEAR, className="button")])),
        ]),
        html.Div(id=ANNOTATION_KEY, style={"margin": "4px 0"}),
        dcc.Loading(dcc.Graph(id=GRAPH, config={"displayModeBar": True, "scrollZoom": False})),
        html.Div(id=CELLS_TEXT, style={"color": "#555", "margin": "4px 0"}),
        dcc.Store(id=HYPOTHESIS, data=None),
        html.H4("Matches", style={"margin": "8px 0 4px"}),
        html.Div(id=SUMMARY, style={"color": "#555", "marginBottom": "6px"}),
        html.Div(id=MATCHES_KEY, style={"margin": "4px 0"}),
        html.Div(style={"display": "flex", "gap": "8px", "alignItems": "center"}, children=[
            html.Progress(id=PROGRESS, value="0", max=str(MATCH_PARTS), style={"width": "12em"}),
            html.Button("Cancel", id=CANCEL, className="button", disabled=True)]),
        dcc.Loading(html.Div(id=RESULTS, className="match-results")),
    ])


def threshold_value(value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return DEFAULT_THRESHOLD
    return value if np.isfinite(value) else DEFAULT_THRESHOLD


def selection_rows(start, end) -> tuple[int, int] | None:
    try:
        first, last = int(start), int(end)
    except (TypeError, ValueError):
        return None
    return (min(first, last), max(first, last))


def boundaries(run: runformat.Run) -> np.ndarray:
    return data.examples(run)["row_start"].to_numpy(np.int64)


def phrase_lengths(shortest, longest) -> tuple[int, int | None]:
    """The (min, max) length of a match from the two boxes: min defaults to the engine's 2, an
    empty max means no limit. Raises runformat.RunError when max is below min."""
    try:
        low = max(int(shortest), 1)
    except (TypeError, ValueError):
        low = engine.DEFAULT_MIN_LENGTH
    try:
        high = int(longest)
    except (TypeError, ValueError):
        return low, None
    if high < low:
        raise runformat.RunError(f"the longest match length ({high}) is below the shortest ({low})")
    return low, high


def hypothesis(run_id, layer, kind, start, end, threshold, off, min_length=None, max_length=None) -> dict:
    """The selection as the match engine needs it: its cells, and everything that defines them
    (the lengths of the phrases to match among them).

    Raises runformat.RunError (with what to do) when there is no valid selection.
    """
    run = text.text_run(run_id)
    layer = chosen_layer(run, layer)
    kind = text.chosen_kind(run, layer, kind)
    rows = selection_rows(start, end)
    if rows is None:
        raise runformat.RunError(f"Drag across the plot (or click a first and a last {text.step_name(run)[:-1]}) "
                                 "to select a range of text.")
    if rows[1] >= text.n_rows(run):
        raise runformat.RunError(f"the selection ends past the text ({text.n_rows(run):,} {text.step_name(run)})")
    off = set(off or [])
    lengths = phrase_lengths(min_length, max_length)
    try:
        cells = engine.select_cells(text.states(run, layer, kind), rows[0], rows[1], threshold_value(threshold),
                                    off_before="before" in off, off_after="after" in off,
                                    boundaries=boundaries(run))
    except ValueError as error:
        raise runformat.RunError(str(error)) from None
    return {"run": run.run_id, "layer": layer, "kind": kind, "start": rows[0], "end": rows[1],
            "threshold": threshold_value(threshold), "off_before": "before" in off,
            "off_after": "after" in off, "cells": [int(c) for c in cells], "min_length": lengths[0],
            "max_length": lengths[1]}


def select_view(run_id, layer, kind, position, start, end, threshold, off, colour_by, min_length=None,
                max_length=None) -> tuple:
    """(select figure, selected-cells text, hypothesis) for the window at ``position``."""
    try:
        run = text.text_run(run_id)
        layer_index = chosen_layer(run, layer)
        kind = text.chosen_kind(run, layer_index, kind)
        matrix = text.states(run, layer_index, kind)
        size = text.window_size(run, WINDOW, WORD_WINDOW)
        first = text.clamp_position(run, position, size)
        last = min(first + size, text.n_rows(run))
        window = np.ascontiguousarray(matrix[first:last])
    except runformat.RunError as error:
        return message_figure(str(error)), "", None
    chosen, note = None, ""
    try:
        chosen = hypothesis(run_id, layer, kind, start, end, threshold, off, min_length, max_length)
        cells = chosen["cells"]
        note = (f"{len(cells)} cell(s) on (\u2265 {chosen['threshold']:g}) over rows {chosen['start']:,}"
                f"\u2013{chosen['end']:,}: " + (", ".join(map(str, cells)) if cells else
                                               "none; lower the threshold or select a shorter range"))
    except runformat.RunError as error:
        cells, note = [], str(error)
    threshold = threshold_value(threshold)
    counts = (window[:, cells] >= threshold).sum(axis=1) if cells else np.zeros(len(window), int)
    colour_values, categories, value_range = None, None, None
    if colour_by:
        try:
            categories, value_range = annotation_scale(run, colour_by)
            colour_values = text.annotation(run, colour_by)[first:last]
        except runformat.RunError:
            colour_values = None
    document = text.document_at(run, first)
    figure = figures.select_figure(
        text.chars(run)[first:last], window, first, threshold, cells,
        None if chosen is None else (chosen["start"], chosen["end"]), counts, colour_values,
        colour_by or "", title=f"layer {layer_index} {kind} \u00b7 rows {first:,}\u2013{last - 1:,} "
                               f"\u00b7 {document['name']}", categories=categories, value_range=value_range,
        predictions=window_predictions(run, first, last))
    return figure, note, chosen


@data.run_cached(maxsize=16)
def annotation_scale(run: runformat.Run, name: str) -> tuple[list[str] | None, tuple[float, float] | None]:
    """(categories, None) of a categorical annotation, or (None, its range over the whole stream):
    what colours it the same way in the select plot, the match list and the legend."""
    categories = text.annotation_names(run)[name].get("categories")
    if categories is not None:
        return list(categories), None
    values = text.annotation(run, name).astype(np.float64)
    finite = values[np.isfinite(values)]
    return None, ((float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0))


def window_predictions(run: runformat.Run, first: int, last: int) -> tuple | None:
    """The select plot's predictions track for rows first..last-1 (top classes, probabilities,
    vocabulary), or None when the run stores no predictions."""
    found = text.predictions(run)
    return None if found is None else (found[0][first:last], found[1][first:last], run.manifest.classes)


def legend_view(run_id, colour_by) -> list:
    """The key to the annotation colours of the select plot and the match list ([] without one)."""
    try:
        run = text.text_run(run_id)
        if not colour_by or colour_by not in text.annotation_names(run):
            return []
        return [figures.annotation_legend(colour_by, *annotation_scale(run, colour_by))]
    except runformat.RunError:
        return []


def lengths_of(chosen: dict) -> dict:
    """The engine's min_length / max_length of a hypothesis (the defaults for an older one)."""
    return {"min_length": chosen.get("min_length") or engine.DEFAULT_MIN_LENGTH,
            "max_length": chosen.get("max_length")}


def match_in_parts(matrix: np.ndarray, chosen: dict, starts: np.ndarray, parts: int = MATCH_PARTS,
                   progress=None) -> list:
    """``engine.match`` over ``parts`` row ranges merged into the one ranking (exact: a range is
    found in the part it starts in); ``progress(done, parts)`` after each."""
    edges = np.linspace(0, len(matrix), parts + 1).astype(int)
    found = []
    for done, (lo, hi) in enumerate(zip(edges[:-1], edges[1:]), start=1):
        found.append(engine.match(matrix, chosen["cells"], chosen["threshold"], chosen["off_before"],
                                  chosen["off_after"], top_k=TOP_K, boundaries=starts, row_range=(int(lo), int(hi)),
                                  **lengths_of(chosen)))
        if progress is not None:
            progress(done, parts)
    return engine.merge_matches(found, TOP_K)


def match_view(chosen: dict | None, colour_by: str | None, progress=None) -> tuple:
    """(summary text, result rows) for a hypothesis from ``select_view``; with ``progress``, the
    match runs in parts and reports after each (``match_in_parts``)."""
    if not chosen or not chosen.get("cells"):
        return "Select a range with cells on to see its matches.", []
    run = text.text_run(chosen["run"])
    matrix = text.states(run, chosen["layer"], chosen["kind"])
    started = time.perf_counter()
    if progress is None:
        found = engine.match(matrix, chosen["cells"], chosen["threshold"], chosen["off_before"],
                             chosen["off_after"], top_k=TOP_K, boundaries=boundaries(run), **lengths_of(chosen))
    else:
        found = match_in_parts(matrix, chosen, boundaries(run), progress=progress)
    seconds = time.perf_counter() - started
    known = bool(colour_by) and colour_by in text.annotation_names(run)
    values = text.annotation(run, colour_by) if known else None
    categories, value_range = annotation_scale(run, colour_by) if known else (None, None)
    rows, labels = match_rows(run, matrix, chosen, found, values, categories)
    lengths = lengths_of(chosen)
    longest = "" if lengths["max_length"] is None else f"\u2013{lengths['max_length']}"
    summary = (f"{len(found)} matches of {lengths['min_length']}{longest}"
               f"{'' if longest else ' or more'} {text.step_name(run)} in {seconds * 1000:.0f} ms")
    if values is not None and found:
        summary += f" \u00b7 {colour_by} over each match: " + figures.match_summary(labels)
    items = [html.Div(className="match-item", style={"display": "flex", "gap": "6px", "alignItems": "flex-start"},
                      children=[
        html.Button("open \u25b8", id={"type": OPEN, "start": int(row["start"]), "end": int(row["end"])},
                    className="button match-open", title="show this match in the text heatmap"),
        dcc.Markdown(figures.match_row_html(row, annotation_name=colour_by or "", categories=categories,
                                            value_range=value_range, n_cells=len(chosen["cells"])),
                     dangerously_allow_html=True)]) for row in rows]
    return summary, html.Div(className="match-list", children=items)


def opened_match(target, chosen: dict | None, layer) -> tuple:
    """(tab, heatmap position, marked rows, layer, state, cell) that show the match ``target``
    (``{"start", "end"}`` rows, inclusive) in the text heatmap: its window, the match marked, on
    the hypothesis' tensor and its first selected cell (LSTMVis' link on every match)."""
    run = text.text_run(chosen["run"])
    start, end = int(target["start"]), int(target["end"])
    if not 0 <= start <= end < text.n_rows(run):
        raise runformat.RunError(f"rows {start}\u2013{end} are not in the text")
    cell = chosen["cells"][0] if chosen.get("cells") else dash.no_update
    return (text.VIEW_ID, text.window_at(run, start), [start, end + 1], layer, chosen["kind"], cell)


def shown_rows(start: int, end: int, doc_start: int, doc_end: int, context: int = CONTEXT,
               longest: int = LONGEST) -> np.ndarray:
    """The stream rows a match row shows: ``context`` rows either side (within its document)
    and the match itself, whose middle is cut (-1) when it is longer than ``longest`` rows."""
    before = np.arange(max(start - context, doc_start), start)
    after = np.arange(end + 1, min(end + 1 + context, doc_end))
    if end - start + 1 <= longest:
        inside = np.arange(start, end + 1)
    else:
        head = longest * 2 // 3
        inside = np.concatenate([np.arange(start, start + head), [-1],
                                 np.arange(end + 1 - (longest - head), end + 1)])
    return np.concatenate([before, inside, after]).astype(np.int64)


def shown_predictions(run, guesses, rows: np.ndarray, gap: np.ndarray) -> tuple[list, list, np.ndarray]:
    """A match row's predictions track: the top-1 token, the top-k text and the colour code of
    each character shown (blank where a long match is cut)."""
    firsts, titles = figures.prediction_texts(guesses[0][rows], guesses[1][rows], run.manifest.classes)
    firsts = ["\u2026" if g else f for g, f in zip(gap, firsts)]
    titles = ["" if g else t for g, t in zip(gap, titles)]
    return firsts, titles, np.where(gap, 0, figures.prediction_codes(guesses[1][rows, 0]))


def match_rows(run, matrix, chosen, found, values, categories) -> tuple[list[dict], list[str]]:
    """The match list's data: the rows shown (characters or words), counts and annotation per row;
    and one label per match (the annotation's value if it is the same over the whole match, else
    "mixed")."""
    chars = text.chars(run)
    context, longest = (WORD_CONTEXT, WORD_LONGEST) if text.is_words(run) else (CONTEXT, LONGEST)
    frame = data.examples(run)
    guesses = text.predictions(run)
    starts = frame["row_start"].to_numpy(np.int64)
    cells = chosen["cells"]
    rows, labels = [], []
    for rank, m in enumerate(found, start=1):
        document = int(np.searchsorted(starts, m.start, side="right")) - 1
        doc_start = int(starts[document])
        shown = shown_rows(m.start, m.end, doc_start, doc_start + int(frame["length"].iat[document]),
                           context, longest)
        real = np.maximum(shown, 0)
        gap = shown < 0
        counts = np.where(gap, 0, (matrix[real][:, cells] >= chosen["threshold"]).sum(axis=1))
        annotation = None if values is None else values[real]
        if values is not None:
            inside = values[m.start:m.end + 1]
            value = inside[0]
            name = categories[int(value)] if categories else f"{value:g}"
            labels.append(name if np.all(inside == value) else "mixed")
        rows.append({"rank": rank, "name": str(frame["name"].iat[document]), "start": m.start, "end": m.end,
                     "overlap": m.overlap, "extra": m.extra, "length": m.length, "rows": shown,
                     "chars": ["\u2026" if g else c for g, c in zip(gap, chars[real])], "counts": counts,
                     "annotation": annotation,
                     "predictions": None if guesses is None else shown_predictions(run, guesses, real, gap)})
    return rows, labels


def register_callbacks(app: dash.Dash) -> None:
    register_layer_tick(app, LAYER)
    @app.callback(Output(LAYER, "options"), Output(f"{LAYER}-box", "style"), Output(COLOUR_BY, "options"),
                  Input(state.RUN, "value"))
    def show_options(run_id):
        options, style = layer_options(run_id)
        try:
            names = list(text.annotation_names(text.text_run(run_id)))
        except runformat.RunError:
            names = []
        return options, style, [{"label": "none", "value": text.NONE}] + [{"label": n, "value": n} for n in names]

    @app.callback(Output(STATE_KIND, "options"), Input(state.RUN, "value"), Input(LAYER, "value"))
    def show_tensors(run_id, layer):
        return text.tensor_options(run_id, layer)

    @app.callback(Output(ANNOTATION_KEY, "children"), Output(MATCHES_KEY, "children"), Input(state.RUN, "value"),
                  Input(COLOUR_BY, "value"))
    def update_legend(run_id, colour_by):
        legend = legend_view(run_id, colour_by)
        return legend, legend

    @app.callback(Output(POS, "value", allow_duplicate=True), Input(BACK, "n_clicks"),
                  Input(FORWARD, "n_clicks"), Input(FIND, "n_clicks"), Input(SEARCH, "n_submit"),
                  State(POS, "value"), State(SEARCH, "value"), State(state.RUN, "value"),
                  prevent_initial_call=True)
    def move(_back, _forward, _find, _submit, position, phrase, run_id):
        try:
            size = text.window_size(text.text_run(run_id), WINDOW, WORD_WINDOW)
        except runformat.RunError:
            return dash.no_update
        new, _ = text.navigate(ctx.triggered_id, run_id, position, phrase, None, window=size,
                               back=BACK, forward=FORWARD)
        return new

    @app.callback(Output(START, "value", allow_duplicate=True), Output(END, "value", allow_duplicate=True),
                  Input(GRAPH, "selectedData"), Input(GRAPH, "clickData"), Input(CLEAR, "n_clicks"),
                  State(START, "value"), State(END, "value"), prevent_initial_call=True)
    def select_range(selected, clicked, _clear, start, end):
        if ctx.triggered_id == CLEAR:
            return None, None
        trigger = ctx.triggered[0]["prop_id"] if ctx.triggered else ""
        rows = figures.selection_from_plot(selected if trigger.endswith("selectedData") else None,
                                           clicked if trigger.endswith("clickData") else None, (start, end))
        return (dash.no_update, dash.no_update) if rows is None else rows

    @app.callback(Output(state.TABS, "value", allow_duplicate=True), Output(text.POS, "value", allow_duplicate=True),
                  Output(text.FOUND, "data", allow_duplicate=True), Output(text.LAYER, "value", allow_duplicate=True),
                  Output(text.STATE_KIND, "value", allow_duplicate=True),
                  Output(text.CELL, "value", allow_duplicate=True),
                  Input({"type": OPEN, "start": ALL, "end": ALL}, "n_clicks"), State(HYPOTHESIS, "data"),
                  State(LAYER, "value"), prevent_initial_call=True)
    def open_match(_clicks, chosen, layer):
        if not ctx.triggered or not ctx.triggered[0].get("value") or not chosen:
            return (dash.no_update,) * 6               # the links of a new list just appeared
        try:
            return opened_match(ctx.triggered_id, chosen, layer)
        except runformat.RunError:
            return (dash.no_update,) * 6

    @app.callback(Output(THRESHOLD, "value", allow_duplicate=True), Input(GRAPH, "relayoutData"),
                  prevent_initial_call=True)
    def drag_threshold(relayout):
        value = figures.threshold_from_relayout(relayout)
        return dash.no_update if value is None else value

    @app.callback(Output(GRAPH, "figure"), Output(CELLS_TEXT, "children"), Output(HYPOTHESIS, "data"),
                  Input(state.RUN, "value"), state.TAB_INPUT, Input(LAYER, "value"), Input(STATE_KIND, "value"),
                  Input(POS, "value"), Input(START, "value"), Input(END, "value"), Input(THRESHOLD, "value"),
                  Input(OFF, "value"), Input(COLOUR_BY, "value"), Input(MIN_LENGTH, "value"),
                  Input(MAX_LENGTH, "value"))
    def update_select(run_id, tab, layer, kind, position, start, end, threshold, off, colour_by, shortest, longest):
        if views.is_hidden(VIEW_ID, tab):
            return dash.no_update, dash.no_update, dash.no_update
        return select_view(run_id, layer, kind, position, start, end, threshold, off, colour_by, shortest, longest)

    if background.enabled():
        register_background_match(app)
        return

    @app.callback(Output(SUMMARY, "children"), Output(RESULTS, "children"), Input(HYPOTHESIS, "data"),
                  Input(COLOUR_BY, "value"), state.TAB_INPUT)
    def update_matches(chosen, colour_by, tab):
        if views.is_hidden(VIEW_ID, tab):
            return dash.no_update, dash.no_update
        try:
            return match_view(chosen, colour_by)
        except runformat.RunError as error:
            return str(error), []


def register_background_match(app: dash.Dash) -> None:
    """The match as a background callback: progress bar, Cancel button, the request thread free."""
    @app.callback(Output(SUMMARY, "children"), Output(RESULTS, "children"), Input(HYPOTHESIS, "data"),
                  Input(COLOUR_BY, "value"), state.TAB_INPUT, background=True, manager=background.manager(),
                  progress=[Output(PROGRESS, "value"), Output(PROGRESS, "max")],
                  running=[(Output(CANCEL, "disabled"), False, True)], cancel=[Input(CANCEL, "n_clicks")])
    def update_matches(set_progress, chosen, colour_by, tab):
        if views.is_hidden(VIEW_ID, tab):
            return dash.no_update, dash.no_update
        try:
            return match_view(chosen, colour_by, progress=lambda done, parts: set_progress((str(done), str(parts))))
        except runformat.RunError as error:
            return str(error), []
