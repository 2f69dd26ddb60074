"""`tagship config`: the merged configuration, secrets masked, and where each value came from."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from tagship.builders.command import MASK
from tagship.config import Config
from tagship.output import Output

# (key path as in tagship.toml, value as JSON has it, source: default, tagship.toml, environments.NAME or a variable)
Row = tuple[str, Any, str]
WIDTH = 56  # the sources line up, except after a longer value


def show(config: Config, out: Output) -> None:
    """Print one line per value (`key = value  # source`), or one JSON result with --json."""
    out.add_secret(config.registry.password)  # the rows never hold a secret; this is the second lock
    for webhook in config.notify:
        out.add_secret(webhook.url)
    found = rows(config)
    width = min(WIDTH, max(len(f"{key} = {json.dumps(value)}") for key, value, _ in found))
    lines = [f"{f'{key} = {json.dumps(value)}':<{width}}  # {source}" for key, value, source in found]
    out.result(
        "configuration" if out.json_mode else "\n".join(lines),  # JSON: the values below, not the text
        file=config.source,
        environment=config.environment,
        environments=list(config.environments),
        values={key: {"value": value, "source": source} for key, value, source in found},
    )


def rows(config: Config) -> list[Row]:
    """Every value of the config with its source, in the order of the README's tagship.toml."""
    found: list[Row] = [
        ("environment", config.environment, config.source_of("environment")),
        ("servers", [{"host": s.raw, "path": s.path} for s in config.servers], config.source_of("servers")),
    ]
    sections = (
        ("app", config.app),
        ("env", config.env),
        ("image", config.image),
        ("registry", config.registry),
        ("ssh", config.ssh),
        ("proxy", config.proxy),
        ("health", config.health),
        ("releases", config.releases),
        ("hooks", config.hooks),
        ("hooks.local", config.local_hooks),
        ("verify", config.verify),
        *((f"notify[{number}]", webhook) for number, webhook in enumerate(config.notify)),
    )
    for section, values in sections:
        found += _table(config, section, values)
    return found


def _table(config: Config, section: str, values: Any) -> list[Row]:
    found: list[Row] = []
    for item in dataclasses.fields(values):
        key, value = f"{section}.{item.name}", getattr(values, item.name)
        if item.metadata.get("secret"):
            value = MASK if value else ""
        if key == "image.build_args" and value:  # a table: each variable has its own source
            found += [(f"{key}.{name}", text, config.source_of(f"{key}.{name}")) for name, text in value]
            continue
        found.append((key, _plain(value), config.source_of(key)))
    return found


def _plain(value: Any) -> Any:
    """Tuples as lists (pairs as a table), as JSON and TOML show them."""
    if isinstance(value, tuple):
        if value and all(isinstance(v, tuple) and len(v) == 2 for v in value):
            return dict(value)
        return [_plain(v) for v in value]
    return value
