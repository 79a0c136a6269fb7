"""Text heatmap view: the corpus with every character coloured by one cell's activation.

For language-model runs only. A window of ``WINDOW`` characters (``WORD_WINDOW`` words of a word
run) at a time (back / forward, or jump to the next occurrence of a phrase); prev / next step
through the cells; the cells that correlate best with an annotation (inside_string, depth, a
token type, ...) are listed first and a click shows one. Position, cell, layer and state are in
the URL.

A row is a character, or a word token: the ``char`` column holds each row's shown text (a word and
the spacing after it, in the run's own spacing or the separator of an import), so the rows joined
are the text, and a phrase found in it is mapped back to the rows that cover it (``row_offsets``).

The readers at the top (rows' text, annotations, whole state matrices) are shared with the
select & match, phrase patterns and writer views.
"""

from __future__ import annotations

import dash
import numpy as np
from dash import ALL, Input, Output, State, ctx, dcc, html

from dashboard import data, state, views
from dashboard.figures import text as figures
from dashboard.views.controls import (LAST_LAYER, TENSOR_NAMES, chosen_layer, field, layer_options,
                                      layer_picker, register_layer_tick)
from pipeline import runformat

VIEW_ID = "text"
TITLE = "Text heatmap"
WINDOW = 3000
WORD_WINDOW = 600   # rows of a word run shown at a time
COLUMN_BLOCK = 32   # units read at a time into the column-major state matrix
STATE_KINDS = ("h", "c")      # what every run has; the gates too where the run stores them (tensor_options)
NONE = ""          # the "no annotation" choice: radio items, because a Dropdown drops a value from the
                   # URL that is not among its options yet (plotly/dash#3004)

LAYER, STATE_KIND, CELL, PREV, NEXT = "text-layer", "text-kind", "text-cell", "text-prev", "text-next"
RANK_BY, RANKING, RANK_BUTTON = "text-rank-by", "text-ranking", "text-rank"
SEARCH_NOTE = "text-search-note"     # says when a phrase is not in the text
POS, BACK, FORWARD, SEARCH, FIND, FOUND = ("text-pos", "text-back", "text-forward", "text-search",
                                           "text-find", "text-found")
BODY, LEGEND, STATUS = "text-body", "text-legend", "text-status"

URL_PARAMS = [
    state.UrlParam("text_layer", LAYER, "value", LAST_LAYER),
    state.UrlParam("text_kind", STATE_KIND, "value", "h"),
    state.UrlParam("text_cell", CELL, "value", 0, "int"),
    state.UrlParam("text_pos", POS, "value", 0, "int"),
    state.UrlParam("text_rank", RANK_BY, "value", ""),
]


def applies_to(manifest: runformat.Manifest) -> bool:
    """Language-model runs: their steps are characters (or tokens) of a text."""
    return manifest.is_language_model


# ---------------------------------------------------------------------------------------------
# Readers shared by the text views (cached per run; results are read-only)

def text_run(run_id: str | None) -> runformat.Run:
    run = data.get_run(run_id)
    if not run.manifest.is_language_model:
        raise runformat.RunError(f"run {run.run_id!r} is a classifier's; the text views need a language "
                                 f"model's run (`python -m pipeline run text`, or an LSTMVis project: "
                                 f"`python -m pipeline import lstmvis FOLDER`)")
    return run


@data.run_cached(maxsize=4)
def chars(run: runformat.Run) -> np.ndarray:
    """Every row's shown text, in row order: a character, or a word with its spacing."""
    return run.read_table(runformat.TEXT_FILE, columns=["char"])["char"].to_numpy(dtype=object)


@data.run_cached(maxsize=4)
def corpus_text(run: runformat.Run) -> str:
    return "".join(chars(run))


@data.run_cached(maxsize=4)
def row_offsets(run: runformat.Run) -> np.ndarray:
    """Where each row's text starts in ``corpus_text``, and the text's length last (rows + 1)."""
    lengths = np.fromiter((len(piece) for piece in chars(run)), np.int64, n_rows(run))
    return np.concatenate([[0], np.cumsum(lengths)])


def row_at(run: runformat.Run, offset: int) -> int:
    """The row whose text holds character ``offset`` of ``corpus_text``."""
    return int(np.searchsorted(row_offsets(run), offset, side="right")) - 1


