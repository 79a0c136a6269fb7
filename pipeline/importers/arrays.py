"""Import per-step states from ``.npz``, HDF5 or parquet arrays (docs/import-format.md).

The same named fields in every container (npz keys, HDF5 datasets at the root, parquet columns):

- tensors ``h``, ``c``, ``input_gate``, ``forget_gate``, ``candidate``, ``output_gate`` (layer 0)
  or ``layer{L}_{kind}`` (any layer): flat ``(steps, units)`` with ``lengths`` or ``offsets``, or
  padded ``(sequences, steps, units)`` with ``lengths`` (``padding``: ``"right"``, the default,
  or ``"left"``); without ``lengths`` and ``offsets`` a flat tensor is one long stream.
- per sequence: ``labels`` (class indices) with ``classes`` (names), ``split``, ``names``,
  ``meta_{column}``.
- per step (flat or padded like the tensors): ``predictions`` (probabilities, one column per class
  or vocabulary entry, named by ``classes`` or ``vocabulary``), ``tokens`` (text), and
  ``annotation_{name}`` (numbers, or text for categories).
- ``attention``: pooling weights per step, or a (T_out x T_in) matrix per sequence with
  ``attention_out_lengths`` (``importers.attention``).

Parquet holds the same fields as one row per step: ``example_id`` (consecutive rows with one id are
a sequence; no column: one stream), tensor columns ``{field}.{unit}`` (``h.0``, ``layer1_c.7``,
``predictions.3``), per-step columns by name, and per-sequence columns (``labels``, ``split``,
``names``, ``meta_*``) repeated on each of a sequence's rows. ``classes``/``vocabulary`` go in the
file's key-value metadata as JSON lists.

npz files are read with ``allow_pickle=False``: text must be stored as unicode or bytes arrays.
HDF5 datasets are read a block of rows at a time, so a stream larger than memory imports fine.
Every error names the file by its name (never its absolute path) and the field at fault; states,
predictions and inputs must be finite (checked block by block as they stream).
"""

from __future__ import annotations

import json
import re
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import runformat
from pipeline.core.errors import DataError
from pipeline.importers.attention import FIELD as ATTENTION, OUT_LENGTHS, read_attention
from pipeline.importers.base import (
    ImportedRun,
    StepArray,
    array_blocks,
    as_strings,
    check_float,
    check_labels,
    check_lengths,
    check_split,
    file_fingerprint,
    lengths_from_offsets,
)

TENSOR_FIELD = re.compile(r"^(?:layer(\d+)_)?(" + "|".join(runformat.TENSOR_KINDS) + r")$")
PER_SEQUENCE = ("labels", "split", "names")
PER_STEP = ("predictions", "tokens")
LAYOUT = ("lengths", "offsets", "padding", "classes", "vocabulary", "channels")
FORMATS = {".npz": "npz", ".h5": "hdf5", ".hdf5": "hdf5", ".parquet": "parquet"}


def detect_format(path: Path) -> str:
    if path.is_dir():
        return "parquet"
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"{path.name}: unknown array format {path.suffix!r}; use .npz, .h5/.hdf5 or .parquet")
    return fmt


def read_arrays(path, name: str | None = None, extra_fields=()) -> ImportedRun:
    """The run described by the arrays in ``path`` (npz, HDF5 or parquet: by its suffix)."""
    path = Path(path)
    if not path.exists():
        what = "a link that leads nowhere" if path.is_symlink() else "no such file or folder"
        raise DataError(f"{path.name}: {what}")
    fmt = detect_format(path)
    try:
        fields = open_fields(path, fmt)
        imported = from_fields(fields, name or safe_name(path), str(path.resolve()), fmt,
                               fingerprint=file_fingerprint(path), extra_fields=extra_fields)
    except DataError as error:
        raise _naming(error, path.name) from None
    if imported.inputs is not None:
        imported.inputs.file = path.name
    blocks = imported.blocks

    def named_blocks():
        try:
            yield from blocks()
        except DataError as error:
            raise _naming(error, path.name) from None

    imported.blocks = named_blocks
    return imported


def _naming(error: DataError, file: str) -> DataError:
    """``error`` with the file's name in front, unless it already starts with it."""
    text = str(error)
    return error if text.startswith(file) else DataError(f"{file}: {text}")


def open_fields(path: Path, fmt: str) -> dict:
    """Field name -> array-like (h5py datasets stay on disk until sliced)."""
    if fmt == "npz":
        return npz_fields(path)
    if fmt == "hdf5":
        import h5py
        try:
            handle = h5py.File(path, "r")
            return {key: item for key, item in handle.items() if isinstance(item, h5py.Dataset)}
        except (OSError, RuntimeError, ValueError, KeyError) as error:
            raise DataError(f"{path.name}: not a readable HDF5 file ({_scrubbed(error, path)})") from None
    return parquet_fields(path)


