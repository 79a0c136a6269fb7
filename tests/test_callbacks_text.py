"""Callbacks of the text heatmap and select & match views, called as functions on the small real
parenthesis-language run (tests/conftest.py ``text_runs_dir``)."""

from __future__ import annotations

import html
import json
import re
from contextvars import copy_context

import dash
import numpy as np
import pytest
from dash._callback_context import context_value
from dash._utils import AttributeDict

from dashboard import data, state, views
from dashboard.app import create_app
from dashboard.figures import text as figures
from dashboard.views import select_match, text_heatmap
from pipeline.analysis import match as engine
from factories import callbacks_of, component_ids

RUN = "text-parens"
MY_VIEWS = (text_heatmap, select_match)


@pytest.fixture(scope="module")
def run(text_runs_dir):
    data.configure(text_runs_dir)
    return data.get_run(RUN)


@pytest.fixture(scope="module")
def app(text_runs_dir):
    return create_app(text_runs_dir)


def with_trigger(prop_id: str, value, function, *args):
    """Call ``function`` as Dash would after ``prop_id`` changed to ``value``."""
    def call():
        context_value.set(AttributeDict(triggered_inputs=[{"prop_id": prop_id, "value": value}]))
        return function(*args)
    return copy_context().run(call)


def _callback(app, name: str):
    """A view's callback function by its name."""
    return next(cb["callback"].__wrapped__ for cb in app.callback_map.values()    # clientside ones have none
                if "callback" in cb and cb["callback"].__wrapped__.__name__ == name)


def test_cbtx001_callbacks_listen_to_components_that_exist(app):
    ids = component_ids(app.layout()) | {text_heatmap.RANK_BUTTON, select_match.OPEN}   # buttons come later
    found = list(callbacks_of(app, MY_VIEWS))
    assert len(found) >= 9
    for outputs, callback in found:
        wanted = outputs + [json.loads(item["id"])["type"] if item["id"].startswith("{") else item["id"]
                            for item in callback["inputs"] + callback["state"]]
        assert set(wanted) <= ids, set(wanted) - ids


def test_cbtx002_text_views_apply_to_language_models_only(run, synthetic_run):
    """The text views are a language model's; the projection views (paths, last activations, the
    film) and training apply to every run with projections, text runs included (they get PCA
    paths)."""
    for view in MY_VIEWS:
        assert views.applies(view, run.manifest) and not views.applies(view, synthetic_run.manifest)
    shared = [view for view in views.VIEWS if view.VIEW_ID in {"paths", "last_step", "film", "training"}]
    assert len(shared) == 4 and all(views.applies(view, run.manifest) for view in shared)


def test_cbtx003_hidden_views_do_no_work(app):
    for name in ("update_text", "update_ranking", "update_select", "update_matches"):
        callback = next(cb for cb in app.callback_map.values()
                        if "callback" in cb and cb["callback"].__wrapped__.__name__ == name)
        arguments = {"run-picker": RUN, "view-tabs": "paths"}
        names = [item["id"] for item in callback["inputs"]]
        result = callback["callback"].__wrapped__(*[arguments.get(name) for name in names])
        results = result if isinstance(result, tuple) else (result,)
        assert all(r is dash.no_update for r in results), name


def test_cbtx004_heatmap_window_shows_the_text_coloured_by_the_cell(run):
    chars = text_heatmap.chars(run)
    body, legend, status = text_heatmap.render(RUN, "last", "c", 3, 100, None)
    assert body.dangerously_allow_html
    spans = re.findall(r'<span style="background:([^;"]+)[^>]*>([^<]*)</span>', body.children)
    shown = html.unescape("".join(text for _, text in spans))
    assert shown == "".join(chars[100:100 + text_heatmap.WINDOW])
    starts = data.examples(run)["row_start"].to_numpy()
    assert body.children.count('class="text-doc"') == np.count_nonzero(
        (starts >= 100) & (starts < 100 + text_heatmap.WINDOW))
    column = run.step_matrix(0, "c", [3])[:, 0]
    limit = figures.symmetric_limit(column)
    assert spans[0][0] == figures.diverging_colors()[figures.value_bins(column[100:101], limit)[0]]
    assert "characters 100\u2013" in status and "layer 0 c, cell 3" in str(legend)
    message, _, _ = text_heatmap.render(RUN, "last", "h", 999, 0, None)
    assert "cell 999 does not exist" in message.children


