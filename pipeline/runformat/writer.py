"""Writing a run directory: atomic files, per-step tables (one file or part files), the manifest.

Every file is written under a temporary name and renamed into place, so a reader sees the old file
or the new one, never half of one; the manifest is written last. A stage rewrites its files only
after publishing a manifest that forgets it (``RunWriter.invalidate_from`` + ``write_manifest``),
which is how readers tell a rewrite (``Run.check_unchanged``).

Integrity: parquet files carry page checksums (the reader verifies them), and when a stage finishes
the manifest records every output file's size and sha256 under ``files`` (``python -m pipeline
verify`` checks them). One writer at a time: ``RunWriter`` holds ``<run>/.lock`` (an exclusive
``flock`` plus the holder's pid, host and start time) and, once it holds it, sweeps the temporaries
that killed writers left behind. An ``OSError`` while writing (a full disk, a folder without
write permission) becomes a ``RunError`` naming the file inside the run.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import socket
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.runformat.schema import (
    DIGEST,
    FILES_KEY,
    FLOAT16_MAX,
    LOCK_FILE,
    MANIFEST_FILE,
    RUN_ID_PATTERN,
    SCHEMA_VERSION,
    STORAGE_TYPES,
    RunError,
    temporary_owner,
)

ROW_GROUP = 65536
ID_COLUMNS = ["example_id", "t"]
DIGEST_CHUNK = 1 << 20

# Temporaries this process is writing now: a sweep (of a run opened again in this process) keeps them.
_live_temporaries: set[str] = set()


def temporary_name(path: Path, kind: str = "tmp") -> Path:
    tmp = path.with_name(f"{path.name}.{kind}-{os.getpid()}-{time.monotonic_ns()}")
    _live_temporaries.add(str(tmp))
    return tmp


def _done_with(tmp: Path) -> None:
    _live_temporaries.discard(str(tmp))


def publish(tmp: Path, path: Path) -> None:
    """Rename a finished temporary file or folder onto ``path`` (a folder replaces a folder)."""
    try:
        if path.is_dir() and tmp.is_dir():
            old = temporary_name(path, "old")
            os.replace(path, old)
            os.replace(tmp, path)
            remove(old)
            _done_with(old)
        else:
            os.replace(tmp, path)
    finally:
        _done_with(tmp)


def where_in_run(path: str | os.PathLike | None) -> str:
    """``<run_id>/<file>`` for a path inside a run (the runs folder's own path is never shown)."""
    if path is None:
        return "the run"
    path = Path(os.fsdecode(path))
    parts = path.parts
    for depth in range(len(parts) - 1, 0, -1):      # the innermost folder holding a manifest or lock
        folder = Path(*parts[:depth])
        if (folder / MANIFEST_FILE).exists() or (folder / LOCK_FILE).exists():
            return Path(folder.name, *parts[depth:]).as_posix()
    return path.name


def write_error(error: OSError, path: str | os.PathLike | None = None) -> RunError:
    """An OSError while writing a run -> a RunError that names the file inside the run."""
    where = where_in_run(error.filename if error.filename is not None else path)
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return RunError(f"cannot write {where}: no space left on the device (disk or quota full); "
                        f"free some space and run the same command again (finished stages are kept, "
                        f"nothing half-written was left)")
    reason = error.strerror or str(error)
    return RunError(f"cannot write {where}: {reason}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    Works for files and for directories (a Keras model folder, a partitioned dataset).
    """
    path = Path(path)
    tmp = temporary_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        publish(tmp, path)
    finally:
        _done_with(tmp)
        if tmp.exists():
            remove(tmp)


def remove(path: Path) -> None:
    """Delete a file or a folder (a partitioned table, a model) if it exists."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def write_parquet(frame: pd.DataFrame | pa.Table, path: str | os.PathLike,
                  row_group_size: int = ROW_GROUP) -> None:
    """Write a table atomically, with zstd compression and row groups small enough to skip.

    Float columns are byte-stream-split instead of dictionary-encoded: on a real Auslan h table
    that made the file 45 MB instead of 80 MB and a full read 2.3x faster.
    """
    table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    try:
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp, row_group_size=row_group_size, **_encoding(table.schema))
    except OSError as error:
        raise write_error(error, path) from error


