"""Figures of the text views as data: heatmap spans, colour bins, correlations, select plot, matches."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pytest

from dashboard.figures import text as figures


class _Elements(HTMLParser):
    """The elements of an HTML string: (tag, attributes, text directly inside), in order."""

    def __init__(self, markup: str):
        super().__init__(convert_charrefs=True)
        self.found, self.open = [], []
        self.feed(markup)

    def handle_starttag(self, tag, attrs):
        self.found.append([tag, dict(attrs), ""])
        self.open.append(self.found[-1])

    def handle_endtag(self, tag):
        self.open.pop()

    def handle_data(self, data):
        if self.open:
            self.open[-1][2] += data


def elements(markup: str, tag: str | None = None) -> list:
    return [e for e in _Elements(markup).found if tag is None or e[0] == tag]


def test_fgtx001_value_bins_are_symmetric_around_zero():
    bins = figures.value_bins(np.array([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0, np.nan]), limit=1.0)
    middle = figures.N_BINS // 2
    assert bins.tolist() == [0, 0, middle, middle + 5, figures.N_BINS - 1, figures.N_BINS - 1, middle]
    assert figures.symmetric_limit(np.r_[np.linspace(-0.5, 0.5, 999), 40.0]) == pytest.approx(0.5, abs=0.01)
    assert figures.symmetric_limit(np.zeros(5)) == 1.0


def test_fgtx002_heatmap_html_keeps_the_text_and_colours_each_character_by_its_bin():
    chars = list("def f(x):\n    return '<x>' & y\n")
    values = np.linspace(-1, 1, len(chars))
    markup = figures.heatmap_html(chars, values, limit=1.0, first_row=100)
    assert "\n" not in markup                     # one line: Markdown keeps it one raw HTML block
    spans = elements(markup, "span")
    assert "".join(text for _, _, text in spans) == "".join(chars)
    colours = figures.diverging_colors()
    bins = figures.value_bins(values, 1.0)
    position = 0
    for _, attributes, text in spans:
        assert set(bins[position:position + len(text)]) == {bins[position]}     # one bin per span
        assert attributes["style"].startswith(f"background:{colours[bins[position]]}")
        position += len(text)
    assert len(spans) == len(np.unique(bins))       # equal neighbours share a span
    assert "&lt;" in markup and "&amp;" in markup        # escaped: the parsed text above is the text


def test_fgtx003_heatmap_html_marks_documents_and_the_found_phrase():
    chars = list("first doc\nsecond <doc>\n")
    markup = figures.heatmap_html(chars, np.zeros(len(chars)), 1.0, first_row=50,
                                  document_starts={50: "one", 60: "two & <b>", 999: "elsewhere"},
                                  highlight=(68, 71))
    headers = [text for _, attributes, text in elements(markup, "div") if attributes.get("class") == "text-doc"]
    assert headers == ["one", "two & <b>"]
    assert "".join(text for _, _, text in elements(markup, "span")) == "".join(chars)
    outlined = [text for _, attributes, text in elements(markup, "span") if "outline" in attributes["style"]]
    assert outlined == ["doc"]


def test_fgtx004_correlations_equal_pearson_per_cell():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 5, 400).astype(float)
    states = np.column_stack([target * 0.3 + rng.normal(0, 1, 400), -target, rng.normal(0, 1, 400),
                              np.full(400, 2.0)]).astype(np.float32)
    r = figures.correlations(np.asfortranarray(states), target)
    expected = [np.corrcoef(states[:, j], target)[0, 1] for j in range(3)]
    np.testing.assert_allclose(r[:3], expected, atol=1e-5)
    assert r[3] == 0                                  # a constant cell: 0, not NaN
    assert figures.ranking_items(r, 2) == [(1, pytest.approx(-1.0)), (0, pytest.approx(r[0]))]
    assert np.all(figures.correlations(states, np.ones(400)) == 0)


def test_fgtx005_select_figure_draws_selected_cells_threshold_selection_and_counts():
    rng = np.random.default_rng(1)
    states = rng.uniform(-1, 1, (30, 6)).astype(np.float32)
    counts = np.arange(30) % 3
    figure = figures.select_figure(list("ab c\nd" * 5), states, 200, 0.3, [2, 4], (205, 209), counts,
                                   np.arange(30), "depth")
    lines = [t for t in figure.data if t.type == "scatter" and t.mode == "lines"]
    assert [t.name for t in lines] == ["cell 2", "cell 4"]
    np.testing.assert_allclose(lines[0].y, states[:, 2])
    assert list(lines[0].x) == list(range(200, 230))
    grey = next(t for t in figure.data if t.name == "other cells")
    assert np.count_nonzero(np.isnan(np.asarray(grey.y, dtype=float))) == 4           # cells 0, 1, 3, 5
    heatmaps = [t for t in figure.data if t.type == "heatmap"]
    assert list(heatmaps[0].z[0]) == counts.tolist() and heatmaps[1].y == ("depth",)
    assert any(shape.type == "line" and shape.y0 == 0.3 for shape in figure.layout.shapes)
    box = next(shape for shape in figure.layout.shapes if shape.type == "rect")
    assert (box.x0, box.x1) == (204.5, 209.5)
    assert figure.layout.xaxis.ticktext[:6] == ("a", "b", "\u00a0", "c", "\u23ce", "d")
    assert figure.layout.dragmode == "select"


def test_fgtx006_selection_from_box_and_clicks():
    assert figures.selection_from_plot({"range": {"x": [10.4, 14.6], "y": [0, 1]}, "points": []}) == (11, 14)
    assert figures.selection_from_plot({"points": [{"x": 7}, {"x": 3}, {"x": 5}]}) == (3, 7)
    assert figures.selection_from_plot({"range": {"x": [10.4, 10.6]}, "points": []}) is None
    click = lambda x: {"points": [{"x": x}]}                               # noqa: E731
    assert figures.selection_from_plot(clicked=click(20)) == (20, 20)       # first click: start
    assert figures.selection_from_plot(clicked=click(25), previous=(20, 20)) == (20, 25)
    assert figures.selection_from_plot(clicked=click(3), previous=(20, 25)) == (3, 3)   # starts anew
    assert figures.selection_from_plot(None, None) is None


def test_fgtx007_match_html_colours_the_match_and_counts_the_cells():
    match = {"rank": 1, "name": "line <3>", "start": 12, "end": 14, "overlap": 2, "extra": 1, "length": 3,
             "rows": np.arange(10, 17), "chars": list("((444)3"), "counts": np.array([0, 1, 2, 2, 2, 0, 0]),
             "annotation": np.array([1, 2, 4, 4, 4, 3, 3])}
    markup = figures.match_html([match], annotation_name="depth", n_cells=2)
    rows = [e for e in elements(markup, "div") if e[1].get("class") == "match-row"]
    assert len(rows) == 1
    header = elements(markup, "div")[2][2]
    assert header.startswith("#1  line <3>") and "overlap 2" in header
    matched = [(text, attributes["title"]) for _, attributes, text in elements(markup, "span")
               if attributes.get("class") == "matched"]
    assert matched == [("444", "depth = 4")]       # equal neighbours share a span
    per_char = lambda spans: [a["style"] for _, a, text in spans for _ in text]      # noqa: E731
    palette = figures.sequential_colors(3)
    counts = [e for e in elements(markup, "span") if e[1].get("title", "").endswith("cells on")]
    assert per_char(counts) == [f"background:{palette[c]}" for c in match["counts"]]
    colours = figures.annotation_colors(match["annotation"], None)
    track = [e for e in elements(markup, "span") if e[1].get("title", "").startswith("depth")
             and e[1].get("class") != "matched"]
    assert per_char(track) == [f"background:{c}" for c in colours]
    assert [a["title"] for _, a, _ in track][:2] == ["depth = 1", "depth = 2"]
    assert figures.readable_on("rgb(253, 231, 37)") == "black" and figures.readable_on("#440154") == "white"
    assert figures.match_summary(["4", "4", "mixed", "4"]) == "4: 3 of 4, mixed: 1 of 4"
    assert figures.match_summary([]) == "no matches"


def _heatmap_colour(trace, code) -> str:
    """The colour a heatmap trace's (stepped) colorscale gives ``code``."""
    position = (code - trace.zmin) / (trace.zmax - trace.zmin)
    return [colour for edge, colour in trace.colorscale if edge <= position][-1]


