"""Figures for text runs: per-cell character heatmaps, the select plot and the match list.

A row of text is a character or a word token with its spacing (``"Alice "``); ``visible_char``
and ``visible_piece`` show either, so every figure draws character and word runs alike.

Pure functions, data in, figure, HTML or Dash components out. Text is drawn as HTML spans (a
Plotly heatmap cannot wrap lines like text), given to the page as ONE string of HTML: a window of
text is thousands of spans, and as Dash components they took the page's renderer seconds to lay
out. Characters whose colours fall in the same bin share one span. Colours are binned on a fixed
scale (the cell's range over the whole stream), so a colour means the same value on every page.
Every piece of text is escaped (braces too: ``dcc.Markdown`` parses raw HTML as JSX): the corpus
may be any file.
"""

from __future__ import annotations

import html as html_text
import re
from collections.abc import Sequence

import numpy as np
import plotly.colors
import plotly.graph_objects as go
from dash import html

from dashboard.figures import PALETTE, base_layout, message_figure

DIVERGING = "RdBu_r"          # blue negative, white zero, red positive
COUNT_SCALE = "Greens"
N_BINS = 21                   # odd: the middle bin is zero
VISIBLE = {"\n": "\u23ce", "\t": "\u2192", " ": "\u00a0"}   # what the select plot's axis shows
THRESHOLD_SHAPE = 0           # the select plot's threshold line: its first shape


def visible_char(ch: str) -> str:
    """A row as a label: a character (whitespace made visible), or a word without its spacing
    (a paragraph break, all whitespace, as a line-end sign)."""
    if ch in VISIBLE or len(ch) <= 1:
        return VISIBLE.get(ch, ch)
    word = ch.strip()
    return word if word else VISIBLE["\n" if "\n" in ch else " "]


def visible_piece(piece: str) -> str:
    """A row as running text in one line: a character as ``visible_char`` shows it; a word with
    its spacing as one space, a line break in it as a line-end sign."""
    if len(piece) <= 1:
        return visible_char(piece)
    return re.sub(r"[^\S\n]+", " ", re.sub(r"\s*\n\s*", VISIBLE["\n"] + " ", piece))


def fitted(label: str, width: int) -> str:
    """``label`` in exactly ``width`` characters (padded with no-break spaces, or cut with an
    ellipsis): a track under text in a monospace font stays aligned with it."""
    if len(label) <= width:
        return label + "\u00a0" * (width - len(label))
    return label[:width] if width <= 1 else label[:width - 1] + "\u2026"


def diverging_colors(n_bins: int = N_BINS, scale: str = DIVERGING) -> list[str]:
    return plotly.colors.sample_colorscale(scale, list(np.linspace(0, 1, n_bins)))


def sequential_colors(n_bins: int, scale: str = COUNT_SCALE) -> list[str]:
    return plotly.colors.sample_colorscale(scale, list(np.linspace(0, 1, n_bins)))


def value_bins(values: np.ndarray, limit: float, n_bins: int = N_BINS) -> np.ndarray:
    """Bin of each value on the symmetric scale [-limit, limit] (NaN -> the middle bin)."""
    limit = float(limit) if limit and np.isfinite(limit) and limit > 0 else 1.0
    scaled = np.nan_to_num(np.asarray(values, dtype=np.float64) / limit, nan=0.0)
    return np.clip(np.rint((scaled + 1) / 2 * (n_bins - 1)), 0, n_bins - 1).astype(np.int64)


def symmetric_limit(values: np.ndarray, quantile: float = 0.995) -> float:
    """A colour-scale limit: a high quantile of |value| (so one outlier does not wash out the rest)."""
    values = np.abs(np.asarray(values, dtype=np.float64))
    values = values[np.isfinite(values)]
    if not len(values):
        return 1.0
    limit = float(np.quantile(values, quantile))
    return limit if limit > 0 else 1.0


