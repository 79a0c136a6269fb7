"""The Dash app factory: ``create_app(runs_dir)`` wires the shell and every registered view."""

from __future__ import annotations

from pathlib import Path

import dash

from dashboard import data, deployment, errors, layout, views

ASSETS = Path(__file__).resolve().parents[1] / "assets"


def create_app(runs_dir: str | Path = "data/runs", title: str = "LSTM Lens") -> dash.Dash:
    """A Dash app reading the runs in ``runs_dir``; ``app.server`` is the Flask app for gunicorn.

    The runs folder is a process-wide setting (``dashboard.data.runs_dir()``), also kept in
    ``app.server.config["LSTM_LENS_RUNS"]``.
    """
    data.configure(runs_dir)
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
