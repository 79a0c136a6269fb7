"""Access and safety: run ids and paths from the URL and callbacks stay inside the runs folder,
the optional login closes every route but /healthz, and nothing unpickles user files.

Requests go through the real Flask app (``app.server.test_client()``) and the real callbacks, on
copies of the small synthetic run (tests/conftest.py)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from werkzeug.security import generate_password_hash

from bench.load import all_bodies, component_props, request_body, server_callbacks, split_outputs
from dashboard import auth, data, state
from dashboard.app import create_app
from pipeline import runformat

ROOT = Path(__file__).resolve().parents[1]
CALLBACK = "/_dash-update-component"
LOGIN_ENV = ("LSTM_LENS_USERS", "LSTM_LENS_PASSWORD", "LSTM_LENS_AUTH_FILE")


@pytest.fixture
def runs_with_secret(synthetic_runs_dir, tmp_path):
    """``runs/good`` (a real run), ``secret/`` beside the runs folder (a real run no request may
    read) and ``runs/linked`` -> ``../secret``."""
    runs = tmp_path / "runs"
    runs.mkdir()
    shutil.copytree(synthetic_runs_dir / "synthetic", runs / "good")
    shutil.copytree(synthetic_runs_dir / "synthetic", tmp_path / "secret")
    (runs / "linked").symlink_to(tmp_path / "secret", target_is_directory=True)
    return runs


@pytest.fixture
def app_factory(monkeypatch):
    """create_app with a clean login environment; the process-wide runs folder is restored after."""
    previous = data.runs_dir()
    for name in LOGIN_ENV:
        monkeypatch.delenv(name, raising=False)
    yield create_app
    data.configure(previous)


def post(client, body, **kwargs):
    return client.post(CALLBACK, data=json.dumps(body), content_type="application/json", **kwargs)


def page(client):
    layout = client.get("/_dash-layout").get_json()
    dependencies = client.get("/_dash-dependencies").get_json()
    return component_props(layout), dependencies


def callback_for(dependencies, output: str) -> dict:
    """The server callback with ``output`` ("id.property") among its outputs."""
    wanted = tuple(output.rsplit(".", 1))
    return next(dep for dep in server_callbacks(dependencies)
                if wanted in [(i, p.split("@")[0]) for i, p in split_outputs(dep["output"])])


# -- path validation ------------------------------------------------------------------------

@pytest.mark.parametrize("run_id", ["../secret", "..", "/etc", "/tmp/secret", "good/../../secret",
                                    "good/../good", "%2e%2e/secret", "linked", "", ".hidden", "a\x00b"])
def test_sec001_store_refuses_paths_outside_the_runs_folder(runs_with_secret, run_id):
    with pytest.raises(runformat.RunError):
        runformat.Run.open(runs_with_secret, run_id)


def test_sec002_store_opens_a_run_inside_and_lists_no_link_out(runs_with_secret):
    assert runformat.Run.open(runs_with_secret, "good").run_id == "synthetic"
    assert [m["run_id"] for m in runformat.list_runs(runs_with_secret)] == ["synthetic"]  # not linked


@pytest.mark.parametrize("run_value", ["../secret", "linked", "/etc", "/tmp", ["good"], 7,
                                       {"id": "good"}, "good/../../secret"])
def test_sec003_callbacks_read_nothing_outside_the_runs_folder(runs_with_secret, app_factory, run_value):
    """Every server callback, sent with the run picker set to a path, answers with a message or
    nothing, never data: a run's data would show its class names or example count."""
    client = app_factory(runs_with_secret).server.test_client()
    props, dependencies = page(client)
    secret = runformat.Run.open(runs_with_secret, "good")     # same content as the secret copy
    count = f"{len(secret.examples()):,} examples"
    bodies = all_bodies(dependencies, props, {(state.RUN, "value"): run_value})
    assert len(bodies) >= 10
    for body in bodies:
        response = post(client, body)
        assert response.status_code in (200, 204, 400), (body["output"], response.status_code)
        text = response.get_data(as_text=True)
        assert not any(f'"{name}"' in text for name in secret.classes), body["output"]
        assert count not in text, body["output"]


