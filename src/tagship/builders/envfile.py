"""Pure edits of a Compose .env file: change one key's line, keep every other byte."""

from __future__ import annotations

import re

from tagship.builders import scripts
from tagship.builders.command import Command, sh

ABSENT = 3  # exit code of the read script when the file does not exist


def _key_re(key: str) -> re.Pattern[str]:
    return re.compile(rf"^(\s*(?:export\s+)?{re.escape(key)}\s*=)(.*?)(\r?)$")


def set_value(text: str, key: str, value: str) -> str:
    """Return text with KEY set to value: lines defining KEY are rewritten, others kept as they are."""
    pattern = _key_re(key)
    # Only "\n" ends a line in a .env file (str.splitlines would also split on \x0b, \u2028 …).
    lines = re.findall(r"[^\n]*\n|[^\n]+$", text)
    found = False
    for i, line in enumerate(lines):
        body = line.rstrip("\n")
        match = pattern.match(body)
        if match:
            found = True
            lines[i] = f"{match.group(1)}{value}{match.group(3)}" + line[len(body) :]
    if not found:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines.append(f"{key}={value}\n")
    return "".join(lines)


def get_value(text: str, key: str) -> str | None:
    """The value of KEY as Compose reads it (last definition wins), or None."""
    pattern = _key_re(key)
    value: str | None = None
    for line in text.split("\n"):
        match = pattern.match(line)
        if match:
            value = _unquote(match.group(2).strip())
    return value


def _unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    # An unquoted value ends at " #" (an inline comment).
    return re.split(r"\s+#", raw, maxsplit=1)[0].strip()


_READ = scripts.load("envfile_read")
# Write stdin to FILE atomically (temporary file beside it, old mode and owner kept, then rename).
_WRITE = scripts.load("envfile_write")


def read(path: str) -> Command:
    """Print the file; exit 3 if it does not exist."""
    return sh(_READ, path, name="read file")


def write(path: str, content: str, note: str, new_mode: int = 0o600) -> Command:
    """Replace the file atomically with content (mode and owner kept; new_mode if new: .env may hold secrets)."""
    return sh(_WRITE, path, format(new_mode, "o"), name="atomic write", stdin=content.encode(), stdin_note=note)