def test_cbtx005_ranking_lists_the_cells_that_follow_the_depth_best(run):
    buttons = text_heatmap.ranking(RUN, "last", "h", "depth")[1:]
    depth = run.steps("text", columns=["depth"])["depth"].to_numpy(float)
    states = run.step_matrix(0, "h")
    r = np.array([np.corrcoef(states[:, j], depth)[0, 1] for j in range(states.shape[1])])
    assert [b.id["cell"] for b in buttons] == list(np.argsort(-np.abs(r))[:10])
    assert f"r={r[buttons[0].id['cell']]:+.2f}" in buttons[0].children
    assert "Choose an annotation" in text_heatmap.ranking(RUN, "last", "h", None)[0].children


def test_cbtx006_cell_buttons_step_and_pick(app):
    step_cell = _callback(app, "step_cell")
    for trigger, expected in (("text-prev", 31), ("text-next", 1), ('{"cell":7,"type":"text-rank"}', 7)):
        assert with_trigger(f"{trigger}.n_clicks", 1, step_cell, 1, 1, [1], 0, RUN, "last") == expected
    appeared = with_trigger('{"cell":7,"type":"text-rank"}.n_clicks', None, step_cell, None, None, [None], 0,
                            RUN, "last")
    assert appeared is dash.no_update                     # a ranking button that just appeared


def test_cbtx007_navigation_pages_and_finds_phrases(run):
    text = text_heatmap.corpus_text(run)
    assert text_heatmap.navigate(text_heatmap.FORWARD, RUN, 0, "", None) == (text_heatmap.WINDOW, None)
    assert text_heatmap.navigate(text_heatmap.BACK, RUN, 100, "", None) == (0, None)
    phrase = "(4444"
    first = text.index(phrase)
    position, found = text_heatmap.navigate(text_heatmap.FIND, RUN, 0, phrase, None)
    assert found == [first, first + len(phrase)] and position <= first < position + text_heatmap.WINDOW
    _, again = text_heatmap.navigate(text_heatmap.FIND, RUN, position, phrase, found)
    assert again[0] == text.find(phrase, first + 1) or again[0] == first          # the next one, or wraps
    assert text_heatmap.navigate(text_heatmap.FIND, RUN, 0, "no such phrase", None)[1] is None
    row = int(data.examples(run)["row_start"].iat[5])
    assert text_heatmap.navigate(state.SELECTED, RUN, 0, "", None, example_id=5) == (row, None)


def test_cbtx008_select_and_match_a_nesting_level_4_group(run):
    text = text_heatmap.corpus_text(run)
    group = max(re.finditer(r"\(4+", text), key=lambda m: (len(m.group()), -m.start()))
    first, last = group.start(), group.end() - 1
    figure, note, chosen = select_match.select_view(RUN, "last", "h", first - 20, first, last, 0.3, [], "depth")
    starts = data.examples(run)["row_start"].to_numpy()
    expected = engine.select_cells(run.step_matrix(0, "h"), first, last, 0.3, boundaries=starts)
    assert chosen["cells"] == expected.tolist() and len(expected) > 0
    assert f"{len(expected)} cell(s) on" in note
    assert [t.name for t in figure.data if t.type == "scatter" and t.mode == "lines"] == \
        [f"cell {c}" for c in expected]
    summary, rows = select_match.match_view(chosen, "depth")
    assert len(rows.children) == 50 and summary.startswith("50 matches")
    assert all(item.children[1].children.count('class="match-row"') == 1 for item in rows.children)
    level_4 = int(re.search(r"\b4: (\d+) of 50", summary).group(1))
    assert level_4 >= 40


