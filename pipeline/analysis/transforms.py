"""View transforms for projected coordinates; pure NumPy so the dashboard can import them.

They are applied when drawing, never baked into projections.parquet: the stored codes stay the
autoencoder's own output, and a view can switch the transform on and off.
"""

from __future__ import annotations

import numpy as np


def symlog(x):
    """``sign(x) * log1p(|x|)``: the study's symmetric log view.

    Compresses the long tails of autoencoder codes while keeping sign, order and zero; near zero
    it is the identity (slope 1), so small codes are not distorted.
    """
    x = np.asarray(x, dtype=float)
    return np.sign(x) * np.log1p(np.abs(x))

