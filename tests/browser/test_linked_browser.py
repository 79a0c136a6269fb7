"""Issue 14's linked views in a real browser on the small synthetic run: the examples table
(sortable, following the filter bar, a click on a row selects the example) and a lasso in the
paths view choosing a set the table then lists, dropped again by "Clear chosen set"."""

from __future__ import annotations

import pytest

from browser.pages import wait_for
from pipeline import runformat

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def examples(synthetic_runs_dir):
    run = runformat.Run.open(synthetic_runs_dir, "synthetic")
    return run.examples()


def table_ids(page) -> list[int]:
    cells = page.locator("#examples-table td[data-dash-column='id']")
    return [int(text) for text in cells.all_inner_texts()]


def test_brtbl001_the_examples_table_sorts_follows_the_filters_and_selects_on_click(page, dash_url, examples):
    page.goto(dash_url + "?view=examples")
    wait_for(page, "document.querySelectorAll('#examples-table td[data-dash-column=\"id\"]').length > 0")
    headers = page.locator("#examples-table th.dash-header").all_inner_texts()
    for name in ("id", "sign", "split", "length", "prediction", "confidence", "correct"):
        assert any(name in text for text in headers), headers
    wait_for(page, f"document.querySelector('#examples-note')?.innerText.startsWith('{len(examples):,} examples')")
    # sort by length, twice: descending
    sorter = page.locator("#examples-table th[data-dash-column='length'] .column-header--sort")
    sorter.click()
    sorter.click()
    wait_for(page, "(() => { const v = [...document.querySelectorAll('#examples-table td[data-dash-column=\"length\"]')]"
                   ".map(c => +c.innerText); return v.length > 1 && v.every((x, i) => i === 0 || v[i - 1] >= x) })()")
    assert int(page.locator("#examples-table td[data-dash-column='length']").first.inner_text()) == int(
        examples["length"].max())
    # the filter bar: misclassified only
    page.get_by_label("misclassified").check()
    wrong = int((~examples["correct"]).sum())
    wait_for(page, f"document.querySelector('#examples-note')?.innerText.startsWith('{wrong:,} examples')")
    assert all(text == "false" for text in
               page.locator("#examples-table td[data-dash-column='correct']").all_inner_texts())
    # a click on a row selects its example everywhere
    first = table_ids(page)[0]
    page.locator("#examples-table td[data-dash-column='sign']").first.click()
    wait_for(page, f"document.querySelector('#selection-bar')?.innerText.includes('example {first},')")
    wait_for(page, f"window.location.search.includes('example={first}')")


def lasso(page, graph: str) -> None:
    """A lasso over most of the plot area of ``graph`` (its drag layer): a few moves, since in
    headless chromium's software WebGL every move redraws the selection (~1.5 s each on the paths)."""
    box = page.locator(f"#{graph} .nsewdrag").first.bounding_box()
    x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]
    corners = [(0.1, 0.1), (0.9, 0.1), (0.9, 0.9), (0.1, 0.9), (0.1, 0.12)]
    page.mouse.move(x0 + w * 0.1, y0 + h * 0.1)
    page.mouse.down()
    for fx, fy in corners:
        page.mouse.move(x0 + w * fx, y0 + h * fy, steps=2)
    page.mouse.up()


def test_brsel001_a_lasso_in_the_paths_chooses_a_set_that_the_table_lists_until_cleared(page, dash_url, examples):
    page.goto(dash_url + "?view=paths")
    wait_for(page, "document.querySelector('#paths-graph .js-plotly-plot')?._fullData?.length > 0")
    assert page.evaluate("document.querySelector('#paths-graph .js-plotly-plot')._fullLayout.dragmode") == "lasso"
    lasso(page, "paths-graph")
    wait_for(page, "document.querySelector('#selection-chosen')?.innerText.includes('chosen by box or lasso')")
    chosen = int(page.inner_text("#selection-chosen").split()[0].replace(",", ""))
    assert 0 < chosen <= len(examples)
    # the paths redraw the set in colour (its classes in the legend), the rest faded
    wait_for(page, "document.querySelector('#paths-graph .js-plotly-plot')?._fullLayout?.title?.text?.includes('chosen of')")
    page.click("#tab-examples")
    wait_for(page, f"document.querySelector('#examples-note')?.innerText.startsWith('{chosen:,} examples in the chosen set')")
    page.click("#selection-clear-set")
    wait_for(page, f"document.querySelector('#examples-note')?.innerText.startsWith('{len(examples):,} examples,')")
    assert page.inner_text("#selection-chosen").strip() == ""