def _runs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) of each run of equal consecutive keys."""
    if not len(keys):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    change = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(keys)]])
    return starts, ends


# dcc.Markdown hands raw HTML to a JSX parser, where ``{...}`` is a JavaScript expression: a brace
# in the text would swallow what follows it (most windows of Python source rendered blank).
_ENTITIES = str.maketrans({"\n": "&#10;", "\r": "&#13;", "{": "&#123;", "}": "&#125;"})


def escape(text: str) -> str:
    """HTML for a piece of text: markup characters escaped; newlines and braces as entities (one
    line of HTML that the page's JSX parser reads as text)."""
    return html_text.escape(text, quote=True).translate(_ENTITIES)


def heatmap_html(chars: Sequence[str], values: np.ndarray, limit: float, *, first_row: int = 0,
                 document_starts: dict[int, str] | None = None,
                 highlight: tuple[int, int] | None = None) -> str:
    """The text with each row's background coloured by its value (diverging, [-limit, limit]); a
    row is a character or a word with its spacing.

    One line of HTML (for ``dcc.Markdown(dangerously_allow_html=True)``: one component however
    long the text, where thousands of Dash components would take the page seconds to lay out).
    ``first_row`` is the stream row of ``chars[0]``; ``document_starts`` maps stream rows where a
    document begins to its name (a header line); ``highlight`` (start, end) rows, end exclusive, get
    an outline (a found phrase). Each span's title is its values.
    """
    colors = diverging_colors()
    bins = value_bins(values, limit)
    rows = np.arange(first_row, first_row + len(chars))
    headers = {r: name for r, name in (document_starts or {}).items() if first_row <= r < first_row + len(chars)}
    breaks = np.zeros(len(chars), dtype=np.int64)
    for r in headers:
        breaks[r - first_row:] += 1
    found = np.zeros(len(chars), dtype=bool)
    if highlight:
        found = (rows >= highlight[0]) & (rows < highlight[1])
    keys = bins + N_BINS * (breaks * 2 + found)
    values = np.asarray(values, dtype=np.float64)
    parts = ['<div class="text-heatmap">']
    starts, ends = _runs(keys)
    for start, end in zip(starts, ends):
        row = first_row + int(start)
        if row in headers and (start == 0 or breaks[start] != breaks[start - 1]):
            parts.append(f'<div class="text-doc" style="color:#666;border-top:1px solid #ccc;font-style:italic;'
                         f'margin:4px 0 2px">{escape(headers[row])}</div>')
        b = int(bins[start])
        style = f"background:{colors[b]}"
        if abs(b - N_BINS // 2) > 0.7 * (N_BINS // 2):
            style += ";color:white"
        if found[start]:
            style += ";outline:2px solid #ff7f0e"
        low, high = np.nanmin(values[start:end]), np.nanmax(values[start:end])
        title = f"{low:+.2f}" if low == high else f"{low:+.2f} .. {high:+.2f}"
        parts.append(f'<span style="{style}" title="{title}">{escape("".join(chars[start:end]))}</span>')
    parts.append("</div>")
    return "".join(parts)


def legend(limit: float, label: str) -> html.Div:
    """A horizontal colour bar for the diverging scale, with its limits."""
    colors = diverging_colors()
    gradient = f"linear-gradient(to right, {', '.join(colors)})"
    return html.Div(className="text-legend", style={"display": "flex", "alignItems": "center", "gap": "6px"},
                    children=[html.Span(label), html.Span(f"{-limit:+.2f}"),
                              html.Span(style={"display": "inline-block", "width": "200px", "height": "12px",
                                               "background": gradient, "border": "1px solid #ccc"}),
                              html.Span(f"{limit:+.2f}")])


# ---------------------------------------------------------------------------------------------
# Ranking cells by an annotation

def correlations(states: np.ndarray, target: np.ndarray, block: int = 65536) -> np.ndarray:
    """Pearson correlation of every column of ``states`` (rows, cells) with ``target`` (rows,).

    Vectorised: a matrix-vector product per block of rows; a constant column or target gives 0.
    """
    target = np.asarray(target, dtype=np.float64)
    centred = target - target.mean()
    target_norm = np.sqrt(centred @ centred)
    if target_norm == 0:
        return np.zeros(states.shape[1])
    n = len(target)
    sums, squares, covariance = (np.zeros(states.shape[1]) for _ in range(3))
    for start in range(0, n, block):                  # float64 sums, a block of rows at a time
        rows = np.asarray(states[start:start + block], dtype=np.float64)
        sums += rows.sum(axis=0)
        squares += np.einsum("ij,ij->j", rows, rows)
        covariance += centred[start:start + block] @ rows
    column_means = sums / n
    variance = np.maximum(squares / n - column_means ** 2, 0)
    constant = variance <= 1e-12 * np.maximum(column_means ** 2, 1e-12)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = covariance / (np.sqrt(variance * n) * target_norm)
    r[constant] = 0
    return np.clip(np.nan_to_num(r), -1, 1)


def ranking_items(r: np.ndarray, top: int = 10) -> list[tuple[int, float]]:
    """The ``top`` cells by |r|, strongest first: (cell, r)."""
    order = np.argsort(-np.abs(r), kind="stable")[:top]
    return [(int(i), float(r[i])) for i in order]


# ---------------------------------------------------------------------------------------------
# Select

def select_figure(chars: Sequence[str], states: np.ndarray, first_row: int, threshold: float,
                  selected_cells: Sequence[int] = (), selection: tuple[int, int] | None = None,
                  counts: np.ndarray | None = None, annotation: np.ndarray | None = None,
                  annotation_name: str = "", title: str = "", categories: Sequence[str] | None = None,
                  value_range: tuple[float, float] | None = None,
                  predictions: tuple[np.ndarray, np.ndarray, Sequence[str]] | None = None) -> go.Figure:
    """LSTMVis' select view: one line per cell over a window of text, time labelled by characters.

    ``states`` (steps, cells) for the window; ``selected_cells`` are drawn in colour, the rest in
    grey; ``selection`` (first, last) stream rows is shaded; ``counts`` (steps,) -- how many selected
    cells are on at each step -- and ``annotation`` (steps,) are heatmap rows under the lines, the
    annotation in the colours of ``annotation_palette`` (codes of ``categories``, or numbers on
    ``value_range``), as the match list shows it. ``predictions`` (top classes (steps, k), their
    probabilities, the vocabulary): a "next" row, the model's top-1 next token on its probability
    (``prediction_palette``), the top-k on hover.
    """
    n_steps, n_cells = states.shape
    if n_steps == 0:
        return message_figure("no text in this window")
    x = np.arange(first_row, first_row + n_steps)
    tracks = [counts is not None, annotation is not None, predictions is not None]
    rows = [0.76] + [0.12] * sum(tracks)
    from plotly.subplots import make_subplots
    figure = make_subplots(rows=len(rows), cols=1, shared_xaxes=True, vertical_spacing=0.02,
                           row_heights=rows)
    selected = {int(c) for c in selected_cells}
    grey = [c for c in range(n_cells) if c not in selected]
    if grey:
        # One trace, lines separated by NaN; float32 halves what the page receives.
        xs = np.tile(np.append(x, np.nan).astype(np.float32), len(grey))
        ys = np.column_stack([states[:, grey].T, np.full(len(grey), np.nan)]).astype(np.float32).ravel()
        figure.add_trace(go.Scattergl(x=xs, y=ys, mode="lines", line={"color": "rgba(140,140,140,0.25)",
                                                                      "width": 1},
                                      name="other cells", hoverinfo="skip"), row=1, col=1)
    for k, cell in enumerate(sorted(selected)):
        figure.add_trace(go.Scatter(x=x, y=states[:, cell], mode="lines", name=f"cell {cell}",
                                    line={"color": PALETTE[k % len(PALETTE)], "width": 2},
                                    hovertemplate=f"cell {cell}<br>row %{{x}}<br>%{{y:.3f}}<extra></extra>"),
                         row=1, col=1)
    # An invisible marker per step: box/lasso selection and clicks report steps through it.
    low, high = float(np.nanmin(states)), float(np.nanmax(states))
    figure.add_trace(go.Scatter(x=x, y=np.full(n_steps, (low + high) / 2), mode="markers",
                                marker={"size": 14, "opacity": 0}, name="steps", showlegend=False,
                                customdata=[visible_char(c) for c in chars],
                                hovertemplate="row %{x}: %{customdata}<extra></extra>"), row=1, col=1)
    # The threshold line is shape THRESHOLD_SHAPE, editable: a click picks it up, a drag moves it
    # (``threshold_from_relayout`` reads where it was dropped).
    figure.add_hline(y=threshold, line={"color": "red", "dash": "dash", "width": 2}, row=1, col=1,
                     editable=True, name="threshold")
    if selection is not None:
        figure.add_vrect(x0=selection[0] - 0.5, x1=selection[1] + 0.5, fillcolor="rgba(31,119,180,0.15)",
                         line={"color": "rgba(31,119,180,0.8)", "width": 1}, row="all", col=1)
    row = 2
    if counts is not None:
        figure.add_trace(go.Heatmap(x=x, y=["on"], z=[counts], colorscale=COUNT_SCALE, showscale=False,
                                    zmin=0, zmax=max(len(selected), 1),
                                    hovertemplate="row %{x}: %{z} selected cells on<extra></extra>"),
                         row=row, col=1)
        row += 1
    if annotation is not None:
        palette = annotation_palette(categories)
        names = [_annotation_label(v, categories) for v in annotation]
        figure.add_trace(go.Heatmap(x=x, y=[annotation_name], z=[annotation_codes(annotation, categories, value_range)],
                                    colorscale=stepped_colorscale(palette), zmin=-0.5, zmax=len(palette) - 0.5,
                                    showscale=False, text=[names],
                                    hovertemplate=f"row %{{x}}: {annotation_name} %{{text}}<extra></extra>"),
                         row=row, col=1)
        row += 1
    if predictions is not None:
        top_classes, top_probs, vocabulary = predictions
        firsts, titles = prediction_texts(top_classes, top_probs, vocabulary)
        palette = prediction_palette()
        figure.add_trace(go.Heatmap(x=x, y=["next"], z=[prediction_codes(np.asarray(top_probs)[:, 0])],
                                    colorscale=stepped_colorscale(palette), zmin=-0.5, zmax=len(palette) - 0.5,
                                    showscale=False, text=[firsts], texttemplate="%{text}", customdata=[titles],
                                    hovertemplate="row %{x}: next %{customdata}<extra></extra>"),
                         row=row, col=1)
    labels = [visible_char(c) for c in chars]
    angle = 0 if all(len(label) <= 1 for label in labels) else -50     # words would overlap
    for r in range(1, len(rows) + 1):
        figure.update_xaxes(tickmode="array", tickvals=list(x), ticktext=labels, tickangle=angle,
                            tickfont={"family": "monospace", "size": 11}, showgrid=False,
                            showticklabels=(r == len(rows)) or (r == 1 and not angle), row=r, col=1)
    figure.update_yaxes(fixedrange=True)
    base_layout(figure, title=title, dragmode="select", selectdirection="h", showlegend=False,
                margin={"l": 50, "r": 20, "t": 40, "b": 80 if angle else 30},
                height=430 + 40 * max(sum(tracks) - 2, 0) + (50 if angle else 0))
    return figure


def threshold_from_relayout(relayout: dict | None) -> float | None:
    """The threshold where the select plot's threshold line was dragged to (its mean height,
    should one end have been dragged alone), rounded to 0.01; None for any other relayout (a
    zoom, a resize, another shape)."""
    if not relayout:
        return None
    prefix = f"shapes[{THRESHOLD_SHAPE}]."
    ends = [relayout[prefix + key] for key in ("y0", "y1") if prefix + key in relayout]
    shapes = relayout.get("shapes")
    if not ends and isinstance(shapes, list) and len(shapes) > THRESHOLD_SHAPE:
        shape = shapes[THRESHOLD_SHAPE]
        if isinstance(shape, dict) and shape.get("name") == "threshold":
            ends = [shape.get("y0"), shape.get("y1")]
    try:
        value = float(np.mean([float(end) for end in ends])) if ends else None
    except (TypeError, ValueError):
        return None
    return round(value, 2) if value is not None and np.isfinite(value) else None


def selection_from_plot(selected: dict | None = None, clicked: dict | None = None,
                        previous: tuple[int | None, int | None] = (None, None)) -> tuple[int, int] | None:
    """The (first, last) rows a box selection or a click on the select plot asks for.

    A box gives its x range; a click on a step starts a new selection, and a second click on a
    later step of the same selection extends it to there.
    """
    if selected:
        box = (selected.get("range") or {}).get("x")
        if box:
            first, last = int(np.ceil(min(box))), int(np.floor(max(box)))
            if last >= first:
                return first, last
        xs = [p.get("x") for p in selected.get("points", []) if p.get("x") is not None]
        if xs:
            return int(min(xs)), int(max(xs))
        return None
    if clicked and clicked.get("points"):
        x = int(round(clicked["points"][0]["x"]))
        start, end = previous
        if start is not None and end is not None and start == end and x > start:
            return start, x
        return x, x
    return None


# ---------------------------------------------------------------------------------------------
# Match

def readable_on(color: str) -> str:
    """Black or white, whichever reads better on ``color`` ("rgb(r, g, b)" or "#rrggbb")."""
    if color.startswith("#"):
        red, green, blue = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    else:
        red, green, blue = (float(v) for v in color[color.index("(") + 1:color.index(")")].split(",")[:3])
    return "black" if 0.299 * red + 0.587 * green + 0.114 * blue > 150 else "white"


VALUE_STEPS = 11             # a numeric annotation's colours: Viridis in this many steps


def annotation_palette(categories: Sequence[str] | None) -> list[str]:
    """The annotation colours, one per code: a category's own colour (the categorical palette, in
    the order of the run's categories), or a Viridis step for a number. The select plot, the match
    list and their legend all colour through this, so a value has one colour everywhere."""
    if categories is not None:
        return [PALETTE[k % len(PALETTE)] for k in range(len(categories))]
    return plotly.colors.sample_colorscale("Viridis", list(np.linspace(0, 1, VALUE_STEPS)))


def annotation_codes(values: np.ndarray, categories: Sequence[str] | None,
                     value_range: tuple[float, float] | None = None) -> np.ndarray:
    """Each value's index into ``annotation_palette``: a category's code, or a number's step on
    ``value_range`` (the annotation's range over the whole stream, so colours compare across
    windows and matches)."""
    values = np.asarray(values)
    if categories is not None:
        return values.astype(np.int64)
    numbers = values.astype(np.float64)
    finite = numbers[np.isfinite(numbers)]
    low, high = value_range or ((float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0))
    span = high - low if high > low else 1.0
    steps = np.rint((np.nan_to_num(numbers, nan=low) - low) / span * (VALUE_STEPS - 1))
    return np.clip(steps, 0, VALUE_STEPS - 1).astype(np.int64)


def annotation_colors(values: np.ndarray, categories: Sequence[str] | None,
                      value_range: tuple[float, float] | None = None) -> list[str]:
    """A colour per value (``annotation_palette`` at ``annotation_codes``)."""
    palette = annotation_palette(categories)
    return [palette[c] for c in annotation_codes(values, categories, value_range)]


PREDICTION_SCALE = "Purples"   # the predictions track: the top-1 probability, [0, 1] in VALUE_STEPS steps


def prediction_palette() -> list[str]:
    return plotly.colors.sample_colorscale(PREDICTION_SCALE, list(np.linspace(0.05, 1, VALUE_STEPS)))


def prediction_codes(top1_probs: np.ndarray) -> np.ndarray:
    """Each step's index into ``prediction_palette``: its top-1 probability in steps of [0, 1]."""
    probs = np.nan_to_num(np.asarray(top1_probs, dtype=np.float64), nan=0.0)
    return np.clip(np.rint(probs * (VALUE_STEPS - 1)), 0, VALUE_STEPS - 1).astype(np.int64)


def prediction_texts(top_classes: np.ndarray, top_probs: np.ndarray, vocabulary: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the top-1 next token shown, "'a' 0.91 · 'b' 0.05 ..." the top-k with probabilities) per step."""
    firsts, titles = [], []
    for classes, probs in zip(np.asarray(top_classes), np.asarray(top_probs)):
        tokens = [visible_char(vocabulary[int(c)]) if 0 <= int(c) < len(vocabulary) else "?" for c in classes]
        firsts.append(tokens[0] if tokens else "")
        titles.append(" \u00b7 ".join(f"{t} {p:.2f}" for t, p in zip(tokens, probs)))
    return firsts, titles


def stepped_colorscale(palette: Sequence[str]) -> list[list]:
    """A Plotly colorscale on [-0.5, len(palette) - 0.5] that gives code k exactly ``palette[k]``."""
    n = len(palette)
    return [[edge / n, color] for k, color in enumerate(palette) for edge in (k, k + 1)]


def annotation_legend(name: str, categories: Sequence[str] | None,
                      value_range: tuple[float, float] | None = None) -> html.Div:
    """What the annotation colours mean: a swatch per category, or the numeric steps with their
    range; the same palette as the select plot and the match list."""
    palette = annotation_palette(categories)
    swatch = {"display": "inline-block", "width": "12px", "height": "12px", "border": "1px solid #ccc",
              "verticalAlign": "middle", "marginRight": "3px"}
    if categories is not None:
        items = [html.Span(className="annotation-key", children=[
            html.Span(style={**swatch, "background": palette[k]}), html.Span(category)])
            for k, category in enumerate(categories)]
    else:
        low, high = value_range or (0.0, 1.0)
        items = [html.Span(f"{low:g}")] + [html.Span(style={**swatch, "background": c, "marginRight": 0},
                                                     className="annotation-key") for c in palette] + \
            [html.Span(f"{high:g}")]
    return html.Div(className="annotation-legend", style={"display": "flex", "flexWrap": "wrap", "gap": "8px",
                                                          "alignItems": "center", "fontSize": "12px"},
                    children=[html.Span(f"{name}:")] + items)


def match_html(matches: Sequence[dict], *, annotation_name: str = "", categories: Sequence[str] | None = None,
               value_range: tuple[float, float] | None = None, n_cells: int = 1) -> str:
    """The match list as one line of HTML (like ``heatmap_html``): ``match_row_html`` per match."""
    rows = [match_row_html(m, annotation_name=annotation_name, categories=categories, value_range=value_range,
                           n_cells=n_cells) for m in matches]
    return '<div class="match-list">' + "".join(rows) + "</div>"


def match_row_html(m: dict, *, annotation_name: str = "", categories: Sequence[str] | None = None,
                   value_range: tuple[float, float] | None = None, n_cells: int = 1) -> str:
    """One match: header, text (context grey, matched characters coloured by the annotation), the
    match-count heatmap (selected cells on at each character) and the annotation heatmap over the
    context. One line of HTML (a view gives each match its own component, beside its link).

    ``m``: rank, name, start, end (rows, inclusive), overlap, extra, length, and per character
    shown: rows (its stream row; -1 where a long match is cut), chars, counts and annotation
    (codes for a categorical annotation); optionally predictions, (top-1 tokens, top-k texts,
    ``prediction_codes``) per character (``prediction_texts``): a track of the model's next token.
    """
    counts_palette = sequential_colors(max(n_cells, 1) + 1)
    mono = "white-space:pre;font-family:monospace;font-size:13px"
    chars, counts, rows = m["chars"], np.asarray(m["counts"]), np.asarray(m["rows"])
    matched = ((rows >= m["start"]) & (rows <= m["end"])) | (rows < 0)
    ann = m.get("annotation")
    colors = annotation_colors(ann, categories, value_range) if ann is not None else None
    labels = ([escape(f"{annotation_name} = {_annotation_label(v, categories)}") for v in ann]
              if colors else None)
    text, count, track, guessed = [], [], [], []     # (attributes, text) per row, merged below
    guesses = m.get("predictions")
    for i, ch in enumerate(chars):
        piece = visible_piece(ch)
        width = max(len(piece), 1)                   # a word's tracks are as wide as the word
        gap = int(width > 1 and piece.endswith(" "))  # and its next word leaves its space free
        shown = escape(piece)
        if matched[i] and colors:
            text.append((f'class="matched" style="background:{colors[i]};color:{readable_on(colors[i])};'
                         f'font-weight:bold" title="{labels[i]}"', shown))
        elif matched[i]:
            text.append(('class="matched" style="background:#ffe08a;font-weight:bold"', shown))
        else:
            text.append(('style="color:#999"', shown))
        c = int(min(max(counts[i], 0), n_cells))
        count.append((f'style="background:{counts_palette[c]}" title="{c} selected cells on"', "&nbsp;" * width))
        if colors:
            track.append((f'style="background:{colors[i]}" title="{labels[i]}"', "&nbsp;" * width))
        if guesses is not None:
            first, title, code = guesses[0][i], guesses[1][i], guesses[2][i]
            color = prediction_palette()[code]
            guessed.append((f'style="background:{color};color:{readable_on(color)}" title="next: {escape(title)}"',
                            escape(fitted(first, width - gap) + "\u00a0" * gap)))
    header = escape(f"#{m['rank']}  {m['name']}  rows {m['start']}\u2013{m['end']}  overlap {m['overlap']}  "
                    f"extra {m['extra']}  length {m['length']}")
    return (f'<div class="match-row" style="margin-bottom:6px">'
            f'<div style="font-size:11px;color:#555">{header}</div>'
            f'<div class="match-text" style="{mono}">{_merged(text)}</div>'
            f'<div class="match-counts" style="{mono};line-height:7px">{_merged(count)}</div>'
            + (f'<div class="match-annotation" style="{mono};line-height:7px">{_merged(track)}'
               f'</div>' if track else "")
            + (f'<div class="match-predictions" style="{mono}">{_merged(guessed)}</div>' if guessed else "")
            + '</div>')


def _merged(pieces: list[tuple[str, str]]) -> str:
    """Spans for (attributes, text) pieces, neighbours with the same attributes in one span."""
    spans, i = [], 0
    while i < len(pieces):
        j = i + 1
        while j < len(pieces) and pieces[j][0] == pieces[i][0]:
            j += 1
        spans.append(f'<span {pieces[i][0]}>{"".join(text for _, text in pieces[i:j])}</span>')
        i = j
    return "".join(spans)


def _annotation_label(value, categories):
    if categories is not None:
        return categories[int(value)]
    return f"{value:g}" if isinstance(value, (float, np.floating)) else str(value)


def match_summary(labels: Sequence[str]) -> str:
    """``"depth 4: 48 of 50, depth 3: 2 of 50"``: how the matches' annotation values distribute."""
    if not len(labels):
        return "no matches"
    values, counts = np.unique(np.asarray(labels, dtype=object).astype(str), return_counts=True)
    order = np.argsort(-counts, kind="stable")
    return ", ".join(f"{values[i]}: {counts[i]} of {len(labels)}" for i in order)