def _encoding(schema: pa.Schema) -> dict[str, Any]:
    """zstd, byte-stream-split floats, and a CRC per page (the reader verifies them)."""
    floats = [f.name for f in schema if pa.types.is_floating(f.type)]
    others = [f.name for f in schema if f.name not in floats]
    return {"compression": "zstd", "use_dictionary": others, "use_byte_stream_split": floats or False,
            "write_page_checksum": True}


def write_json(obj: dict, path: str | os.PathLike) -> None:
    text = json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n"
    try:
        with atomic_path(path) as tmp:
            tmp.write_text(text)
    except OSError as error:
        raise write_error(error, path) from error


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def stable_hash(*parts: Any) -> str:
    """A short, order-sensitive hash of JSON-able parts: the input hash of a stage."""
    text = json.dumps(parts, sort_keys=True, default=_json_default)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def step_table(example_ids: np.ndarray, t: np.ndarray, values: np.ndarray,
               columns: Sequence[str], dtype: str = "float32") -> pa.Table:
    """Build a per-step table (example_id, t, one column per unit) without copying twice.

    ``dtype``: "float32", or "float16" (half the bytes; ``RunError`` for a value beyond float16's
    range, which would be stored as infinity)."""
    if dtype not in STORAGE_TYPES:
        raise RunError(f"unknown storage type {dtype!r}; expected one of {', '.join(STORAGE_TYPES)}")
    values = np.asarray(values, dtype=np.float32)
    if dtype == "float16":
        finite = values[np.isfinite(values)]
        if finite.size and float(np.abs(finite).max()) > FLOAT16_MAX:
            raise RunError(f"values up to {float(np.abs(finite).max()):.4g} do not fit float16 (at most "
                           f"{FLOAT16_MAX:g}); store this tensor as float32")
        values = values.astype(np.float16)
    arrays = [pa.array(np.asarray(example_ids, dtype=np.int32)), pa.array(np.asarray(t, dtype=np.int32))]
    arrays += [pa.array(np.ascontiguousarray(values[:, j])) for j in range(values.shape[1])]
    return pa.Table.from_arrays(arrays, names=[*ID_COLUMNS, *columns])


