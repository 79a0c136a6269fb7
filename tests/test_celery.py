"""Background callbacks for teams (issue 15 item 6): with LSTM_LENS_CELERY_BROKER the select & match
job goes through a real Redis to a real Celery worker (``celery -A dashboard.worker worker``) and
back to a real gunicorn server, answering what the in-process match does; a malformed or unreachable
broker stops the server and the worker with one line.

Redis is Debian's redis-server on a free loopback port with its files in a temporary folder (the
round trips skip without it); they share one redis-server, worker and gunicorn. Every process is
started in its own session and its whole group is ended at teardown, also when a test fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dashboard import background, data
from dashboard.views import select_match
from factories import CALLBACK
from test_background import POLL_SECONDS, RUN, as_sent, check_progress, chosen_group, match_request, poll
from test_operator import ROOT, free_port, gunicorn, one_line_error, request, server_env, start_fails

WORKER = [sys.executable, "-m", "celery", "-A", "dashboard.worker", "worker", "--loglevel=INFO",
          "--pool=prefork", "--concurrency=1", "--without-mingle", "--without-gossip"]
needs_redis = pytest.mark.skipif(shutil.which("redis-server") is None,
                                 reason="no redis-server (apt-get install redis-server)")


@contextlib.contextmanager
def process(command: list[str], log_path: Path, env: dict | None = None):
    """A child process in its own session (so that a worker's pool children go with it), its
    output in ``log_path``; its group is ended on exit, by SIGKILL if SIGTERM is not enough."""
    with open(log_path, "w") as log:
        child = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env,
                                 start_new_session=True)
        try:
            yield child
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=20)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()


@contextlib.contextmanager
def redis_server(folder: Path):
    """A real redis-server of its own on a free port, no snapshots, files in ``folder``; yields its URL."""
    import redis
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
               "--save", "", "--appendonly", "no"]
    with process(command, folder / "redis.log") as server:
        client = redis.Redis(port=port, socket_connect_timeout=1)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start: {(folder / 'redis.log').read_text()}") from None
                time.sleep(0.1)
        client.close()
        yield f"redis://127.0.0.1:{port}/0"


def worker_env(runs: Path, **settings: str) -> dict:
    env = server_env(runs, 0, **settings)
    env.pop("LSTM_LENS_BIND")
    return env


def call(port: int, body: dict, query: str = "") -> dict:
    status, _, raw = request(port, CALLBACK + query, {"Content-Type": "application/json"}, "POST",
                             json.dumps(body).encode())
    assert status == 200, raw[:500]
    return json.loads(raw) if raw else {}


@pytest.fixture(scope="module")
def team(text_runs_dir, tmp_path_factory):
    """A team's set-up on the text run: its own redis-server, one Celery worker (one pool process)
    and gunicorn, all with LSTM_LENS_CELERY_BROKER; yields (server port, worker log path)."""
    folder = tmp_path_factory.mktemp("team")
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(redis_server(folder))
        settings = {background.BROKER_ENV: url, "LSTM_LENS_CACHE": str(folder / "cache")}
        stack.enter_context(process(WORKER, folder / "worker.log", worker_env(text_runs_dir, **settings)))
        port, _ = stack.enter_context(gunicorn(text_runs_dir, folder, **settings))
        yield port, folder / "worker.log"


@pytest.fixture(scope="module")
def expected(text_runs_dir):
    """(the select view's hypothesis, the in-process match's summary and results)."""
    previous = data.runs_dir()
    data.configure(text_runs_dir)
    try:
        chosen = chosen_group(data.get_run(RUN))
        return (chosen, *select_match.match_view(chosen, ""))
    finally:
        data.configure(previous)


def jobs_done(log: Path, since: int, count: int) -> list[str]:
    """The worker's "succeeded" lines after offset ``since``, once there are ``count`` of them."""
    deadline = time.monotonic() + POLL_SECONDS
    while True:
        done = [line for line in log.read_text()[since:].splitlines() if "succeeded" in line]
        if len(done) >= count or time.monotonic() > deadline:
            return done
        time.sleep(0.1)


@needs_redis
def test_cel001_a_match_through_redis_and_a_celery_worker_is_the_in_process_match(team, expected):
    port, worker_log = team
    chosen, summary, results = expected
    since = len(worker_log.read_text())
    body = match_request(chosen)
    first = call(port, body)
    assert "cacheKey" in first and "job" in first      # the server only queued a job
    answer, progress = poll(lambda query: call(port, body, query), first)
    assert answer is not None, worker_log.read_text()[-3000:]
    assert answer[select_match.SUMMARY]["children"].split(" in ")[0] == summary.split(" in ")[0]
    assert answer[select_match.RESULTS]["children"] == as_sent(results)
    check_progress(progress)
    ran = jobs_done(worker_log, since, 1)              # the job ran in the worker, once
    assert len(ran) == 1 and "background_callback_" in ran[0], worker_log.read_text()[-3000:]


@needs_redis
def test_cel007_a_result_left_unread_answers_the_same_request_and_its_new_job_still_finishes(team, expected):
    """Dash alone terminates the new job here (killing the worker's pool process)."""
    port, worker_log = team
    chosen, summary, results = expected
    since = len(worker_log.read_text())
    body = match_request(chosen)
    call(port, body)                                   # a page closed before its answer came
    assert len(jobs_done(worker_log, since, 1)) == 1
    second = call(port, body)
    answer, _ = poll(lambda query: call(port, body, query), second)
    assert answer is not None and answer[select_match.RESULTS]["children"] == as_sent(results)
    assert len(jobs_done(worker_log, since, 2)) == 2, worker_log.read_text()[since:]
    assert "Terminating" not in worker_log.read_text()[since:]
    own, _ = poll(lambda query: call(port, body, query), second)      # and its own answer is there
    assert own is not None and own[select_match.SUMMARY]["children"].split(" in ")[0] == summary.split(" in ")[0]


@pytest.mark.parametrize("broker, expected", [
    ("redis://127.0.0.1:63a9/0", "Port could not be cast to integer"),
    (None, "Redis does not answer"),                 # a free port: nothing listens there
])
def test_cel002_a_malformed_or_unreachable_broker_stops_server_and_worker_with_one_line(tmp_path, broker,
                                                                                      expected):
    broker = broker or f"redis://127.0.0.1:{free_port()}/0"
    one_line_error(*start_fails({background.BROKER_ENV: broker}, tmp_path), expected)
    worker = subprocess.run(WORKER, cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env=worker_env(tmp_path, **{background.BROKER_ENV: broker}))
    one_line_error(worker.returncode, worker.stdout + worker.stderr, expected)


def test_cel003_a_worker_without_a_broker_says_which_setting_it_needs(tmp_path):
    env = worker_env(tmp_path)
    env.pop(background.BROKER_ENV, None)
    worker = subprocess.run(WORKER, cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    one_line_error(worker.returncode, worker.stdout + worker.stderr, f"{background.BROKER_ENV} is not set")


@pytest.mark.parametrize("broker, expected", [
    ("amqp://127.0.0.1:5672//", "expected redis://HOST:PORT/DB (or rediss://), not amqp scheme"),
    ("redis:///0", "no host"),
    ("redis://127.0.0.1:6379/zero", "the database 'zero' is not a number"),
    ("redis://127.0.0.1:70000/0", "Port out of range"),
])
def test_cel004_each_malformed_broker_url_is_named_with_what_is_wrong(broker, expected):
    problem = background.broker_problem({background.BROKER_ENV: broker})
    assert problem is not None and problem.startswith(f"{background.BROKER_ENV} {broker!r}: ") and expected in problem


def test_cel005_the_password_of_a_broker_url_never_reaches_a_message():
    broker = f"redis://team:open-sesame@127.0.0.1:{free_port()}/0"
    problem = background.broker_problem({background.BROKER_ENV: broker}) or ""
    assert "redis://team:***@127.0.0.1:" in problem and "Redis does not answer" in problem
    assert "open-sesame" not in problem


def test_cel006_a_broker_turns_background_callbacks_on_and_no_setting_leaves_them_off():
    assert background.enabled({background.BROKER_ENV: "redis://127.0.0.1:6379/0"})
    assert background.enabled({background.BACKGROUND_ENV: "1"})
    assert not background.enabled({}) and not background.enabled({background.BROKER_ENV: " "})
    assert background.broker_problem({}) is None
