"""What an operator meets: start-up problems in one line, the Docker entrypoint's checks, a
read-only root, the access log, progress lines in logs that are not a terminal, /healthz.

Servers are real gunicorn processes (dashboard/gunicorn_conf.py, as in the image) on free
127.0.0.1 ports; the entrypoint is the image's real shell script. Cases that need another user or
a read-only /tmp run as root with setpriv (another uid, or root without CAP_DAC_OVERRIDE) or in a
private mount namespace (unshare); they skip where the machine does not allow those.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.core.progress import PlainBar, Progress

ROOT = Path(__file__).resolve().parents[1]
ENTRYPOINT = ROOT / "scripts" / "docker-entrypoint.sh"
GUNICORN = [sys.executable, "-m", "gunicorn", "-c", "dashboard/gunicorn_conf.py", "app:server"]
LOGIN_ENV = ("LSTM_LENS_USERS", "LSTM_LENS_PASSWORD", "LSTM_LENS_AUTH_FILE", "LSTM_LENS_LOGIN_LIMIT",
             "LSTM_LENS_PROXIES", "LSTM_LENS_FRAME_ANCESTORS")
NO_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_env(runs: Path | str, port: int, **settings: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in LOGIN_ENV}
    env.update(LSTM_LENS_RUNS=str(runs), LSTM_LENS_BIND=f"127.0.0.1:{port}", PYTHONUNBUFFERED="1",
               LSTM_LENS_WORKERS="1", LSTM_LENS_THREADS="4")
    env.update(settings)
    return env


def request(port: int, path: str = "/", headers: dict | None = None, method: str = "GET",
            body: bytes | None = None, timeout: float = 30) -> tuple[int, dict, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@contextlib.contextmanager
def gunicorn(runs: Path | str, log_dir: Path, prefix: list[str] | None = None, **settings: str):
    """A real gunicorn serving ``runs`` on a free loopback port; yields ``(port, log path)``.
    Its stdout (the access log) and stderr go to the log file."""
    port = free_port()
    log_path = log_dir / f"gunicorn-{port}.log"
    with open(log_path, "w") as log:
        # its own process group: the cleanup below stops the workers too, even when the master
        # has to be killed (a killed master once left a worker serving after the tests)
        server = subprocess.Popen([*(prefix or []), *GUNICORN], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                  env=server_env(runs, port, **settings), start_new_session=True)
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    if request(port, "/healthz", timeout=5)[0] in (200, 503):
                        break
                except OSError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not serve: {log_path.read_text()[-3000:]}")
                time.sleep(0.3)
            yield port, log_path
        finally:
            with contextlib.suppress(ProcessLookupError):        # a server that never started
                os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(server.pid, signal.SIGKILL)
                server.wait()


def start_fails(env_settings: dict, runs: Path | str, prefix: list[str] | None = None) -> tuple[int, str]:
    """Start gunicorn with settings it must refuse; returns (exit status, everything it printed)."""
    port = free_port()
    result = subprocess.run([*(prefix or []), *GUNICORN], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, env=server_env(runs, port, **env_settings))
    return result.returncode, result.stdout + result.stderr


def can(command: list[str]) -> bool:
    try:
        return subprocess.run(command, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


needs_setpriv = pytest.mark.skipif(os.geteuid() != 0 or not can([*NO_DAC, "true"]),
                                   reason="needs root and setpriv to drop CAP_DAC_OVERRIDE")
needs_unshare = pytest.mark.skipif(
    os.geteuid() != 0 or not can(["unshare", "-m", "--propagation", "private", "sh", "-c",
                                  "mount -t tmpfs -o ro tmpfs /tmp"]),
    reason="needs root and a private mount namespace (unshare -m)")


@pytest.fixture
def runs(synthetic_runs_dir, tmp_path) -> Path:
    folder = tmp_path / "runs"
    folder.mkdir()
    shutil.copytree(synthetic_runs_dir / "synthetic", folder / "synthetic")
    return folder


# -- gunicorn start-up: one line, exit status 2 ---------------------------------------------------

def one_line_error(status: int, output: str, expected: str) -> None:
    assert status == 2, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines == [lines[0]] and lines[0].startswith("error: ") and expected in lines[0], output
    assert "Traceback" not in output


@pytest.mark.parametrize("settings, expected", [
    ({"LSTM_LENS_USERS": "ada"}, "LSTM_LENS_PASSWORD is not set"),
    ({"LSTM_LENS_AUTH_FILE": "/no/such/users"}, "LSTM_LENS_AUTH_FILE /no/such/users: cannot read it"),
    ({"LSTM_LENS_USERS": "ada", "LSTM_LENS_PASSWORD": "x", "LSTM_LENS_LOGIN_LIMIT": "lots"},
     "LSTM_LENS_LOGIN_LIMIT 'lots'"),
    ({"LSTM_LENS_FRAME_ANCESTORS": "'self'; script-src *"}, "LSTM_LENS_FRAME_ANCESTORS"),
    ({"LSTM_LENS_WORKERS": "two"}, "LSTM_LENS_WORKERS 'two'"),
])
def test_op001_bad_settings_stop_gunicorn_with_one_line(tmp_path, settings, expected):
    one_line_error(*start_fails(settings, tmp_path), expected)


@needs_setpriv
def test_op002_an_unreadable_runs_folder_stops_gunicorn_with_one_line(tmp_path):
    folder = tmp_path / "runs"
    folder.mkdir()
    folder.chmod(0)
    one_line_error(*start_fails({}, folder, prefix=NO_DAC), f"the runs folder {folder} (LSTM_LENS_RUNS) "
                                                            f"cannot be read by uid 0")


@needs_setpriv
def test_op003_healthz_says_503_when_the_runs_folder_becomes_unreadable(runs, tmp_path):
    with gunicorn(runs, tmp_path, prefix=NO_DAC) as (port, _):
        status, _, body = request(port, "/healthz")
        assert status == 200 and b'"runs":1' in body
        runs.chmod(0)
        try:
            status, _, body = request(port, "/healthz")
        finally:
            runs.chmod(0o755)
    assert status == 503 and b"cannot be read" in body and str(runs).encode() not in body


def test_op004_access_log_on_stdout_without_credentials(runs, tmp_path):
    with gunicorn(runs, tmp_path, LSTM_LENS_USERS="zelda-9", LSTM_LENS_PASSWORD="open sesame") as (port, log):
        assert request(port, "/?run=synthetic", basic("zelda-9", "open sesame"))[0] == 200
        assert request(port, "/_dash-layout", basic("zelda-9", "wrong guess"))[0] == 401
        time.sleep(0.5)
        text = log.read_text()
    assert '"GET /?run=synthetic HTTP/1.1" 200' in text and '"GET /_dash-layout HTTP/1.1" 401' in text
    for secret in ("open sesame", "wrong guess", "zelda-9", base64.b64encode(b"zelda-9:open sesame").decode()):
        assert secret not in text


def test_op005_no_server_banner_from_gunicorn(runs, tmp_path):
    with gunicorn(runs, tmp_path) as (port, _):
        for path in ("/", "/healthz", "/no/such/page", "/_dash-layout"):
            status, headers, _ = request(port, path)
            assert "server" not in headers, (path, headers)
            assert headers["x-content-type-options"] == "nosniff"


def test_op006_no_server_version_from_python_app_py(runs, tmp_path):
    port = free_port()
    with open(tmp_path / "app.log", "w") as log:
        server = subprocess.Popen([sys.executable, "app.py", "--runs", str(runs), "--port", str(port)], cwd=ROOT,
                                  stdout=log, stderr=subprocess.STDOUT, env=server_env(runs, port))
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    status, headers, _ = request(port, "/", timeout=5)
                    break
                except OSError:
                    assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "app.log").read_text()
                    time.sleep(0.3)
        finally:
            server.terminate()
            server.wait(timeout=20)
    assert status == 200
    assert headers["server"] == "LSTM Lens", headers
    assert "werkzeug" not in str(headers).lower() and "python/" not in str(headers).lower()


# -- a read-only root: no usable temporary folder but /dev/shm ------------------------------------

READ_ONLY = ("mount -t tmpfs -o ro tmpfs /tmp && mount -t tmpfs -o ro tmpfs /var/tmp && "
             "mount -o bind,ro {root} {root} && cd {root} && ")


@needs_unshare
def test_op007_gunicorn_serves_with_a_read_only_root(runs, tmp_path):
    """As ``docker run --read-only`` without ``--tmpfs /tmp``: /tmp, /var/tmp and the working folder
    read-only. gunicorn's worker files and the figure cache go to /dev/shm instead of failing with
    "No usable temporary directory"."""
    if not os.access("/dev/shm", os.W_OK):
        pytest.skip("no writable /dev/shm")
    port = free_port()
    # the runs and the log live outside the read-only mounts: a copy under /dev/shm
    shm = Path(f"/dev/shm/lens-test-{port}")
    shutil.copytree(runs, shm / "runs")
    script = (READ_ONLY.format(root=ROOT) +
              f"timeout 90 {' '.join(GUNICORN)} > {shm}/log 2>&1 & server=$!; "
              f"for i in $(seq 120); do {sys.executable} -c \"import urllib.request as u; "
              f"print(u.urlopen('http://127.0.0.1:{port}/healthz', timeout=2).read().decode())\" && break; "
              f"sleep 0.5; done; {sys.executable} -c \"import urllib.request as u; "
              f"print(u.urlopen('http://127.0.0.1:{port}/?run=synthetic', timeout=20).status)\"; "
              f"kill $server; wait $server; true")
    env = server_env(shm / "runs", port)
    env.pop("TMPDIR", None)
    cache = Path(f"/dev/shm/lstm-lens-cache-{os.getuid()}")
    cache_was_there = cache.exists()
    try:
        result = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                                capture_output=True, text=True, timeout=150, env=env)
        log = (shm / "log").read_text() if (shm / "log").exists() else ""
    finally:
        shutil.rmtree(shm, ignore_errors=True)
        if not cache_was_there:
            shutil.rmtree(cache, ignore_errors=True)
    assert '"runs":1' in result.stdout and "200" in result.stdout.splitlines()[-1], (result, log)
    assert "No usable temporary directory" not in log and "Traceback" not in log, log


# -- the image's entrypoint (scripts/docker-entrypoint.sh) ------------------------------------------

@pytest.fixture
def open_dir():
    """A folder every user can reach (pytest's own tmp folders are private to root)."""
    import tempfile
    folder = Path(tempfile.mkdtemp(prefix="lens-entrypoint-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def fake_python(open_dir) -> Path:
    """A ``python`` on PATH that prints what it was asked to run (the entrypoint's test double for
    the interpreter, which uid 10001 cannot reach on this machine)."""
    folder = open_dir / "bin"
    folder.mkdir()
    script = folder / "python"
    script.write_text('#!/bin/sh\necho "ran: $* TMPDIR=${TMPDIR:-unset}"\n')
    script.chmod(0o755)
    return folder


def entrypoint(args: list[str], env: dict, as_uid: int | None = 10001, cwd: Path | None = None):
    prefix = ["setpriv", "--reuid", str(as_uid), "--regid", str(as_uid), "--clear-groups", "--"] if as_uid else []
    return subprocess.run([*prefix, "sh", str(ENTRYPOINT), *args], capture_output=True, text=True,
                          timeout=30, env=env, cwd=cwd)


needs_root = pytest.mark.skipif(os.geteuid() != 0 or not can(["setpriv", "--reuid", "10001", "true"]),
                                reason="needs root and setpriv to run as uid 10001")


@needs_root
def test_op010_entrypoint_refuses_a_data_folder_the_user_cannot_write(open_dir, fake_python):
    """What Docker does on a fresh machine: ``-v "$PWD/data:/app/data"`` creates data/ owned by root."""
    data = open_dir / "data"
    data.mkdir(mode=0o755)
    env = {"PATH": f"{fake_python}:/usr/bin:/bin", "LSTM_LENS_RUNS": str(data / "runs")}
    result = entrypoint(["python", "-m", "pipeline", "run", "synthetic"], env)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f'error: {data} is not writable by uid 10001: run with --user "$(id -u):$(id -g)" or chown -R 10001 '
        f'the mounted folder (e.g. sudo chown -R 10001 data)']
    # --runs on the command line wins; a relative one is shown absolute
    result = entrypoint(["python", "-m", "pipeline", "import", "arrays", "--runs=data/runs"], env, cwd=open_dir)
    assert result.returncode == 2 and result.stderr.startswith(f"error: {data} is not writable")
    # once the folder is the user's, the command runs (as the container's main process: exec)
    os.chown(data, 10001, 10001)
    result = entrypoint(["python", "-m", "pipeline", "run", "synthetic", "--epochs", "2"], env)
    assert result.returncode == 0 and result.stdout.startswith("ran: -m pipeline run synthetic --epochs 2")


@needs_root
def test_op011_entrypoint_leaves_other_commands_alone(open_dir, fake_python):
    data = open_dir / "data"
    data.mkdir(mode=0o755)
    env = {"PATH": f"{fake_python}:/usr/bin:/bin", "LSTM_LENS_RUNS": str(data / "runs")}
    for args in (["python", "-m", "pipeline", "--help"], ["python", "-m", "pipeline", "match", "--help"],
                 ["python", "-c", "print(1)"]):
        result = entrypoint(args, env)
        assert result.returncode == 0 and result.stdout.startswith("ran: "), (args, result)


@needs_unshare
def test_op012_entrypoint_gives_a_read_only_container_a_temporary_folder(tmp_path):
    script = ("mount -t tmpfs -o ro tmpfs /tmp && "
              f"sh {ENTRYPOINT} {sys.executable} -c 'import tempfile; print(tempfile.gettempdir())'")
    env = {k: v for k, v in os.environ.items() if k != "TMPDIR"}
    result = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0 and result.stdout.strip() == "/dev/shm", result


def test_op013_entrypoint_is_the_image_s_and_is_copied_into_it():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["/bin/sh", "/app/docker-entrypoint.sh"]' in dockerfile
    assert "COPY scripts/docker-entrypoint.sh /app/docker-entrypoint.sh" in dockerfile
    assert "!scripts/docker-entrypoint.sh" in (ROOT / ".dockerignore").read_text().splitlines()
    assert subprocess.run(["sh", "-n", str(ENTRYPOINT)]).returncode == 0


# -- progress off a terminal ------------------------------------------------------------------------

def test_op020_progress_off_a_terminal_prints_plain_lines_every_tenth():
    stream = io.StringIO()
    with Progress(stream=stream).bar(1000, "extract", "step") as bar:
        assert isinstance(bar, PlainBar)
        for _ in range(100):
            bar.set_postfix(loss="0.123", refresh=False)     # tqdm's own keyword is not a value
            bar.update(10)
    text = stream.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 11 and lines[0].startswith("extract: 0% (10/1,000 step")   # 0 %, 10 %, ... 100 %
    assert lines[-1].startswith("extract: 100% (1,000/1,000 step") and lines[-1].endswith("loss=0.123")
    epochs = io.StringIO()
    with Progress(stream=epochs).bar(3, "train", "epoch") as bar:
        for _ in range(3):
            bar.update()
    assert [line.split(" (")[0] for line in epochs.getvalue().splitlines()] == ["train: 30%", "train: 60%",
                                                                                "train: 100%"]
    assert Progress(quiet=True, stream=io.StringIO()).bar(5, "x").disable      # quiet: tqdm, disabled


def test_op021_progress_on_a_terminal_keeps_the_tqdm_bar():
    import pty

    from tqdm import tqdm
    leader, follower = pty.openpty()
    try:
        with os.fdopen(follower, "w", closefd=False) as terminal:
            bar = Progress(stream=terminal).bar(10, "train", "epoch")
            assert isinstance(bar, tqdm)
            bar.close()
    finally:
        os.close(leader)
        os.close(follower)
