"""Word tokens: how a word-level language model cuts text, and how its tokens are shown.

The pipeline tokenizes its corpus with these functions and the dashboard tokenizes a seed the
model is to continue with the same ones, so both live here (pure, no framework).

Tokens cover the text: a token's *shown text* is the token and the whitespace after it (the first
token also takes the text's leading whitespace), so the shown texts joined give the text back
exactly, and the views show words with their original spacing.

Tokenizers:

- ``prose``: words (letters and digits, with an apostrophe or hyphen inside: don't, Alice's,
  Rabbit-Hole), numbers (3, 3.0, 1,000), punctuation (each mark its own token; ``--`` and ``...``
  one token). A single line break is spacing (text wrapped at a width); a paragraph break (a
  blank line) is the token ``PARAGRAPH``, shown as the blank line it was.
- ``python``: Python's own ``tokenize`` (names, keywords, operators, numbers, string literals
  whole), every line end the token ``PARAGRAPH`` (newline), comments cut into prose words; the
  indentation is spacing.
- ``symbols``: every non-whitespace character a token, a line end too (the parenthesis language).
"""

from __future__ import annotations

import io
import keyword
import re
import token as token_module
import tokenize as python_tokenize
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

TOKENIZERS = ("prose", "python", "symbols")
PARAGRAPH = "\n"             # the token of a paragraph break (prose) or a line end (python, symbols)
UNKNOWN = "<unk>"            # every word outside the vocabulary
DEFAULT_VOCABULARY = 10_000
PROSE_KINDS = ("word", "number", "punctuation", "paragraph")
PYTHON_KINDS = ("name", "keyword", "operator", "number", "string", "comment", "newline")
OPENING = "([{\u201c\u2018\u00ab"             # no space after these when writing
CLOSING = ")]}\u201d\u2019\u00bb,.;:!?%"      # ... and none before these

_PROSE = re.compile(r"(?P<paragraph>\n[^\S\n]*\n\s*)"
                    r"|(?P<number>\d+(?:[.,]\d+)+(?![^\W_]))"
                    r"|(?P<word>[^\W_]+(?:['\u2019\-][^\W_]+)*)"
                    r"|(?P<punctuation>-{2,}|\.{2,}|\S)")


