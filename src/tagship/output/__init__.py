"""The only writer to the terminal: `Output` (plain lines, the --json event stream) and, on a terminal,
the live progress view (`live.py`, imported only when a terminal shows it)."""

from tagship.output.terminal import Output

__all__ = ["Output"]