class TableSink:
    """One per-step table written block by block in row order: a single file, or part files of
    ``partition_rows`` rows each in a folder of the table's name (Spark's layout, which Dask, Spark,
    Ray and ``Run`` read as one dataset). Written under a temporary name, renamed on ``close``."""

    def __init__(self, path: Path, partition_rows: int | None = None):
        self.path, self.partition_rows = Path(path), partition_rows
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise write_error(error, self.path) from error
        self._tmp = temporary_name(self.path)
        self._writer: pq.ParquetWriter | None = None
        self._part = -1

    def write(self, first_row: int, table: pa.Table) -> None:
        try:
            self._write(first_row, table)
        except OSError as error:
            raise write_error(error, self.path) from error

    def _write(self, first_row: int, table: pa.Table) -> None:
        if self.partition_rows is None:
            self._writer_for(0, table.schema).write_table(table, row_group_size=ROW_GROUP)
            return
        offset = 0
        while offset < table.num_rows:
            row = first_row + offset
            part = row // self.partition_rows
            take = min(table.num_rows - offset, (part + 1) * self.partition_rows - row)
            self._writer_for(part, table.schema).write_table(table.slice(offset, take),
                                                             row_group_size=ROW_GROUP)
            offset += take

    def _writer_for(self, part: int, schema: pa.Schema) -> pq.ParquetWriter:
        if self._writer is None or part != self._part:
            self._close_part()
            if self.partition_rows is None:
                target = self._tmp
            else:
                self._tmp.mkdir(parents=True, exist_ok=True)
                target = self._tmp / f"part-{part:05d}.parquet"
            self._writer = pq.ParquetWriter(target, schema, **_encoding(schema))
            self._part = part
        return self._writer

    def _close_part(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def close(self) -> None:
        """Publish the table (rename it into place)."""
        try:
            self._close_part()
            publish(self._tmp, self.path)
        except OSError as error:
            self.abort()
            raise write_error(error, self.path) from error

    def abort(self) -> None:
        """Drop what was written; the published table (if any) stays as it was."""
        with contextlib.suppress(OSError):
            self._close_part()
        self._writer = None
        remove(self._tmp)
        _done_with(self._tmp)


def file_digest(path: str | os.PathLike) -> str:
    """The sha256 of a file, read in 1 MiB chunks.

    sha256 rather than blake2b or xxhash: hashlib's sha256 uses the CPU's SHA extensions (about
    1 GB/s on this project's machines, twice blake2b), needs no extra package, and also catches a
    deliberate edit; the digest is computed once per file per stage, right after writing it.
    """
    digest = hashlib.new(DIGEST)
    with open(path, "rb") as handle:
        while chunk := handle.read(DIGEST_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def output_files(run_path: Path, name: str) -> list[str]:
    """The files an output is made of: itself, or every file under it (part files, a model folder)."""
    path = run_path / name
    if path.is_dir() and not path.is_symlink():
        return sorted(p.relative_to(run_path).as_posix() for p in path.rglob("*")
                      if p.is_file() and temporary_owner(p.name) is None)
    return [name] if path.is_file() else []


def file_records(run_path: Path, outputs: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``{relative path: {"size", "sha256"}}`` of every file of ``outputs``."""
    records = {}
    for name in outputs:
        for relative in output_files(run_path, name):
            try:
                records[relative] = {"size": (run_path / relative).stat().st_size,
                                     DIGEST: file_digest(run_path / relative)}
            except OSError as error:
                raise RunError(f"cannot read back {run_path.name}/{relative} to record its digest "
                               f"({error.strerror or error})") from error
    return records


# -------------------------------------------------------------------------------------------------
# One writer per run: the lock, and the sweep of what killed writers left

def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (another user's counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False
    return True


def sweep_temporaries(run_path: Path) -> list[str]:
    """Delete the temporaries under ``run_path`` that no live writer owns; return their names.

    A temporary's name carries its writer's pid (``<name>.tmp-<pid>-<ns>``). One is kept when that
    pid is alive on this host and is not this process, or when it is this process's own and still
    being written (a run opened twice in one process).
    """
    removed = []
    me = os.getpid()
    for folder, dirs, files in os.walk(run_path):
        for name in [*dirs, *files]:
            pid = temporary_owner(name)
            if pid is None:
                continue
            path = Path(folder) / name
            if pid == me and str(path) in _live_temporaries or pid != me and pid_alive(pid):
                continue
            remove(path)
            removed.append(path.relative_to(run_path).as_posix())
        dirs[:] = [d for d in dirs if temporary_owner(d) is None]
    return sorted(removed)


def lock_holder(run_path: Path) -> dict[str, Any] | None:
    """What ``<run>/.lock`` says about its holder (pid, host, since), or None when there is none."""
    try:
        return _parse_holder((run_path / LOCK_FILE).read_text())
    except OSError:
        return None


def _parse_holder(text: str) -> dict[str, Any]:
    try:
        holder = json.loads(text)
    except ValueError:
        return {}
    return holder if isinstance(holder, dict) else {}


class _Lock:
    """``<run>/.lock``: an exclusive ``flock`` held while this process writes the run, with the
    holder's pid, host and start time in the file for the message the next writer gets.

    Re-entrant within a process (a run opened twice, e.g. by a stage and a test, shares it).
    A lock left by a dead process on this host (or by this pid in an earlier life) is taken over;
    one held by a live process, or left by another host, is refused.
    """

    _held: dict[str, list] = {}               # lock path -> [descriptor, count]
    _guard = threading.Lock()

    def __init__(self, run_path: Path, run_id: str):
        self.path = str(run_path.resolve() / LOCK_FILE)
        self.run_id = run_id
        self.released = False
        with self._guard:
            held = self._held.get(self.path)
            if held is not None:
                held[1] += 1
                return
            self._held[self.path] = [self._acquire(), 1]

    def _acquire(self) -> int:
        for _ in range(10):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as error:
                raise write_error(error, self.path) from error
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _parse_holder(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
                os.close(fd)
                raise RunError(self._busy(holder)) from None
            try:
                current = os.stat(self.path).st_ino
            except FileNotFoundError:
                current = None
            if current != os.fstat(fd).st_ino:       # the holder removed it as we opened it: again
                os.close(fd)
                continue
            holder = _parse_holder(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
            if holder and not self._stale(holder):
                os.close(fd)
                raise RunError(self._busy(holder))
            record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, record, 0)
            return fd
        raise RunError(f"run {self.run_id!r}: cannot take {self.run_id}/{LOCK_FILE} (it keeps changing); "
                       f"another writer is starting")

    @staticmethod
    def _stale(holder: dict[str, Any]) -> bool:
        if holder.get("host") != socket.gethostname():
            return False                              # another machine's process: cannot tell
        pid = holder.get("pid")
        if not isinstance(pid, int):
            return True
        return pid == os.getpid() or not pid_alive(pid)

    def _busy(self, holder: dict[str, Any]) -> str:
        who = (f"pid {holder.get('pid')} on host {holder.get('host')} since {holder.get('since')}"
               if holder.get("pid") else "another process")
        return (f"run {self.run_id!r} is being written by {who}; wait or remove "
                f"{self.run_id}/{LOCK_FILE} if that process is gone")

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        with self._guard:
            held = self._held.get(self.path)
            if held is None:
                return
            held[1] -= 1
            if held[1] > 0:
                return
            del self._held[self.path]
            with contextlib.suppress(OSError):
                os.unlink(self.path)          # while still holding it: the next writer opens a new one
            os.close(held[0])


class RunWriter:
    """Writes one run directory stage by stage; the manifest is rewritten after each stage.

    A stage is skipped when the manifest records the same input hash for it and its outputs exist
    (with the recorded sizes), so an interrupted run resumes where it stopped. Rewrite a stage's
    files only after publishing a manifest that forgets the stage (``invalidate_from`` +
    ``write_manifest``): readers tell a rewrite from that (``Run.check_unchanged``).

    Opening one takes the run's lock (``RunError`` when another live process holds it) and sweeps
    stale temporaries; ``close()`` (or leaving a ``with`` block, or the writer being collected)
    releases the lock.
    """

    def __init__(self, runs_dir: str | os.PathLike, run_id: str):
        if not isinstance(run_id, str) or not RUN_ID_PATTERN.match(run_id) or ".." in run_id \
                or temporary_owner(run_id) is not None:
            raise RunError(f"invalid run id {run_id!r}: use letters, digits, '.', '_' and '-' only")
        self.run_id = run_id
        self.path = Path(runs_dir) / run_id
        self.created = False              # whether this writer made the run's folder
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.mkdir()
            self.created = True
        except FileExistsError:
            if not self.path.is_dir():
                raise RunError(f"{run_id} in the runs folder is a file, not a run folder") from None
        except OSError as error:
            raise RunError(f"cannot create the run folder {run_id}: {error.strerror or error}") from error
        if self.path.resolve().parent != Path(runs_dir).resolve():
            raise RunError(f"run {run_id!r} is a link to a folder outside the runs folder; it is not written")
        self._lock = _Lock(self.path, run_id)
        self._finalizer = weakref.finalize(self, self._lock.release)
        try:
            self.manifest: dict[str, Any] = self._read_manifest()
            self.swept = sweep_temporaries(self.path)
        except BaseException:
            self.close()
            raise
        self.manifest.setdefault("schema_version", SCHEMA_VERSION)
        self.manifest["run_id"] = run_id
        self.manifest.setdefault("stages", {})
        self.manifest.setdefault("metrics", {})
        if not isinstance(self.manifest.get(FILES_KEY), dict):
            self.manifest[FILES_KEY] = {}

    def _read_manifest(self) -> dict[str, Any]:
        path = self.path / MANIFEST_FILE
        where = f"{self.run_id}/{MANIFEST_FILE}"
        advice = (f"it is not a manifest LSTM Lens wrote; move the folder {self.run_id} away (or remove "
                  f"it) to build the run afresh (--force rebuilds only a readable run)")
        if not os.path.lexists(path):
            return {}
        try:
            text = path.read_bytes().decode("utf-8")
            manifest = json.loads(text)
        except OSError as error:
            raise RunError(f"cannot read {where}: {error.strerror or error}") from error
        except UnicodeDecodeError:
            raise RunError(f"{where} is not UTF-8 text; {advice}") from None
        except ValueError as error:
            raise RunError(f"{where} is not valid JSON ({error}); {advice}") from None
        if not isinstance(manifest, dict) or not isinstance(manifest.get("stages", {}), dict):
            raise RunError(f"{where} is not a JSON object with stages; {advice}")
        if manifest.get("schema_version") != SCHEMA_VERSION:
            return {}  # an old format: every stage is recomputed
        return manifest

    # -- the lock ----------------------------------------------------------------------------
    def close(self) -> None:
        """Release the run's lock (the writer should not be used after)."""
        self._finalizer()

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- stages ------------------------------------------------------------------------------
    def reset(self, **fields: Any) -> None:
        """Forget everything recorded: a fresh manifest (e.g. an import replacing a trained run)."""
        self.manifest = {"schema_version": SCHEMA_VERSION, "run_id": self.manifest["run_id"],
                         "stages": {}, "metrics": {}, FILES_KEY: {}, **fields}

    def is_done(self, stage: str, input_hash: str) -> bool:
        record = self.manifest["stages"].get(stage)
        if not record or record.get("input_hash") != input_hash:
            return False
        files = self.manifest.get(FILES_KEY) or {}
        for name in record.get("outputs", []):
            path = self.path / name
            if not path.exists():
                return False
            for relative, entry in files.items():     # a truncated or replaced file: not done
                if (relative == name or relative.startswith(name + "/")) and isinstance(entry, dict):
                    try:
                        if (self.path / relative).stat().st_size != entry.get("size"):
                            return False
                    except OSError:
                        return False
        return True

    def finish_stage(self, stage: str, input_hash: str, seconds: float, outputs: Iterable[str],
                     **manifest_updates: Any) -> None:
        """Record a completed stage, its outputs' sizes and digests, and publish the manifest (the
        last write of the stage)."""
        outputs = sorted(outputs)
        self.manifest.update(manifest_updates)
        self.manifest["stages"][stage] = {"input_hash": input_hash, "seconds": round(seconds, 3),
                                          "outputs": outputs}
        files = self.manifest.setdefault(FILES_KEY, {})
        for name in outputs:
            for relative in [r for r in files if r == name or r.startswith(name + "/")]:
                del files[relative]
        files.update(file_records(self.path, outputs))
        self.manifest[FILES_KEY] = dict(sorted(files.items()))
        self.write_manifest()

    def invalidate_from(self, stage_order: Sequence[str], stage: str) -> None:
        """Forget ``stage`` and every later one (their inputs are about to change), with the
        recorded digests of their outputs."""
        files = self.manifest.get(FILES_KEY) or {}
        for later in stage_order[stage_order.index(stage):]:
            record = self.manifest["stages"].pop(later, None) or {}
            for name in record.get("outputs", []):
                for relative in [r for r in files if r == name or r.startswith(name + "/")]:
                    del files[relative]

    def outputs(self) -> set[str]:
        """Every file the recorded stages wrote."""
        return {name for record in self.manifest["stages"].values() for name in record.get("outputs", [])}

    def write_manifest(self) -> None:
        self.manifest["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        write_json(self.manifest, self.path / MANIFEST_FILE)

    def write_table(self, name: str, frame: pd.DataFrame | pa.Table) -> str:
        write_parquet(frame, self.path / name)
        return name

    def sink(self, name: str, partition_rows: int | None = None) -> TableSink:
        return TableSink(self.path / name, partition_rows)