def test_cbtx009_selections_that_cannot_be_matched_say_why(run):
    _, note, chosen = select_match.select_view(RUN, "last", "h", 0, None, None, 0.3, [], None)
    assert chosen is None and "Drag across the plot" in note
    boundary = int(data.examples(run)["row_start"].iat[1])
    _, note, chosen = select_match.select_view(RUN, "last", "h", 0, boundary - 2, boundary + 2, 0.3, [], None)
    assert chosen is None and "crosses a sequence boundary" in note
    _, note, chosen = select_match.select_view(RUN, "last", "h", 0, 5, 8, 99.0, ["before"], None)
    assert chosen["cells"] == [] and "none; lower the threshold" in note
    assert select_match.match_view(chosen, None)[0].startswith("Select a range")


def test_cbtx010_plot_selection_sets_the_rows(app):
    select_range = _callback(app, "select_range")
    box = {"range": {"x": [40.2, 45.7]}, "points": []}
    assert with_trigger("match-graph.selectedData", box, select_range, box, None, None, None, None) == (41, 45)
    assert with_trigger("match-clear.n_clicks", 1, select_range, None, None, 1, 41, 45) == (None, None)


def test_cbtx011_view_options_round_trip_through_the_url():
    params = text_heatmap.URL_PARAMS + select_match.URL_PARAMS
    values = {text_heatmap.CELL: 17, text_heatmap.POS: 3000, text_heatmap.STATE_KIND: "c",
              select_match.START: 40, select_match.END: 44, select_match.OFF: ["before"]}
    search = state.encode_search(values, params)
    decoded = state.decode_search(search, params)
    assert {key: decoded[key] for key in values} == values
    assert "text_cell=17" in search and "match_start=40" in search


def test_cbtx012_a_match_link_opens_the_match_marked_in_the_text_heatmap(app, run):
    text = text_heatmap.corpus_text(run)
    group = max(re.finditer(r"\(4+", text), key=lambda m: (len(m.group()), -m.start()))
    _, _, chosen = select_match.select_view(RUN, "last", "h", group.start() - 20, group.start(), group.end() - 1,
                                            0.3, ["before"], None)
    _, rows = select_match.match_view(chosen, None)
    link = rows.children[3].children[0]            # the fourth match's link
    start, end = link.id["start"], link.id["end"]
    assert f"rows {start}\u2013{end}" in rows.children[3].children[1].children
    open_match = _callback(app, "open_match")
    prop = json.dumps(link.id, separators=(",", ":"), sort_keys=True) + ".n_clicks"
    tab, position, found, layer, kind, cell = with_trigger(prop, 1, open_match, [None] * 50, chosen, "last")
    assert (tab, found, layer, kind, cell) == ("text", [start, end + 1], "last", "h", chosen["cells"][0])
    body, _, _ = text_heatmap.render(RUN, layer, kind, cell, position, found)
    outlined = re.findall(r'<span style="[^"]*outline[^"]*"[^>]*>([^<]*)</span>', body.children)
    assert html.unescape("".join(outlined)) == text[start:end + 1]
    appeared = with_trigger(prop, None, open_match, [None] * 50, chosen, "last")
    assert all(value is dash.no_update for value in appeared)            # a new list's links appeared


