"""Text corpora for character language models, annotated per character (LSTMVis' meta tracks).

A corpus is one stream of characters cut into documents; the documents' concatenation is the
stream, and every annotation has one value per character of it. An annotation describes the state
*after reading* its character (the opening quote of a string is already ``inside_string``; a closing
bracket already has the smaller depth), because that is what an LSTM state at that step can know.

Three corpora:

- ``python`` (the embedded default): source of pure-Python standard-library modules of the running
  interpreter, found with ``importlib.util.find_spec`` so it works on any install. Annotated with
  Python's own ``tokenize``: token type, bracket depth, indentation level, inside_string. Each
  module is cut at top-level ``def``/``class``/decorator lines into documents of at least
  ``min_doc_chars`` characters, so that documents are many enough to split and to batch.
- ``parens``: the proof-of-concept language of LSTMVis (Strobelt et al. 2017): the alphabet
  ``( ) 0 1 2 3 4``, parentheses always matched and nested at most 4 deep, and every digit equal to
  the nesting level where it stands. One document a line.
- ``file``: any UTF-8 text file. Cut at blank lines into documents of at least ``min_doc_chars``
  characters (and at most ``max_doc_chars``, cut after a line); annotated with character class,
  column, inside_quotes, paren_depth, word_start and word_position (``.py`` files get the Python
  annotations instead).
"""

from __future__ import annotations

import importlib.util
import io
import keyword
import token as token_module
import tokenize
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.datasets import DataError
from pipeline.datasets.files import read_bytes

CORPORA = ("python", "parens", "file")
# A text file is read whole; refuse one bigger than this before reading it (dataset.max_chars,
# 2,000,000 characters by default, refuses most long texts after decoding).
MAX_TEXT_BYTES = 64 * 1024 * 1024

# Pure-Python standard-library modules (no frozen or C-only ones), about 350,000 characters.
PYTHON_MODULES = (
    "textwrap", "string", "json", "json.decoder", "json.encoder", "json.scanner",
    "fnmatch", "glob", "colorsys", "heapq", "bisect", "queue", "sched", "calendar", "pprint",
    "reprlib", "contextlib", "copy", "csv", "html.parser", "fractions", "random",
    "getopt", "cmd", "graphlib",
)

TOKEN_TYPES = ("whitespace", "name", "keyword", "operator", "string", "comment", "number")
CHAR_CLASSES = ("letter", "digit", "space", "newline", "punctuation", "other")
OPENING, CLOSING = "([{", ")]}"
STRING_TOKENS = {"STRING", "FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END",
                 "TSTRING_START", "TSTRING_MIDDLE", "TSTRING_END"}
PARENS_MAX_DEPTH = 4


@dataclass
class Annotation:
    """One value per character; ``categories`` names the codes of a categorical annotation."""

    values: np.ndarray
    categories: tuple[str, ...] | None = None
    description: str = ""

    @property
    def kind(self) -> str:
        return "categorical" if self.categories else "numeric"

    def column(self) -> pd.Series | np.ndarray:
        """The values as stored in steps/text.parquet (labels for categorical annotations)."""
        if self.categories:
            return pd.Categorical.from_codes(self.values, categories=list(self.categories))
        return self.values


@dataclass
class TextCorpus:
    name: str
    source: str
    documents: list[str]
    names: list[str]
    annotations: dict[str, Annotation]
    notes: dict = field(default_factory=dict)

    def __post_init__(self):
        if not self.documents:
            raise DataError(f"{self.where}: the corpus has no documents")
        if len(self.names) != len(self.documents):
            raise DataError(f"{self.where}: {len(self.names)} names for {len(self.documents)} documents")
        if any(len(d) == 0 for d in self.documents):
            raise DataError(f"{self.where}: a document is empty")
        n = self.n_chars
        for key, annotation in self.annotations.items():
            if len(annotation.values) != n:
                raise DataError(f"{self.where}: annotation {key!r} has {len(annotation.values)} values "
                                f"for {n} characters")

    @property
    def where(self) -> str:
        """How errors name the corpus: its file's name, never a server path."""
        return str(self.notes.get("file") or self.name)

    @property
    def text(self) -> str:
        return "".join(self.documents)

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(d) for d in self.documents], dtype=np.int64)

    @property
    def starts(self) -> np.ndarray:
        """Offset of each document in the stream."""
        lengths = self.lengths
        return np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)

    @property
    def n_chars(self) -> int:
        return int(self.lengths.sum())

    def vocabulary(self) -> list[str]:
        """The sorted distinct characters of the stream: the language model's classes."""
        return sorted(set(self.text))

    def encode(self, vocabulary: list[str]) -> np.ndarray:
        index = {ch: i for i, ch in enumerate(vocabulary)}
        try:
            return np.fromiter((index[ch] for ch in self.text), dtype=np.int32, count=self.n_chars)
        except KeyError as error:
            raise DataError(f"{self.where}: character {error.args[0]!r} is not in the vocabulary") from None

    def annotation_info(self) -> dict:
        """For the manifest: what each annotation is, so the dashboard can offer it."""
        return {key: {"kind": a.kind, "description": a.description,
                      **({"categories": list(a.categories)} if a.categories else {})}
                for key, a in self.annotations.items()}

    def fingerprint(self) -> str:
        """A content hash: the data stage reruns when the text or its annotations change."""
        import hashlib
        digest = hashlib.sha256(self.text.encode("utf-8"))
        digest.update("\x00".join(self.names).encode("utf-8"))
        for key in sorted(self.annotations):
            digest.update(key.encode())
            digest.update(np.ascontiguousarray(self.annotations[key].values).tobytes())
        return digest.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# Loading

