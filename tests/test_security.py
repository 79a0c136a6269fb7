"""Access and safety: run ids and paths from the URL and callbacks stay inside the runs folder,
the optional login closes every route but /healthz, and nothing unpickles user files.

Requests go through the real Flask app (``app.server.test_client()``) and the real callbacks, on
copies of the small synthetic run (tests/conftest.py)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import plotly.graph_objects as go
import pytest
from werkzeug.security import generate_password_hash

from bench.load import all_bodies, component_props, request_body, server_callbacks, split_outputs
from dashboard import auth, data, state
from dashboard import headers as http_headers
from dashboard.app import create_app
from pipeline import runformat

ROOT = Path(__file__).resolve().parents[1]
CALLBACK = "/_dash-update-component"
LOGIN_ENV = ("LSTM_LENS_USERS", "LSTM_LENS_PASSWORD", "LSTM_LENS_AUTH_FILE", "LSTM_LENS_LOGIN_LIMIT",
             "LSTM_LENS_PROXIES", "LSTM_LENS_FRAME_ANCESTORS")
NO_LIMIT = "100000 per minute"      # tests of the login itself, not of its rate limit


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
    assert runformat.Run.open(runs_with_secret, "good").run_id == "good"        # a run is its folder's name
    assert [m["run_id"] for m in runformat.list_runs(runs_with_secret)] == ["good"]  # not linked


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
    monkeypatch.setenv("LSTM_LENS_LOGIN_LIMIT", NO_LIMIT)
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
    monkeypatch.setenv("LSTM_LENS_LOGIN_LIMIT", NO_LIMIT)
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



# -- every failed login costs the same -------------------------------------------------------------
# What a failure costs is the hash checks it makes; so the tests count them (method and cost
# parameters of every hash checked) instead of timing requests on a shared machine.
# bench/login.py measures the times themselves.

def checks_per_failure(client, monkeypatch, users: list[str], rounds: int = 3) -> dict[str, list]:
    """The hash methods checked by each wrong-password request, per user name."""
    checked: list[str] = []
    real = auth.check_password_hash

    def spy(stored: str, password: str) -> bool:
        checked.append(auth.hash_method(stored))
        return real(stored, password)

    monkeypatch.setattr(auth, "check_password_hash", spy)
    seen: dict[str, list] = {user: [] for user in users}
    for number in range(rounds):
        for user in users:
            checked.clear()
            assert client.get("/_dash-layout", headers=basic(user, f"wrong-{number}")).status_code == 401
            seen[user].append(sorted(checked))
    return seen


def assert_same_work(seen: dict[str, list], methods: set[str]) -> None:
    distinct = {tuple(work) for works in seen.values() for work in works}
    assert len(distinct) == 1, seen
    assert set(distinct.pop()) == methods, seen


def test_sec016_wrong_password_costs_the_same_for_known_and_unknown_users(runs_with_secret, app_factory,
                                                                           monkeypatch):
    """A plain LSTM_LENS_PASSWORD is hashed at start: a known user's failure checks one hash, as an
    unknown user's does (before: a string compare, 2 ms against 116 ms, which told the names apart)."""
    monkeypatch.setenv("LSTM_LENS_USERS", "ada,grace")
    monkeypatch.setenv("LSTM_LENS_PASSWORD", "correct horse")
    monkeypatch.setenv("LSTM_LENS_LOGIN_LIMIT", NO_LIMIT)
    client = app_factory(runs_with_secret).server.test_client()
    assert client.get("/", headers=basic("ada", "correct horse")).status_code == 200
    seen = checks_per_failure(client, monkeypatch, ["ada", "mallory"])
    method = auth.hash_method(generate_password_hash("x"))
    assert_same_work(seen, {method})
    assert all(work == [method] for works in seen.values() for work in works)


@pytest.mark.parametrize("methods", [("pbkdf2:sha256:200000", "pbkdf2:sha256:200000"),
                                     ("scrypt", "pbkdf2:sha256:200000")], ids=["pbkdf2", "mixed"])
