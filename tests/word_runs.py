"""A small word-level run (issue 12, word language models): a hand-made story of short
paragraphs, a capped vocabulary so that some words are unknown, trained a few seconds.

``word_run(folder)`` writes the text beside the runs folder and builds the run ``WORD_RUN``; the
session fixtures ``word_runs_dir`` (tests/conftest.py) and ``words_url`` (tests/browser) reuse it.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.core.config import merge
from pipeline.kinds import language_model

WORD_RUN = "text-story-words"
VOCABULARY = 40
PEOPLE = ("Alice", "the Rabbit", "the Queen", "the Hatter", "the Cat", "the Duchess")
PLACES = ("the garden", "the hall", "the wood", "the pool", "the court")


def story(paragraphs: int = 24) -> str:
    """Paragraphs of two to four sentences, quotes and brackets included; rarer names and numbers
    make the words a 40-word vocabulary leaves out."""
    lines = []
    for i in range(paragraphs):
        who, other = PEOPLE[i % len(PEOPLE)], PEOPLE[(i * 5 + 1) % len(PEOPLE)]
        where = PLACES[(i * 3) % len(PLACES)]
        sentences = [f"{who.capitalize()} went into {where}, and {other} followed.",
                     f"\u201cI don\u2019t know,\u201d said {other}, \u201cwhat the {i + 2} keys are for.\u201d",
                     f"So {who} sat down (very quietly) near {where}."]
        if i % 3 == 0:
            sentences.append(f"Nobody in {where} saw the little door number {i * 7 + 1}!")
        text = " ".join(sentences[: 2 + i % 3] if i % 3 else sentences)
        cut = text.rfind(" ", 0, 70)                 # wrapped lines, as in a book
        lines.append(text[:cut] + "\n" + text[cut + 1:])
    return "\n\n".join(lines) + "\n"


FAST_WORDS = {"dataset": {"min_doc_chars": 300},
              "model": {"units": [24], "embedding": 8, "dropout": 0.0},
              "train": {"epochs": 4, "window": 20, "learning_rate": 0.02, "patience": 2, "batch_size": 8},
              "extract": {"block_rows": 4096}}


def word_config(source: Path) -> dict:
    config = language_model.default_config("file", str(source), tokens="words", vocabulary=VOCABULARY)
    return merge(config, FAST_WORDS)


def word_run(runs: Path) -> Path:
    """``runs`` holding the complete word run ``WORD_RUN`` (its text in ``story.txt`` beside it)."""
    source = Path(runs).parent / "story.txt"
    source.write_text(story(), encoding="utf-8")
    summary = language_model.run_language_model(word_config(source), runs)
    assert summary.status == "complete" and summary.run_id == WORD_RUN
    return Path(runs)
