"""Pydantic's validation errors as tagship's problems: `servers[1].host: must be a string`, from the catalog.

Pydantic's own English never reaches users: every error type validation can give is mapped to a
message of messages/config.toml (values.py and model.py raise their own types, named as the
messages are); one it should not give still says which key, and what kind of error, in their language.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import ValidationError

from tagship.messages import t

# Error type -> message id. The custom types are values.py's and model.py's; the others pydantic's own.
MESSAGES = {
    # pydantic's
    "string_type": "config.string_type",
    "bool_type": "config.bool_type",
    "tuple_type": "config.list_type",
    "list_type": "config.list_type",
    "dict_type": "config.table_type",
    "dataclass_type": "config.table_type",
    "dataclass_args_type": "config.table_type",
    "unexpected_keyword_argument": "config.unknown_key",
    "missing": "config.missing",
    # tagship's
    "unknown_key": "config.unknown_key",
    "control_character": "config.control_character",
    "too_long": "config.too_long",
    "number_type": "config.number_type",
    "number_range": "config.number_range",
    "whole_number": "config.whole_number",
    "one_of": "config.one_of",
    "blank": "config.blank",
    "project_path": "config.project_path",
    "variable_name": "config.variable_name",
    "docker_name": "config.docker_name",
    "image_name": "config.image_name",
    "image_reference": "config.image_reference",
    "host_name": "config.host_name",
    "platform": "config.platform",
    "registry_address": "config.registry_address",
    "environment_name": "config.environment_name",
    "health_path": "config.health_path",
    "http_url": "config.http_url",
    "batch": "config.batch",
    "batch_type": "config.batch_type",
    "server_entry": "config.server_entry",
    "notify_shape": "config.notify_shape",
}


def key_path(location: tuple[Any, ...]) -> str:
    """A location as tagship.toml's key path: ("servers", 1, "host") is servers[1].host."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.startswith("<") or part == "[key]":
            continue  # a union member's tag, or "the key itself" of a table: not a key of the file
        elif part.replace("_", "a").replace("-", "a").isalnum() and part.isascii():
            path += f".{part}" if path else part
        else:  # a key TOML has to quote: quoted, and cut
            path += f".{part!r:.80}" if path else f"{part!r:.80}"
    return path


def problems(error: ValidationError, where: tuple[Any, ...] = ()) -> Iterator[str]:
    """Each error of a validation as one problem line, its key path starting at where."""
    for item in error.errors(include_url=False, include_input=False):
        path = key_path((*where, *item["loc"]))
        message_id = MESSAGES.get(item["type"])
        if message_id is None:  # not a type this config can give today: still no raw English
            yield f"{path}: {t('config.invalid', kind=item['type'])}"
        else:
            yield f"{path}: {t(message_id, **item.get('ctx', {}))}"
