"""Run kind ``language_model``: a character (or word) LSTM trained here on a corpus, every step extracted.

Stages: data -> train -> extract -> project.

- data: the corpus (``pipeline.datasets.text``) -> examples.parquet (one row per document: example_id,
  name, split, length, row_start, lines) and steps/text.parquet (example_id, t, char and one column
  per annotation: the dashboard's meta tracks). With ``dataset.tokens: words`` a row is a word
  (``pipeline.datasets.words``): ``char`` is its shown text (the word and the spacing after it, so
  the rows joined are the text), ``token`` the word itself; the vocabulary is the
  ``dataset.vocabulary`` most frequent training words and ``<unk>`` for the rest.
- train: ``models.char_lm`` -> models/char_lm.keras, models/weights.npz, history.parquet.
- extract: ``core.steps`` in lanes (each document from a zero state, as in training): per layer
  h, c and gates, the top-k next characters and the true next character's probability, metrics.
- project: PCA paths of the documents through state space (``pipeline.project``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline import project
from pipeline.core import steps
from pipeline.core.config import merge
from pipeline.core.errors import DataError
from pipeline.core.examples import examples_table, with_predictions
from pipeline.analysis.layout import row_ids
from pipeline.analysis.lstm import NetworkWeights
from pipeline.core.predictions import Predictions, next_token_targets
from pipeline.core.progress import QUIET, Progress
from pipeline.core.stages import RunSummary, Stage, StageContext, library_versions, run_stages, source_listing
from pipeline.analysis import words
from pipeline.datasets import text as corpora
from pipeline.datasets import words as word_corpora
from pipeline.runformat import (EXAMPLES_FILE, HISTORY_FILE, LANGUAGE_MODEL, SPLITS, TEXT_FILE, WEIGHTS_FILE,
                                Run, stable_hash)

DEFAULT_RUNS_DIR = Path("data") / "runs"
MODEL_FILE = "models/char_lm.keras"

BASE = {
    "kind": LANGUAGE_MODEL,
    "dataset": {
        "name": "python",
        "corpus": "python",        # python | parens | file
        "source": None,            # the file of the "file" corpus
        "min_doc_chars": 1500,     # python and file corpora: documents are at least this long
        "max_doc_chars": 8000,     # longer documents are cut (python: before a method; file: after a line)
        "n_documents": 1000,       # parens corpus: lines generated
        "max_chars": 2_000_000,    # file corpus: refuse longer texts (the run would be huge)
        "seed": 0,                 # parens corpus
    },
    "split": {"train": 0.8, "seed": 0},      # by document; the rest is halved
    "model": {"units": [128], "embedding": 32, "dropout": 0.0},
    "train": {
        "epochs": 14,
        "batch_size": 32,          # documents trained side by side (lanes)
        "window": 50,              # characters per gradient step (truncated BPTT; state carried on)
        "learning_rate": 0.008,
        "lr_decay": 0.85,          # learning rate x this after every epoch
        "clipnorm": 5.0,
        "patience": 4,
        "max_seconds": None,       # stop after the epoch that passes this many seconds
        "seed": 0,
    },
    "extract": {"top_k": 5, "lanes": 64, "block_rows": 65536},
    # Paths of documents through state space: PCA only (an autoencoder per million characters
    # would cost more than the model), fitted on a sample of the training characters.
    "project": merge(project.DEFAULTS, {"methods": ["pca"], "max_vectors": 20000}),
}

CORPUS_OVERRIDES = {
    "python": {},
    "parens": {"model": {"units": [64], "embedding": 16},
               "train": {"epochs": 10, "window": 64, "learning_rate": 0.01, "lr_decay": 0.9}},
    "file": {},
}
TOKENS = ("chars", "words")
# A word model reads fewer, rarer steps: a wider embedding, some dropout, shorter windows (words).
WORD_OVERRIDES = {"model": {"embedding": 64, "dropout": 0.2},
                  "train": {"window": 35, "learning_rate": 0.004}}


def default_config(corpus: str, source: str | None = None, tokens: str = "chars",
                   vocabulary: int = words.DEFAULT_VOCABULARY) -> dict:
    """A character run's config; ``tokens="words"`` adds ``dataset.tokens`` and ``dataset.vocabulary``
    (a character run's config, and so its stage hashes, stay as they were)."""
    if corpus not in corpora.CORPORA:
        raise DataError(f"unknown corpus {corpus!r}; expected one of {', '.join(corpora.CORPORA)}")
    if tokens not in TOKENS:
        raise DataError(f"unknown tokens {tokens!r}; expected one of {', '.join(TOKENS)}")
    config = merge(BASE, CORPUS_OVERRIDES[corpus])
    name = corpus if corpus != "file" else corpora.safe_stem(Path(source or "file"))
    config["dataset"].update({"corpus": corpus, "source": source, "name": name})
    if tokens == "words":
        if int(vocabulary) < 2:
            raise DataError(f"--vocabulary must be at least 2 (the unknown token and one word), not {vocabulary}")
        config = merge(config, WORD_OVERRIDES)
        config["dataset"].update({"tokens": "words", "vocabulary": int(vocabulary)})
    return config


def is_words(config: dict) -> bool:
    return config["dataset"].get("tokens", "chars") == "words"


def unit(config: dict) -> str:
    """What a step is, in metric names: bits_per_char or bits_per_token."""
    return "token" if is_words(config) else "char"


def default_run_id(config: dict) -> str:
    return f"text-{config['dataset']['name']}" + ("-words" if is_words(config) else "")


def load_corpus(dataset: dict) -> corpora.TextCorpus:
    return corpora.load_corpus(dataset["corpus"], dataset.get("source"), seed=int(dataset["seed"]),
                               n_documents=int(dataset["n_documents"]),
                               min_doc_chars=int(dataset["min_doc_chars"]),
                               max_doc_chars=int(dataset["max_doc_chars"]), max_chars=dataset.get("max_chars"))


def stage_hashes(config: dict) -> dict[str, str]:
    """The chain of input hashes; the Python corpus also depends on the interpreter."""
    dataset = config["dataset"]
    origin = source_listing(dataset["source"]) if dataset.get("source") else None
    if dataset["corpus"] == "python":
        origin = [sys.version, list(corpora.PYTHON_MODULES)]
    data = stable_hash("data", LANGUAGE_MODEL, dataset, config["split"], origin)
    train = stable_hash("train", data, config["model"], config["train"])
    extract = stable_hash("extract", train, config["extract"])
    return {"data": data, "train": train, "extract": extract,
            "project": stable_hash("project", extract, config.get("project"))}


def run_language_model(config: dict, runs_dir=DEFAULT_RUNS_DIR, run_id: str | None = None,
                       force: bool = False, progress: Progress = QUIET, scheduler=None) -> RunSummary:
    """Build (or resume) the text run of ``config`` (``scheduler``: as ``run_classification``'s)."""
    stages = [Stage("data", _data_stage), Stage("train", _train_stage), Stage("extract", _extract_stage),
              Stage("project", project.project_stage)]
    return run_stages(stages, config, stage_hashes(config), runs_dir, run_id or default_run_id(config),
                      force, progress, scheduler)


class Prepared:
    """What train and extract read: the encoded stream, its documents and splits."""

    def __init__(self, ids, starts, lengths, split, vocabulary, examples):
        self.ids, self.starts, self.lengths = ids, starts, lengths
        self.split, self.vocabulary, self.examples = split, vocabulary, examples


def _prepared(ctx: StageContext) -> Prepared:
    if "prepared" not in ctx.memo:
        ctx.memo["prepared"] = read_prepared(ctx.path)
    return ctx.memo["prepared"]


def _data_stage(ctx: StageContext) -> str:
    config = ctx.config
    corpus = load_corpus(config["dataset"])             # DataError here leaves the run untouched
    split = corpora.split_documents(len(corpus.documents), float(config["split"]["train"]),
                                    int(config["split"]["seed"]))
    lines = pd.DataFrame({"lines": np.array([d.count("\n") for d in corpus.documents], dtype=np.int32)})
    if is_words(config):
        data = _word_data(corpus, split, int(config["dataset"]["vocabulary"]))
    else:
        data = {"vocabulary": corpus.vocabulary(), "lengths": corpus.lengths,
                "shown": np.array(list(corpus.text), dtype=object), "tokens": None,
                "annotations": corpus.annotations, "info": corpus.annotation_info(), "manifest": {},
                "text": {}, "note": f"{corpus.n_chars:,} characters"}
        data["ids"] = corpus.encode(data["vocabulary"])
    vocabulary, lengths = data["vocabulary"], data["lengths"]
    examples = examples_table(lengths, split, names=corpus.names, meta=lines)
    example_id, t = row_ids(lengths)
    columns = {"example_id": example_id, "t": t, "char": data["shown"]}
    if data["tokens"] is not None:
        columns["token"] = data["tokens"]
    columns.update({key: a.column() for key, a in data["annotations"].items()})
    text_table = pa.Table.from_pandas(pd.DataFrame(columns), preserve_index=False)

    writer = ctx.begin()
    outputs = [writer.write_table(EXAMPLES_FILE, examples), writer.write_table(TEXT_FILE, text_table)]
    counts = pd.Series(split).value_counts()
    ctx.finish(outputs, kind=LANGUAGE_MODEL, origin="trained",
               dataset={"name": config["dataset"]["name"], "corpus": corpus.name,
                        "source": corpus.source, "notes": corpus.notes},
               classes=vocabulary, n_examples=len(examples), n_chars=corpus.n_chars,
               annotations=data["info"],
               splits={name: int(counts.get(name, 0)) for name in SPLITS},
               text={"file": TEXT_FILE, "state": "reset to zero at the start of each document", **data["text"]},
               **data["manifest"])
    ctx.memo["prepared"] = Prepared(data["ids"], np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64),
                                    lengths, split, vocabulary, examples)
    return f"{len(examples)} documents, {data['note']}, {len(vocabulary)} distinct"


