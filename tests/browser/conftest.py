"""Browser fixtures: the real app (``python app.py``) in a child process on a free loopback port,
serving the small synthetic run, and a fresh page of the session's browser (``tests/conftest.py``)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def serving(runs_dir: Path):
    """``python app.py --runs runs_dir`` in a child process on a free loopback port; yields its URL.

    The app's output goes to ``app-<port>.log`` beside the runs folder; a fresh, private shared
    cache folder per app keeps one test session's figures out of another's."""
    port = free_port()
    log_path = Path(runs_dir).parent / f"app-{port}.log"
    cache = Path(runs_dir).parent / f"cache-{port}"
    with open(log_path, "w") as log:
        server = subprocess.Popen([sys.executable, "app.py", "--runs", str(runs_dir), "--port", str(port)],
                                  cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                  env={**os.environ, "PYTHONUNBUFFERED": "1", "LSTM_LENS_CACHE": str(cache)})
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    server.kill()
                    raise RuntimeError(f"app.py did not serve: {log_path.read_text()[-2000:]}") from None
                time.sleep(0.3)
        try:
            yield url
        finally:
            server.terminate()
            server.wait(timeout=10)


@pytest.fixture(scope="session")
def dash_url(synthetic_runs_dir):
    """The app serving the small synthetic run."""
    with serving(synthetic_runs_dir) as url:
        yield url


@pytest.fixture(scope="session")
def text_url(text_runs_dir):
    """The app serving the small parenthesis-language run."""
    with serving(text_runs_dir) as url:
        yield url


@pytest.fixture(scope="session")
def words_url(word_runs_dir):
    """The app serving the small word-level run (tests/word_runs.py)."""
    with serving(word_runs_dir) as url:
        yield url


@pytest.fixture(scope="session")
def attention_url(attention_runs_dir):
    """The app serving the small attention runs (tests/attention_runs.py)."""
    with serving(attention_runs_dir) as url:
        yield url


@pytest.fixture(scope="session")
def imports_served(tmp_path_factory):
    """The app serving the small imports (browser/import_runs.py): ``(url, {kind: run id})``."""
    from browser.import_runs import session_imports
    runs, ids = session_imports(tmp_path_factory)
    with serving(runs) as url:
        yield url, ids


@pytest.fixture
def page(browser):
    """A fresh page; JavaScript errors on it fail the test."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_default_timeout(30_000)
    yield page
    context.close()
    assert not errors, errors
