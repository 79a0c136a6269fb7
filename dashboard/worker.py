"""The Celery worker of the background callbacks: ``celery -A dashboard.worker worker``.

It builds the server's app (``create_app`` on LSTM_LENS_RUNS), which registers each background
callback as a task of the Celery app on LSTM_LENS_CELERY_BROKER under the name the server sends
(a hash of the callback's source). So a worker needs the server's code, settings and runs folder
(the same path, on this machine or a shared mount). A missing, malformed or unreachable broker, or
any setting the server would refuse, stops it with one line, ``error: ...``, and exit status 2.
"""

import os
import sys
from typing import NoReturn

from dashboard import background, data, deployment
from dashboard.app import create_app


def _stop(problem: str) -> NoReturn:
    print(f"error: {problem}", file=sys.stderr, flush=True)
    sys.exit(2)


_url = background.broker_url()
if _url is None:
    _stop(f"{background.BROKER_ENV} is not set: the worker takes its jobs from that Redis "
          f"(e.g. redis://127.0.0.1:6379/0, as the server's)")
if (_problem := deployment.startup_problem()):
    _stop(_problem)
create_app(os.environ.get("LSTM_LENS_RUNS", "") or data.DEFAULT_RUNS)
celery = background.celery_app(_url)
