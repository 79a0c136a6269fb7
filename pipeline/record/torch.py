"""Record a PyTorch ``nn.LSTM`` where it trains: ``record_torch`` for a trained module, ``TorchRecorder``
for the user's own training loop.

    from pipeline.record import TorchRecorder
    recorder = TorchRecorder("data/runs/my-lstm", model, inputs=x_val, labels=y_val, head=model.fc)
    for epoch in range(epochs):
        ...                                # the user's own loop
        recorder.epoch(loss=loss.item())   # one history row; the gradient norm if grads are there
    recorder.finish()

The module is an ``nn.LSTM`` or holds exactly one (``lstm=`` names it otherwise), batch_first or
not, stacked, with the user's own head: a ``head`` Linear on the LSTM's h gives per-step
probabilities (softmax of it). Gates are recomputed from the module's weights and checked against
the module's own outputs to ``tolerance`` (1e-5) before anything is written.
"""

from __future__ import annotations

import numpy as np
import torch

from pipeline.core.errors import DataError
from pipeline.importers.torch_model import check_against_torch, torch_weights
from pipeline.record.session import Recording


def find_lstm(module: torch.nn.Module, name: str | None = None) -> torch.nn.LSTM:
    if isinstance(module, torch.nn.LSTM):
        return module
    if name is not None:
        found = dict(module.named_modules()).get(name)
        if not isinstance(found, torch.nn.LSTM):
            raise DataError(f"the module has no nn.LSTM named {name!r}")
        return found
    lstms = [(n, m) for n, m in module.named_modules() if isinstance(m, torch.nn.LSTM)]
    if len(lstms) != 1:
        raise DataError(f"the module holds {len(lstms)} nn.LSTM modules "
                        f"({', '.join(n for n, _ in lstms) or 'none'}); name one with lstm=")
    return lstms[0][1]


class TorchRecorder:
    """A run written while the user's loop trains ``module``; see the module docstring."""

    def __init__(self, run, module: torch.nn.Module, *, inputs, labels=None, classes=None, split=None,
                 lengths=None, names=None, lstm: str | None = None, head: torch.nn.Linear | None = None,
                 batch_first: bool | None = None, every: int = 0, project: dict | None = None,
                 tolerance: float = 1e-5):
        self.module = module
        self.lstm = find_lstm(module, lstm)
        if self.lstm.bidirectional or self.lstm.proj_size:
            raise DataError("bidirectional or projected nn.LSTM modules are not recomputed here; export "
                            "their states as arrays and import them")
        if head is not None and (not isinstance(head, torch.nn.Linear) or head.in_features != self.lstm.hidden_size):
            raise DataError(f"head must be an nn.Linear reading the LSTM's {self.lstm.hidden_size} hidden units")
        self.head, self.tolerance = head, tolerance
        values = inputs.detach().cpu().numpy() if isinstance(inputs, torch.Tensor) else np.asarray(inputs)
        batch_first = self.lstm.batch_first if batch_first is None else batch_first
        if values.ndim == 3 and not batch_first:
            values = values.transpose(1, 0, 2)              # (T, n, C) -> (n, T, C)
        if values.ndim != 3 or values.shape[-1] != self.lstm.input_size:
            raise DataError(f"inputs has shape {values.shape}: expected (examples, steps, "
                            f"{self.lstm.input_size}) (or steps first with batch_first=False)")
        self.recording = Recording(run, values.astype(np.float32), labels=labels, classes=classes, split=split,
                                   lengths=lengths, names=names, every=every, project=project,
                                   framework="pytorch")
        self.error = self._check()
        self.recording.start()

    def weights(self):
        kernel = bias = None
        if self.head is not None:
            kernel = self.head.weight.detach().cpu().numpy().T.astype(np.float32)
            bias = (np.zeros(kernel.shape[1], np.float32) if self.head.bias is None
                    else self.head.bias.detach().cpu().numpy().astype(np.float32))
        return torch_weights(self.lstm, kernel, bias)

    def _check(self) -> float:
        recording = self.recording
        error = check_against_torch(_BatchFirst(self.lstm), self.weights(), recording.step_array(), recording.lengths)
        if error > self.tolerance:
            raise DataError(f"the NumPy recompute differs from the module by {error:.2e} (> {self.tolerance:g})")
        return error

    def epoch(self, epoch: int | None = None, **metrics) -> dict:
        """Record one epoch: ``metrics`` (loss=..., accuracy=...), gate statistics, and the gradient
        norm of the LSTM's parameters when their gradients are there."""
        grads = [p.grad for p in self.lstm.parameters() if p.grad is not None]
        if grads and "grad_norm" not in metrics:
            metrics["grad_norm"] = float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])))
        number = epoch if epoch is not None else len(self.recording.history) + 1
        return self.recording.epoch(number, metrics, self.weights())

    def finish(self):
        """Write every tensor, the predictions and the projections; returns the run's folder."""
        return self.recording.finish(self.weights(), notes={"max_abs_difference": float(self.error)})


def record_torch(run, module: torch.nn.Module, *, inputs, **options):
    """A trained module's run (no history): every step of ``inputs``, checked against the module."""
    return TorchRecorder(run, module, inputs=inputs, **options).finish()


class _BatchFirst(torch.nn.Module):
    """The LSTM called the way ``check_against_torch`` calls it: (1, steps, inputs) batches."""

    def __init__(self, lstm: torch.nn.LSTM):
        super().__init__()
        self.lstm = lstm

    def forward(self, x):
        if self.lstm.batch_first:
            return self.lstm(x)
        output, state = self.lstm(x.transpose(0, 1))
        return output.transpose(0, 1), state
