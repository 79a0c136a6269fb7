"""Per-step prediction tables and what they add up to: per-example columns and metrics per split.

One builder for every run kind. A classification run scores the example's class at every step (and
reads its prediction at the last step); a language model scores the next token at every step but the
last of a sequence. Blocks hold whole sequences (``layout.sequence_blocks``), so an example's final
prediction is known while its rows are written (``predicted_prob``: the probability of the final
prediction at every step, for "confidence over time").
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.runformat import CLASSIFICATION, SPLITS

LN2 = math.log(2.0)
CLASSIFICATION_COLUMNS = ("prediction", "prediction_name", "confidence", "true_prob", "correct",
                          "decisive_step", "decisive_fraction", "overtaken_step")
LANGUAGE_MODEL_COLUMNS = ("predicted", "correct_chars", "accuracy", "loss", "bits_per_char")
UNITS = {"char": "characters", "token": "tokens"}      # a language model's step -> its count's name


def top_k(probabilities: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most probable classes of each row and their probabilities, most probable first."""
    k = min(k, probabilities.shape[1])
    candidates = np.argpartition(-probabilities, k - 1, axis=1)[:, :k]
    candidate_probs = np.take_along_axis(probabilities, candidates, axis=1)
    ranked = np.argsort(-candidate_probs, axis=1, kind="stable")
    return (np.take_along_axis(candidates, ranked, axis=1).astype(np.int32),
            np.take_along_axis(candidate_probs, ranked, axis=1).astype(np.float32))


