"""Progress reporting shared by the pipeline's stages: tqdm bars and one-line notes, or silence.

Stages take a ``Progress`` (never None) so that the command line decides what the user sees.
"""

from __future__ import annotations

import sys

from tqdm import tqdm


class Progress:
    """Hands out progress bars and prints notes on stderr; ``quiet=True`` silences both."""

    def __init__(self, quiet: bool = False, stream=None):
        self.quiet = quiet
        self.stream = stream if stream is not None else sys.stderr

    def bar(self, total: int, desc: str, unit: str = "it") -> tqdm:
        """A tqdm bar; use it as a context manager and call ``update``/``set_postfix`` on it."""
        return tqdm(total=total, desc=desc, unit=unit, disable=self.quiet, file=self.stream,
                    dynamic_ncols=True, leave=False)

    def note(self, message: str) -> None:
        if not self.quiet:
            print(message, file=self.stream, flush=True)


QUIET = Progress(quiet=True)