def test_cbtx013_the_select_plot_and_the_matches_colour_the_depth_alike_with_a_legend(app, run):
    text = text_heatmap.corpus_text(run)
    group = max(re.finditer(r"\(4+", text), key=lambda m: (len(m.group()), -m.start()))
    _, _, chosen = select_match.select_view(RUN, "last", "h", 0, group.start(), group.end() - 1, 0.3, ["before"],
                                            "depth")
    _, rows = select_match.match_view(chosen, "depth")
    markup = rows.children[0].children[1].children
    start = int(re.search(r"rows (\d+)\u2013", markup).group(1))
    listed = re.findall(r'class="matched" style="background:([^;]+);[^"]*"[^>]*>([^<]*)</span>', markup)
    listed = [colour for colour, chars in listed for _ in html.unescape(chars)]
    figure, _, _ = select_match.select_view(RUN, "last", "h", start, None, None, 0.3, [], "depth")
    track = next(t for t in figure.data if t.type == "heatmap" and t.y == ("depth",))
    scale = {round(edge * (track.zmax - track.zmin) + track.zmin + 0.5): colour
             for edge, colour in track.colorscale[::2]}           # each step's lower edge -> its code
    assert [scale[code] for code in track.z[0][:len(listed)]] == listed and len(listed) >= 2
    depth = run.steps("text", columns=["depth"])["depth"].to_numpy(float)
    legend = select_match.legend_view(RUN, "depth")[0]
    assert legend.children[1].children == f"{depth.min():g}" and legend.children[-1].children == f"{depth.max():g}"
    assert select_match.legend_view(RUN, None) == [] and select_match.legend_view(RUN, "no such") == []
    above_plot, above_matches = _callback(app, "update_legend")(RUN, "depth")
    assert str(above_plot) == str(above_matches) == str([legend])     # one key, by the plot and by the matches


def test_cbtx014_off_before_is_the_default_and_matches_keep_to_the_phrase_lengths(run):
    defaults = state.decode_search("", select_match.URL_PARAMS)
    assert defaults[select_match.OFF] == ["before"] and defaults[select_match.MIN_LENGTH] == 2
    text = text_heatmap.corpus_text(run)
    group = max(re.finditer(r"\(4+", text), key=lambda m: (len(m.group()), -m.start()))
    selection = ("last", "h", 0, group.start(), group.end() - 1, 0.3, defaults[select_match.OFF], None)
    _, _, chosen = select_match.select_view(RUN, *selection)
    starts = data.examples(run)["row_start"].to_numpy()
    assert chosen["off_before"] and chosen["cells"] == engine.select_cells(
        run.step_matrix(0, "h"), group.start(), group.end() - 1, 0.3, off_before=True, boundaries=starts).tolist()

    def lengths(summary_and_rows):
        return [int(re.search(r"length (\d+)", item.children[1].children).group(1))
                for item in summary_and_rows[1].children]
    everything = lengths(select_match.match_view(chosen, None))
    _, _, short = select_match.select_view(RUN, *selection, 3, 4)
    summary, rows = select_match.match_view(short, None)
    kept = lengths((summary, rows))
    assert kept and all(3 <= n <= 4 for n in kept) and summary.startswith(f"{len(kept)} matches of 3\u20134 characters")
    assert any(not 3 <= n <= 4 for n in everything)               # the filter left some out
    expected = engine.match(run.step_matrix(0, "h"), chosen["cells"], 0.3, True, False, top_k=50, boundaries=starts,
                            min_length=3, max_length=4)
    assert [item.children[0].id["start"] for item in rows.children] == [m.start for m in expected]
    _, note, refused = select_match.select_view(RUN, *selection, 5, 3)
    assert refused is None and "below the shortest" in note


def test_cbtx015_dragging_the_threshold_line_sets_the_threshold(app):
    drag_threshold = _callback(app, "drag_threshold")
    dropped = {"shapes[0].x0": 0, "shapes[0].x1": 1, "shapes[0].y0": 0.6234, "shapes[0].y1": 0.6234}
    assert drag_threshold(dropped) == 0.62
    assert drag_threshold({"xaxis.autorange": True}) is dash.no_update
    figure, _, _ = select_match.select_view(RUN, "last", "h", 0, None, None, drag_threshold(dropped), [], None)
    assert figure.layout.shapes[0].y0 == 0.62                   # the line is redrawn where it was dropped


