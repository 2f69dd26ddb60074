"""[notify] and [hooks.local] in tagship.toml: typed values, every problem by key path, never a URL in a message."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tagship.config import Config, Webhook, load
from tagship.errors import ConfigError

SERVERS = 'servers = ["web1"]\n[app]\npath = "/srv/app"\n'
SECRET_URL = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX"


def loaded(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Config:
    (tmp_path / "tagship.toml").write_text(SERVERS + text)
    return load(tmp_path, env or {})


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        loaded(tmp_path, text, env)
    return str(caught.value)


def test_one_webhook_is_a_table_and_its_url_comes_from_the_variable_it_names(tmp_path: Path) -> None:
    config = loaded(
        tmp_path, '[notify]\nurl_env = "TAGSHIP_WEBHOOK_URL"\nformat = "slack"\n', {"TAGSHIP_WEBHOOK_URL": SECRET_URL}
    )
    assert config.notify == (Webhook(url=SECRET_URL, url_env="TAGSHIP_WEBHOOK_URL", format="slack"),)
    assert config.notify[0].on == ("success", "failure"), "both outcomes by default"
    assert "XXXXsecretXXXX" not in repr(config), "a webhook's URL holds its token"


def test_several_webhooks_are_an_array_of_tables(tmp_path: Path) -> None:
    text = (
        '[[notify]]\nurl = "http://127.0.0.1:9/hook"\n'
        '[[notify]]\nurl_env = "FEISHU_URL"\nformat = "feishu"\non = ["failure"]\n'
    )
    config = loaded(tmp_path, text, {"FEISHU_URL": "https://open.feishu.cn/open-apis/bot/v2/hook/abc"})
    assert [(w.format, w.on) for w in config.notify] == [("json", ("success", "failure")), ("feishu", ("failure",))]
    assert config.notify[0].url == "http://127.0.0.1:9/hook"


def test_an_unset_url_variable_is_no_config_error(tmp_path: Path) -> None:
    # `tagship releases` on a laptop without the CI's secret must still work; the run's end warns instead.
    config = loaded(tmp_path, '[notify]\nurl_env = "TAGSHIP_WEBHOOK_URL"\n')
    assert config.notify[0].url == ""


def test_every_webhook_problem_is_named_by_its_key_path_and_no_url_is_echoed(tmp_path: Path) -> None:
    text = (
        '[[notify]]\nformat = "teams"\non = ["success", "always"]\ncolour = "red"\n'
        '[[notify]]\nurl = "ftp://files.example/secret-token"\nurl_env = "X"\n'
        '[[notify]]\nurl_env = "HOOK URL"\n'
        '[[notify]]\nurl_env = "BAD_HOOK"\n'
    )
    found = problems(tmp_path, text, {"BAD_HOOK": "file:///etc/secret-token"})
    for expected in (
        "notify[0].url: set either url or url_env",
        "notify[0].format: must be one of json, slack, feishu, dingtalk, wecom, got 'teams'",
        "notify[0].on[1]: must be one of success, failure, got 'always'",
        "notify[0].colour: unknown key",
        "notify[1].url: set either url or url_env",
        "notify[2].url_env: must be a variable name",
        "notify[3].url_env: $BAD_HOOK must hold an http:// or https:// URL",
    ):
        assert expected in found
    assert "secret-token" not in found


def test_a_literal_url_must_be_http(tmp_path: Path) -> None:
    found = problems(tmp_path, '[notify]\nurl = "hooks.slack.com/services/secret-token"\n')
    assert "notify.url: must be an http:// or https:// URL" in found and "secret-token" not in found


@pytest.mark.parametrize("value", ['"https://x"', "[1]", "[{url = 'https://x'}, 'y']"])
def test_notify_must_be_a_table_or_an_array_of_tables(tmp_path: Path, value: str) -> None:
    (tmp_path / "tagship.toml").write_text(f"notify = {value}\n{SERVERS}")  # a top-level key: before [app]
    with pytest.raises(ConfigError, match=re.escape("notify: must be a table ([notify]) or an array of tables")):
        load(tmp_path, {})


def test_local_hooks_sit_in_hooks_local_beside_the_server_hooks(tmp_path: Path) -> None:
    text = (
        '[hooks]\nbefore_switch = ["python manage.py migrate"]\n'
        '[hooks.local]\nbefore_build = ["make check"]\nbefore_deploy = ["./ci-green.sh", "true"]\n'
        'after_deploy = ["./smoke.sh"]\non_failure = ["./page-me.sh"]\n'
    )
    config = loaded(tmp_path, text)
    assert config.hooks.before_switch == ("python manage.py migrate",), "the server hooks keep working"
    hooks = config.local_hooks
    assert hooks.before_build == ("make check",)
    assert hooks.before_deploy == ("./ci-green.sh", "true")
    assert (hooks.after_deploy, hooks.on_failure) == (("./smoke.sh",), ("./page-me.sh",))


def test_local_hook_problems_are_named_by_key_path(tmp_path: Path) -> None:
    found = problems(tmp_path, '[hooks.local]\nbefore_deploy = ["ok", " "]\nafter_deploy = "x"\nafter_build = []\n')
    for expected in (
        "hooks.local.before_deploy[1]: must not be empty",
        "hooks.local.after_deploy: must be a list of strings",
        "hooks.local.after_build: unknown key",
    ):
        assert expected in found
    assert "hooks.local: must be a table" in problems(tmp_path, '[hooks]\nlocal = ["x"]\n')
