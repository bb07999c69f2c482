"""The toolkit's errors. The command-line programs catch ``NmtError`` (and ``OSError``) and print
its message; anything else is a bug and keeps its traceback."""
from __future__ import annotations


class NmtError(Exception):
    """A problem the user can fix: bad input, a bad setting, an unusable file. The message says
    which file, line or config key, and what is wrong."""


class ConfigError(NmtError, ValueError):
    """An invalid setting or option; the message names the key."""
