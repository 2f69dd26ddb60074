"""Every user-facing message, by id, in English and Chinese: the one catalog.

Messages live in TOML files beside this module, one file per area (`deploy.toml`, `config.toml`,
...). A table's name inside a file is the rest of the id: `[locked]` in `deploy.toml` is
`deploy.locked`. Each table has an `en` and a `zh` text, `str.format` templates with the same
named fields (`{server}`); a unit test fails if either is missing or their fields differ.

The language is chosen once, at start: `--lang`, else the POSIX variables `LC_ALL`,
`LC_MESSAGES`, `LANG` (the first one set wins; `zh*` is Chinese, anything else English).
"""

from __future__ import annotations

import tomllib
import unicodedata
from collections.abc import Mapping
from functools import cache
from importlib import resources

LANGUAGES = ("en", "zh")
DEFAULT = "en"

# The one piece of process-wide state: the language is a property of the terminal the user sits
# at, chosen once by the CLI before anything is said, like the locale itself.
_chosen = [DEFAULT]


def language_from(environ: Mapping[str, str]) -> str:
    """The language the POSIX locale variables ask for, as gettext reads them."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name, "")
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return DEFAULT


def choose(lang: str | None, environ: Mapping[str, str]) -> str:
    """Set the language for this run: `lang` (from --lang) wins over the environment."""
    chosen = lang if lang else language_from(environ)
    if chosen not in LANGUAGES:
        chosen = DEFAULT
    _chosen[0] = chosen
    return chosen


def current() -> str:
    """The language messages are written in now."""
    return _chosen[0]


@cache
def catalog() -> dict[str, dict[str, str]]:
    """Every message: id -> {language: template}, read from the package's TOML files."""
    found: dict[str, dict[str, str]] = {}
    for entry in sorted(resources.files(__package__).iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        area = entry.name.removesuffix(".toml")
        for key, texts in tomllib.loads(entry.read_text(encoding="utf-8")).items():
            found[f"{area}.{key}"] = {lang: str(text) for lang, text in texts.items()}
    return found


def t(message_id: str, /, **fields: object) -> str:
    """The message `message_id` in the chosen language, its `{fields}` filled in."""
    texts = catalog()[message_id]  # an unknown id is a bug: the catalog test lists every id used
    template = texts.get(current()) or texts[DEFAULT]
    return template.format(**fields)


def width(text: str) -> int:
    """Columns text takes in a terminal: a Chinese character takes two (tables line up in both languages)."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def pad(text: str, columns: int, *, right: bool = False) -> str:
    """text padded with spaces to fill columns (aligned right if asked)."""
    spaces = " " * max(0, columns - width(text))
    return spaces + text if right else text + spaces
