"""Helpers for driving pages under the dashboard's Content-Security-Policy.

Playwright's ``page.wait_for_function`` evaluates its predicate inside the page, where the app's
Content-Security-Policy governs what may run. ``wait_for`` polls with ``page.evaluate`` instead (sent over the DevTools protocol, which the
page's policy does not govern), so the tests run against the real policy rather than around it.
"""

from __future__ import annotations

import time


def wait_for(page, expression: str, timeout: float | None = None) -> None:
    """Wait until the JavaScript ``expression`` is truthy in ``page`` (``timeout`` in ms; default the
    tests' usual 60 s). A navigation or a node being replaced mid-poll only
    means: try again."""
    limit = (timeout if timeout is not None else 60_000) / 1000
    deadline = time.monotonic() + limit
    last_error = None
    while True:
        try:
            if page.evaluate(f"() => Boolean({expression})"):
                return
        except Exception as error:          # noqa: BLE001 - the page is changing under us; poll again
            last_error = error
        if time.monotonic() > deadline:
            raise TimeoutError(f"{expression!r} still false after {limit:.0f} s"
                               + (f" (last error: {last_error})" if last_error else ""))
        page.wait_for_timeout(100)
