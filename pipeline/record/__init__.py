"""Record your own model where you train it: ``LensCallback`` for Keras, ``record_torch`` and
``TorchRecorder`` for PyTorch. Each writes an ordinary run (history every epoch, the run readable
while training goes on; every per-step tensor, predictions and projections at the end).

Imported lazily, so that ``import pipeline.record`` loads neither framework.
"""

from __future__ import annotations

_NAMES = {"LensCallback": "pipeline.record.keras", "record_torch": "pipeline.record.torch",
          "TorchRecorder": "pipeline.record.torch"}

__all__ = list(_NAMES)


def __getattr__(name: str):
    if name not in _NAMES:
        raise AttributeError(f"module 'pipeline.record' has no attribute {name!r}")
    import importlib
    return getattr(importlib.import_module(_NAMES[name]), name)