def test_sec004_encoded_dot_dot_in_the_url_query_reaches_no_run(runs_with_secret, app_factory):
    """``?run=%2e%2e%2Fsecret``: the URL callback decodes it into the picker, and the callbacks
    that read the picker refuse it with a message."""
    client = app_factory(runs_with_secret).server.test_client()
    props, dependencies = page(client)
    values = {(cid, prop): value for cid, p in props.items() for prop, value in p.items()}
    sync = callback_for(dependencies, f"{state.URL}.search")
    values[(state.URL, "search")] = "?run=%2e%2e%2Fsecret&view=paths"
    answer = post(client, request_body(sync, values, (state.URL, "search"))).get_json()
    picked = answer["response"][state.RUN]["value"]
    assert picked == "../secret"
    values[(state.RUN, "value")] = picked
    facts = post(client, request_body(callback_for(dependencies, "run-message.children"), values)).get_json()
    assert "invalid run id" in facts["response"]["run-message"]["children"]
    count = post(client, request_body(callback_for(dependencies, "filter-count.children"), values))
    assert count.get_json()["response"]["filter-count"]["children"] == ""
    # and the same page with the real run in the URL does read it
    values[(state.RUN, "value")] = "good"
    count = post(client, request_body(callback_for(dependencies, "filter-count.children"), values))
    assert count.get_json()["response"]["filter-count"]["children"].endswith(" examples")


def test_sec005_symlinked_run_is_refused_through_the_callbacks(runs_with_secret, app_factory):
    client = app_factory(runs_with_secret).server.test_client()
    props, dependencies = page(client)
    values = {(cid, prop): value for cid, p in props.items() for prop, value in p.items()}
    values[(state.RUN, "value")] = "linked"
    facts = post(client, request_body(callback_for(dependencies, "run-message.children"), values)).get_json()
    assert "not inside the runs folder" in facts["response"]["run-message"]["children"]


# -- login ----------------------------------------------------------------------------------

def protected_routes(client, auth_headers=None) -> list[tuple[str, str, dict | None]]:
    """Every kind of route the app serves: page, layout, dependencies, callbacks, assets,
    component scripts, favicon, reload hash, an unknown path."""
    index = client.get("/", headers=auth_headers).get_data(as_text=True) if auth_headers else ""
    scripts = re.findall(r'src="(/_dash-component-suites/[^"]+)"', index)
    routes = [("GET", "/", None), ("GET", "/_dash-layout", None), ("GET", "/_dash-dependencies", None),
              ("GET", "/assets/style.css", None), ("GET", "/_favicon.ico", None),
              ("GET", "/_reload-hash", None), ("GET", "/no/such/page", None),
              ("POST", CALLBACK, {"output": "filter-count.children"})]
    routes += [("GET", path, None) for path in scripts[:3]]
    return routes


def call(client, method, path, body, headers=None):
    if method == "POST":
        return client.post(path, data=json.dumps(body), content_type="application/json", headers=headers)
    return client.get(path, headers=headers)


def basic(user: str, password: str) -> dict:
    import base64
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_sec010_without_login_settings_everything_is_open(runs_with_secret, app_factory):
    client = app_factory(runs_with_secret).server.test_client()
    assert client.get("/").status_code == 200
    assert client.get("/_dash-layout").status_code == 200


def test_sec011_login_closes_every_route_but_healthz(runs_with_secret, app_factory, monkeypatch):
    monkeypatch.setenv("LSTM_LENS_USERS", "ada,grace")
    monkeypatch.setenv("LSTM_LENS_PASSWORD", "correct horse")
    client = app_factory(runs_with_secret).server.test_client()
    good = basic("grace", "correct horse")
    routes = protected_routes(client, good)
    assert any("/_dash-component-suites/" in path for _, path, _ in routes)
    for method, path, body in routes:
        for headers in (None, basic("grace", "wrong"), basic("mallory", "correct horse"),
                        {"Authorization": "Bearer correct horse"}):
            response = call(client, method, path, body, headers)
            assert response.status_code == 401, (method, path, headers)
            assert response.headers["WWW-Authenticate"].startswith('Basic realm="LSTM Lens"')
            assert b"LSTM Lens" not in response.data and b"synthetic" not in response.data
    for method, path, body in routes:
        assert call(client, method, path, body, good).status_code != 401, path
    health = client.get("/healthz")
    assert health.status_code == 200 and health.get_json() == {"status": "ok", "runs": 1}