def is_words(run: runformat.Run) -> bool:
    """Whether a row is a word token (a word run, or an import of words) rather than a character."""
    text = run.manifest.get("text") or {}
    return text.get("tokens") == "words" or bool(text.get("separator"))


def step_name(run: runformat.Run) -> str:
    """What the rows are called in the views' words: characters or words."""
    return "words" if is_words(run) else "characters"


def window_size(run: runformat.Run, characters: int, words: int) -> int:
    """How many rows a view shows at a time: ``characters`` of a character run, ``words`` of a word run."""
    return words if is_words(run) else characters


def annotation_names(run: runformat.Run) -> dict:
    return run.manifest.annotations


@data.run_cached(maxsize=16)
def annotation(run: runformat.Run, name: str) -> np.ndarray:
    """One annotation per row: category codes for categorical ones, numbers otherwise."""
    info = annotation_names(run).get(name)
    if info is None:
        raise runformat.RunError(f"run {run.run_id!r} has no annotation {name!r}")
    column = run.read_table(runformat.TEXT_FILE, columns=[name])[name]
    if info.get("kind") == "categorical":
        categories = {c: i for i, c in enumerate(info["categories"])}
        return column.astype(str).map(categories).to_numpy(dtype=np.int16)
    return column.to_numpy()


@data.run_cached(maxsize=4)
def predictions(run: runformat.Run) -> tuple[np.ndarray, np.ndarray] | None:
    """The model's top-k next tokens of every row and their probabilities, (rows, k) each, from
    the per-step prediction table; None when the run stores none (an import without its head)."""
    if not run.has(runformat.PREDICTIONS_FILE):
        return None
    k = int(run.manifest.get("top_k") or 0)
    names = [f"top{j}_{part}" for j in range(1, k + 1) for part in ("class", "prob")]
    try:
        table = run.read_table(runformat.PREDICTIONS_FILE, columns=names)
    except runformat.RunError:
        return None
    if not k or len(table) != n_rows(run):
        return None
    return (table[names[0::2]].to_numpy(np.int32), table[names[1::2]].to_numpy(np.float32))


def annotation_targets(run: runformat.Run) -> list[dict]:
    """Options: none, each numeric annotation, and each category of a categorical one."""
    options = [{"label": "none", "value": NONE}]
    for name, info in annotation_names(run).items():
        if info.get("kind") == "categorical":
            options += [{"label": f"{name} = {c}", "value": f"{name}={c}"} for c in info["categories"]]
        else:
            options.append({"label": name, "value": name})
    return options


def target_values(run: runformat.Run, target: str) -> np.ndarray:
    name, _, category = target.partition("=")
    values = annotation(run, name)
    if category:
        categories = annotation_names(run)[name]["categories"]
        return (values == categories.index(category)).astype(np.float64)
    return values.astype(np.float64)


@data.run_cached(maxsize=4)
def states(run: runformat.Run, layer: int, kind: str) -> np.ndarray:
    """The whole (rows, units) matrix of one tensor, column-major: a cell's values are contiguous
    (what the per-cell heatmap, the ranking and the match engine read). Read through
    ``Run.step_matrix`` a block of ``COLUMN_BLOCK`` units at a time, so the row-major copy a
    read makes never holds more than a block."""
    units = run.manifest.layer(layer).units
    first = run.step_matrix(layer, kind, list(range(min(COLUMN_BLOCK, units))))
    matrix = np.empty((len(first), units), dtype=np.float32, order="F")
    matrix[:, :first.shape[1]] = first
    for start in range(COLUMN_BLOCK, units, COLUMN_BLOCK):
        block = list(range(start, min(start + COLUMN_BLOCK, units)))
        matrix[:, block[0]:block[-1] + 1] = run.step_matrix(layer, kind, block)
    return matrix


def tensor_options(run_id, layer) -> list[dict]:
    """The state choice's options: h, c and the gates this layer of the run stores."""
    try:
        run = text_run(run_id)
        tensors = run.manifest.layer(chosen_layer(run, layer)).tensors
    except runformat.RunError:
        tensors = STATE_KINDS
    return [{"label": kind if kind in STATE_KINDS else TENSOR_NAMES.get(kind, kind), "value": kind}
            for kind in tensors]


