"""Auslan glove signs: the UCI "Australian Sign Language signs (High Quality)" data (Kadous 2002).

Layout: ``<source>/tctodd1 .. tctodd9/<sign>-<repetition>.tsd``; one frame a line, 22 numbers
separated by whitespace (a tab almost everywhere, but ``tctodd1/drink-1.tsd`` has two spaces on
one line). The first 11 columns are the left hand, the next 11 the right.

The defaults follow the study this tool reproduces (Tempczyk & Bartołd): drop the sign *his/hers*,
which is named ``her`` in session 1 and ``his_hers`` in sessions 2-9, keep sequences shorter than
90 frames and left-pad them with zeros to 90: 2528 sequences in 94 classes.
``his_hers="merge"`` keeps it as one class ``his_hers`` instead (95 classes, 2555 sequences).

Bad input gets a DataError naming the file relative to ``source`` and the line: a malformed file
(``skip_bad_files`` skips those, with one ``warning: skipped N bad files: ...``), and a file that
cannot be read at all (permissions, a folder or FIFO named ``.tsd``, a link that leads nowhere: never
skipped). A file over ``MAX_TSD_BYTES`` is refused before it is read; a UTF-8 byte-order mark is
accepted; a number too large for float32 is called that. A missing session folder is a warning.
"""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core.errors import DataWarning
from pipeline.datasets import DataError, SequenceDataset
from pipeline.datasets.files import UnreadableFile, read_bytes

QUANTITIES = ("x", "y", "z", "roll", "pitch", "yaw", "thumb", "fore", "middle", "ring", "little")
CHANNELS = [f"{hand}_{q}" for hand in ("left", "right") for q in QUANTITIES]
HANDS = {"left": list(range(11)), "right": list(range(11, 22))}
# One native signer recorded all nine sessions.
SIGNER = "Adam"
HIS_HERS_NAMES = ("her", "his_hers")   # the same sign, named differently in session 1
HIS_HERS_OPTIONS = ("drop", "merge")
SESSION_FOLDER = re.compile(r"^tctodd(\d+)$")
SESSIONS = range(1, 10)               # the UCI archive's tctodd1 .. tctodd9
# The real recordings are under 100 KB (at most about 140 frames of 22 numbers); refuse bigger
# files before reading them rather than hold a runaway file in memory.
MAX_TSD_BYTES = 5 * 1024 * 1024
FLOAT32_MAX = float(np.finfo(np.float32).max)
SKIPPED_LISTED = 10                   # skipped files named in the warning (all are in the notes)
BOM = b"\xef\xbb\xbf"


def load_auslan(source: str | Path, max_length: int = 90, his_hers: str = "drop",
                skip_bad_files: bool = False) -> SequenceDataset:
    """Read every ``tctoddN/*.tsd`` under ``source`` into a left-padded SequenceDataset.

    Sequences with ``max_length`` frames or more are dropped (the study keeps those shorter than 90).
    A malformed file raises DataError naming the file and line, or with ``skip_bad_files`` is skipped,
    counted in ``notes["skipped_bad_files"]``, listed in ``notes["skipped_files"]`` and named in one
    DataWarning. A file that cannot be read at all raises either way.
    """
    if his_hers not in HIS_HERS_OPTIONS:
        raise DataError(f"dataset.his_hers must be one of {HIS_HERS_OPTIONS}, not {his_hers!r}")
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise DataError(f"dataset.max_length must be a positive integer, not {max_length!r}")
    root = Path(source)
    files = _tsd_files(root)

    frames, signs, rows, skipped = [], [], [], []
    too_long, his_hers_files = [], 0
    for session, path in files:
        relative = path.relative_to(root).as_posix()
        try:
            sign, repetition = parse_file_name(path.name, relative)
            data = read_tsd(path, relative)
        except UnreadableFile:
            raise                          # permissions or not a file: fix it, do not skip it
        except DataError as error:
            if not skip_bad_files:
                raise
            skipped.append(str(error))
            continue
        if sign in HIS_HERS_NAMES:
            his_hers_files += 1
            if his_hers == "drop":
                continue
            sign = "his_hers"
        if len(data) >= max_length:
            too_long.append(f"{relative} ({len(data)} frames)")
            continue
        frames.append(data)
        signs.append(sign)
        rows.append({"session": session, "signer": SIGNER, "repetition": repetition,
                     "file": relative, "n_frames_raw": len(data)})
    if skipped:
        warnings.warn(DataWarning(skipped_warning(skipped)), stacklevel=2)
    if not frames:
        raise DataError(f"{root.name}: no sequences left to use ({len(files)} .tsd files found, "
                        f"{len(skipped)} skipped as malformed, "
                        f"{len(too_long)} of {max_length} frames or more)")

    classes = sorted(set(signs))
    index = {name: i for i, name in enumerate(classes)}
    lengths = np.array([len(f) for f in frames], dtype=np.int32)
    X = np.zeros((len(frames), max_length, len(CHANNELS)), dtype=np.float32)
    for i, data in enumerate(frames):
        X[i, max_length - len(data):] = data
    meta = pd.DataFrame(rows)
    meta = meta.astype({"session": "int32", "repetition": "int32", "n_frames_raw": "int32"})
    notes = {
        "files_found": len(files),
        "files_read": len(files) - len(skipped),
        "skipped_bad_files": len(skipped),
        "skipped_files": skipped,
        "dropped_too_long": len(too_long),
        "dropped_too_long_files": too_long,
        "his_hers": his_hers,
        ("dropped_his_hers" if his_hers == "drop" else "merged_his_hers"): his_hers_files,
        "max_length": max_length,
    }
    return SequenceDataset(
        name="auslan", source=str(source), X=X, lengths=lengths,
        labels=np.array([index[s] for s in signs], dtype=np.int32), classes=classes,
        channels=list(CHANNELS), meta=meta, padding="left",
        hands={hand: list(channels) for hand, channels in HANDS.items()}, notes=notes)