@pytest.fixture(scope="module")
def two_states_url(tmp_path_factory, synthetic_runs_dir):
    from browser.conftest import serving
    from linked_runs import two_state_runs
    with serving(two_state_runs(tmp_path_factory.mktemp("two-states") / "runs", synthetic_runs_dir)) as url:
        yield url


def test_brlyr001_the_layer_and_tensor_switch_in_paths_redraws_another_layers_states(page, two_states_url):
    page.goto(two_states_url + "?view=paths&paths_method=pca")
    title = "document.querySelector('#paths-graph .js-plotly-plot')?._fullLayout?.title?.text || ''"
    wait_for(page, f"({title}).includes('· h (hidden state)')")
    ticked = "[...document.querySelectorAll('#paths-states input')].filter(i => i.checked).map(i => i.closest('label').innerText.trim())"
    wait_for(page, f"/^layer \\d+ \\(last\\) · h \\(hidden state\\)$/.test(({ticked}).join('|'))",
             timeout=10_000)                                               # the pair drawn is ticked
    page.locator("#paths-states label", has_text="c (cell state)").click()
    wait_for(page, f"({title}).startsWith('PCA 2-D of layer 0 · c (cell state)')")
    wait_for(page, "window.location.search.includes('paths_states=0%3Ac')")
    page.locator("#paths-states label", has_text="h (hidden state)").click()           # back to the first pair
    wait_for(page, f"({title}).includes('· h (hidden state)')")
    wait_for(page, "!window.location.search.includes('paths_states')")


