"""Reading a run directory: the dashboard's only door to runs (numpy + pyarrow, never TensorFlow).

Per-step tables hold the examples' real (unpadded) steps only, sorted by (example_id, t), so the
rows of example ``i`` are ``[row_start[i], row_start[i] + length[i])`` with ``row_start`` and
``length`` from examples.parquet: readers slice instead of filtering. A table is a parquet file or a
folder of part files under the same name (a partitioned dataset), read alike.

A run is its folder: its id is the folder's name (``Manifest.recorded_run_id`` keeps the one its
manifest was written with). Every read verifies the parquet page checksums, and refuses a file
that resolves outside the run's folder (a link out); errors are ``RunError`` naming the file
relative to the runs folder, never an absolute path. ``verify_run`` checks a whole run against the
sizes and digests its manifest records.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.runformat.schema import (
    DIGEST,
    EPOCH_PROJECTIONS_FILE,
    EXAMPLES_FILE,
    HISTORY_FILE,
    MANIFEST_FILE,
    PROJECTIONS_FILE,
    RUN_ID_PATTERN,
    SATURATION_GRID,
    SCHEMA_VERSION,
    UNIT_PREFIX,
    Layer,
    Manifest,
    RunChanged,
    RunError,
    parse_manifest,
    steps_file,
    temporary_owner,
)
from pipeline.runformat.writer import file_digest, lock_holder, pid_alive, stable_hash

CHECKSUMS = {"page_checksum_verification": True}     # every parquet read verifies the page CRCs


def saturation_edges() -> np.ndarray:
    """The thresholds the gate saturation table answers exactly: float32(k / SATURATION_GRID)."""
    return (np.arange(SATURATION_GRID + 1) / SATURATION_GRID).astype(np.float32)


def validate_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.match(run_id) or ".." in run_id \
            or temporary_owner(run_id) is not None:
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
    try:
        children = sorted(root.iterdir())
    except OSError:
        return []
    for child in children:
        manifest = child / MANIFEST_FILE
        if not RUN_ID_PATTERN.match(child.name) or temporary_owner(child.name) is not None:
            continue
        try:
            if not manifest.is_file() or child.resolve().parent != root.resolve():
                continue                                # a link out of the folder: not openable
            if not _inside(manifest.resolve(), child.resolve()):
                continue
            data = json.loads(manifest.read_bytes())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("schema_version") == SCHEMA_VERSION:
            try:
                found.append(parse_manifest(data, f"{child.name}/{MANIFEST_FILE}", folder=child.name))
            except RunError:
                continue
    return sorted(found, key=lambda m: m.updated, reverse=True)


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _scrub(message: str, run_path: Path, run_id: str) -> str:
    """An error message from pyarrow or the OS with the run's absolute path shown as its id."""
    for prefix in {str(run_path.resolve()), str(run_path), str(run_path.absolute())}:
        message = message.replace(prefix, run_id)
    return message


def _problem(run_id: str, name: str, error: BaseException, run_path: Path) -> RunError:
    """A RunError for a table that cannot be read; a failed page checksum is called damage."""
    text = _scrub(str(error), run_path, run_id)
    if "checksum" in text.lower() or "CRC" in text:
        return RunError(f"{run_id}/{name} is damaged: a page's checksum does not match its data "
                        f"({text}); rebuild the run (python -m pipeline verify {run_id} lists what is "
                        f"damaged)")
    return RunError(f"cannot read {run_id}/{name}: {text}")


def _file_state(path: Path) -> tuple:
    """(inode, mtime, size, bytes) of a small file, read through one descriptor."""
    with open(path, "rb") as handle:
        stat = os.fstat(handle.fileno())
        return stat.st_ino, stat.st_mtime_ns, stat.st_size, handle.read()


def _source(path: Path) -> contextlib.AbstractContextManager[Any]:
    """A parquet file opened once (a rename during the read cannot mix two versions of it), or a
    partitioned dataset's part files (temporaries and hidden files left out)."""
    if path.is_file():
        return pa.memory_map(str(path))
    parts = sorted(str(p) for p in path.rglob("*.parquet")
                   if p.is_file() and temporary_owner(p.name) is None
                   and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts))
    return contextlib.nullcontext(parts or path)


