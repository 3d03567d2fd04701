"""Progress bars: tqdm, refreshed less often when stderr is a log file rather than a terminal."""

from __future__ import annotations

import sys

from tqdm import tqdm


def progress(iterable=None, **kwargs) -> tqdm:
    """A tqdm bar; off a terminal it redraws at most every 10 s so logs stay readable."""
    if not sys.stderr.isatty():
        kwargs.setdefault("mininterval", 10.0)
    return tqdm(iterable, **kwargs)
