"""Server-side rasterisation of scenes too big to send as points (a big run's paths or last steps).

Above ``MAX_VECTOR_POINTS`` points a scatter costs the browser seconds and megabytes (WebGL draws
a few hundred thousand points well; a 100,000-sign run has ~5.4M steps), so the server bins the
points into a ``WIDTH`` x ``HEIGHT`` image and sends that: a PNG as a layout image over the data
axes, with the axes, the title and a legend of the class colours kept. A pixel takes the colour
of the last point drawn into it (faded points first, then the others), as plotly's own
overplotting would; its opacity grows with the log of how many points fell there, so
dense regions read as dense. A zoom re-renders at the new ranges (``zoom_window``); once a window
holds at most ``MAX_VECTOR_POINTS`` points, the views send vector traces again (hover and click).

NumPy, not Datashader: measured on the 2-core machine (load 6), Datashader took 7 s to import and
5.4 s for its first (JIT-compiled) aggregation of 6.5M points, 0.8 s warm for per-class counts and
1-1.6 s to shade them; lines were 90 s. The bins here are one ``bincount`` and one scatter.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image

from dashboard.figures import spec_layout

MAX_VECTOR_POINTS = 200_000   # more than this in a 2-D scene: an image instead of points
WIDTH, HEIGHT = 900, 620      # pixels of the image (about the size the graph is drawn at)
MIN_ALPHA = 110               # opacity of a pixel one point fell in; the densest pixel is 255
MARGIN = 0.03                 # the full extent's padding, as a fraction of each range

Ranges = Mapping[str, tuple[float, float]]


def extent(x: np.ndarray, y: np.ndarray, margin: float = MARGIN) -> dict[str, tuple[float, float]]:
    """The finite points' bounding box, padded by ``margin`` (1 either side of a flat axis)."""
    out = {}
    for axis, values in (("x", x), ("y", y)):
        finite = np.isfinite(values)
        low, high = ((float(np.min(values, where=finite, initial=np.inf)),
                      float(np.max(values, where=finite, initial=-np.inf))) if finite.any() else (0.0, 1.0))
        pad = (high - low) * margin or 1.0
        out[axis] = (low - pad, high + pad)
    return out


def in_window(x: np.ndarray, y: np.ndarray, ranges: Ranges) -> np.ndarray:
    """Which points lie inside ``ranges`` (``{"x": (low, high), "y": (low, high)}``)."""
    (x0, x1), (y0, y1) = ranges["x"], ranges["y"]
    return (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)


BLOCK = 1 << 18               # points binned at a time: small temporaries, reused (see raster_image)


def raster_image(x: np.ndarray, y: np.ndarray, codes: np.ndarray, colours: Sequence[str],
                 ranges: Ranges, width: int = WIDTH, height: int = HEIGHT,
                 under: np.ndarray | None = None) -> np.ndarray:
    """``(height, width, 4)`` uint8 RGBA: point ``i`` coloured ``colours[codes[i]]``, the points
    ``under`` (a mask: the faded ones) drawn first, then the others in their order, each over
    the ones before; pixels no point falls in stay transparent. Row 0 is the top of the y range.

    Points are binned ``BLOCK`` at a time into one pixel index per point (outside the window: a
    bin past the image's): whole-array steps made ~10 temporaries of the scene's size, and on a
    machine whose fresh pages are slow to fault in (this 2-core VM) they took 1 s of 1.1 at 5.4M
    points, against 0.2 s with warm pages."""
    (x0, x1), (y0, y1) = ranges["x"], ranges["y"]
    outside = width * height                           # the bin of points outside the window
    sx, sy = np.float32(width / max(x1 - x0, 1e-30)), np.float32(height / max(y1 - y0, 1e-30))
    codes = np.asarray(codes)
    pixel = np.empty(len(x), dtype=np.intp)            # what bincount and indexing take, uncast
    for b0 in range(0, len(x), BLOCK):
        bx, by = x[b0:b0 + BLOCK], y[b0:b0 + BLOCK]
        with np.errstate(invalid="ignore"):            # NaN and far points: outside, cast or not
            col = np.minimum(((bx - np.float32(x0)) * sx).astype(np.intp), width - 1)
            row = np.minimum(((np.float32(y1) - by) * sy).astype(np.intp), height - 1)
        np.copyto(pixel[b0:b0 + BLOCK], np.where(in_window(bx, by, ranges), row * width + col, outside))
    rgb = np.array([_rgb(colour) for colour in colours], dtype=np.uint8).reshape(-1, 3)
    top = np.zeros(outside + 1, dtype=np.int32)        # each pixel's last code (a 1-D scatter is
    for layer in ([None] if under is None else [True, False]):   # ~10x a 2-D one)
        for b0 in range(0, len(x), BLOCK):             # numpy assigns a repeated index its last value
            bp, bc = pixel[b0:b0 + BLOCK], codes[b0:b0 + BLOCK]
            if layer is None:
                top[bp] = bc
            else:
                mine = under[b0:b0 + BLOCK] if layer else ~under[b0:b0 + BLOCK]
                top[bp[mine]] = bc[mine]
    counts = np.bincount(pixel, minlength=outside + 1)[:outside]
    hit = counts > 0
    image = np.zeros((outside, 4), dtype=np.uint8)
    if hit.any():
        image[hit, :3] = rgb[top[:outside][hit]]
        density = np.log1p(counts[hit]) / np.log1p(counts.max())
        image[hit, 3] = (MIN_ALPHA + (255 - MIN_ALPHA) * density).astype(np.uint8)
    return image.reshape(height, width, 4)


