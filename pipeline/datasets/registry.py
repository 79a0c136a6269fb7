"""Data sets by name: the one place the pipeline turns a dataset config into a SequenceDataset."""

from __future__ import annotations

from pipeline.datasets import DataError, SequenceDataset
from pipeline.datasets.auslan import load_auslan
from pipeline.datasets.synthetic import generate_synthetic

NAMES = ("auslan", "synthetic")
# The Tempczyk & Bartołd protocol for Auslan is the default; the synthetic signs share it.
DEFAULTS = {
    "name": "synthetic",
    "source": None,            # folder or file; None for generated data
    "max_length": 90,          # keep sequences shorter than this, left-pad with zeros to it
    "his_hers": "drop",        # Auslan: "drop" (94 classes, the study) or "merge" (95 classes)
    "skip_bad_files": False,   # True: warn and count malformed files instead of stopping
    "seed": 0,                 # generated data sets only
}


def load_dataset(dataset_config: dict) -> SequenceDataset:
    """The data set that ``dataset_config`` (the config's "dataset" section) names.

    Keys it leaves out take the DEFAULTS.
    """
    settings = {**DEFAULTS, **dataset_config}
    name = settings["name"]
    if name == "auslan":
        if not settings["source"]:
            raise DataError("dataset.source: the Auslan data set needs the folder that holds tctodd1 .. "
                            "tctodd9 (the UCI 'Australian Sign Language signs (High Quality)' archive)")
        return load_auslan(settings["source"], max_length=settings["max_length"],
                           his_hers=settings["his_hers"], skip_bad_files=settings["skip_bad_files"])
    if name == "synthetic":
        return generate_synthetic(seed=settings["seed"], max_length=settings["max_length"],
                                  examples=settings.get("examples"))
    raise DataError(f"dataset.name: unknown data set {name!r}; choose one of {', '.join(NAMES)}")
