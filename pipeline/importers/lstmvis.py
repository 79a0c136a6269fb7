"""Import an LSTMVis project (github.com/HendrikStrobelt/LSTMVis) as a language-model run.

An LSTMVis project is a folder with an ``lstm.yml`` and the files it names::

    name: children books
    files: {states: states.h5, train: train.h5, words: words.dict, pos: pos.h5, pos_dict: pos.dict}
    word_sequence: {file: train, path: word_ids, dict_file: words}
    states:
      file: states
      types: [{type: state, layer: 1, path: states1}, {type: output, layer: 1, path: output1}]
    meta:
      part_of_speech: {file: pos, path: pos, dict: pos_dict, vis: {type: discrete, range: dict}}

Read as LSTMVis' server reads it (``lstmdata/data_handler.py``): HDF5 files end in .h5/.hdf5,
dictionaries end in .dict/.txt with one ``word id`` pair per line; every dataset is indexed by the
global position in one long stream. ``type: output`` is the layer's h, ``type: state`` its cell
state c (LSTMVis' ``model/get_states.lua`` writes ``output{k}`` from the module's output and
``states{k}`` from its cell). LSTMVis shows and matches ``tanh(value)`` unless a type says
``transform: none``; we store what LSTMVis shows, so its thresholds mean the same here (the
manifest records the transform; ``raw=True`` keeps the stored values).

The stream becomes one sequence, as in LSTMVis (select & match ranges may run anywhere in it).
Word-level tokens are shown with a space after each. ``meta`` tracks become annotations:
``dict`` or ``vis.type: discrete`` make them categorical, otherwise numeric. Tracks indexed
through another table (``index`` other than ``self``) and ``word_embedding`` are not imported.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.core.errors import DataError
from pipeline.importers.base import ImportedRun, StepArray, array_blocks, file_fingerprint

CONFIG_NAMES = ("lstm.yml", "lstm.yaml")
KIND_OF_TYPE = {"output": "h", "state": "c"}


def find_config(path: Path) -> Path:
    """``path`` itself (an lstm.yml) or the one lstm.yml in the project folder ``path``."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise DataError(f"{path}: no such LSTMVis project folder")
    for name in CONFIG_NAMES:
        if (path / name).is_file():
            return path / name
    nested = sorted(p.parent.name for p in path.glob("*/lstm.yml"))
    hint = f"; projects inside it: {', '.join(nested)} (give one of them)" if nested else ""
    raise DataError(f"{path}: no lstm.yml (not an LSTMVis project folder){hint}")


