"""Property tests: whatever bytes or rows a user hands the loaders, the only exception is a DataError
whose message starts with the file's name (never a traceback from deeper down).

The Auslan loader (``datasets.auslan``), the text corpus loader (``datasets.text``) and the array
importer (``importers.arrays.read_arrays``, its per-step blocks consumed too). Example counts are
modest (about 60 each) so that the file runs in well under a minute.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipeline.core.errors import DataError
from pipeline.datasets import text
from pipeline.datasets.auslan import load_auslan, read_tsd
from pipeline.importers.arrays import read_arrays

pytestmark = pytest.mark.filterwarnings("ignore::pipeline.core.errors.DataWarning")
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
GOOD_ROW = ["0.5"] * 22

# Fields a real .tsd has, and the ways one goes wrong.
FIELD = st.one_of(st.sampled_from(["0.1", "-3.25", "1e308", "-1e39", "nan", "inf", "1,5", "abc", "", "1e", "0x1f",
                                   "1_0", "\u00e9", "\x00", "+", "9" * 400]),
                  st.floats(allow_nan=True, allow_infinity=True).map(repr),
                  st.text(alphabet=st.characters(codec="utf-8"), max_size=6))
ROW = st.one_of(st.just(GOOD_ROW), st.lists(FIELD, min_size=0, max_size=25))
SEPARATOR = st.sampled_from(["\t", " ", "  ", "\t\t", ",", "\x0b"])
NEWLINE = st.sampled_from(["\n", "\r\n", "\r", "\n\n"])


def _expect_named(call, name: str):
    """``call()`` returns, or raises a DataError that starts with ``name``; anything else fails."""
    try:
        return call()
    except DataError as error:
        message = str(error)
        assert message.startswith(name), message
        assert "Traceback" not in message and "\n" not in message.strip(), message
        return None


def _auslan_tree(folder: Path, content: bytes, name: str = "sign-1.tsd") -> Path:
    root = folder / "auslan"
    for session in range(1, 10):
        (root / f"tctodd{session}").mkdir(parents=True, exist_ok=True)
        (root / f"tctodd{session}" / "good-1.tsd").write_text("\n".join("\t".join(GOOD_ROW) for _ in range(5)))
    (root / "tctodd1" / name).write_bytes(content)
    return root


@SETTINGS
@given(content=st.binary(max_size=3000), bom=st.booleans())
def test_prop001_random_bytes_in_a_tsd_give_only_named_data_errors(content, bom):
    with tempfile.TemporaryDirectory() as folder:
        root = _auslan_tree(Path(folder), (b"\xef\xbb\xbf" if bom else b"") + content)
        _expect_named(lambda: read_tsd(root / "tctodd1" / "sign-1.tsd", "tctodd1/sign-1.tsd"), "tctodd1/sign-1.tsd")
        _expect_named(lambda: load_auslan(root), "tctodd1/sign-1.tsd")
        data = _expect_named(lambda: load_auslan(root, skip_bad_files=True), "auslan")
        assert data is not None and len(data.X) >= 9          # the good files are always kept


@SETTINGS
@given(rows=st.lists(ROW, min_size=0, max_size=12), separator=SEPARATOR, newline=NEWLINE,
       name=st.sampled_from(["sign-1.tsd", "flash-light-2.tsd", "nodash.tsd", "-3.tsd", "x-y.tsd"]))
def test_prop002_malformed_rows_in_a_tsd_give_only_named_data_errors(rows, separator, newline, name):
    body = newline.join(separator.join(fields) for fields in rows)
    with tempfile.TemporaryDirectory() as folder:
        root = _auslan_tree(Path(folder), body.encode("utf-8"), name)
        data = _expect_named(lambda: load_auslan(root), f"tctodd1/{name}")
        if data is not None:
            assert np.isfinite(data.X).all()


@SETTINGS
@given(content=st.one_of(st.binary(max_size=3000),
                         st.text(max_size=2000).map(lambda s: s.encode("utf-8", "surrogatepass"))),
       suffix=st.sampled_from([".txt", ".py", ".md"]))
def test_prop003_random_bytes_as_a_text_corpus_give_only_named_data_errors(content, suffix):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"corpus{suffix}"
        path.write_bytes(content)
        corpus = _expect_named(lambda: text.file_corpus(path, min_doc_chars=20, max_doc_chars=200),
                               path.name)
        if corpus is not None:
            assert corpus.n_chars == len(corpus.text) and corpus.documents


@SETTINGS
@given(content=st.binary(max_size=4000), suffix=st.sampled_from([".npz", ".h5", ".parquet"]),
       zip_header=st.booleans())
def test_prop004_random_bytes_as_arrays_give_only_named_data_errors(content, suffix, zip_header):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"states{suffix}"
        path.write_bytes((b"PK\x03\x04" if zip_header else b"") + content)
        _expect_named(lambda: list(read_arrays(path).blocks()), path.name)


DTYPES = st.sampled_from([np.float32, np.float64, np.int64, np.int8, np.uint64, np.bool_, "U3", "S3", np.complex64])
FIELD_NAMES = st.sampled_from(["h", "c", "layer1_h", "input_gate", "lengths", "offsets", "padding", "labels",
                               "classes", "split", "names", "predictions", "vocabulary", "tokens", "inputs",
                               "channels", "meta_signer", "annotation_depth"])


@st.composite
def arrays(draw):
    dtype = np.dtype(draw(DTYPES))
    shape = tuple(draw(st.lists(st.integers(0, 5), min_size=0, max_size=3)))
    size = int(np.prod(shape)) if shape else 1
    if dtype.kind in "US":
        values = draw(st.lists(st.sampled_from(["train", "test", "a", "b", "left", "xyz", ""]), min_size=size,
                               max_size=size))
        return np.array(values, dtype=dtype).reshape(shape)
    if dtype.kind == "b":
        return np.array(draw(st.lists(st.booleans(), min_size=size, max_size=size)), dtype).reshape(shape)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        numbers = st.integers(max(info.min, -3), min(info.max, 12))
        return np.array(draw(st.lists(numbers, min_size=size, max_size=size)), dtype).reshape(shape)
    numbers = st.floats(allow_nan=True, allow_infinity=True, width=32)
    return np.array(draw(st.lists(numbers, min_size=size, max_size=size)), dtype).reshape(shape)


@SETTINGS
@given(fields=st.dictionaries(FIELD_NAMES, arrays(), min_size=1, max_size=6))
# found by CI's run: an empty padding field, and padded states of no sequences at all
@example(fields={"padding": np.array([], np.float32), "h": np.zeros((0, 0, 0), np.float32)})
@example(fields={"h": np.zeros((0, 0, 0), np.float32)})
def test_prop005_malformed_fields_in_an_npz_give_only_named_data_errors(fields):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "states.npz"
        np.savez(path, **fields)
        imported = _expect_named(lambda: read_arrays(path), "states.npz")
        if imported is not None:
            _expect_named(lambda: list(imported.blocks()), "states.npz")
            if imported.inputs is not None:
                _expect_named(lambda: imported.inputs.read(0, imported.n_rows), "states.npz")


@SETTINGS
@given(cut=st.floats(0.0, 1.0), flip=st.integers(0, 10_000))
def test_prop006_a_damaged_good_npz_gives_only_named_data_errors(cut, flip):
    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    np.savez_compressed(buffer, h=rng.standard_normal((30, 4)).astype(np.float32), lengths=np.array([10, 20]),
                        labels=np.array([0, 1]))
    data = bytearray(buffer.getvalue())
    data[flip % len(data)] ^= 0x5A
    data = data[:max(4, int(len(data) * cut))] if cut < 0.98 else data
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "states.npz"
        path.write_bytes(bytes(data))
        _expect_named(lambda: list(read_arrays(path).blocks()), "states.npz")


def test_prop007_the_property_helper_fails_on_other_exceptions():
    """The checks above can fail: an unexpected exception type is not swallowed."""
    with pytest.raises(ZeroDivisionError):
        _expect_named(lambda: 1 / 0, "x")
    with pytest.raises(AssertionError):
        _expect_named(lambda: (_ for _ in ()).throw(DataError("other.npz: nope")), "states.npz")
    with zipfile.ZipFile(io.BytesIO(), "w"):
        pass