def next_token_targets(token_ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The index of the next token of each row; -1 at a sequence's last row (or an unknown token)."""
    target = np.roll(np.asarray(token_ids, np.int64), -1)
    ends = np.cumsum(np.asarray(lengths, np.int64)) - 1
    target[ends] = -1
    return target.astype(np.int32)


class Predictions:
    """Builds steps/predictions.parquet block by block and keeps what the examples table needs.

    ``labels`` (per example) make it a classifier's; else ``targets`` (per row, -1 for none) score
    a language model's next-token predictions; with neither, only the top-k are written. ``unit``
    names a language model's step in its columns and metrics: ``char`` (correct_chars,
    bits_per_char, characters) or ``token`` (correct_tokens, bits_per_token, tokens, and the
    perplexity a word model is read by).
    """

    def __init__(self, kind: str, lengths: np.ndarray, names: list[str], k: int,
                 labels: np.ndarray | None = None, targets: np.ndarray | None = None, unit: str = "char"):
        if unit not in UNITS:
            raise ValueError(f"unit must be one of {', '.join(UNITS)}, not {unit!r}")
        self.kind, self.names, self.k, self.unit = kind, list(names), int(k), unit
        self.lengths = np.asarray(lengths, np.int64)
        self.labels = None if labels is None else np.asarray(labels, np.int64)
        self.targets = targets
        n = len(self.lengths)
        self.last_row = np.cumsum(self.lengths) - 1
        self.prediction = np.full(n, -1, np.int32)
        self.confidence = np.full(n, np.nan, np.float32)
        self.true_prob = np.full(n, np.nan, np.float32)
        self.loss_sum, self.hits, self.counted = np.zeros(n), np.zeros(n), np.zeros(n)
        # The decisive step: after it the top class never changes again; for a mistake, the step
        # after which the wrong class stays ahead of the true one (-1: no per-step predictions).
        self.decisive = np.full(n, -1, np.int32)
        self.overtaken = np.full(n, -1, np.int32)

    def block(self, probabilities: np.ndarray, ids: np.ndarray, t: np.ndarray, rows: np.ndarray) -> pa.Table:
        """The table rows of one block of whole sequences (``rows``: their row numbers)."""
        probabilities = np.asarray(probabilities, np.float32)
        n = len(rows)
        top_classes, top_probs = top_k(probabilities, self.k)
        at_last = np.flatnonzero(self.last_row[ids] == rows)
        final = ids[at_last]
        self.prediction[final] = top_classes[at_last, 0]
        self.confidence[final] = top_probs[at_last, 0]
        columns: dict[str, np.ndarray] = {"example_id": ids.astype(np.int32), "t": t.astype(np.int32)}
        if self.kind == CLASSIFICATION and self.labels is not None:
            true_prob = probabilities[np.arange(n), self.labels[ids]]
            self.true_prob[final] = true_prob[at_last]
            columns["true_prob"] = true_prob.astype(np.float32)
        elif self.targets is not None:
            target = self.targets[rows]
            counted = target >= 0
            true_prob = np.where(counted, probabilities[np.arange(n), np.maximum(target, 0)], np.nan)
            self.true_prob[final] = true_prob[at_last]
            with np.errstate(divide="ignore"):
                losses = -np.log(np.maximum(true_prob, 1e-12))
            np.add.at(self.loss_sum, ids[counted], losses[counted])
            np.add.at(self.hits, ids[counted], (top_classes[:, 0] == target)[counted])
            np.add.at(self.counted, ids[counted], 1)
            columns["target"] = target.astype(np.int32)
            columns["true_prob"] = true_prob.astype(np.float32)
        for j in range(top_classes.shape[1]):
            columns[f"top{j + 1}_class"] = top_classes[:, j]
            columns[f"top{j + 1}_prob"] = top_probs[:, j]
        if self.kind == CLASSIFICATION:
            columns["predicted_prob"] = probabilities[np.arange(n), self.prediction[ids]].astype(np.float32)
            self._decisive_steps(top_classes[:, 0], columns, ids, t)
        return pa.table(columns)

    def _decisive_steps(self, top1: np.ndarray, columns: dict, ids: np.ndarray, t: np.ndarray) -> None:
        """Per example of the block (whole sequences): the step after its last change of top class,
        and for a mistake the step after the wrong class last fell behind the true one."""
        examples = np.unique(ids)
        after = np.zeros(len(self.prediction), np.int64)           # last "still undecided" t + 1
        changing = top1 != self.prediction[ids]
        np.maximum.at(after, ids[changing], t[changing] + 1)
        self.decisive[examples] = after[examples]
        if "true_prob" in columns and self.labels is not None:
            behind = np.zeros(len(self.prediction), np.int64)
            wrong = self.prediction[ids] != self.labels[ids]
            ahead = columns["predicted_prob"] > columns["true_prob"]
            not_yet = wrong & ~ahead
            np.maximum.at(behind, ids[not_yet], t[not_yet] + 1)
            mistakes = examples[self.prediction[examples] != self.labels[examples]]
            self.overtaken[mistakes] = behind[mistakes]

    def per_example(self) -> pd.DataFrame:
        """The examples table's prediction columns (CLASSIFICATION_COLUMNS or LANGUAGE_MODEL_COLUMNS)."""
        if self.kind == CLASSIFICATION:
            known = self.prediction >= 0
            names = np.asarray(self.names + [""], dtype=object)[np.where(known, self.prediction, -1)]
            frame = pd.DataFrame({"prediction": self.prediction, "prediction_name": names,
                                  "confidence": self.confidence, "true_prob": self.true_prob})
            frame["correct"] = (self.prediction == self.labels) if self.labels is not None else False
            frame["decisive_step"] = self.decisive
            with np.errstate(invalid="ignore", divide="ignore"):
                frame["decisive_fraction"] = np.where(self.decisive >= 0, self.decisive / self.lengths,
                                                      np.nan).astype(np.float32)
            frame["overtaken_step"] = self.overtaken
            return frame
        with np.errstate(invalid="ignore", divide="ignore"):
            frame = pd.DataFrame({
                "predicted": self.counted.astype(np.int32),
                f"correct_{self.unit}s": self.hits.astype(np.int32),
                "accuracy": (self.hits / self.counted).astype(np.float32),
                "loss": (self.loss_sum / self.counted).astype(np.float32),
            })
        frame[f"bits_per_{self.unit}"] = (frame["loss"] / LN2).astype(np.float32)
        return frame

    def metrics(self, split: np.ndarray) -> dict:
        return split_metrics(self.kind, self.per_example(), split, self.unit)


def final_predictions(probabilities: np.ndarray, labels: np.ndarray | None, names: list[str]) -> Predictions:
    """A classifier's per-example predictions from the model's own output (one row per example),
    for models whose head cannot be applied at every step (no per-step table then)."""
    probabilities = np.asarray(probabilities, np.float32)
    n = len(probabilities)
    found = Predictions(CLASSIFICATION, np.ones(n, np.int64), names, 1, labels=labels)
    found.block(probabilities, np.arange(n), np.zeros(n, np.int32), np.arange(n))
    found.decisive[:] = -1                  # no per-step predictions: no decisive step either
    found.overtaken[:] = -1
    return found


def split_metrics(kind: str, per_example: pd.DataFrame, split: np.ndarray, unit: str = "char") -> dict:
    """``{split: {...}}``: accuracy and loss (cross-entropy, nats) of a classifier's final
    predictions; accuracy, loss, bits_per_char and characters of a language model's next
    characters (``unit="token"``: bits_per_token, perplexity and tokens of its next words)."""
    split = np.asarray(split)
    metrics = {}
    for name in SPLITS:
        mask = split == name
        if not mask.any():
            continue
        rows = per_example[mask]
        if kind == CLASSIFICATION:
            if "correct" not in rows or rows["true_prob"].isna().all():
                metrics[name] = {}
                continue
            loss = -np.log(np.clip(rows["true_prob"].to_numpy(np.float64), 1e-7, 1.0))
            metrics[name] = {"accuracy": round(float(rows["correct"].mean()), 6),
                             "loss": round(float(loss.mean()), 6)}
            continue
        n = float(rows["predicted"].sum()) if "predicted" in rows else 0.0
        if n == 0:
            metrics[name] = {}
            continue
        loss = float((rows["loss"].fillna(0) * rows["predicted"]).sum() / n)
        metrics[name] = {"accuracy": round(float(rows[f"correct_{unit}s"].sum()) / n, 6),
                         "loss": round(loss, 6), f"bits_per_{unit}": round(loss / LN2, 6)}
        if unit == "token":
            metrics[name]["perplexity"] = round(math.exp(min(loss, 700.0)), 4)
        metrics[name][UNITS[unit]] = int(n)
    return metrics
