"""Why did it decide, in a real browser on the small synthetic run: the confusion view (a click on a
cell filters), the decisive step view (a click selects) and the inspector's attribution and
what-if panels (an edit recomputes)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pandas as pd
import pytest

from browser.pages import wait_for
from pipeline import runformat

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def examples(synthetic_runs_dir):
    run = runformat.Run.open(synthetic_runs_dir, "synthetic")
    frame = run.examples().copy()
    frame["label"] = [run.classes[i] for i in frame["label"]]
    frame["prediction"] = [run.classes[i] for i in frame["prediction"]]
    return frame


def plot(graph_id: str) -> str:
    return f"document.querySelector('#{graph_id} .js-plotly-plot')"


def drawn(page, graph_id: str) -> None:
    wait_for(page, f"{plot(graph_id)}?._fullData?.length > 0")


def click_at(page, graph_id: str, x, y, axes: str = "") -> None:
    """Hover, then click the point at data coordinates (x, y) of a graph."""
    position = page.evaluate(f"""([x, y]) => {{
        const gd = {plot(graph_id)};
        const xa = gd._fullLayout.xaxis{axes}, ya = gd._fullLayout.yaxis{axes};
        const box = gd.getBoundingClientRect();
        return [box.left + xa._offset + xa.d2p(x), box.top + ya._offset + ya.d2p(y)];
    }}""", [x, y])
    page.mouse.move(*position)
    page.wait_for_timeout(200)
    page.mouse.click(*position)


def query(page) -> dict:
    return parse_qs(urlparse(page.url).query)


def test_brwhy001_confusion_cell_click_filters_to_its_examples_and_lists_them(page, dash_url, examples):
    test = examples[examples["split"] == "test"]
    wrong = test[test["label"] != test["prediction"]]
    true, predicted = wrong["label"].iat[0], wrong["prediction"].iat[0]
    cell = wrong[(wrong["label"] == true) & (wrong["prediction"] == predicted)]
    page.goto(f"{dash_url}?view=confusion")
    drawn(page, "confusion-matrix")
    drawn(page, "confusion-accuracy")
    names = page.evaluate(f"{plot('confusion-matrix')}._fullData[1].x")
    assert sorted(names) == sorted(set(examples["label"]))
    click_at(page, "confusion-matrix", predicted, true)
    wait_for(page, "location.search.includes('correct=misclassified')")
    found = query(page)
    assert found["class"] == [true] and found["split"] == ["test"]
    links = page.locator("#confusion-cell-examples button")
    links.first.wait_for()
    assert links.count() == len(cell)
    first = int(cell["example_id"].iat[0])
    links.first.click()
    wait_for(page, f"document.querySelector('#selection-bar')?.innerText.includes('example {first},')")


def test_brwhy002_decisive_step_view_click_selects_an_example(page, dash_url, examples):
    page.goto(f"{dash_url}?view=decisive")
    drawn(page, "decisive-graph")
    title = page.evaluate(f"{plot('decisive-graph')}._fullLayout.title.text")
    assert "latest in" in title
    x, y, example = page.evaluate(f"""() => {{
        const trace = {plot('decisive-graph')}._fullData[1];
        return [trace.x[0], trace.y[0], trace.customdata[0][0]];
    }}""")
    click_at(page, "decisive-graph", x, y)
    wait_for(page, f"location.search.includes('example={example}')")
    wait_for(page, f"document.querySelector('#selection-bar')?.innerText.includes('example {example},')")


def test_brwhy003_inspector_shows_attribution_and_a_what_if_edit_recomputes(page, dash_url, examples):
    wrong = examples[examples["label"] != examples["prediction"]].iloc[0]
    example, length = int(wrong["example_id"]), int(wrong["length"])
    page.goto(f"{dash_url}?view=inspector&example={example}")
    drawn(page, "inspector-why-attribution")
    kinds = page.evaluate(f"{plot('inspector-why-attribution')}._fullData.map(t => t.type + ':' + t.name)")
    assert "heatmap:left" in kinds and "heatmap:right" in kinds
    drawn(page, "inspector-why-by-class")
    drawn(page, "inspector-whatif")
    wait_for(page, f"{plot('inspector-whatif')}._fullLayout.title.text.includes('masked')")
    page.click("#inspector-whatif-edit label:has-text('cut at step')")
    wait_for(page, f"{plot('inspector-whatif')}._fullLayout.title.text.includes('cut after')")
    title = page.evaluate(f"{plot('inspector-whatif')}._fullLayout.title.text")
    assert f"of {length} steps" in title
    after = page.evaluate(f"""() => {plot('inspector-whatif')}._fullData
        .filter(t => t.name.endsWith('(after)')).map(t => t.x.length)""")
    assert after and all(n < length for n in after)
    page.click("#inspector-whatif-edit label:has-text('drop a hand')")
    page.click("#inspector-whatif-hand label:has-text('right hand')")
    wait_for(page, f"{plot('inspector-whatif')}._fullLayout.title.text.includes('right hand dropped')")
    page.click("#inspector-why-target label:has-text('to the true class')")
    wait_for(page, f"{plot('inspector-why-attribution')}._fullLayout.title.text.includes(\"'{wrong['label']}'\")")


@pytest.fixture(scope="module")
def compare_url(synthetic_runs_dir, tmp_path_factory):
    """The app serving the small run beside a copy of it whose predictions differ for every seventh
    example (the same examples: comparable)."""
    import shutil

    from browser.conftest import serving
    runs = tmp_path_factory.mktemp("compare-browser") / "runs"
    shutil.copytree(synthetic_runs_dir / "synthetic", runs / "synthetic")
    shutil.copytree(synthetic_runs_dir / "synthetic", runs / "variant")
    frame = pd.read_parquet(runs / "variant" / "examples.parquet")
    flip = frame.index[::7]
    frame.loc[flip, "prediction"] = (frame.loc[flip, "label"] + 1) % (int(frame["label"].max()) + 1)
    frame["correct"] = frame["prediction"] == frame["label"]
    frame.to_parquet(runs / "variant" / "examples.parquet")
    with serving(runs) as url:
        yield url


def test_brwhy004_compare_view_shows_two_runs_and_a_click_on_a_disagreement_selects(page, compare_url):
    page.goto(f"{compare_url}?run=synthetic&view=compare")
    drawn(page, "compare-difference")
    drawn(page, "compare-paths")
    wait_for(page, "document.querySelector('#compare-cka')?.innerText.includes('1.000')")
    assert "variant" in page.inner_text("#compare-other")
    link = page.locator("#compare-disagree button").first
    link.wait_for()
    example = link.inner_text().split()[0].lstrip("#")
    link.click()
    wait_for(page, f"document.querySelector('#selection-bar')?.innerText.includes('example {example},')")
