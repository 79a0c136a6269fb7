"""Where the dashboard's background callbacks run (long work off the request thread, issue 15 item 6).

LSTM_LENS_BACKGROUND=1: in child processes of the server, ``dash.DiskcacheManager`` on a folder
beside the shared cache (one machine). LSTM_LENS_CELERY_BROKER=redis://HOST:PORT/DB (implies
background callbacks): ``CeleryManager`` (Dash's, two polling races closed) with a Celery app whose
broker and result backend are that Redis, so that the jobs run in Celery workers (``celery -A
dashboard.worker worker``), on this machine or others that see the same runs folder, and every
gunicorn worker sees every job.

``broker_problem`` checks the URL (its form, then a PING) before a server or worker starts:
a typo must not turn into requests that hang on a broker that is not there.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import dash
import diskcache

from dashboard import data

BACKGROUND_ENV = "LSTM_LENS_BACKGROUND"      # "1": background callbacks (DiskcacheManager)
BROKER_ENV = "LSTM_LENS_CELERY_BROKER"       # a Redis URL: background callbacks in Celery workers
SCHEMES = ("redis", "rediss")
CONNECT_SECONDS = 3                          # the start-up PING's limit (a host that drops packets)


def broker_url(environ: Mapping[str, str] = os.environ) -> str | None:
    return environ.get(BROKER_ENV, "").strip() or None


def enabled(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether long callbacks run as background callbacks (a broker implies it)."""
    return environ.get(BACKGROUND_ENV) == "1" or broker_url(environ) is not None


def redacted(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username or ''}:***@{host}").geturl()


def url_problem(url: str) -> str | None:
    """What is wrong with the form of a broker URL (None: nothing)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        return str(error)
    if parts.scheme not in SCHEMES:
        return f"expected redis://HOST:PORT/DB (or rediss://), not {parts.scheme or 'no'} scheme"
    if not parts.hostname:
        return "no host: expected redis://HOST:PORT/DB"
    database = parts.path.strip("/")
    if database and not database.isdigit():
        return f"the database {database[:20]!r} is not a number"
    return None if port is None or 0 < port < 65536 else f"port {port} is out of range"


def broker_problem(environ: Mapping[str, str] = os.environ) -> str | None:
    """One line for the operator when LSTM_LENS_CELERY_BROKER is set but malformed or its Redis
    does not answer a PING within ``CONNECT_SECONDS``; None when unset or fine."""
    url = broker_url(environ)
    if url is None:
        return None
    shown = redacted(url)
    problem = url_problem(url)
    if problem:
        return f"{BROKER_ENV} {shown!r}: {problem}"
    import redis   # only a team's server needs it, and only here and in Celery

    try:
        with redis.Redis.from_url(url, socket_connect_timeout=CONNECT_SECONDS,
                                  socket_timeout=CONNECT_SECONDS) as client:
            client.ping()
    except (redis.RedisError, ValueError, OSError) as error:
        return (f"{BROKER_ENV} {shown!r}: Redis does not answer ({error}); start it "
                f"(redis-server --port PORT) or fix the URL")
    return None


@functools.cache
def celery_app(url: str):
    """The Celery app on ``url`` (broker and result backend), one per process: the server's
    manager sends its tasks and the worker module serves the same app's tasks."""
    import celery

    app = celery.Celery("lstm_lens", broker=url, backend=url)
    app.conf.update(
        broker_connection_retry_on_startup=True,    # a worker keeps waiting through a Redis restart
        # A Redis lost later fails a request in seconds (Celery's result store retries for 20 s)
        broker_connection_timeout=CONNECT_SECONDS,
        redis_socket_connect_timeout=CONNECT_SECONDS,
        result_backend_transport_options={"retry_policy": {"timeout": CONNECT_SECONDS}},
    )
    return app


class CeleryManager(dash.CeleryManager):
    """Dash's CeleryManager (4.4.1) without two races of its polling.

    Dash reads a job's result, terminates the job, then asks whether it still runs. Under Celery a
    terminate kills the pool process that ran the job, whatever it runs by then (measured: the next
    job, killed; the process after it reads the run afresh, 30 s on a 1.3M-step run); and a job
    that ends between the two reads is taken for cancelled (no answer; its result is left for the
    next identical request, whose own job Dash then terminates). Here reading a result terminates
    nothing, and "still running" is the job's state read before its result (a job writes its
    result before it ends), per request thread. Cancel and a replaced job still terminate.
    """

    def __init__(self, celery_app):
        super().__init__(celery_app)
        self._polled = threading.local()

    def get_result(self, key, job):
        running = bool(super().job_running(job))
        result = super().get_result(key, None)
        self._polled.state = (job, running and result is self.UNDEFINED)
        return result

    def job_running(self, job):
        polled, running = getattr(self._polled, "state", (None, False))
        self._polled.state = (None, False)
        return running if job is not None and polled == job else super().job_running(job)


def manager(environ: Mapping[str, str] = os.environ) -> CeleryManager | dash.DiskcacheManager:
    """The background callback manager the settings ask for."""
    url = broker_url(environ)
    if url is not None:
        return CeleryManager(celery_app(url))
    return dash.DiskcacheManager(diskcache.Cache(str(Path(data.disk_cache().directory) / "background")))
