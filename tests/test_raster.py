"""Big scenes as images (dashboard/figures/raster.py, dashboard/views/big.py): the pixels, the zoom,
and the switch between an image and points in the paths and last activations views, on the small
real synthetic run with the thresholds lowered (a big run would take minutes to build)."""

from __future__ import annotations

import base64
import io

import dash
import numpy as np
import pytest
from PIL import Image

from dashboard import data, state
from dashboard.figures import raster
from dashboard.views import big, last_step, paths

RED, BLUE = "#ff0000", "#0000ff"
SQUARE = {"x": (0.0, 1.0), "y": (0.0, 1.0)}


def pixels(figure) -> np.ndarray:
    source = figure["layout"]["images"][0]["source"]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))))


def test_rst001_pixels_are_coloured_where_points_lie_and_blank_elsewhere():
    x = np.array([0.05, 0.95, 0.95, 0.95, 0.5, 3.0], np.float32)      # the last one is outside
    y = np.array([0.05, 0.95, 0.95, 0.95, 0.5, 0.5], np.float32)
    image = raster.raster_image(x, y, np.array([0, 1, 1, 1, 0, 1]), [RED, BLUE], SQUARE, 10, 10)
    assert tuple(image[9, 0, :3]) == (255, 0, 0) and tuple(image[0, 9, :3]) == (0, 0, 255)  # y up
    assert tuple(image[5, 5, :3]) == (255, 0, 0)
    drawn = image[..., 3] > 0
    assert drawn.sum() == 3 and not drawn[0, 0] and not drawn[9, 9]
    assert image[0, 9, 3] == 255 > image[9, 0, 3] >= raster.MIN_ALPHA     # three points vs one


def test_rst002_faded_points_go_under_and_the_last_point_in_a_pixel_shows():
    x = y = np.array([0.5, 0.5, 0.5], np.float32)
    under = np.array([False, True, False])
    image = raster.raster_image(x, y, np.array([1, 0, 2]), [RED, BLUE, "rgb(0,128,0)"], SQUARE, 4, 4,
                                under=under)
    assert tuple(image[2, 2, :3]) == (0, 128, 0)
    image = raster.raster_image(x, y, np.array([2, 1, 0]), [RED, BLUE, "rgb(0,128,0)"], SQUARE, 4, 4,
                                under=np.array([False, False, True]))
    assert tuple(image[2, 2, :3]) == (0, 0, 255)        # the faded red went under the blue


def test_rst003_figure_puts_the_image_on_the_data_axes_and_a_zoom_changes_the_extent():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=5000).astype(np.float32), rng.normal(size=5000).astype(np.float32)
    codes = (x > 0).astype(int)
    whole = raster.raster_figure(x, y, codes, [RED, BLUE], [("left", RED), ("right", BLUE)], title="t",
                                 axis_title="PCA")
    image, (x0, x1) = whole["layout"]["images"][0], whole["layout"]["xaxis"]["range"]
    assert image["xref"] == "x" and image["yref"] == "y" and image["sizing"] == "stretch"
    assert image["x"] == pytest.approx(x0) and image["sizex"] == pytest.approx(x1 - x0)
    assert x0 < x.min() and x1 > x.max()
    assert [t["name"] for t in whole["data"]] == ["left", "right"]
    assert whole["layout"]["xaxis"]["title"]["text"] == "PCA 1"
    window = {"x": (0.5, 1.0), "y": (-0.25, 0.25)}
    zoomed = raster.raster_figure(x, y, codes, [RED, BLUE], [], window)
    assert zoomed["layout"]["xaxis"]["range"] == [0.5, 1.0] and zoomed["layout"]["images"][0]["x"] == 0.5
    drawn = pixels(zoomed)
    assert (drawn[..., 3] > 0).any() and not (drawn[..., 3] > 0).all()
    assert set(map(tuple, drawn[drawn[..., 3] > 0][:, :3])) == {(0, 0, 255)}   # only x > 0 there


@pytest.mark.parametrize("relayout, expected", [
    ({"xaxis.range[0]": 2, "xaxis.range[1]": 1, "yaxis.range[0]": 0, "yaxis.range[1]": 3},
     {"x": (1.0, 2.0), "y": (0.0, 3.0)}),
    ({"xaxis.autorange": True, "yaxis.autorange": True}, "reset"),
    ({"selections": []}, None), ({"xaxis.range[0]": 1}, None), (None, None),
    ({"xaxis.range[0]": "a", "xaxis.range[1]": 1, "yaxis.range[0]": 0, "yaxis.range[1]": 3}, None)])
def test_rst004_zoom_window_reads_a_zoom_or_a_reset_and_ignores_the_rest(relayout, expected):
    assert raster.zoom_window(relayout) == expected


@pytest.fixture
def fresh_memos(monkeypatch, tmp_path, synthetic_runs_dir):
    """An empty shared cache and memos (figures depend on the lowered thresholds)."""
    monkeypatch.setenv("LSTM_LENS_CACHE", str(tmp_path / "cache"))
    data.configure(synthetic_runs_dir)
    data.clear_memos()
    yield data.get_run("synthetic")
    data.clear_memos()


def lower(monkeypatch, tmp_path, module, name: str, value: int) -> None:
    """``module.name = value`` with empty memos and shared cache (whose keys know no thresholds)."""
    monkeypatch.setattr(module, name, value)
    monkeypatch.setenv("LSTM_LENS_CACHE", str(tmp_path / f"cache-{name}-{value}"))
    data.clear_memos()