class Run:
    """Read access to one run directory. Loads lazily; every read is of the columns asked for."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        manifest_path = self.path / MANIFEST_FILE
        if not manifest_path.is_file():
            raise RunError(f"{self.path.name} has no {MANIFEST_FILE}: it is not a finished run")
        if not _inside(manifest_path.resolve(), self.path.resolve()):
            raise RunError(f"{self.path.name}/{MANIFEST_FILE} is a link to a file outside the run's "
                           f"folder; it is not read")
        try:
            self._manifest_state = _file_state(manifest_path)
        except OSError as error:
            raise RunError(f"cannot read {self.path.name}/{MANIFEST_FILE}: {error.strerror or error}") from error
        try:
            data = json.loads(self._manifest_state[-1])
        except ValueError as error:
            raise RunError(f"{self.path.name}/{MANIFEST_FILE} is not valid JSON ({error})") from error
        self.manifest: Manifest = parse_manifest(data, f"{self.path.name}/{MANIFEST_FILE}",
                                                 folder=self.path.name)
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
        """A table's path: a parquet file, or a directory of part files (a partitioned dataset).

        Refused (RunError naming it) when it, or a part file in it, resolves outside the run's folder.
        """
        path = self.path / name
        if not (path.is_file() or path.is_dir()):
            raise RunError(f"run {self.run_id!r} has no {name}")
        self._check_inside(path, name)
        return path

    def file_path(self, name: str) -> Path:
        """The path of any file of the run (``models/weights.npz``), checked like tables are."""
        return self._file(name)

    def _check_inside(self, path: Path, name: str) -> None:
        folder = self.path.resolve()
        if not _inside(path.resolve(), folder):
            raise RunError(f"{self.run_id}/{name} is a link to a file outside the run's folder; "
                           f"it is not read")
        if path.is_dir():
            for part in path.rglob("*"):
                if not _inside(part.resolve(), folder):
                    raise RunError(f"{self.run_id}/{part.relative_to(self.path).as_posix()} is a link "
                                   f"to a file outside the run's folder; it is not read")

    def has(self, name: str) -> bool:
        return (self.path / name).exists()

    def read_table(self, name: str, columns: Sequence[str] | None = None,
                   filters: Any = None) -> pd.DataFrame:
        return self.arrow_table(name, columns, filters).to_pandas()

    def arrow_table(self, name: str, columns: Sequence[str] | None = None, filters: Any = None) -> pa.Table:
        """A table as pyarrow reads it (no pandas conversion: columns go to numpy without a copy)."""
        path = self._file(name)
        try:
            with _source(path) as source:
                return pq.read_table(source, columns=list(columns) if columns else None,
                                     filters=filters, **CHECKSUMS)
        except (pa.ArrowException, OSError) as error:
            raise _problem(self.run_id, name, error, self.path) from error

    def examples(self) -> pd.DataFrame:
        if self._examples is None:
            self._examples = self.read_table(EXAMPLES_FILE)
        return self._examples

    def history(self) -> pd.DataFrame:
        return self.read_table(HISTORY_FILE)

    def projections(self, projection: str | None = None, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """projections.parquet, only ``projection``'s rows when given, only ``columns`` of those
        the table has when given (leaving out its string column ``projection`` saves a string per
        row: 0.5 s at 5.4M rows)."""
        if columns is not None:
            names = set(self.table_columns(PROJECTIONS_FILE))
            columns = [c for c in columns if c in names]
            if projection and (self.path / PROJECTIONS_FILE).is_file():
                return pd.DataFrame(self._projection_columns(projection, columns), copy=False)
        filters = [("projection", "=", projection)] if projection else None
        return self.arrow_table(PROJECTIONS_FILE, columns, filters).to_pandas(split_blocks=True)

    def _projection_columns(self, projection: str, columns: list[str]) -> dict[str, np.ndarray]:
        """One projection's ``columns`` of the projections file, row group by row group into
        arrays allocated once: a read of the whole table and its conversion hold the rows twice
        (at 5.4M rows 170 MB of fresh memory, slow to fault in on a VM whose host reclaims idle
        pages). The writer sorts by projection, so the row groups' statistics pick the groups to
        read; a group holding other projections too is filtered row by row."""
        try:
            with _source(self._file(PROJECTIONS_FILE)) as source:
                file = pq.ParquetFile(source, **CHECKSUMS)
                at = file.schema_arrow.get_field_index("projection")
                plan: list[tuple[int, pa.Table | None]] = []   # (row group, its filtered rows if mixed)
                for g in range(file.metadata.num_row_groups):
                    stats = file.metadata.row_group(g).column(at).statistics
                    known = stats is not None and stats.has_min_max
                    if known and not stats.min <= projection <= stats.max:
                        continue
                    if known and stats.min == stats.max == projection:
                        plan.append((g, None))
                    else:
                        mixed = file.read_row_group(g, columns=[*columns, "projection"])
                        plan.append((g, mixed.filter(pc.equal(mixed.column("projection"), projection))))
                sizes = [file.metadata.row_group(g).num_rows if rows is None else rows.num_rows for g, rows in plan]
                out = {c: np.empty(sum(sizes), dtype=file.schema_arrow.field(c).type.to_pandas_dtype())
                       for c in columns}
                row = 0
                for (g, rows), size in zip(plan, sizes):
                    table = file.read_row_group(g, columns=columns) if rows is None else rows
                    for c in columns:
                        out[c][row:row + size] = table.column(c).to_numpy()
                    row += size
                return out
        except (pa.ArrowException, OSError) as error:
            raise _problem(self.run_id, PROJECTIONS_FILE, error, self.path) from error

    def table_columns(self, name: str) -> list[str]:
        """A table's column names, from its footer (or its first part's) alone."""
        path = self._file(name)
        try:
            with _source(path) as source:
                return pq.read_schema(source[0] if isinstance(source, list) else source).names
        except (pa.ArrowException, OSError, IndexError) as error:
            raise _problem(self.run_id, name, error, self.path) from error

    @property
    def kept_epochs(self) -> list[int]:
        """The epochs of a recording's pictures (``every=N``: each N-th epoch and the last), in
        order, when its ``projections_by_epoch.parquet`` is there (manifest ``epoch_projections``);
        [] for every other run."""
        described = self.manifest.get("epoch_projections")
        epochs = described.get("epochs") if isinstance(described, dict) else None
        if not isinstance(epochs, list) or not self.has(EPOCH_PROJECTIONS_FILE):
            return []
        return sorted({int(e) for e in epochs if isinstance(e, int) and not isinstance(e, bool)})

    def epoch_projections(self, epoch: int | None = None) -> pd.DataFrame:
        """projections_by_epoch.parquet: ``epoch, example_id, t, x, y, last`` (``last``: the
        example's last step), each kept epoch's picture of the recorded examples, all in the one
        space fitted on every kept epoch's states (manifest ``epoch_projections``); only the rows of
        ``epoch`` when it is given. Rows in (epoch, example_id, t) order."""
        filters = [("epoch", "=", int(epoch))] if epoch is not None else None
        frame = self.read_table(EPOCH_PROJECTIONS_FILE, filters=filters)
        return frame.sort_values(["epoch", "example_id", "t"], kind="stable").reset_index(drop=True)

    def step_matrix(self, layer: int, kind: str, units: Sequence[int] | None = None) -> np.ndarray:
        """A (rows, units) float32 array of one tensor, rows in (example_id, t) order.

        Only the columns of ``units`` are read (all units when None).
        """
        name = steps_file(layer, kind)
        path = self._file(name)
        try:
            with _source(path) as source:
                schema = (pq.ParquetFile(source, **CHECKSUMS).schema_arrow if path.is_file()
                          else pq.ParquetDataset(source, **CHECKSUMS).schema)
                all_units = [c for c in schema.names if c.startswith(UNIT_PREFIX)]
                columns = all_units if units is None else [all_units[i] for i in units]
                table = pq.read_table(source, columns=columns, **CHECKSUMS)
        except (pa.ArrowException, OSError) as error:
            raise _problem(self.run_id, name, error, self.path) from error
        if table.num_columns == 0:
            return np.zeros((table.num_rows, 0), dtype=np.float32)
        return columns_as_rows(table, columns)

    def step_batches(self, layer: int, kind: str, batch_rows: int = 65536) -> Iterator[np.ndarray]:
        """One tensor's rows in (example_id, t) order as (rows, units) arrays of the stored dtype
        (float16 or float32), ``batch_rows`` at a time: a whole table in bounded memory."""
        name = steps_file(layer, kind)
        path = self._file(name)
        try:
            with _source(path) as source:
                for part in [source] if path.is_file() else source:
                    parquet = pq.ParquetFile(part, **CHECKSUMS)
                    units = [c for c in parquet.schema_arrow.names if c.startswith(UNIT_PREFIX)]
                    for batch in parquet.iter_batches(batch_size=batch_rows, columns=units):
                        yield np.column_stack([c.to_numpy(zero_copy_only=False) for c in batch.columns]) \
                            if batch.num_columns else np.zeros((batch.num_rows, 0), np.float32)
        except (pa.ArrowException, OSError) as error:
            raise _problem(self.run_id, name, error, self.path) from error

    def steps(self, name: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """A per-step table (``inputs``, ``predictions``, ``text``) by its short name."""
        return self.read_table(f"steps/{name}.parquet", columns=columns)

    def rows_of(self, example_id: int) -> slice:
        """The rows of one example in every per-step table."""
        examples = self.examples()
        position = int(np.searchsorted(examples["example_id"].to_numpy(), example_id))
        start = int(examples["row_start"].to_numpy()[position])
        return slice(start, start + int(examples["length"].to_numpy()[position]))


def columns_as_rows(table: pa.Table, columns: Sequence[str]) -> np.ndarray:
    """``columns`` of ``table`` as one C-order (rows, columns) float32 array. Each column's chunks
    fill one row of a (columns, rows) array, transposed once at the end: 105 ms for the Auslan
    run's float16 gate table (145k x 100), where ``np.column_stack`` took 350 ms."""
    by_column = np.empty((len(columns), table.num_rows), np.float32)
    for j, name in enumerate(columns):
        start = 0
        for chunk in table.column(name).chunks:
            by_column[j, start:start + len(chunk)] = chunk.to_numpy(zero_copy_only=False)
            start += len(chunk)
    return np.ascontiguousarray(by_column.T)


# -- integrity ------------------------------------------------------------------------------------

@dataclass
class Verification:
    """What ``verify_run`` found: one line per problem (empty: the run is intact)."""

    run_id: str
    problems: list[str] = field(default_factory=list)
    files: int = 0           # files checked
    bytes: int = 0           # their total size

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        size = f"{self.bytes / 1e6:,.1f} MB"
        if self.ok:
            return f"run {self.run_id}: {self.files} files checked ({size}), all intact"
        count = len(self.problems)
        return (f"run {self.run_id}: {self.files} files checked ({size}), "
                f"{count} problem{'s' if count != 1 else ''}")


def verify_run(path: str | os.PathLike) -> Verification:
    """Check a run against its manifest: every recorded file exists, has the recorded size and
    sha256, and stays inside the run's folder; every parquet file reads with its page checksums;
    every stage's outputs are recorded. Problems name files relative to the runs folder."""
    path = Path(path)
    result = Verification(path.name)
    try:
        run = Run(path)
    except RunError as error:
        result.problems.append(str(error))
        return result
    run_id, manifest = run.run_id, run.manifest
    holder = lock_holder(path)
    if holder and isinstance(holder.get("pid"), int) and pid_alive(holder["pid"]):
        result.problems.append(f"{run_id}: being written by pid {holder['pid']} on host {holder.get('host')} "
                               f"since {holder.get('since')}; verify it when that is done")
    if not manifest.complete:
        result.problems.append(f"{run_id}: the run is incomplete (status {manifest.status!r}): a stage was "
                               f"interrupted or is running; run the same command again to finish it")
    files = manifest.files
    if not files:
        result.problems.append(f"{run_id}/{MANIFEST_FILE} records no file sizes or digests (the run was "
                               f"written before LSTM Lens recorded them); rebuild it with --force to "
                               f"record them")
    for stage, record in manifest.stages.items():
        for name in record.get("outputs", []) if isinstance(record, dict) else []:
            if any(r == name or r.startswith(f"{name}/") for r in files):
                continue
            if not os.path.lexists(path / name):
                result.problems.append(f"{run_id}/{name}: missing (an output of stage {stage!r})")
            elif files:
                result.problems.append(f"{run_id}/{name}: no size or digest recorded for it (stage {stage!r})")
    for relative, entry in files.items():
        problem = _verify_file(run, relative, entry)
        result.files += 1
        with contextlib.suppress(OSError):
            result.bytes += (path / relative).stat().st_size
        if problem:
            result.problems.append(f"{run_id}/{relative}: {problem}")
    return result


def _verify_file(run: Run, relative: str, entry: Any) -> str | None:
    """What is wrong with one recorded file, or None."""
    path = run.path / relative
    if not isinstance(entry, dict) or not isinstance(entry.get("size"), int) or not entry.get(DIGEST):
        return f"the manifest's record {entry!r} is not {{'size': bytes, '{DIGEST}': hex}}"
    if not os.path.lexists(path):
        return "missing"
    if not _inside(path.resolve(), run.path.resolve()):
        return "a link to a file outside the run's folder"
    if not path.is_file():
        return "not a regular file"
    try:
        size = path.stat().st_size
        if size != entry["size"]:
            return f"{size:,} bytes, the manifest records {entry['size']:,} (truncated or replaced)"
        digest = file_digest(path)
    except OSError as error:
        return f"cannot be read ({error.strerror or error})"
    damaged = _parquet_problem(run, path) if relative.endswith(".parquet") else None
    if digest != entry[DIGEST]:
        return "its content differs from what was written (sha256 mismatch)" + (
            f"; {damaged}" if damaged else "")
    return damaged


def _parquet_problem(run: Run, path: Path) -> str | None:
    """Read every row group with page checksums verified; what fails, or None."""
    try:
        with pa.memory_map(str(path)) as source:
            parquet = pq.ParquetFile(source, **CHECKSUMS)
            for group in range(parquet.num_row_groups):
                parquet.read_row_group(group)
    except (pa.ArrowException, OSError) as error:
        text = _scrub(str(error), run.path, run.run_id)
        if "checksum" in text.lower():
            return f"a page checksum fails ({text})"
        return f"not readable as parquet ({text})"
    return None