def png_source(image: np.ndarray) -> str:
    """The image as a ``data:`` URI of a PNG (fast compression: sent once, drawn at once)."""
    buffer = io.BytesIO()
    Image.fromarray(image, "RGBA").save(buffer, format="png", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def raster_figure(x: np.ndarray, y: np.ndarray, codes: np.ndarray, colours: Sequence[str],
                  legend: Sequence[tuple[str, str]], ranges: Ranges | None = None,
                  title: str | None = None, axis_title: str = "", revision: str = "raster",
                  under: np.ndarray | None = None, width: int = WIDTH, height: int = HEIGHT) -> dict:
    """The points as one image on data axes fixed to ``ranges`` (None: the points' ``extent``), a
    plain-dict figure (``figures.sent`` sends it): plotly's validation of even a few legend traces
    took seconds in a fresh process.

    ``codes``, ``colours`` and ``under`` as in ``raster_image``; ``legend``: ``(name, colour)`` entries (legend
    only traces, no data). ``revision``: the figure's uirevision, so a new scene (other filters)
    resets the zoom while a zoom's answer keeps it."""
    ranges = dict(ranges) if ranges else extent(x, y)
    image = raster_image(x, y, codes, colours, ranges, width, height, under)
    (x0, x1), (y0, y1) = ranges["x"], ranges["y"]
    traces = [{"type": "scattergl", "x": [None], "y": [None], "mode": "markers", "name": name,
               "marker": {"color": colour, "size": 9}, "hoverinfo": "skip"} for name, colour in legend]
    picture = {"source": png_source(image), "xref": "x", "yref": "y", "x": x0, "y": y1, "sizex": x1 - x0,
               "sizey": y1 - y0, "xanchor": "left", "yanchor": "top", "sizing": "stretch", "layer": "below"}
    axes = {f"{axis}axis": {"range": list(ranges[axis]), "autorange": False, "zeroline": False,
                            "showgrid": False,
                            **({"title": {"text": f"{axis_title} {i + 1}"}} if axis_title else {})}
            for i, axis in enumerate(("x", "y"))}
    return {"data": traces, "layout": spec_layout(
        title=title, legend={"orientation": "h", "y": -0.08}, dragmode="zoom", uirevision=revision,
        images=[picture], **axes)}


def zoom_window(relayout: Mapping | None) -> dict[str, tuple[float, float]] | str | None:
    """A zoom in ``relayoutData``: ``{"x": (low, high), "y": (low, high)}``; ``"reset"`` for a
    double-click's autorange; None for anything else (a selection, a resize, nothing)."""
    if not isinstance(relayout, Mapping):
        return None
    if relayout.get("xaxis.autorange") or relayout.get("yaxis.autorange"):
        return "reset"
    try:
        x = (float(relayout["xaxis.range[0]"]), float(relayout["xaxis.range[1]"]))
        y = (float(relayout["yaxis.range[0]"]), float(relayout["yaxis.range[1]"]))
    except (KeyError, TypeError, ValueError):
        return None
    if not all(np.isfinite([*x, *y])) or x[0] == x[1] or y[0] == y[1]:
        return None
    return {"x": (min(x), max(x)), "y": (min(y), max(y))}


def _rgb(colour: str) -> tuple[int, int, int]:
    """``#rrggbb``, ``rgb(r,g,b)`` or ``rgba(r,g,b,a)`` (the alpha is left to the density)."""
    text = colour.strip()
    if text.startswith("#"):
        return int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16)
    parts = text[text.index("(") + 1:text.rindex(")")].split(",")
    return int(float(parts[0])), int(float(parts[1])), int(float(parts[2]))
