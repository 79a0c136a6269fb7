"""The run-info panel: what a run is, from its manifest alone.

``run_info_sections(manifest)`` gives ``[(title, [(label, value), ...]), ...]``: the data set and
its protocol (lengths, classes and sequences dropped and why, padding, split sizes, seeds), the
model, training, results, stage times, projections and library versions. Only what the manifest
holds: a field it lacks gives no row, a section without rows is left out. ``run_info(manifest)``
renders them as Dash components. Pure functions: manifest in, rows or components out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dash import html

from pipeline import runformat

Rows = list[tuple[str, str]]
LIST_SHOWN = 8         # a long list (skipped files, classes) shows this many, then how many in all

# Labels for the data sets' notes and settings that read badly as their keys.
LABELS = {
    "max_length": "max length",
    "n_steps": "padded to",
    "his_hers": "his/hers sign",
    "dropped_his_hers": "his/hers sequences dropped",
    "merged_his_hers": "his/hers sequences merged",
    "dropped_too_long": "sequences dropped as too long",
    "dropped_too_long_files": "files too long",
    "skipped_bad_files": "malformed files skipped",
    "skipped_files": "files skipped",
    "files_found": "files found",
    "files_read": "files read",
    "skip_bad_files": "skip malformed files",
    "batch_size": "batch size",
    "learning_rate": "learning rate",
    "lr_schedule": "learning-rate schedule",
    "lr_factor": "learning-rate factor",
    "lr_patience": "learning-rate patience",
    "lr_decay": "learning-rate decay",
    "min_lr": "minimum learning rate",
    "jit_compile": "XLA compile",
    "max_seconds": "time limit (s)",
    "top_k": "top-k predictions kept",
    "bits_per_char": "bits per character",
    "bits_per_token": "bits per token",
}
# Why a data set's option drops or merges what it does (the value recorded in the notes).
WHY = {
    ("his_hers", "drop"): "dropped: the sign is named 'her' in session 1 and 'his_hers' after, so the study "
                          "leaves it out",
    ("his_hers", "merge"): "merged: 'her' and 'his_hers' as one sign",
}
DATASET_KEYS = ("name", "source", "corpus", "format")
SKIPPED_CONFIG = {"name", "source", "kind", "units"}      # shown elsewhere


def label(key: str) -> str:
    return LABELS.get(key, key.replace("_", " "))


def value_text(value: Any) -> str:
    """One value as text: numbers to four significant figures, lists shortened, dicts as k: v."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, Mapping):
        return ", ".join(f"{label(str(k))}: {value_text(v)}" for k, v in value.items())
    if isinstance(value, Sequence) and not isinstance(value, str):
        items = [value_text(v) for v in value[:LIST_SHOWN]]
        more = f" \u2026 ({len(value):,} in all)" if len(value) > LIST_SHOWN else ""
        return ", ".join(items) + more
    return str(value)


def _counted(value: Any) -> str:
    """A list of names as its count and its first names; anything else as it is."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return f"{len(value):,}" + (f" ({value_text(list(value))})" if value else "")
    return value_text(value)


def dataset_rows(manifest: runformat.Manifest) -> Rows:
    dataset = manifest.dataset if isinstance(manifest.dataset, dict) else {}
    settings = manifest.config.get("dataset") if isinstance(manifest.config.get("dataset"), dict) else {}
    rows: Rows = [(key, value_text(dataset[key])) for key in DATASET_KEYS if dataset.get(key) not in (None, "")]
    rows.append(("kind", manifest.kind.replace("_", " ") + ("" if manifest.origin == "trained"
                                                            else f", {manifest.origin}")))
    noun = "examples" if manifest.is_classification else "documents"
    if manifest.n_examples:
        rows.append((noun, value_text(manifest.n_examples)))
    if manifest.get("n_chars") is not None:
        rows.append(("characters", value_text(manifest.get("n_chars"))))
    rows += token_rows(manifest)
    if manifest.classes:
        rows.append(("classes" if manifest.is_classification else "vocabulary", _counted(manifest.classes)))
    vocabulary = manifest.get("vocabulary")
    if isinstance(vocabulary, dict):
        rows.append(("vocabulary cap", f"the {value_text(vocabulary.get('cap'))} most frequent training words "
                                       f"({value_text(vocabulary.get('distinct_train_words'))} distinct), "
                                       f"the rest read as {vocabulary.get('unknown_token', '<unk>')}"))
        rates = vocabulary.get("unknown_rate")
        if isinstance(rates, dict):
            rows.append(("unknown rate", " \u00b7 ".join(f"{name} {float(rate):.2%}" for name, rate in rates.items()
                                                        if isinstance(rate, (int, float)))))
    notes = dataset.get("notes") if isinstance(dataset.get("notes"), dict) else {}
    max_length = notes.get("max_length", settings.get("max_length"))
    if max_length is not None:
        rows.append((label("max_length"), f"sequences shorter than {value_text(max_length)} steps kept"))
    if manifest.get("n_steps") is not None:
        rows.append((label("n_steps"), f"{value_text(manifest.get('n_steps'))} steps"))
    padding = manifest.get("padding", settings.get("padding"))
    if padding is not None:
        rows.append(("padding", value_text(padding)))
    for key, value in notes.items():
        if key == "max_length" or key.endswith("_files") and key[:-len("_files")] in notes:
            continue                                   # shown above, or with its count
        why = WHY.get((key, value)) if isinstance(value, str) else None
        if why:
            text = why
        elif f"{key}_files" in notes:                  # a count and the files it counts
            text = _counted(notes[f"{key}_files"])
        elif key.startswith(("dropped", "merged", "skipped")):
            text = _counted(value)
        else:
            text = value_text(value)
        rows.append((label(key), text))
    if manifest.splits:
        rows.append(("split sizes", " \u00b7 ".join(f"{value_text(n)} {name}" for name, n in manifest.splits.items())))
    split = manifest.config.get("split")
    if isinstance(split, dict) and split:
        rows.append(("split", value_text(split)))
    seeds = {section: values["seed"] for section, values in manifest.config.items()
             if isinstance(values, dict) and "seed" in values}
    if seeds:
        rows.append(("seeds", " \u00b7 ".join(f"{section} {value_text(seed)}" for section, seed in seeds.items())))
    return rows


def token_rows(manifest: runformat.Manifest) -> Rows:
    """A word run's steps: words, how they were cut and how many (none for a character run)."""
    text = manifest.get("text") if isinstance(manifest.get("text"), dict) else {}
    if text.get("tokens") != "words":
        return []
    tokenizer = text.get("tokenizer")
    return [("tokens", f"words ({tokenizer} tokenizer)" if tokenizer else "words"),
            ("words", value_text(manifest.get("n_tokens")))]


