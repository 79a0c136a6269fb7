"""Small precomputed tables of what views aggregate, so that no request reads every gate table.

``write_gate_aggregates`` runs at the end of a classifier's extract stage, once the examples table
(labels, splits, verdicts) is known. It groups the examples so that every filter of the filter bar
lets through whole groups (same label, split, hand usage and verdict), reads each sigmoid gate
table back batch by batch (bounded memory) and writes, through the run writer (atomic files):

- ``GATE_GROUPS_FILE``: each example's group;
- ``GATE_SATURATION_FILE``: per layer, gate, alignment, group and step offset, the number of steps
  there and how many values carry each threshold code (``runformat.schema`` says how to read it);
  the gate saturation view sums the rows of the groups a filter lets through;
- ``GATE_VALUES_FILE``: per layer, gate and group, the value histogram of the view's histogram;
- ``GATE_CELLS_FILE``: per layer, gate, alignment and step of all examples, each cell's sum and
  count of saturated values (at the view's default thresholds): the gate cells heatmap of the
  whole run (no filter) without reading the gate table;
- ``GATE_GROUP_CELLS_FILE`` (big runs): the same sums per group and step offset, so that the gate
  cells of any filter at the default thresholds are sums of its groups' rows.

The numbers are counts, so sums over groups are exactly what the view computes from the full
tables (tests test_agg*).

``write_example_states`` (also at the end of the extract stage) writes, per layer and state (h, c),
every example's last-step value and its mean over its steps (``runformat.example_states_file``):
what the cells view ranks by, and the last steps the inspector's nearest examples, the why plane
and the comparison's CKA read, each a table of examples x units instead of a read of every step.
Each example's rows are summed in one ``np.add.reduceat`` over the float32 values in float64, as
the cells view sums them, so the tables equal the long computation bit for bit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse

from pipeline.runformat import (
    GATE_CELL_THRESHOLDS,
    GATE_CELLS_FILE,
    GATE_GROUP_CELLS_FILE,
    GATE_GROUPS_FILE,
    GATE_SATURATION_FILE,
    GATE_VALUE_BINS,
    GATE_VALUES_FILE,
    GROUP_CELLS_MAX_SHARE,
    SIGMOID_GATES,
    RunWriter,
    example_states_file,
    saturation_edges,
    steps_file,
    unit_columns,
)
from pipeline.runformat.schema import UNIT_PREFIX

GROUP_KEYS = ("label", "split", "hand_usage", "correct")   # what the filter bar filters by
ALIGNS = ("start", "end")
BATCH_ROWS = 1 << 16


def example_groups(examples: pd.DataFrame) -> np.ndarray:
    """Each example's group (0..n-1): examples alike in every column the filter bar reads."""
    frame = pd.DataFrame(index=examples.index)
    for key in GROUP_KEYS:
        if key in examples:
            frame[key] = examples[key].astype(str)
    if "correct" not in examples and {"label", "prediction"} <= set(examples.columns):
        frame["correct"] = (examples["label"] == examples["prediction"]).astype(str)
    if frame.columns.empty:
        return np.zeros(len(examples), np.int32)
    return frame.groupby(list(frame.columns), sort=True, dropna=False).ngroup().to_numpy(np.int32)


