"""Text the language model writes: from a seed, one character (token) at a time, with every cell's
state after each one, so a view can colour the generated text by a cell (the Keras seed-text study).

A word model's seed is cut by the run's own tokenizer (``pipeline.analysis.words``); a seed word
outside the vocabulary is read as ``<unk>``, as the model read such words in training, and named in
``Written.unknown``. Its written words are spaced by ``words.written_pieces``.

The same NumPy recurrence as extraction (``pipeline.analysis.lstm``), from the run's weights.npz:
no TensorFlow. The seed is read from a zero state, as extraction reads every document; each next
token is drawn from the softmax head at ``temperature`` (0: always the most probable one) with a
NumPy generator seeded by ``random_seed``, so the same inputs write the same text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.analysis.lstm import NetworkWeights, lstm_step

from pipeline.analysis import words

MAX_LENGTH = 5000          # tokens written at most in one call
MAX_SEED = 2000            # characters of a seed at most


@dataclass(frozen=True)
class Written:
    """The seed and what followed it, with each step's states and the probabilities it saw."""

    tokens: list[str]                   # the seed's tokens, then the written ones, each as shown
    n_seed: int
    states: dict[tuple[int, str], np.ndarray]   # (layer, "h" | "c" | gate) -> (steps, units)
    chosen_probability: np.ndarray      # (written,): the probability each written token had
    unknown: tuple[str, ...] = ()       # seed words outside a word model's vocabulary (read as <unk>)

    @property
    def text(self) -> str:
        return "".join(self.tokens)


def encode_seed(seed: str, vocabulary: Sequence[str]) -> np.ndarray:
    """The seed as token ids; a ValueError names the characters the model has never seen."""
    if not seed:
        raise ValueError("type a seed: the model needs at least one character to start from")
    if len(seed) > MAX_SEED:
        raise ValueError(f"the seed has {len(seed):,} characters; at most {MAX_SEED:,}")
    index = {token: i for i, token in enumerate(vocabulary)}
    unknown = sorted({ch for ch in seed if ch not in index})
    if unknown:
        shown = ", ".join(repr(ch) for ch in unknown[:10])
        raise ValueError(f"the seed has characters the model's vocabulary lacks: {shown}")
    return np.array([index[ch] for ch in seed], np.int64)


def encode_word_seed(seed: str, vocabulary: Sequence[str], tokenizer: str) -> tuple[np.ndarray, list[str], list[str]]:
    """A word model's seed: (token ids, each token's shown text, the words read as ``<unk>``)."""
    if not seed.strip():
        raise ValueError("type a seed: the model needs at least one word to start from")
    if len(seed) > MAX_SEED:
        raise ValueError(f"the seed has {len(seed):,} characters; at most {MAX_SEED:,}")
    found = words.tokenize(seed, tokenizer)
    ids, unknown = words.encode(found.tokens, vocabulary)
    names = sorted({token for token, u in zip(found.tokens, unknown) if u})
    return ids.astype(np.int64), found.shown(seed), names


def next_token(probabilities: np.ndarray, temperature: float, rng: np.random.Generator) -> int:
    if temperature <= 0:
        return int(np.argmax(probabilities))
    logits = np.log(np.maximum(probabilities.astype(np.float64), 1e-30)) / temperature
    weights = np.exp(logits - logits.max())
    return int(rng.choice(len(weights), p=weights / weights.sum()))


def write(weights: NetworkWeights, vocabulary: Sequence[str], seed: str, length: int,
          temperature: float = 1.0, random_seed: int = 0, tokenizer: str | None = None) -> Written:
    """``length`` tokens after ``seed``; states for every step of seed and written text.
    ``tokenizer`` (one of ``words.TOKENIZERS``) makes it a word model's: tokens are words."""
    if weights.embedding is None or weights.head_kernel is None:
        raise ValueError("only a language model's run can write text (its weights have no embedding and head)")
    if not 0 <= length <= MAX_LENGTH:
        raise ValueError(f"length must be between 0 and {MAX_LENGTH:,}, not {length}")
    if not 0 <= temperature <= 10:
        raise ValueError(f"temperature must be between 0 and 10, not {temperature}")
    if tokenizer is None:
        ids, shown, unknown = list(encode_seed(seed, vocabulary)), list(seed), []
    else:
        encoded, shown, unknown = encode_word_seed(seed, vocabulary, tokenizer)
        ids = list(encoded)
    n_seed = len(ids)
    rng = np.random.default_rng(int(random_seed))
    head_kernel = weights.head_kernel.astype(np.float32)
    head_bias = weights.head_bias.astype(np.float32)
    h = [np.zeros((1, layer.units), np.float32) for layer in weights.layers]
    c = [np.zeros((1, layer.units), np.float32) for layer in weights.layers]
    recorded: dict[tuple[int, str], list[np.ndarray]] = {}
    chosen: list[float] = []
    total = len(ids) + length
    for step in range(total):
        x = weights.embedding[[ids[step]]].astype(np.float32)
        for index, layer in enumerate(weights.layers):
            tensors = lstm_step(layer, x, h[index], c[index])
            h[index], c[index] = tensors["h"], tensors["c"]
            for kind, value in tensors.items():
                recorded.setdefault((index, kind), []).append(value[0])
            x = h[index]
        if step >= len(ids) - 1 and len(ids) < total:
            logits = x @ head_kernel + head_bias
            probabilities = np.exp(logits[0] - logits[0].max())
            probabilities /= probabilities.sum()
            token = next_token(probabilities, temperature, rng)
            chosen.append(float(probabilities[token]))
            ids.append(token)
    written = [vocabulary[i] for i in ids[n_seed:]]
    if tokenizer is not None:
        previous = None if seed[-1:].isspace() else vocabulary[ids[n_seed - 1]]
        written = words.written_pieces(written, tokenizer, previous)
    return Written(shown + written, n_seed, {key: np.stack(values) for key, values in recorded.items()},
                   np.array(chosen, np.float32), tuple(unknown))


def top_cells(states: np.ndarray, first: int, top: int = 10) -> list[tuple[int, float]]:
    """The cells that vary most over the written part (rows ``first`` on): (cell, std), largest first."""
    part = states[first:] if len(states) > first else states
    spread = part.std(axis=0)
    order = np.argsort(-spread, kind="stable")[:top]
    return [(int(cell), float(spread[cell])) for cell in order]
