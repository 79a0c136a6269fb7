"""Golden digests of the tables a fixed-seed run writes: the refactors' "same numbers as before".

A digest is small (kept in tests/golden_digests.json, no data): per table its row count and column
names, per numeric column its mean, mean absolute value and standard deviation, and per text column a
hash of its values. Numbers are compared with a relative tolerance, so a machine whose CPU kernels
round the last float32 bits differently still passes, while any change in what is computed does not.

``python tests/golden.py write`` rebuilds the two runs with the test settings and rewrites the file;
do that only when a change of the numbers is intended, and say why in the commit.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

GOLDEN_FILE = Path(__file__).with_name("golden_digests.json")
# Tables whose numbers come from seeded, deterministic computations. The autoencoder's and t-SNE's
# pictures are left out: they are checked by their own tests and vary with thread timing.
SKIPPED_PROJECTIONS = ("ae", "tsne")
SKIPPED_COLUMNS = {"history.parquet": ("seconds",)}


SKIPPED_FILES = ("projection_class_stability.parquet", "projection_pair_stability.parquet")


def table_files(run_path: Path) -> list[str]:
    names = [p.relative_to(run_path).as_posix() for p in run_path.rglob("*.parquet") if p.is_file()]
    return sorted(n for n in names if "/part-" not in n and n not in SKIPPED_FILES)


def column_digest(values: pd.Series) -> dict:
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
        finite = numbers[np.isfinite(numbers)]
        if not len(finite):
            return {"finite": 0}
        return {"finite": int(len(finite)), "mean": float(finite.mean()),
                "mean_abs": float(np.abs(finite).mean()), "std": float(finite.std())}
    text = "\x1f".join("" if v is None else str(v) for v in values.tolist())
    return {"text": hashlib.sha256(text.encode()).hexdigest()[:16]}


def run_digest(run_path: Path) -> dict:
    digest = {}
    for name in table_files(run_path):
        frame = pq.read_table(run_path / name).to_pandas()
        if name == "projections.parquet":
            keep = ~frame["projection"].astype(str).str.startswith(SKIPPED_PROJECTIONS)
            frame = frame[keep].reset_index(drop=True)
        columns = [c for c in frame.columns if c not in SKIPPED_COLUMNS.get(name, ())]
        digest[name] = {"rows": int(len(frame)), "columns": columns,
                        "values": {c: column_digest(frame[c]) for c in columns}}
    return digest


def differences(expected: dict, actual: dict, rtol: float = 2e-3) -> list[str]:
    """What differs, one line each (empty: the same numbers). Tables and columns added since are not
    differences; every table and column of ``expected`` must hold the same numbers."""
    found = []
    for name in sorted(expected):
        if name not in actual:
            found.append(f"{name}: missing")
            continue
        want, got = expected[name], actual[name]
        missing = [c for c in want["columns"] if c not in got["columns"]]
        if want["rows"] != got["rows"] or missing:
            found.append(f"{name}: rows {want['rows']} -> {got['rows']}, columns missing: {missing[:6]}")
            continue
        for column, w in want["values"].items():
            g = got["values"][column]
            if "text" in w or "finite" in w and not w["finite"]:
                if w != g:
                    found.append(f"{name}:{column}: {w} -> {g}")
                continue
            scale = max(w["mean_abs"], 1e-6)
            if w["finite"] != g.get("finite") or any(
                    abs(w[key] - g[key]) > rtol * scale for key in ("mean", "mean_abs", "std")):
                found.append(f"{name}:{column}: {w} -> {g}")
    return found


def build_runs(folder: Path) -> dict[str, Path]:
    """The fixed-seed synthetic and text runs the tests build (tests/factories.py settings)."""
    from factories import TEXT_FAST, fast_config
    from pipeline.core.config import merge
    from pipeline.kinds import classification, language_model
    classification.run_classification(fast_config("synthetic"), folder / "synthetic")
    language_model.run_language_model(merge(language_model.default_config("parens"), TEXT_FAST), folder / "text")
    return {"synthetic": folder / "synthetic" / "synthetic", "text": folder / "text" / "text-parens"}


if __name__ == "__main__" and sys.argv[1:] == ["write"]:
    import tempfile
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    with tempfile.TemporaryDirectory() as tmp:
        runs = build_runs(Path(tmp))
        GOLDEN_FILE.write_text(json.dumps({k: run_digest(p) for k, p in runs.items()}, indent=1) + "\n")
    print(f"wrote {GOLDEN_FILE}")