def paths_figure(run, classes=None, window=None, **options):
    return paths.paths_view_figure(run.run_id, classes or [], list(state.SPLITS), list(state.HANDS), "all",
                                   options.get("selected"), "pca", "2", [], None, None, options.get("chosen"),
                                   None, window=window)


def test_rst010_paths_switch_to_an_image_above_the_threshold_and_back_to_points_when_zoomed_in(
        fresh_memos, monkeypatch, tmp_path):
    run = fresh_memos
    vector = paths_figure(run)
    assert "images" not in vector["layout"] and paths_figure(run, window="reset") is None  # as today
    projected = data.projection(run, data.projection_for(run.manifest, "pca", 2, None))
    n_points = len(projected)
    lower(monkeypatch, tmp_path, raster, "MAX_VECTOR_POINTS", n_points // 4)
    image = paths_figure(run, classes=run.classes[:2], selected=0)
    assert len(image["layout"]["images"]) == 1 and "drawn as an image" in image["layout"]["title"]["text"]
    names = [t["name"] for t in image["data"]]
    assert names[:3] == ["other classes", *run.classes[:2]] and names[-1] == "example 0"
    x0, x1 = image["layout"]["xaxis"]["range"]
    y0, y1 = image["layout"]["yaxis"]["range"]
    middle = {"x": (x0, (x0 + x1) / 2), "y": (y0, y1)}
    half = paths_figure(run, classes=run.classes[:2], window=middle)
    assert "images" in half["layout"] and half["layout"]["xaxis"]["range"] == list(middle["x"])
    assert not (pixels(half)[..., 3] == pixels(image)[..., 3]).all()
    cx, cy = (float(projected[a].iat[0]) for a in ("x", "y"))          # where example 0 starts
    tiny = {"x": (cx - (x1 - x0) / 10, cx + (x1 - x0) / 10), "y": (cy - (y1 - y0) / 10, cy + (y1 - y0) / 10)}
    points = paths_figure(run, classes=run.classes[:2], window=tiny)
    assert "images" not in points["layout"] and "zoomed" in points["layout"]["title"]["text"]
    assert points["layout"]["xaxis"]["range"] == list(tiny["x"])
    assert any(t.get("customdata") for t in points["data"])      # hover and click are back
    assert "images" in paths_figure(run, window="reset")["layout"]


def test_rst011_an_image_keeps_the_split_filter_and_the_chosen_set(fresh_memos, monkeypatch, tmp_path):
    run = fresh_memos
    lower(monkeypatch, tmp_path, raster, "MAX_VECTOR_POINTS", 100)
    everything = pixels(paths_figure(run))
    test_only = paths.paths_view_figure(run.run_id, [], ["test"], list(state.HANDS), "all", None, "pca", "2",
                                        [], None, None, None, None)
    assert (pixels(test_only)[..., 3] > 0).sum() < (everything[..., 3] > 0).sum()
    chosen = paths_figure(run, chosen=[0, 1, 2])
    assert [t["name"] for t in chosen["data"]][0] == "other classes"


def test_rst012_last_steps_switch_to_an_image_and_zoom_like_the_paths(fresh_memos, monkeypatch, tmp_path):
    run = fresh_memos
    args = (run.run_id, [], list(state.SPLITS), list(state.HANDS), "all", None, "pca2", "class", [])
    assert "images" not in last_step.last_step_view_figure(*args)["layout"]
    assert last_step.last_step_view_figure(*args, window="reset") is None
    lower(monkeypatch, tmp_path, big, "MAX_VECTOR_MARKERS", run.manifest["n_examples"] // 4)
    image = last_step.last_step_view_figure(*args)
    assert "images" in image["layout"] and [t["name"] for t in image["data"]] == list(run.classes)
    x0, x1 = image["layout"]["xaxis"]["range"]
    y0, y1 = image["layout"]["yaxis"]["range"]
    tiny = {"x": (x0, x0 + (x1 - x0) / 3), "y": (y0, y1)}
    zoomed = last_step.last_step_view_figure(*args, window=tiny)
    assert "images" not in zoomed["layout"] and zoomed["layout"]["xaxis"]["range"] == list(tiny["x"])
    by_hand = last_step.last_step_view_figure(*args[:7], "hand", [])
    assert {"one-handed", "two-handed"} <= {t["name"] for t in by_hand["data"]}


def test_rst013_zoom_callbacks_leave_a_scene_of_points_to_the_browser(fresh_memos, synthetic_runs_dir):
    from dashboard.app import create_app
    app = create_app(synthetic_runs_dir)
    zooms = [entry["callback"].__wrapped__ for entry in app.callback_map.values()
             if entry["inputs"][0]["property"] == "relayoutData"
             and entry["inputs"][0]["id"] in (paths.GRAPH, last_step.GRAPH)]
    assert len(zooms) == 2
    window = {"xaxis.range[0]": 0, "xaxis.range[1]": 1, "yaxis.range[0]": 0, "yaxis.range[1]": 1}
    filters = ("synthetic", [], list(state.SPLITS), list(state.HANDS), "all", None)
    assert zooms[0](window, *filters, "pca", "2", []) is dash.no_update
    assert zooms[1](window, *filters, "pca2", "class", []) is dash.no_update
    assert zooms[0]({"dragmode": "pan"}, *filters, "pca", "2", []) is dash.no_update
