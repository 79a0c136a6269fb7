"""What a run directory holds, named once: schema version, file names, run and tensor kinds, the manifest.

Both sides use these names: the pipeline when it writes, the dashboard and outside tools when they
read. ``Manifest`` is the typed view of manifest.json; ``parse_manifest`` is the one function that
reads it, so a view never parses the JSON itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1
MANIFEST_KEYS = ("schema_version", "run_id", "kind", "dataset", "config", "classes", "n_examples",
                 "metrics", "stages")

# Run kinds: what the examples are. A classification run has a label per example; a language model
# predicts the next token at every step. Where the run came from (trained here, imported, recorded)
# is its ``origin``, not its kind: every origin gets the views its data allows.
CLASSIFICATION = "classification"
LANGUAGE_MODEL = "language_model"
RUN_KINDS = (CLASSIFICATION, LANGUAGE_MODEL)
ORIGINS = ("trained", "imported", "recorded")

TENSOR_KINDS = ("h", "c", "input_gate", "forget_gate", "candidate", "output_gate")
GATE_KINDS = ("input_gate", "forget_gate", "candidate", "output_gate")   # Keras' column order i, f, c, o
SIGMOID_GATES = ("input_gate", "forget_gate", "output_gate")
SPLITS = ("train", "validation", "test")
# How per-step tensors are stored: float32, or float16 (2 bytes a value; relative error <= 2^-11,
# absolute <= 2^-12 on the gates' [0, 1]). The gates default to float16, h and c to float32
# (select & match and the heatmaps read them); ``extract.storage`` in a run's config overrides it.
# Readers get float32 either way (``Run.step_matrix``); the stored type is the parquet column's own.
STORAGE_TYPES = ("float32", "float16")
DEFAULT_STORAGE = dict.fromkeys(GATE_KINDS, "float16")
FLOAT16_MAX = 65504.0

MANIFEST_FILE = "manifest.json"
EXAMPLES_FILE = "examples.parquet"
INPUTS_FILE = "steps/inputs.parquet"
PREDICTIONS_FILE = "steps/predictions.parquet"
TEXT_FILE = "steps/text.parquet"
HISTORY_FILE = "history.parquet"
PROJECTIONS_FILE = "projections.parquet"
EPOCH_PROJECTIONS_FILE = "projections_by_epoch.parquet"   # recordings: the picture at each kept epoch
ATTRIBUTION_FILES = {"predicted": "steps/attribution-predicted.parquet",    # integrated gradients,
                     "true": "steps/attribution-true.parquet"}              # one column per channel
OCCLUSION_FILE = "steps/occlusion.parquet"
# Attention: ``attention`` per stored step row (example_id, t; pooling weights, summing to 1 over a
# sequence's real steps), and imported sequence-to-sequence matrices as (example_id, t_out, t_in,
# attention) rows. The manifest's ``attention`` says which the run has (ATTENTION_KINDS).
ATTENTION_FILE = "steps/attention.parquet"
ATTENTION_MATRIX_FILE = "attention_matrix.parquet"
ATTENTION_KINDS = ("pooling", "matrix")
ATTRIBUTION_BY_CLASS_FILE = "attribution_by_class.parquet"  # mean |attribution| per class, tenth, channel
# Precomputed aggregates (the extract stage writes them; a run without them is read the long way).
# Examples are grouped so that every filter of the filter bar lets through whole groups (same label,
# split, hand usage and verdict); a view sums its groups' rows instead of reading every step.
GATE_GROUPS_FILE = "aggregates/gate_groups.parquet"          # example_id -> group
# Per layer, sigmoid gate, alignment ("start": offset = t; "end": offset = steps before the last),
# group and offset: ``rows`` (steps there) and ``c0..c{2N}``, how many of their values have each
# threshold code: with E = SATURATION_EDGES, code = #(E < v) + #(E <= v), so #(v < E[k]) is the sum
# of c0..c{2k} and #(v > E[k]) the sum of c{2k+2}..c{2N} (exact for thresholds on the grid).
GATE_SATURATION_FILE = "aggregates/gate_saturation.parquet"
# Per layer, sigmoid gate and group: ``b0..b{B-1}``, np.histogram's counts of the values in
# GATE_VALUE_BINS equal bins of [0, 1] (float64 edges; the last bin holds 1.0).
GATE_VALUES_FILE = "aggregates/gate_values.parquet"
# Per layer, sigmoid gate, alignment and column ``step`` of the common step axis of all examples
# (as the gate cells view lays them out): ``rows`` (examples with a step there), per cell ``s{j}``
# (float64 sum of the values, added in example_id order) and ``k{j}`` (values below / above
# GATE_CELL_THRESHOLDS, the view's default thresholds). What the view draws for every example.
GATE_CELLS_FILE = "aggregates/gate_cells.parquet"
GATE_CELL_THRESHOLDS = (0.1, 0.9)
# Per layer, sigmoid gate, alignment, group and offset, as GATE_SATURATION_FILE's rows: ``rows`` and
# per cell ``s{j}`` (float64 sum of the values, in row order) and ``k{j}`` (values outside
# GATE_CELL_THRESHOLDS): the gate cells of any filter bar filter are sums of its groups' rows.
# Written only where these rows are at most GROUP_CELLS_MAX_SHARE of the steps (big runs: 15k rows
# for 5.4M steps; at Auslan's size they would outweigh the gate tables and the pass is fast there).
GATE_GROUP_CELLS_FILE = "aggregates/gate_group_cells.parquet"
GROUP_CELLS_MAX_SHARE = 1 / 32
# Per layer, state (h, c) and summary: every example's value at its last real step ("last") or its
# mean over its steps ("mean": float64 sums of the float32 values, divided by the length), stored as
# float32 ``example_id, u0..`` rows in example_id order (``example_states_file``).
EXAMPLE_SUMMARIES = ("last", "mean")
SATURATION_GRID = 20                  # the saturation table answers thresholds float32(k / 20), k = 0..20
GATE_VALUE_BINS = 50
CLASS_STABILITY_FILE = "projection_class_stability.parquet"
PAIR_STABILITY_FILE = "projection_pair_stability.parquet"
MODELS_DIR = "models"
LOCK_FILE = ".lock"        # held while a pipeline writes the run: {"pid", "host", "since"}
FILES_KEY = "files"        # manifest.json: {relative path: {"size": bytes, "sha256": hex}} of every output
DIGEST = "sha256"
WEIGHTS_FILE = "models/weights.npz"       # the NumPy weights of a network trained here (no pickle)

RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
UNIT_PREFIX = "u"
# A file or folder being written: ``<name>.tmp-<pid>-<ns>`` (``.old-`` for one being replaced), or
# Keras' ``<stem>.tmp-<pid><suffix>``. Never a run's content: readers skip them, writers sweep them.
TEMPORARY_NAME = re.compile(r"^.+\.(?:tmp|old)-(?P<pid>\d+)(?:-\d+)?(?:\.[A-Za-z0-9]+)?$")


def temporary_owner(name: str) -> int | None:
    """The pid in a temporary file's name, or None when ``name`` is not a temporary."""
    match = TEMPORARY_NAME.match(name)
    return int(match.group("pid")) if match else None


