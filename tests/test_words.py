"""Word-level language models (issue 12): the tokenizer, the capped vocabulary and its unknown
token, a small word run end to end (tests/word_runs.py), the NumPy generation against Keras, and
the text views' callbacks on word rows."""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pandas as pd
import pytest

from pipeline import runformat
from pipeline.analysis import generate, words
from pipeline.analysis.lstm import NetworkWeights
from pipeline.datasets import text as corpora
from pipeline.datasets import words as word_corpora
from word_runs import VOCABULARY, WORD_RUN

PARAGRAPH = ("\u201cI don\u2019t know,\u201d said Alice (quietly). The Rabbit-Hole was 3.5 feet\n"
             "deep -- or 12 feet? \u201cCurious!\u201d\n\n  Down she went.\n")


def test_wrd001_prose_tokens_are_words_numbers_punctuation_and_paragraph_breaks():
    found = words.tokenize(PARAGRAPH, "prose")
    assert found.tokens == ["\u201c", "I", "don\u2019t", "know", ",", "\u201d", "said", "Alice", "(", "quietly",
                            ")", ".", "The", "Rabbit-Hole", "was", "3.5", "feet", "deep", "--", "or", "12",
                            "feet", "?", "\u201c", "Curious", "!", "\u201d", words.PARAGRAPH, "Down", "she",
                            "went", "."]
    kinds = dict(zip(found.tokens, found.kinds))
    assert (kinds["3.5"], kinds["12"], kinds["don\u2019t"], kinds["--"], kinds["\n"]) == \
        ("number", "number", "word", "punctuation", "paragraph")
    shown = found.shown(PARAGRAPH)
    assert "".join(shown) == PARAGRAPH                    # the rows joined are the text again
    assert shown[16] == "feet\n"                          # a line break inside a paragraph is spacing
    assert shown[27] == "\n\n  "                          # the paragraph break, shown as it was
    assert shown[:3] == ["\u201c", "I ", "don\u2019t "]


def test_wrd002_the_vocabulary_keeps_the_most_frequent_words_and_maps_the_rest_to_unk():
    tokens = ["the", "cat", "saw", "the", "dog", "and", "the", "cat", "ran"]
    vocabulary = words.capped_vocabulary(tokens, 3)
    assert vocabulary == [words.UNKNOWN, "the", "cat"]
    ids, unknown = words.encode(["the", "dog", "cat", "zebra"], vocabulary)
    assert ids.tolist() == [1, 0, 2, 0] and unknown.tolist() == [False, True, False, True]
    assert words.capped_vocabulary(tokens, 100) == [words.UNKNOWN, "the", "cat", "saw", "dog", "and", "ran"]
    with pytest.raises(ValueError, match="at least 2"):
        words.capped_vocabulary(tokens, 1)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        words.encode(["dog"], ["the"])


def test_wrd003_word_annotations_describe_the_state_after_each_token(tmp_path):
    path = tmp_path / "alice.txt"
    path.write_text(PARAGRAPH, encoding="utf-8")
    corpus = word_corpora.word_corpus(corpora.file_corpus(path, min_doc_chars=10))
    assert corpus.tokenizer == "prose" and "".join(corpus.shown) == PARAGRAPH
    values = {name: dict(zip(range(corpus.n_tokens), a.values.tolist())) for name, a in corpus.annotations.items()}
    classes = corpus.annotations["word_class"].categories
    assert [classes[values["word_class"][i]] for i in (1, 4, 15, 27)] == ["word", "punctuation", "number", "paragraph"]
    assert [values["inside_quotes"][i] for i in range(7)] == [1, 1, 1, 1, 1, 0, 0]   # “I don’t know,” said
    assert [values["paren_depth"][i] for i in (7, 8, 9, 10)] == [0, 1, 1, 0]           # Alice ( quietly )
    assert values["capitalised"][7] == 1 and values["capitalised"][6] == 0
    positions = [values["sentence_position"][i] for i in range(corpus.n_tokens)]
    assert positions[:13] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 1]              # "The" starts a sentence
    assert positions[23:29] == [1, 2, 3, 4, 0, 1]     # “Curious!” keeps its closing quote; the break is 0


