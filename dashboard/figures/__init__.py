"""Figure builders: pure functions, data in, ``go.Figure`` out (no Dash, no file reads).

Shared here: the message figure a view shows instead of a traceback, the class palette and the
common look, so every view speaks the same visual language.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Sequence

import numpy as np
import plotly.express as px
import plotly.graph_objects as go
import plotly.io as pio

# The dashboard's look, set once: assigning a template per figure costs ~100 ms of validation.
pio.templates.default = "plotly_white"

#: One colour scale for time steps in every view.
TIME_COLORSCALE = "Viridis"
FADED = "rgba(150,150,150,0.15)"
PALETTE = px.colors.qualitative.Dark24 + px.colors.qualitative.Light24
#: Classes chosen for comparison, in the order chosen: ten colours far apart.
HIGHLIGHT = px.colors.qualitative.D3
HAND_COLORS = {"one-handed": "#1f77b4", "two-handed": "#d62728"}


def as_sent(figure: go.Figure) -> dict:
    """The figure as Dash sends it, typed arrays already base64-encoded. Memoised views keep this
    form, so a repeated answer costs a string copy instead of re-encoding every array
    (about 75 ms for the 2 MB film at Auslan size)."""
    return json.loads(figure.to_json())


def sent(figure) -> dict:
    """A figure as Dash sends it: a ``go.Figure`` through ``as_sent``; a figure built as a plain
    dict (``{"data": [...], "layout": {...}}`` with numpy arrays, written in the form plotly's
    validation would leave it: the ``*_spec`` builders) with its arrays as typed arrays and the
    dashboard's template, as ``go.Figure(spec)`` would be sent. Validating and copying every value
    of a big figure is most of its cost (the Auslan paths: ~190 traces, ~0.3 s of 0.45 s)."""
    if isinstance(figure, go.Figure):
        return as_sent(figure)
    typed_figure = _typed_arrays(figure)
    typed_figure["layout"] = {**typed_figure.get("layout", {}), "template": _template()}
    return typed_figure


def spec_layout(**layout) -> dict:
    """``base_layout``'s settings for a plain-dict figure (a title as ``{"text": ...}``, none
    for None)."""
    title = layout.pop("title", None)
    layout = {"margin": {"l": 40, "r": 20, "t": 40, "b": 40}, "hovermode": "closest",
              "uirevision": True, **layout}
    if title is not None:
        layout["title"] = title if isinstance(title, dict) else {"text": title}
    return layout


def message_spec(text: str) -> dict:
    """``message_figure`` as a plain dict."""
    return message_figure(text).to_dict()


def colorscale(name: str) -> list:
    """A named colour scale as plotly's validation writes it (``[[0.0, "#440154"], ...]``)."""
    return [list(step) for step in go.scattergl.Marker(colorscale=name).colorscale]


@functools.cache
def _template() -> dict:
    return as_sent(go.Figure())["layout"]["template"]


def _typed_arrays(value):
    """``value`` with its numpy arrays as typed arrays (as ``to_dict`` converts them; text and
    bool arrays as lists). Arrays are looked for in dicts and in lists of dicts or arrays (traces,
    frames, annotations), never inside a list of numbers or of lists (customdata, colour scales)."""
    if isinstance(value, dict):
        return {key: _typed_arrays(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        spec = _typed_spec(value)
        return spec.tolist() if isinstance(spec, np.ndarray) else spec
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], (dict, np.ndarray)):
        return [_typed_arrays(item) for item in value]
    if isinstance(value, tuple):
        return list(value)
    return value


def typed(values: np.ndarray) -> dict:
    """``values`` as plotly's typed-array spec (``{"dtype", "bdata"}``), in their own dtype: plotly
    passes it through unvalidated, where it would turn small integers for a text attribute into
    float64, and it validates a list point by point (the paths' steps at Auslan size: ~20% of the
    figure's CPU time)."""
    return _typed_spec(np.asarray(values))


