"""The stage engine every run kind goes through: a hash chain, resume, and a manifest after each stage.

A run kind declares its stages in order (``Stage``: a name and a function) and a hash of each
stage's inputs that chains on the previous one. ``run_stages`` skips a stage whose recorded hash is
unchanged and whose outputs exist, so running the same command again resumes an interrupted run;
``force`` recomputes everything. A stage function does its work, then ``ctx.finish(...)`` records
it; before rewriting files it calls ``ctx.begin(...)``, which publishes a manifest that forgets the
stage and the ones after it (readers tell a rewrite from that). Nothing is written before the first
stage opens the writer (``ctx.open_writer()``), so bad input leaves no half-made run; a run folder
this call created is removed again when the call fails before any stage finished. The writer holds
the run's lock until the call returns. An ``OSError`` while a stage writes the run (a full disk)
becomes a ``RunError`` naming the file inside the run.
"""

from __future__ import annotations

import errno
import os
import platform
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline.core.errors import DataError
from pipeline.core.progress import QUIET, Progress
from pipeline.runformat import RunError, RunWriter, validate_run_id, write_error

# A data source folder holds one data set (Auslan: 2,565 .tsd files): refuse to list a tree this big
# (``--source /usr``) rather than walk it for minutes.
MAX_SOURCE_FILES = 20_000


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[StageContext], str]        # does the work, returns a one-line note


class StageSkipped(Exception):
    """A stage with nothing to do for this run (said why); reported, not recorded."""


@dataclass
class StageReport:
    name: str
    seconds: float | None    # None: skipped (unchanged, or nothing to do)
    note: str = ""


@dataclass
class RunSummary:
    run_id: str
    path: Path
    stages: list[StageReport] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    status: str = "incomplete"


class StageContext:
    """What the stages of one call share: settings, the writer, data or models computed so far."""

    def __init__(self, config: dict, hashes: dict[str, str], runs_dir, run_id: str,
                 stage_names: Sequence[str], progress: Progress, scheduler=None):
        self.config, self.hashes, self.progress = config, hashes, progress
        # A dask.distributed scheduler (address or Client) for the per-step work, or None: where
        # the work runs, not what it computes, so it is in no stage's hash.
        self.scheduler = scheduler
        self.runs_dir, self.run_id, self.stage_names = runs_dir, run_id, list(stage_names)
        path = Path(runs_dir) / run_id
        self.writer: RunWriter | None = RunWriter(runs_dir, run_id) if path.is_dir() else None
        self.memo: dict[str, Any] = {}          # e.g. the loaded data, the trained model
        self._started = time.perf_counter()
        self.stage = ""

    @property
    def path(self) -> Path:
        return Path(self.runs_dir) / self.run_id

    def open_writer(self) -> RunWriter:
        if self.writer is None:
            self.writer = RunWriter(self.runs_dir, self.run_id)
        return self.writer

    def close(self, remove_new_run: bool = False) -> None:
        """Release the run's lock; ``remove_new_run``: and remove the run's folder if this call
        made it and no stage has finished in it (a failed first stage leaves nothing behind)."""
        writer, self.writer = self.writer, None
        if writer is None:
            return
        if remove_new_run and writer.created and not writer.manifest.get("stages"):
            shutil.rmtree(writer.path, ignore_errors=True)
        writer.close()

    def begin(self, fresh: dict | None = None) -> RunWriter:
        """Forget this stage and later ones before their files are rewritten (``fresh``: forget
        everything, e.g. an import replacing a trained run, and start from these fields)."""
        writer = self.open_writer()
        if fresh is not None:
            writer.reset(**fresh)
        else:
            writer.invalidate_from(self.stage_names, self.stage)
        writer.manifest["status"] = "incomplete"
        writer.write_manifest()
        return writer

    def finish(self, outputs, **updates) -> None:
        """Record the stage (its input hash, seconds, outputs) with ``updates`` to the manifest."""
        self.open_writer().finish_stage(self.stage, self.hashes[self.stage],
                                        time.perf_counter() - self._started, outputs,
                                        config=self.config, **updates)


def run_stages(stages: Sequence[Stage], config: dict, hashes: dict[str, str],
               runs_dir: str | os.PathLike, run_id: str, force: bool = False,
               progress: Progress = QUIET, scheduler=None) -> RunSummary:
    """Build (or resume) the run ``runs_dir/run_id`` through ``stages``; returns what each did.

    ``scheduler``: a dask.distributed scheduler for the stages' per-step work (``StageContext``)."""
    validate_run_id(run_id)
    names = [stage.name for stage in stages]
    ctx = StageContext(config, hashes, runs_dir, run_id, names, progress, scheduler)
    finished = False
    try:
        summary = _run(ctx, stages, hashes, force)
        finished = True
        return summary
    finally:
        ctx.close(remove_new_run=not finished)


