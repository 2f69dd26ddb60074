"""Pure edits of a Compose .env file: change one key's line, keep every other byte."""

from __future__ import annotations

import re

from tagship.builders import scripts
from tagship.builders.command import Command, sh

ABSENT = 3  # exit code of the read script when the file does not exist


_ASSIGN = re.compile(r"^(\s*(?:export\s+)?)([^\s=#]+)(\s*=\s*)(.*?)(\r?)$")


def _lines(text: str) -> list[str]:
    # Only "\n" ends a line in a .env file (str.splitlines would also split on \x0b, \u2028 …).
    return re.findall(r"[^\n]*\n|[^\n]+$", text)


def _closing(rest: str, quote: str) -> int:
    """Where the quote that opened a value closes in rest (-1: not in rest); in double quotes a
    backslash escapes the next character."""
    i = 0
    while i < len(rest):
        if quote == '"' and rest[i] == "\\":
            i += 2
            continue
        if rest[i] == quote:
            return i
        i += 1
    return -1


def _assignments(lines: list[str]) -> list[tuple[int, int, re.Match[str]]]:
    """(first line, last line, match) of each KEY=value, as Compose reads them: a quoted value that
    closes on a later line spans those lines, which are its text and never a key of their own. A
    quote that never closes is taken as a one-line value (Compose refuses such a file anyway)."""
    found = []
    i = 0
    while i < len(lines):
        body = lines[i].rstrip("\n")
        match = _ASSIGN.match(body)
        last = i
        if match:
            raw = match.group(4)
            if raw[:1] in ("'", '"') and _closing(raw[1:], raw[0]) < 0:
                for j in range(i + 1, len(lines)):
                    if _closing(lines[j], raw[0]) >= 0:
                        last = j
                        break
            found.append((i, last, match))
        i = last + 1
    return found


def _with_value(raw: str, value: str) -> str:
    """raw (what follows `=`) with its value replaced and its quoting and inline comment kept."""
    quote = raw[:1]
    if quote in ("'", '"'):
        end = _closing(raw[1:], quote)
        return quote + value + quote + (raw[end + 2 :] if end >= 0 else "")
    comment = re.search(r"\s+#", raw)
    return value + (raw[comment.start() :] if comment else "")


# A value Compose reads the same without quotes: no space, quote, `#`, `$`, backslash or control character.
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9_./:@%+,=^~!?*&()\[\]{}<>|;-]*")


def encode(value: str) -> str:
    """value as a .env value Compose reads back exactly: bare when plain, in single quotes (literal)
    when it holds no single quote or newline and does not end with a backslash, else in double
    quotes with each backslash, double quote, dollar sign and newline escaped by a backslash.

    A carriage return or NUL has no encoding Compose reads back: the caller refuses such values.
    """
    if value and _PLAIN_VALUE.fullmatch(value):  # empty: '' (KEY= # note would read "# note")
        return value
    # Compose ends a single-quoted value at a quote a backslash does not precede: no trailing backslash.
    if "'" not in value and "\n" not in value and not value.endswith("\\"):
        return f"'{value}'"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("\n", "\\n")
    return f'"{escaped}"'


def decode(written: str) -> str:
    """The value Compose reads from a value as written (the inverse of encode): in double quotes a
    backslash escapes a backslash, a double quote or a dollar sign, and `\\n` is a newline."""
    if len(written) >= 2 and written[0] == written[-1] == '"':
        return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), written[1:-1], flags=re.S)
    return _unquote(written)


def set_encoded(text: str, key: str, encoded: str) -> str:
    """text with KEY's value replaced by encoded (see encode): quoting and all; export, spacing,
    inline comment and line ending kept, every other byte kept."""
    return set_value(text, key, encoded, whole=True)