def read_dict(path: Path) -> dict[int, str]:
    """An LSTMVis dictionary: one ``word id`` pair per line -> {id: word}."""
    words = {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read the dictionary ({error})") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise DataError(f"{path}, line {number}: expected 'word id', got {line.strip()!r}")
        words[int(parts[1])] = parts[0]
    return words


def read_lstmvis(path, raw: bool = False, name: str | None = None) -> ImportedRun:
    """The run of the LSTMVis project at ``path`` (its folder or its lstm.yml)."""
    import yaml

    config_path = find_config(path)
    folder = config_path.parent
    try:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise DataError(f"{config_path}: not a readable YAML file ({error})") from None
    if not isinstance(config, dict):
        raise DataError(f"{config_path}: expected a mapping with files, word_sequence and states")
    for section in ("files", "word_sequence", "states"):
        if not isinstance(config.get(section), dict):
            raise DataError(f"{config_path}: the '{section}' section is missing or not a mapping")
    project = _Project(config_path, folder, config["files"])

    sequence = config["word_sequence"]
    word_ids = project.dataset(sequence, "word_sequence")
    if word_ids.ndim != 1:
        raise DataError(f"{config_path}: word_sequence {sequence.get('path')!r} has shape "
                        f"{word_ids.shape}, expected one word id per position")
    word_ids = np.asarray(word_ids[()])
    n_rows = len(word_ids)
    tokens = None
    if sequence.get("dict_file"):
        tokens = project.lookup(word_ids, sequence["dict_file"], "word_sequence")

    states = config["states"]
    types = states.get("types")
    if not isinstance(types, list) or not types:
        raise DataError(f"{config_path}: states.types must be a list like "
                        f"[{{type: output, layer: 1, path: output1}}]")
    by_layer: dict[int, dict[str, tuple]] = {}
    skipped = []
    for i, entry in enumerate(types):
        where = f"states.types[{i}]"
        if not isinstance(entry, dict) or entry.get("type") not in KIND_OF_TYPE or "path" not in entry:
            raise DataError(f"{config_path}: {where} needs type (state or output), layer and path; "
                            f"got {entry!r}")
        try:
            layer = int(entry.get("layer", 1))
        except (TypeError, ValueError):
            raise DataError(f"{config_path}: {where}.layer must be a number (1, 2, ...)") from None
        kind = KIND_OF_TYPE[entry["type"]]
        if kind in by_layer.get(layer, {}):
            skipped.append(f"{where} ({entry['path']}): layer {layer} {entry['type']} already imported")
            continue
        dataset = project.dataset({"file": entry.get("file", states.get("file")), "path": entry["path"]},
                                  where)
        if dataset.ndim != 2 or dataset.shape[0] != n_rows:
            raise DataError(f"{config_path}: {where} ({entry['path']}) has shape {dataset.shape}, expected "
                            f"({n_rows}, cells): one row per position of the word sequence")
        transform = "none" if raw else str(entry.get("transform", "tanh"))
        by_layer.setdefault(layer, {})[kind] = (dataset, transform, entry)

    lengths = np.array([n_rows], dtype=np.int64)
    tensors, transforms, layer_numbers = {}, {}, {}
    for index, layer in enumerate(sorted(by_layer)):
        layer_numbers[index] = layer
        widths = {a.shape[1] for a, _, _ in by_layer[layer].values()}
        if len(widths) != 1:
            raise DataError(f"{config_path}: layer {layer}'s output and state have different cell "
                            f"counts {sorted(widths)}")
        for kind, (dataset, transform, entry) in by_layer[layer].items():
            if transform not in ("tanh", "none"):
                raise DataError(f"{config_path}: transform {transform!r} of {entry['path']}: use tanh or none")
            tensors[(index, kind)] = StepArray(entry["path"], dataset, lengths)
            transforms[f"layer{index}-{kind}"] = {"path": entry["path"], "lstmvis_layer": layer,
                                                  "transform": transform}

    def transform(key, values):
        return np.tanh(values) if transforms[f"layer{key[0]}-{key[1]}"]["transform"] == "tanh" else values

    imported = ImportedRun(
        name=name or _run_name(config, folder), source=str(folder.resolve()), format="lstmvis",
        lengths=lengths, widths={key: a.width for key, a in tensors.items()},
        blocks=array_blocks(tensors, lengths, whole_sequences=False, transform=transform),
        names=np.array([str(config.get("name") or folder.name)], dtype=object),
        tokens=tokens, separator=" ",
        options={"raw": raw}, fingerprint=file_fingerprint(folder),
        notes={"lstmvis": {"config": config_path.name, "description": config.get("description", ""),
                           "states": transforms, "skipped": skipped}})

    for track, info in (config.get("meta") or {}).items():
        values, description = _meta_track(project, config_path, track, info, n_rows)
        if values is None:
            skipped.append(f"meta.{track}: {description}")
            continue
        imported.annotations[str(track)] = values
        imported.descriptions[str(track)] = description
    return imported


def _meta_track(project, config_path, track, info, n_rows):
    if not isinstance(info, dict) or "path" not in info:
        raise DataError(f"{config_path}: meta.{track} needs file and path")
    if info.get("index", "self") != "self" or info.get("type", "general") != "general":
        return None, "indexed through another table; not imported"
    dataset = project.dataset(info, f"meta.{track}")
    values = np.asarray(dataset[()])
    if values.ndim != 1 or len(values) != n_rows:
        raise DataError(f"{config_path}: meta.{track} ({info['path']}) has shape {values.shape}, "
                        f"expected ({n_rows},): one value per position")
    vis = info.get("vis") or {}
    if info.get("dict"):
        return project.lookup(values, info["dict"], f"meta.{track}"), f"{vis.get('type', 'discrete')} (dict)"
    if vis.get("type") == "discrete":
        return values.astype(str).astype(object), "discrete"
    if not np.issubdtype(values.dtype, np.number):
        raise DataError(f"{config_path}: meta.{track} has dtype {values.dtype}; a scalar track needs numbers")
    return values.astype(np.float32), f"scalar, range {vis.get('range', 'auto')}"


class _Project:
    """The files of an lstm.yml, opened on demand."""

    def __init__(self, config_path: Path, folder: Path, files: dict):
        self.config_path, self.folder, self.files = config_path, folder, files
        self._h5, self._dicts = {}, {}

    def _path(self, ref: str, where: str) -> Path:
        if ref not in self.files:
            raise DataError(f"{self.config_path}: {where} refers to file {ref!r}, which the files section "
                            f"does not name (it names {', '.join(map(str, self.files))})")
        path = self.folder / str(self.files[ref])
        if not path.is_file():
            raise DataError(f"{self.config_path}: files.{ref} is {self.files[ref]!r}, which does not exist "
                            f"in {self.folder}")
        return path

    def dataset(self, spec: dict, where: str):
        import h5py
        ref = spec.get("file")
        path = self._path(ref, where)
        if ref not in self._h5:
            try:
                self._h5[ref] = h5py.File(path, "r")
            except OSError as error:
                raise DataError(f"{path}: not a readable HDF5 file ({error})") from None
        handle = self._h5[ref]
        name = str(spec.get("path"))
        if name not in handle or not isinstance(handle[name], h5py.Dataset):
            raise DataError(f"{path}: no dataset {name!r} (named by {where}); it has "
                            f"{', '.join(sorted(handle.keys())) or 'none'}")
        return handle[name]

    def lookup(self, ids: np.ndarray, ref: str, where: str) -> np.ndarray:
        if ref not in self._dicts:
            self._dicts[ref] = read_dict(self._path(ref, where))
        words = self._dicts[ref]
        ids = np.asarray(ids).astype(np.int64)
        unique, inverse = np.unique(ids, return_inverse=True)
        missing = [int(u) for u in unique if int(u) not in words]
        if missing:
            raise DataError(f"{self.config_path}: {where} has id {missing[0]} that {self.files[ref]} "
                            f"does not list ({len(missing)} unknown id(s))")
        return np.array([words[int(u)] for u in unique], dtype=object)[inverse]


def _run_name(config: dict, folder: Path) -> str:
    import re
    base = str(config.get("name") or folder.name)
    return "lstmvis-" + (re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-.")[:100] or "project")
