"""`tagship config`: the merged configuration, secrets masked, and where each value came from;
`tagship config schema`: the JSON Schema of tagship.toml; and the configuration reference made from it.

`python3 -m tagship.commands.config > docs/config-reference.md` writes the reference again (a unit
test fails when the committed one differs).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from pydantic import TypeAdapter

from tagship.builders.command import MASK
from tagship.config import Config
from tagship.config.model import TagshipFile
from tagship.config.values import plain_number
from tagship.messages import t
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
        t("config.result_configuration") if out.json_mode else "\n".join(lines),  # JSON: the values below, not the text
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
        if dataclasses.is_dataclass(value):
            continue  # a table inside (hooks.local): it has rows of its own
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


# ---- the schema, and the reference made from it ----------------------------------------------------

DRAFT = "https://json-schema.org/draft/2020-12/schema"


def show_schema(out: Output) -> None:
    """Print the JSON Schema of tagship.toml; with --json, one result event holding it."""
    out.result(t("config.result_schema") if out.json_mode else schema().rstrip("\n"), schema=schema_data())


def schema() -> str:
    """The JSON Schema (draft 2020-12) of tagship.toml, as editors and `tagship config schema` take it."""
    return json.dumps(schema_data(), indent=2, ensure_ascii=False) + "\n"


def schema_data() -> dict[str, Any]:
    """The JSON Schema of tagship.toml as data: generated from the config's types and their docstrings."""
    found = TypeAdapter(TagshipFile).json_schema()
    _tidy(found, found["$defs"])
    return {"$schema": DRAFT, "title": "tagship.toml", **{k: v for k, v in found.items() if k != "title"}}


def _tidy(node: Any, defs: dict[str, Any]) -> None:
    """Drop pydantic's made-up titles ("Url Env"); give a table's key the description of its table."""
    if isinstance(node, list):
        for item in node:
            _tidy(item, defs)
    if not isinstance(node, dict):
        return
    if "description" in node:  # docstrings wrap; editors and tables want one line
        node["description"] = " ".join(node["description"].split())
    for key, prop in node.get("properties", {}).items():
        prop.pop("title", None)
        if "patternProperties" in prop:
            prop["additionalProperties"] = False  # a name of another shape is refused too
        if prop.get("type") == "object" and prop.get("default") == []:
            prop["default"] = {}  # a table of variables, kept as pairs in Python
        if "description" not in prop and "$ref" in prop:
            prop["description"] = defs[prop["$ref"].rsplit("/", 1)[-1]]["description"]
        if "description" not in prop:  # a key of a base table ([environments.NAME] is the file's keys)
            prop["description"] = defs.get("Overlay", {}).get("properties", {}).get(key, {}).get("description", "")
    for value in node.values():
        _tidy(value, defs)


REFERENCE_HEAD = """# Configuration reference: `tagship.toml`

Every key tagship reads, with its type, default and allowed values. This file is generated from
tagship.toml's JSON Schema (`tagship config schema`, itself made from the config's types in
`src/tagship/config/model.py`) by `python3 -m tagship.commands.config > docs/config-reference.md`;
a unit test fails when it differs, so edit the docstrings there, not this file. Unknown keys and
values of the wrong type or shape are refused (exit 2), each named by its key path, all at once.
README.md ("Configuration") shows them in an example file; docs/environments.md explains
`[environments.NAME]` and the variables that override the file.

## Editors

Point your editor at the schema and it completes keys and flags mistakes as you type. Write it to a
file once (again after upgrading tagship):

```sh
tagship config schema > .tagship.schema.json
```

With Even Better TOML (VS Code) or any editor using taplo, name it in tagship.toml's first line:

```toml
#:schema ./.tagship.schema.json
```

or once for the repository, in `.taplo.toml`:

```toml
[[rule]]
include = ["**/tagship.toml"]
schema = { path = "./.tagship.schema.json" }
```
"""


def reference() -> str:
    """docs/config-reference.md: every key of the schema, table by table, with type, default and description."""
    data = schema_data()
    defs = data["$defs"]
    parts = [REFERENCE_HEAD, _reference_table("Top level", data, defs, "the keys before the first [table]")]
    for key, prop in data["properties"].items():
        for name, table, note in _tables_of(key, prop, defs):
            parts.append(_reference_table(name, table, defs, note))
            if key == "environments":
                continue  # its tables are the ones above
            for inner, inner_prop in table.get("properties", {}).items():
                if "$ref" in inner_prop:
                    parts.append(_reference_table(f"[{key}.{inner}]", _def(inner_prop, defs), defs, ""))
    return "\n".join(parts)


def _def(prop: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = defs[prop["$ref"].rsplit("/", 1)[-1]]
    return found


def _tables_of(key: str, prop: dict[str, Any], defs: dict[str, Any]) -> list[tuple[str, dict[str, Any], str]]:
    """The tables a top-level key holds, each with a heading and a note."""
    if "$ref" in prop:
        return [(f"[{key}]", _def(prop, defs), "")]
    if key == "servers":
        return [("Servers as tables", defs["ServerTable"], "`servers = [{ host = ..., path = ... }]`")]
    if key == "notify":
        return [("[notify] or [[notify]]", defs["Webhook"], "set `url` or `url_env`")]
    if key == "environments":
        return [("[environments.NAME]", defs["Overlay"], "NAME: letters, digits, _ and -, at most 64")]
    return []


def _reference_table(title: str, table: dict[str, Any], defs: dict[str, Any], note: str) -> str:
    lines = [f"## {title}", ""]
    about = " ".join(part for part in (table.get("description", ""), f"({note})" if note else "") if part)
    if about and title != "Top level":
        lines += [about, ""]
    elif note:
        lines += [f"{note[0].upper()}{note[1:]}.", ""]
    lines += ["| Key | Type | Default | Description |", "|---|---|---|---|"]
    required = set(table.get("required", []))
    for key, prop in table.get("properties", {}).items():
        default = "required" if key in required else _default(prop)
        about = prop.get("description", "").replace("|", "\\|")
        lines.append(f"| `{key}` | {_type(prop, defs)} | {default} | {about} |")
    return "\n".join(lines) + "\n"


def _default(prop: dict[str, Any]) -> str:
    if "default" not in prop:
        return "see description" if "$ref" not in prop else "(table)"
    return f"`{json.dumps(prop['default'], ensure_ascii=False)}`"


def _type(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    """A schema node as words: its type and the values it allows."""
    if "$ref" in prop:
        return "table"
    if "oneOf" in prop:
        return " or ".join(_type(choice, defs) for choice in prop["oneOf"])
    kind = prop.get("type")
    if "enum" in prop:
        return "one of " + ", ".join(f"`{value}`" for value in prop["enum"])
    if kind in ("number", "integer"):
        word = "whole number" if kind == "integer" else "number"
        return f"{word}, {plain_number(prop['minimum'])} to {plain_number(prop['maximum'])}"
    if kind == "array":
        return f"list of: {_type(prop['items'], defs)}"
    if kind == "object":
        values = list(prop.get("patternProperties", {}).values())
        if values and "$ref" in values[0]:
            return "table of tables"
        return "table of strings (NAME = value)" if values else "table"
    if kind == "boolean":
        return "true or false"
    return "string" + "".join(f" such as {json.dumps(example)}" for example in prop.get("examples", [])[:1])


if __name__ == "__main__":
    print(reference(), end="")
