"""A NumPy forward pass through a stack of dense layers: how the projections draw every step.

The project stage fits its autoencoders (Keras) and PCA on a sample of vectors, then maps every
step of the run through the fitted encoder. That map is this plain function of (kernel, bias,
relu) triples, so it runs on dask.distributed workers without TensorFlow, block by block, and a
block gives the same numbers there as here.
"""

from __future__ import annotations

import numpy as np

#: One layer: kernel (inputs, outputs), bias (outputs,), and whether a ReLU follows.
Layer = tuple[np.ndarray, np.ndarray, bool]


def forward(vectors: np.ndarray, layers: list[Layer]) -> np.ndarray:
    """``vectors`` (n, inputs) through ``layers`` in float32: (n, outputs of the last layer)."""
    x = np.asarray(vectors, np.float32)
    for kernel, bias, relu in layers:
        x = x @ kernel
        x += bias
        if relu:
            np.maximum(x, 0, out=x)
    return x


def affine(kernel: np.ndarray, bias: np.ndarray) -> list[Layer]:
    """One linear layer, e.g. PCA's ``(x - mean) @ components.T`` as ``x @ C.T - mean @ C.T``."""
    return [(np.asarray(kernel, np.float32), np.asarray(bias, np.float32), False)]
