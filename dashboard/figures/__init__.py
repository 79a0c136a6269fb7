"""Figure builders: pure functions, data in, ``go.Figure`` out (no Dash, no file reads).

Shared here: the message figure a view shows instead of a traceback, the class palette and the
common look, so every view speaks the same visual language.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import plotly.express as px
import plotly.graph_objects as go
import plotly.io as pio
from _plotly_utils.utils import to_typed_array_spec

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


def typed(values: np.ndarray) -> dict:
    """``values`` as plotly's typed-array spec (``{"dtype", "bdata"}``), in their own dtype: plotly
    passes it through unvalidated, where it would turn small integers for a text attribute into
    float64, and it validates a list point by point (the paths' steps at Auslan size: ~20% of the
    figure's CPU time)."""
    return to_typed_array_spec(np.ascontiguousarray(values))


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
    """Annotations for ``names`` at (x, y), lifted in ``step_px`` steps (with a leader line) until
    none overlaps a label already placed; ``min_dx``/``min_dy`` are label sizes as fractions of
    the axis ranges (a ~600 px plot). Readable class names without a layout engine."""
    placed: list[tuple[float, float]] = []
    notes = []
    width = float(x_range[1] - x_range[0]) or 1.0
    height = float(y_range[1] - y_range[0]) or 1.0
    for xi, yi, name in sorted(zip(x, y, names), key=lambda item: (-item[1], item[0])):
        u, v = (xi - x_range[0]) / width, (yi - y_range[0]) / height
        lift = 1
        while any(abs(u - pu) < min_dx and abs(v + lift * min_dy - pv) < min_dy for pu, pv in placed):
            lift += 1
        placed.append((u, v + lift * min_dy))
        notes.append(dict(x=float(xi), y=float(yi), text=str(name), showarrow=True, arrowhead=0,
                          arrowwidth=1, arrowcolor="#666", ax=0, ay=-lift * step_px,
                          bgcolor="rgba(255,255,255,0.85)", bordercolor="#888", borderpad=2,
                          font={"size": 12, "color": "#111"}))
    return notes