@pytest.mark.parametrize("categories", [["NAME", "OP", "STRING", "NUMBER"], None])
def test_fgtx008_an_annotation_value_has_one_colour_in_the_select_plot_the_matches_and_the_legend(categories):
    values = np.array([0, 1, 2, 3, 1, 0, 2, 2]) if categories else np.array([0.0, 1, 2, 4, 1, 0, 3, 2])
    value_range = None if categories else (0.0, 4.0)
    states = np.zeros((len(values), 3), np.float32)
    figure = figures.select_figure(list("abcdefgh"), states, 0, 0.3, [1], None, None, values, "type",
                                   categories=categories, value_range=value_range)
    track = next(t for t in figure.data if t.type == "heatmap" and t.y == ("type",))
    codes = figures.annotation_codes(values, categories, value_range)
    plot = [_heatmap_colour(track, code) for code in track.z[0]]
    match = {"rank": 1, "name": "doc", "start": 0, "end": len(values) - 1, "overlap": 1, "extra": 0,
             "length": len(values), "rows": np.arange(len(values)), "chars": list("abcdefgh"),
             "counts": np.zeros(len(values), int), "annotation": values}
    markup = figures.match_html([match], annotation_name="type", categories=categories, value_range=value_range)
    listed = [a["style"].split(";")[0].removeprefix("background:") for _, a, text in elements(markup, "span")
              if a.get("class") == "matched" for _ in text]
    assert plot == listed                              # each character: one colour in both
    legend = figures.annotation_legend("type", categories, value_range)
    keys = [key for key in legend.children if getattr(key, "className", None) == "annotation-key"]
    swatches = [(key.children[0].style["background"], key.children[1].children) if categories
                else (key.style["background"], None) for key in keys]
    for code, colour in zip(codes, plot):
        assert swatches[code][0] == colour
        if categories:
            assert swatches[code][1] == categories[code]
    assert len(set(plot)) == len(set(codes.tolist())) > 3             # different values, different colours
    assert figures.annotation_colors([0, 1], ["a", "b"])[1] != figures.annotation_colors([0, 1], ["a", "b"])[0]