def set_value(text: str, key: str, value: str, *, whole: bool = False) -> str:
    """Return text with KEY set to value: lines defining KEY are rewritten (their `export`, spacing,
    quotes, inline comment and line ending kept), every other byte is kept. whole: value is an
    encoded value that replaces the old one's quotes too."""
    lines = _lines(text)
    found = False
    for first, last, match in reversed(_assignments(lines)):
        if match.group(2) != key:
            continue
        found = True
        raw = match.group(4)
        if last > first:  # a multi-line value: its last line holds the closing quote and what follows
            closing = lines[last].rstrip("\n")
            end = _closing(closing, raw[0])
            raw = raw[0] + raw[0] + closing[end + 1 :].removesuffix("\r")
        ending = lines[last][len(lines[last].rstrip("\n")) :]
        carriage = "\r" if lines[last].rstrip("\n").endswith("\r") else ""
        new = _replaced(raw, value) if whole else _with_value(raw, value)
        lines[first : last + 1] = [match.group(1) + key + match.group(3) + new + carriage + ending]
    if not found:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines.append(f"{key}={value}\n")
    return "".join(lines)


def _replaced(raw: str, encoded: str) -> str:
    """raw (what follows `=`) with its whole value, quotes included, replaced; its inline comment kept."""
    quote = raw[:1]
    if quote in ("'", '"'):
        end = _closing(raw[1:], quote)
        return encoded + (raw[end + 2 :] if end >= 0 else "")
    comment = re.search(r"\s+#", raw)
    return encoded + (raw[comment.start() :] if comment else "")


def written_values(text: str) -> dict[str, str]:
    """Every KEY and its value as written (quotes and escapes included, inline comment left out), the
    last definition winning: set_encoded puts it on another .env's line, where Compose reads it as
    it would have read it here."""
    lines = _lines(text)
    found: dict[str, str] = {}
    for first, last, match in _assignments(lines):
        raw = match.group(4)
        if last > first:
            whole = "".join(lines[first : last + 1])[len(match.group(1) + match.group(2) + match.group(3)) :]
            raw = whole.rstrip("\n").removesuffix("\r")
        quote = raw[:1]
        if quote in ("'", '"'):
            end = _closing(raw[1:], quote)
            found[match.group(2)] = raw[: end + 2] if end >= 0 else raw
        else:
            found[match.group(2)] = re.split(r"\s+#", raw, maxsplit=1)[0].strip()
    return found


def get_value(text: str, key: str) -> str | None:
    """The value of KEY as Compose reads it (last definition wins), or None."""
    lines = _lines(text)
    value: str | None = None
    for first, last, match in _assignments(lines):
        if match.group(2) == key:
            raw = (
                match.group(4)
                if last == first
                else "".join(lines[first : last + 1])[len(match.group(1) + key + match.group(3)) :]
            )
            value = _unquote(raw.strip())
    return value


def _unquote(raw: str) -> str:
    quote = raw[:1]
    if quote in ("'", '"'):
        end = _closing(raw[1:], quote)
        if end >= 0:
            return raw[1 : end + 1]
    # An unquoted value ends at " #" (an inline comment).
    return re.split(r"\s+#", raw, maxsplit=1)[0].strip()


_READ = scripts.load("envfile_read")
# Write stdin to FILE atomically (temporary file beside it, old mode and owner kept, then rename).
_WRITE = scripts.load("envfile_write")


def read(path: str) -> Command:
    """Print the file; exit 3 if it does not exist."""
    return sh(_READ, path, name="read file")


def write(path: str, content: str | bytes, note: str, new_mode: int = 0o600, *, private: bool = False) -> Command:
    """Replace the file atomically with content (mode and owner kept; new_mode if new: .env may hold
    secrets). private: group and others lose every access to it, whatever its old mode."""
    data = content.encode() if isinstance(content, str) else content
    args = (path, format(new_mode, "o"), *(("private",) if private else ()))
    return sh(_WRITE, *args, name="atomic write", stdin=data, stdin_note=note)
