"""Text read back from a server (history, lock holder, listings) is untrusted: printable forms of it.

Anyone who can write a file on a server must not be able to move the user's cursor, rewrite their
terminal's title, or forge lines of tagship's output through a version or a deployer's name.
"""

from __future__ import annotations

import re

# C0 controls (newline and ESC among them), DEL and the C1 controls (some terminals take \x9b for ESC [),
# and the bidirectional-text controls (embeddings, overrides, isolates, marks): a right-to-left
# override from a server would make "v1.2" show as something else, or reorder the rest of a line
# ("Trojan Source", CVE-2021-42574).
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
CONTROL_RE = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f{_BIDI}]")
_CONTROL_BUT_LINES_RE = re.compile(f"[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f{_BIDI}]")  # newline and tab kept
SHOWN_LIMIT = 200  # a 5 MB name from a server is cut, not printed


def _escaped(found: re.Match[str]) -> str:
    return repr(found.group())[1:-1]  # "\x1b", "\n", "\x9b", "\u202e"


def printable(text: str, limit: int = SHOWN_LIMIT) -> str:
    """One field for a line of output: every control character shown as an escape, cut to limit characters."""
    cut = text if len(text) <= limit else text[:limit] + "…"
    return CONTROL_RE.sub(_escaped, cut)


def terminal_text(text: str) -> str:
    """Whole lines for the terminal: control characters other than newline and tab shown as escapes."""
    return _CONTROL_BUT_LINES_RE.sub(_escaped, text)
