"""Runs from states or models made elsewhere (``importers``): written as ordinary runs, projected too.

Stages: import -> project. The import stage writes examples.parquet, every per-step table (block
by block through ``core.steps``, so a long stream never has to fit in memory; optionally as
partitioned datasets), steps/inputs.parquet when the import carries the model's inputs, and
steps/text.parquet for language models, and the attention weights an import carries
(steps/attention.parquet or attention_matrix.parquet). The project stage is every kind's (``pipeline.project``):
imported runs get the same paths, last-step pictures and trust figures as trained ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline import project
from pipeline.core import aggregates, steps
from pipeline.core.config import merge
from pipeline.core.errors import DataError
from pipeline.core.examples import examples_table, with_predictions
from pipeline.analysis.layout import row_ids
from pipeline.core.predictions import Predictions, final_predictions, next_token_targets
from pipeline.core.progress import QUIET, Progress
from pipeline.core.stages import Stage, StageContext, library_versions, run_stages
from pipeline.importers.base import DEFAULT_SPLIT, PLACEHOLDER_TOKEN, ImportedRun
from pipeline.runformat import (
    ATTENTION_FILE,
    ATTENTION_MATRIX_FILE,
    CLASSIFICATION,
    EXAMPLES_FILE,
    HISTORY_FILE,
    INPUTS_FILE,
    LANGUAGE_MODEL,
    SPLITS,
    TENSOR_KINDS,
    TEXT_FILE,
    remove,
    stable_hash,
    step_table,
    validate_run_id,
)

FORMAT_VERSION = 1            # of docs/import-format.md; recorded in the manifest
TOP_K = 5
# Projections of imported runs: one autoencoder per dimension (no seed comparison) for classifiers,
# PCA paths for language models and streams.
PROJECT = {CLASSIFICATION: merge(project.DEFAULTS, {"seeds": 1}),
           LANGUAGE_MODEL: merge(project.DEFAULTS, {"methods": ["pca"], "max_vectors": 20000})}


def write_run(imported: ImportedRun, runs_dir, run_id: str | None = None, *,
              partition_rows: int | None = None, top_k: int = TOP_K, force: bool = False,
              project_settings: dict | None = None, progress: Progress = QUIET,
              origin: str = "imported", history: pd.DataFrame | None = None,
              final_probabilities: np.ndarray | None = None, scheduler=None) -> tuple[Path, bool]:
    """Write ``imported`` as the run ``runs_dir/run_id``; returns (its path, whether it was written).

    An unchanged import of an existing run is skipped (same input hash), unless ``force``.
    ``partition_rows``: write each per-step table as a folder of part files of that many rows
    (``steps/layer0-h.parquet/part-00000.parquet`` ...), which Dask, Spark or Ray read as one
    dataset and ``runformat.Run`` reads like a file. ``project_settings`` override the kind's
    projection settings (``{"methods": []}``: none); ``scheduler``: a dask.distributed scheduler
    for the projections' paths (as ``pipeline.project``). A recording (``pipeline.record``) passes
    ``origin="recorded"``, its training ``history`` and, when the model's head is not a softmax on
    the LSTM's h, the model's own ``final_probabilities`` (one row per sequence).
    """
    run_id = validate_run_id(run_id or imported.name)
    if partition_rows is not None and partition_rows < 1:
        raise DataError(f"partition_rows must be at least 1, got {partition_rows}")
    config = {"import": {"format_version": FORMAT_VERSION, "format": imported.format, **imported.options},
              "project": merge(PROJECT[imported.kind], project_settings or {})}
    digest = stable_hash("import", FORMAT_VERSION, imported.format, imported.options, imported.fingerprint,
                         partition_rows, top_k)
    hashes = {"import": digest, "project": stable_hash("project", digest, config["project"])}
    extras = {"origin": origin, "history": history, "final_probabilities": final_probabilities}
    stages = [Stage("import", lambda ctx: _import_stage(ctx, imported, partition_rows, top_k, extras)),
              Stage("project", project.project_stage)]
    summary = run_stages(stages, config, hashes, runs_dir, run_id, force, progress, scheduler)
    return summary.path, any(s.name == "import" and s.seconds is not None for s in summary.stages)


def _import_stage(ctx: StageContext, imported: ImportedRun, partition_rows, top_k: int, extras: dict) -> str:
    writer = ctx.open_writer()
    previous = writer.outputs()
    # A fresh manifest: nothing a previous (e.g. trained) run of this id recorded still holds.
    writer = ctx.begin(fresh={})
    split = imported.split if imported.split is not None else np.full(len(imported.lengths), DEFAULT_SPLIT, object)
    predictions = None
    if imported.n_predictions:
        targets = _targets(imported) if imported.kind == LANGUAGE_MODEL else None
        names = imported.classes if imported.kind == CLASSIFICATION else imported.vocabulary
        predictions = Predictions(imported.kind, imported.lengths, names, top_k,
                                  labels=imported.labels, targets=targets)
    # Every tensor as float32: an import's states are the user's own numbers (or recomputed to match
    # their framework to 1e-5), kept as given rather than rounded to the trained runs' float16 gates.
    outputs = steps.write_steps(writer, imported.step_source(), predictions, partition_rows, ctx.progress,
                                storage=dict.fromkeys(TENSOR_KINDS, "float32"))
    examples = examples_table(imported.lengths, split, labels=imported.labels, classes=imported.classes,
                              names=imported.names, meta=imported.meta)
    final = extras["final_probabilities"]
    if predictions is not None:
        examples = with_predictions(examples, predictions.per_example())
    elif final is not None and imported.kind == CLASSIFICATION:
        predictions = final_predictions(final, imported.labels, imported.classes)
        examples = with_predictions(examples, predictions.per_example())
    updates: dict = {}
    if extras["history"] is not None:
        outputs.append(writer.write_table(HISTORY_FILE, extras["history"]))
    if imported.inputs is not None:
        outputs.append(writer.write_table(INPUTS_FILE, inputs_table(imported)))
        updates["channels"] = list(imported.channels)
    if imported.attention is not None:
        outputs.append(_write_attention(writer, imported))
        updates["attention"] = imported.attention.kind
    if imported.kind == LANGUAGE_MODEL:
        outputs.append(writer.write_table(TEXT_FILE, text_table(imported)))
        updates.update(n_chars=imported.n_rows, annotations=annotation_info(imported),
                       text={"file": TEXT_FILE, "separator": imported.separator,
                             "tokens": "given" if imported.tokens is not None else "placeholder",
                             "state": "as imported"})
    outputs.append(writer.write_table(EXAMPLES_FILE, examples))
    if imported.kind == CLASSIFICATION:
        outputs += aggregates.write_gate_aggregates(writer, examples, imported.layers)
        outputs += aggregates.write_example_states(writer, examples, imported.layers)
    for stale in previous - set(outputs) - {"manifest.json"}:
        remove(writer.path / stale)
    counts = pd.Series(split).value_counts()
    metrics = predictions.metrics(split) if predictions is not None else {}
    ctx.finish(outputs, kind=imported.kind, origin=extras["origin"],
               dataset={"name": imported.name, "source": imported.source, "format": imported.format},
               classes=list(imported.classes if imported.kind == CLASSIFICATION else imported.vocabulary),
               n_examples=len(imported.lengths), n_steps_total=imported.n_rows,
               metrics=metrics or {name: {} for name in SPLITS if counts.get(name, 0)},
               layers=imported.layers, top_k=top_k if imported.n_predictions else 0,
               splits={name: int(counts.get(name, 0)) for name in SPLITS},
               partition_rows=partition_rows, imported=imported.notes, versions=library_versions(),
               **updates)
    return f"{len(imported.lengths)} sequences, {imported.n_rows:,} steps"


def _write_attention(writer, imported: ImportedRun) -> str:
    """steps/attention.parquet (pooling weights per step) or attention_matrix.parquet (per sequence)."""
    attention = imported.attention
    if attention.kind == "matrix":
        return writer.write_table(ATTENTION_MATRIX_FILE, attention.matrix)
    ids, t = row_ids(imported.lengths)
    return writer.write_table(ATTENTION_FILE, step_table(ids, t, attention.steps[:, None], ["attention"]))


def _targets(imported: ImportedRun) -> np.ndarray | None:
    """For a language model: the vocabulary index of the next token of each row (-1: none)."""
    if imported.tokens is None or not imported.vocabulary:
        return None
    index = {token: i for i, token in enumerate(imported.vocabulary)}
    ids = np.fromiter((index.get(token, -1) for token in imported.tokens), np.int64, imported.n_rows)
    target = next_token_targets(ids, imported.lengths)
    target[np.roll(ids, -1) < 0] = -1
    return target


def inputs_table(imported: ImportedRun) -> pa.Table:
    """steps/inputs.parquet: the model's input channels at every step."""
    ids, t = row_ids(imported.lengths)
    values = imported.inputs.read(0, imported.n_rows).astype(np.float32, copy=False)
    return step_table(ids, t, values, imported.channels)


def text_table(imported: ImportedRun) -> pa.Table:
    """steps/text.parquet: example_id, t, char (shown text), token, one column per annotation."""
    ids, t = row_ids(imported.lengths)
    tokens = (imported.tokens if imported.tokens is not None
              else np.full(imported.n_rows, PLACEHOLDER_TOKEN, dtype=object))
    shown = tokens if not imported.separator else np.char.add(tokens.astype(str), imported.separator).astype(object)
    columns = {"example_id": ids, "t": t, "char": shown, "token": tokens}
    for name, values in imported.annotations.items():
        columns[name] = (pd.Categorical(values.astype(str)) if values.dtype.kind in "OUS" else values)
    return pa.Table.from_pandas(pd.DataFrame(columns), preserve_index=False)


def annotation_info(imported: ImportedRun) -> dict:
    info = {}
    for name, values in imported.annotations.items():
        entry = {"kind": "categorical" if values.dtype.kind in "OUS" else "numeric",
                 "description": imported.descriptions.get(name, "")}
        if entry["kind"] == "categorical":
            entry["categories"] = sorted(set(values.astype(str).tolist()))
        info[name] = entry
    return info