def chosen_kind(run: runformat.Run, layer: int, kind) -> str:
    """The tensor picked if the layer stores it, else h."""
    return kind if kind in run.manifest.layer(layer).tensors else "h"


@data.run_cached(maxsize=16)
def cell_limit(run: runformat.Run, layer: int, kind: str, cell: int) -> float:
    return figures.symmetric_limit(states(run, layer, kind)[:, cell])


@data.run_cached(maxsize=32)
def cell_ranking(run: runformat.Run, layer: int, kind: str, target: str) -> np.ndarray:
    """Correlation of every cell with the target over the whole stream."""
    return figures.correlations(states(run, layer, kind), target_values(run, target))


def document_starts(run: runformat.Run) -> dict[int, str]:
    frame = data.examples(run)
    return dict(zip(frame["row_start"].astype(int), frame["name"].astype(str)))


def document_at(run: runformat.Run, row: int) -> dict:
    frame = data.examples(run)
    position = int(np.searchsorted(frame["row_start"].to_numpy(), row, side="right")) - 1
    return frame.iloc[max(position, 0)].to_dict()


def n_rows(run: runformat.Run) -> int:
    return len(chars(run))


def find_next(text: str, phrase: str, after: int) -> int | None:
    """The offset in ``text`` where ``phrase`` next occurs after offset ``after`` (wrapping
    around), or None."""
    if not phrase:
        return None
    found = text.find(phrase, after + 1)
    if found < 0:
        found = text.find(phrase)
    return None if found < 0 else found


def find_rows(run: runformat.Run, phrase: str, after_row: int) -> tuple[int, int] | None:
    """The rows (first, end exclusive) that cover the next occurrence of ``phrase`` in the text
    starting after row ``after_row`` (wrapping around), or None. For a character run the rows
    are the offsets; a word run's phrase may start or end inside a word."""
    offsets = row_offsets(run)
    after = int(offsets[after_row]) if 0 <= after_row < n_rows(run) else after_row
    found = find_next(corpus_text(run), phrase, after)
    if found is None:
        return None
    return row_at(run, found), row_at(run, found + len(phrase) - 1) + 1


def clamp_position(run: runformat.Run, position, window: int | None = None) -> int:
    """A window start in the text: at most ``window`` rows (default: the heatmap's window of this
    run) before its end, so that paging forward (or a position past the end) shows a full last
    window, never one row."""
    window = window_size(run, WINDOW, WORD_WINDOW) if window is None else window
    try:
        position = int(position or 0)
    except (TypeError, ValueError):
        position = 0
    return int(min(max(position, 0), max(n_rows(run) - window, 0)))


# ---------------------------------------------------------------------------------------------
# Layout and callbacks

def layout():
    return html.Div(children=[
        html.Div(className="controls", style={"display": "flex", "flexWrap": "wrap", "gap": "1.2em",
                                              "alignItems": "center"}, children=[
            layer_picker(LAYER),
            field("State", dcc.RadioItems(id=STATE_KIND, value="h", inline=True,
                                          options=[{"label": k, "value": k} for k in STATE_KINDS])),
            field("Cell", html.Div(style={"display": "flex", "gap": "4px"}, children=[
                html.Button("\u25c0", id=PREV, className="button", title="previous cell"),
                dcc.Input(id=CELL, type="number", min=0, step=1, value=0, debounce=True,
                          style={"width": "5em"}),
                html.Button("\u25b6", id=NEXT, className="button", title="next cell")])),
            field("Rank cells by", dcc.RadioItems(id=RANK_BY, options=[], value=NONE, inline=True)),
        ]),
        html.Div(id=RANKING, className="text-ranking",
                 style={"display": "flex", "flexWrap": "wrap", "gap": "4px", "margin": "4px 0"}),
        html.Div(className="controls", style={"display": "flex", "flexWrap": "wrap", "gap": "0.8em",
                                              "alignItems": "center"}, children=[
            html.Button("\u25c0 back", id=BACK, className="button"),
            dcc.Input(id=POS, type="number", min=0, step=1, value=0, debounce=True, style={"width": "7em"}),
            html.Button("forward \u25b6", id=FORWARD, className="button"),
            dcc.Input(id=SEARCH, type="text", placeholder="find a phrase", debounce=False,
                      style={"width": "14em"}),
            html.Button("Find next", id=FIND, className="button"),
            html.Span(id=SEARCH_NOTE, className="hint"),
            html.Span(id=STATUS, style={"color": "#555"}),
        ]),
        dcc.Store(id=FOUND, data=None),
        html.Div(id=LEGEND, style={"margin": "6px 0"}),
        dcc.Loading(html.Div(id=BODY, className="text-body", style={
            "whiteSpace": "pre-wrap", "fontFamily": "monospace", "fontSize": "13px", "lineHeight": "1.45",
            "wordBreak": "break-all", "border": "1px solid #ddd", "padding": "8px", "maxHeight": "70vh",
            "overflowY": "auto"})),
    ])