@dataclass(frozen=True)
class Tokens:
    """The tokens of one text: what each is, where it starts and ends in the text, its kind."""

    tokens: list[str]
    starts: np.ndarray          # offset of each token in the text
    ends: np.ndarray            # offset after the token itself (its spacing follows)
    kinds: list[str]

    def __len__(self) -> int:
        return len(self.tokens)

    def shown(self, text: str) -> list[str]:
        """Each token's shown text: from its start to the next token's (from 0 for the first)."""
        bounds = [0, *self.starts[1:].tolist(), len(text)]
        return [text[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def tokenize(text: str, tokenizer: str) -> Tokens:
    """The tokens of ``text`` (``tokenizer``: one of TOKENIZERS)."""
    if tokenizer == "prose":
        return prose_tokens(text)
    if tokenizer == "python":
        return python_tokens(text)
    if tokenizer == "symbols":
        return symbol_tokens(text)
    raise ValueError(f"unknown tokenizer {tokenizer!r}; expected one of {', '.join(TOKENIZERS)}")


def prose_tokens(text: str, offset: int = 0) -> Tokens:
    found = list(_prose_matches(text, offset))
    return _tokens(found)


def _prose_matches(text: str, offset: int = 0) -> Iterable[tuple[str, int, int, str]]:
    for match in _PROSE.finditer(text):
        kind = match.lastgroup or "punctuation"
        if kind == "word" and match.group().isdigit():
            kind = "number"
        start = match.start() + offset
        if kind == "paragraph":
            yield PARAGRAPH, start, start + 1, kind
        else:
            yield match.group(), start, match.end() + offset, kind


def python_tokens(text: str) -> Tokens:
    """Python source as its tokens; a text that does not tokenize to the end (a seed that stops
    inside a bracket or a string) keeps the tokens read so far and takes the rest as prose."""
    line_starts = np.concatenate([[0], np.flatnonzero(np.frombuffer(text.encode("utf-32-le"),
                                                                    dtype=np.uint32) == 10) + 1])

    def offset(position: tuple[int, int]) -> int:
        row, col = position
        return len(text) if row - 1 >= len(line_starts) else min(int(line_starts[row - 1]) + col, len(text))

    found: list[tuple[str, int, int, str]] = []
    read = 0
    try:
        for tok in python_tokenize.generate_tokens(io.StringIO(text).readline):
            name = token_module.tok_name[tok.type]
            start, end = offset(tok.start), offset(tok.end)
            if name in ("NEWLINE", "NL"):
                if tok.string:
                    found.append((PARAGRAPH, start, start + 1, "newline"))
            elif name == "COMMENT":
                found += [(t, s, e, "comment") for t, s, e, _ in _prose_matches(tok.string, start)]
            elif name == "NAME":
                found.append((tok.string, start, end, "keyword" if keyword.iskeyword(tok.string) else "name"))
            elif name == "NUMBER":
                found.append((tok.string, start, end, "number"))
            elif name == "OP":
                found.append((tok.string, start, end, "operator"))
            elif name.startswith(("STRING", "FSTRING", "TSTRING")) and tok.string:
                found.append((tok.string, start, end, "string"))
            elif name == "ERRORTOKEN" and tok.string.strip():
                found.append((tok.string, start, end, "operator"))
            read = max(read, end)
    except (python_tokenize.TokenError, SyntaxError):
        found += [(t, s, e, "name") for t, s, e, _ in _prose_matches(text[read:], read)]
    return _tokens(found)


def symbol_tokens(text: str) -> Tokens:
    found = [(ch, i, i + 1, "paragraph" if ch == "\n" else "symbol")
             for i, ch in enumerate(text) if ch == "\n" or not ch.isspace()]
    return _tokens(found)


def _tokens(found: Sequence[tuple[str, int, int, str]]) -> Tokens:
    return Tokens([f[0] for f in found], np.array([f[1] for f in found], np.int64),
                  np.array([f[2] for f in found], np.int64), [f[3] for f in found])


# ---------------------------------------------------------------------------------------------
# Vocabulary

def capped_vocabulary(tokens: Iterable[str], cap: int = DEFAULT_VOCABULARY) -> list[str]:
    """``UNKNOWN`` and the ``cap - 1`` most frequent tokens (ties: the earlier seen first).

    ``UNKNOWN`` is always in it (index 0): the test text and a typed seed may hold words the
    training text lacks."""
    if cap < 2:
        raise ValueError(f"the vocabulary needs at least 2 entries (the unknown token and one word), not {cap}")
    counts = Counter(token for token in tokens if token != UNKNOWN)
    return [UNKNOWN] + [token for token, _ in counts.most_common(cap - 1)]


def encode(tokens: Sequence[str], vocabulary: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(ids, unknown): each token's vocabulary index, ``UNKNOWN``'s for a word outside it."""
    index = {token: i for i, token in enumerate(vocabulary)}
    unknown_id = index.get(UNKNOWN, -1)
    ids = np.fromiter((index.get(token, -1) for token in tokens), np.int64, len(tokens))
    unknown = ids < 0
    if unknown.any() and unknown_id < 0:
        missing = sorted({token for token, u in zip(tokens, unknown) if u})[:10]
        raise ValueError(f"tokens outside the vocabulary, which has no {UNKNOWN}: {', '.join(map(repr, missing))}")
    ids[unknown] = unknown_id
    return ids.astype(np.int32), unknown


# ---------------------------------------------------------------------------------------------
# Writing

def written_pieces(tokens: Sequence[str], tokenizer: str, previous: str | None = None) -> list[str]:
    """The shown text of tokens a model wrote, after ``previous`` (the token before them; None at
    the start of a text or after whitespace). Symbols are written as they are; words get a space
    between them, but none before closing punctuation or after opening punctuation, and straight
    double quotes alternate between opening and closing. A ``PARAGRAPH`` token is written as a
    blank line (prose) or a line end (python, symbols)."""
    pieces, quotes = [], 0
    for token in tokens:
        if tokenizer == "symbols":
            gap = ""
        elif token == PARAGRAPH:
            gap = "\n" if tokenizer == "prose" else ""
        elif previous is None or previous == PARAGRAPH or token in CLOSING or previous in OPENING:
            gap = ""
        elif token == '"':
            gap = "" if quotes % 2 else " "
        else:
            gap = "" if previous == '"' and quotes % 2 else " "
        quotes += token == '"'
        pieces.append(gap + token)
        previous = token
    return pieces
