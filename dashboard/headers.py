"""HTTP headers on every answer of a served dashboard (``install(app)``, from ``deployment.install``).

- ``Content-Security-Policy``: scripts only from this server plus Dash's own inline scripts by
  their hashes (``Dash.csp_hashes``: the renderer's start line, and any inline clientside callback),
  no other inline script; ``'unsafe-eval'`` because Plotly's WebGL traces build functions at run
  time (chromium reports ``script-src eval`` violations from plotly.min.js without it); no plugins,
  no foreign frames, forms or connections; styles may be inline (Plotly and React set style
  attributes). ``frame-ancestors`` is ``'self'`` unless ``LSTM_LENS_FRAME_ANCESTORS`` (or
  ``app.server.config["LSTM_LENS_FRAME_ANCESTORS"]``, read on every answer) lists the origins that
  may show the dashboard in a frame, e.g. a Jupyter server's ``'self' http://localhost:8888``.
- ``X-Frame-Options`` for browsers without ``frame-ancestors``: ``SAMEORIGIN`` for ``'self'``,
  ``DENY`` for ``'none'``, left out for a list of origins (which it cannot express).
- ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer``.
- ``Cache-Control: no-store`` on every answer behind the login (``/healthz`` is not), except Dash's
  version-stamped library scripts, which become ``private`` (a browser keeps them, no shared cache).
- No version banner: werkzeug's development server (``python app.py``, notebooks) says
  ``Server: LSTM Lens`` instead of ``Werkzeug/x Python/y`` (``hide_werkzeug_version``); under
  gunicorn, which ignores an app's ``Server`` header, ``dashboard/gunicorn_conf.py`` removes its own.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import dash
import flask
import werkzeug.serving

FRAME_ANCESTORS = "LSTM_LENS_FRAME_ANCESTORS"
DEFAULT_FRAME_ANCESTORS = "'self'"
SERVER_NAME = "LSTM Lens"
LIBRARY_SCRIPTS = "/_dash-component-suites/"
OPEN_PATHS = frozenset({"/healthz"})
# A CSP source: a keyword in quotes, a scheme ("https:"), or a host with optional scheme, port and
# path; wildcards as CSP allows them. Nothing that could end the directive or the header.
SOURCE = re.compile(r"'(self|none)'|[a-z][a-z0-9+.-]*:|([a-z][a-z0-9+.-]*://)?(\*|(\*\.)?[a-z0-9.-]+)"
                    r"(:(\d{1,5}|\*))?(/[\w./~-]*)?", re.I)


class HeaderConfigError(ValueError):
    """A header setting cannot be used; the message names the variable."""


def frame_ancestors(value: str | None) -> str:
    """The ``frame-ancestors`` sources, checked: ``'self'`` when unset."""
    if value and not all(" " <= character <= "~" for character in value):
        raise HeaderConfigError(f"{FRAME_ANCESTORS}: only printable ASCII, sources separated by spaces")
    value = " ".join((value or "").split()) or DEFAULT_FRAME_ANCESTORS
    sources = value.split(" ")
    bad = [source for source in sources if not SOURCE.fullmatch(source)]
    if bad:
        raise HeaderConfigError(f"{FRAME_ANCESTORS}: {bad[0][:60]!r} is not a CSP source (use 'self', "
                                f"'none' or origins such as http://localhost:8888, space-separated)")
    if "'none'" in sources and len(sources) > 1:
        raise HeaderConfigError(f"{FRAME_ANCESTORS}: 'none' cannot be combined with other sources")
    return value


def content_security_policy(script_hashes: list[str], ancestors: str) -> str:
    directives = {
        "default-src": "'self'",
        # 'unsafe-eval': Plotly's WebGL traces (scattergl, scatter3d: the paths, film and gates
        # views) compile their drawing code with Function() (regl). Inline scripts stay refused.
        "script-src": " ".join(["'self'", "'unsafe-eval'", *script_hashes]),
        "style-src": "'self' 'unsafe-inline'",
        "img-src": "'self' data: blob:",
        "font-src": "'self' data:",
        "connect-src": "'self'",
        "worker-src": "'self' blob:",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": ancestors,
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def install(app: dash.Dash, login: bool = False, environ: Mapping[str, str] = os.environ) -> None:
    """Add the headers to every answer of ``app.server``; ``login``: answers are behind a login.

    Call it after every callback is registered: the policy holds the hashes of Dash's inline scripts.
    """
    server = app.server
    server.config.setdefault(FRAME_ANCESTORS, frame_ancestors(environ.get(FRAME_ANCESTORS)))
    hashes = list(app.csp_hashes())
    policies: dict[str, str] = {}

    def add_headers(response: flask.Response) -> flask.Response:
        ancestors = server.config[FRAME_ANCESTORS]
        policy = policies.get(ancestors)
        if policy is None:
            policy = policies[ancestors] = content_security_policy(hashes, frame_ancestors(ancestors))
        headers = response.headers
        headers["Content-Security-Policy"] = policy
        if ancestors == "'self'":
            headers["X-Frame-Options"] = "SAMEORIGIN"
        elif ancestors == "'none'":
            headers["X-Frame-Options"] = "DENY"
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Referrer-Policy"] = "no-referrer"
        path = flask.request.path
        if login and path not in OPEN_PATHS:
            if path.startswith(LIBRARY_SCRIPTS) and response.status_code == 200:
                kept = [token.strip() for token in (headers.get("Cache-Control") or "no-cache").split(",")
                        if token.strip() not in ("public", "private", "")]
                headers["Cache-Control"] = ", ".join(["private", *kept])
            else:
                headers["Cache-Control"] = "no-store"
                headers.pop("ETag", None)
                headers.pop("Last-Modified", None)
        return response

    server.after_request(add_headers)
    hide_werkzeug_version()


def hide_werkzeug_version() -> None:
    """werkzeug's server always sends ``Server: <version_string()>``: make that ``LSTM Lens``."""
    werkzeug.serving.WSGIRequestHandler.version_string = lambda self: SERVER_NAME  # type: ignore[method-assign]
