"""Reading a run directory: the dashboard's only door to runs (numpy + pyarrow, never TensorFlow).

Per-step tables hold the examples' real (unpadded) steps only, sorted by (example_id, t), so the
rows of example ``i`` are ``[row_start[i], row_start[i] + length[i])`` with ``row_start`` and
``length`` from examples.parquet: readers slice instead of filtering. A table is a parquet file or a
folder of part files under the same name (a partitioned dataset), read alike.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.runformat.schema import (
    EXAMPLES_FILE,
    HISTORY_FILE,
    MANIFEST_FILE,
    PROJECTIONS_FILE,
    RUN_ID_PATTERN,
    SCHEMA_VERSION,
    UNIT_PREFIX,
    Layer,
    Manifest,
    RunChanged,
    RunError,
    parse_manifest,
    steps_file,
)
from pipeline.runformat.writer import stable_hash


def validate_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.match(run_id) or ".." in run_id:
        raise RunError(f"invalid run id {run_id!r}: use letters, digits, '.', '_' and '-' only")
    return run_id


def resolve_run_path(runs_dir: str | os.PathLike, run_id: str) -> Path:
    """The directory of ``run_id`` inside ``runs_dir``; never a path outside it."""
    validate_run_id(run_id)
    root = Path(runs_dir).resolve()
    path = (root / run_id).resolve()
    if path.parent != root:
        raise RunError(f"run {run_id!r} is not inside the runs folder {root}")
    return path


def list_runs(runs_dir: str | os.PathLike) -> list[Manifest]:
    """Manifests of the readable runs in ``runs_dir``, newest first; unreadable ones are skipped."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    found = []
    for child in sorted(root.iterdir()):
        manifest = child / MANIFEST_FILE
        if not manifest.is_file() or not RUN_ID_PATTERN.match(child.name):
            continue
        if child.resolve().parent != root.resolve():     # a link out of the folder: not openable
            continue
        try:
            data = json.loads(manifest.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("schema_version") == SCHEMA_VERSION:
            try:
                found.append(parse_manifest(data, str(manifest)))
            except RunError:
                continue
    return sorted(found, key=lambda m: m.updated, reverse=True)


def _file_state(path: Path) -> tuple:
    """(inode, mtime, size, bytes) of a small file, read through one descriptor."""
    with open(path, "rb") as handle:
        stat = os.fstat(handle.fileno())
        return stat.st_ino, stat.st_mtime_ns, stat.st_size, handle.read()


def _source(path: Path) -> contextlib.AbstractContextManager[Any]:
    """A parquet file opened once (a rename during the read cannot mix two versions of it), or a
    partitioned dataset's folder as it is."""
    return pa.memory_map(str(path)) if path.is_file() else contextlib.nullcontext(path)


class Run:
    """Read access to one run directory. Loads lazily; every read is of the columns asked for."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        manifest_path = self.path / MANIFEST_FILE
        if not manifest_path.is_file():
            raise RunError(f"{self.path.name} has no {MANIFEST_FILE}: it is not a finished run")
        self._manifest_state = _file_state(manifest_path)
        try:
            data = json.loads(self._manifest_state[-1])
        except ValueError as error:
            raise RunError(f"{self.path.name}/{MANIFEST_FILE} is not valid JSON ({error})") from error
        self.manifest: Manifest = parse_manifest(data, f"{self.path.name}/{MANIFEST_FILE}")
        self._examples: pd.DataFrame | None = None

    @classmethod
    def open(cls, runs_dir: str | os.PathLike, run_id: str) -> Run:
        return cls(resolve_run_path(runs_dir, run_id))

    # -- manifest ------------------------------------------------------------------------------
    @property
    def run_id(self) -> str:
        return self.manifest.run_id

    @property
    def kind(self) -> str:
        return self.manifest.kind

    @property
    def classes(self) -> list[str]:
        return list(self.manifest.classes)

    @property
    def layers(self) -> list[Layer]:
        return list(self.manifest.layers)

    @property
    def token(self) -> str:
        """Changes whenever the run is rewritten: a cache key for everything read from it."""
        return stable_hash(self.run_id, self.manifest.updated, self.manifest.stages)

    def check_unchanged(self) -> None:
        """Raise RunChanged if the manifest was rewritten since this run was opened.

        The writer publishes a manifest before it rewrites a run's files, so a read that is
        followed by a passing check read the files of the manifest this ``Run`` holds.
        """
        try:
            current = _file_state(self.path / MANIFEST_FILE)
        except OSError:
            current = None
        if current != self._manifest_state:
            raise RunChanged(f"run {self.run_id!r} was rewritten while being read")

    # -- tables --------------------------------------------------------------------------------
    def _file(self, name: str) -> Path:
        """A table's path: a parquet file, or a directory of part files (a partitioned dataset)."""
        path = self.path / name
        if not (path.is_file() or path.is_dir()):
            raise RunError(f"run {self.run_id!r} has no {name}")
        return path

    def has(self, name: str) -> bool:
        return (self.path / name).exists()

    def read_table(self, name: str, columns: Sequence[str] | None = None,
                   filters: Any = None) -> pd.DataFrame:
        path = self._file(name)
        try:
            with _source(path) as source:
                return pq.read_table(source, columns=list(columns) if columns else None,
                                     filters=filters).to_pandas()
        except (pa.ArrowException, OSError) as error:
            raise RunError(f"cannot read {self.run_id}/{name}: {error}") from error

    def examples(self) -> pd.DataFrame:
        if self._examples is None:
            self._examples = self.read_table(EXAMPLES_FILE)
        return self._examples

    def history(self) -> pd.DataFrame:
        return self.read_table(HISTORY_FILE)

    def projections(self, projection: str | None = None) -> pd.DataFrame:
        filters = [("projection", "=", projection)] if projection else None
        return self.read_table(PROJECTIONS_FILE, filters=filters)

    def step_matrix(self, layer: int, kind: str, units: Sequence[int] | None = None) -> np.ndarray:
        """A (rows, units) float32 array of one tensor, rows in (example_id, t) order.

        Only the columns of ``units`` are read (all units when None).
        """
        name = steps_file(layer, kind)
        path = self._file(name)
        try:
            with _source(path) as source:
                schema = pq.ParquetFile(source).schema_arrow if path.is_file() else pq.ParquetDataset(path).schema
                all_units = [c for c in schema.names if c.startswith(UNIT_PREFIX)]
                columns = all_units if units is None else [all_units[i] for i in units]
                table = pq.read_table(source, columns=columns)
        except (pa.ArrowException, OSError) as error:
            raise RunError(f"cannot read {self.run_id}/{name}: {error}") from error
        if table.num_columns == 0:
            return np.zeros((table.num_rows, 0), dtype=np.float32)
        return np.column_stack([table.column(c).to_numpy() for c in columns]).astype(np.float32, copy=False)

    def steps(self, name: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """A per-step table (``inputs``, ``predictions``, ``text``) by its short name."""
        return self.read_table(f"steps/{name}.parquet", columns=columns)

    def rows_of(self, example_id: int) -> slice:
        """The rows of one example in every per-step table."""
        examples = self.examples()
        position = int(np.searchsorted(examples["example_id"].to_numpy(), example_id))
        start = int(examples["row_start"].to_numpy()[position])
        return slice(start, start + int(examples["length"].to_numpy()[position]))
