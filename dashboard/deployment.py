"""What a served dashboard adds around the views: ``/healthz``, the optional login, the HTTP
headers and the callback error guard (``install(app)``, called by ``create_app``), and the checks a
server runs before it loads the app (``startup_problem``, called by ``dashboard/gunicorn_conf.py``)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import dash
import flask

from dashboard import auth, background, data, errors, headers, views

HEALTH_PATH = "/healthz"
FALLBACK_TMPDIR = "/dev/shm"          # writable in a --read-only container (Docker mounts a tmpfs)


def install(app: dash.Dash, environ: Mapping[str, str] = os.environ) -> None:
    app.server.add_url_rule(HEALTH_PATH, "healthz", healthz)
    errors.guard_callbacks(app, views.value_checks())
    login = auth.install(app.server, environ)
    headers.install(app, login=login is not None, environ=environ)
    register_scripts(app)


def register_scripts(app: dash.Dash) -> None:
    """Serve the page once, in this process, before any real request (past the login: the request
    is marked as the server's own, ``auth.INTERNAL``).

    Dash sets itself up on its first request and learns which component scripts it may serve while
    it renders the page. In a threaded gunicorn worker the browser's parallel script requests raced
    that first request and got 500 ("dash is not a registered library").
    """
    response = app.server.test_client().get("/", environ_base={auth.INTERNAL_KEY: auth.INTERNAL})
    if response.status_code != 200:
        raise RuntimeError(f"the dashboard page did not render ({response.status_code})")


def healthz() -> flask.Response:
    """200 and the number of readable runs; 503 when the runs folder exists but cannot be read.
    Open without a login (container health checks); it names no path."""
    folder = data.runs_dir()
    if folder.exists() and not readable_folder(folder):
        return flask.jsonify(status="error", error="the runs folder cannot be read by the server"), 503
    return flask.jsonify(status="ok", runs=len(data.list_runs()))


def readable_folder(folder: Path) -> bool:
    try:
        with os.scandir(folder):
            return True
    except OSError:
        return False


def startup_problem(environ: Mapping[str, str] = os.environ) -> str | None:
    """What stops a server before it loads the app, as one line for the operator (None: nothing).

    Checks the login settings, the frame-ancestors setting, the Celery broker (its form, and that
    its Redis answers), that the runs folder (``LSTM_LENS_RUNS``)
    can be read if it exists, and that there is a writable temporary folder: when neither TMPDIR
    nor /tmp is writable (a ``--read-only`` container) it uses /dev/shm, setting TMPDIR for this
    process and its workers.
    """
    try:
        if auth.users_from_environment(environ) is not None:
            auth.login_limit(environ)
            auth.trusted_proxies(environ)
        headers.frame_ancestors(environ.get(headers.FRAME_ANCESTORS))
    except (auth.AuthConfigError, headers.HeaderConfigError) as error:
        return str(error)
    broker = background.broker_problem(environ)
    if broker:
        return broker
    runs = Path(environ.get("LSTM_LENS_RUNS", "") or data.DEFAULT_RUNS)
    if runs.exists() and not (runs.is_dir() and readable_folder(runs)):
        what = "is not a folder" if not runs.is_dir() else f"cannot be read by uid {os.getuid()}"
        return (f"the runs folder {runs} (LSTM_LENS_RUNS) {what}: make it readable by that user "
                f"(e.g. chmod -R a+rX on the folder), or run the server as its owner")
    return usable_tmpdir()


def usable_tmpdir() -> str | None:
    """Make sure ``tempfile`` finds a writable folder (gunicorn's worker heartbeat files, the
    shared figure cache); falls back to /dev/shm. None when one is usable, else the problem."""
    tempfile.tempdir = None
    try:
        tempfile.gettempdir()
        return None
    except OSError:
        pass
    if os.path.isdir(FALLBACK_TMPDIR) and os.access(FALLBACK_TMPDIR, os.W_OK | os.X_OK):
        os.environ["TMPDIR"] = FALLBACK_TMPDIR
        tempfile.tempdir = None
        return None
    return ("no writable temporary folder (TMPDIR, /tmp, /var/tmp, /dev/shm): give the container "
            "--tmpfs /tmp, or set TMPDIR to a writable folder")
