"""SIGINT / SIGTERM: finish the current update, save last.pt, stop."""
from __future__ import annotations

import logging
import signal

log = logging.getLogger("nmt.train")


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
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
