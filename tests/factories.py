"""Small real data and settings shared by the tests (imported by conftest.py and by test modules;
kept out of conftest so that tests/ and tests/browser/ conftests never shadow each other)."""

from __future__ import annotations

import os
from pathlib import Path

import base64
import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pipeline.core.config import merge  # noqa: E402
from pipeline.datasets import SequenceDataset  # noqa: E402
from pipeline.kinds.classification import default_config  # noqa: E402

AUSLAN = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "auslan"

# Small settings for every test run: seconds, not minutes.
FAST = {
    "model": {"units": [12], "dropout": 0.0},
    "train": {"epochs": 3, "batch_size": 64, "learning_rate": 0.01, "patience": 3,
              "jit_compile": False, "lr_schedule": "none", "augment": None, "ema": 0},   # the golden digests' training
    "project": {"dims": [2, 3], "hidden": [16, 8], "seeds": 2, "max_epochs": 2, "patience": 1,
                "max_vectors": 1500, "batch_size": 256},
    "attribute": {"steps": 8, "batch": 256},
    # Every tensor in float32, as the golden digests were written (gates default to float16 since).
    "extract": {"storage": dict.fromkeys(("input_gate", "forget_gate", "candidate", "output_gate"), "float32")},
}


def fast_config(name: str, **overrides) -> dict:
    """Data set ``name``'s default config with FAST (and ``overrides``) on top."""
    return merge(merge(default_config(name), FAST), overrides)


def random_dataset(n: int = 48, n_steps: int = 20, n_channels: int = 4, n_classes: int = 3,
                   seed: int = 0, padding: str = "left") -> SequenceDataset:
    """Random sequences of varied length (1 .. n_steps) whose mean level depends on the class."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, n_steps + 1, n).astype(np.int32)
    lengths[:2] = (n_steps, 1)                      # the extremes are always there
    labels = (np.arange(n) % n_classes).astype(np.int32)
    X = np.zeros((n, n_steps, n_channels), np.float32)
    for i, length in enumerate(lengths):
        frames = rng.normal(labels[i], 1.0, (length, n_channels)).astype(np.float32)
        if padding == "left":
            X[i, n_steps - length:] = frames
        else:
            X[i, :length] = frames
    return SequenceDataset(
        name="random", source="generated in tests", X=X, lengths=lengths, labels=labels,
        classes=[f"class{k}" for k in range(n_classes)], channels=[f"ch{j}" for j in range(n_channels)],
        meta=pd.DataFrame({"signer": [f"s{i % 2}" for i in range(n)]}), padding=padding,
        hands={"left": [0, 1], "right": [2, 3]}, notes={"seed": seed})


# Small settings for the text runs in tests: LSTMVis' parenthesis language, a few seconds of training.
TEXT_FAST = {"dataset": {"n_documents": 200},
             "model": {"units": [32], "embedding": 8},
             "train": {"epochs": 6, "window": 64, "learning_rate": 0.01, "patience": 3},
             "extract": {"block_rows": 8192, "storage": FAST["extract"]["storage"]}}


def component_ids(component) -> set:
    """Every component id in a Dash layout (a pattern-matching id counts by its "type")."""
    found, stack = set(), [component]
    while stack:
        node = stack.pop()
        if isinstance(node, (list, tuple)):
            stack.extend(node)
            continue
        if getattr(node, "id", None) is not None:
            found.add(node.id if isinstance(node.id, str) else node.id["type"])
        children = getattr(node, "children", None)
        if children is not None and not isinstance(children, str):
            stack.append(children)
    return found


def callbacks_of(app, views):
    """``(output ids, callback)`` for each callback of ``app`` writing to one of ``views``."""
    prefixes = tuple(f"{view.VIEW_ID}-" for view in views)
    for key, callback in app.callback_map.items():
        outputs = [part.split("@")[0].rsplit(".", 1)[0] for part in key.strip(".").split("...")]
        if any(output.startswith(prefixes) for output in outputs):
            yield outputs, callback


def decoded(value):
    """``value`` with plotly's base64 typed arrays ({"dtype", "bdata"}) turned back into arrays."""
    if isinstance(value, dict):
        if set(value) >= {"dtype", "bdata"}:
            array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
            shape = value.get("shape")
            return array.reshape([int(n) for n in str(shape).split(",")]) if shape else array
        return {key: decoded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decoded(item) for item in value]
    return value


def figure_of(sent) -> go.Figure:
    """A view's answer sent as a dict (``figures.sent``: typed arrays base64) as a go.Figure."""
    return go.Figure(decoded(sent)) if isinstance(sent, dict) else sent


CALLBACK = "/_dash-update-component"


def post(client, body):
    """A callback request, as the page sends it."""
    return client.post(CALLBACK, data=json.dumps(body), content_type="application/json")


def first_launch_runs(folder: Path, complete_runs: Path, building_runs: Path, run_id: str = "text-parens",
                      stages_done: int = 1, writer_alive: bool = True) -> Path:
    """``folder``: the complete runs of ``complete_runs`` copied beside ``building_runs``' run
    ``run_id``, marked the way a writer marks a run it is building: manifest ``status``
    "incomplete", only its first ``stages_done`` stages recorded, updated last (the newest run), and
    with ``writer_alive`` a ``.lock`` naming this live process on this host."""
    import shutil
    import socket
    import time

    folder.mkdir(parents=True, exist_ok=True)
    for child in Path(complete_runs).iterdir():
        if (child / "manifest.json").is_file():
            shutil.copytree(child, folder / child.name)
    target = folder / run_id
    shutil.copytree(Path(building_runs) / run_id, target)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["status"] = "incomplete"
    manifest["stages"] = dict(list(manifest["stages"].items())[:stages_done])
    manifest["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(time.time() + 3600))
    (target / "manifest.json").write_text(json.dumps(manifest))
    if writer_alive:
        (target / ".lock").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                                  "since": manifest["updated"]}))
    return folder
