"""The kinds of value tagship.toml holds: annotations pydantic validates with, and writes JSON Schema from.

Each kind refuses a value with a PydanticCustomError whose type names a message of the catalog
(messages/config.toml, see problems.py) and whose context fills it. Values that reach argv, remote
paths, compose files or Caddy's config are refused unless they have the shape of what they name: a
name with a newline or a leading "-" is a mistake or an attack.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Annotated, Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler, GetPydanticSchema, Strict
from pydantic_core import PydanticCustomError, core_schema

MAX_TEXT = 1000  # names, paths, addresses
MAX_LINES = 10_000  # commands and build arguments
MAX_NUMBER = 1_000_000  # seconds (11 days), counts, ports: beyond it a typo, and time.sleep overflows
_CONTROL = "\\x00-\\x1f\\x7f-\\x9f"
_LINES_CONTROL = "\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f"  # tabs and newlines allowed
_CONTROL_RE = re.compile(f"[{_CONTROL}]")
_LINES_CONTROL_RE = re.compile(f"[{_LINES_CONTROL}]")
VARIABLE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

Check = Callable[[str], str]


def shown(value: object) -> str:
    """A refused value as a message shows it: quoted, and cut where a pasted file would flood the screen."""
    return f"{value!r:.80}"


def _strict_str(validate: Callable[[Any], Any]) -> core_schema.CoreSchema:
    # validate sees the raw value first; what is not a string goes on to be refused as not a string.
    return core_schema.no_info_before_validator_function(validate, core_schema.str_schema(strict=True))


@dataclass(frozen=True)
class Plain:
    """A string with no control character (lines: tabs and newlines allowed), not absurdly long, of the
    shape check wants ("" is not checked, it leaves a key unset, unless required); regex is that shape as
    JSON Schema says it."""

    check: Check | None = None
    regex: str = ""
    lines: bool = False
    required: bool = False

    def validate(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        found = (_LINES_CONTROL_RE if self.lines else _CONTROL_RE).search(value)
        if found:
            # The value itself is not shown: it may be a secret (a webhook URL, say).
            raise PydanticCustomError("control_character", "", {"found": repr(found.group()), "at": found.start() + 1})
        limit = MAX_LINES if self.lines else MAX_TEXT
        if len(value) > limit:
            raise PydanticCustomError("too_long", "", {"limit": limit, "length": len(value)})
        return self.check(value) if self.check and (value or self.required) else value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return _strict_str(self.validate)

    def __get_pydantic_json_schema__(self, schema: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        found: dict[str, Any] = handler(schema)
        # No control character anywhere: said first, as a lookahead, since "$" also matches before a
        # final newline in some regex engines (Python's, which the jsonschema package uses).
        plain = f"^(?![\\s\\S]*[{_LINES_CONTROL if self.lines else _CONTROL}])"
        shape = f"(?:{self.regex})" if self.regex else "[\\s\\S]*"
        found["pattern"] = f"{plain}{shape}{'' if self.required or not self.regex else '?'}$"
        found["maxLength"] = MAX_LINES if self.lines else MAX_TEXT
        return found


def shaped(regex: re.Pattern[str], error: str) -> Check:
    """A check that the whole value has regex's shape, else the error (a message of the config catalog)."""

    def check(value: str) -> str:
        if not regex.fullmatch(value):
            raise PydanticCustomError(error, "", {"got": shown(value)})
        return value

    return check


def named(regex: re.Pattern[str], error: str) -> Plain:
    """A name of regex's shape ("" for unset), else the error."""
    return Plain(shaped(regex, error), regex.pattern.removeprefix("^").removesuffix("$"))


