"""tagship.toml's JSON Schema (`tagship config schema`), the reference made from it, and messages
that never show pydantic's own English."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tagship import messages
from tagship.commands import config as config_command
from tagship.commands import demo
from tagship.commands.init import render
from tagship.config import load, problems
from tagship.errors import EXIT_USAGE, ConfigError
from tests.middle import settings

REPO = Path(__file__).resolve().parents[2]
TAGSHIP = [sys.executable, "-m", "tagship"]
SCHEMA = config_command.schema_data()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())


def toml_blocks() -> list[tuple[str, str]]:
    """Every ```toml block of README.md and docs/: each is (a part of) a tagship.toml."""
    found = []
    for path in [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]:
        if path.name in ("config-reference.md", "language.md"):
            continue  # their blocks are .taplo.toml, a comment, and the message catalog's files
        for number, block in enumerate(re.findall(r"```toml\n(.*?)```", path.read_text(), re.S)):
            found.append((f"{path.relative_to(REPO)}#{number}", block))
    return found


def schema_errors(data: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(data)]


def test_the_schema_is_valid_draft_2020_12_with_a_description_on_every_key() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    tables = [SCHEMA, *SCHEMA["$defs"].values()]
    keys = [(key, prop) for table in tables for key, prop in table.get("properties", {}).items()]
    assert len(keys) > 60
    assert [key for key, prop in keys if not prop.get("description")] == []
    assert "password" not in SCHEMA["$defs"]["RegistryConfig"]["properties"], "a secret never sits in the file"


@pytest.mark.parametrize(("where", "block"), toml_blocks(), ids=lambda value: value if "#" in value else "")
def test_every_example_config_in_the_docs_is_valid_by_the_schema(where: str, block: str) -> None:
    assert schema_errors(tomllib.loads(block)) == [], where


def test_the_docs_have_example_configs_to_check() -> None:
    assert len(toml_blocks()) >= 8 and any(w.startswith("README.md") for w, _ in toml_blocks())


def test_the_config_tagship_init_writes_is_valid_by_the_schema_and_loads(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  app:\n    build: .\n    image: app:${APP_IMAGE_TAG}\n")
    environ = {"REMOTE_HOST": "deploy@web1 -p 2022", "REGISTRY_URL": "reg.example:5000", "REMOTE_PROJECT_PATH": "/srv"}
    text = render(tmp_path, environ)
    assert schema_errors(tomllib.loads(text)) == []
    (tmp_path / "tagship.toml").write_text(text)
    assert load(tmp_path, {}).servers[0].port == 2022


def test_the_demos_config_and_the_middle_tiers_are_valid_by_the_schema(tmp_path: Path) -> None:
    demo._write_repo(tmp_path / "repo", tmp_path / "srv", 18080, "caddy:2-alpine", "haproxy:lts-alpine")
    for text in ((tmp_path / "repo" / "tagship.toml").read_text(), settings.CONFIG):
        assert schema_errors(tomllib.loads(text)) == []


BAD = [  # (tagship.toml, where the schema says the error is, the key path load names)
    ('colour = "blue"', ": Additional properties", "colour"),
    ("[app]\nsrvice = 'web'", "app: Additional properties", "app.srvice"),
    ('[ssh]\nconnect_timeout = "soon"', "ssh/connect_timeout", "ssh.connect_timeout"),
    ("[ssh]\nconnect_timeout = 4.5", "ssh/connect_timeout", "ssh.connect_timeout"),
    ("[proxy]\ndrain_timeout = -1", "proxy/drain_timeout", "proxy.drain_timeout"),
    ('[health]\nmode = "tcp"', "health/mode", "health.mode"),
    ('[health]\npath = "health"', "health/path", "health.path"),
    ('[image]\nname = "App"', "image/name", "image.name"),
    ('[app]\nservice = "web\\n"', "app/service", "app.service"),
    ('[app]\nupload = ["../secrets.txt"]', "app/upload/0", "app.upload[0]"),
    ('[env]\nfile = "/etc/environment"', "env/file", "env.file"),
    ("[image.build_args]\n'A B' = '1'", "image/build_args", "image.build_args"),
    ('[rollout]\nbatch = "150%"', "rollout/batch", "rollout.batch"),
    ('[hooks.local]\nafter_deploy = [" "]', "hooks/local/after_deploy/0", "hooks.local.after_deploy[0]"),
    ('[notify]\nformat = "slack"', "notify", "notify.url"),
    ('[notify]\nurl = "ftp://x/y"', "notify", "notify.url"),
    ("servers = [3]", "servers/0", "servers[0]"),
    ('servers = [{ path = "/srv" }]', "servers/0", "servers[0].host"),
    ('[environments."bad name"]\nservers = ["x"]', "environments", "environments.bad name"),
    ("[environments.staging.proxy]\nhosts = 'one'", "environments/staging/proxy/hosts", "environments.staging"),
]


@pytest.mark.parametrize(("text", "where", "key"), BAD)
def test_a_bad_config_is_refused_by_the_schema_and_by_load_at_the_same_key(
    tmp_path: Path, text: str, where: str, key: str
) -> None:
    errors = schema_errors(tomllib.loads(text))
    assert any(error.startswith(where) for error in errors), errors
    (tmp_path / "tagship.toml").write_text(f'default_environment = ""\n{text}\n')
    environ = {"TAGSHIP_PATH": "/srv/app"} | ({} if "servers" in text else {"TAGSHIP_SERVERS": "web1"})
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, environ, "staging" if "staging" in text else None, need_environment=False)
    assert caught.value.exit_code == EXIT_USAGE
    assert f"  {key}" in str(caught.value)


def test_config_schema_prints_the_schema_without_a_tagship_toml(tmp_path: Path) -> None:
    done = subprocess.run([*TAGSHIP, "-C", str(tmp_path), "config", "schema"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == SCHEMA
    as_json = subprocess.run([*TAGSHIP, "--json", "config", "schema"], capture_output=True, text=True, cwd=tmp_path)
    assert json.loads(as_json.stdout)["schema"] == SCHEMA


def test_the_committed_reference_is_what_the_generator_makes_now() -> None:
    committed = (REPO / "docs" / "config-reference.md").read_text()
    assert committed == config_command.reference(), (
        "docs/config-reference.md is out of date: python3 -m tagship.commands.config > docs/config-reference.md"
    )


def test_the_reference_lists_every_key_with_its_default_and_allowed_values() -> None:
    text = config_command.reference()
    for table in SCHEMA["$defs"].values():
        for key in table.get("properties", {}):
            assert f"| `{key}` |" in text, key
    assert '| `transport` | one of `registry`, `ssh` | `"registry"` |' in text
    assert "| `connect_timeout` | whole number, 1 to 1000000 | `10` |" in text
    assert "#:schema ./.tagship.schema.json" in text  # how editors find the schema


def test_help_does_not_import_pydantic() -> None:
    done = subprocess.run([*TAGSHIP, "--help"], capture_output=True, text=True, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert done.returncode == 0
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()]
    assert "tagship.cli" in imported and not [name for name in imported if name.startswith("pydantic")]


# ---- messages: the catalog's, in both languages, never pydantic's --------------------------------------

EVERY_KIND_OF_PROBLEM = """
servers = [3, {path = "/srv"}, "web1"]
colour = "blue"
notify = [{url = "http://x.example/h", format = "teams", on = ["always"]}]
[app]
path = "/srv/app"
upload = ["../x"]
consumers = "web"
[env]
tag_key = "A B"
file = "a\\u0000b"
[image]
name = "App"
platform = "--push"
pin_digest = "yes"
build_args = "x"
[registry]
url = "https://reg"
password = "in the file"
[ssh]
connect_timeout = 2.5
[proxy]
image = "-x"
hosts = ["-bad"]
drain_timeout = nan
[health]
mode = "tcp"
path = "x"
[hooks]
local = ["x"]
before_switch = [" "]
[rollout]
batch = true
pause = "x"
canary = "%s"
[verify]
timeout = 1
stable_seconds = "x"
"""


def every_problem(tmp_path: Path, lang: str) -> str:
    (tmp_path / "tagship.toml").write_text(EVERY_KIND_OF_PROBLEM % ("x" * 1001))
    messages.choose(lang, {})
    try:
        with pytest.raises(ConfigError) as caught:
            load(tmp_path, {})
    finally:
        messages.choose("en", {})
    return str(caught.value)


def test_no_problem_shows_pydantics_english_and_each_has_its_key(tmp_path: Path) -> None:
    text = every_problem(tmp_path, "en").split("\n", 1)[1]  # after the file's name
    for raw in ("Input should", "Field required", "Unexpected keyword", "pydantic", "validation error"):
        assert raw not in text
    assert "is not valid here" not in text, "every error type is mapped to a message"
    lines = text.splitlines()
    assert len(lines) >= 25
    for expected in (
        "  servers[0]: must be a string or a table with host and path",
        "  servers[1].host: is required",
        "  image.pin_digest: must be true or false",
        "  image.build_args: must be a table",
        "  registry.password: unknown key",
        "  ssh.connect_timeout: must be a whole number from 1 to 1000000, got 2.5",
        "  rollout.canary: must be at most 1000 characters, got 1001",
        "  proxy.drain_timeout: must be a number from 0 to 1000000, got nan",
        "  hooks.local: must be a table",
        "  verify.stable_seconds: must be a number",
        "  env.file: must not contain control characters (found '\\x00' at character 2)",
        "  notify[0].format: must be one of json, slack, feishu, dingtalk, wecom, got 'teams'",
    ):
        assert expected in lines, expected


def test_problems_read_in_chinese_with_the_same_key_paths(tmp_path: Path) -> None:
    english, chinese = every_problem(tmp_path, "en"), every_problem(tmp_path, "zh")
    assert chinese.splitlines()[0].endswith("中的配置有误：")  # noqa: RUF001
    keys = [line.split(": ", 1)[0] for line in english.splitlines()[1:]]
    assert [line.split(": ", 1)[0] for line in chinese.splitlines()[1:]] == keys
    assert "  ssh.connect_timeout: 必须是 1 到 1000000 之间的整数，实际为 2.5" in chinese.splitlines()  # noqa: RUF001
    assert "  image.pin_digest: 必须是 true 或 false" in chinese.splitlines()


def test_every_error_type_maps_to_a_catalog_message() -> None:
    catalog = messages.catalog()
    assert [mid for mid in problems.MESSAGES.values() if mid not in catalog] == []


def test_a_key_toml_must_quote_is_shown_quoted() -> None:
    assert problems.key_path(("servers", 1, "<table>", "host")) == "servers[1].host"
    assert problems.key_path(("image", "build_args", "A\nB", "[key]")) == "image.build_args.'A\\nB'"