def load_corpus(corpus: str, source: str | None = None, *, seed: int = 0, n_documents: int = 1000,
                min_doc_chars: int = 1500, max_doc_chars: int = 8000,
                max_chars: int | None = None) -> TextCorpus:
    """The corpus named ``corpus`` (one of CORPORA); ``source`` is the file for ``file``."""
    if corpus == "python":
        return python_corpus(min_doc_chars=min_doc_chars, max_doc_chars=max_doc_chars)
    if corpus == "parens":
        return parens_corpus(n_documents=n_documents, seed=seed)
    if corpus == "file":
        if not source:
            raise DataError("the file corpus needs a source: --source FILE")
        return file_corpus(source, min_doc_chars=min_doc_chars, max_doc_chars=max_doc_chars,
                           max_chars=max_chars)
    raise DataError(f"unknown corpus {corpus!r}; expected one of {', '.join(CORPORA)}")


def python_source_files(modules=PYTHON_MODULES) -> list[tuple[str, Path]]:
    """(module, path of its .py file) for each module of this interpreter's standard library."""
    found = []
    for module in modules:
        spec = importlib.util.find_spec(module)
        origin = getattr(spec, "origin", None)
        if not origin or not origin.endswith(".py") or not Path(origin).is_file():
            raise DataError(f"the standard-library module {module!r} has no .py source in this Python "
                            f"installation (found {origin!r}); use --corpus file --source FILE instead")
        found.append((module, Path(origin)))
    return found


def python_corpus(modules=PYTHON_MODULES, min_doc_chars: int = 1500,
                  max_doc_chars: int = 8000) -> TextCorpus:
    documents, names, columns = [], [], []
    for module, path in python_source_files(modules):
        text = read_utf8(path, f"the standard-library module {module}")
        annotations = annotate_python(text, where=f"the standard-library module {module}")
        for start, end, title in _python_chunks(text, annotations, min_doc_chars, max_doc_chars):
            documents.append(text[start:end])
            names.append(f"{module}: {title}" if title else module)
            columns.append({k: a.values[start:end] for k, a in annotations.items()})
    merged = _concatenate(columns, template=annotate_python("x\n", where="template"))
    return TextCorpus(name="python", source="Python standard library: " + ", ".join(modules),
                      documents=documents, names=names, annotations=merged,
                      notes={"modules": list(modules)})


def parens_corpus(n_documents: int = 1000, seed: int = 0, min_length: int = 80,
                  max_length: int = 240, max_depth: int = PARENS_MAX_DEPTH) -> TextCorpus:
    """LSTMVis' parenthesis language: one document a line, the digits telling the nesting level.

    A random walk: at depth d, open a parenthesis (if d < max_depth), close one (if d > 0) or write
    the digit d, with weights 1 : 1 : 2; once the line is long enough, close what is open.
    """
    rng = np.random.default_rng(seed)
    documents, depths = [], []
    for _ in range(n_documents):
        target = int(rng.integers(min_length, max_length + 1))
        chars, depth_after = [], []
        depth = 0
        while len(chars) < target or depth > 0:
            if len(chars) >= target:
                move = "close"
            else:
                moves = ["digit", "digit"] + (["open"] if depth < max_depth else []) \
                    + (["close"] if depth > 0 else [])
                move = moves[int(rng.integers(len(moves)))]
            if move == "open":
                depth += 1
                chars.append("(")
            elif move == "close":
                depth -= 1
                chars.append(")")
            else:
                chars.append(str(depth))
            depth_after.append(depth)
        chars.append("\n")
        depth_after.append(0)
        documents.append("".join(chars))
        depths.append(np.array(depth_after, dtype=np.int16))
    annotations = {"depth": Annotation(np.concatenate(depths),
                                       description="parenthesis nesting level after the character")}
    return TextCorpus(name="parens", source=f"generated (seed {seed}, {n_documents} lines)",
                      documents=documents, names=[f"line {i + 1}" for i in range(n_documents)],
                      annotations=annotations, notes={"max_depth": max_depth})