def test_fgtx009_the_threshold_line_is_editable_and_a_drag_gives_the_new_threshold():
    figure = figures.select_figure(list("abcdef"), np.zeros((6, 2), np.float32), 0, 0.3, [1], (1, 2))
    line = figure.layout.shapes[figures.THRESHOLD_SHAPE]
    assert (line.name, line.editable, line.y0, line.y1) == ("threshold", True, 0.3, 0.3)
    assert not any(shape.editable for shape in figure.layout.shapes[1:])      # the selection stays put
    key = f"shapes[{figures.THRESHOLD_SHAPE}]"
    assert figures.threshold_from_relayout({f"{key}.x0": 0, f"{key}.x1": 1, f"{key}.y0": 0.5512,
                                            f"{key}.y1": 0.5512}) == 0.55
    assert figures.threshold_from_relayout({f"{key}.y0": 0.2, f"{key}.y1": 0.6}) == 0.4     # one end dragged
    assert figures.threshold_from_relayout({"shapes": [{"name": "threshold", "y0": -0.25, "y1": -0.25}]}) == -0.25
    for other in (None, {}, {"autosize": True}, {"xaxis.range[0]": 3, "xaxis.range[1]": 9},
                  {"shapes[1].x0": 4.5, "shapes[1].x1": 8.5}, {f"{key}.y0": "nan"},
                  {"shapes": [{"name": "selection", "y0": 1, "y1": 1}]}):
        assert figures.threshold_from_relayout(other) is None, other


def test_fgtx010_the_predictions_track_shows_the_top_token_on_its_probability_with_the_top_k():
    vocabulary = ["\n", "(", ")", "a"]
    top_classes = np.array([[3, 1], [0, 2], [2, 3]])
    top_probs = np.array([[0.9, 0.05], [0.5, 0.3], [0.12, 0.1]], np.float32)
    firsts, titles = figures.prediction_texts(top_classes, top_probs, vocabulary)
    assert firsts == ["a", "\u23ce", ")"] and titles[0] == "a 0.90 \u00b7 ( 0.05"
    figure = figures.select_figure(list("abc"), np.zeros((3, 2), np.float32), 10, 0.3,
                                   predictions=(top_classes, top_probs, vocabulary))
    track = next(t for t in figure.data if t.type == "heatmap" and t.y == ("next",))
    assert list(track.text[0]) == firsts and list(track.customdata[0]) == titles
    palette = figures.prediction_palette()
    codes = figures.prediction_codes(top_probs[:, 0])
    assert codes.tolist() == [9, 5, 1]
    assert [_heatmap_colour(track, code) for code in track.z[0]] == [palette[c] for c in codes]
    match = {"rank": 1, "name": "doc", "start": 10, "end": 11, "overlap": 1, "extra": 0, "length": 2,
             "rows": np.arange(10, 13), "chars": list("abc"), "counts": np.zeros(3, int), "annotation": None,
             "predictions": (firsts, titles, codes)}
    row = [e for e in elements(figures.match_row_html(match)) if e[1].get("class") == "match-predictions"]
    spans = [e for e in elements(figures.match_row_html(match), "span") if e[1].get("title", "").startswith("next")]
    assert len(row) == 1 and [text for _, _, text in spans] == firsts
    assert [a["title"] for _, a, _ in spans] == [f"next: {t}" for t in titles]
    assert [a["style"].split(";")[0] for _, a, _ in spans] == [f"background:{palette[c]}" for c in codes]
    assert "match-predictions" not in figures.match_row_html({**match, "predictions": None})
