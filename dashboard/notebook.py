"""The dashboard inside Jupyter, on one run: ``show("data/runs/my-model")`` (Dash's own notebook mode).

The app reads the run's folder's runs like ``python app.py`` does (the newest complete run opens
first, so a run just recorded is the one shown); it serves from a thread of the kernel on a free
loopback port and is shown inline in the output cell (``mode="external"`` prints a link instead).
"""

from __future__ import annotations

import socket
from pathlib import Path

from dashboard.app import create_app


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def show(run: str | Path, *, mode: str = "inline", height: int = 800, port: int | None = None):
    """Serve the dashboard on the runs folder holding ``run`` and display it in the notebook."""
    path = Path(run)
    if not (path / "manifest.json").is_file():
        raise FileNotFoundError(f"{path.name}: not a run folder (no manifest.json); give the folder a "
                                f"recorder or `python -m pipeline` wrote")
    app = create_app(path.parent, title=f"LSTM Lens: {path.name}")
    # The notebook shows the app in an iframe of its own origin: let a local Jupyter frame it.
    app.server.config["LSTM_LENS_FRAME_ANCESTORS"] = "'self' http://localhost:* http://127.0.0.1:*"
    app.run(jupyter_mode=mode, jupyter_height=height, host="127.0.0.1", port=port or free_port())
    return app
