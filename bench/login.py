"""Benchmark of what a failed login costs (issue 16): known against unknown user names, for a plain
shared password, a file of pbkdf2 lines and a file mixing scrypt and pbkdf2.

    python bench/login.py [--rounds 9]

Each wrong-password request goes through the real Flask app (test client, no network); its cost is
the CPU seconds of the thread that serves it (the test client serves in this thread), so other
processes on a shared machine blur it less than wall time. The names are asked in a new random
order each round; the medians are printed with the spread (max/min - 1) and the load average.
The tests (test_sec016/017) check the cause instead: every failure checks the same hashes.
"""
from __future__ import annotations

import argparse
import base64
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from werkzeug.security import generate_password_hash  # noqa: E402

from dashboard.app import create_app  # noqa: E402

LOGIN_ENV = ("LSTM_LENS_AUTH_FILE", "LSTM_LENS_USERS", "LSTM_LENS_PASSWORD", "LSTM_LENS_LOGIN_LIMIT")


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def medians(environ: dict, users: list[str], rounds: int) -> dict[str, float]:
    for name in LOGIN_ENV:
        os.environ.pop(name, None)
    os.environ.update(environ, LSTM_LENS_LOGIN_LIMIT="100000 per minute")
    with tempfile.TemporaryDirectory() as runs:
        client = create_app(runs).server.test_client()
        times: dict[str, list[float]] = {user: [] for user in users}
        shuffle = random.Random(7).shuffle
        for number in range(rounds):
            order = list(users)
            shuffle(order)
            for user in order:
                started = time.thread_time()
                status = client.get("/_dash-layout", headers=basic(user, f"wrong-{number}")).status_code
                times[user].append(time.thread_time() - started)
                assert status == 401, status
    return {user: statistics.median(values) for user, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as folder:
        cases = {"shared password": ({"LSTM_LENS_USERS": "ada,grace", "LSTM_LENS_PASSWORD": "correct horse"},
                                     ["ada", "mallory"])}
        for label, methods in {"pbkdf2 file": ("pbkdf2:sha256:200000",) * 2,
                               "scrypt + pbkdf2 file": ("scrypt", "pbkdf2:sha256:200000")}.items():
            path = Path(folder) / label.replace(" ", "-")
            path.write_text(f"ada:{generate_password_hash('s3cret', method=methods[0])}\n"
                            f"grace:{generate_password_hash('other', method=methods[1])}\n")
            cases[label] = ({"LSTM_LENS_AUTH_FILE": str(path)}, ["ada", "grace", "mallory"])
        print(f"load average {os.getloadavg()[0]:.1f}; {rounds} rounds; CPU ms per failed login (median)")
        for label, (environ, users) in cases.items():
            result = medians(environ, users, rounds)
            spread = max(result.values()) / min(result.values()) - 1
            cells = ", ".join(f"{user} {value * 1e3:.1f}" for user, value in result.items())
            print(f"  {label:22s} {cells}   spread {spread:.1%}")


if __name__ == "__main__":
    main()