@dataclass(frozen=True)
class OneOf:
    """One of the allowed strings; another is refused naming them all."""

    allowed: tuple[str, ...]

    def validate(self, value: Any) -> Any:
        if isinstance(value, str) and value not in self.allowed:
            raise PydanticCustomError("one_of", "", {"allowed": ", ".join(self.allowed), "got": shown(value)})
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return _strict_str(self.validate)

    def __get_pydantic_json_schema__(self, schema: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        found: dict[str, Any] = handler(schema)
        found["enum"] = list(self.allowed)
        return found


def plain_number(value: float) -> str:
    """1000000, not 1e+06; 0.1 as it is."""
    return str(int(value)) if float(value).is_integer() else str(value)


@dataclass(frozen=True)
class Range:
    """A finite number from low to high (TOML has nan and inf); whole: an integer (4.0 is 4)."""

    low: float = 0
    high: float = MAX_NUMBER
    whole: bool = False

    def validate(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PydanticCustomError("number_type", "")
        fields = {"low": plain_number(self.low), "high": plain_number(self.high), "got": repr(value)}
        if not self.low <= value <= self.high:  # nan fails every comparison, inf is above high
            raise PydanticCustomError("number_range", "", fields)
        if not self.whole:
            return float(value)
        if not float(value).is_integer():
            raise PydanticCustomError("whole_number", "", fields)
        return int(value)

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(self.validate)

    def __get_pydantic_json_schema__(self, schema: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        return {"type": "integer" if self.whole else "number", "minimum": self.low, "maximum": self.high}


def _project_path(is_file: bool) -> Check:
    """Paths of the repository stay in it: the image and the servers get the project's files, never the
    deploying machine's (~/.ssh/id_rsa as an upload, /etc/environment as env.file)."""

    def check(value: str) -> str:
        pure = PurePosixPath(value)
        if pure.is_absolute() or ".." in pure.parts or value.startswith("~") or (is_file and not pure.parts):
            raise PydanticCustomError("project_path", "", {"got": shown(value)})
        return value

    return check


def _nonblank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "")
    return value


# Inside the project: not absolute, not ~, no .. part (_project_path as JSON Schema says it).
_INSIDE_RE = rf"(?![/~])(?!(?:.*/)?\.\.(?:/|$))[^{_CONTROL}]*"
_NONBLANK_RE = rf"[^{_CONTROL}]*\S[^{_CONTROL}]*"
_NONBLANK_LINES_RE = rf"[^{_LINES_CONTROL}]*\S[^{_LINES_CONTROL}]*"

Text = Annotated[str, Plain()]
Lines = Annotated[str, Plain(lines=True)]
Flag = Annotated[bool, Strict()]
ProjectDir = Annotated[str, Plain(_project_path(is_file=False), _INSIDE_RE)]
ProjectFile = Annotated[str, Plain(_project_path(is_file=True), f"(?=.){_INSIDE_RE}", required=True)]
OptionalProjectFile = Annotated[str, Plain(_project_path(is_file=True), _INSIDE_RE)]  # "": not set
LocalCommand = Annotated[str, Plain(_nonblank, _NONBLANK_RE, required=True)]  # a shell line
Command = Annotated[str, Plain(_nonblank, _NONBLANK_LINES_RE, lines=True, required=True)]  # shlex splits it
VariableName = Annotated[str, named(VARIABLE_RE, "variable_name")]


def _pairs(table: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(table.items()))


def _variables_schema(source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
    names = Annotated[str, Plain(shaped(VARIABLE_RE, "variable_name"), VARIABLE_RE.pattern, required=True)]
    return core_schema.no_info_after_validator_function(_pairs, handler.generate_schema(dict[names, Lines]))


# A table of variables: names as .env and Docker take them, values free text (they travel in argv);
# kept as sorted (name, value) pairs, so the config stays frozen and hashable.
Variables = Annotated[tuple[tuple[str, str], ...], GetPydanticSchema(_variables_schema)]


_BATCH_RE = re.compile(r"([1-9][0-9]{0,5})(%?)")


def batch_size(batch: str, servers: int) -> int | None:
    """Servers per batch out of `servers`: N, or N% rounded up (at least 1); None if batch is not either."""
    found = _BATCH_RE.fullmatch(batch)  # ASCII digits only: int() takes other scripts' digits too
    if not found:
        return None
    number, percent = int(found.group(1)), found.group(2)
    if not percent:
        return number
    if number > 100:
        return None
    return max(1, -(-servers * number // 100))


@dataclass(frozen=True)
class BatchSize:
    """rollout.batch: a whole number of servers (2) or a percentage ("50%"), kept as text."""

    def validate(self, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise PydanticCustomError("batch_type", "")
        if batch_size(str(value), 100) is None:
            raise PydanticCustomError("batch", "", {"got": shown(value)})
        return str(value)

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(self.validate)

    def __get_pydantic_json_schema__(self, schema: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        percent = {"type": "string", "pattern": "^(?:[1-9][0-9]?%|100%|[1-9][0-9]{0,5})$", "examples": ["50%"]}
        return {"oneOf": [{"type": "integer", "minimum": 1, "maximum": 999_999}, percent]}


Batch = Annotated[str, BatchSize()]
