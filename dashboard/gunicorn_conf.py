"""gunicorn settings from the environment (``gunicorn -c dashboard/gunicorn_conf.py app:server``).

LSTM_LENS_BIND (default 127.0.0.1:8050: this machine only; the Docker image sets 0.0.0.0:8050
because the container boundary is its network control), LSTM_LENS_WORKERS (processes, default 2)
and LSTM_LENS_THREADS (threads per process, default 4). Options given on the command line win.

Before the app loads, ``deployment.startup_problem`` checks the settings a server cannot run
without (login, frame ancestors, a readable runs folder, a writable temporary folder): a problem
stops gunicorn with one line, ``error: ...``, and exit status 2, not a traceback. Each worker reads the default
run's tables in the background as it starts (``dashboard.warm``). Requests are logged
on stdout (the access log) without credentials: no Authorization header, no user name.
"""

import os
import sys
import threading

import gunicorn.http.wsgi

from dashboard import deployment, warm


def _stop(problem: str):
    print(f"error: {problem}", file=sys.stderr, flush=True)
    sys.exit(2)


def _positive(name: str, default: str) -> int:
    value = os.environ.get(name, "").strip() or default
    if not value.isdigit() or int(value) < 1:
        _stop(f"{name} {value[:20]!r}: expected a whole number, at least 1")
    return int(value)


_problem = deployment.startup_problem()
if _problem:
    _stop(_problem)

bind = os.environ.get("LSTM_LENS_BIND", "127.0.0.1:8050")
workers = _positive("LSTM_LENS_WORKERS", "2")
threads = _positive("LSTM_LENS_THREADS", "4")
worker_class = "gthread"
# The first read of a big run (tens of MB of parquet) may take seconds; later ones are cached.
timeout = _positive("LSTM_LENS_TIMEOUT", "120")
# Import the app once in the master (it never imports TensorFlow), then fork the workers.
preload_app = True
# Browsers pause between clicks: keep their connections a little longer than gunicorn's 2 s.
keepalive = 5
errorlog = "-"
# Every request on stdout: client, request line, status, bytes, milliseconds, user agent. Not %(u)s
# (the Basic-auth user name) and no request headers, so no credentials reach the log.
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'


def post_worker_init(worker):
    """Read the default run's tables in the background as each worker starts (``dashboard.warm``)."""
    threading.Thread(target=warm.warm, name="lens-warm", daemon=True).start()


# No "Server: gunicorn" banner: the app sends "Server: LSTM Lens" itself (dashboard/headers.py).
_default_headers = gunicorn.http.wsgi.Response.default_headers


def _headers_without_server(self):
    return [line for line in _default_headers(self) if not line.lower().startswith("server:")]


gunicorn.http.wsgi.Response.default_headers = _headers_without_server
