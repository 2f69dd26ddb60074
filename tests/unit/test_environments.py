"""[environments.NAME] in tagship.toml, -e / TAGSHIP_ENVIRONMENT, and `tagship config`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tagship.builders import history
from tagship.config import load
from tagship.errors import EXIT_USAGE, ConfigError

TAGSHIP = [sys.executable, "-m", "tagship"]

COMMON = """
servers = ["deploy@web1", "deploy@web2"]
[app]
path = "/srv/app"
[registry]
url = "reg.example.com"
username = "ci"
[image]
build_args = { MODE = "release", INDEX = "https://pypi.example/simple" }
[proxy]
hosts = ["shop.example.com", "www.shop.example.com"]
drain_timeout = 12
[hooks.local]
after_deploy = ["./smoke.sh"]
[[notify]]
url = "https://hooks.example.com/services/T0KEN-in-the-url"
format = "slack"
"""

ENVIRONMENTS = """
[environments.staging]
servers = ["deploy@stage1"]
[environments.staging.proxy]
hosts = ["stage.example.com"]
[environments.staging.image.build_args]
MODE = "debug"
[environments.staging.hooks.local]
on_failure = ["./page.sh"]

[environments.production]
servers = ["deploy@prod1", "deploy@prod2", "deploy@prod3"]
[environments.production.registry]
namespace = "prod"
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "tagship.toml").write_text(text)
    return tmp_path


