"""The text views in a real browser on the small parenthesis-language run: the per-cell heatmap,
stepping through cells, and LSTMVis' select & match by dragging across the select plot."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest

from browser.pages import wait_for

from pipeline import runformat

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def level_4_group(text_runs_dir) -> tuple[int, int]:
    """Rows of the longest "(44..4" group: a nesting-level-4 range."""
    run = runformat.Run.open(text_runs_dir, "text-parens")
    text = "".join(run.steps("text", columns=["char"])["char"])
    group = max(re.finditer(r"\(4+", text), key=lambda m: (len(m.group()), -m.start()))
    return group.start(), group.end() - 1


def query(page) -> dict:
    return parse_qs(urlparse(page.url).query)


def test_brtx001_heatmap_colours_the_text_and_steps_through_cells(page, text_url):
    page.set_default_timeout(60_000)          # the machine may be busy; nothing here should take that long
    page.goto(text_url + "?run=text-parens&view=text&text_cell=3&text_pos=40")
    page.wait_for_selector("#text-body span", timeout=90_000)      # the first load reads the run
    spans = page.eval_on_selector_all("#text-body span", "els => els.map(e => e.style.backgroundColor)")
    assert len(spans) > 20 and len(set(spans)) > 3                    # coloured, not one flat colour
    assert "characters 40\u2013" in page.inner_text("#text-status")
    assert "cell 3" in page.inner_text("#text-legend")
    page.click("#text-next")
    wait_for(page, "document.querySelector('#text-legend')?.innerText.includes('cell 4')")
    wait_for(page, "window.location.search.includes('text_cell=4')")
    page.click("#text-forward")
    wait_for(page, "document.querySelector('#text-status')?.innerText.includes('characters 3,040')")
    # rank by depth, pick the best cell
    page.click("#text-rank-by label:has-text('depth')")
    best = page.wait_for_selector("#text-ranking button")
    cell = re.search(r"cell (\d+)", best.inner_text()).group(1)
    best.click()
    wait_for(page, f"document.querySelector('#text-legend')?.innerText.includes('cell {cell}:')")


def test_brtx002_select_a_range_by_dragging_and_see_its_matches(page, text_url, level_4_group):
    first, last = level_4_group
    page.set_default_timeout(60_000)
    page.goto(text_url + f"?run=text-parens&view=match&match_pos={first - 30}")
    graph = "#match-graph .js-plotly-plot"
    wait_for(page, f"document.querySelector('{graph}')?._fullData?.length > 0", timeout=90_000)
    # Drag across the characters first .. last, in the middle of the lines' plot area.
    x0, x1, y = page.evaluate(f"""() => {{
        const gd = document.querySelector('{graph}');
        const box = gd.getBoundingClientRect(), xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
        const px = v => box.left + xa._offset + xa.l2p(v);
        return [px({first} - 0.4), px({last} + 0.4), box.top + ya._offset + ya._length / 2];
    }}""")
    page.mouse.move(x0, y)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, y, steps=4)
    page.mouse.move(x1, y, steps=4)
    page.mouse.up()
    wait_for(page, f"window.location.search.includes('match_start={first}')")
    assert query(page)["match_end"] == [str(last)]
    wait_for(page, "document.querySelectorAll('#match-results .match-row').length === 50")
    assert re.search(r"\d+ cell\(s\) on", page.inner_text("#match-cells"))
    assert page.inner_text("#match-summary").startswith("50 matches")
    # colour the matches by nesting depth: the summary says how many are level-4 ranges
    page.click("#match-colour-by label:has-text('depth')")
    wait_for(page, "document.querySelector('#match-summary')?.innerText.includes(' of 50')")
    level_4 = int(re.search(r"\b4: (\d+) of 50", page.inner_text("#match-summary")).group(1))
    assert level_4 >= 40
    first_row = page.inner_text("#match-results .match-row")
    assert "#1" in first_row and "overlap" in first_row


def test_brtx003_a_match_link_opens_the_match_marked_in_the_text_heatmap(page, text_url, level_4_group):
    first, last = level_4_group
    page.set_default_timeout(60_000)
    page.goto(text_url + f"?run=text-parens&view=match&match_pos={first - 30}&match_start={first}"
              f"&match_end={last}")
    wait_for(page, "document.querySelectorAll('#match-results .match-row').length === 50", timeout=90_000)
    item = page.locator("#match-results .match-item").nth(2)
    matched = "".join(item.locator(".matched").all_inner_texts())
    rows = re.search(r"rows (\d+)\u2013(\d+)", item.locator(".match-row").inner_text())
    item.locator("button.match-open").click()
    wait_for(page, "window.location.search.includes('view=text')")
    wait_for(page, "[...document.querySelectorAll('#text-body span')].some(s => s.style.outline.includes('solid'))")
    marked = page.eval_on_selector_all(
        "#text-body span", "els => els.filter(s => s.style.outline.includes('solid')).map(s => s.textContent)")
    assert "".join(marked) == matched and len(matched) == int(rows.group(2)) - int(rows.group(1)) + 1
    position = int(query(page)["text_pos"][0])
    assert position <= int(rows.group(1)) < position + 3000
    assert page.is_visible("#text-body")


def test_brtx004_dragging_the_threshold_line_sets_the_threshold(page, text_url):
    page.set_default_timeout(60_000)
    page.goto(text_url + "?run=text-parens&view=match&match_pos=40")
    graph = "#match-graph .js-plotly-plot"
    wait_for(page, f"document.querySelector('{graph}')?._fullLayout?.shapes?.length > 0", timeout=90_000)
    where = f"""(value) => {{
        const gd = document.querySelector('{graph}');
        const box = gd.getBoundingClientRect(), xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
        return [box.left + xa._offset + xa._length * 0.37, box.top + ya._offset + ya.l2p(value)];
    }}"""
    x, y = page.evaluate(where, 0.3)
    active = f"document.querySelector('{graph}')._fullLayout._activeShapeIndex === 0"
    for _ in range(10):                # a click picks the line up; a late redraw of the first load drops it
        if not page.evaluate(active):
            page.mouse.click(x, y)
        page.wait_for_timeout(1000)
        if page.evaluate(active):
            break
    assert page.evaluate(active)
    target = page.evaluate(where, 0.6)[1]
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x, (y + target) / 2, steps=4)
    page.mouse.move(x, target, steps=4)
    page.mouse.up()
    wait_for(page, "window.location.search.includes('match_threshold=')")
    dropped = float(query(page)["match_threshold"][0])
    assert dropped == pytest.approx(0.6, abs=0.03)
    assert float(page.input_value("#match-threshold")) == dropped
    wait_for(page, f"Math.abs(document.querySelector('{graph}')._fullLayout.shapes[0].y0 - {dropped}) < 1e-9")
