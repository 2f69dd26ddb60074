"""Text read back from a server (history, lock holder, listings) is untrusted: printable forms of it.

Anyone who can write a file on a server must not be able to move the user's cursor, rewrite their
terminal's title, or forge lines of tagship's output through a version or a deployer's name.
"""

from __future__ import annotations

import re

# C0 controls (newline and ESC among them), DEL and the C1 controls (some terminals take \x9b for ESC [).
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_LINES_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # newline and tab kept
SHOWN_LIMIT = 200  # a 5 MB name from a server is cut, not printed


def _escaped(found: re.Match[str]) -> str:
    return repr(found.group())[1:-1]  # "\x1b", "\n", "\x9b"


def printable(text: str, limit: int = SHOWN_LIMIT) -> str:
    """One field for a line of output: every control character shown as an escape, cut to limit characters."""
    cut = text if len(text) <= limit else text[:limit] + "…"
    return CONTROL_RE.sub(_escaped, cut)


def terminal_text(text: str) -> str:
    """Whole lines for the terminal: control characters other than newline and tab shown as escapes."""
    return _CONTROL_BUT_LINES_RE.sub(_escaped, text)
