"""The Attention view and the inspector's attention matrix in a real browser, on the small
attention runs (tests/attention_runs.py)."""

from __future__ import annotations

import pytest

from attention_runs import ATTENTION_RUN, MATRIX_LENGTHS, MATRIX_RUN, T_OUT
from browser.pages import wait_for

pytestmark = pytest.mark.browser


def plot(graph_id: str) -> str:
    return f"document.querySelector('#{graph_id} .js-plotly-plot')"


def drawn(page, graph_id: str) -> None:
    wait_for(page, f"{plot(graph_id)}?._fullData?.length > 0")


def test_bratt001_attention_view_draws_its_panels_and_a_heatmap_click_selects(page, attention_url):
    page.goto(f"{attention_url}?run={ATTENTION_RUN}&view=attention&split=test")
    drawn(page, "attention-heatmap")
    drawn(page, "attention-classes")
    assert page.evaluate(f"{plot('attention-heatmap')}._fullData[0].type") == "heatmap"
    example = page.evaluate(f"{plot('attention-heatmap')}._fullData[0].customdata[0][0]")
    page.evaluate("document.querySelector('#attention-heatmap').scrollIntoView({block: 'start'})")
    box = page.evaluate(f"""() => {{
        const gd = {plot('attention-heatmap')};
        const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, r = gd.getBoundingClientRect();
        return [r.left + xa._offset + xa._length * 0.5, r.top + ya._offset + ya.l2p(0)];
    }}""")
    page.mouse.move(*box)
    page.wait_for_timeout(200)
    page.mouse.click(*box)
    wait_for(page, f"location.search.includes('example={example}')")
    drawn(page, "attention-example")
    title = page.evaluate(f"{plot('attention-example')}._fullLayout.title.text")
    assert title.startswith(f"Example {example}:") and "peak weight at step" in title
    kinds = page.evaluate(f"{plot('attention-example')}._fullData.map(t => t.type)")
    assert kinds[:3] == ["bar", "heatmap", "scatter"]


def test_bratt002_inspector_draws_the_attention_matrix_of_the_selected_example(page, attention_url):
    page.goto(f"{attention_url}?run={MATRIX_RUN}&view=inspector&example=2")
    drawn(page, "inspector-attention-matrix")
    z = page.evaluate(f"{plot('inspector-attention-matrix')}._fullData[0].z")
    assert len(z) == T_OUT and len(z[0]) == MATRIX_LENGTHS[2]
    assert page.locator("#inspector-attention-matrix-box").is_visible()