def problems(root: Path, environ: dict[str, str] | None = None, environment: str | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load(root, environ or {}, environment)
    assert caught.value.exit_code == EXIT_USAGE
    return str(caught.value)


def test_an_environment_merges_tables_key_by_key_and_replaces_lists(tmp_path: Path) -> None:
    config = load(write(tmp_path, COMMON + ENVIRONMENTS), {}, "staging")
    assert config.environment == "staging" and config.environments == ("production", "staging")
    assert [s.raw for s in config.servers] == ["deploy@stage1"]  # a list: replaced
    assert config.servers[0].path == "/srv/app"  # app.path from the common part
    assert config.proxy.hosts == ("stage.example.com",)  # a list inside a table: replaced
    assert config.proxy.drain_timeout == 12  # the table's other keys: kept
    assert dict(config.image.build_args) == {"MODE": "debug", "INDEX": "https://pypi.example/simple"}
    assert (config.local_hooks.after_deploy, config.local_hooks.on_failure) == (("./smoke.sh",), ("./page.sh",))
    assert config.registry.url == "reg.example.com" and config.notify[0].format == "slack"
    production = load(tmp_path, {}, "production")
    assert [s.raw for s in production.servers] == ["deploy@prod1", "deploy@prod2", "deploy@prod3"]
    assert production.registry.namespace == "prod" and production.proxy.hosts[0] == "shop.example.com"
    assert dict(production.image.build_args)["MODE"] == "release"


def test_the_default_environment_is_used_unless_another_is_chosen(tmp_path: Path) -> None:
    root = write(tmp_path, 'default_environment = "production"\n' + COMMON + ENVIRONMENTS)
    assert load(root, {}).environment == "production"
    assert load(root, {"TAGSHIP_ENVIRONMENT": "staging"}).environment == "staging"
    assert load(root, {"TAGSHIP_ENVIRONMENT": "staging"}, "production").environment == "production"  # -e wins
    assert load(root, {}).source_of("environment") == "tagship.toml"
    assert load(root, {"TAGSHIP_ENVIRONMENT": "staging"}).source_of("environment") == "TAGSHIP_ENVIRONMENT"


def test_environments_without_a_choice_are_refused_by_name_unless_only_shown(tmp_path: Path) -> None:
    root = write(tmp_path, COMMON + ENVIRONMENTS)
    text = problems(root)
    assert "defines environments (production, staging): choose one" in text and "-e NAME" in text
    common = load(root, {}, need_environment=False)  # `tagship config` shows the common part
    assert common.environment == "" and len(common.servers) == 2
    assert load(write(tmp_path, COMMON), {}).environment == ""  # no environments: nothing to choose


def test_an_unknown_environment_lists_the_known_ones(tmp_path: Path) -> None:
    root = write(tmp_path, COMMON + ENVIRONMENTS)
    assert "unknown environment 'prod' (from -e)" in problems(root, environment="prod")
    text = problems(root, {"TAGSHIP_ENVIRONMENT": "qa"})
    assert "'qa' (from TAGSHIP_ENVIRONMENT)" in text and "environments: production, staging" in text
    assert "no [environments.NAME] defined" in problems(write(tmp_path, COMMON), environment="staging")
    bad_default = problems(write(tmp_path, 'default_environment = "prod"\n' + COMMON + ENVIRONMENTS))
    assert "default_environment: 'prod' is not an environment (environments: production, staging)" in bad_default


def test_problems_inside_an_environment_name_it_in_the_key_path(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        COMMON.replace("drain_timeout = 12", 'drain_timeout = "soon"')
        + """
[environments.staging]
servers = ["deploy@stage1", 7]
colour = "blue"
[environments.staging.proxy]
hosts = ["ok.example.com", "-bad host"]
[environments.staging.app]
srvice = "web"
[environments.staging.hooks.local]
after_deploy = [3]
[environments."bad name"]
[environments.qa]
default_environment = "qa"
""",
    )
    text = problems(root, environment="staging")
    for expected in (
        "environments.staging.proxy.hosts[1]: must be a host name such as shop.example.com, got '-bad host'",
        "environments.staging.servers[1]: must be a string or a table",
        "environments.staging.colour: unknown key",
        "environments.staging.app.srvice: unknown key",
        "environments.staging.hooks.local.after_deploy[0]: must be a string",
        "environments.bad name: must be a name",
        "environments.qa.default_environment: not allowed inside an environment",
        "\n  proxy.drain_timeout: must be a number",  # the common part's own problem keeps its own path
    ):
        assert expected in text, expected


def test_variables_override_the_environment_and_say_so(tmp_path: Path) -> None:
    root = write(tmp_path, COMMON + ENVIRONMENTS)
    config = load(root, {"TAGSHIP_SERVERS": "deploy@ci1, deploy@ci2", "TAGSHIP_NAMESPACE": "ci"}, "production")
    assert [s.raw for s in config.servers] == ["deploy@ci1", "deploy@ci2"]
    assert (config.source_of("servers"), config.source_of("servers[1].host")) == ("TAGSHIP_SERVERS",) * 2
    assert (config.registry.namespace, config.source_of("registry.namespace")) == ("ci", "TAGSHIP_NAMESPACE")
    assert config.source_of("registry.url") == "tagship.toml"
    assert config.source_of("proxy.image") == "default"
    (tmp_path / "legacy").mkdir()  # a project without tagship.toml: the original script's variables
    legacy = load(tmp_path / "legacy", {"REMOTE_HOST": "user@server -p 2022", "REMOTE_PROJECT_PATH": "/srv/x"})
    assert (legacy.source_of("servers"), legacy.source_of("app.path")) == ("REMOTE_HOST", "REMOTE_PROJECT_PATH")


def test_a_history_entry_carries_the_environment_and_older_lines_still_parse() -> None:
    entry = history.Record("v2", "reg/app:v2", "deploy", "succeeded", "2026-01-01T00:00:00Z", environment="staging")
    old = history.Record("v1", "reg/app:v1", "deploy", "succeeded", "2026-01-01T00:00:00Z")
    assert '"environment"' not in old.line()  # lines without an environment are as they always were
    hostile = entry.line().replace('"staging"', '"st\\u001b[2Jaging"')
    records, skipped = history.parse_lines(old.line() + entry.line() + hostile)
    assert [r.environment for r in records] == ["", "staging"]
    assert len(skipped) == 1 and "is not an environment name" in skipped[0]


def tagship(root: Path, *words: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {"PATH": "/usr/bin:/bin", "TAGSHIP_REGISTRY_PASSWORD": "pa55-w0rd", **(env or {})}
    return subprocess.run([*TAGSHIP, "-C", str(root), *words], capture_output=True, text=True, env=environ)


def test_config_shows_each_value_with_its_source_and_masks_secrets(tmp_path: Path) -> None:
    root = write(tmp_path, COMMON + ENVIRONMENTS)
    done = tagship(root, "-e", "staging", "config", env={"TAGSHIP_PATH": "/srv/override"})
    assert done.returncode == 0, done.stderr
    lines = {line.split(" = ")[0]: line for line in done.stdout.splitlines()}
    assert lines["environment"].startswith('environment = "staging"') and lines["environment"].endswith("# -e")
    assert lines["servers"].endswith("# environments.staging") and "deploy@stage1" in lines["servers"]
    assert lines["proxy.hosts"].endswith("# environments.staging")
    assert lines["proxy.drain_timeout"].split("#")[1].strip() == "tagship.toml"
    assert lines["image.build_args.MODE"].endswith("# environments.staging")
    assert lines["image.build_args.INDEX"].endswith("# tagship.toml")
    assert lines["app.path"].endswith("# TAGSHIP_PATH") and "/srv/override" in lines["app.path"]
    assert lines["proxy.image"].endswith("# default")
    assert lines["registry.password"].startswith('registry.password = "***"')
    assert lines["registry.password"].endswith("# TAGSHIP_REGISTRY_PASSWORD")
    assert lines["notify[0].url"].startswith('notify[0].url = "***"')
    assert "pa55-w0rd" not in done.stdout + done.stderr and "T0KEN" not in done.stdout + done.stderr


def test_config_json_and_the_environment_option_after_the_command(tmp_path: Path) -> None:
    root = write(tmp_path, COMMON + ENVIRONMENTS)
    done = tagship(root, "config", "-e", "production", "--json", env={"TAGSHIP_SLACK": "x"})
    assert done.returncode == 0, done.stderr
    (event,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert (event["environment"], event["environments"]) == ("production", ["production", "staging"])
    assert event["values"]["registry.namespace"] == {"value": "prod", "source": "environments.production"}
    assert event["values"]["environment"]["source"] == "-e"
    assert event["values"]["notify[0].url"]["value"] == "***" and "T0KEN" not in done.stdout
    by_variable = tagship(root, "config", env={"TAGSHIP_ENVIRONMENT": "staging"})
    assert by_variable.returncode == 0 and "deploy@stage1" in by_variable.stdout
    common = tagship(root, "config")  # environments and none chosen: config shows the common part
    assert common.returncode == 0 and "deploy@web2" in common.stdout


@pytest.mark.parametrize("words", [["releases"], ["lock", "status"], ["rollback"], ["deploy", "--dry-run"]])
def test_commands_on_servers_refuse_without_an_environment_and_name_them(tmp_path: Path, words: list[str]) -> None:
    root = write(tmp_path, COMMON + ENVIRONMENTS)
    done = tagship(root, *words)
    assert done.returncode == EXIT_USAGE and "defines environments (production, staging)" in done.stderr
    unknown = tagship(root, *words, "-e", "qa")
    assert unknown.returncode == EXIT_USAGE and "unknown environment 'qa'" in unknown.stderr
    assert "production, staging" in unknown.stderr


def test_a_bad_config_is_exit_2_for_config_too(tmp_path: Path) -> None:
    root = write(tmp_path, COMMON + '[environments.staging.proxy]\nhosts = "one"\n')
    done = tagship(root, "-e", "staging", "config")
    assert done.returncode == EXIT_USAGE and "environments.staging.proxy.hosts: must be a list" in done.stderr


def test_hosts_keeps_the_named_servers_in_the_configs_order_and_refuses_unknown_ones(tmp_path: Path) -> None:
    from tagship import config as config_mod
    from tagship.errors import ConfigError

    (tmp_path / "tagship.toml").write_text(
        'servers = ["deploy@a.example", "b.example", "c.example -p 2222"]\n[app]\npath = "/srv/app"\n'
    )
    config = config_mod.load(tmp_path, {})
    names = [s.name for s in config_mod.only_hosts(config, "c.example, deploy@a.example").servers]
    assert names == ["deploy@a.example", "c.example"]
    assert [s.name for s in config_mod.only_hosts(config, "a.example").servers] == ["deploy@a.example"]
    assert config_mod.only_hosts(config, "") is config
    with pytest.raises(ConfigError, match=r"--hosts: d\.example is not a configured server"):
        config_mod.only_hosts(config, "b.example,d.example")
