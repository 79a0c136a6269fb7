"""The text views in a real browser on the small word-level run (tests/word_runs.py): the
heatmap shows words with their spacing, and select & match selects and matches words."""

from __future__ import annotations

import re

import pytest

from browser.pages import wait_for
from pipeline import runformat
from word_runs import WORD_RUN

pytestmark = pytest.mark.browser


def test_brwd001_the_heatmap_shows_the_words_with_spaces(page, words_url, word_runs_dir):
    page.set_default_timeout(60_000)
    page.goto(words_url + f"?run={WORD_RUN}&view=text")
    page.wait_for_selector("#text-body span", timeout=90_000)
    shown = page.inner_text("#text-body")
    assert "Alice went into the garden, and the Rabbit followed." in shown
    assert page.inner_text("#text-status").startswith("words 0\u2013")
    page.fill("#text-search", "the Queen sat")
    page.click("#text-find")
    wait_for(page, "[...document.querySelectorAll('#text-body span')].some(s => s.style.outline.includes('2px'))")
    marked = page.eval_on_selector_all("#text-body span", "els => els.filter(e => e.style.outline.includes('2px'))"
                                                          ".map(e => e.innerText).join('')")
    assert marked.startswith("the Queen sat")


def test_brwd002_select_and_match_by_word(page, words_url, word_runs_dir):
    page.set_default_timeout(60_000)
    page.goto(words_url + f"?run={WORD_RUN}&view=match&match_start=2&match_end=3&match_threshold=0"
                          f"&match_off=&match_max_length=6")
    graph = "#match-graph .js-plotly-plot"
    wait_for(page, f"document.querySelector('{graph}')?._fullData?.length > 0", timeout=90_000)
    labels = page.evaluate(f"() => document.querySelector('{graph}')._fullLayout.xaxis.ticktext.slice(0, 6)")
    assert labels == ["Alice", "went", "into", "the", "garden", ","]
    wait_for(page, "document.querySelectorAll('#match-results .match-row').length > 0")
    assert " words in " in page.inner_text("#match-summary")
    first = page.locator("#match-results .match-item").first
    text = first.locator(".match-text").inner_text()
    assert re.search(r"[A-Za-z]+ [A-Za-z]+", text)           # words with spaces between them
    matched = "".join(first.locator(".matched").all_inner_texts())
    rows = runformat.Run.open(word_runs_dir, WORD_RUN).steps("text")["char"].to_numpy()
    found = re.search(r"rows (\d+)\u2013(\d+)", first.locator(".match-row").inner_text())
    start, end = int(found.group(1)), int(found.group(2))
    assert matched.split() == "".join(rows[start:end + 1]).split()