def test_sec017_auth_file_failures_cost_the_same_whatever_the_hash(runs_with_secret, app_factory, monkeypatch,
                                                                   tmp_path, methods):
    """pbkdf2 lines (before: 240 ms for a known user, 102 ms for an unknown one), and a file mixing
    scrypt and pbkdf2: every failure checks one hash of each method in use, with the same costs."""
    users = tmp_path / "users"
    users.write_text(f"ada:{generate_password_hash('s3cret', method=methods[0])}\n"
                     f"grace:{generate_password_hash('other', method=methods[1])}\n")
    monkeypatch.setenv("LSTM_LENS_AUTH_FILE", str(users))
    monkeypatch.setenv("LSTM_LENS_LOGIN_LIMIT", NO_LIMIT)
    client = app_factory(runs_with_secret).server.test_client()
    assert client.get("/", headers=basic("grace", "other")).status_code == 200
    in_use = {auth.hash_method(line.split(":", 1)[1]) for line in users.read_text().splitlines()}
    assert_same_work(checks_per_failure(client, monkeypatch, ["ada", "grace", "mallory"]), in_use)


# -- failed logins are rate-limited per client (real gunicorn, real requests) ---------------------

def flood(port: int, seconds: float, clients: int, headers_for) -> tuple[dict, set, list]:
    """``clients`` threads sending wrong passwords for ``seconds``; returns (status counts, the
    Retry-After values seen, seconds per answer)."""
    import collections
    import http.client
    import threading
    import time
    counts: collections.Counter = collections.Counter()
    retry_after: set = set()
    took: list[float] = []
    stop = time.monotonic() + seconds

    def attacker(number: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        sent = 0
        while time.monotonic() < stop and sent < 20_000:
            sent += 1
            started = time.perf_counter()
            try:
                connection.request("GET", "/_dash-layout", headers=headers_for(number, sent))
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                continue
            took.append(time.perf_counter() - started)
            counts[response.status] += 1
            if response.getheader("Retry-After"):
                retry_after.add(response.getheader("Retry-After"))
        connection.close()

    threads = [threading.Thread(target=attacker, args=(number,)) for number in range(clients)]
    for thread in threads:
        thread.start()
    return counts, retry_after, threads          # join the threads to wait for the end


def user_requests(port: int, seconds: float, headers: dict) -> tuple[list[float], list[int]]:
    import time

    from test_operator import request
    latencies, statuses = [], []
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        started = time.perf_counter()
        status = request(port, "/_dash-layout", headers)[0]
        latencies.append(time.perf_counter() - started)
        statuses.append(status)
        time.sleep(0.1)
    return latencies, statuses


def test_sec030_a_login_flood_gets_429_and_a_logged_in_user_keeps_working(runs_with_secret, tmp_path):
    """16 clients on this machine send wrong passwords (and made-up X-Forwarded-For headers, which
    count for nothing without LSTM_LENS_PROXIES) while a logged-in user from the same address asks
    for the layout: the flood gets 429 with Retry-After after the limit (5 per minute) and costs
    little; the user only ever gets 200, about as fast as without the flood (before: 12 ms ->
    1.9 s). One worker, so that "logged in" is certain for the worker that answers."""
    import statistics

    from test_operator import basic as basic_auth, gunicorn, request
    with gunicorn(runs_with_secret, tmp_path, LSTM_LENS_USERS="ada,grace",
                  LSTM_LENS_PASSWORD="correct horse") as (port, _):
        good = basic_auth("ada", "correct horse")
        assert request(port, "/_dash-layout", good)[0] == 200
        quiet, _ = user_requests(port, 3, good)
        counts, retry_after, threads = flood(port, 8, 16, lambda n, i: {
            **basic_auth("ada" if n % 2 else f"user{n}", f"guess-{n}-{i}"), "X-Forwarded-For": f"192.0.2.{i % 250}"})
        during, statuses = user_requests(port, 7, good)
        for thread in threads:
            thread.join()
        health = request(port, "/healthz")[0]
        status, headers, body = request(port, "/_dash-layout", basic_auth("grace", "correct horse"))
    assert set(statuses) == {200}, statuses
    assert counts[401] <= 5 + 4, counts               # the limit, plus one per thread racing it
    assert counts[429] > 100 and set(counts) <= {401, 429}, counts
    assert retry_after and all(1 <= int(value) <= 61 for value in retry_after), sorted(retry_after)
    assert health == 200
    # a new login from the flooded address waits too (429), with the time to wait
    assert status == 429 and 1 <= int(headers["retry-after"]) <= 61 and b"try again in" in body
    assert statistics.median(during) < max(10 * statistics.median(quiet), 0.5), (quiet, during)


def test_sec031_behind_a_proxy_each_client_has_its_own_limit(runs_with_secret, tmp_path):
    """LSTM_LENS_PROXIES=1, two workers: one client floods; another logs in for the first time
    during the flood (no worker has seen its credentials) and is served."""
    from test_operator import basic as basic_auth, gunicorn, request
    with gunicorn(runs_with_secret, tmp_path, LSTM_LENS_USERS="ada,grace", LSTM_LENS_PASSWORD="correct horse",
                  LSTM_LENS_PROXIES="1", LSTM_LENS_WORKERS="2") as (port, _):
        counts, _, threads = flood(port, 5, 8, lambda n, i: {
            **basic_auth("ada", f"guess-{n}-{i}"), "X-Forwarded-For": "198.51.100.7"})
        import time
        time.sleep(2)
        other = {**basic_auth("grace", "correct horse"), "X-Forwarded-For": "10.1.2.3, 198.51.100.8"}
        statuses = [request(port, "/_dash-layout", other)[0] for _ in range(6)]
        for thread in threads:
            thread.join()
    assert statuses == [200] * 6
    assert counts[429] > 0 and counts[401] <= 2 * (5 + 4), counts


def test_sec032_login_limit_settings_are_checked():
    assert auth.login_limit({}) == auth.DEFAULT_LOGIN_LIMIT
    assert auth.login_limit({"LSTM_LENS_LOGIN_LIMIT": "3/minute;20/hour"}) == "3/minute;20/hour"
    with pytest.raises(auth.AuthConfigError, match="LSTM_LENS_LOGIN_LIMIT"):
        auth.login_limit({"LSTM_LENS_LOGIN_LIMIT": "x" * 500})
    assert auth.trusted_proxies({"LSTM_LENS_PROXIES": "2"}) == 2
    with pytest.raises(auth.AuthConfigError, match="LSTM_LENS_PROXIES"):
        auth.trusted_proxies({"LSTM_LENS_PROXIES": "-1"})


# -- headers -----------------------------------------------------------------------------------------

def test_sec040_every_answer_carries_the_security_headers(runs_with_secret, app_factory):
    app = app_factory(runs_with_secret)
    client = app.server.test_client()
    renderer = app.csp_hashes()[-1]
    for path in ("/", "/_dash-layout", "/healthz", "/assets/style.css", "/no/such/page"):
        response = client.get(path)
        policy = response.headers["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives["script-src"] == f"'self' 'unsafe-eval' {renderer}", policy   # no unsafe-inline
        assert directives["default-src"] == "'self'" and directives["object-src"] == "'none'"
        assert directives["frame-ancestors"] == "'self'" and directives["base-uri"] == "'self'"
        assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "no-store" not in response.headers.get("Cache-Control", "")      # nothing secret: no login


def test_sec041_answers_behind_the_login_are_not_stored(runs_with_secret, app_factory, monkeypatch):
    monkeypatch.setenv("LSTM_LENS_USERS", "ada")
    monkeypatch.setenv("LSTM_LENS_PASSWORD", "correct horse")
    monkeypatch.setenv("LSTM_LENS_LOGIN_LIMIT", NO_LIMIT)
    client = app_factory(runs_with_secret).server.test_client()
    good = basic("ada", "correct horse")
    index = client.get("/", headers=good)
    for method, path, body in protected_routes(client, good):
        if "/_dash-component-suites/" in path:
            continue
        for headers in (good, None, basic("ada", "wrong")):
            response = call(client, method, path, body, headers)
            assert response.headers["Cache-Control"] == "no-store", (path, headers, response.status_code)
            assert "ETag" not in response.headers
    scripts = re.findall(r'src="(/_dash-component-suites/[^"]+)"', index.get_data(as_text=True))
    library = client.get(scripts[0], headers=good)
    assert library.status_code == 200 and "public" not in library.headers["Cache-Control"]
    assert library.headers["Cache-Control"].startswith("private")
    assert "no-store" not in client.get("/healthz").headers.get("Cache-Control", "")


def test_sec042_frame_ancestors_are_configurable(runs_with_secret, app_factory, monkeypatch):
    """A notebook shows the dashboard in an iframe from its own origin."""
    monkeypatch.setenv("LSTM_LENS_FRAME_ANCESTORS", "'self'  http://localhost:8888 https://*.example.org")
    app = app_factory(runs_with_secret)
    response = app.server.test_client().get("/")
    assert "frame-ancestors 'self' http://localhost:8888 https://*.example.org" in \
        response.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in response.headers         # it cannot name other origins
    app.server.config["LSTM_LENS_FRAME_ANCESTORS"] = "'none'"  # what dashboard/notebook.py may set
    response = app.server.test_client().get("/")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    for bad in ("'self'; script-src *", "http://a.example\r\nX-Evil: 1", "'none' 'self'", "javascript:alert(1)"
                " 'unsafe-inline'"):
        monkeypatch.setenv("LSTM_LENS_FRAME_ANCESTORS", bad)
        with pytest.raises(http_headers.HeaderConfigError, match="LSTM_LENS_FRAME_ANCESTORS"):
            app_factory(runs_with_secret)


def test_sec043_the_page_renders_a_run_under_the_policy_in_chromium(browser, synthetic_runs_dir, tmp_path):
    """Real gunicorn with a login and the session's chromium: the page with a run renders its graphs
    through every view and the console reports no CSP violation; an inline script the page did not
    bring is refused (the policy is on, and the check sees violations)."""
    from test_operator import gunicorn

    from browser.pages import wait_for          # polls with page.evaluate: no eval in the page
    runs = tmp_path / "runs"
    shutil.copytree(synthetic_runs_dir, runs)
    with gunicorn(runs, tmp_path, LSTM_LENS_USERS="ada", LSTM_LENS_PASSWORD="correct horse") as (port, _):
        context = browser.new_context(http_credentials={"username": "ada", "password": "correct horse"},
                                      viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(60_000)
        messages, errors = [], []
        page.on("console", lambda message: messages.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.add_init_script("window.__violations = []; document.addEventListener('securitypolicyviolation', "
                             "e => window.__violations.push([e.violatedDirective, e.blockedURI, e.sourceFile, e.lineNumber, e.sample].join(' ')));")
        page.goto(f"http://127.0.0.1:{port}/?run=synthetic")
        drawn = "document.querySelector('.js-plotly-plot')?._fullData?.length > 0"
        wait_for(page, drawn)
        tabs = page.eval_on_selector_all("[id^=tab-]", "els => els.filter(e => !e.classList.contains("
                                         "'tab--disabled')).map(e => e.id)")
        assert len(tabs) >= 4
        for tab in tabs:
            page.click(f"#{tab}")
            page.wait_for_timeout(1500)
        wait_for(page, drawn)
        violations = page.evaluate("() => window.__violations")
        rendered = list(messages)
        page.evaluate("() => { document.head.appendChild(Object.assign(document.createElement('script'), "
                      "{textContent: 'window.__injected = 1'})); }")
        page.wait_for_timeout(300)
        injected, after = page.evaluate("() => [window.__injected, window.__violations]")
        context.close()
    assert violations == [] and errors == [], (violations, errors)
    assert not [m for m in rendered if "Content Security Policy" in m or m.startswith("error")], rendered
    assert injected is None and any(v.startswith("script-src") for v in after), after
    assert any("Content Security Policy" in m for m in messages[len(rendered):])     # and the console says so


# -- CSV downloads cannot carry formulas -------------------------------------------------------------

def test_sec050_csv_safe_neutralises_formula_cells():
    import csv
    import io

    import pandas as pd

    from dashboard.export import csv_safe, send_csv
    names = ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "\uff1dcmd", "walk", "-"]
    frame = pd.DataFrame({"example_id": range(len(names)), "label": names, "score": [-1.5] * len(names),
                          "class": pd.Categorical(names), "=evil": ["a"] * len(names)})
    original = frame.copy()
    sent = send_csv(frame, "run-examples.csv")
    assert sent["filename"] == "run-examples.csv" and not sent["base64"]
    rows = list(csv.reader(io.StringIO(sent["content"], newline="")))
    assert rows[0] == ["example_id", "label", "score", "class", "'=evil"]
    for row, name in zip(rows[1:], names):
        expected = name if name == "walk" else "'" + name
        assert row[1] == expected and row[3] == expected, (row, name)
        assert row[2] == "-1.5" and row[0].isdigit()            # numbers stay numbers
    pd.testing.assert_frame_equal(frame, original)               # the caller's frame is untouched
    both = pd.DataFrame({"c": pd.Categorical(["=a", "'=a"])})    # categories that would collide
    assert csv_safe(both)["c"].tolist() == ["'=a", "'=a"]


# -- messages: no server paths, echoed values cut short ---------------------------------------------

def test_sec060_login_answers_and_health_name_no_path(runs_with_secret, app_factory, monkeypatch):
    monkeypatch.setenv("LSTM_LENS_USERS", "ada")
    monkeypatch.setenv("LSTM_LENS_PASSWORD", "correct horse")
    monkeypatch.setenv("LSTM_LENS_LOGIN_LIMIT", "2 per minute")
    client = app_factory(runs_with_secret).server.test_client()
    answers = [client.get("/_dash-layout", headers=basic("x" * 5000, "wrong")) for _ in range(3)]
    answers.append(client.get("/healthz"))
    assert [a.status_code for a in answers] == [401, 401, 429, 200]
    for answer in answers:
        text = answer.get_data(as_text=True)
        assert str(runs_with_secret) not in text and "/tmp" not in text and "xxxxx" not in text
        assert len(text) < 200
    assert answers[2].headers["Retry-After"].isdigit()
    too_long = {"LSTM_LENS_USERS": "a:" + "b" * 5000, "LSTM_LENS_PASSWORD": "x"}
    with pytest.raises(auth.AuthConfigError) as error:
        auth.users_from_environment(too_long)
    assert len(str(error.value)) < 200

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


# -- forged filter values: refused before any work --------------------------------------------

def page_values(client) -> tuple[dict, list]:
    props, dependencies = page(client)
    return {(cid, prop): value for cid, p in props.items() for prop, value in p.items()}, dependencies


def figure_text(answer: dict, output: str) -> str:
    """The message of a figure in a callback answer ("" for a figure with data)."""
    component, prop = output.rsplit(".", 1)
    figure = answer["response"][component][prop]
    notes = figure.get("layout", {}).get("annotations") or []
    return notes[0]["text"] if notes and not figure.get("data") else ""


def no_work(monkeypatch):
    """Make every read of a run's examples, projections or tensors fail the test."""
    def forbidden(*args, **kwargs):
        raise AssertionError("a refused request read the run")
    for name in ("filtered_examples", "projection", "last_step_projection", "step_matrix", "labels"):
        monkeypatch.setattr(data, name, forbidden)


def test_sec070_five_thousand_unknown_classes_are_refused_before_any_work(runs_with_secret, app_factory,
                                                                          monkeypatch):
    """The paths request of issue 16 (5,000 unknown class names, 68 KB) took 7.3 s: now the guard
    refuses it with the view's message before any callback runs, in milliseconds."""
    import time
    client = app_factory(runs_with_secret).server.test_client()
    values, dependencies = page_values(client)
    values.update({(state.RUN, "value"): "good", (state.TABS, "value"): "paths",
                   (state.CLASS, "value"): [f"no-such-sign-{i:05d}" for i in range(5000)]})
    body = request_body(callback_for(dependencies, "paths-graph.figure"), values, (state.CLASS, "value"))
    assert len(json.dumps(body)) > 60_000
    no_work(monkeypatch)
    started = time.perf_counter()
    response = post(client, body)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200
    text = figure_text(response.get_json(), "paths-graph.figure")
    assert text.startswith("5,000 of the 5,000 classes sent are not classes of run 'good' "
                           "(first: 'no-such-sign-00000')")
    assert elapsed < 0.5, elapsed


def test_sec071_view_functions_refuse_classes_and_examples_the_run_lacks(runs_with_secret, app_factory):
    """Called as functions (no request guard), the filtered views give the same refusal."""
    from dashboard.views import cells, film, gates, inspector, last_step, paths
    app_factory(runs_with_secret)
    unknown = [f"no-such-sign-{i}" for i in range(5000)]
    every = (list(state.SPLITS), list(state.HANDS), "all")
    figures = [paths.paths_view_figure("good", unknown, *every, None, "ae", "2", []),
               last_step.last_step_view_figure("good", unknown, *every, None, "ae2", "class", []),
               go.Figure(film.film_source("good", unknown, *every, "ae2", "end")),
               cells.ranking_figure("good", unknown, *every, "last", "h", "last", 0),
               gates.summary_figures("good", unknown, *every, "last", "end", None)[0]]
    for figure in figures:
        assert figure.layout.annotations[0].text.startswith("5,000 of the 5,000 classes sent are not classes")
    listed = inspector.mistakes_list("good", unknown, *every)
    assert "5,000 of the 5,000 classes" in str(listed)
    for selected in ({"id": 3}, "3", 10 ** 30, True, 99_999):
        figure = paths.paths_view_figure("good", [], *every, selected, "ae", "2", [])
        assert not figure.data and ("example id is a whole number" in figure.layout.annotations[0].text
                                    or "has no example 99999" in figure.layout.annotations[0].text)
    assert "not a split" in paths.paths_view_figure("good", [], ["tset"], None, "all", None, "ae", "2",
                                                   []).layout.annotations[0].text


def test_sec072_figure_functions_get_only_checked_scalars(runs_with_secret, app_factory):
    """A dict or text where the selected example's id goes never reaches the figure code (it
    compared a column with it and pandas warned); a real id still draws the selection."""
    import warnings
    import pandas as pd
    from dashboard.views import last_step, paths
    app_factory(runs_with_secret)
    every = (list(state.SPLITS), list(state.HANDS), "all")
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.Pandas4Warning)
        for selected in ({"a": 1}, ["1"], "1"):
            assert not paths.paths_view_figure("good", [], *every, selected, "ae", "2", []).data
            assert not last_step.last_step_view_figure("good", [], *every, selected, "ae2", "class", []).data
        drawn = paths.paths_view_figure("good", [], *every, 1, "ae", "2", [])
        assert drawn["data"][-1]["name"] == "example 1"


@pytest.mark.parametrize("key, value, refusal", [
    (("paths-dims", "value"), "9", "is not one of the choices"),
    (("paths-method", "value"), "umap", "is not one of the choices"),
    (("paths-symlog", "value"), ["on", {"x": 1}], "is not one of the choices"),
    ((state.SPLIT, "value"), ["train", "everything"], "are not splits"),
    ((state.CORRECT, "value"), "some", "is not an examples filter"),
    ((state.SELECTED, "data"), {"example": 1}, "example id is a whole number"),
    ((state.SELECTED, "data"), 123456, "has no example 123456"),
])
def test_sec073_the_guard_checks_every_control_the_paths_view_reads(runs_with_secret, app_factory, monkeypatch,
                                                                    key, value, refusal):
    client = app_factory(runs_with_secret).server.test_client()
    values, dependencies = page_values(client)
    values.update({(state.RUN, "value"): "good", (state.TABS, "value"): "paths", key: value})
    body = request_body(callback_for(dependencies, "paths-graph.figure"), values)
    no_work(monkeypatch)
    response = post(client, body)
    assert response.status_code == 200
    assert refusal in figure_text(response.get_json(), "paths-graph.figure")


@pytest.mark.parametrize("output, key, value, refusal", [
    ("cells-ranking.figure", ("cells-layer", "value"), "7", "has no layer 7"),
    ("cells-ranking.figure", ("cells-kind", "value"), "forget_gate", "is not one of the choices"),
    ("gates-over-time.figure", ("gates-thresholds", "value"), [0.1, "x"], "is not 2 numbers from 0 to 1"),
    ("film-source.data", ("film-projection", "value"), "../x", "is not a projection the film can draw"),
    ("filter-count.children", (state.CLASS, "value"), [{"$ne": 1}], "is not a class of run 'good'"),
])
def test_sec074_the_guard_checks_the_other_views_controls_too(runs_with_secret, app_factory, output, key,
                                                              value, refusal):
    client = app_factory(runs_with_secret).server.test_client()
    values, dependencies = page_values(client)
    values.update({(state.RUN, "value"): "good", (state.TABS, "value"): output.split("-")[0], key: value})
    response = post(client, request_body(callback_for(dependencies, output), values))
    assert response.status_code == 200
    answer = response.get_json()
    text = figure_text(answer, output) if output.endswith((".figure", "-source.data")) \
        else answer["response"]["filter-count"]["children"]
    assert refusal in text


FILTERED_OUTPUTS = ("paths-graph.figure", "last_step-graph.figure", "film-source.data", "cells-ranking.figure",
                    "inspector-mistakes.children", "filter-count.children")
FORGED_KEYS = ((state.CLASS, "value"), (state.SPLIT, "value"), (state.HAND, "value"), (state.CORRECT, "value"),
               (state.SELECTED, "data"), ("paths-method", "value"), ("last_step-projection", "value"),
               ("film-projection", "value"), ("cells-layer", "value"))
FIXED_NAMES = {"other classes", "paths", "correct", "misclassified",
               *state.HANDS, "unknown"}


def _forged_values(classes: list[str]):
    from hypothesis import strategies as st
    scalar = st.one_of(st.none(), st.booleans(), st.integers(-10 ** 20, 10 ** 20), st.floats(allow_nan=True),
                       st.text(max_size=12), st.sampled_from([*classes, *state.SPLITS, *state.HANDS, "all", "ae2"]))
    item = st.one_of(scalar, st.dictionaries(st.text(max_size=4), scalar, max_size=3))
    return st.one_of(item, st.lists(item, max_size=40))


def _figures(answer: dict) -> list[dict]:
    """The figures in a callback answer: graphs' figures and the film's source (a figure the
    browser expands)."""
    return [component.get("figure", component.get("data")) for component in answer.get("response", {}).values()
            if isinstance(component.get("figure", component.get("data")), dict)]


def _trace_names(answer: dict) -> set:
    return {str(trace.get("name") or "paths") for figure in _figures(answer) for trace in figure.get("data", [])}


def _drawn_data(answer: dict, run: runformat.Run, ids: set, names: set) -> None:
    """Every trace of every figure in ``answer`` names a class of ``run`` (or one of the names
    the views give their other traces) and points only at examples of ``run``."""
    from factories import decoded
    for figure in _figures(answer):
        assert set(figure.get("film", {}).get("ids", [])) <= ids
        for trace in decoded(figure).get("data", []):
            name = str(trace.get("name") or "paths")
            assert name in names or name in run.classes or (
                name.startswith("example ") and int(name.split()[1]) in ids), name
            custom = trace.get("customdata")
            if custom is None:
                continue
            first = [c[0] if isinstance(c, (list, tuple)) else c for c in custom] if not hasattr(custom, "ndim") \
                else (custom[:, 0] if custom.ndim == 2 else custom)
            assert {int(v) for v in first if v is not None and int(v) >= 0} <= ids


def test_sec075_random_filter_values_never_fail_and_never_show_another_run(runs_with_secret, app_factory):
    """Hypothesis: lists of text, numbers, None and dicts in any filter or choice the filtered
    views read get a 200/204 answer (or the type guard's 400): a figure of this run's classes and
    examples, or a short refusal; never a 500 or a traceback."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    client = app_factory(runs_with_secret).server.test_client()
    values, dependencies = page_values(client)
    run = runformat.Run.open(runs_with_secret, "good")
    ids = set(run.examples()["example_id"].tolist())
    callbacks = {output: callback_for(dependencies, output) for output in FILTERED_OUTPUTS}
    names = set(FIXED_NAMES)
    for output in FILTERED_OUTPUTS:             # the names a real request's traces have
        sent = {**values, (state.RUN, "value"): "good", (state.TABS, "value"): output.split("-")[0]}
        names.update(_trace_names(post(client, request_body(callbacks[output], sent)).get_json() or {}))

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(output=st.sampled_from(FILTERED_OUTPUTS),
           forged=st.dictionaries(st.sampled_from(FORGED_KEYS), _forged_values(run.classes), min_size=1, max_size=3))
    def check(output, forged):
        sent = {**values, (state.RUN, "value"): "good", (state.TABS, "value"): output.split("-")[0], **forged}
        response = post(client, request_body(callbacks[output], sent))
        assert response.status_code in (200, 204, 400), (response.status_code, forged)
        text = response.get_data(as_text=True)
        assert "Traceback" not in text
        if response.status_code == 200:
            _drawn_data(response.get_json(), run, ids, names)

    check()