def untyped(spec) -> np.ndarray:
    """A ``typed`` spec (or a plain list) back as an array, read-only."""
    if not isinstance(spec, dict):
        return np.asarray(spec)
    array = np.frombuffer(base64.b64decode(spec["bdata"]), dtype=spec["dtype"])
    shape = spec.get("shape")
    return array.reshape([int(n) for n in str(shape).split(",")]) if shape else array


_SHORT_TYPES = {"int8": "i1", "uint8": "u1", "int16": "i2", "uint16": "u2", "int32": "i4", "uint32": "u4",
                "float32": "f4", "float64": "f8"}


def _typed_spec(values: np.ndarray):
    """plotly's ``to_typed_array_spec`` of a numpy array (the same spec: 64-bit integers narrowed to the
    smallest type that holds them, other dtypes left as arrays) without its copy and its
    dataframe-library checks (~0.2 ms an array; the paths send ~200 arrays)."""
    if values.size == 0:
        return values
    if values.dtype in (np.int64, np.uint64):
        low, high = values.min(), values.max()
        for kind in ((np.int8, np.int16, np.int32) if values.dtype == np.int64 else (np.uint8, np.uint16, np.uint32)):
            info = np.iinfo(kind)
            if info.min <= low and high <= info.max:
                values = values.astype(kind)
                break
        else:
            return values
    short = _SHORT_TYPES.get(values.dtype.name)
    if short is None:
        return values
    spec = {"dtype": short, "bdata": base64.b64encode(np.ascontiguousarray(values)).decode("ascii")}
    if values.ndim > 1:
        spec["shape"] = str(values.shape)[1:-1]
    return spec


def message_figure(text: str) -> go.Figure:
    """An empty figure that says why there is nothing to draw (no data, unreadable run)."""
    figure = go.Figure()
    figure.add_annotation(text=text, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                          font={"size": 14, "color": "#555"})
    figure.update_layout(xaxis={"visible": False}, yaxis={"visible": False},
                         margin={"l": 20, "r": 20, "t": 20, "b": 20})
    return figure


def class_colors(classes: Sequence[str]) -> dict[str, str]:
    """A stable colour per class name (the run's class order), cycling past 48 classes."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(classes)}


def base_layout(figure: go.Figure, **layout) -> go.Figure:
    layout = {"margin": {"l": 40, "r": 20, "t": 40, "b": 40},
              "hovermode": "closest", "uirevision": True, **layout}
    figure.update_layout(**layout)
    return figure


def spread_labels(x, y, names, x_range, y_range, step_px: int = 16, min_dx: float = 0.09,
                  min_dy: float = 0.035) -> list[dict]:
    """Annotations for ``names`` at (x, y) (in their order), lifted in ``step_px`` steps (with a
    leader line) until none overlaps a label already placed, the highest first; ``min_dx``/``min_dy``
    are label sizes as fractions of the axis ranges (a ~600 px plot). Readable class names
    without a layout engine."""
    placed: list[tuple[float, float]] = []
    items = list(zip(x, y, names))
    notes: list[dict] = [{} for _ in items]
    width = float(x_range[1] - x_range[0]) or 1.0
    height = float(y_range[1] - y_range[0]) or 1.0
    for i in sorted(range(len(items)), key=lambda i: (-items[i][1], items[i][0])):
        xi, yi, name = items[i]
        u, v = (xi - x_range[0]) / width, (yi - y_range[0]) / height
        lift = 1
        while any(abs(u - pu) < min_dx and abs(v + lift * min_dy - pv) < min_dy for pu, pv in placed):
            lift += 1
        placed.append((u, v + lift * min_dy))
        notes[i] = dict(x=float(xi), y=float(yi), text=str(name), showarrow=True, arrowhead=0,
                        arrowwidth=1, arrowcolor="#666", ax=0, ay=-lift * step_px,
                        bgcolor="rgba(255,255,255,0.85)", bordercolor="#888", borderpad=2,
                        font={"size": 12, "color": "#111"})
    return notes