def steps_file(layer: int, kind: str) -> str:
    """The per-step table of one tensor of one layer, e.g. ``steps/layer0-h.parquet``."""
    if kind not in TENSOR_KINDS:
        raise ValueError(f"unknown tensor kind {kind!r}; expected one of {', '.join(TENSOR_KINDS)}")
    return f"steps/layer{layer}-{kind}.parquet"


def example_states_file(layer: int, kind: str, summary: str) -> str:
    """A per-example summary table of one state of one layer, e.g. ``aggregates/layer0-h-last.parquet``."""
    if kind not in ("h", "c") or summary not in EXAMPLE_SUMMARIES:
        raise ValueError(f"no per-example table for {kind!r} / {summary!r}; expected h or c and one of "
                         f"{', '.join(EXAMPLE_SUMMARIES)}")
    return f"aggregates/layer{layer}-{kind}-{summary}.parquet"


def unit_columns(n_units: int) -> list[str]:
    return [f"{UNIT_PREFIX}{i}" for i in range(n_units)]


class RunError(Exception):
    """A run that cannot be read as asked; the message says what to do about it."""


class SchemaVersionError(RunError):
    """The run was written by a version of LSTM Lens whose format this reader does not know."""


class RunChanged(Exception):
    """The run's manifest changed since the ``Run`` was opened: what was read may belong to the new
    version. Not a RunError: the reader opens the run again and repeats the read."""


@dataclass(frozen=True)
class Layer:
    index: int
    units: int
    tensors: tuple[str, ...] = TENSOR_KINDS