def test_sec012_login_from_a_file_of_password_hashes(runs_with_secret, app_factory, monkeypatch, tmp_path):
    users = tmp_path / "users"
    users.write_text(f"# team\nada:{generate_password_hash('s3cret')}\n\n"
                     f"grace:{generate_password_hash('other', method='pbkdf2:sha256')}\n")
    monkeypatch.setenv("LSTM_LENS_AUTH_FILE", str(users))
    client = app_factory(runs_with_secret).server.test_client()
    assert client.get("/").status_code == 401
    assert client.get("/", headers=basic("ada", "s3cret")).status_code == 200
    assert client.get("/", headers=basic("grace", "other")).status_code == 200
    assert client.get("/", headers=basic("ada", "other")).status_code == 401
    assert client.get("/", headers=basic("ada", "s3cret")).status_code == 200     # remembered


@pytest.mark.parametrize("environ, message", [
    ({"LSTM_LENS_USERS": "ada"}, "LSTM_LENS_PASSWORD is not set"),
    ({"LSTM_LENS_PASSWORD": "x"}, "LSTM_LENS_USERS is not set"),
    ({"LSTM_LENS_USERS": "a:b", "LSTM_LENS_PASSWORD": "x"}, "contains ':'"),
    ({"LSTM_LENS_AUTH_FILE": "/no/such/file"}, "cannot read it"),
    ({"LSTM_LENS_AUTH_FILE": "{file}", "LSTM_LENS_USERS": "a"}, "not both"),
])
def test_sec013_half_given_login_settings_stop_the_server(environ, message, tmp_path):
    environ = {k: v.replace("{file}", str(tmp_path)) for k, v in environ.items()}
    with pytest.raises(auth.AuthConfigError, match=message):
        auth.users_from_environment(environ)


@pytest.mark.parametrize("content, line", [("ada:plain-text-password\n", 1),
                                           ("# x\n\nada\n", 3),
                                           (f"ada:{generate_password_hash('a')}\nada:{generate_password_hash('b')}\n", 2)])
def test_sec014_auth_file_errors_name_the_line(tmp_path, content, line):
    path = tmp_path / "users"
    path.write_text(content)
    with pytest.raises(auth.AuthConfigError, match=f"{re.escape(str(path))}, line {line}:"):
        auth.read_auth_file(path)


def test_sec015_create_app_refuses_a_half_given_login(runs_with_secret, app_factory, monkeypatch):
    monkeypatch.setenv("LSTM_LENS_USERS", "ada")
    with pytest.raises(auth.AuthConfigError):
        app_factory(runs_with_secret)


# -- no unpickling, safe model loading, no debug in the image --------------------------------

UNSAFE = re.compile(r"allow_pickle\s*=\s*True|read_pickle|pickle\.loads?\(|joblib\.load|safe_mode\s*=\s*False"
                    r"|dill\.|cloudpickle|torch\.load\((?![^)]*weights_only=True)|yaml\.load\("
                    r"|(?<![.\w])eval\(|(?<![.\w])exec\(")


def test_sec020_no_code_unpickles_or_evaluates_files():
    sources = [p for folder in ("pipeline", "dashboard", "bench") for p in (ROOT / folder).rglob("*.py")]
    sources.append(ROOT / "app.py")
    found = [f"{p.relative_to(ROOT)}:{n}" for p in sources
             for n, line in enumerate(p.read_text().splitlines(), 1) if UNSAFE.search(line)]
    assert found == []


def test_sec021_models_load_in_safe_mode():
    loads = [(p, line) for p in (ROOT / "pipeline").rglob("*.py")
             for line in p.read_text().splitlines() if "load_model(" in line and "def " not in line
             and "keras" in line]
    assert loads and all("safe_mode=True" in line for _, line in loads)


def test_sec022_image_never_debugs_and_serves_with_gunicorn():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert not re.search(r"--debug|debug\s*=\s*(true|1)|DASH_DEBUG|FLASK_DEBUG|--reload", dockerfile, re.I)
    assert 'CMD ["gunicorn", "--config", "dashboard/gunicorn_conf.py", "app:server"]' in dockerfile
    app_source = (ROOT / "app.py").read_text()
    assert 'add_argument("--host", default="127.0.0.1")' in app_source