def _settings(manifest: runformat.Manifest, section: str) -> Rows:
    values = manifest.config.get(section)
    if not isinstance(values, dict):
        return []
    return [(label(key), value_text(value)) for key, value in values.items()
            if key not in SKIPPED_CONFIG and key != "seed"]


def model_rows(manifest: runformat.Manifest) -> Rows:
    rows: Rows = []
    if manifest.layers:
        units = ", ".join(str(layer.units) for layer in manifest.layers)
        n = len(manifest.layers)
        rows.append(("LSTM", f"{n} layer{'s' if n != 1 else ''} of {units} units"))
    channels = manifest.get("channels")
    if isinstance(channels, list) and channels:
        rows.append(("input channels", _counted(channels)))
    rows += _settings(manifest, "model")
    if manifest.get("standardisation"):
        rows.append(("inputs standardised", "yes (per-channel mean and std recorded)"))
    if manifest.get("top_k") is not None:
        rows.append((label("top_k"), value_text(manifest.get("top_k"))))
    return rows


def training_rows(manifest: runformat.Manifest) -> Rows:
    rows = _settings(manifest, "train")
    if manifest.get("best_epoch") is not None:
        rows.append(("best epoch", value_text(manifest.get("best_epoch"))))
    return rows


def result_rows(manifest: runformat.Manifest) -> Rows:
    rows: Rows = []
    for split, metrics in manifest.metrics.items():
        if isinstance(metrics, dict) and metrics:
            shown = {key: (f"{value:.1%}" if key == "accuracy" and isinstance(value, float) else value_text(value))
                     for key, value in metrics.items()}
            rows.append((split, ", ".join(f"{label(key)} {text}" for key, text in shown.items())))
    return rows


def stage_rows(manifest: runformat.Manifest) -> Rows:
    rows: Rows = []
    total = 0.0
    for name, stage in manifest.stages.items():
        seconds = stage.get("seconds") if isinstance(stage, dict) else None
        if isinstance(seconds, (int, float)):
            total += seconds
            rows.append((name, f"{seconds:,.1f} s"))
    if len(rows) > 1:
        rows.append(("all stages", f"{total:,.1f} s"))
    if manifest.status != "complete":
        rows.append(("status", manifest.status))
    if manifest.updated:
        rows.append(("written", manifest.updated))
    return rows


def projection_rows(manifest: runformat.Manifest) -> Rows:
    rows: Rows = []
    for entry in manifest.projections:
        parts = [str(entry[key]) for key in ("method",) if entry.get(key)]
        if entry.get("dims"):
            parts.append(f"{entry['dims']}-D")
        if entry.get("scope"):
            parts.append("a point per step" if entry["scope"] == "paths" else "last steps only")
        quality = entry.get("quality") if isinstance(entry.get("quality"), dict) else {}
        if quality.get("trustworthiness") is not None:
            parts.append(f"trustworthiness {value_text(quality['trustworthiness'])}")
        rows.append((str(entry.get("id")), ", ".join(parts)))
    return rows


def version_rows(manifest: runformat.Manifest) -> Rows:
    versions = manifest.get("versions")
    if not isinstance(versions, dict):
        return []
    return [(str(name), str(version)) for name, version in versions.items() if version]


def run_info_sections(manifest: runformat.Manifest) -> list[tuple[str, Rows]]:
    """The panel's sections with their rows; sections without rows are left out."""
    sections = [("Data set and protocol", dataset_rows(manifest)), ("Model", model_rows(manifest)),
                ("Training", training_rows(manifest)), ("Results", result_rows(manifest)),
                ("Stage times", stage_rows(manifest)), ("Projections", projection_rows(manifest)),
                ("Library versions", version_rows(manifest))]
    return [(title, rows) for title, rows in sections if rows]


def run_info(manifest: runformat.Manifest) -> list:
    """The sections as Dash components: a heading and a two-column table each."""
    return [html.Div(className="run-info-section", children=[
        html.H4(title),
        html.Table(html.Tbody([html.Tr([html.Th(name), html.Td(text)]) for name, text in rows]))])
        for title, rows in run_info_sections(manifest)]
