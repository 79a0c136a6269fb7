"""Model writes: the language model continues a seed, each character coloured by one cell.

The Keras seed-text study's view (cells on inside quotes, after a quote, at a word's first
character): type a seed or pick the opening of a document, choose length, temperature and random
seed, and the model writes; the seed is outlined, and the cells that vary most over the written
part are listed to click. Colours use the cell's scale over the whole corpus, as in the text
heatmap, so the two views can be compared. The writing is the NumPy recurrence of extraction from
``models/weights.npz`` (``pipeline.analysis.generate``): no TensorFlow here, the same text for the
same random seed. A word run writes words: its seed is cut into words by the run's tokenizer, and
a seed word outside the vocabulary is read as ``<unk>`` (the status names it), as the model read
rare words in training.
"""

from __future__ import annotations

import dash
from dash import ALL, Input, Output, State, ctx, dcc, html

from dashboard import data, state, views
from dashboard.figures import text as figures
from dashboard.views.controls import LAST_LAYER, chosen_layer, field, layer_options, layer_picker, register_layer_tick
from dashboard.views.text_heatmap import STATE_KINDS, cell_limit, chars, is_words, step_name, text_run
from dashboard.views.why import network
from pipeline import runformat
from pipeline.analysis import generate, words

VIEW_ID = "write"
TITLE = "Model writes"
SEED, PICK, LENGTH, TEMPERATURE, RANDOM = "write-seed", "write-pick", "write-length", "write-temperature", "write-random"
LAYER, STATE_KIND, CELL, GO = "write-layer", "write-kind", "write-cell", "write-go"
BODY, LEGEND, STATUS, RANKING, RANK_BUTTON = "write-body", "write-legend", "write-status", "write-ranking", "write-rank"
N_PICKS = 8
PICK_CHARS = 40
PICK_WORDS = 8

URL_PARAMS = [
    state.UrlParam("write_layer", LAYER, "value", LAST_LAYER),
    state.UrlParam("write_kind", STATE_KIND, "value", "h"),
    state.UrlParam("write_cell", CELL, "value", 0, "int"),
]


def applies_to(manifest: runformat.Manifest) -> bool:
    """Language models trained here: only they keep the embedding and head that writing needs."""
    return manifest.is_language_model and runformat.WEIGHTS_FILE in manifest.files


def seed_options(run_id) -> list[dict]:
    """The openings of a few test documents, as seeds to pick."""
    try:
        frame = data.examples(text_run(run_id))
    except runformat.RunError:
        return []
    test = frame[frame["split"] == "test"] if "test" in set(frame["split"]) else frame
    stream = chars(text_run(run_id))
    rows = PICK_WORDS if is_words(text_run(run_id)) else PICK_CHARS
    options = []
    for row in test.head(N_PICKS).itertuples():
        opening = "".join(stream[int(row.row_start):int(row.row_start) + min(int(row.length), rows)])
        options.append({"label": f"{row.name}: {opening!r}"[:70], "value": opening})
    return options


def layout():
    number = {"type": "number", "debounce": True, "style": {"width": "6em"}}
    return html.Div(children=[
        html.Div(className="controls", style={"display": "flex", "flexWrap": "wrap", "gap": "1.2em",
                                              "alignItems": "flex-end"}, children=[
            field("Seed", dcc.Input(id=SEED, type="text", value="", debounce=True, placeholder="type a seed",
                                    style={"width": "22em"})),
            field("or pick one", dcc.Dropdown(id=PICK, options=[], placeholder="a document's opening",
                                              style={"width": "22em"})),
            field("Length", dcc.Input(id=LENGTH, min=1, max=generate.MAX_LENGTH, step=1, value=300, **number)),
            field("Temperature", dcc.Input(id=TEMPERATURE, min=0, max=10, step=0.1, value=0.8, **number)),
            field("Random seed", dcc.Input(id=RANDOM, min=0, step=1, value=0, **number)),
            html.Button("Write", id=GO, className="button"),
        ]),
        html.Div(className="controls", style={"display": "flex", "flexWrap": "wrap", "gap": "1.2em",
                                              "alignItems": "center"}, children=[
            layer_picker(LAYER),
            field("State", dcc.RadioItems(id=STATE_KIND, value="h", inline=True,
                                          options=[{"label": k, "value": k} for k in STATE_KINDS])),
            field("Cell", dcc.Input(id=CELL, type="number", min=0, step=1, value=0, debounce=True,
                                    style={"width": "5em"})),
            html.Span(id=STATUS, style={"color": "#555"}),
        ]),
        html.Div(id=RANKING, className="text-ranking",
                 style={"display": "flex", "flexWrap": "wrap", "gap": "4px", "margin": "4px 0"}),
        html.Div(id=LEGEND, style={"margin": "6px 0"}),
        dcc.Loading(html.Div(id=BODY, className="text-body", style={
            "whiteSpace": "pre-wrap", "fontFamily": "monospace", "fontSize": "13px", "lineHeight": "1.45",
            "wordBreak": "break-all", "border": "1px solid #ddd", "padding": "8px", "maxHeight": "70vh",
            "overflowY": "auto"}), delay_show=300),
    ])


