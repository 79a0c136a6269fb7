"""The phrase-pattern picture (LSTMVis Figure 9): each phrase's on/off cell pattern in 2-D PCA,
coloured by its annotation value."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from dashboard.figures import class_colors


def patterns_figure(coords: np.ndarray, labels: Sequence[str], phrases: Sequence[str], starts: np.ndarray,
                    ends: np.ndarray, title: str) -> go.Figure:
    """One trace per annotation value (legend), hover names the phrase; ``customdata`` holds the
    phrase's rows (start, last) so a click can open it. SVG markers: at most a few thousand
    phrases (``pipeline.analysis.patterns.MAX_PHRASES``), and each point stays clickable."""
    labels = np.asarray(labels, dtype=object)
    names = sorted(set(labels), key=lambda v: (len(str(v)), str(v)))
    colors = class_colors(names)
    figure = go.Figure()
    for name in names:
        chosen = np.flatnonzero(labels == name)
        figure.add_trace(go.Scatter(
            x=coords[chosen, 0], y=coords[chosen, 1], mode="markers", name=str(name),
            marker={"size": 6, "color": colors[name], "opacity": 0.7},
            customdata=np.stack([starts[chosen], ends[chosen] - 1], axis=1).tolist(),   # a typed 2-D array loses it in clicks
            text=[phrases[i] for i in chosen],
            hovertemplate=f"<b>{name}</b><br>%{{text}}<br>rows %{{customdata[0]}}\u2013%{{customdata[1]}}<extra></extra>"))
    figure.update_layout(title={"text": title, "font": {"size": 13}}, legend={"title": {"text": "value"}},
                         xaxis={"title": {"text": "pattern PC 1"}, "zeroline": False},
                         yaxis={"title": {"text": "pattern PC 2"}, "zeroline": False},
                         margin={"l": 50, "r": 20, "t": 60, "b": 50}, clickmode="event")
    return figure