def test_cbtx016_paging_to_the_end_shows_a_full_last_window(run):
    n, window = text_heatmap.n_rows(run), text_heatmap.WINDOW
    last = n - window
    assert text_heatmap.navigate(text_heatmap.FORWARD, RUN, last - 10, "", None) == (last, None)
    assert text_heatmap.navigate(text_heatmap.FORWARD, RUN, last, "", None) == (last, None)   # stays put
    _, _, status = text_heatmap.render(RUN, "last", "h", 0, n - 1, None)        # a position past the window
    assert status.startswith(f"characters {last:,}\u2013{n - 1:,} of {n:,}")
    moved, _ = text_heatmap.navigate(select_match.FORWARD, RUN, n - 1, "", None, window=select_match.WINDOW,
                                     back=select_match.BACK, forward=select_match.FORWARD)
    assert moved == n - select_match.WINDOW
    figure, _, _ = select_match.select_view(RUN, "last", "h", n - 1, None, None, 0.3, [], None)
    steps = next(t for t in figure.data if t.name == "steps")
    assert list(steps.x) == list(range(n - select_match.WINDOW, n))


def test_cbtx017_the_gates_are_offered_beside_h_and_c_where_the_run_stores_them(app, run):
    options = text_heatmap.tensor_options(RUN, "last")
    assert [o["value"] for o in options] == list(run.manifest.layer(0).tensors) == [
        "h", "c", "input_gate", "forget_gate", "candidate", "output_gate"]
    assert [o["label"] for o in options][:3] == ["h", "c", "input gate"]
    assert _callback(app, "show_tensors")(RUN, "last") == options
    body, legend, _ = text_heatmap.render(RUN, "last", "forget_gate", 3, 0, None)
    gate = run.step_matrix(0, "forget_gate", [3])[:, 0]
    first = re.search(r'<span style="background:([^;"]+)', body.children).group(1)
    assert first == figures.diverging_colors()[figures.value_bins(gate[:1], figures.symmetric_limit(gate))[0]]
    assert "layer 0 forget_gate, cell 3" in str(legend)
    text = text_heatmap.corpus_text(run)
    group = max(re.finditer(r"\(4+", text), key=lambda m: (len(m.group()), -m.start()))
    _, _, chosen = select_match.select_view(RUN, "last", "input_gate", 0, group.start(), group.end() - 1, 0.5,
                                            [], None)
    starts = data.examples(run)["row_start"].to_numpy()
    assert chosen["kind"] == "input_gate" and chosen["cells"] == engine.select_cells(
        run.step_matrix(0, "input_gate"), group.start(), group.end() - 1, 0.5, boundaries=starts).tolist()
    assert text_heatmap.chosen_kind(run, 0, "no such tensor") == "h"


def test_cbtx018_the_select_plot_and_the_matches_show_the_models_next_token_predictions(run):
    table = run.steps("predictions")
    vocabulary = run.manifest.classes
    figure, _, chosen = select_match.select_view(RUN, "last", "h", 200, 205, 207, 0.2, [], None)
    track = next(t for t in figure.data if t.type == "heatmap" and t.y == ("next",))
    top1 = table["top1_class"].to_numpy()[200:300]
    assert list(track.text[0]) == [figures.visible_char(vocabulary[c]) for c in top1]
    assert track.customdata[0][0].startswith(f"{figures.visible_char(vocabulary[top1[0]])} "
                                             f"{table['top1_prob'].iat[200]:.2f} \u00b7 ")
    _, rows = select_match.match_view(chosen, None)
    markup = rows.children[0].children[1].children
    start = rows.children[0].children[0].id["start"]
    title = re.search(r'class="match-predictions".*?title="next: ([^"]*)"', markup).group(1)
    first_shown = max(start - select_match.CONTEXT, int(text_heatmap.document_at(run, start)["row_start"]))
    k = run.manifest["top_k"]
    expected = " \u00b7 ".join(f"{figures.visible_char(vocabulary[table[f'top{j}_class'].iat[first_shown]])} "
                               f"{table[f'top{j}_prob'].iat[first_shown]:.2f}" for j in range(1, k + 1))
    assert html.unescape(title) == expected