def file_corpus(path: str | Path, min_doc_chars: int = 1500, max_doc_chars: int = 8000,
                max_chars: int | None = None) -> TextCorpus:
    path = Path(path)
    text = read_utf8(path)
    if max_chars is not None and len(text) > max_chars:
        raise DataError(f"{path.name}: {len(text):,} characters, more than dataset.max_chars={max_chars:,}; "
                        f"raise the limit or give a shorter file")
    if path.suffix == ".py":
        annotations = annotate_python(text, where=path.name)
    else:
        annotations = annotate_prose(text)
    bounds = _paragraph_chunks(text, min_doc_chars, max_doc_chars)
    documents = [text[s:e] for s, e in bounds]
    names = [f"{path.name}: {_first_words(text[s:e])}" for s, e in bounds]
    return TextCorpus(name=safe_stem(path), source=str(path), documents=documents, names=names,
                      annotations=annotations, notes={"file": path.name})


def read_utf8(path: Path, name: str | None = None) -> str:
    """The file's text, a byte-order mark dropped, CRLF and CR turned into LF; errors name the file
    (``name``, default its file name), byte offset and line. A regular file only, of at most
    ``MAX_TEXT_BYTES``."""
    name = name or Path(path).name
    data = read_bytes(path, name, MAX_TEXT_BYTES, " (the corpus is read whole)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise DataError(f"{name}: not UTF-8 text: byte 0x{data[error.start]:02x} at byte offset "
                        f"{error.start} (line {line}) cannot be decoded ({error.reason})") from None
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise DataError(f"{name}: the file is empty")
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise DataError(f"{name}: line {line} holds a NUL character; this is not a text file")
    return text


# ---------------------------------------------------------------------------------------------
# Annotations

def annotate_python(text: str, where: str) -> dict[str, Annotation]:
    """Token type, bracket depth, indentation level and inside_string for every character."""
    n = len(text)
    line_starts = np.concatenate([[0], np.flatnonzero(np.frombuffer(text.encode("utf-32-le"),
                                                                    dtype=np.uint32) == 10) + 1])

    def offset(position: tuple[int, int]) -> int:
        row, col = position
        if row - 1 >= len(line_starts):
            return n
        return min(int(line_starts[row - 1]) + col, n)

    token_type = np.zeros(n, dtype=np.int8)          # whitespace unless a token covers it
    inside = np.zeros(n, dtype=np.int8)
    depth_change = np.zeros(n + 1, dtype=np.int32)
    indent_change = np.zeros(len(line_starts) + 2, dtype=np.int32)
    code = {name: i for i, name in enumerate(TOKEN_TYPES)}
    fstring_open: list[int] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            kind = token_module.tok_name[tok.type]
            start, end = offset(tok.start), offset(tok.end)
            if kind == "INDENT":
                indent_change[tok.start[0]] += 1
            elif kind == "DEDENT":
                indent_change[tok.start[0]] -= 1
            elif kind == "NAME":
                token_type[start:end] = code["keyword" if keyword.iskeyword(tok.string) else "name"]
            elif kind == "OP":
                token_type[start:end] = code["operator"]
                if tok.string in OPENING:
                    depth_change[start] += 1
                elif tok.string in CLOSING:
                    depth_change[start] -= 1
            elif kind == "NUMBER":
                token_type[start:end] = code["number"]
            elif kind == "COMMENT":
                token_type[start:end] = code["comment"]
            elif kind in STRING_TOKENS:
                token_type[start:end] = code["string"]
                if kind == "STRING":
                    body = start + _quote_start(tok.string)
                    inside[body:max(body, end - _quote_length(tok.string))] = 1
                elif kind.endswith("_START"):
                    fstring_open.append(start + _quote_start(tok.string))
                elif kind.endswith("_END") and fstring_open:
                    inside[fstring_open.pop():start] = 1
    except (tokenize.TokenError, SyntaxError) as error:
        line = getattr(error, "lineno", None)
        if line is None and len(error.args) > 1 and isinstance(error.args[1], tuple) and error.args[1]:
            line = error.args[1][0]
        reason = error.args[0] if error.args else type(error).__name__
        raise DataError(f"{where}: line {line or '?'}: cannot tokenize as Python ({reason})") from None
    depth = np.maximum(np.cumsum(depth_change[:n]), 0).astype(np.int16)
    level_of_row = np.maximum(np.cumsum(indent_change), 0)     # index = 1-based row
    rows = np.searchsorted(line_starts, np.arange(n), side="right")   # 1-based row of each char
    indent = level_of_row[rows].astype(np.int16)
    return {
        "token_type": Annotation(token_type, TOKEN_TYPES, "Python token the character belongs to"),
        "depth": Annotation(depth, description="bracket nesting depth ( [ { after the character"),
        "indent": Annotation(indent, description="indentation level of the line"),
        "inside_string": Annotation(inside, description="1 while a string literal is open"),
    }


