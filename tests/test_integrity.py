"""Nothing lost, nothing leaked (the run format's half): page checksums and recorded digests that
catch silent corruption, ``python -m pipeline verify``, the sweep of what killed writers leave, one
writer per run, a full disk, links inside a run, and the folder as the run's identity.

Runs here are small imports (no TensorFlow, a second each): ``import arrays`` of generated states.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline import runformat
from pipeline.cli import main
from pipeline.importers.arrays import read_arrays
from pipeline.kinds.imported import write_run
from pipeline.runformat import writer as writer_module

ROOT = Path(__file__).resolve().parents[1]
N_SEQUENCES, STEPS, UNITS = 40, 500, 8          # 20,000 rows: layer0-h.parquet is about 600 KB


def states_npz(path: Path, seed: int = 0, **extra) -> Path:
    rng = np.random.default_rng(seed)
    lengths = np.full(N_SEQUENCES, STEPS)
    fields = {"h": rng.standard_normal((N_SEQUENCES * STEPS, UNITS)).astype(np.float32),
              "c": rng.standard_normal((N_SEQUENCES * STEPS, UNITS)).astype(np.float32),
              "lengths": lengths, "labels": np.arange(N_SEQUENCES) % 2, "classes": np.array(["a", "b"]),
              **extra}
    np.savez(path, **fields)
    return path


def build(runs: Path, run_id: str = "imp", partition_rows: int | None = None, seed: int = 0) -> Path:
    source = states_npz(runs.parent / f"{run_id}-{seed}.npz", seed)
    path, written = write_run(read_arrays(source), runs, run_id, partition_rows=partition_rows,
                              project_settings={"methods": []})
    assert written
    return path


def flip(path: Path, size: int = 4096, where: float = 0.5) -> None:
    """Overwrite ``size`` bytes in the middle of a file with other bytes (the file keeps its size)."""
    length = path.stat().st_size
    offset = int(length * where)
    with open(path, "r+b") as handle:
        handle.seek(offset)
        old = handle.read(size)
        handle.seek(offset)
        handle.write(bytes((b + 1) % 256 for b in old))
    assert path.stat().st_size == length


def cli(*args) -> tuple[int, str, str]:
    """``python -m pipeline ARGS`` in a subprocess: (exit status, stdout, stderr)."""
    done = subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    return done.returncode, done.stdout, done.stderr


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    return errors[0]


@pytest.fixture
def runs(tmp_path) -> Path:
    return tmp_path / "runs"


# -- 1. silent corruption --------------------------------------------------------------------------

def test_int001_a_flipped_page_is_a_run_error_naming_the_file_not_wrong_numbers(runs):
    path = build(runs)
    good = runformat.Run(path).step_matrix(0, "h")
    flip(path / "steps" / "layer0-h.parquet")
    # Without verification the damage reads back as other numbers (what used to reach the page) or,
    # depending on the bytes, as a decompression error that does not say the file is damaged.
    try:
        unverified = pq.read_table(path / "steps" / "layer0-h.parquet").to_pandas()
        assert not np.array_equal(unverified[[f"u{j}" for j in range(UNITS)]].to_numpy(), good)
    except OSError as error:
        assert "checksum" not in str(error)
    run = runformat.Run(path)
    with pytest.raises(runformat.RunError, match=r"imp/steps/layer0-h\.parquet is damaged: .*checksum") as raised:
        run.step_matrix(0, "h")
    assert str(runs.resolve()) not in str(raised.value) and str(runs) not in str(raised.value)
    with pytest.raises(runformat.RunError, match=r"imp/steps/layer0-h\.parquet"):
        run.read_table("steps/layer0-h.parquet")
    np.testing.assert_array_equal(run.step_matrix(0, "c")[:5], runformat.Run(path).step_matrix(0, "c")[:5])


def test_int002_a_flipped_part_file_of_a_partitioned_table_is_caught_too(runs):
    path = build(runs, partition_rows=5000)
    part = path / "steps" / "layer0-h.parquet" / "part-00002.parquet"
    assert part.is_file()
    flip(part)
    with pytest.raises(runformat.RunError, match=r"imp/steps/layer0-h\.parquet is damaged"):
        runformat.Run(path).step_matrix(0, "h")


def test_int004_the_manifest_records_every_output_with_size_and_sha256(runs):
    path = build(runs, partition_rows=5000)
    manifest = json.loads((path / "manifest.json").read_text())
    files = manifest["files"]
    on_disk = sorted(p.relative_to(path).as_posix() for p in path.rglob("*")
                     if p.is_file() and p.name not in ("manifest.json", ".lock"))
    assert sorted(files) == on_disk
    assert "steps/layer0-h.parquet/part-00003.parquet" in files
    for relative, entry in files.items():
        data = (path / relative).read_bytes()
        assert entry == {"size": len(data), "sha256": __import__("hashlib").sha256(data).hexdigest()}
    assert runformat.Run(path).manifest.files == files


def test_int005_a_changed_import_replaces_the_records(runs):
    path = build(runs, seed=0)
    first = json.loads((path / "manifest.json").read_text())["files"]["steps/layer0-h.parquet"]
    build(runs, seed=1)
    second = json.loads((path / "manifest.json").read_text())["files"]["steps/layer0-h.parquet"]
    assert first["sha256"] != second["sha256"]
    assert second["sha256"] == runformat.file_digest(path / "steps" / "layer0-h.parquet")


def test_int006_a_truncated_output_is_not_taken_as_done(runs):
    path = build(runs)
    writer = runformat.RunWriter(runs, "imp")
    record = writer.manifest["stages"]["import"]
    assert writer.is_done("import", record["input_hash"])
    target = path / "steps" / "layer0-c.parquet"
    target.write_bytes(target.read_bytes()[:100])
    assert not writer.is_done("import", record["input_hash"])
    writer.close()


# -- verify ------------------------------------------------------------------------------------------

def test_int010_verify_is_clean_on_a_fresh_run_and_names_each_damaged_file(runs, capsys):
    path = build(runs)
    assert main(["verify", "imp", "--runs", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "run imp: 7 files checked" in out and "all intact" in out   # + 4 per-example state tables

    flip(path / "steps" / "layer0-h.parquet")
    (path / "steps" / "layer0-c.parquet").write_bytes((path / "steps" / "layer0-c.parquet").read_bytes()[:-10])
    (path / "examples.parquet").unlink()
    assert main(["verify", "imp", "--runs", str(runs)]) == 2
    lines = capsys.readouterr().out.splitlines()
    problems = [line for line in lines if line.startswith("problem: ")]
    assert len(problems) == 3, lines
    assert any("imp/steps/layer0-h.parquet: " in p and "sha256" in p and "checksum" in p for p in problems)
    assert any("imp/steps/layer0-c.parquet: " in p and "truncated" in p for p in problems)
    assert any("imp/examples.parquet: missing" in p for p in problems)
    assert lines[-1].startswith("run imp: 7 files checked") and lines[-1].endswith("3 problems")
    assert not any(str(runs) in line for line in lines)


def test_int011_verify_catches_a_same_size_edit_of_a_file_without_page_checksums(runs, capsys):
    build(runs)
    writer = runformat.RunWriter(runs, "imp")
    runformat.write_json({"note": "a model's settings"}, writer.path / "models" / "settings.json")
    writer.finish_stage("notes", "hash", 0.0, ["models/settings.json"])
    writer.close()
    flip(runs / "imp" / "models" / "settings.json", size=1)
    assert main(["verify", "imp", "--runs", str(runs)]) == 2
    out = capsys.readouterr().out
    assert "problem: imp/models/settings.json: its content differs from what was written (sha256 mismatch)" in out


def test_int012_verify_refuses_a_run_without_records_and_a_link_out(runs, tmp_path, capsys):
    path = build(runs)
    manifest = json.loads((path / "manifest.json").read_text())
    outside = tmp_path / "elsewhere.parquet"
    shutil.copy(path / "examples.parquet", outside)
    (path / "examples.parquet").unlink()
    (path / "examples.parquet").symlink_to(outside)
    assert main(["verify", "imp", "--runs", str(runs)]) == 2
    assert "imp/examples.parquet: a link to a file outside the run's folder" in capsys.readouterr().out
    del manifest["files"]
    (path / "manifest.json").write_text(json.dumps(manifest))
    assert main(["verify", "imp", "--runs", str(runs)]) == 2
    assert "records no file sizes or digests" in capsys.readouterr().out


def test_int013_verify_of_an_unknown_run_is_one_error_line(runs):
    runs.mkdir(parents=True)
    code, out, err = cli("verify", "nothing-here", "--runs", str(runs))
    assert code == 2
    assert one_error_line(err) == "error: no run 'nothing-here' in the runs folder (give a run's folder name and --runs)"


# -- 2. debris -----------------------------------------------------------------------------------------

def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_int020_opening_a_run_for_writing_sweeps_only_temporaries_no_live_process_owns(runs):
    path = build(runs)
    dead, me = dead_pid(), os.getpid()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        debris = {f"examples.parquet.tmp-{dead}-1": "file", f"steps/layer0-h.parquet.tmp-{dead}-2": "dir",
                  f"steps/layer0-c.parquet.old-{dead}-3": "dir", f"models/classifier.tmp-{dead}.keras": "file",
                  f"manifest.json.tmp-{me}-4": "file"}
        kept = {f"history.parquet.tmp-{sleeper.pid}-5": "file"}
        for name, kind in {**debris, **kept}.items():
            target = path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if kind == "dir":
                target.mkdir()
                (target / "part-00000.parquet").write_bytes(b"half")
            else:
                target.write_bytes(b"half")
        writer = runformat.RunWriter(runs, "imp")
        assert writer.swept == sorted(debris)
        writer.close()
        for name in debris:
            assert not (path / name).exists(), name
        assert (path / next(iter(kept))).exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_int021_readers_never_list_or_read_temporaries(runs):
    path = build(runs, partition_rows=5000)
    rows = len(runformat.Run(path).step_matrix(0, "h"))
    shutil.copytree(path, runs / "imp.tmp-999999-1")                 # a run folder being written
    shutil.copy(path / "steps" / "layer0-h.parquet" / "part-00000.parquet",
                path / "steps" / "layer0-h.parquet" / "part-00004.parquet.tmp-999999-2")
    assert [m.run_id for m in runformat.list_runs(runs)] == ["imp"]
    assert len(runformat.Run(path).step_matrix(0, "h")) == rows
    with pytest.raises(runformat.RunError, match="invalid run id"):
        runformat.Run.open(runs, "imp.tmp-999999-1")


WRITER_SCRIPT = """
import sys, time
import numpy as np
from pipeline import runformat
writer = runformat.RunWriter(sys.argv[1], "killed")
sink = writer.sink("steps/layer0-h.parquet")
sink.write(0, runformat.step_table(np.zeros(10), np.arange(10), np.ones((10, 3)), runformat.unit_columns(3)))
print("writing", flush=True)
time.sleep(60)
"""


def test_int022_kill_9_mid_stage_leaves_debris_the_next_writer_sweeps_and_a_lock_it_takes_over(runs):
    runs.mkdir(parents=True)
    child = subprocess.Popen([sys.executable, "-c", WRITER_SCRIPT, str(runs)], cwd=ROOT, stdout=subprocess.PIPE,
                             text=True)
    assert child.stdout.readline().strip() == "writing"
    path = runs / "killed"
    assert [p.name for p in (path / "steps").iterdir()][0].startswith("layer0-h.parquet.tmp-")
    holder = json.loads((path / ".lock").read_text())
    assert holder["pid"] == child.pid and holder["host"] == socket.gethostname()
    with pytest.raises(runformat.RunError, match=rf"is being written by pid {child.pid}"):
        runformat.RunWriter(runs, "killed")
    child.send_signal(signal.SIGKILL)
    child.wait()
    writer = runformat.RunWriter(runs, "killed")          # the dead pid's lock is taken over
    assert writer.swept == [f"steps/layer0-h.parquet.tmp-{child.pid}-" + writer.swept[0].rsplit("-", 1)[1]]
    assert list((path / "steps").iterdir()) == []
    assert json.loads((path / ".lock").read_text())["pid"] == os.getpid()
    writer.close()
    assert not (path / ".lock").exists()


# -- 3. two writers ----------------------------------------------------------------------------------

HOLDER_SCRIPT = """
import sys, time
from pipeline import runformat
writer = runformat.RunWriter(sys.argv[1], "imp")
print("holding", flush=True)
time.sleep(60)
"""


def test_int030_a_second_pipeline_on_the_same_run_is_refused_with_who_holds_it(runs, tmp_path):
    build(runs)
    child = subprocess.Popen([sys.executable, "-c", HOLDER_SCRIPT, str(runs)], cwd=ROOT, stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout.readline().strip() == "holding"
        source = states_npz(tmp_path / "other.npz", seed=5)
        code, out, err = cli("import", "arrays", str(source), "--runs", str(runs), "--run-id", "imp", "--force",
                             "--no-project", "--quiet")
        line = one_error_line(err)
        assert code == 2
        assert line.startswith(f"error: run 'imp' is being written by pid {child.pid} on host "
                               f"{socket.gethostname()} since ")
        assert line.endswith("; wait or remove imp/.lock if that process is gone")
        assert str(runs) not in line
    finally:
        child.kill()
        child.wait()
    # The refused import changed nothing; once the holder is gone the same command runs.
    assert runformat.verify_run(runs / "imp").ok
    code, out, err = cli("import", "arrays", str(tmp_path / "other.npz"), "--runs", str(runs), "--run-id", "imp",
                         "--force", "--no-project", "--quiet")
    assert code == 0, err


def test_int031_stale_locks_dead_pid_here_is_taken_over_other_host_is_refused(runs):
    path = build(runs)
    (path / ".lock").write_text(json.dumps({"pid": dead_pid(), "host": socket.gethostname(), "since": "then"}))
    runformat.RunWriter(runs, "imp").close()
    assert not (path / ".lock").exists()
    (path / ".lock").write_text(json.dumps({"pid": 12, "host": "another-machine", "since": "2026-01-01"}))
    with pytest.raises(runformat.RunError, match="by pid 12 on host another-machine since 2026-01-01; wait or "
                                                 r"remove imp/\.lock"):
        runformat.RunWriter(runs, "imp")
    assert json.loads((path / ".lock").read_text())["host"] == "another-machine"     # left as it was


def test_int032_the_lock_is_released_when_a_run_is_built_and_reentrant_in_one_process(runs):
    path = build(runs)
    assert not (path / ".lock").exists()
    first = runformat.RunWriter(runs, "imp")
    second = runformat.RunWriter(runs, "imp")               # the same process: shared
    second.close()
    assert (path / ".lock").exists()
    first.close()
    assert not (path / ".lock").exists()
    with runformat.RunWriter(runs, "imp"):
        assert (path / ".lock").exists()
    assert not (path / ".lock").exists()


# -- 4. a full disk, an unreadable manifest ----------------------------------------------------------

def test_int040_disk_full_while_writing_a_new_run_is_one_error_line_and_leaves_nothing(runs, tmp_path, monkeypatch,
                                                                                       capsys):
    source = states_npz(tmp_path / "states.npz")

    class FullDisk:
        def __init__(self, where, *args, **kwargs):
            self.where = where

        def write_table(self, *args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device", str(self.where))

        def close(self):
            pass

    monkeypatch.setattr(writer_module.pq, "ParquetWriter", FullDisk)
    assert main(["import", "arrays", str(source), "--runs", str(runs), "--run-id", "full", "--quiet"]) == 2
    err = capsys.readouterr().err
    line = one_error_line(err)
    assert line.startswith("error: cannot write full/steps/layer0-") and "no space left on the device" in line
    assert str(tmp_path) not in line
    assert not (runs / "full").exists()                   # nothing half-written


def test_int041_disk_full_on_an_existing_run_keeps_its_files_whole(runs, tmp_path, monkeypatch, capsys):
    path = build(runs)
    before = {p.relative_to(path).as_posix(): p.read_bytes() for p in path.rglob("*") if p.is_file()}

    def full(table, where, **kwargs):
        Path(where).write_bytes(b"PAR1 half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writer_module.pq, "write_table", full)
    source = states_npz(tmp_path / "new.npz", seed=3)
    assert main(["import", "arrays", str(source), "--runs", str(runs), "--run-id", "imp", "--force", "--quiet"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "cannot write imp/" in line and "no space left" in line
    after = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}
    assert not [name for name in after if runformat.temporary_owner(Path(name).name) is not None]
    for name in after - {"manifest.json"}:
        data = (path / name).read_bytes()
        assert data == before.get(name) or pq.ParquetFile(path / name).metadata.num_rows > 0, name


@pytest.mark.parametrize("content", [b"{ not json", b"\xff\xfe garbage", b"[1, 2, 3]", b""])
@pytest.mark.parametrize("force", [False, True])
def test_int042_a_corrupt_manifest_of_an_existing_run_is_one_error_line_even_with_force(runs, tmp_path, content,
                                                                                        force, capsys):
    path = build(runs)
    (path / "manifest.json").write_bytes(content)
    before = {p: p.read_bytes() for p in path.rglob("*") if p.is_file()}
    source = states_npz(tmp_path / "again.npz", seed=2)
    args = ["import", "arrays", str(source), "--runs", str(runs), "--run-id", "imp", "--quiet"]
    assert main(args + (["--force"] if force else [])) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("error: imp/manifest.json is not ")
    assert "move the folder imp away" in line
    assert {p: p.read_bytes() for p in path.rglob("*") if p.is_file()} == before


def test_int043_an_unreadable_manifest_is_a_run_error_for_the_reader_and_the_writer(runs, monkeypatch):
    path = build(runs)
    (path / "manifest.json").unlink()
    (path / "manifest.json").mkdir()
    with pytest.raises(runformat.RunError, match="imp"):
        runformat.Run(path)
    with pytest.raises(runformat.RunError, match=r"imp/manifest\.json"):
        runformat.RunWriter(runs, "imp")
    assert not (path / ".lock").exists()                  # the refused writer let go of the lock


# -- 5. links inside a run --------------------------------------------------------------------------

def test_int050_a_table_linking_outside_the_run_is_refused_by_name(runs, tmp_path):
    path = build(runs, partition_rows=5000)
    secret = tmp_path / "secret.parquet"
    shutil.copy(path / "examples.parquet", secret)
    (path / "examples.parquet").unlink()
    (path / "examples.parquet").symlink_to(secret)
    run = runformat.Run(path)
    with pytest.raises(runformat.RunError, match=r"imp/examples\.parquet is a link to a file outside the run"):
        run.examples()
    part = path / "steps" / "layer0-h.parquet" / "part-00001.parquet"
    shutil.copy(part, tmp_path / "part.parquet")
    part.unlink()
    part.symlink_to(tmp_path / "part.parquet")
    with pytest.raises(runformat.RunError, match=r"imp/steps/layer0-h\.parquet/part-00001\.parquet is a link"):
        run.step_matrix(0, "h")
    with pytest.raises(runformat.RunError, match="outside the run"):
        run.file_path("steps/layer0-h.parquet")


def test_int053_a_run_folder_linking_outside_the_runs_folder_is_not_written(runs, tmp_path):
    runs.mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (runs / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(runformat.RunError, match="'linked' is a link to a folder outside the runs folder"):
        runformat.RunWriter(runs, "linked")
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_int051_a_link_to_another_file_of_the_same_run_is_read(runs):
    path = build(runs)
    (path / "copy.parquet").write_bytes((path / "examples.parquet").read_bytes())
    (path / "examples.parquet").unlink()
    (path / "examples.parquet").symlink_to("copy.parquet")
    assert len(runformat.Run(path).examples()) == N_SEQUENCES


def test_int052_a_manifest_linking_outside_is_not_listed_or_opened(runs, tmp_path):
    path = build(runs)
    shutil.copy(path / "manifest.json", tmp_path / "manifest.json")
    (path / "manifest.json").unlink()
    (path / "manifest.json").symlink_to(tmp_path / "manifest.json")
    assert runformat.list_runs(runs) == []
    with pytest.raises(runformat.RunError, match="outside the run"):
        runformat.Run(path)


# -- 7. the folder is the run's identity --------------------------------------------------------------

def test_int070_a_copied_run_is_listed_and_opened_as_its_own_folder_and_flagged(runs):
    path = build(runs)
    shutil.copytree(path, runs / "copy")
    flip(runs / "copy" / "steps" / "layer0-h.parquet", where=0.05, size=16)
    manifests = {m.run_id: m for m in runformat.list_runs(runs)}
    assert sorted(manifests) == ["copy", "imp"]
    copy = manifests["copy"]
    assert copy["run_id"] == "copy" and copy.recorded_run_id == "imp" and copy.run_id_mismatch
    assert copy.get("run_id_mismatch") is True and copy.get("recorded_run_id") == "imp"
    assert not manifests["imp"].run_id_mismatch
    opened = runformat.Run.open(runs, "copy")
    assert opened.run_id == "copy" and opened.path == runs.resolve() / "copy"
    with pytest.raises(runformat.RunError, match="copy/steps/layer0-h.parquet"):   # the copy's own file
        opened.step_matrix(0, "h")
    runformat.Run.open(runs, "imp").step_matrix(0, "h")
    # Writing the copy makes it its own run: the manifest then records the folder's name.
    runformat.RunWriter(runs, "copy").write_manifest()
    assert not runformat.Run.open(runs, "copy").manifest.run_id_mismatch


def test_int071_a_run_written_while_a_reader_waits_is_only_listed_once_it_has_a_manifest(runs):
    writer = runformat.RunWriter(runs, "fresh")
    assert runformat.list_runs(runs) == []
    writer.write_manifest()
    assert [m.run_id for m in runformat.list_runs(runs)] == ["fresh"]
    writer.close()


# -- the cost stays small (the bench prints the numbers) ----------------------------------------------

def test_int080_the_integrity_bench_runs_on_a_run(runs):
    path = build(runs)
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "integrity.py"), str(path), "--repeats", "1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "verified ms" in done.stdout and "sha256" in done.stdout