def skipped_warning(skipped: list[str]) -> str:
    """``skipped 2 bad files: tctodd1/a-1.tsd (line 3: ...), ...`` from the skipped files' errors."""
    named = []
    for message in skipped[:SKIPPED_LISTED]:
        file, _, why = message.partition(": ")
        where, comma, line = file.partition(", ")
        named.append(f"{where} ({line}: {why})" if comma else f"{file} ({why})")
    more = f", and {len(skipped) - SKIPPED_LISTED} more" if len(skipped) > SKIPPED_LISTED else ""
    return f"skipped {len(skipped)} bad file{'s' if len(skipped) != 1 else ''}: {', '.join(named)}{more}"


def _tsd_files(root: Path) -> list[tuple[int, Path]]:
    """(session, path) of every .tsd file, sessions in numeric order, files sorted by name.

    Every name ending in .tsd is returned, files or not: ``read_tsd`` says what is wrong with one
    that is not a readable file. Sessions of tctodd1 .. tctodd9 that are missing are warned about.
    """
    try:
        if not root.is_dir():
            raise DataError(f"{root.name}: Auslan folder not found (expected tctodd1 .. tctodd9 inside it)")
        sessions = sorted((int(m.group(1)), p) for p in root.iterdir()
                          if (m := SESSION_FOLDER.match(p.name)) and p.is_dir())
    except OSError as error:
        raise UnreadableFile(f"{root.name}: cannot list the Auslan folder ({error.strerror or error})") from None
    if not sessions:
        raise DataError(f"{root.name}: no session folders tctodd1 .. tctodd9 in it")
    missing = [f"tctodd{k}" for k in SESSIONS if k not in {session for session, _ in sessions}]
    if missing:
        warnings.warn(DataWarning(f"no {', '.join(missing)} under {root.name} (the UCI archive has "
                                  f"tctodd1 .. tctodd9); {'its' if len(missing) == 1 else 'their'} "
                                  f"signs are left out"), stacklevel=3)
    files = []
    for session, folder in sessions:
        try:
            tsd = sorted(p for p in folder.iterdir() if p.suffix == ".tsd")
        except OSError as error:
            raise UnreadableFile(f"{folder.name}: cannot list this session folder "
                                 f"({error.strerror or error})") from None
        if not tsd:
            raise DataError(f"{folder.name}: no .tsd files in this session folder")
        files.extend((session, p) for p in tsd)
    return files


def parse_file_name(name: str, where: str | None = None) -> tuple[str, int]:
    """``"flash-light-2.tsd"`` -> ``("flash-light", 2)``: the repetition follows the last ``-``."""
    stem = name[:-len(".tsd")] if name.endswith(".tsd") else name
    sign, dash, repetition = stem.rpartition("-")
    if not dash or not sign or not repetition.isdigit():
        raise DataError(f"{where or name}: file name has no repetition number "
                        "(expected <sign>-<repetition>.tsd)")
    return sign, int(repetition)


def read_tsd(path: str | Path, name: str | None = None) -> np.ndarray:
    """The frames of one .tsd file as float32 (frames, 22); ``name`` is how errors refer to it
    (default: the file's name)."""
    name = name or Path(path).name
    raw = read_bytes(path, name, MAX_TSD_BYTES, " (real Auslan recordings are under 100 KB)")
    raw = raw.removeprefix(BOM)
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise DataError(f"{name}, line {line}: not a text file of numbers (byte 0x{raw[error.start]:02x} "
                        f"at byte offset {error.start} is not ASCII)") from None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").rstrip().split("\n")
    rows = [line.split() for line in lines] if text.strip() else []
    if not rows:
        raise DataError(f"{name}: empty file, no frames")
    for number, fields in enumerate(rows, start=1):
        if len(fields) != len(CHANNELS):
            raise DataError(f"{name}, line {number}: {len(fields)} fields, expected {len(CHANNELS)}")
    try:
        with np.errstate(over="ignore"):           # 1e308 becomes inf here: reported below
            data = np.array(rows, dtype=np.float32)
    except ValueError:
        raise _first_non_numeric(name, rows) from None
    if not np.isfinite(data).all():
        line, column = np.argwhere(~np.isfinite(data))[0]
        field = rows[line][column]
        where = f"{name}, line {line + 1}, column {column + 1} ({CHANNELS[column]})"
        try:
            value = float(field)
        except ValueError:
            value = math.nan
        if math.isfinite(value):
            raise DataError(f"{where}: {field} overflows float32 (the largest is about "
                            f"{FLOAT32_MAX:.1e}); the glove's numbers are far smaller")
        raise DataError(f"{where}: {field} is not a finite number")
    return data


def _first_non_numeric(name: str, rows: list[list[str]]) -> DataError:
    for number, fields in enumerate(rows, start=1):
        for column, field in enumerate(fields, start=1):
            try:
                with np.errstate(over="ignore"):
                    np.float32(field)
            except ValueError:
                return DataError(f"{name}, line {number}, column {column} ({CHANNELS[column - 1]}): "
                                 f"{field!r} is not a number")
    return DataError(f"{name}: could not be read as numbers")