def render(run_id, layer, kind, cell, position, found) -> tuple:
    """(the coloured text, legend, status) for the window at ``position``."""
    try:
        run = text_run(run_id)
        layer = chosen_layer(run, layer)
        kind = chosen_kind(run, layer, kind)
        matrix = states(run, layer, kind)
        cell = int(cell or 0)
        if not 0 <= cell < matrix.shape[1]:
            raise runformat.RunError(f"cell {cell} does not exist: layer {layer} has cells 0..{matrix.shape[1] - 1}")
        start = clamp_position(run, position)
        end = min(start + window_size(run, WINDOW, WORD_WINDOW), n_rows(run))
        limit = cell_limit(run, layer, kind, cell)
        body = figures.heatmap_html(chars(run)[start:end], matrix[start:end, cell], limit, first_row=start,
                                    document_starts=document_starts(run),
                                    highlight=tuple(found) if found else None)
    except runformat.RunError as error:
        return html.Div(str(error), className="message"), None, ""
    document = document_at(run, start)
    status = (f"{step_name(run)} {start:,}\u2013{end - 1:,} of {n_rows(run):,} \u00b7 {document['name']} "
              f"({document['split']})")
    return (dcc.Markdown(body, dangerously_allow_html=True, className="text-heatmap-body"),
            figures.legend(limit, f"layer {layer} {kind}, cell {cell}:"), status)


def ranking(run_id, layer, kind, target) -> list:
    if not target:
        return [html.Span("Choose an annotation to list the cells that follow it most closely.",
                          style={"color": "#777"})]
    try:
        run = text_run(run_id)
        index = chosen_layer(run, layer)
        r = cell_ranking(run, index, chosen_kind(run, index, kind), target)
    except (runformat.RunError, ValueError) as error:
        return [html.Span(str(error), className="message")]
    return [html.Span(f"best cells for {target}:", style={"color": "#555"})] + [
        html.Button(f"cell {cell}  r={value:+.2f}", id={"type": RANK_BUTTON, "cell": cell}, className="button",
                    title=f"Pearson correlation with {target} over all {n_rows(run):,} {step_name(run)}")
        for cell, value in figures.ranking_items(r, 10)]


