"""Last activations (the study's Figure 4, and Figures 11-13 for the mistakes): each example's
projected hidden state at its last step, coloured by class or by hand usage.

Misclassified examples are 'x' markers labelled "true → predicted" in red (up to
``MAX_MISTAKE_LABELS``), lifted apart from each other and from the class names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.figures import HAND_COLORS, HIGHLIGHT, class_colors, message_spec, spec_layout, spread_labels
from dashboard.figures.paths import class_medians, fixed_axes
from pipeline.analysis.transforms import symlog as symlog_transform

MISTAKE_LABEL = "#b22222"
MAX_MISTAKE_LABELS = 100    # beyond this the labels would cover the scene; hover still tells
MAX_CLASS_LABELS = 30
UNKNOWN_HAND = "#999999"
OUTSIDE = "rgba(150,150,150,0.35)"     # examples outside a lasso's selection


def last_step_figure(points: pd.DataFrame, examples: pd.DataFrame, classes: list[str],
                     color_by: str = "class", selected: int | None = None, symlog: bool = False,
                     title: str | None = None, ranges: Mapping[str, tuple[float, float]] | None = None,
                     highlight: Sequence[str] | None = None, name_all: bool = False,
                     chosen_ids: Sequence[int] | None = None, axis_title: str = "") -> go.Figure:
    """``points``: ``example_id, x, y`` (one row per example); ``examples``: the filtered
    examples (``example_id, label``, with predictions ``prediction, correct``, and ``hand_usage``
    for color_by="hand"). Only examples in both are drawn. Without predictions (an import that
    has none) no example is marked misclassified and hover names the class only. ``ranges``
    fixes the axes (``paths.fixed_axes``: a recording's pictures by epoch share them).

    Class names sit at the class centroids (the median of each class's correctly classified
    points): for the ``highlight`` classes (the ones chosen in the filter bar, in far-apart
    colours with a legend entry each), else for every class when there are at most
    ``MAX_CLASS_LABELS`` or ``name_all`` asks. ``chosen_ids``: a set of examples (a lasso's)
    drawn as usual over the others, which stay as small grey points. ``axis_title``: "PCA" gives
    the axes "PCA 1" and "PCA 2"."""
    return go.Figure(last_step_spec(points, examples, classes, color_by, selected, symlog, title, ranges,
                                    highlight, name_all, chosen_ids, axis_title))


def last_step_spec(points: pd.DataFrame, examples: pd.DataFrame, classes: list[str],
                   color_by: str = "class", selected: int | None = None, symlog: bool = False,
                   title: str | None = None, ranges: Mapping[str, tuple[float, float]] | None = None,
                   highlight: Sequence[str] | None = None, name_all: bool = False,
                   chosen_ids: Sequence[int] | None = None, axis_title: str = "") -> dict:
    """``last_step_figure`` as a plain dict (``figures.sent`` sends it as Dash sends that figure),
    without plotly validating it value by value."""
    frame = examples.merge(points[["example_id", "x", "y"]], on="example_id", how="inner")
    if frame.empty:
        return message_spec("No examples match the filters.")
    if symlog:
        frame = frame.assign(x=symlog_transform(frame["x"]), y=symlog_transform(frame["y"]))
    frame = frame.assign(x=frame["x"].astype(np.float32), y=frame["y"].astype(np.float32))
    present = set(frame["label"])
    chosen = [name for name in dict.fromkeys(highlight or []) if name in present]
    data: list[dict] = []
    legend = {"orientation": "h", "y": -0.08}

    def points_of(part: pd.DataFrame) -> dict:
        return {"type": "scattergl", "x": part["x"].to_numpy(), "y": part["y"].to_numpy()}

    if chosen_ids is not None:
        inside = frame["example_id"].isin(list(chosen_ids)).to_numpy()
        outside = frame[~inside]
        if len(outside):
            data.append({**points_of(outside), "mode": "markers", "name": "outside the selection",
                         "marker": {"color": OUTSIDE, "size": 5}, "customdata": _custom(outside),
                         "hovertemplate": "%{customdata[1]}<br>example %{customdata[0]}<extra></extra>"})
        frame = frame[inside]
        if frame.empty:
            return {"data": data, "layout": spec_layout(title=title, legend=legend, **_axes(ranges, symlog, axis_title))}
    codes, colorscale = _colour_codes(frame, classes, color_by, chosen)
    frame = frame.assign(colour=codes)
    colour_axis = {"colorscale": colorscale, "cmin": 0, "cmax": max(len(colorscale) - 1, 1),
                   "showscale": False}
    verdicts = frame["correct"].astype(bool) if "correct" in frame else pd.Series(True, index=frame.index)
    correct = frame[verdicts]
    wrong = frame[~verdicts]
    hover = ("%{customdata[1]}<br>example %{customdata[0]}"
             + ("<br>predicted %{customdata[2]}" if "prediction" in frame else "") + "<extra></extra>")
    groups = ([(hand, part) for hand, part in correct.groupby(correct["hand_usage"].fillna("unknown"),
                                                               sort=True)]
              if color_by == "hand" else [("correct", correct)])
    for name, part in groups:
        data.append({**points_of(part), "mode": "markers", "name": str(name),
                     "marker": {"color": part["colour"].to_numpy(), **colour_axis, "size": 8, "opacity": 0.85,
                                "line": {"width": 0.5, "color": "white"}},
                     "customdata": _custom(part), "hovertemplate": hover, "showlegend": color_by == "hand"})
    if color_by == "hand":             # the key to the colours, even when no correct one shows
        for hand in sorted(set(frame["hand_usage"].dropna()) - {name for name, _ in groups}):
            data.append({"type": "scattergl", "x": [None], "y": [None], "mode": "markers", "name": str(hand),
                         "marker": {"color": HAND_COLORS.get(hand, UNKNOWN_HAND), "size": 8}})
    if len(wrong):
        data.append({**points_of(wrong), "mode": "markers", "name": "misclassified",
                     "marker": {"symbol": "x", "size": 11, "color": wrong["colour"].to_numpy(), **colour_axis,
                                "line": {"width": 1, "color": "#222"}},
                     "customdata": _custom(wrong), "hovertemplate": hover, "showlegend": True})
        if len(wrong) > MAX_MISTAKE_LABELS:
            title = (f"{title or ''} (labels for at most {MAX_MISTAKE_LABELS} misclassified: "
                     f"narrow the filters; hover tells)")
    if color_by == "class":
        if chosen:              # the key to the chosen classes' colours
            for name in chosen:
                data.append({"type": "scattergl", "x": [None], "y": [None], "mode": "markers", "name": name,
                             "marker": {"color": colorscale[classes.index(name)][1]
                                        if name in classes else UNKNOWN_HAND, "size": 9}})
        named = chosen or (sorted(present) if name_all or len(present) <= MAX_CLASS_LABELS else [])
    else:
        named = []
    mistakes = wrong if 0 < len(wrong) <= MAX_MISTAKE_LABELS else wrong.iloc[:0]
    notes = _labels(correct if len(correct) else frame, named, mistakes, frame)
    if selected is not None:
        marked = frame[frame["example_id"].to_numpy() == int(selected)]
        if len(marked):
            data.append({**points_of(marked), "mode": "markers", "name": f"example {selected}",
                         "marker": {"symbol": "circle-open", "size": 22, "color": "black", "line": {"width": 3}},
                         "customdata": _custom(marked), "hoverinfo": "skip"})
    layout = spec_layout(title=title, legend=legend, **_axes(ranges, symlog, axis_title))
    if notes:
        layout["annotations"] = notes
    return {"data": data, "layout": layout}


def _axes(ranges, symlog: bool, axis_title: str) -> dict:
    layout = fixed_axes(ranges, symlog)
    if axis_title:
        for i, axis in enumerate(("xaxis", "yaxis")):
            layout[axis]["title"] = {"text": f"{axis_title} {i + 1}"}
    return {**layout, "dragmode": "lasso"}


def _colour_codes(frame: pd.DataFrame, classes: list[str], color_by: str,
                  chosen: Sequence[str] = ()) -> tuple[np.ndarray, list]:
    """A number per point and a stepped colour scale that maps number ``i`` to colour ``i``:
    numbers cost nothing to validate and send, unlike one colour string per point."""
    if color_by == "hand":
        names = [*HAND_COLORS, "unknown"]
        usage = frame["hand_usage"].astype(object) if "hand_usage" in frame else pd.Series(
            ["unknown"] * len(frame))
        codes = np.array([names.index(h) if h in HAND_COLORS else len(names) - 1 for h in usage])
        colours = [*HAND_COLORS.values(), UNKNOWN_HAND]
    else:
        palette = class_colors(classes)
        palette.update({name: HIGHLIGHT[i % len(HIGHLIGHT)] for i, name in enumerate(chosen)})
        lookup = {name: i for i, name in enumerate(classes)}
        codes = frame["label"].map(lookup).fillna(len(classes)).to_numpy()
        colours = [palette[name] for name in classes] + [UNKNOWN_HAND]
    scale = max(len(colours) - 1, 1)
    return codes.astype(np.int16), [[i / scale, colour] for i, colour in enumerate(colours)]


def _custom(part: pd.DataFrame) -> np.ndarray:
    """``[example_id, true label, prediction]`` per point (as text, one numpy array): the click's
    example and the hover text."""
    predicted = part["prediction"] if "prediction" in part else part["label"]
    return np.column_stack([part["example_id"].astype(str), part["label"].astype(str),
                            predicted.astype(str)]).astype(str)


def _labels(correct: pd.DataFrame, names: Sequence[str], wrong: pd.DataFrame, frame: pd.DataFrame) -> list[dict]:
    """The ``names`` of classes at the median of their points in ``correct`` and a "true →
    predicted" label on each example of ``wrong`` (in red), lifted apart from each other in one
    pass (a label above and one below each 'x' ran into each other where mistakes cluster)."""
    correct = correct[correct["label"].isin(list(names))]
    centres = (class_medians(correct, correct["label"].to_numpy(), ["x", "y"]) if len(correct)
               else pd.DataFrame({"x": [], "y": []}))
    mistakes = ([f"{t} \u2192 {p}" for t, p in zip(wrong["label"].astype(str), wrong["prediction"].astype(str))]
                if len(wrong) else [])
    texts = [*map(str, centres.index), *mistakes]
    if not texts:
        return []
    x = np.concatenate([centres["x"].to_numpy(np.float64), wrong["x"].to_numpy(np.float64)])
    y = np.concatenate([centres["y"].to_numpy(np.float64), wrong["y"].to_numpy(np.float64)])
    notes = spread_labels(x, y, texts, (frame["x"].min(), frame["x"].max()), (frame["y"].min(), frame["y"].max()))
    for note in notes[len(centres):]:
        note["font"] = {"size": 11, "color": MISTAKE_LABEL}
    return notes