def test_wrd004_python_source_and_the_parenthesis_language_have_tokens_of_their_own():
    source = "def f(x):\n    return x + 1  # add one\n"
    found = words.tokenize(source, "python")
    assert found.tokens == ["def", "f", "(", "x", ")", ":", "\n", "return", "x", "+", "1", "#", "add", "one", "\n"]
    assert found.kinds[:3] == ["keyword", "name", "operator"] and found.kinds[12] == "comment"
    assert "".join(found.shown(source)) == source          # the indentation is spacing
    assert words.tokenize("def f(a,\n  b", "python").tokens[-1] == "b"   # an unfinished seed still tokenizes
    corpus = word_corpora.word_corpus(corpora.parens_corpus(n_documents=4))
    assert corpus.tokenizer == "symbols" and corpus.n_tokens == corpus.n_chars
    assert list(corpus.annotations) == ["depth"]


def test_wrd005_written_words_are_spaced_as_text():
    pieces = words.written_pieces(["said", "Alice", ",", "\u201c", "Oh", "!", "\u201d", words.PARAGRAPH, "The", "end"],
                                  "prose", previous="she")
    assert "".join(pieces) == " said Alice, \u201cOh!\u201d\n\nThe end"
    assert "".join(words.written_pieces(['"', "Hi", '"', "she"], "prose")) == '"Hi" she'
    assert "".join(words.written_pieces(["(", "1", ")"], "symbols")) == "(1)"


# -- the word run ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def run(word_runs_dir) -> runformat.Run:
    return runformat.Run.open(word_runs_dir, WORD_RUN)


def test_wrd010_the_text_table_vocabulary_and_predictions_of_a_word_run_agree(run, word_runs_dir):
    source = (word_runs_dir.parent / "story.txt").read_text(encoding="utf-8")
    table = run.steps("text")
    assert "".join(table["char"]) == source                      # every row a word with its spacing
    vocabulary = run.classes
    assert len(vocabulary) == VOCABULARY and vocabulary[0] == words.UNKNOWN
    unknown = ~table["token"].isin(vocabulary[1:])
    assert (unknown.to_numpy() == table["unknown"].to_numpy().astype(bool)).all() and unknown.any()
    info = run.manifest.get("vocabulary")
    assert info["size"] == VOCABULARY and info["unknown_rate"]["all"] == pytest.approx(unknown.mean(), abs=1e-6)
    assert run.manifest.get("n_tokens") == len(table) and run.manifest.get("text")["tokens"] == "words"
    assert {"word_class", "capitalised", "inside_quotes", "paren_depth", "sentence_position", "unknown"} <= \
        set(run.manifest.annotations)
    predictions = pd.read_parquet(run.path / runformat.PREDICTIONS_FILE)
    ids = np.where(unknown, 0, table["token"].map({w: i for i, w in enumerate(vocabulary)}).fillna(0)).astype(int)
    last = np.cumsum(run.examples().sort_values("example_id")["length"].to_numpy()) - 1
    expected = np.roll(ids, -1)
    expected[last] = -1
    assert (predictions["target"].to_numpy() == expected).all()
    assert predictions["top1_class"].between(0, VOCABULARY - 1).all()
    for metrics in run.manifest.metrics.values():
        assert metrics["bits_per_token"] == pytest.approx(metrics["loss"] / np.log(2), rel=1e-4)
        assert metrics["perplexity"] == pytest.approx(np.exp(metrics["loss"]), rel=1e-3)
        assert "bits_per_char" not in metrics and metrics["tokens"] > 0
    history = pd.read_parquet(run.path / runformat.HISTORY_FILE)
    assert {"bits_per_token", "val_bits_per_token"} <= set(history) and "bits_per_char" not in history