def test_brmrk001_the_selected_example_is_marked_in_the_film_and_the_cells_heatmap(page, dash_url, examples):
    example = int(examples["example_id"].iat[len(examples) // 2])
    page.goto(dash_url + f"?view=film&example={example}")
    film = "document.querySelector('#film-graph .js-plotly-plot')"
    marked = f"{film}?._fullData?.find(t => t.name === 'selected: #{example}')"
    wait_for(page, f"({marked})?.x?.length > 0")
    # the mark travels with the animation: every frame carries the selected example's trace
    assert page.evaluate(f"{film}._transitionData._frames.every(f => f.traces.includes(2))")
    assert page.evaluate(f"({marked}).line.color") == "black"
    page.click("#tab-cells")
    heatmap = "document.querySelector('#cells-heatmap .js-plotly-plot')?._fullLayout"
    wait_for(page, f"({heatmap})?.shapes?.some(s => s.name === 'selected')")
    assert page.evaluate(f"({heatmap}).annotations.find(a => a.name === 'selected').text").endswith(f"#{example}")
    # the outline sits on the example's row: the heatmap's row label there names it
    row = page.evaluate(f"({heatmap}).shapes.find(s => s.name === 'selected').y0 + 0.5")
    labels = page.evaluate("document.querySelector('#cells-heatmap .js-plotly-plot').data[0].y")
    assert labels[round(row)].endswith(f"#{example}")


@pytest.fixture(scope="module")
def stacked_url(stacked_runs_dir):
    from browser.conftest import serving
    with serving(stacked_runs_dir) as url:
        yield url


def test_brlyr002_film_and_inspector_switch_to_the_lower_layer_of_a_stacked_run(page, stacked_url):
    page.goto(stacked_url + "?view=film")
    title = "document.querySelector('#film-graph .js-plotly-plot')?._fullLayout?.title?.text || ''"
    wait_for(page, f"({title}).includes('of layer 1 (last) · h')")
    page.locator("#film-states label", has_text="layer 0").click()
    wait_for(page, f"({title}).includes(\"'pca2-l0h' of layer 0 · h (hidden state)\")")
    wait_for(page, "window.location.search.includes('film_states=0%3Ah')")
    assert page.locator("#film-projection label").all_inner_texts() == ["PCA (pca2-l0h)"]
    page.goto(stacked_url + "?view=inspector&example=3&inspector_states=0%3Ah")
    path = "document.querySelector('#inspector-path .js-plotly-plot')?._fullLayout?.title?.text || ''"
    wait_for(page, f"({path}) === 'in layer 0 · h (hidden state)'")
    wait_for(page, "document.querySelector('#inspector-nearest-title')?.innerText.includes('of layer 0 · h')")
    page.locator("#inspector-states label", has_text="layer 1").click()
    wait_for(page, f"({path}) === 'in layer 1 (last) · h (hidden state)'")
    wait_for(page, "document.querySelector('#inspector-nearest-title')?.innerText.includes('of layer 1 (last) · h')")


def test_brflm001_the_browser_builds_the_films_frames_as_python_expands_its_source(page, dash_url, examples):
    """The server sends the film without its frames (``film_source``); assets/lens-film.js builds
    them. Every frame's paths, heads (with their [id, p]) and the selected example's path are the
    ones ``figures.expand`` gives for the same answer, and the figure opens on the last frame."""
    import json

    import numpy as np

    from dashboard.views import film
    from factories import decoded

    example = int(examples["example_id"].iat[3])

    def film_answer(response):
        return "/_dash-update-component" in response.url and (
            f'"output":"{film.SOURCE}.data"' in (response.request.post_data or ""))

    with page.expect_response(film_answer) as answered:
        page.goto(dash_url + f"?view=film&example={example}")
    source = answered.value.json()["response"][film.SOURCE]["data"]
    assert "frames" not in source and len(json.dumps(source)) < 600_000
    expected = decoded(film.expanded(source))
    graph = "document.querySelector('#film-graph .js-plotly-plot')"
    wait_for(page, f"{graph}?._transitionData?._frames?.length === {len(expected['frames'])}")
    frames = page.evaluate(f"""{graph}._transitionData._frames.map(f => ({{name: f.name, traces: f.traces,
        data: f.data.map(t => ({{x: Array.from(t.x, v => Number.isNaN(v) ? null : v),
                                 y: Array.from(t.y, v => Number.isNaN(v) ? null : v),
                                 color: t.marker && t.marker.color ? Array.from(t.marker.color) : null,
                                 size: t.marker && t.marker.size ? Array.from(t.marker.size) : null,
                                 customdata: t.customdata || null}}))}}))""")

    def same(got, want):
        want = np.asarray(want, dtype=np.float64)
        np.testing.assert_allclose(np.asarray(got, dtype=np.float64), want, rtol=0, atol=1e-6, equal_nan=True)

    for got, want in zip(frames, expected["frames"]):
        assert got["name"] == want["name"] and got["traces"] == want["traces"] == [0, 1, 2]
        path, heads, marked = got["data"]
        same(path["x"], want["data"][0]["x"]), same(path["y"], want["data"][0]["y"])
        assert path["color"] == np.asarray(want["data"][0]["marker"]["color"]).tolist()
        same(heads["x"], want["data"][1]["x"])
        assert [row[0] for row in heads["customdata"]] == [row[0] for row in want["data"][1]["customdata"]]
        same([row[1] for row in heads["customdata"]], [row[1] for row in want["data"][1]["customdata"]])
        same(marked["x"], want["data"][2]["x"])
        assert marked["size"] == np.asarray(want["data"][2]["marker"]["size"]).tolist()
    shown = page.evaluate(f"{graph}.data.map(t => t.x ? t.x.length : 0)")
    assert shown[:3] == [len(trace["x"]) for trace in expected["data"][:3]]       # opens on the last frame
