"""How reliable is the default classifier's test accuracy? N seeds x {TF_ENABLE_ONEDNN_OPTS=0, default}.

    python bench/accuracy.py --dataset synthetic --seeds 3
    python bench/accuracy.py --dataset auslan --source ../shared/data/auslan --seeds 1 --envs default
    python bench/accuracy.py --dataset synthetic --seeds 0,1 --set train.augment=null --set train.lr_schedule='"none"'

Each (environment, seed) builds the data set's default run (data -> train -> extract; --project adds
the attribute and project stages) in its own subprocess, because TF_ENABLE_ONEDNN_OPTS is read when TensorFlow
loads. Only the training seed changes (``train.seed``); the split keeps its own seed, so every
trial is tested on the same examples. Prints, per trial, the test (and validation) accuracy, the
epochs trained, the epoch whose weights were kept (lowest validation loss), the train stage's and
the whole run's seconds and the trial's CPU seconds (user + system: less dependent on what else
runs than the wall clock); then the mean, std and minimum per environment and over all; and the load
average before and after (on a shared machine the seconds mean little without it).

``--set KEY=JSON`` overrides the config (``train.augment=null`` switches augmentation off) to compare
a change with the defaults on the same seeds. ``--runs DIR`` keeps the runs (default: a temporary
folder); ``--json FILE`` writes the table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENVIRONMENTS = {"onednn-off": {"TF_ENABLE_ONEDNN_OPTS": "0"}, "default": {}}


def seeds_of(text: str) -> list[int]:
    """``"3"`` -> [0, 1, 2]; ``"0,4"`` -> [0, 4]."""
    seeds = [int(part) for part in text.split(",") if part.strip()] if "," in text else list(range(int(text)))
    if not seeds:
        raise SystemExit(f"--seeds {text!r} gives no seed: give a count (3: seeds 0, 1, 2) or a list (0,4)")
    return seeds


def overrides_of(pairs: list[str]) -> dict:
    """``["train.augment=null"]`` -> ``{"train": {"augment": None}}``."""
    overrides: dict = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if not key or not _:
            raise SystemExit(f"--set needs KEY=JSON, not {pair!r}")
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value                         # a bare word: a string
        node = overrides
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = parsed
    return overrides


def worker(args) -> None:
    """One trial, in this process: build the run, print one JSON line."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from pipeline.core.config import merge
    from pipeline.kinds import classification
    from pipeline.runformat import Run

    config = classification.default_config(args.dataset)
    overrides = overrides_of(args.set or [])
    overrides = merge(overrides, {"train": {"seed": args.seed}})
    if args.source:
        overrides = merge(overrides, {"dataset": {"source": args.source}})
    if not args.project:      # train and extract only: the later stages do not change the accuracy
        overrides = merge(overrides, {"attribute": {"methods": []}, "project": {"methods": []}})
    config = merge(config, overrides)
    started = time.perf_counter()
    summary = classification.run_classification(config, args.runs, args.run_id, force=True)
    seconds = time.perf_counter() - started
    run = Run.open(args.runs, args.run_id)
    history = run.history()
    stages = run.manifest.stages
    print(json.dumps({
        "test_accuracy": summary.metrics["test"]["accuracy"],
        "validation_accuracy": summary.metrics["validation"]["accuracy"],
        "epochs": int(len(history)), "best_epoch": int(history["val_loss"].idxmin()) + 1,
        "train_seconds": float(stages["train"]["seconds"]), "run_seconds": round(seconds, 1),
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
    }), flush=True)


def trial(args, environment: str, seed: int, runs: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    env.update(ENVIRONMENTS[environment])
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    run_id = f"{args.dataset}-seed{seed}-{environment}"
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--dataset", args.dataset,
               "--seed", str(seed), "--runs", str(runs), "--run-id", run_id]
    command += ["--source", args.source] if args.source else []
    command += ["--project"] if args.project else []
    for pair in args.set or []:
        command += ["--set", pair]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        sys.stderr.write(done.stderr[-3000:])
        raise SystemExit(f"trial {run_id} failed (exit {done.returncode})")
    return {"environment": environment, "seed": seed, "run_id": run_id, **json.loads(lines[-1]),
            "cpu_seconds": round(cpu, 1)}


