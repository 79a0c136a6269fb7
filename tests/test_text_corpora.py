"""Text corpora: the Python standard library, LSTMVis' parenthesis language, a user's file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.datasets import DataError
from pipeline.datasets import text as corpora

ALICE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "text" / "alice.txt"

SOURCE = '''\
import os  # a comment
def f(x, y=[1, 2]):
    s = "a(b"
    if x:
        return {"k": (x, 3.5)}
    return r'raw'
'''


def values(annotations, key, text, fragment, offset=0):
    """The annotation values over the first occurrence of ``fragment``."""
    start = text.index(fragment) + offset
    return annotations[key].values[start:start + len(fragment) - offset].tolist()


def test_txt001_python_annotations_follow_tokenize():
    a = corpora.annotate_python(SOURCE, where="snippet")
    types = corpora.TOKEN_TYPES
    kind = lambda fragment: {types[v] for v in values(a, "token_type", SOURCE, fragment)}  # noqa: E731
    assert kind("import") == {"keyword"} and kind("os") == {"name"}
    assert kind("# a comment") == {"comment"} and kind("3.5") == {"number"}
    assert kind('"a(b"') == {"string"} and kind("=") == {"operator"}
    # inside_string: from the opening quote up to (not including) the closing one
    start = SOURCE.index('"a(b"')
    assert a["inside_string"].values[start - 1:start + 6].tolist() == [0, 1, 1, 1, 1, 0, 0]
    prefix = SOURCE.index("r'raw'")
    assert a["inside_string"].values[prefix:prefix + 6].tolist() == [0, 1, 1, 1, 1, 0]
    # brackets inside the string do not count; depth is the depth after the character
    assert values(a, "depth", SOURCE, '"a(b"') == [0] * 5
    assert values(a, "depth", SOURCE, "(x, y=[1, 2])") == [1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 1, 0]
    assert values(a, "depth", SOURCE, '{"k": (x, 3.5)}')[-3:] == [2, 1, 0]
    # indentation level by line
    assert set(values(a, "indent", SOURCE, "def f")) == {0}
    assert set(values(a, "indent", SOURCE, 's = "a(b"')) == {1}
    assert set(values(a, "indent", SOURCE, "return {")) == {2}
    assert set(values(a, "indent", SOURCE, "return r'raw'")) == {1}


def test_txt002_python_tokenize_error_names_the_file_and_line():
    with pytest.raises(DataError, match=r"bad\.py: line 2: cannot tokenize"):
        corpora.annotate_python("x = 1\ny = '''never closed\n", where="bad.py")


def test_txt003_python_corpus_is_the_standard_library_cut_into_documents():
    corpus = corpora.python_corpus()
    assert 250_000 < corpus.n_chars < 500_000
    assert corpus.text.startswith(Path(corpora.python_source_files()[0][1]).read_text()[:200])
    assert len(corpus.documents) > 60
    assert corpus.lengths.max() <= 8000 + 4000     # big classes are cut before their methods
    assert all(len(a.values) == corpus.n_chars for a in corpus.annotations.values())
    # documents start outside any bracket or string, at a top-level or method definition
    starts = corpus.starts[1:]
    assert np.all(corpus.annotations["depth"].values[starts - 1] == 0)
    assert np.all(corpus.annotations["inside_string"].values[starts - 1] == 0)
    assert 0.1 < corpus.annotations["inside_string"].values.mean() < 0.6
    assert "textwrap" in corpus.names and any(n.startswith("json.decoder") for n in corpus.names)
    assert len(corpus.vocabulary()) < 128


def test_txt004_parens_language_is_balanced_and_digits_tell_the_depth():
    corpus = corpora.parens_corpus(n_documents=200, seed=3)
    assert set(corpus.text) <= set("()01234\n")
    depth = corpus.annotations["depth"].values
    for document, start in zip(corpus.documents, corpus.starts):
        level = 0
        for i, ch in enumerate(document):
            level += (ch == "(") - (ch == ")")
            assert 0 <= level <= 4
            assert depth[start + i] == level
            if ch.isdigit():
                assert int(ch) == level
        assert level == 0 and document.endswith("\n")
    assert np.mean(depth == 4) > 0.05           # nesting level 4 is common enough to study
    assert corpora.parens_corpus(n_documents=5, seed=3).documents == corpus.documents[:5]


@pytest.mark.skipif(not ALICE.is_file(), reason="shared text data not present")
def test_txt005_a_text_file_becomes_paragraph_documents_with_prose_annotations():
    corpus = corpora.file_corpus(ALICE, min_doc_chars=1500)
    assert corpus.n_chars == 144_600 and corpus.name == "alice"
    assert corpus.text == ALICE.read_text(encoding="utf-8")
    assert all(length >= 1500 for length in corpus.lengths[:-1])
    assert all(doc.endswith("\n\n") for doc in corpus.documents[:-1])
    a = corpus.annotations
    quote = corpus.text.index("\u201cWhat a curious feeling!\u201d")
    assert a["inside_quotes"].values[quote:quote + 5].tolist() == [1] * 5
    assert a["inside_quotes"].values[quote + 30] == 0
    line = corpus.text.index("\n", quote)
    assert a["column"].values[line] == 0 and a["column"].values[line + 1] == 1
    assert corpora.CHAR_CLASSES[a["char_class"].values[quote + 1]] == "letter"


def test_txt010_a_hand_made_paragraph_gets_word_starts_and_positions():
    text = "\u201cDon't,\u201d said Alice's cat (twice) 42x.\n\n"
    a = corpora.annotate_prose(text)
    starts = [i for i, flag in enumerate(a["word_start"].values) if flag]
    assert [text[i:i + 3] for i in starts] == ["Don", "sai", "Ali", "cat", "twi", "42x"]
    position = dict(zip(range(len(text)), a["word_position"].values.tolist()))
    dont = text.index("Don't")
    assert [position[dont + k] for k in range(6)] == [1, 2, 3, 4, 5, 0]      # the apostrophe is inside the word
    assert position[text.index("(")] == 0 and position[text.index("42x") + 2] == 3
    assert a["inside_quotes"].values[dont] == 1 and a["paren_depth"].values[text.index("twice")] == 1


def test_txt006_bad_files_get_errors_that_name_them(tmp_path):
    latin1 = tmp_path / "latin.txt"
    latin1.write_bytes("line one\ncaf\u00e9 au lait\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin\.txt: not UTF-8 .*byte offset 12 \(line 2\)"):
        corpora.file_corpus(latin1)
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    with pytest.raises(DataError, match=r"empty\.txt: the file is empty"):
        corpora.file_corpus(empty)
    with pytest.raises(DataError, match=r"missing\.txt: cannot read"):
        corpora.file_corpus(tmp_path / "missing.txt")
    big = tmp_path / "big.txt"
    big.write_text("word " * 1000)
    with pytest.raises(DataError, match=r"big\.txt: 5,000 characters, more than dataset.max_chars"):
        corpora.file_corpus(big, max_chars=100)
    with pytest.raises(DataError, match="--source FILE"):
        corpora.load_corpus("file")


def test_txt007_a_text_without_blank_lines_is_cut_after_lines(tmp_path):
    path = tmp_path / "one-paragraph.txt"
    path.write_text("".join(f"line {i:04d} of a text that never leaves a blank line\n" for i in range(400)))
    corpus = corpora.file_corpus(path, min_doc_chars=500, max_doc_chars=2000)
    assert corpus.text == path.read_text()
    assert len(corpus.documents) >= 10 and corpus.lengths.max() <= 2000
    assert all(document.endswith("\n") for document in corpus.documents)


def test_txt008_crlf_is_read_as_lf(tmp_path):
    path = tmp_path / "dos.txt"
    path.write_bytes(b"one\r\ntwo\r\n\r\nthree\r\n")
    corpus = corpora.file_corpus(path, min_doc_chars=1)
    assert corpus.text == "one\ntwo\n\nthree\n" and corpus.documents == ["one\ntwo\n\n", "three\n"]


def test_txt009_documents_split_three_ways_the_same_for_the_same_seed():
    split = corpora.split_documents(20, 0.8, seed=1)
    assert (split == "train").sum() == 16 and (split == "validation").sum() == 2 and (split == "test").sum() == 2
    assert np.array_equal(split, corpora.split_documents(20, 0.8, seed=1))
    assert set(corpora.split_documents(3, 0.8, seed=0)) == {"train", "validation", "test"}
    with pytest.raises(DataError, match="cannot be split"):
        corpora.split_documents(2, 0.8)