def _run(ctx: StageContext, stages: Sequence[Stage], hashes: dict[str, str], force: bool) -> RunSummary:
    names = [stage.name for stage in stages]
    if ctx.writer is not None and force:
        ctx.writer.invalidate_from(names, names[0])
    summary = RunSummary(ctx.run_id, ctx.path)
    for stage in stages:
        if ctx.writer is not None and ctx.writer.is_done(stage.name, hashes[stage.name]):
            summary.stages.append(StageReport(stage.name, None, "unchanged"))
            continue
        ctx.stage, ctx._started = stage.name, time.perf_counter()
        try:
            note = stage.run(ctx)
        except StageSkipped as reason:
            summary.stages.append(StageReport(stage.name, None, str(reason)))
            continue
        except OSError as error:
            converted = _write_problem(error, ctx.path)
            if converted is None:
                raise
            raise converted from error
        summary.stages.append(StageReport(stage.name, time.perf_counter() - ctx._started, note))
    writer = ctx.open_writer()
    if writer.manifest.get("status") != "complete":
        writer.manifest["status"] = "complete"
        writer.write_manifest()
    summary.metrics = writer.manifest.get("metrics", {})
    summary.status = writer.manifest["status"]
    return summary


def _write_problem(error: OSError, run_path: Path) -> RunError | None:
    """A RunError for an OSError a stage met writing the run (a full disk, a file inside the run);
    None for any other OSError (a bug to see in full)."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return write_error(error, run_path)
    name = error.filename
    if name is None:
        return None
    try:
        inside = run_path.resolve() in Path(os.fsdecode(name)).resolve().parents
    except (OSError, ValueError):
        return None
    return write_error(error, name) if inside else None


def source_listing(source: str | os.PathLike | None, max_files: int | None = None) -> list | None:
    """Names, sizes and mtimes of every file under ``source``: a change there redoes the data stage.

    Links are followed (a folder seen twice, a link loop, is listed once); a link that leads
    nowhere is listed as such (the loader says whether it matters). More than ``max_files`` files
    (default ``MAX_SOURCE_FILES``) is refused: that is not a data set's folder. Errors name the source by its own name only.
    """
    if source is None:
        return None
    root = Path(source)
    try:
        if root.is_file():
            stat = root.stat()
            return [[root.name, stat.st_size, stat.st_mtime_ns]]
        if not root.is_dir():
            what = "a link that leads nowhere" if root.is_symlink() else "no such file or folder"
            raise DataError(f"{root.name}: data source not found ({what})")
        root_stat = root.stat()
    except OSError as error:
        raise DataError(f"{root.name}: cannot read the data source ({error.strerror or error})") from None
    listing: list = []
    seen = {(root_stat.st_dev, root_stat.st_ino)}
    max_files = max_files or MAX_SOURCE_FILES

    def walk_error(error: OSError) -> None:
        where = Path(os.fsdecode(error.filename)) if error.filename else root
        raise DataError(f"{_relative(where, root)}: cannot list this folder of the data source "
                        f"({error.strerror or error})")

    for folder, dirs, files in os.walk(root, followlinks=True, onerror=walk_error):
        kept = []
        for name in sorted(dirs):
            try:
                stat = os.stat(Path(folder) / name)
            except OSError:
                files.append(name)             # a link to a folder that is gone: listed as a file
                continue
            if (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                kept.append(name)
        dirs[:] = kept
        for name in sorted(files):
            path = Path(folder) / name
            relative = _relative(path, root)
            try:
                stat = path.stat()
                entry = [relative, stat.st_size, stat.st_mtime_ns]
            except OSError as error:            # a dangling link, a link loop
                entry = [relative, "unreadable", errno.errorcode.get(error.errno or 0, "?")]
            listing.append((folder, name, entry))
            if len(listing) > max_files:
                raise DataError(f"{root.name}: more than {max_files:,} files under this data source; "
                                f"give the folder that holds the data set itself (e.g. the one with "
                                f"tctodd1 .. tctodd9)")
    return [entry for _, _, entry in sorted(listing, key=lambda item: (item[0], item[1]))]


def _relative(path: Path, root: Path) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return Path(path).name


LIBRARIES = {"tensorflow": ("tensorflow-cpu", "tensorflow"), "keras": ("keras",), "torch": ("torch",),
             "numpy": ("numpy",), "pandas": ("pandas",), "pyarrow": ("pyarrow",),
             "scikit-learn": ("scikit-learn",)}


def library_versions() -> dict:
    """Versions of the installed libraries a run's numbers depend on (read without importing them)."""
    versions = {"python": platform.python_version()}
    for name, distributions in LIBRARIES.items():
        for distribution in distributions:
            try:
                versions[name] = metadata.version(distribution)
                break
            except metadata.PackageNotFoundError:
                continue
    return versions