def summarise(rows: list[dict]) -> dict:
    accuracy = [row["test_accuracy"] for row in rows]
    return {"n": len(rows), "mean": statistics.fmean(accuracy),
            "std": statistics.stdev(accuracy) if len(accuracy) > 1 else 0.0, "min": min(accuracy),
            "epochs_mean": statistics.fmean(row["epochs"] for row in rows),
            "train_seconds_mean": statistics.fmean(row["train_seconds"] for row in rows),
            "cpu_seconds_mean": statistics.fmean(row["cpu_seconds"] for row in rows)}


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} cores)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=("synthetic", "auslan"), default="synthetic")
    parser.add_argument("--source", help="the Auslan folder (tctodd1 .. tctodd9)")
    parser.add_argument("--seeds", default="3", help="N (seeds 0 .. N-1) or a comma-separated list")
    parser.add_argument("--envs", default="onednn-off,default",
                        help=f"comma-separated, any of {', '.join(ENVIRONMENTS)}")
    parser.add_argument("--set", action="append", metavar="KEY=JSON", help="config override (repeatable)")
    parser.add_argument("--project", action="store_true", help="also run the attribute and project stages")
    parser.add_argument("--runs", help="keep the runs in this folder (default: a temporary one)")
    parser.add_argument("--json", help="write the trials and summaries to this file")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--run-id", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    if args.dataset == "auslan" and not args.source:
        parser.error("--dataset auslan needs --source DIR")
    if args.source:
        args.source = str(Path(args.source).resolve())
    environments = [e.strip() for e in args.envs.split(",") if e.strip()]
    unknown = [e for e in environments if e not in ENVIRONMENTS]
    if unknown:
        parser.error(f"--envs: unknown {', '.join(unknown)}")
    before = load()
    print(f"load average before: {before}; dataset {args.dataset}; overrides {overrides_of(args.set or [])}",
          flush=True)
    print(f"{'environment':<12}{'seed':>5}{'test acc':>10}{'val acc':>9}{'epochs':>8}{'best':>6}"
          f"{'train s':>9}{'run s':>8}{'cpu s':>8}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(args.runs).resolve() if args.runs else Path(tmp)
        for environment in environments:
            for seed in seeds_of(args.seeds):
                row = trial(args, environment, seed, runs)
                rows.append(row)
                print(f"{environment:<12}{seed:>5}{row['test_accuracy']:>10.4f}{row['validation_accuracy']:>9.4f}"
                      f"{row['epochs']:>8}{row['best_epoch']:>6}{row['train_seconds']:>9.1f}"
                      f"{row['run_seconds']:>8.1f}{row['cpu_seconds']:>8.0f}   load {load()}", flush=True)
    summaries = {environment: summarise([r for r in rows if r["environment"] == environment])
                 for environment in environments}
    summaries["all"] = summarise(rows)
    print()
    for name, s in summaries.items():
        print(f"{name:<12} n={s['n']}  test accuracy mean {s['mean']:.4f}  std {s['std']:.4f}  min {s['min']:.4f}"
              f"  epochs {s['epochs_mean']:.0f}  train {s['train_seconds_mean']:.0f} s  cpu {s['cpu_seconds_mean']:.0f} s")
    after = load()
    print(f"load average after: {after}")
    if args.json:
        Path(args.json).write_text(json.dumps({"dataset": args.dataset, "overrides": overrides_of(args.set or []),
                                               "load_before": before, "load_after": after, "trials": rows,
                                               "summary": summaries}, indent=1) + "\n")


if __name__ == "__main__":
    main()
