"""Optional login for team deployments: HTTP Basic auth on every route but ``/healthz``.

One person on 127.0.0.1 needs no login, so there is none unless the environment asks for it (never
the image: mount the file or pass the variables when the container starts):

- ``LSTM_LENS_AUTH_FILE``: a file of ``user:password-hash`` lines, the hashes made by
  ``werkzeug.security.generate_password_hash`` (blank lines and ``#`` comments are skipped);
- or ``LSTM_LENS_USERS`` (comma-separated user names) with ``LSTM_LENS_PASSWORD`` (their shared
  password, or a werkzeug hash of it).

With a login, a request without valid credentials gets 401 before Dash sees it: the page, its
layout, dependencies and callbacks, the assets and component scripts, downloads. A half-given
configuration (users without a password, an unreadable or malformed file) stops the server at
start rather than serving without a login.

Every failed login costs the same, whoever the user and whatever the kind of hash: a plain
password is hashed once at start (werkzeug's default method, as ``generate_password_hash`` makes
the file's lines), and each check verifies against one hash of every method the users' hashes use
(the user's own where it has that method, a dummy one otherwise; an unknown user gets only
dummies), so the answer's time says nothing about which names exist.

Failed logins are rate-limited per client with Flask-Limiter (``LSTM_LENS_LOGIN_LIMIT``, default
``5 per minute``, counted in each worker process): past the limit a client gets 429 with ``Retry-After``
before any hash is computed, so a flood of wrong passwords costs the server little. Credentials a
worker has already accepted are never limited, so a logged-in user keeps working while others
fail. The client is the connection's address, or with ``LSTM_LENS_PROXIES=N`` (N trusted proxies
in front, e.g. 1 behind one HTTPS proxy) the N-th address from the right of ``X-Forwarded-For``.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import secrets
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import flask
import limits
from flask_limiter import Limiter, RequestLimit
from werkzeug.security import check_password_hash, generate_password_hash

OPEN_PATHS = frozenset({"/healthz"})
REALM = "LSTM Lens"
HASH_PREFIXES = ("scrypt:", "pbkdf2:")
MAX_REMEMBERED = 256
DEFAULT_LOGIN_LIMIT = "5 per minute"
FAILED = "lstm_lens_login_failed"          # flask.g flag: this request gave wrong credentials
# The server's own requests (deployment.register_scripts renders the page once at start): a WSGI
# environ key holding this object, which no HTTP request can set (headers arrive as HTTP_* strings).
INTERNAL_KEY = "lstm_lens.internal"
INTERNAL = object()


class AuthConfigError(ValueError):
    """The login settings cannot be used; the message names the variable, file or line."""


def users_from_environment(environ: Mapping[str, str] = os.environ) -> dict[str, str] | None:
    """``{user: password hash or plain password}`` from the environment; None when no login is set."""
    auth_file = environ.get("LSTM_LENS_AUTH_FILE", "").strip()
    names = environ.get("LSTM_LENS_USERS", "").strip()
    password = environ.get("LSTM_LENS_PASSWORD", "")
    if auth_file:
        if names or password:
            raise AuthConfigError("set LSTM_LENS_AUTH_FILE or LSTM_LENS_USERS/LSTM_LENS_PASSWORD, "
                                  "not both")
        return read_auth_file(auth_file)
    if not names and not password:
        return None
    if not names or not password:
        missing = "LSTM_LENS_PASSWORD" if names else "LSTM_LENS_USERS"
        raise AuthConfigError(f"{missing} is not set: a login needs LSTM_LENS_USERS (comma-separated "
                              f"names) and LSTM_LENS_PASSWORD")
    users = [name.strip() for name in names.split(",") if name.strip()]
    bad = [name for name in users if ":" in name]
    if bad:
        raise AuthConfigError(f"LSTM_LENS_USERS: user name {bad[0][:40]!r} contains ':'")
    return dict.fromkeys(users, password)


def read_auth_file(path: str | os.PathLike) -> dict[str, str]:
    """``user:hash`` lines -> ``{user: hash}``; only werkzeug hashes are accepted, never plain text."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else type(error).__name__
        raise AuthConfigError(f"LSTM_LENS_AUTH_FILE {path}: cannot read it ({reason}; the server runs "
                              f"as uid {os.getuid()}, which must be able to read it)") from None
    users: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not user or not hashed.startswith(HASH_PREFIXES):
            raise AuthConfigError(
                f"{path}, line {number}: expected 'user:password-hash' with a hash from "
                f"werkzeug.security.generate_password_hash (starting with scrypt: or pbkdf2:)")
        if user in users:
            raise AuthConfigError(f"{path}, line {number}: user {user[:40]!r} is listed twice")
        users[user] = hashed
    if not users:
        raise AuthConfigError(f"{path}: no 'user:password-hash' lines")
    return users


def login_limit(environ: Mapping[str, str] = os.environ) -> str:
    """``LSTM_LENS_LOGIN_LIMIT`` (a Flask-Limiter limit such as ``10 per minute``; ``;`` joins
    several), checked."""
    value = environ.get("LSTM_LENS_LOGIN_LIMIT", "").strip() or DEFAULT_LOGIN_LIMIT
    try:
        limits.parse_many(value)
    except ValueError:
        raise AuthConfigError(f"LSTM_LENS_LOGIN_LIMIT {value[:60]!r}: expected a limit such as "
                              f"'10 per minute' or '5/minute;50/hour'") from None
    return value


