"""The "Model writes" view in a real browser: type a seed, write, see the text coloured by a cell,
and pick one of the ranked cells."""

from __future__ import annotations

import re

import pytest

from browser.pages import wait_for

pytestmark = pytest.mark.browser


def test_brwr001_the_model_writes_after_a_typed_seed_and_a_ranked_cell_recolours_it(page, text_url):
    page.set_default_timeout(60_000)
    page.goto(text_url + "?run=text-parens&view=write")
    # it opens on text written after the first test document's opening
    wait_for(page, "document.querySelector('#write-status')?.innerText.includes('written after')", timeout=90_000)
    assert page.input_value("#write-seed")
    page.fill("#write-length", "120")
    page.fill("#write-seed", "((1")
    page.click("#write-go")
    wait_for(page, "document.querySelector('#write-status')?.innerText.includes('after a 3-character seed')",
             timeout=90_000)
    text = page.inner_text("#write-body")
    assert text.startswith("((1") and len(text.strip()) >= 100
    colours = page.eval_on_selector_all("#write-body span", "els => els.map(e => e.style.backgroundColor)")
    assert len(set(colours)) > 3
    assert "120 characters written after a 3-character seed" in page.inner_text("#write-status")
    button = page.wait_for_selector("#write-ranking button")
    cell = re.search(r"cell (\d+)", button.inner_text()).group(1)
    button.click()
    wait_for(page, f"document.querySelector('#write-legend')?.innerText.includes('cell {cell}:')")
    assert page.inner_text("#write-body") == text                   # the same text, coloured by another cell