NPZ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError,
              KeyError, RuntimeError)
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def npz_fields(path: Path) -> dict:
    """The members of an .npz archive, each loaded on first use; a file that is not a zip of .npy
    arrays (random bytes, a truncated archive, another kind of member) is refused by name."""
    not_npz = (f"{path.name}: not an .npz file (an .npz is a zip archive of .npy arrays, as np.savez "
               f"writes it)")
    try:
        with open(path, "rb") as handle:
            magic = handle.read(4)
    except OSError as error:
        raise DataError(f"{path.name}: cannot read ({error.strerror or error})") from None
    if magic not in ZIP_MAGIC:
        raise DataError(not_npz)
    try:
        archive = np.load(path, allow_pickle=False)
        members = archive.zip.namelist()
    except NPZ_ERRORS as error:
        raise DataError(f"{path.name}: a damaged or truncated .npz archive ({type(error).__name__}: "
                        f"{_scrubbed(error, path)})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(not_npz)
    others = [m for m in members if not m.endswith(".npy")]
    if others:
        raise DataError(f"{path.name}: member {others[0]!r} is not a .npy array; an .npz holds only "
                        f".npy arrays (np.savez)")
    return {key: _NpzField(archive, key, path.name) for key in archive.files}


def _scrubbed(error: BaseException, path: Path) -> str:
    """An exception's text with the file's path shown as its name."""
    text = str(error)
    for prefix in {str(path.resolve()), str(path.absolute()), str(path)}:
        text = text.replace(prefix, path.name)
    return text


class _NpzField:
    """An npz member, loaded on first use (np.load's archive decompresses on each access)."""

    def __init__(self, archive, key, file: str = "the .npz file"):
        self.archive, self.key, self.file, self._value = archive, key, file, None

    def load(self) -> np.ndarray:
        if self._value is None:
            try:
                value = self.archive[self.key]
            except ValueError as error:
                if "pickle" in str(error):      # an object array
                    raise DataError(f"{self.file}: {self.key} is stored as Python objects, which are "
                                    f"never loaded; store text as a unicode or bytes array") from None
                raise DataError(f"{self.file}: {self.key} is not a readable .npy array ({error})") from None
            except NPZ_ERRORS as error:         # a bad CRC, a truncated member
                raise DataError(f"{self.file}: {self.key} cannot be read from the archive "
                                f"({type(error).__name__}: {error}); the file is damaged") from None
            if not isinstance(value, np.ndarray):
                raise DataError(f"{self.file}: {self.key} is not a .npy array")
            self._value = value
        return self._value

    @property
    def shape(self):
        return self.load().shape

    @property
    def dtype(self):
        return self.load().dtype

    def __getitem__(self, item):
        return self.load()[item]

    def __len__(self):
        return len(self.load())


def _load(value) -> np.ndarray:
    if isinstance(value, _NpzField):
        return value.load()
    return np.asarray(value[()])


def from_fields(fields: dict, name: str, source: str, fmt: str, fingerprint=None,
                extra_fields=()) -> ImportedRun:
    """Check the fields against each other and describe the run they make.

    ``extra_fields``: names a model importer reads itself (e.g. ``inputs``); they are left alone.
    """
    fields = dict(fields)
    known = set(PER_SEQUENCE) | set(PER_STEP) | set(LAYOUT) | set(extra_fields) | {"inputs", ATTENTION, OUT_LENGTHS}
    tensors, unknown = {}, []
    for key in fields:
        match = TENSOR_FIELD.match(key)
        if match:
            tensors[(int(match.group(1) or 0), match.group(2))] = key
        elif key not in known and not key.startswith(("meta_", "annotation_")):
            unknown.append(key)
    if unknown:
        raise DataError(f"unknown field(s) {', '.join(sorted(unknown))}; see docs/import-format.md "
                        f"(tensors are h, c, the gates or layer{{L}}_{{kind}})")
    steps_field = next((fields[k] for k in (*tensors.values(), *extra_fields) if k in fields), None)
    if steps_field is None:
        raise DataError("no per-step states: give at least h (or layer0_h, c, a gate)")
    lengths = _lengths(fields, steps_field, tensors)
    n = len(lengths)
    if n == 0:
        raise DataError("no sequences: the per-step states (and lengths) hold none")
    padding = "right"
    if "padding" in fields:
        given = _load(fields["padding"])
        if np.size(given) != 1:
            raise DataError(f"padding holds {np.size(given)} values; give one: 'right' or 'left'")
        padding = str(as_strings("padding", given.reshape(1))[0])

    arrays = {}
    for key, field_name in sorted(tensors.items()):
        check_float(field_name, fields[field_name].dtype)
        arrays[key] = StepArray(field_name, fields[field_name], lengths, padding)
        width = arrays[key].width
        same_layer = [a for k, a in arrays.items() if k[0] == key[0]]
        if same_layer[0].width != width:
            raise DataError(f"{field_name} has {width} units but {same_layer[0].name} has "
                            f"{same_layer[0].width}: one layer's tensors have the same units")
    layers = sorted({layer for layer, _ in arrays})
    if tensors and layers != list(range(len(layers))):
        raise DataError(f"layers must be numbered from 0 without gaps, got {layers}")

    imported = ImportedRun(name=name, source=source, format=fmt, lengths=lengths,
                           widths={key: a.width for key, a in arrays.items()}, blocks=lambda: iter(()),
                           fingerprint=fingerprint or [], options={"padding": padding})
    if "labels" in fields:
        classes = as_strings("classes", _load(fields["classes"])).tolist() if "classes" in fields else None
        imported.labels, imported.classes = check_labels(_load(fields["labels"]), classes, n)
    elif "classes" in fields and "predictions" in fields and "tokens" not in fields:
        raise DataError("classes is given without labels: give labels (one class index per sequence), "
                        "or name the prediction columns of a language model with vocabulary")
    if "split" in fields:
        imported.split = check_split(as_strings("split", _load(fields["split"])), n)
    if "names" in fields:
        imported.names = _per_sequence("names", as_strings("names", _load(fields["names"])), n)
    meta = {key[5:]: _per_sequence(key, _load(fields[key]), n) for key in fields if key.startswith("meta_")}
    imported.meta = pd.DataFrame({k: (as_strings(k, v) if v.dtype.kind == "S" else v) for k, v in meta.items()})
    if "vocabulary" in fields:
        imported.vocabulary = [str(v) for v in as_strings("vocabulary", _load(fields["vocabulary"])).tolist()]
    if "tokens" in fields:
        imported.tokens = as_strings("tokens", _per_step("tokens", fields["tokens"], lengths, padding))
        lengths_of_tokens = {len(str(t)) for t in imported.tokens[:10000]}
        imported.separator = "" if lengths_of_tokens == {1} else " "
    for key in fields:
        if key.startswith("annotation_"):
            values = _per_step(key, fields[key], lengths, padding)
            imported.annotations[key[len("annotation_"):]] = (
                as_strings(key, values) if values.dtype.kind in "SOU" else values)
    if "predictions" in fields:
        predictions = StepArray("predictions", fields["predictions"], lengths, padding)
        check_float("predictions", predictions.dtype)
        imported.n_predictions = predictions.width
        if imported.kind == "classification":
            if predictions.width != len(imported.classes):
                raise DataError(f"predictions has {predictions.width} columns but there are "
                                f"{len(imported.classes)} classes")
        else:
            imported.vocabulary = imported.vocabulary or [f"token{k}" for k in range(predictions.width)]
            check_vocabulary(imported.vocabulary, predictions.width)
        arrays["predictions"] = predictions
    if ATTENTION in fields:
        imported.attention = read_attention(_load(fields[ATTENTION]), lengths, padding,
                                            _load(fields[OUT_LENGTHS]) if OUT_LENGTHS in fields else None)
    elif OUT_LENGTHS in fields:
        raise DataError(f"{OUT_LENGTHS} is given without {ATTENTION}")
    imported.blocks = array_blocks(arrays, lengths, whole_sequences=imported.kind == runformat.CLASSIFICATION)
    if "inputs" in fields and "inputs" not in extra_fields:
        check_float("inputs", fields["inputs"].dtype)
        imported.inputs = StepArray("inputs", fields["inputs"], lengths, padding)
        imported.channels = channel_names(fields, imported.inputs.width, source)
    return imported


def channel_names(fields: dict, width: int, where) -> list[str]:
    """Names of the inputs' channels: the field ``channels``, or input0, input1, ..."""
    if "channels" not in fields:
        return [f"input{j}" for j in range(width)]
    names = [str(v) for v in as_strings("channels", _load(fields["channels"])).reshape(-1).tolist()]
    if len(names) != width or len(set(names)) != len(names):
        raise DataError(f"{Path(where).name}: channels names {len(names)} distinct channels "
                        f"but inputs has {width}")
    return names


def check_vocabulary(vocabulary: list[str], width: int) -> None:
    if len(vocabulary) != width:
        raise DataError(f"predictions has {width} columns but vocabulary has {len(vocabulary)} entries")


def _lengths(fields: dict, steps_field, tensors) -> np.ndarray:
    shape = tuple(steps_field.shape)
    if "lengths" in fields and "offsets" in fields:
        raise DataError("give lengths or offsets, not both")
    if "lengths" in fields:
        lengths = check_lengths(_load(fields["lengths"]))
        if len(shape) == 2 and int(lengths.sum()) != shape[0]:
            name = next((k for k in tensors.values() if fields[k] is steps_field), "the states")
            raise DataError(f"{name} has {shape[0]} rows but lengths sum to {int(lengths.sum())}")
        return lengths
    if "offsets" in fields:
        if len(shape) != 2:
            raise DataError(f"offsets describe flat (steps, units) states; these are padded {shape}: "
                            f"give lengths instead")
        return lengths_from_offsets(_load(fields["offsets"]), shape[0])
    if len(shape) == 3:
        return np.full(shape[0], shape[1], dtype=np.int64)   # padded without lengths: all full
    if len(shape) != 2 or shape[0] < 1:
        raise DataError(f"states have shape {shape}: expected (steps, units)")
    return np.array([shape[0]], dtype=np.int64)             # one long stream


def _per_sequence(name: str, values: np.ndarray, n: int) -> np.ndarray:
    if values.shape != (n,):
        raise DataError(f"{name} has shape {values.shape}, expected ({n},): one value per sequence")
    return values


def _per_step(name: str, field, lengths: np.ndarray, padding: str) -> np.ndarray:
    """A per-step field as (rows,), from flat (rows,) or padded (n, T)."""
    values = _load(field)
    if values.ndim == 2:
        rows = StepArray(name, values[..., None], lengths, padding, finite=False)
        return rows.read(0, int(lengths.sum()))[:, 0]
    if values.ndim != 1:
        raise DataError(f"{name} has shape {values.shape}: expected one value per step, (steps,) "
                        f"or padded (sequences, steps)")
    if len(values) != int(lengths.sum()):
        raise DataError(f"{name} has {len(values)} rows but lengths sum to {int(lengths.sum())}")
    return values


def safe_name(path: Path) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem).strip("-.") or "imported"
    return stem[:100]