def _word_data(corpus: corpora.TextCorpus, split: np.ndarray, cap: int) -> dict:
    """The data stage's rows of a word run: tokens, the vocabulary of the training documents'
    most frequent words, the unknown rate per split (for the manifest)."""
    found = word_corpora.word_corpus(corpus)
    document_split = np.repeat(split, found.lengths)
    tokens = np.array(found.tokens, dtype=object)
    vocabulary = words.capped_vocabulary(tokens[document_split == "train"], cap)
    ids, unknown = words.encode(found.tokens, vocabulary)
    annotations = found.annotations
    annotations["unknown"] = corpora.Annotation(unknown.astype(np.int8),
                                                description=f"1 where the word is outside the vocabulary "
                                                            f"(the model reads {words.UNKNOWN})")
    rates = {name: round(float(unknown[document_split == name].mean()), 6)
             for name in SPLITS if (document_split == name).any()}
    distinct = len(set(tokens[document_split == "train"].tolist()))
    return {"vocabulary": vocabulary, "lengths": found.lengths, "ids": ids, "tokens": tokens,
            "shown": np.array(found.shown, dtype=object), "annotations": annotations, "info": found.annotation_info(),
            "manifest": {"n_tokens": found.n_tokens,
                         "vocabulary": {"size": len(vocabulary), "cap": cap, "unknown_token": words.UNKNOWN,
                                        "distinct_train_words": distinct,
                                        "unknown_rate": {"all": round(float(unknown.mean()), 6), **rates}}},
            "text": {"tokens": "words", "tokenizer": found.tokenizer, "spacing": "original"},
            "note": f"{found.n_tokens:,} words ({corpus.n_chars:,} characters), "
                    f"{float(unknown.mean()):.1%} unknown"}


