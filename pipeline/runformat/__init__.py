"""The run format: the one contract between the pipeline (writes) and the dashboard (reads).

numpy + pyarrow (+ pandas) only, never TensorFlow. A run is one model on one data set, kept in
``<runs>/<run_id>/``::

    manifest.json            written last, after every stage (schema.Manifest)
    examples.parquet         one row per example (sequence), ordered by example_id
    steps/inputs.parquet     one row per (example, t): the model's input channels
    steps/layer{L}-{kind}.parquet
                             one row per (example, t): one float32 column per unit (u0, u1, ...)
    steps/predictions.parquet
                             one row per (example, t): true-class probability and top-k classes
    steps/text.parquet       language models: the token read at each step and its annotations
    projections.parquet      one row per (projection, example, t): x, y, z
    history.parquet          one row per epoch
    models/                  Keras models in their native format, weights as .npz
"""

from pipeline.runformat.reader import Run, list_runs, resolve_run_path, validate_run_id
from pipeline.runformat.schema import (CLASS_STABILITY_FILE, CLASSIFICATION, EXAMPLES_FILE, GATE_KINDS,
                                       HISTORY_FILE, INPUTS_FILE, LANGUAGE_MODEL, MANIFEST_FILE,
                                       MANIFEST_KEYS, MODELS_DIR, PAIR_STABILITY_FILE, PREDICTIONS_FILE,
                                       PROJECTIONS_FILE, RUN_ID_PATTERN, RUN_KINDS, SCHEMA_VERSION,
                                       SIGMOID_GATES, SPLITS, TENSOR_KINDS, TEXT_FILE, WEIGHTS_FILE, Layer,
                                       Manifest, RunChanged, RunError, SchemaVersionError, parse_manifest,
                                       steps_file, unit_columns)
from pipeline.runformat.writer import (RunWriter, TableSink, atomic_path, remove, stable_hash, step_table,
                                       write_json, write_parquet)

__all__ = [
    "CLASSIFICATION", "CLASS_STABILITY_FILE", "EXAMPLES_FILE", "GATE_KINDS", "HISTORY_FILE", "INPUTS_FILE",
    "LANGUAGE_MODEL", "MANIFEST_FILE", "MANIFEST_KEYS", "MODELS_DIR", "PAIR_STABILITY_FILE",
    "PREDICTIONS_FILE", "PROJECTIONS_FILE", "RUN_ID_PATTERN", "RUN_KINDS", "SCHEMA_VERSION",
    "SIGMOID_GATES", "SPLITS", "TENSOR_KINDS", "TEXT_FILE", "WEIGHTS_FILE", "Layer", "Manifest", "Run", "RunChanged",
    "RunError", "RunWriter", "SchemaVersionError", "TableSink", "atomic_path", "list_runs",
    "parse_manifest", "remove", "resolve_run_path", "stable_hash", "step_table", "steps_file",
    "unit_columns", "validate_run_id", "write_json", "write_parquet",
]