def test_wrd011_numpy_generation_has_the_keras_word_models_probabilities(run):
    from pipeline.kinds import language_model
    from pipeline.models.char_lm import zero_states
    from pipeline.models.keras_weights import load_keras_model
    weights = NetworkWeights.load(run.path / runformat.WEIGHTS_FILE)
    vocabulary = run.classes
    written = generate.write(weights, vocabulary, "Alice went into the", 15, temperature=1.0, random_seed=3,
                             tokenizer="prose")
    assert written.n_seed == 4 and len(written.tokens) == 19 and written.text.startswith("Alice went into the ")
    index = {w: i for i, w in enumerate(vocabulary)}
    ids = np.array([[index[piece.strip() or words.PARAGRAPH] for piece in written.tokens]], np.int32)
    model = load_keras_model(run.path / language_model.MODEL_FILE)
    probabilities, *states = (np.asarray(t) for t in model.predict_on_batch([ids, *zero_states(model, 1)]))
    keras_chosen = probabilities[0, np.arange(3, 18), ids[0, 4:]]
    np.testing.assert_allclose(written.chosen_probability, keras_chosen, atol=1e-5)
    np.testing.assert_allclose(written.states[(0, "h")][-1], states[0][0], atol=1e-5)


def test_wrd012_a_seed_word_outside_the_vocabulary_is_read_as_unk_and_named(run):
    weights = NetworkWeights.load(run.path / runformat.WEIGHTS_FILE)
    written = generate.write(weights, run.classes, "Alice met the Jabberwock", 5, tokenizer="prose")
    plain = generate.write(weights, run.classes, f"Alice met the {words.UNKNOWN}", 5, tokenizer="prose")
    assert "Jabberwock" in written.unknown and written.n_seed == 4
    np.testing.assert_allclose(written.states[(0, "h")][3], generate.write(
        weights, run.classes, "Alice met the Snark", 0, tokenizer="prose").states[(0, "h")][3])
    assert plain.n_seed == 6                      # typed literally, <unk> is three tokens, not the unknown one
    with pytest.raises(ValueError, match="at least one word"):
        generate.write(weights, run.classes, "   ", 5, tokenizer="prose")


# -- the text views on the word run -------------------------------------------------------------

@pytest.fixture(scope="module")
def views_run(word_runs_dir, run):
    from dashboard import data
    data.configure(word_runs_dir)
    return run


