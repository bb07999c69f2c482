"""SIGINT / SIGTERM: finish the current update, save last.pt, stop."""
from __future__ import annotations

import logging
import signal

log = logging.getLogger("nmt.train")

_SIGINT = {"seen": False}


def watch_sigint() -> None:
    """For a program's start-up: Ctrl-C raises KeyboardInterrupt as usual, and is remembered. Python
    ignores an exception raised inside a finaliser (``__del__``), and a library may turn one raised
    inside an import into another error; the remembered Ctrl-C is still honoured where training
    begins (``StopSignal``) and reported as the interruption (``interrupted_by_user``)."""
    def handle(signum, frame):
        _SIGINT["seen"] = True
        raise KeyboardInterrupt
    signal.signal(signal.SIGINT, handle)


def interrupted_by_user() -> bool:
    return _SIGINT["seen"]


class StopSignal:
    """First SIGINT/SIGTERM asks the loop to save and stop; a second SIGINT interrupts at once."""

    def __init__(self):
        self.requested, self._old = False, {}

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("received %s: saving last.pt and stopping after this update", signal.Signals(signum).name)

    def __enter__(self):
        if interrupted_by_user():  # a Ctrl-C during start-up that something swallowed: stop before training
            raise KeyboardInterrupt
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
