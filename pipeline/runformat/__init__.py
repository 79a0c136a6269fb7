"""The run format: the one contract between the pipeline (writes) and the dashboard (reads).

numpy + pyarrow (+ pandas) only, never TensorFlow. A run is one model on one data set, kept in
``<runs>/<run_id>/``::

    manifest.json            written last, after every stage (schema.Manifest); ``files`` records
                             every output's size and sha256 (``python -m pipeline verify``)
    .lock                    only while a pipeline writes the run (its pid, host, start time)
    examples.parquet         one row per example (sequence), ordered by example_id
    steps/inputs.parquet     one row per (example, t): the model's input channels
    steps/layer{L}-{kind}.parquet
                             one row per (example, t): one column per unit (u0, u1, ...), float32,
                             or float16 (the gates' default, schema.DEFAULT_STORAGE)
    steps/predictions.parquet
                             one row per (example, t): true-class probability and top-k classes
    steps/text.parquet       language models: the token read at each step and its annotations
    steps/attention.parquet  attention models: one row per (example, t), its pooling weight
    attention_matrix.parquet imported sequence-to-sequence attention: (example_id, t_out, t_in)
    projections.parquet      one row per (projection, example, t): x, y, z
    history.parquet          one row per epoch
    aggregates/              small precomputed tables (gate saturation by group and step, gate cells by step, each
                             example's last and mean h and c), optional
    models/                  Keras models in their native format, weights as .npz
"""

from pipeline.runformat.reader import (Run, Verification, list_runs, resolve_run_path, saturation_edges,
                                       validate_run_id, verify_run)
from pipeline.runformat.schema import (ATTENTION_FILE, ATTENTION_KINDS, ATTENTION_MATRIX_FILE,
                                       ATTRIBUTION_BY_CLASS_FILE, ATTRIBUTION_FILES, CLASS_STABILITY_FILE,
                                       CLASSIFICATION, DEFAULT_STORAGE, EPOCH_PROJECTIONS_FILE, EXAMPLE_SUMMARIES, OCCLUSION_FILE,
                                       EXAMPLES_FILE, FILES_KEY, GATE_CELL_THRESHOLDS, GATE_CELLS_FILE, GATE_GROUP_CELLS_FILE, GATE_GROUPS_FILE, GATE_KINDS,
                                       GATE_SATURATION_FILE, GATE_VALUE_BINS, GATE_VALUES_FILE, GROUP_CELLS_MAX_SHARE, SATURATION_GRID,
                                       HISTORY_FILE, INPUTS_FILE, LANGUAGE_MODEL, LOCK_FILE, MANIFEST_FILE,
                                       MANIFEST_KEYS, MODELS_DIR, PAIR_STABILITY_FILE, PREDICTIONS_FILE,
                                       PROJECTIONS_FILE, RUN_ID_PATTERN, RUN_KINDS, SCHEMA_VERSION,
                                       SIGMOID_GATES, SPLITS, STORAGE_TYPES, TENSOR_KINDS, TEXT_FILE, WEIGHTS_FILE, Layer,
                                       Manifest, RunChanged, RunError, SchemaVersionError, parse_manifest,
                                       example_states_file, steps_file, temporary_owner, unit_columns)
from pipeline.runformat.writer import (RunWriter, TableSink, atomic_path, file_digest, remove, stable_hash,
                                       step_table, sweep_temporaries, write_error, write_json, write_parquet)

__all__ = [
    "ATTENTION_FILE", "ATTENTION_KINDS", "ATTENTION_MATRIX_FILE", "ATTRIBUTION_BY_CLASS_FILE", "ATTRIBUTION_FILES", "OCCLUSION_FILE",
    "CLASSIFICATION", "CLASS_STABILITY_FILE", "DEFAULT_STORAGE", "EPOCH_PROJECTIONS_FILE", "EXAMPLE_SUMMARIES", "EXAMPLES_FILE", "FILES_KEY", "GATE_CELL_THRESHOLDS", "GATE_CELLS_FILE", "GATE_GROUP_CELLS_FILE", "GATE_GROUPS_FILE", "GATE_KINDS",
    "GATE_SATURATION_FILE", "GATE_VALUE_BINS", "GATE_VALUES_FILE", "GROUP_CELLS_MAX_SHARE", "SATURATION_GRID", "HISTORY_FILE",
    "INPUTS_FILE", "LANGUAGE_MODEL", "LOCK_FILE", "MANIFEST_FILE", "MANIFEST_KEYS", "MODELS_DIR", "PAIR_STABILITY_FILE",
    "PREDICTIONS_FILE", "PROJECTIONS_FILE", "RUN_ID_PATTERN", "RUN_KINDS", "SCHEMA_VERSION",
    "SIGMOID_GATES", "SPLITS", "STORAGE_TYPES", "TENSOR_KINDS", "TEXT_FILE", "WEIGHTS_FILE", "Layer", "Manifest", "Run", "RunChanged",
    "RunError", "RunWriter", "SchemaVersionError", "TableSink", "Verification", "atomic_path", "file_digest",
    "example_states_file", "list_runs", "parse_manifest", "saturation_edges", "remove", "resolve_run_path", "stable_hash", "step_table", "steps_file",
    "sweep_temporaries", "temporary_owner", "unit_columns", "validate_run_id", "verify_run", "write_error",
    "write_json", "write_parquet",
]