@data.run_cached(maxsize=8)
def writing(run: runformat.Run, seed: str, length: int, temperature: float, random_seed: int) -> generate.Written:
    """The text written for these settings, kept so that choosing another layer, state or cell
    recolours it without writing it again (the same inputs write the same text)."""
    return generate.write(network(run), run.classes, seed, length, temperature, random_seed, tokenizer(run))


def tokenizer(run: runformat.Run) -> str | None:
    """The tokenizer of a word run trained here (None: a character model)."""
    text = run.manifest.get("text") or {}
    return text.get("tokenizer") if text.get("tokens") == "words" else None


def render(run_id, seed, length, temperature, random_seed, layer, kind, cell) -> tuple:
    """(the written text coloured by the cell, legend, status, ranking buttons)."""
    if not seed:
        return (html.Div("Type a seed (or pick a document's opening) and press Write.", className="hint"),
                None, "", [])
    try:
        run = text_run(run_id)
        layer = chosen_layer(run, layer)
        kind = kind if kind in STATE_KINDS else "h"
        written = writing(run, str(seed), int(length or 0), float(temperature if temperature is not None else 1.0),
                          int(random_seed or 0))
        matrix = written.states[([item.index for item in run.layers].index(layer), kind)]
        cell = int(cell or 0)
        if not 0 <= cell < matrix.shape[1]:
            raise ValueError(f"cell {cell} does not exist: layer {layer} has cells 0..{matrix.shape[1] - 1}")
    except (runformat.RunError, ValueError, TypeError) as error:
        return html.Div(str(error), className="message"), None, "", []
    limit = cell_limit(run, layer, kind, cell)
    body = figures.heatmap_html(written.tokens, matrix[:, cell], limit, highlight=(0, written.n_seed))
    n_written = len(written.tokens) - written.n_seed
    mean_probability = float(written.chosen_probability.mean()) if n_written else float("nan")
    steps, step = step_name(run), step_name(run)[:-1]
    status = (f"{n_written:,} {steps} written after a {written.n_seed:,}-{step} seed (outlined); "
              f"mean probability of the chosen {steps} {mean_probability:.2f}")
    if written.unknown:
        shown = ", ".join(repr(word) for word in written.unknown[:8])
        status += (f"; {len(written.unknown)} seed word(s) outside the vocabulary, read as "
                   f"{words.UNKNOWN}: {shown}")
    ranking = [html.Span("cells that vary most in the written text:", style={"color": "#555"})] + [
        html.Button(f"cell {c}  sd={spread:.2f}", id={"type": RANK_BUTTON, "cell": c}, className="button",
                    title=f"standard deviation over the written {steps}")
        for c, spread in generate.top_cells(matrix, written.n_seed)]
    return (dcc.Markdown(body, dangerously_allow_html=True, className="text-heatmap-body"),
            figures.legend(limit, f"layer {layer} {kind}, cell {cell}:"), status, ranking)


def register_callbacks(app: dash.Dash) -> None:
    register_layer_tick(app, LAYER)
    @app.callback(Output(LAYER, "options"), Output(f"{LAYER}-box", "style"), Output(PICK, "options"),
                  Output(PICK, "value"), Input(state.RUN, "value"))
    def show_options(run_id):
        """The run's seeds to pick, the first picked: the view opens on text the model wrote."""
        options, style = layer_options(run_id)
        seeds = seed_options(run_id)
        return options, style, seeds, (seeds[0]["value"] if seeds else None)

    @app.callback(Output(SEED, "value"), Input(PICK, "value"), prevent_initial_call=True)
    def pick_seed(opening):
        return opening if opening else dash.no_update

    @app.callback(Output(CELL, "value", allow_duplicate=True), Input({"type": RANK_BUTTON, "cell": ALL}, "n_clicks"),
                  prevent_initial_call=True)
    def rank_cell(_clicks):
        if not ctx.triggered or not ctx.triggered[0].get("value") or not isinstance(ctx.triggered_id, dict):
            return dash.no_update                      # a ranking button just appeared
        return int(ctx.triggered_id["cell"])

    @app.callback(Output(BODY, "children"), Output(LEGEND, "children"), Output(STATUS, "children"),
                  Output(RANKING, "children"),
                  Input(GO, "n_clicks"), Input(SEED, "value"), state.TAB_INPUT, Input(LAYER, "value"),
                  Input(STATE_KIND, "value"), Input(CELL, "value"),
                  State(LENGTH, "value"), State(TEMPERATURE, "value"), State(RANDOM, "value"),
                  State(state.RUN, "value"))
    def update(_go, seed, tab, layer, kind, cell, length, temperature, random_seed, run_id):
        if views.is_hidden(VIEW_ID, tab):
            return dash.no_update, dash.no_update, dash.no_update, dash.no_update
        return render(run_id, seed, length, temperature, random_seed, layer, kind, cell)