def read_prepared(run_path) -> Prepared:
    """Rebuild the data stage's result from the run (when that stage was skipped)."""
    run = Run(run_path)
    examples = run.examples()
    vocabulary = run.classes
    if (run.manifest.get("text") or {}).get("tokens") == "words":
        ids, _ = words.encode(run.steps("text", columns=["token"])["token"].tolist(), vocabulary)
    else:
        index = {ch: i for i, ch in enumerate(vocabulary)}
        ids = run.steps("text", columns=["char"])["char"].map(index).to_numpy(dtype=np.int32)
    return Prepared(ids, examples["row_start"].to_numpy(np.int64), examples["length"].to_numpy(np.int64),
                    examples["split"].to_numpy(), vocabulary, examples)


def _train_stage(ctx: StageContext) -> str:
    from pipeline.models import char_lm, keras_weights
    prepared = _prepared(ctx)
    writer = ctx.begin()
    training = char_lm.train_char_lm(prepared.ids, prepared.starts, prepared.lengths, prepared.split,
                                     len(prepared.vocabulary), ctx.config["model"], ctx.config["train"],
                                     ctx.progress, unit=unit(ctx.config))
    ctx.memo["weights"], outputs = keras_weights.save_trained(training.model, writer.path, MODEL_FILE,
                                                              padding="none")
    ctx.finish([*outputs, writer.write_table(HISTORY_FILE, training.history)],
               layers=[{"index": i, "units": int(u)} for i, u in enumerate(ctx.config["model"]["units"])],
               best_epoch=training.best_epoch, versions=library_versions())
    best = training.history.iloc[training.best_epoch - 1]
    per = unit(ctx.config)
    return (f"{len(training.history)} epochs, validation {best[f'val_bits_per_{per}']:.3f} bits/{per}, "
            f"accuracy {best['val_accuracy']:.3f}")


def _extract_stage(ctx: StageContext) -> str:
    prepared = _prepared(ctx)
    weights = ctx.memo.get("weights") or NetworkWeights.load(ctx.path / WEIGHTS_FILE)
    settings = ctx.config["extract"]
    writer = ctx.begin()
    source = steps.network_source(weights, lambda r0, r1: prepared.ids[r0:r1], prepared.lengths,
                                  int(settings["block_rows"]), int(settings["lanes"]), scheduler=ctx.scheduler)
    predictions = Predictions(LANGUAGE_MODEL, prepared.lengths, prepared.vocabulary, int(settings["top_k"]),
                              targets=next_token_targets(prepared.ids, prepared.lengths), unit=unit(ctx.config))
    outputs = steps.write_steps(writer, source, predictions, progress=ctx.progress,
                                storage=ctx.config["extract"].get("storage"))
    per_document = predictions.per_example()
    outputs.append(writer.write_table(EXAMPLES_FILE, with_predictions(prepared.examples, per_document)))
    metrics = predictions.metrics(prepared.split)
    ctx.finish(outputs, metrics=metrics, top_k=int(settings["top_k"]))
    return f"{int(prepared.lengths.sum()):,} steps x {len(weights.layers)} layer(s)"