# ---------------------------------------------------------------------------------------------
# Parquet: one row per step

def parquet_fields(path: Path) -> dict:
    import pyarrow.parquet as pq
    try:
        table = pq.read_table(path)
    except Exception as error:          # pyarrow raises several types for unreadable files
        raise DataError(f"{path.name}: not a readable parquet file or dataset ({_scrubbed(error, path)})") from None
    metadata = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    names = table.column_names
    fields: dict = {}
    if "example_id" in names:
        ids = table.column("example_id").to_numpy()
        if not np.issubdtype(ids.dtype, np.integer):
            raise DataError(f"{path.name}: example_id has dtype {ids.dtype}, expected integer")
        change = np.flatnonzero(np.diff(ids) != 0) + 1
        starts = np.concatenate([[0], change])
        run_ids = ids[starts]
        if len(np.unique(run_ids)) != len(run_ids):
            seen, again = set(), None
            for value in run_ids.tolist():
                if value in seen:
                    again = value
                    break
                seen.add(value)
            raise DataError(f"{path.name}: example_id {again} appears in two separate runs of rows; "
                            f"keep each sequence's rows together")
        fields["lengths"] = np.diff(np.concatenate([starts, [len(ids)]]))
    else:
        starts = np.array([0])
    grouped: dict[str, dict[int, str]] = {}
    for column in names:
        field, dot, unit = column.rpartition(".")
        if dot and unit.isdigit():
            grouped.setdefault(field, {})[int(unit)] = column
        elif column in ("example_id", "t"):
            continue
        elif column in PER_SEQUENCE or column.startswith("meta_"):
            values = table.column(column).to_numpy(zero_copy_only=False)
            fields[column] = _constant_per_sequence(path, column, values, starts)
        else:
            fields[column] = table.column(column).to_numpy(zero_copy_only=False)
    for field, units in grouped.items():
        if sorted(units) != list(range(len(units))):
            raise DataError(f"{path.name}: columns of {field} must be {field}.0 .. {field}.{len(units) - 1} "
                            f"without gaps")
        fields[field] = np.column_stack([table.column(units[j]).to_numpy() for j in range(len(units))])
    for key in ("classes", "vocabulary"):
        if key in metadata:
            try:
                fields[key] = np.array(json.loads(metadata[key]), dtype=str)
            except ValueError as error:
                raise DataError(f"{path.name}: metadata {key} is not a JSON list ({error})") from None
    return fields


def _constant_per_sequence(path, column, values, starts):
    ends = np.concatenate([starts[1:], [len(values)]])
    first = values[starts]
    differs = np.flatnonzero(np.repeat(first, ends - starts) != values)
    if len(differs):
        row = int(differs[0])
        raise DataError(f"{path.name}: {column} changes within a sequence at row {row}; it must be the "
                        f"same on every row of a sequence")
    return first