def _quote_start(literal: str) -> int:
    """Length of a string literal's prefix (r, b, f, ...): where its opening quote is."""
    return min((i for i in (literal.find('"'), literal.find("'")) if i >= 0), default=0)


def _quote_length(literal: str) -> int:
    body = literal[_quote_start(literal):]
    return 3 if len(body) >= 6 and body[:3] in ('"""', "'''") and body.endswith(body[:3]) else 1


def annotate_prose(text: str) -> dict[str, Annotation]:
    """Character class, column, inside_quotes, paren_depth, word start and position in word:
    structure any text has."""
    n = len(text)
    codes = np.array([_char_class(ch) for ch in text], dtype=np.int8)
    newline = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32) == 10
    positions = np.arange(n)
    last_newline = np.maximum.accumulate(np.where(newline, positions, -1))
    column = np.where(newline, 0, positions - last_newline).astype(np.int32)   # 1-based; 0 = newline
    quotes = np.zeros(n, dtype=np.int8)
    depth = np.zeros(n, dtype=np.int16)
    inside, level, previous = 0, 0, ""
    for i, ch in enumerate(text):
        if ch == "\n" and previous == "\n":      # a blank line ends every quotation and bracket
            inside, level = 0, 0
        if ch == "\u201c":
            inside = 1
        elif ch == "\u201d":
            inside = 0
        elif ch == '"':
            inside = 1 - inside
        elif ch in "([{":
            level += 1
        elif ch in ")]}":
            level = max(level - 1, 0)
        quotes[i], depth[i], previous = inside, level, ch
    word_start, word_position = word_positions(text)
    return {
        "char_class": Annotation(codes, CHAR_CLASSES, "letter, digit, space, newline, punctuation"),
        "column": Annotation(column, description="position in the line (1-based; 0 for the newline)"),
        "inside_quotes": Annotation(quotes, description="1 inside a quotation (\u201c \u201d or \")"),
        "paren_depth": Annotation(depth, description="nesting depth of ( [ { after the character"),
        "word_start": Annotation(word_start, description="1 at the first character of a word"),
        "word_position": Annotation(word_position, description="position in the word (1-based; 0 outside words)"),
    }


def word_positions(text: str) -> tuple[np.ndarray, np.ndarray]:
    """(word start, position in word) per character. A word is a run of letters and digits, with
    an apostrophe inside it (don't, Alice's) counted as part of it."""
    n = len(text)
    in_word = np.array([ch.isalnum() for ch in text], dtype=bool)
    for i in range(1, n - 1):
        if text[i] in "'\u2019" and in_word[i - 1] and in_word[i + 1]:
            in_word[i] = True
    starts = in_word & ~np.concatenate([[False], in_word[:-1]])
    run_id = np.cumsum(starts)
    first = np.flatnonzero(starts)
    position = np.zeros(n, dtype=np.int16)
    if len(first):
        inside = np.flatnonzero(in_word)
        position[inside] = inside - first[run_id[inside] - 1] + 1
    return starts.astype(np.int8), position


def _char_class(ch: str) -> int:
    if ch == "\n":
        return 3
    if ch.isspace():
        return 2
    if ch.isalpha():
        return 0
    if ch.isdigit():
        return 1
    return 4 if unicodedata.category(ch)[0] in "PS" else 5


# ---------------------------------------------------------------------------------------------
# Documents

