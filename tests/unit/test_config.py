from pathlib import Path

import pytest

from tagship.config import load
from tagship.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "tagship.toml").write_text(text)
    return tmp_path


def test_full_file_is_read_into_typed_values(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        """
servers = ["web1", {host = "deploy@10.0.0.5:2222", path = "/srv/other"}]
[app]
path = "/srv/app"
service = "web"
[registry]
url = "registry.example.com:5000"
namespace = "/team/"
username = "ci"
[ssh]
connect_timeout = 4
""",
    )
    config = load(root, {"TAGSHIP_REGISTRY_PASSWORD": "s3cret"})
    assert [s.name for s in config.servers] == ["web1", "deploy@10.0.0.5"]
    assert [s.path for s in config.servers] == ["/srv/app", "/srv/other"]
    assert config.registry.namespace == "team"
    assert config.registry.has_credentials
    assert config.ssh.connect_timeout == 4
    assert "s3cret" not in repr(config)


def test_every_problem_is_reported_with_its_key_path_and_file(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        """
servers = [3, "ok@host"]
colour = "blue"
[app]
path = "relative/dir"
srvice = "web"
[ssh]
connect_timeout = "soon"
[env]
tag_key = "APP IMAGE TAG"
""",
    )
    with pytest.raises(ConfigError) as caught:
        load(root, {})
    text = str(caught.value)
    assert str(root / "tagship.toml") in text
    for expected in (
        "servers[0]: must be a string or a table",
        "colour: unknown key",
        "app.srvice: unknown key",
        "ssh.connect_timeout: must be a number",
        "env.tag_key: must be a variable name",
        "servers[1].path: must be absolute",
    ):
        assert expected in text


def test_original_script_variables_work_without_a_config_file(tmp_path: Path) -> None:
    env = {
        "REGISTRY_URL": "reg.example:5000",
        "REGISTRY_NAMESPACE": "team",
        "IMAGE_NAME": "meta-hub",
        "REMOTE_HOST": "user@server-ip -p 2022",
        "REMOTE_PROJECT_PATH": "/srv/meta hub",
    }
    config = load(tmp_path, env)
    assert config.registry.url == "reg.example:5000"
    assert config.image.name == "meta-hub"
    (server,) = config.servers
    assert (server.host, server.user, server.port, server.path) == ("server-ip", "user", 2022, "/srv/meta hub")


def test_tagship_variables_override_the_file(tmp_path: Path) -> None:
    root = write(tmp_path, 'servers = ["a"]\n[app]\npath = "/srv/a"\n')
    config = load(root, {"TAGSHIP_SERVERS": "b, c", "TAGSHIP_PATH": "/srv/b"})
    assert [(s.host, s.path) for s in config.servers] == [("b", "/srv/b"), ("c", "/srv/b")]


def test_original_variables_do_not_override_a_config_file(tmp_path: Path) -> None:
    root = write(tmp_path, 'servers = ["a"]\n[app]\npath = "/srv/a"\n')
    config = load(root, {"REMOTE_HOST": "other"})
    assert [s.host for s in config.servers] == ["a"]


def test_broken_toml_names_the_file(tmp_path: Path) -> None:
    root = write(tmp_path, "servers = [\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(root, {})


def test_proxy_names_must_be_docker_names(tmp_path: Path) -> None:
    """They reach Caddy's config text too (the gate forwards to NAME:PORT)."""
    (tmp_path / "tagship.toml").write_text(
        'servers = ["h1"]\n[app]\npath = "/srv/a"\n[proxy]\nname = "p\\n}\\nimport /etc"\nnetwork = "-x"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, {})
    assert "proxy.name: must not contain control characters" in str(caught.value) + caught.value.detail
    assert "proxy.network: must be a Docker name" in str(caught.value) + caught.value.detail