def register_callbacks(app: dash.Dash) -> None:
    register_layer_tick(app, LAYER)
    @app.callback(Output(LAYER, "options"), Output(f"{LAYER}-box", "style"), Output(RANK_BY, "options"),
                  Input(state.RUN, "value"))
    def show_options(run_id):
        options, style = layer_options(run_id)
        try:
            targets = annotation_targets(text_run(run_id))
        except runformat.RunError:
            targets = []
        return options, style, targets

    @app.callback(Output(STATE_KIND, "options"), Input(state.RUN, "value"), Input(LAYER, "value"))
    def show_tensors(run_id, layer):
        return tensor_options(run_id, layer)

    @app.callback(Output(RANKING, "children"), Input(state.RUN, "value"), state.TAB_INPUT,
                  Input(LAYER, "value"), Input(STATE_KIND, "value"), Input(RANK_BY, "value"))
    def update_ranking(run_id, tab, layer, kind, target):
        if views.is_hidden(VIEW_ID, tab):
            return dash.no_update
        return ranking(run_id, layer, kind, target)

    @app.callback(Output(CELL, "value", allow_duplicate=True), Input(PREV, "n_clicks"),
                  Input(NEXT, "n_clicks"), Input({"type": RANK_BUTTON, "cell": ALL}, "n_clicks"),
                  State(CELL, "value"), State(state.RUN, "value"), State(LAYER, "value"),
                  prevent_initial_call=True)
    def step_cell(_prev, _next, _ranked, cell, run_id, layer):
        trigger = ctx.triggered_id
        if not ctx.triggered or not ctx.triggered[0].get("value"):
            return dash.no_update                      # a ranking button just appeared
        if isinstance(trigger, dict):
            return int(trigger["cell"])
        try:
            run = text_run(run_id)
            index = chosen_layer(run, layer)
            n_cells = next(item.units for item in run.layers if item.index == index)
        except (runformat.RunError, StopIteration):
            return dash.no_update
        step = -1 if trigger == PREV else 1
        return int(((cell or 0) + step) % n_cells)

    @app.callback(Output(POS, "value", allow_duplicate=True), Output(FOUND, "data"), Output(SEARCH_NOTE, "children"),
                  Input(BACK, "n_clicks"), Input(FORWARD, "n_clicks"), Input(FIND, "n_clicks"),
                  Input(SEARCH, "n_submit"), Input(state.SELECTED, "data"),
                  State(POS, "value"), State(SEARCH, "value"), State(FOUND, "data"), State(state.RUN, "value"),
                  prevent_initial_call=True)
    def move(_back, _forward, _find, _submit, example_id, position, phrase, found, run_id):
        moved = navigate(ctx.triggered_id, run_id, position, phrase, found, example_id)
        return (*moved, search_note(ctx.triggered_id, phrase, moved[1]))

    @app.callback(Output(BODY, "children"), Output(LEGEND, "children"), Output(STATUS, "children"),
                  Input(state.RUN, "value"), state.TAB_INPUT, Input(LAYER, "value"), Input(STATE_KIND, "value"),
                  Input(CELL, "value"), Input(POS, "value"), Input(FOUND, "data"))
    def update_text(run_id, tab, layer, kind, cell, position, found):
        if views.is_hidden(VIEW_ID, tab):
            return dash.no_update, dash.no_update, dash.no_update
        return render(run_id, layer, kind, cell, position, found)


def navigate(trigger, run_id, position, phrase, found, example_id=None, window: int | None = None,
             back: str = BACK, forward: str = FORWARD) -> tuple:
    """The new (position, found phrase range) after a navigation button, a search or a chosen
    example; ``window``: the rows the view shows (default: the heatmap's window of the run)."""
    try:
        run = text_run(run_id)
    except runformat.RunError:
        return dash.no_update, dash.no_update
    window = window_size(run, WINDOW, WORD_WINDOW) if window is None else window
    position = clamp_position(run, position, window)
    if trigger == back:
        return max(position - window, 0), None
    if trigger == forward:
        return clamp_position(run, position + window, window), None
    if trigger == state.SELECTED:
        if example_id is None:
            return dash.no_update, dash.no_update
        row = data.example_row(run, int(example_id))
        return (dash.no_update, dash.no_update) if row is None else (int(row["row_start"]), None)
    after = found[0] if found else position - 1
    rows = find_rows(run, phrase or "", after)
    if rows is None:
        return dash.no_update, None
    return window_at(run, rows[0], window), list(rows)


def window_at(run: runformat.Run, row: int, window: int | None = None) -> int:
    """The start of a window that shows ``row`` with some context: from its line's start, or a
    quarter window before it on a long line."""
    window = window_size(run, WINDOW, WORD_WINDOW) if window is None else window
    line_start = row_at(run, _line_start(corpus_text(run), int(row_offsets(run)[row])))
    start = row - min(row - line_start, window // 4)
    return clamp_position(run, start, window)


def search_note(trigger, phrase: str | None, found) -> str:
    """What the search box says after a move: that a phrase searched for is not in the text
    ("" otherwise)."""
    if trigger in (FIND, SEARCH) and phrase and found is None:
        shown = phrase if len(phrase) <= 40 else phrase[:37] + "..."
        return f"{shown!r} does not occur in the text"
    return ""


def _line_start(text: str, row: int) -> int:
    return text.rfind("\n", 0, row) + 1
