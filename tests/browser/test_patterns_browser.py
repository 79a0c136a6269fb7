"""The phrase-patterns view in a real browser: the parenthesis run's depth phrases as points, and a
click that opens one phrase in the text heatmap, marked."""

from __future__ import annotations

import pytest

from browser.pages import wait_for

pytestmark = pytest.mark.browser


def test_brpat001_a_phrase_point_opens_its_phrase_in_the_text_heatmap(page, text_url):
    page.set_default_timeout(60_000)
    page.goto(text_url + "?run=text-parens&view=patterns")          # the first annotation: depth
    graph = "#patterns-graph .js-plotly-plot"
    wait_for(page, f"document.querySelector('{graph}')?._fullData?.length >= 4", timeout=90_000)
    assert "k-NN (k=5) accuracy of depth" in page.inner_text("#patterns-graph")
    wait_for(page, "document.querySelector(\"#patterns-annotation input[value='depth']\")?.checked === true",
             timeout=10_000)                                                   # the choice is shown
    x, y = page.evaluate(f"""() => {{
        const gd = document.querySelector('{graph}');
        const trace = gd._fullData.find(t => t.name === '4'), box = gd.getBoundingClientRect();
        const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
        return [box.left + xa._offset + xa.d2p(trace.x[0]), box.top + ya._offset + ya.d2p(trace.y[0])];
    }}""")
    opened = "window.location.search.includes('view=text')"
    for _ in range(5):                         # plotly clicks the point it hovers; a busy machine
        page.mouse.move(x - 3, y)              # may not have drawn the hover yet at the first click
        page.mouse.move(x, y)
        page.wait_for_timeout(500)
        page.mouse.click(x, y)
        try:
            wait_for(page, opened, timeout=10_000)
            break
        except TimeoutError:
            continue
    wait_for(page, opened)
    page.wait_for_selector("#text-body span[style*='outline']", timeout=60_000)
    marked = page.eval_on_selector_all("#text-body span[style*='outline']", "els => els.map(e => e.innerText).join('')")
    assert marked and set(marked) <= set("()01234")
