"""Signal state for viewer subprocesses that a test interrupts with SIGINT."""

from __future__ import annotations

import signal


def sigint_as_from_a_terminal() -> None:
    """In the child before exec: SIGINT neither ignored nor blocked. Within the whole suite the
    test process may have either state (left by an earlier test's libraries), and a child
    inherits both, so it would never see the test's SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