def trusted_proxies(environ: Mapping[str, str] = os.environ) -> int:
    """``LSTM_LENS_PROXIES``: how many proxies in front append to ``X-Forwarded-For`` (default 0)."""
    value = environ.get("LSTM_LENS_PROXIES", "").strip() or "0"
    if not value.isdigit() or int(value) > 10:
        raise AuthConfigError(f"LSTM_LENS_PROXIES {value[:20]!r}: expected a number of proxies, 0 to 10")
    return int(value)


def hash_method(stored: str) -> str:
    """The method part of a werkzeug hash (``scrypt:32768:8:1``, ``pbkdf2:sha256:1000000``)."""
    return stored.split("$", 1)[0]


class BasicAuth:
    """Checks HTTP Basic credentials against ``users`` ({name: werkzeug hash or plain password}).

    A password hash takes tens of milliseconds to check and the page sends many requests, so each
    worker remembers the credentials it has accepted, as a keyed digest (never the password).
    """

    def __init__(self, users: Mapping[str, str]):
        if not users:
            raise AuthConfigError("a login needs at least one user")
        plain = {password: generate_password_hash(password)       # once per distinct password
                 for password in set(users.values()) if not password.startswith(HASH_PREFIXES)}
        self.users = {name: plain.get(stored, stored) for name, stored in users.items()}
        self._methods = sorted({hash_method(stored) for stored in self.users.values()})
        try:
            self._dummies = {method: generate_password_hash(secrets.token_hex(16), method=method)
                             for method in self._methods}
        except ValueError as error:
            raise AuthConfigError(f"a password hash has a method werkzeug cannot check ({error})") from None
        self._key = secrets.token_bytes(32)
        self._accepted: set[bytes] = set()
        self._lock = threading.Lock()

    def _digest(self, username: str, password: str) -> bytes:
        return hmac.new(self._key, f"{username}\0{password}".encode(), hashlib.sha256).digest()

    def remembered(self, username: str | None, password: str | None) -> bool:
        """Whether this worker has accepted these credentials before (a keyed digest: no hash)."""
        if not username or password is None:
            return False
        digest = self._digest(username, password)
        with self._lock:
            return digest in self._accepted

    def check(self, username: str | None, password: str | None) -> bool:
        if not username or password is None:
            return False
        if self.remembered(username, password):
            return True
        stored = self.users.get(username)
        ok = False
        # One verification per hash method in use, whoever asks: the same work for every failure.
        for method in self._methods:
            own = stored if stored is not None and hash_method(stored) == method else None
            matched = check_password_hash(own or self._dummies[method], password)
            ok = ok or (own is not None and matched)
        if ok:
            with self._lock:
                if len(self._accepted) >= MAX_REMEMBERED:
                    self._accepted.clear()
                self._accepted.add(self._digest(username, password))
        return ok

    def guard(self) -> flask.Response | None:
        """A Flask ``before_request`` hook: None lets the request through, else a 401 answer."""
        if flask.request.path in OPEN_PATHS or internal_request():
            return None
        auth = flask.request.authorization
        if auth is not None and auth.type == "basic" and self.check(auth.username, auth.password):
            return None
        if auth is not None:
            setattr(flask.g, FAILED, True)            # counted by the limiter (a missing login is not)
        return flask.Response("Login required.\n", 401, {
            "WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"',
            "Content-Type": "text/plain; charset=utf-8"})

    def exempt(self) -> bool:
        """Requests the login limiter never counts or stops: /healthz, and credentials this worker
        has accepted before (a logged-in user is not limited by others' failures)."""
        if flask.request.path in OPEN_PATHS or internal_request():
            return True
        auth = flask.request.authorization
        return auth is not None and auth.type == "basic" and self.remembered(auth.username, auth.password)


def internal_request() -> bool:
    return flask.request.environ.get(INTERNAL_KEY) is INTERNAL


def client_address(proxies: int = 0) -> str:
    """The client a failed login is counted against: the connection's address, or the address
    the ``proxies``-th trusted proxy saw (``X-Forwarded-For``, right to left)."""
    remote = flask.request.remote_addr or "unknown"
    if proxies <= 0:
        return remote
    forwarded = [part.strip() for part in flask.request.headers.get("X-Forwarded-For", "").split(",")]
    forwarded = [part for part in forwarded if part]
    return forwarded[-proxies][:64] if len(forwarded) >= proxies else remote


def too_many_failures(limit: RequestLimit) -> flask.Response:
    """Flask-Limiter's ``on_breach``: 429 with the seconds until the client may try again."""
    retry = max(1, math.ceil(limit.reset_at - time.time()))
    return flask.Response(f"Too many failed logins from this address; try again in {retry} s.\n", 429,
                          {"Retry-After": str(retry), "Content-Type": "text/plain; charset=utf-8"})


def install(server: flask.Flask, environ: Mapping[str, str] = os.environ) -> BasicAuth | None:
    """Require a login on ``server`` when the environment configures one; returns the checker."""
    users = users_from_environment(environ)
    if users is None:
        return None
    limit, proxies = login_limit(environ), trusted_proxies(environ)
    auth = BasicAuth(users)
    limiter = Limiter(lambda: client_address(proxies), storage_uri="memory://", strategy="moving-window",
                      application_limits=[limit], application_limits_exempt_when=auth.exempt,
                      application_limits_deduct_when=lambda response: bool(flask.g.get(FAILED)),
                      on_breach=too_many_failures, headers_enabled=False)
    hooks = server.before_request_funcs.setdefault(None, [])
    before = list(hooks)
    limiter.init_app(server)
    added = [hook for hook in hooks if hook not in before]
    # First in line: the limiter (a client over its limit gets 429 before any hash is computed),
    # then the login, so no other hook (Dash's own included) runs for a request without credentials.
    hooks[:] = [*added, auth.guard, *before]
    server.extensions["lstm_lens_login"] = auth
    return auth