def shown_text(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def test_wrd020_the_heatmap_shows_words_with_their_spacing_and_finds_a_phrase_by_rows(views_run):
    from dashboard.views import text_heatmap
    rows = views_run.steps("text")["char"].to_numpy()
    body, legend, status = text_heatmap.render(WORD_RUN, "last", "h", 0, 0, None)
    window = text_heatmap.WORD_WINDOW
    visible = shown_text(re.sub(r'<div class="text-doc"[^>]*>.*?</div>', "", body.children))
    assert visible == "".join(rows[:window])                  # the words with their own spacing
    assert "Alice went into the garden, and the Rabbit followed." in visible
    assert status.startswith(f"words 0\u2013{window - 1:,} of {len(rows):,}")
    position, found = text_heatmap.navigate(text_heatmap.FIND, WORD_RUN, 0, "the Queen sat", None)
    assert "".join(rows[found[0]:found[1]]).startswith("the Queen sat") and found[1] - found[0] == 3
    marked = text_heatmap.render(WORD_RUN, "last", "h", 0, position, found)[0].children
    outlined = "".join(re.findall(r'outline:2px solid #ff7f0e" title="[^"]*">([^<]*)<', marked))
    assert html.unescape(outlined) == "".join(rows[found[0]:found[1]])   # the three words marked


def test_wrd021_select_and_match_select_match_and_show_word_phrases(views_run):
    from dashboard.views import select_match
    figure, note, chosen = select_match.select_view(WORD_RUN, "last", "h", 0, 2, 3, 0.0, [], "word_class")
    labels = list(figure.layout.xaxis.ticktext)
    assert labels[:6] == ["Alice", "went", "into", "the", "garden", ","]
    assert len(labels) == select_match.WORD_WINDOW and chosen["start"] == 2 and chosen["end"] == 3
    bottom = figure.layout.xaxis4                        # under the on, word_class and next tracks
    assert figure.layout.xaxis.showticklabels is False and bottom.showticklabels and bottom.tickangle == -50
    assert chosen["cells"], note
    summary, results = select_match.match_view(chosen, "word_class")
    assert " words in " in summary and "characters" not in summary
    first = results.children[0].children[1].children
    matched = html.unescape("".join(re.findall(r'class="matched"[^>]*>([^<]*)<', first)))
    assert " " in matched.strip() or len(matched.split()) >= 1
    text_row = re.search(r'<div class="match-text"[^>]*>(.*?)</div>', first).group(1)
    counts_row = re.search(r'<div class="match-counts"[^>]*>(.*?)</div>', first).group(1)
    assert len(shown_text(text_row)) == len(shown_text(counts_row))       # the tracks align with the words
    next_row = re.search(r'<div class="match-predictions"[^>]*>(.*?)</div>', first).group(1)
    assert len(shown_text(next_row)) == len(shown_text(text_row))
    assert set(shown_text(next_row).split()) <= set(views_run.classes) | {"\u23ce", "\u2026"} | \
        {w[:k] + "\u2026" for w in views_run.classes for k in range(len(w))} | {w[:1] for w in views_run.classes}


def test_wrd022_the_writer_writes_words_after_a_word_seed(views_run):
    from dashboard.views import writer
    body, legend, status, ranking = writer.render(WORD_RUN, "Alice met the Jabberwock", 12, 0.8, 1, "last", "h", 0)
    text = shown_text(body.children)
    written = generate.write(NetworkWeights.load(views_run.path / runformat.WEIGHTS_FILE), views_run.classes,
                             "Alice met the Jabberwock", 12, 0.8, 1, tokenizer="prose")
    assert text == written.text and text.startswith("Alice met the Jabberwock")
    assert len(written.tokens) == 16 and all(piece.strip() for piece in written.tokens[4:] if piece != "\n\n")
    assert "12 words written after a 4-word seed" in status and "'Jabberwock'" in status
    assert all(0 < len(pick["value"].split()) <= writer.PICK_WORDS for pick in writer.seed_options(WORD_RUN))


def test_wrd023_phrase_patterns_group_phrases_by_word_annotations(views_run):
    from dashboard.views import patterns
    assert {"word_class", "inside_quotes", "paren_depth", "unknown"} <= set(patterns.annotation_choices(views_run))
    figure = patterns.figure(WORD_RUN, "inside_quotes", "last", "h", 0.05, 2)
    assert "phrases of inside_quotes" in figure.layout.title.text
    hovered = [t for trace in figure.data for t in trace.text]
    assert any(" " in t for t in hovered)                       # phrases of several words, spaced


def test_wrd024_run_info_says_words_vocabulary_and_unknown_rate(views_run):
    from dashboard.figures.run_info import run_info_sections
    rows = dict(run_info_sections(views_run.manifest)[0][1])
    assert rows["tokens"] == "words (prose tokenizer)"
    assert rows["words"] == f"{views_run.manifest.get('n_tokens'):,}"
    assert "40 most frequent training words" in rows["vocabulary cap"] and "<unk>" in rows["vocabulary cap"]
    assert rows["unknown rate"].startswith("all ") and "%" in rows["unknown rate"]
    results = dict(run_info_sections(views_run.manifest)[3][1])
    assert any("bits per token" in text for text in results.values())


def test_wrd030_the_command_line_takes_tokens_and_vocabulary(tmp_path, capsys):
    from pipeline.cli import main
    from pipeline.cli.run import text_config
    import argparse
    source = tmp_path / "a.txt"
    source.write_text("Some words.\n\nMore words.\n\nEven more.\n", encoding="utf-8")
    args = argparse.Namespace(corpus="file", source=str(source), tokens="words", vocabulary=500, units=None,
                              epochs=None, batch_size=None, seed=None, documents=None, embedding=None,
                              dropout=None, window=None, max_seconds=None, learning_rate=None, lr_decay=None)
    config = text_config(args)
    assert config["dataset"]["tokens"] == "words" and config["dataset"]["vocabulary"] == 500
    assert json.dumps(config["model"]) and config["train"]["window"] == 35
    code = main(["run", "text", "--source", str(source), "--tokens", "words", "--vocabulary", "1",
                 "--runs", str(tmp_path / "runs"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == ["error: --vocabulary must be at least 2 (the unknown token and one word), not 1"]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