def _python_chunks(text: str, annotations: dict[str, Annotation], min_chars: int,
                   max_chars: int) -> list[tuple[int, int, str]]:
    """(start, end, title) of documents cut before top-level def/class/decorator lines.

    Pieces shorter than ``min_chars`` join the one before; a document longer than ``max_chars``
    (a big class) is cut again before its methods, so that documents batch evenly in training.
    """
    depth, inside = annotations["depth"].values, annotations["inside_string"].values
    cuts = {0: [(0, "")], 1: []}
    offset, previous = 0, ""
    for line in text.splitlines(keepends=True):
        free = offset > 0 and depth[offset - 1] == 0 and inside[offset - 1] == 0
        for level, indent in ((0, ""), (1, "    ")):
            starts_block = line.startswith(tuple(indent + k for k in ("def ", "class ", "async def ", "@")))
            if free and starts_block and not previous.startswith(indent + "@"):
                cuts[level].append((offset, line.split("(")[0].split(":")[0].strip()[:60]))
        offset += len(line)
        if line.strip():
            previous = line
    documents = []
    for start, end, title in _merge_cuts(cuts[0], len(text), min_chars):
        if end - start <= max_chars:
            documents.append((start, end, title))
            continue
        inner = [(start, title)] + [(o, " / ".join(filter(None, (title, t))))
                                    for o, t in cuts[1] if start < o < end]
        documents += _merge_cuts(inner, end, min_chars)
    return documents


def _merge_cuts(cuts: list[tuple[int, str]], end: int, min_chars: int) -> list[tuple[int, int, str]]:
    """Pieces between consecutive cuts, each short one merged into the piece before it."""
    bounds = [offset for offset, _ in cuts] + [end]
    pieces: list[tuple[int, int, str]] = []
    for i, (offset, title) in enumerate(cuts):
        if pieces and pieces[-1][1] - pieces[-1][0] < min_chars:
            pieces[-1] = (pieces[-1][0], bounds[i + 1], pieces[-1][2])
        else:
            pieces.append((offset, bounds[i + 1], title))
    if len(pieces) > 1 and pieces[-1][1] - pieces[-1][0] < min_chars // 2:
        last = pieces.pop()
        pieces[-1] = (pieces[-1][0], last[1], pieces[-1][2])
    return pieces


def _paragraph_chunks(text: str, min_chars: int, max_chars: int) -> list[tuple[int, int]]:
    """Documents that end after a blank line, each at least ``min_chars`` long (but the last);
    one longer than ``max_chars`` (a text with few blank lines) is cut after a line instead."""
    bounds, start, i = [], 0, 0
    while True:
        i = text.find("\n\n", i)
        if i < 0:
            break
        end = i + 2
        while end < len(text) and text[end] == "\n":
            end += 1
        if end - start >= min_chars and end < len(text):
            bounds.append((start, end))
            start = end
        i = end
    bounds.append((start, len(text)))
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < min_chars // 4:
        last = bounds.pop()
        bounds[-1] = (bounds[-1][0], last[1])
    capped = []
    for start, end in bounds:
        while end - start > max_chars:
            cut = text.rfind("\n", start, start + max_chars) + 1
            cut = cut if cut > start else start + max_chars
            capped.append((start, cut))
            start = cut
        capped.append((start, end))
    return capped


def _concatenate(columns: list[dict], template: dict[str, Annotation]) -> dict[str, Annotation]:
    return {key: Annotation(np.concatenate([c[key] for c in columns]), a.categories, a.description)
            for key, a in template.items()}


def _first_words(text: str, limit: int = 40) -> str:
    words = " ".join(text.split())
    return words if len(words) <= limit else words[:limit].rsplit(" ", 1)[0] + "\u2026"


def safe_stem(path: Path) -> str:
    stem = "".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in path.stem).strip("-.")
    return stem or "file"


# ---------------------------------------------------------------------------------------------
# Splits

def split_documents(n_documents: int, train: float = 0.8, seed: int = 0) -> np.ndarray:
    """``train`` / ``validation`` / ``test`` per document: a shuffled split, the rest halved.

    With three documents or more, every split gets at least one.
    """
    if not 0 < train < 1:
        raise DataError(f"split.train must be between 0 and 1, not {train!r}")
    if n_documents < 3:
        raise DataError(f"{n_documents} documents cannot be split into train, validation and test; "
                        f"give a longer text or lower dataset.min_doc_chars")
    order = np.random.default_rng(seed).permutation(n_documents)
    n_train = min(max(int(round(train * n_documents)), 1), n_documents - 2)
    n_validation = max((n_documents - n_train) // 2, 1)
    splits = np.empty(n_documents, dtype=object)
    splits[order[:n_train]] = "train"
    splits[order[n_train:n_train + n_validation]] = "validation"
    splits[order[n_train + n_validation:]] = "test"
    return splits