def threshold_codes(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``#(edges < v) + #(edges <= v)`` per value (float32 comparisons, as the view makes them)."""
    values = np.asarray(values, np.float32)
    return np.searchsorted(edges, values, "left") + np.searchsorted(edges, values, "right")


def value_bins(values: np.ndarray, bins: int = GATE_VALUE_BINS) -> np.ndarray:
    """np.histogram's bin of each value over ``linspace(0, 1, bins + 1)`` (-1: outside, or NaN)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.searchsorted(edges, values, "right") - 1
    index[(index == bins) & (values <= 1.0)] = bins - 1      # the last bin holds 1.0
    index[(index < 0) | (index >= bins)] = -1
    return index


def _batches(path):
    """``example_id, t, u0, u1, ...`` record batches of a per-step table (a file or part files)."""
    parts = sorted(p for p in path.rglob("*.parquet") if p.is_file()) if path.is_dir() else [path]
    for part in parts:
        parquet = pq.ParquetFile(part, page_checksum_verification=True)
        units = [c for c in parquet.schema_arrow.names if c.startswith(UNIT_PREFIX)]
        yield from parquet.iter_batches(BATCH_ROWS, columns=["example_id", "t", *units])


def gate_aggregates(gate_tables: dict, examples: pd.DataFrame, with_cells: bool | None = None
                    ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    """(groups, saturation, values, group cells) tables for ``{(layer, gate): path of its per-step
    table}``. The group cells (``GATE_GROUP_CELLS_FILE``) come from the same pass, where
    ``with_cells`` (default: where their rows are at most GROUP_CELLS_MAX_SHARE of the steps),
    else None."""
    examples = examples.sort_values("example_id").reset_index(drop=True)
    ids = examples["example_id"].to_numpy(np.int64)
    lengths = examples["length"].to_numpy(np.int64)
    group = example_groups(examples)
    n_groups = int(group.max()) + 1 if len(group) else 0
    longest = np.zeros(n_groups, np.int64)
    np.maximum.at(longest, group, lengths)
    base = np.cumsum(longest) - longest          # (group, offset) -> base[group] + offset
    n_pairs = int(longest.sum())
    pair_group = np.repeat(np.arange(n_groups), longest)
    pair_offset = np.arange(n_pairs) - base[pair_group]
    edges = saturation_edges()
    n_codes = 2 * len(edges) + 1
    if with_cells is None:
        with_cells = len(ALIGNS) * n_pairs <= GROUP_CELLS_MAX_SHARE * lengths.sum()
    saturation, value_rows, cell_rows = [], [], []
    for (layer, gate), path in sorted(gate_tables.items()):
        counts = {align: np.zeros(n_pairs * n_codes, np.int64) for align in ALIGNS}
        rows = {align: np.zeros(n_pairs, np.int64) for align in ALIGNS}
        histogram = np.zeros(n_groups * GATE_VALUE_BINS, np.int64)
        cells = None
        for batch in _batches(path):
            position = np.searchsorted(ids, batch.column(0).to_numpy())
            t = batch.column(1).to_numpy().astype(np.int64)
            values = np.column_stack([batch.column(i).to_numpy() for i in range(2, batch.num_columns)]
                                     ).astype(np.float32, copy=False)
            g = group[position]
            offsets = {"start": t, "end": lengths[position] - 1 - t}
            codes = threshold_codes(values, edges)
            finite = ~np.isnan(values)
            for align in ALIGNS:
                pair = base[g] + offsets[align]
                rows[align] += np.bincount(pair, minlength=n_pairs)
                flat = (pair[:, None] * n_codes + codes)[finite]
                counts[align] += np.bincount(flat, minlength=n_pairs * n_codes)
            if with_cells:
                cells = _add_cells(cells, values, {align: base[g] + offsets[align] for align in ALIGNS}, n_pairs)
            bins = value_bins(values)
            keep = bins >= 0
            histogram += np.bincount((g[:, None] * GATE_VALUE_BINS + bins)[keep],
                                     minlength=n_groups * GATE_VALUE_BINS)
        for align in ALIGNS:
            frame = pd.DataFrame({"layer": np.full(n_pairs, layer, np.int32), "gate": gate, "align": align,
                                  "group": pair_group.astype(np.int32), "offset": pair_offset.astype(np.int32),
                                  "rows": rows[align].astype(np.int32)})
            matrix = counts[align].reshape(n_pairs, n_codes)
            frame = pd.concat([frame, pd.DataFrame(matrix.astype(np.int32),
                                                   columns=[f"c{i}" for i in range(n_codes)])], axis=1)
            saturation.append(frame[frame["rows"] > 0])
            if cells is not None:
                sums, outside = cells[align]
                cell_rows.append(pd.concat([
                    frame[["layer", "gate", "align", "group", "offset", "rows"]],
                    pd.DataFrame(sums, columns=[f"s{j}" for j in range(sums.shape[1])]),
                    pd.DataFrame(outside.astype(np.int32), columns=[f"k{j}" for j in range(sums.shape[1])])],
                    axis=1))
        by_group = histogram.reshape(n_groups, GATE_VALUE_BINS)
        value_rows.append(pd.concat([
            pd.DataFrame({"layer": np.full(n_groups, layer, np.int32), "gate": gate,
                          "group": np.arange(n_groups, dtype=np.int32)}),
            pd.DataFrame(by_group, columns=[f"b{i}" for i in range(GATE_VALUE_BINS)])], axis=1))
    groups = pd.DataFrame({"example_id": ids, "group": group})
    return (groups, pd.concat(saturation, ignore_index=True) if saturation else pd.DataFrame(),
            pd.concat(value_rows, ignore_index=True) if value_rows else pd.DataFrame(),
            pd.concat(cell_rows, ignore_index=True) if cell_rows else None)


def _add_cells(cells: dict | None, values: np.ndarray, pairs: dict, n_pairs: int) -> dict:
    """Add one batch to ``{align: (sums, outside)}`` per (group, offset) pair and cell: each pair's
    rows in row order, as a sparse (pairs x rows) one-hot matrix times the batch."""
    if cells is None:
        cells = {align: (np.zeros((n_pairs, values.shape[1]), np.float64),
                         np.zeros((n_pairs, values.shape[1]), np.int64)) for align in ALIGNS}
    low, high = (np.float32(v) for v in GATE_CELL_THRESHOLDS)
    outside = ((values < low) | (values > high)).astype(np.float32)
    columns = np.arange(len(values))
    for align, pair in pairs.items():
        one_hot = scipy.sparse.csr_matrix((np.ones(len(values)), (pair, columns)), shape=(n_pairs, len(values)))
        sums, counts = cells[align]
        sums += one_hot @ values.astype(np.float64)
        counts += np.rint(one_hot.astype(np.float32) @ outside).astype(np.int64)   # exact: < 2**24 a batch
    return cells


def write_gate_aggregates(writer: RunWriter, examples: pd.DataFrame, layers: list[dict]) -> list[str]:
    """Write the gate aggregates of every layer that recorded the sigmoid gates (``layers``: the
    manifest's entries, ``index`` and ``tensors``); returns the files written ([] when none has)."""
    tables = {(int(layer["index"]), gate): writer.path / steps_file(int(layer["index"]), gate)
              for layer in layers if set(SIGMOID_GATES) <= set(layer.get("tensors") or SIGMOID_GATES)
              for gate in SIGMOID_GATES}
    tables = {key: path for key, path in tables.items() if path.exists()}
    if not tables or "length" not in examples:
        return []
    groups, saturation, values, group_cells = gate_aggregates(tables, examples)
    return [writer.write_table(GATE_GROUPS_FILE, pa.Table.from_pandas(groups, preserve_index=False)),
            writer.write_table(GATE_SATURATION_FILE, saturation),
            writer.write_table(GATE_VALUES_FILE, values),
            writer.write_table(GATE_CELLS_FILE, gate_cells_table(tables, examples)),
            *([] if group_cells is None else [writer.write_table(GATE_GROUP_CELLS_FILE, group_cells)])]


def gate_cells_table(gate_tables: dict, examples: pd.DataFrame) -> pd.DataFrame:
    """``GATE_CELLS_FILE``'s rows for ``{(layer, gate): path of its per-step table}``."""
    frames = []
    for (layer, gate), path in sorted(gate_tables.items()):
        for align, part in gate_cells(path, examples, *GATE_CELL_THRESHOLDS).items():
            units = part["sum"].shape[1]
            frames.append(pd.concat([
                pd.DataFrame({"layer": np.int32(layer), "gate": gate, "align": align,
                              "step": np.arange(len(part["rows"]), dtype=np.int32), "rows": part["rows"]}),
                pd.DataFrame(part["sum"], columns=[f"s{j}" for j in range(units)]),
                pd.DataFrame(part["saturated"].astype(np.int32), columns=[f"k{j}" for j in range(units)])],
                axis=1))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _whole_examples(path):
    """``(row example_ids, float32 values, first row of each example)`` of a per-step table, batch
    by batch; an example whose rows run on into the next batch waits for them, so that every
    example is summed in one piece (the same float64 sums as over the whole table)."""
    pending_ids, pending = np.zeros(0, np.int64), None
    for batch in _batches(path):
        values = np.column_stack([batch.column(i).to_numpy() for i in range(2, batch.num_columns)]
                                 ).astype(np.float32, copy=False)
        row_ids = batch.column(0).to_numpy().astype(np.int64)
        if pending is not None:
            values, row_ids = np.concatenate([pending, values]), np.concatenate([pending_ids, row_ids])
        if not len(row_ids):
            continue
        starts = np.flatnonzero(np.diff(row_ids, prepend=row_ids[0] - 1))
        done = starts[-1]                     # the batch's last example may go on in the next
        pending, pending_ids = values[done:], row_ids[done:]
        if done:
            yield row_ids[:done], values[:done], starts[:-1]
    if pending is not None and len(pending):
        yield pending_ids, pending, np.zeros(1, np.int64)


def example_states(path, examples: pd.DataFrame) -> dict[str, np.ndarray]:
    """``{"last", "mean"}``: (examples, units) float32 of one per-step table, in example_id order."""
    examples = examples.sort_values("example_id")
    ids = examples["example_id"].to_numpy(np.int64)
    lengths = examples["length"].to_numpy(np.int64)
    last = mean = None
    for row_ids, values, starts in _whole_examples(path):
        if last is None:
            last, mean = (np.full((len(ids), values.shape[1]), np.nan, np.float32) for _ in range(2))
        position = np.searchsorted(ids, row_ids[starts])
        ends = np.append(starts[1:], len(values))
        last[position] = values[ends - 1]
        mean[position] = np.add.reduceat(values, starts, axis=0, dtype=np.float64) / lengths[position][:, None]
    return {} if last is None else {"last": last, "mean": mean}


def gate_cells(path, examples: pd.DataFrame, low: float, high: float) -> dict[str, dict[str, np.ndarray]]:
    """Per alignment, the gate cells view's sums over all examples: ``rows`` (examples with a step
    at each column of the common axis), ``sum`` (float64 sums of the values, per column and cell,
    added example by example in example_id order as the view's reduceat adds them) and
    ``saturated`` (how many values are below ``low`` or above ``high``)."""
    lengths = examples.sort_values("example_id")["length"].to_numpy(np.int64)
    n_steps = int(lengths.max()) if len(lengths) else 0
    out: dict = {}
    for _, values, starts in _whole_examples(path):
        if not out:
            out = {align: {"rows": np.zeros(n_steps, np.int64),
                           "sum": np.zeros((n_steps, values.shape[1]), np.float64),
                           "saturated": np.zeros((n_steps, values.shape[1]), np.int64)} for align in ALIGNS}
        ends = np.append(starts[1:], len(values))
        outside = (values < low) | (values > high)
        for start, end in zip(starts, ends):
            n = end - start
            for align, first in (("start", 0), ("end", n_steps - n)):
                part = out[align]
                part["rows"][first:first + n] += 1
                part["sum"][first:first + n] += values[start:end]
                part["saturated"][first:first + n] += outside[start:end]
    return out


def write_example_states(writer: RunWriter, examples: pd.DataFrame, layers: list[dict]) -> list[str]:
    """Write the per-example last and mean h and c of every layer that stored them (``layers``: the
    manifest's entries); returns the files written."""
    ids = examples.sort_values("example_id")["example_id"].to_numpy(np.int64)
    written = []
    for layer in layers:
        index = int(layer["index"])
        for kind in ("h", "c"):
            path = writer.path / steps_file(index, kind)
            if kind not in (layer.get("tensors") or (kind,)) or not path.exists():
                continue
            for summary, matrix in example_states(path, examples).items():
                table = pa.table({"example_id": ids,
                                  **dict(zip(unit_columns(matrix.shape[1]), matrix.T))})
                written.append(writer.write_table(example_states_file(index, kind, summary), table))
    return written
