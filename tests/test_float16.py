"""Compact storage of per-step tensors: float16 for the gates by default, an option for h and c;
readers get float32 either way, and the error is float16's rounding, nothing more."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import runformat
from pipeline.runformat import reader
from pipeline.analysis.match import match, select_cells
from test_aggregates import build_run

ALL32 = dict.fromkeys(runformat.TENSOR_KINDS, "float32")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("f16-runs")
    build_run(folder, "default")                                           # gates float16 (the default)
    build_run(folder, "all32", storage=ALL32)
    build_run(folder, "h16", storage={"h": "float16", "c": "float16"})
    return folder


def stored_type(run_path, layer, kind):
    return pq.read_schema(run_path / runformat.steps_file(layer, kind)).field("u0").type


def test_f16001_gates_default_to_float16_and_read_back_as_float32(runs):
    default, exact = runformat.Run.open(runs, "default"), runformat.Run.open(runs, "all32")
    for layer in (0, 1):
        for kind in runformat.TENSOR_KINDS:
            gate = kind in runformat.GATE_KINDS
            assert stored_type(default.path, layer, kind) == (pa.float16() if gate else pa.float32())
            assert stored_type(exact.path, layer, kind) == pa.float32()
            compact, full = default.step_matrix(layer, kind), exact.step_matrix(layer, kind)
            assert compact.dtype == np.float32 and compact.shape == full.shape
            if gate:       # float16's rounding of the float32 values: at most 2^-12 on [-1, 1]
                np.testing.assert_array_equal(compact, full.astype(np.float16).astype(np.float32))
                assert 0 < np.abs(compact - full).max() <= 2.0 ** -12
            else:
                np.testing.assert_array_equal(compact, full)
    gates16 = (default.path / runformat.steps_file(0, "forget_gate")).stat().st_size
    gates32 = (exact.path / runformat.steps_file(0, "forget_gate")).stat().st_size
    assert gates16 < 0.75 * gates32


def test_f16002_h_and_c_in_float16_on_request_and_what_does_not_fit_is_refused(runs):
    run = runformat.Run.open(runs, "h16")
    assert stored_type(run.path, 0, "h") == stored_type(run.path, 1, "c") == pa.float16()
    values = np.array([[1.0, 70000.0]], np.float32)
    with pytest.raises(runformat.RunError, match="do not fit float16"):
        runformat.step_table(np.zeros(1), np.zeros(1), values, ["u0", "u1"], "float16")
    with pytest.raises(runformat.RunError, match="unknown storage type"):
        runformat.step_table(np.zeros(1), np.zeros(1), values, ["u0", "u1"], "float64")
    table = runformat.step_table(np.zeros(1), np.zeros(1), values, ["u0", "u1"])
    assert table.schema.field("u1").type == pa.float32()


def test_f16003_match_on_a_float16_table_compares_as_float32(runs):
    """The engine reading a float16 parquet table finds what it finds on the float32 values it
    stands for (a float16 column compared with a Python threshold would round the threshold)."""
    run = runformat.Run.open(runs, "h16")
    path = run.path / runformat.steps_file(0, "h")
    states = run.step_matrix(0, "h")
    for start in (3, 40, 200):
        cells = select_cells(states, start, start + 2, 0.3)
        if len(cells) == 0:
            continue
        assert [m.__dict__ for m in match(path, cells, 0.3)] == [m.__dict__ for m in match(states, cells, 0.3)]


def test_f16004_columns_of_many_chunks_read_as_one_row_major_float32_array():
    rng = np.random.default_rng(3)
    parts = [pa.table({"u1": rng.normal(size=n).astype(np.float16), "u0": rng.normal(size=n).astype(np.float32)})
             for n in (5, 0, 11, 3)]
    table = pa.concat_tables(parts)
    assert table.column("u0").num_chunks == 4
    matrix = reader.columns_as_rows(table, ["u0", "u1"])
    expected = np.column_stack([table.column("u0").to_numpy(), table.column("u1").to_numpy()]).astype(np.float32)
    assert matrix.dtype == np.float32 and matrix.flags.c_contiguous and matrix.shape == (19, 2)
    assert np.array_equal(matrix, expected)
    assert reader.columns_as_rows(table.slice(0, 0), ["u1"]).shape == (0, 1)
