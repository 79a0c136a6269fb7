"""The same numbers as before the one-run-engine redesign: the fixed-seed synthetic and text runs the
session fixtures build are compared with the digests the earlier code wrote (tests/golden.py)."""

from __future__ import annotations

import json

import pytest

from golden import GOLDEN_FILE, differences, run_digest


@pytest.fixture(scope="module")
def golden():
    return json.loads(GOLDEN_FILE.read_text())


def test_gold001_synthetic_run_writes_the_same_tables(synthetic_run, golden):
    assert differences(golden["synthetic"], run_digest(synthetic_run.path)) == []


def test_gold002_text_run_writes_the_same_tables(text_run, golden):
    assert differences(golden["text"], run_digest(text_run.path)) == []


def test_gold003_a_changed_number_is_caught(synthetic_run, golden):
    """The comparison is not blind: one shifted column mean is reported."""
    changed = json.loads(json.dumps(golden["synthetic"]))
    changed["steps/layer0-h.parquet"]["values"]["u3"]["mean"] += 0.01
    assert differences(changed, run_digest(synthetic_run.path)) == ["steps/layer0-h.parquet:u3: " +
                                                                   str(changed["steps/layer0-h.parquet"]["values"]["u3"]) +
                                                                   " -> " + str(run_digest(synthetic_run.path)["steps/layer0-h.parquet"]["values"]["u3"])]