@dataclass(frozen=True)
class Manifest:
    """manifest.json, typed. ``raw`` keeps every key, the ones not typed here included."""

    schema_version: int
    run_id: str
    kind: str
    origin: str
    status: str
    dataset: dict[str, Any]
    config: dict[str, Any]
    classes: list[str]
    n_examples: int
    metrics: dict[str, dict[str, Any]]
    stages: dict[str, dict[str, Any]]
    layers: list[Layer]
    splits: dict[str, int]
    projections: list[dict[str, Any]]
    annotations: dict[str, dict[str, Any]]
    updated: str
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)
    # The run's identity is its folder's name; the manifest's own run_id is kept here. They differ
    # when a run folder was copied or renamed (``run_id_mismatch``).
    recorded_run_id: str = ""
    files: dict[str, dict[str, Any]] = field(repr=False, compare=False, default_factory=dict)

    @property
    def run_id_mismatch(self) -> bool:
        return bool(self.recorded_run_id) and self.recorded_run_id != self.run_id

    @property
    def is_classification(self) -> bool:
        return self.kind == CLASSIFICATION

    @property
    def is_language_model(self) -> bool:
        return self.kind == LANGUAGE_MODEL

    @property
    def attention(self) -> str | None:
        """``"pooling"`` or ``"matrix"`` (ATTENTION_KINDS) when the run stores attention weights."""
        value = self.raw.get("attention")
        return value if value in ATTENTION_KINDS else None

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    def get(self, key: str, default: Any = None) -> Any:
        """Any key of manifest.json, typed or not (``channels``, ``hands``, ``text`` ...)."""
        return self.raw.get(key, default)

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def __contains__(self, key: object) -> bool:
        return key in self.raw

    def __iter__(self):
        return iter(self.raw)

    def layer(self, index: int) -> Layer:
        """The layer ``index`` (-1: the last)."""
        if not self.layers:
            raise RunError(f"run {self.run_id!r} records no LSTM layers")
        indices = [layer.index for layer in self.layers]
        wanted = indices[-1] if index == -1 else index
        if wanted not in indices:
            raise RunError(f"run {self.run_id!r} has no layer {index} (it has {indices})")
        return self.layers[indices.index(wanted)]

    @property
    def projection_ids(self) -> list[str]:
        return [str(item.get("id")) for item in self.projections]


def parse_manifest(data: Any, where: str = "manifest.json", folder: str | None = None) -> Manifest:
    """manifest.json's parsed JSON -> Manifest; RunError naming the field when it is malformed.

    ``folder``: the name of the run's folder, which is the run's id (a copied run is its own run);
    the manifest's ``run_id`` is then kept as ``recorded_run_id`` (also in ``raw``), and ``raw``'s
    ``run_id`` is the folder's name too, so code reading the raw dict opens the folder it lists.
    """
    if not isinstance(data, dict):
        raise RunError(f"{where} is not a JSON object")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        name = (data.get("dataset") or {}).get("name", "<dataset>") if isinstance(data.get("dataset"), dict) else "<dataset>"
        raise SchemaVersionError(
            f"{where} has schema_version {version!r}, this LSTM Lens reads version {SCHEMA_VERSION}. "
            f"Rebuild it with `python -m pipeline run {name} --force` (or open it with the LSTM Lens "
            f"version that wrote it).")

    def typed(key: str, kind: type, default: Any) -> Any:
        value = data.get(key, default)
        if value is None:
            return default
        if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
            raise RunError(f"{where}: field {key!r} should be {kind.__name__}, not {type(value).__name__}")
        return value

    recorded = typed("run_id", str, "")
    if not recorded:
        raise RunError(f"{where}: field 'run_id' is missing")
    run_id = folder or recorded
    raw = dict(data)
    if folder:
        raw.update(run_id=folder, recorded_run_id=recorded, run_id_mismatch=folder != recorded)
    files = typed(FILES_KEY, dict, {})
    kind = typed("kind", str, CLASSIFICATION)
    if kind not in RUN_KINDS:
        raise RunError(f"{where}: field 'kind' is {kind!r}; expected one of {', '.join(RUN_KINDS)}")
    layers = []
    for position, entry in enumerate(typed("layers", list, [])):
        try:
            layers.append(Layer(int(entry["index"]), int(entry["units"]),
                                tuple(entry.get("tensors") or TENSOR_KINDS)))
        except (TypeError, KeyError, ValueError):
            raise RunError(f"{where}: layers[{position}] needs integer 'index' and 'units'") from None
    projections = [item if isinstance(item, dict) else {"id": str(item)}
                   for item in typed("projections", list, [])]
    return Manifest(
        schema_version=version, run_id=run_id, kind=kind,
        origin=typed("origin", str, "imported" if "imported" in data else "trained"),
        status=typed("status", str, "complete"), dataset=typed("dataset", dict, {}),
        config=typed("config", dict, {}), classes=[str(c) for c in typed("classes", list, [])],
        n_examples=typed("n_examples", int, 0), metrics=typed("metrics", dict, {}),
        stages=typed("stages", dict, {}), layers=layers, splits=typed("splits", dict, {}),
        projections=projections, annotations=typed("annotations", dict, {}),
        updated=typed("updated", str, ""), raw=raw, recorded_run_id=recorded, files=files)
