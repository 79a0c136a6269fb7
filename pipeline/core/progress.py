"""Progress reporting shared by the pipeline's stages: tqdm bars and one-line notes, or silence.

Stages take a ``Progress`` (never None) so that the command line decides what the user sees. On a
terminal a stage shows a tqdm bar; elsewhere (``docker logs``, a CI log, a file) a bar's carriage
returns would fill the log, so it prints a plain line every 10 % instead (``PlainBar``).
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm


class PlainBar:
    """What ``Progress.bar`` gives off a terminal: the tqdm calls the stages use (``update``,
    ``set_postfix``, a context manager), printing ``desc: 30% (3/10 epoch, 12 s) loss=...`` lines."""

    def __init__(self, total: int, desc: str, unit: str, stream):
        self.total, self.desc, self.unit, self.stream = max(int(total), 0), desc, unit, stream
        self.n, self.postfix, self._shown, self._start = 0, "", -1, time.monotonic()

    def update(self, n: int = 1) -> None:
        self.n += n
        tenth = 10 if self.total == 0 else min(10, self.n * 10 // self.total)
        if tenth > self._shown:
            self._shown = tenth
            extra = f" {self.postfix}" if self.postfix else ""
            print(f"{self.desc}: {tenth * 10}% ({self.n:,}/{self.total:,} {self.unit}, "
                  f"{time.monotonic() - self._start:.0f} s){extra}", file=self.stream, flush=True)

    def set_postfix(self, ordered_dict=None, refresh: bool = True, **values) -> None:
        values = {**(ordered_dict or {}), **values}
        self.postfix = ", ".join(f"{key}={value}" for key, value in values.items())

    def close(self) -> None:
        pass

    def __enter__(self) -> PlainBar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Progress:
    """Hands out progress bars and prints notes on stderr; ``quiet=True`` silences both."""

    def __init__(self, quiet: bool = False, stream=None):
        self.quiet = quiet
        self.stream = stream if stream is not None else sys.stderr

    def bar(self, total: int, desc: str, unit: str = "it") -> tqdm | PlainBar:
        """A tqdm bar (a ``PlainBar`` when the stream is not a terminal); use it as a context
        manager and call ``update``/``set_postfix`` on it."""
        if not self.quiet and not _is_terminal(self.stream):
            return PlainBar(total, desc, unit, self.stream)
        return tqdm(total=total, desc=desc, unit=unit, disable=self.quiet, file=self.stream,
                    dynamic_ncols=True, leave=False)

    def note(self, message: str) -> None:
        if not self.quiet:
            print(message, file=self.stream, flush=True)


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


QUIET = Progress(quiet=True)
