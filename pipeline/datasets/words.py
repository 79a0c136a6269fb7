"""Word corpora: a text corpus (``datasets.text``) cut into word tokens and annotated per token.

The documents, names and splits stay those of the character corpus; each document is tokenized
on its own (``pipeline.analysis.words``: prose, Python or the parenthesis symbols, chosen by the
corpus), so no token crosses a document. Annotations describe the state after reading the token,
like the character ones, which they are mostly read from (at the token's last character):

- prose: ``word_class`` (word, number, punctuation, paragraph), ``capitalised``,
  ``inside_quotes``, ``paren_depth`` and ``sentence_position`` (1 for a sentence's first token; a
  sentence ends after . ! ? and at a paragraph break, which itself is 0).
- Python: ``token_type`` (name, keyword, operator, number, string, comment, newline), bracket
  ``depth`` and ``indent`` level.
- parens: ``depth``, as per character.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.analysis import words
from pipeline.datasets import DataError
from pipeline.datasets.text import Annotation, TextCorpus

SENTENCE_ENDS = {".", "!", "?", "...", "\u2026"}
CLOSERS = {")", "]", "}", "\u201d", "\u2019", '"', "'"}     # stay in the sentence they close


@dataclass
class WordCorpus:
    name: str
    source: str
    tokenizer: str                      # one of words.TOKENIZERS
    documents: list[str]                # the text, as the character corpus has it
    names: list[str]
    tokens: list[str]                   # every token of every document, in order
    shown: list[str]                    # each token with its spacing: joined, the documents again
    lengths: np.ndarray                 # tokens per document
    annotations: dict[str, Annotation]
    notes: dict = field(default_factory=dict)

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)

    @property
    def n_chars(self) -> int:
        return sum(len(d) for d in self.documents)

    @property
    def starts(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)

    def annotation_info(self) -> dict:
        return {key: {"kind": a.kind, "description": a.description,
                      **({"categories": list(a.categories)} if a.categories else {})}
                for key, a in self.annotations.items()}


def tokenizer_for(corpus: TextCorpus) -> str:
    """symbols for the parenthesis language, python for Python source, prose for the rest."""
    if corpus.name == "parens":
        return "symbols"
    return "python" if "token_type" in corpus.annotations else "prose"


def word_corpus(corpus: TextCorpus) -> WordCorpus:
    tokenizer = tokenizer_for(corpus)
    tokens: list[str] = []
    shown: list[str] = []
    kinds: list[str] = []
    firsts, lasts, lengths = [], [], []
    for document, start, name in zip(corpus.documents, corpus.starts, corpus.names):
        found = words.tokenize(document, tokenizer)
        if not len(found):
            raise DataError(f"{corpus.where}: document {name!r} has no word tokens (only whitespace)")
        tokens += found.tokens
        shown += found.shown(document)
        kinds += found.kinds
        firsts.append(found.starts + start)
        lasts.append(found.ends - 1 + start)
        lengths.append(len(found))
    first, last = np.concatenate(firsts), np.concatenate(lasts)
    lengths_array = np.array(lengths, np.int64)
    if tokenizer == "prose":
        annotations = _prose_annotations(corpus, tokens, kinds, last, lengths_array)
    elif tokenizer == "python":
        annotations = _python_annotations(corpus, kinds, first, last)
    else:
        annotations = {"depth": Annotation(corpus.annotations["depth"].values[last],
                                           description="parenthesis nesting level after the token")}
    return WordCorpus(name=corpus.name, source=corpus.source, tokenizer=tokenizer,
                      documents=corpus.documents, names=corpus.names, tokens=tokens, shown=shown,
                      lengths=lengths_array, annotations=annotations, notes=corpus.notes)


def _codes(kinds: list[str], categories: tuple[str, ...]) -> np.ndarray:
    index = {name: i for i, name in enumerate(categories)}
    return np.array([index[k] for k in kinds], np.int8)


def _prose_annotations(corpus: TextCorpus, tokens: list[str], kinds: list[str], last: np.ndarray,
                       lengths: np.ndarray) -> dict[str, Annotation]:
    chars = corpus.annotations
    capitalised = np.array([t[:1].isupper() for t in tokens], np.int8)
    return {
        "word_class": Annotation(_codes(kinds, words.PROSE_KINDS), words.PROSE_KINDS,
                                 "word, number, punctuation or paragraph break"),
        "capitalised": Annotation(capitalised, description="1 for a token that starts with a capital letter"),
        "inside_quotes": Annotation(chars["inside_quotes"].values[last],
                                    description="1 inside a quotation (\u201c \u201d or \") after the token"),
        "paren_depth": Annotation(chars["paren_depth"].values[last],
                                  description="nesting depth of ( [ { after the token"),
        "sentence_position": Annotation(sentence_positions(tokens, lengths),
                                        description="position in the sentence (1-based; 0 for a paragraph break)"),
    }


def _python_annotations(corpus: TextCorpus, kinds: list[str], first: np.ndarray,
                        last: np.ndarray) -> dict[str, Annotation]:
    chars = corpus.annotations
    return {
        "token_type": Annotation(_codes(kinds, words.PYTHON_KINDS), words.PYTHON_KINDS, "Python token type"),
        "depth": Annotation(chars["depth"].values[last], description="bracket nesting depth ( [ { after the token"),
        "indent": Annotation(chars["indent"].values[first], description="indentation level of the line"),
    }


def sentence_positions(tokens: list[str], lengths: np.ndarray) -> np.ndarray:
    """Each token's 1-based position in its sentence, counted afresh in every document; a
    paragraph break is 0 and ends the sentence, as do . ! ? (a closing quote or bracket right
    after them still belongs to the sentence)."""
    positions = np.zeros(len(tokens), np.int16)
    document_starts = set(np.concatenate([[0], np.cumsum(lengths)[:-1]]).tolist())
    position, ended = 0, False
    for i, token in enumerate(tokens):
        if i in document_starts:
            position, ended = 0, False
        if token == words.PARAGRAPH:
            position, ended = 0, False
            continue
        if ended and token not in CLOSERS:
            position, ended = 0, False
        position += 1
        positions[i] = min(position, np.iinfo(np.int16).max)
        ended = ended or token in SENTENCE_ENDS
    return positions
