"""Long series drawn at the screen's resolution, as plotly-resampler does.

A line of 100,000 steps is no clearer than one of 2,000 on a panel a thousand pixels wide, but it
costs 50 times the bytes and the browser's drawing time. A line longer than ``MAX_SERIES_POINTS``
is sent as the points MinMaxLTTB picks (tsdownsample: the min and max of each bucket, then
largest-triangle-three-buckets among them, so spikes and gaps survive); a zoom sends the points of
the visible window again, every step once the window holds few enough.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tsdownsample import NaNMinMaxLTTBDownsampler

MAX_SERIES_POINTS = 2000


@dataclass(frozen=True)
class Window:
    """The part of the x axis a zoom shows; ``None`` bounds mean the whole series."""
    low: float | None = None
    high: float | None = None


WHOLE = Window()


def window_from_relayout(relayout: dict | None, axis: str = "xaxis") -> Window | None:
    """The x window a Plotly ``relayoutData`` event asks for: ``WHOLE`` on a reset (autorange),
    ``None`` when the event says nothing of the x axis (a resize, a y-only zoom: nothing to
    redraw)."""
    if not isinstance(relayout, dict):
        return None
    if relayout.get(f"{axis}.autorange"):
        return WHOLE
    bounds = relayout.get(f"{axis}.range")
    if not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
        bounds = (relayout.get(f"{axis}.range[0]"), relayout.get(f"{axis}.range[1]"))
    try:
        low, high = (float(b) for b in bounds)
    except (TypeError, ValueError):
        return None
    if not (np.isfinite(low) and np.isfinite(high)):
        return None
    return Window(min(low, high), max(low, high))


def shown_points(x: np.ndarray, y: np.ndarray, window: Window = WHOLE,
                 max_points: int = MAX_SERIES_POINTS) -> np.ndarray:
    """Indices of the points of the line (``x`` ascending) to draw in ``window``: all of them when
    there are at most ``max_points``, else MinMaxLTTB's choice (NaN gaps kept). One point beyond
    each edge of the window is kept so the line runs to the panel's border."""
    x = np.asarray(x)
    start, stop = 0, len(x)
    if window.low is not None:
        start = max(int(np.searchsorted(x, window.low, side="left")) - 1, 0)
    if window.high is not None:
        stop = min(int(np.searchsorted(x, window.high, side="right")) + 1, len(x))
    if stop - start <= max_points:
        return np.arange(start, stop)
    # its x must be numeric and ascending; the float64 copy keeps step numbers exact
    picked = NaNMinMaxLTTBDownsampler().downsample(x[start:stop].astype(np.float64),
                                                   np.asarray(y[start:stop], dtype=np.float64),
                                                   n_out=max_points)
    return start + picked.astype(np.int64)


def drawn_note(shown: int, total: int) -> str:
    """What a decimated figure's title adds ('' when every point is drawn)."""
    if shown >= total:
        return ""
    return f"{shown:,} of {total:,} steps drawn per line (min-max LTTB): zoom in for every step"


def in_window(x: np.ndarray, window: Window) -> int:
    """How many of the steps ``x`` lie in ``window`` (all of them for ``WHOLE``)."""
    low = -np.inf if window.low is None else window.low
    high = np.inf if window.high is None else window.high
    return int(((x >= low) & (x <= high)).sum())


def zoomed_axis(window: Window) -> dict:
    """The x axis settings that keep a zoomed window in view when its detail is redrawn."""
    if window.low is None or window.high is None:
        return {}
    return {"range": [window.low, window.high], "autorange": False}
