"""Bad inputs get one plain answer: ``error: ...`` naming the file (relative to --source), line or
field, exit status 2, no traceback, nothing half-written; warnings as ``warning: ...`` lines.

The Auslan loader, the text corpus loader and the array importer, directly and through
``pipeline.cli.main`` (the same code ``python -m pipeline`` runs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.core import stages
from pipeline.core.errors import DataError, DataWarning
from pipeline.datasets import auslan, files, text
from pipeline.datasets.auslan import load_auslan, read_tsd
from pipeline.importers.arrays import read_arrays

ROOT = Path(__file__).resolve().parents[1]
GOOD_ROW = "\t".join(f"{0.01 * c:.4f}" for c in range(22))


def tsd(n: int = 12, row: str = GOOD_ROW) -> str:
    return "".join(row + "\n" for _ in range(n))


def write(root: Path, relative: str, content: str | bytes) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


@pytest.fixture
def tree(tmp_path) -> Path:
    """An Auslan folder with all nine sessions, one good sign each (so no session is missing)."""
    root = tmp_path / "auslan"
    for session in range(1, 10):
        write(root, f"tctodd{session}/alive-1.tsd", tsd(10 + session))
    return root


def one_error_line(err: str) -> str:
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, err
    return errors[0]


def run_auslan(tree: Path, runs: Path, *extra: str) -> int:
    return main(["run", "auslan", "--source", str(tree), "--runs", str(runs), "--quiet", *extra])


@pytest.fixture
def stop_after_data(monkeypatch):
    """The auslan command up to its data stage only (no training): train raises a DataError."""
    from pipeline.kinds import classification

    def stop(ctx):
        raise DataError("stopped after the data stage (test)")

    monkeypatch.setattr(classification, "_train_stage", stop)


# -- numbers and bytes of a .tsd -------------------------------------------------------------------

def test_bad001_a_number_too_big_for_float32_is_called_an_overflow_not_inf(tree):
    path = write(tree, "tctodd3/big-1.tsd", tsd(3) + "\t".join(["1e308"] + ["0"] * 21) + "\n")
    with pytest.raises(DataError) as raised:
        read_tsd(path, "tctodd3/big-1.tsd")
    assert str(raised.value) == ("tctodd3/big-1.tsd, line 4, column 1 (left_x): 1e308 overflows float32 (the "
                                 "largest is about 3.4e+38); the glove's numbers are far smaller")
    write(tree, "tctodd3/inf-1.tsd", tsd(2) + "\t".join(["0"] * 21 + ["inf"]) + "\n")
    with pytest.raises(DataError, match=r"line 3, column 22 \(right_little\): inf is not a finite number"):
        read_tsd(tree / "tctodd3/inf-1.tsd", "tctodd3/inf-1.tsd")


def test_bad002_a_byte_order_mark_is_accepted(tree):
    path = write(tree, "tctodd1/bom-1.tsd", b"\xef\xbb\xbf" + tsd(5).encode())
    data = read_tsd(path, "tctodd1/bom-1.tsd")
    assert data.shape == (5, 22) and data[0, 1] == np.float32(0.01)
    corpus = text.file_corpus(write(tree.parent, "bom.txt", b"\xef\xbb\xbfHello there.\n\nAgain.\n"))
    assert corpus.text.startswith("Hello")


def test_bad003_a_latin1_byte_is_named_with_its_line(tree):
    path = write(tree, "tctodd2/cafe-1.tsd", tsd(4).encode() + "caf\u00e9\n".encode("latin-1"))
    with pytest.raises(DataError) as raised:
        read_tsd(path, "tctodd2/cafe-1.tsd")
    assert str(raised.value).startswith("tctodd2/cafe-1.tsd, line 5: not a text file of numbers (byte 0xe9")


def test_bad004_a_huge_tsd_is_refused_before_it_is_read(tree, monkeypatch):
    path = tree / "tctodd4" / "huge-1.tsd"
    with open(path, "wb") as handle:
        handle.truncate(50 * 1024 * 1024)              # 50 MB (sparse: no time, no disk)
    with pytest.raises(DataError, match=r"^tctodd4/huge-1\.tsd: 52\.4 MB, more than the 5 MB read from one file "
                                        r"\(real Auslan recordings are under 100 KB\)"):
        load_auslan(tree)
    reads = []
    real_read = os.read
    monkeypatch.setattr(files.os, "read", lambda fd, n: reads.append(n) or real_read(fd, n))
    with pytest.raises(DataError, match="52.4 MB"):
        read_tsd(path)
    assert reads == []                                 # refused from its size alone, nothing read
    data = load_auslan(tree, skip_bad_files=True)      # a bad file like any other: skippable
    assert data.notes["skipped_bad_files"] == 1


# -- files that cannot be read at all ----------------------------------------------------------------

def test_bad010_an_unreadable_tsd_is_an_error_even_with_skip_bad_files(tree, tmp_path, monkeypatch, capsys,
                                                                       stop_after_data):
    target = write(tree, "tctodd5/secret-1.tsd", tsd(5))
    real_open = os.open

    def denied(path, flags, *args, **kwargs):
        if Path(path) == target:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(files.os, "open", denied)
    runs = tmp_path / "runs"
    assert run_auslan(tree, runs, "--skip-bad-files") == 2
    assert one_error_line(capsys.readouterr().err) == "error: tctodd5/secret-1.tsd: cannot read (permission denied)"
    assert not (runs / "auslan").exists()


@pytest.mark.parametrize("kind", ["fifo", "folder", "dangling link", "link loop"])
def test_bad011_a_tsd_that_is_no_regular_file_is_named_and_never_blocks(tree, tmp_path, kind, capsys,
                                                                        stop_after_data):
    path = tree / "tctodd6" / "odd-1.tsd"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "dangling link":
        path.symlink_to(tmp_path / "gone.tsd")
    else:
        path.symlink_to(path.name)
    runs = tmp_path / "runs"
    clock = time.perf_counter()
    assert run_auslan(tree, runs, "--skip-bad-files") == 2
    assert time.perf_counter() - clock < 60
    line = one_error_line(capsys.readouterr().err)
    expected = {"fifo": "not a regular file but a named pipe", "folder": "not a regular file but a folder",
                "dangling link": "cannot read (a link that leads nowhere)",
                "link loop": "cannot read (a link loop"}[kind]
    assert line.startswith(f"error: tctodd6/odd-1.tsd: {expected}")
    assert str(tmp_path) not in line and not (runs / "auslan").exists()


def test_bad012_a_folder_link_loop_under_the_source_is_listed_once_and_not_followed_forever(tree):
    (tree / "tctodd1" / "again").symlink_to(tree, target_is_directory=True)
    (tree / "loop").symlink_to("loop")
    listing = stages.source_listing(tree)
    names = [entry[0] for entry in listing]
    assert "tctodd1/alive-1.tsd" in names and not any(name.startswith("tctodd1/again/") for name in names)
    assert ["loop", "unreadable", "ELOOP"] in listing
    assert len(load_auslan(tree).X) == 9


def test_bad013_a_source_tree_full_of_other_files_is_refused_quickly(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(stages, "MAX_SOURCE_FILES", 50)
    big = tmp_path / "usr"
    for i in range(60):
        write(big, f"lib/{i // 10}/f{i}.so", "x")
    assert run_auslan(big, tmp_path / "runs") == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("error: usr: more than 50 files under this data source")
    assert not (tmp_path / "runs" / "auslan").exists()


@pytest.mark.skipif(not Path("/usr/lib").is_dir(), reason="no /usr on this machine")
def test_bad014_source_usr_is_an_error_line_within_seconds(tmp_path, capsys):
    clock = time.perf_counter()
    assert run_auslan(Path("/usr"), tmp_path / "runs") == 2
    assert time.perf_counter() - clock < 30
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("error: usr: ") and ("more than" in line or "no session folders" in line)


# -- warnings: skipped files, a missing session ------------------------------------------------------

def test_bad020_skip_bad_files_prints_plain_warning_lines_and_records_the_count(tree, tmp_path, capsys,
                                                                                 stop_after_data):
    write(tree, "tctodd1/empty-1.tsd", "")
    write(tree, "tctodd2/short-1.tsd", tsd(2) + "1 2 3\n")
    runs = tmp_path / "runs"
    assert run_auslan(tree, runs, "--skip-bad-files") == 2          # stopped after the data stage
    err = capsys.readouterr().err
    warned = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert warned == ["warning: skipped 2 bad files: tctodd1/empty-1.tsd (empty file, no frames), "
                      "tctodd2/short-1.tsd (line 3: 3 fields, expected 22)"]
    assert "UserWarning" not in err and "DataWarning" not in err and "warnings.warn" not in err
    notes = json.loads((runs / "auslan" / "manifest.json").read_text())["dataset"]["notes"]
    assert notes["skipped_bad_files"] == 2 and notes["files_read"] == 9


def test_bad021_many_skipped_files_are_counted_and_the_list_is_cut(tree):
    for i in range(14):
        write(tree, f"tctodd7/bad-{i}.tsd", "x\n")
    with pytest.warns(DataWarning) as caught:
        data = load_auslan(tree, skip_bad_files=True)
    message = str(caught[0].message)
    assert message.startswith("skipped 14 bad files: tctodd7/bad-0.tsd (line 1: 1 fields, expected 22)")
    assert message.endswith(", and 4 more") and data.notes["skipped_bad_files"] == 14


def test_bad022_a_missing_session_folder_is_a_warning_naming_it(tree, tmp_path, capsys, stop_after_data):
    for path in (tree / "tctodd5").iterdir():
        path.unlink()
    (tree / "tctodd5").rmdir()
    with pytest.warns(DataWarning, match=r"^no tctodd5 under auslan \(the UCI archive has tctodd1 \.\. tctodd9\)"):
        data = load_auslan(tree)
    assert sorted(set(data.meta["session"])) == [1, 2, 3, 4, 6, 7, 8, 9]
    assert run_auslan(tree, tmp_path / "runs") == 2
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.startswith("warning: ")] == [
        "warning: no tctodd5 under auslan (the UCI archive has tctodd1 .. tctodd9); its signs are left out"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (tree / "tctodd5").mkdir()
        write(tree, "tctodd5/alive-1.tsd", tsd(9))
        load_auslan(tree)                              # all nine: no warning


# -- text corpora ----------------------------------------------------------------------------------

def test_bad030_text_files_that_cannot_be_read_are_named(tmp_path, monkeypatch):
    os.mkfifo(tmp_path / "pipe.txt")
    with pytest.raises(DataError, match=r"^pipe\.txt: not a regular file but a named pipe"):
        text.file_corpus(tmp_path / "pipe.txt")
    (tmp_path / "folder.txt").mkdir()
    with pytest.raises(DataError, match=r"^folder\.txt: not a regular file but a folder"):
        text.file_corpus(tmp_path / "folder.txt")
    monkeypatch.setattr(text, "MAX_TEXT_BYTES", 100)
    write(tmp_path, "long.txt", "word " * 100)
    with pytest.raises(DataError, match=r"^long\.txt: 0\.0 MB, more than the 0 MB read from one file"):
        text.file_corpus(tmp_path / "long.txt")


def test_bad031_text_errors_name_the_file_not_its_absolute_path(tmp_path, capsys):
    write(tmp_path, "latin.txt", "first\ncaf\u00e9\n".encode("latin-1"))
    assert main(["run", "text", "--source", str(tmp_path / "latin.txt"), "--runs", str(tmp_path / "runs"),
                 "--quiet"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("error: latin.txt: not UTF-8 text: byte 0xe9 at byte offset 9 (line 2)")
    assert str(tmp_path) not in line



@pytest.mark.parametrize("flags, message", [
    (["--learning-rate", "0"], "--learning-rate must be positive, not 0.0"),
    (["--learning-rate", "nan"], "--learning-rate must be positive, not nan"),
    (["--lr-decay", "1.5"], "--lr-decay must be in (0, 1], not 1.5"),
    (["--lr-decay", "0"], "--lr-decay must be in (0, 1], not 0.0")])
def test_bad049_text_learning_rate_flags_out_of_range_are_one_error_line(tmp_path, capsys, flags, message):
    write(tmp_path, "book.txt", "A line of prose.\n" * 200)
    assert main(["run", "text", "--source", str(tmp_path / "book.txt"), "--runs", str(tmp_path / "runs"),
                 "--quiet", *flags]) == 2
    assert one_error_line(capsys.readouterr().err) == f"error: {message}"
    assert not (tmp_path / "runs").exists()


# -- arrays ------------------------------------------------------------------------------------------

def good_fields():
    rng = np.random.default_rng(0)
    return {"h": rng.standard_normal((12, 3)).astype(np.float32), "lengths": np.array([5, 7]),
            "labels": np.array([0, 1]), "predictions": np.full((12, 2), 0.5, np.float32)}


def archive_bytes(**fields) -> bytes:
    import io
    buffer = io.BytesIO()
    np.savez(buffer, **fields)
    return buffer.getvalue()


@pytest.mark.parametrize("case, expected", [
    ("random bytes", r"^x\.npz: not an \.npz file \(an \.npz is a zip archive of \.npy arrays"),
    ("a .npy renamed", r"^x\.npz: not an \.npz file"),
    ("truncated", r"^x\.npz: a damaged or truncated \.npz archive"),
    ("bad crc", r"^x\.npz: h cannot be read from the archive \(BadZipFile: Bad CRC-32 for file 'h\.npy'\); "
                r"the file is damaged"),
    ("a text member", r"^x\.npz: member 'notes\.txt' is not a \.npy array"),
    ("a member that is no .npy", r"^x\.npz: h is not a \.npy array"),
    ("objects", r"^x\.npz: names is stored as Python objects, which are never loaded"),
])
def test_bad040_broken_npz_files_are_named_and_never_suggest_pickle(tmp_path, case, expected):
    path = tmp_path / "x.npz"
    good = archive_bytes(**good_fields())
    if case == "random bytes":
        path.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    elif case == "a .npy renamed":
        np.save(tmp_path / "x.npy", np.zeros(3))
        (tmp_path / "x.npy").rename(path)
    elif case == "truncated":
        path.write_bytes(good[:len(good) // 2])
    elif case == "bad crc":
        damaged = bytearray(good)
        damaged[200] ^= 0xFF                           # inside h.npy's data
        path.write_bytes(bytes(damaged))
    elif case == "a text member":
        path.write_bytes(good)
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr("notes.txt", "made by hand")
    elif case == "a member that is no .npy":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("h.npy", "not an array")
    else:
        np.savez(path, **good_fields(), names=np.array(["a", None], dtype=object))
    with pytest.raises(DataError, match=expected) as raised:
        imported = read_arrays(path)
        list(imported.blocks())
    assert "allow_pickle" not in str(raised.value) and str(tmp_path) not in str(raised.value)


@pytest.mark.parametrize("field, value, expected", [
    ("h", np.nan, r"^x\.npz: h is nan at sequence 1, step 2, unit 1 \(row 7\): every value must be a finite"),
    ("h", -np.inf, r"^x\.npz: h is -inf at sequence 1, step 2, unit 1 \(row 7\)"),
    ("predictions", np.inf, r"^x\.npz: predictions is inf at sequence 1, step 2, unit 1 \(row 7\)"),
])
def test_bad041_nan_or_inf_states_and_predictions_are_refused_naming_the_field(tmp_path, field, value, expected):
    fields = good_fields()
    fields[field][7, 1] = value
    np.savez(tmp_path / "x.npz", **fields)
    with pytest.raises(DataError, match=expected):
        list(read_arrays(tmp_path / "x.npz").blocks())


def test_bad042_nan_inputs_and_zero_units_are_refused(tmp_path):
    fields = good_fields()
    np.savez(tmp_path / "x.npz", **{**fields, "h": np.zeros((12, 0), np.float32)})
    with pytest.raises(DataError, match=r"^x\.npz: h has shape \(12, 0\): no units"):
        read_arrays(tmp_path / "x.npz")
    np.savez(tmp_path / "x.npz", **{**fields, "predictions": np.zeros((12, 0), np.float32)})
    with pytest.raises(DataError, match=r"^x\.npz: predictions has shape \(12, 0\): no units"):
        read_arrays(tmp_path / "x.npz")
    inputs = np.ones((12, 2), np.float32)
    inputs[11, 0] = np.nan
    np.savez(tmp_path / "x.npz", **fields, inputs=inputs)
    with pytest.raises(DataError, match=r"^x\.npz: inputs is nan at sequence 1, step 6, unit 0"):
        read_arrays(tmp_path / "x.npz").inputs.read(0, 12)


def test_bad043_a_nan_import_is_one_error_line_and_leaves_no_run(tmp_path, capsys):
    fields = good_fields()
    fields["h"][11, 2] = np.nan
    np.savez(tmp_path / "x.npz", **fields)
    runs = tmp_path / "runs"
    assert main(["import", "arrays", str(tmp_path / "x.npz"), "--runs", str(runs), "--quiet"]) == 2
    assert one_error_line(capsys.readouterr().err).startswith("error: x.npz: h is nan at sequence 1, step 6")
    assert not (runs / "x").exists()


def test_bad044_random_bytes_as_h5_or_parquet_are_named(tmp_path):
    for name in ("x.h5", "x.parquet"):
        write(tmp_path, name, np.random.default_rng(2).integers(0, 256, 3000, dtype=np.uint8).tobytes())
        with pytest.raises(DataError, match=rf"^{name.replace('.', chr(92) + '.')}: not a readable"):
            read_arrays(tmp_path / name)


def test_bad045_a_dangling_link_as_the_arrays_file_is_named(tmp_path):
    (tmp_path / "x.npz").symlink_to(tmp_path / "gone.npz")
    with pytest.raises(DataError, match=r"^x\.npz: a link that leads nowhere$"):
        read_arrays(tmp_path / "x.npz")


def test_bad046_auslan_source_errors_name_the_folder_not_its_path(tmp_path):
    with pytest.raises(DataError, match=r"^nowhere: Auslan folder not found"):
        load_auslan(tmp_path / "nowhere")
    with pytest.raises(DataError, match=r"^nowhere: data source not found \(no such file or folder\)$"):
        stages.source_listing(tmp_path / "nowhere")
    (tmp_path / "dead").symlink_to(tmp_path / "gone")
    with pytest.raises(DataError, match=r"^dead: data source not found \(a link that leads nowhere\)$"):
        stages.source_listing(tmp_path / "dead")


def test_bad047_the_auslan_limit_is_documented_where_it_is_set():
    assert auslan.MAX_TSD_BYTES == 5 * 1024 * 1024 and "MAX_TSD_BYTES" in (auslan.__doc__ or "")


def test_bad048_a_nan_import_in_a_real_process_is_one_error_line_without_paths(tmp_path):
    runs = tmp_path / "runs"
    bad = tmp_path / "bad.npz"
    h = np.ones((10, 3), np.float32)
    h[4, 2] = np.nan
    np.savez(bad, h=h)
    done = subprocess.run([sys.executable, "-m", "pipeline", "import", "arrays", str(bad), "--runs", str(runs),
                           "--run-id", "nan", "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    line = one_error_line(done.stderr)
    assert done.returncode == 2 and line == ("error: bad.npz: h is nan at sequence 0, step 4, unit 2 (row 4): every value "
                                  "must be a finite number")
    assert not (runs / "nan").exists()
