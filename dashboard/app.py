"""The Dash app factory: ``create_app(runs_dir)`` wires the shell and every registered view."""

from __future__ import annotations

from pathlib import Path

import dash
from threadpoolctl import threadpool_limits

from dashboard import data, deployment, errors, layout, views

ASSETS = Path(__file__).resolve().parents[1] / "assets"


def create_app(runs_dir: str | Path = "data/runs", title: str = "LSTM Lens") -> dash.Dash:
    """A Dash app reading the runs in ``runs_dir``; ``app.server`` is the Flask app for gunicorn.

    The runs folder is a process-wide setting (``dashboard.data.runs_dir()``), also kept in
    ``app.server.config["LSTM_LENS_RUNS"]``.
    """
    data.configure(runs_dir)
    # One BLAS thread per request thread: the dashboard's products are small (an LSTM step, a
    # word model's head), and OpenBLAS threads spinning for busy cores made them 40x slower (the
    # Model writes view: 300 words in 8.2 s at load 6, 1.0 s with one thread). Process-wide, so
    # gunicorn's workers inherit it.
    threadpool_limits(1, user_api="blas")
    # on_error: a failing callback shows a short message, its traceback goes to the log (errors.py)
    app = dash.Dash(__name__, title=title, assets_folder=str(ASSETS), update_title=None,
                    on_error=errors.on_callback_error)
    app.server.config["LSTM_LENS_RUNS"] = str(runs_dir)
    app.layout = layout.shell
    layout.register_shell_callbacks(app)
    for view in views.VIEWS:
        view.register_callbacks(app)
    deployment.install(app)        # /healthz, the optional login, the callback request guard
    return app
