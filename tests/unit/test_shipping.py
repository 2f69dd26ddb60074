"""image.transport = "ssh": the config key, and the pure parts of the registry on this machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from tagship.commands.deploy import _check_registry_needed
from tagship.config import Config, load
from tagship.errors import ConfigError, MissingToolError
from tagship.output import Output
from tagship.release import shipping
from tagship.release.version import Release
from tagship.remote import server
from tagship.remote.transport import LocalTransport


def load_config(tmp_path: Path, image: str, environ: dict[str, str] | None = None) -> Config:
    (tmp_path / "tagship.toml").write_text(f'servers = ["web1"]\n[app]\npath = "/srv/app"\n[image]\n{image}')
    return load(tmp_path, environ or {})


def test_the_transport_defaults_to_the_registry_and_reads_ssh_from_the_file_or_the_environment(tmp_path: Path) -> None:
    default = load_config(tmp_path, 'name = "app"\n')
    assert default.image.transport == "registry" and not default.image.over_ssh
    assert load_config(tmp_path, 'transport = "ssh"\n').image.over_ssh
    from_env = load_config(tmp_path, 'name = "app"\n', {"TAGSHIP_TRANSPORT": "ssh"})
    assert from_env.image.over_ssh and from_env.sources["image.transport"] == "TAGSHIP_TRANSPORT"


@pytest.mark.parametrize(
    ("image", "problem"),
    [
        ('transport = "scp"\n', "image.transport: must be one of registry, ssh, got 'scp'"),
        ('transport = "ssh"\npin_digest = true\n', 'image.pin_digest: needs image.transport = "registry"'),
    ],
)
def test_a_bad_transport_is_refused_with_its_key(tmp_path: Path, image: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, image)
    assert problem in str(caught.value)


def test_ssh_needs_no_registry_for_remote_servers(tmp_path: Path) -> None:
    release = Release("v1", "c" * 40, "app", "Alice")
    with pytest.raises(ConfigError) as caught:
        _check_registry_needed(load_config(tmp_path, 'name = "app"\n'), release)
    assert 'or image.transport = "ssh"' in str(caught.value)
    _check_registry_needed(load_config(tmp_path, 'transport = "ssh"\n'), release)  # no error


@pytest.mark.parametrize(
    ("image", "ref"),
    [
        ("app:v1", "127.0.0.1:5000/app:v1"),
        ("app", "127.0.0.1:5000/app:latest"),
        ("reg.example.com:5000/team/app:v1", "127.0.0.1:5000/team/app:v1"),
        ("localhost/app:v1", "127.0.0.1:5000/app:v1"),
        ("team/app:v1", "127.0.0.1:5000/team/app:v1"),  # no registry host: the path stays whole
        ("caddy:2-alpine@sha256:" + "a" * 64, "127.0.0.1:5000/caddy:2-alpine"),
    ],
)
def test_an_image_is_named_in_the_loopback_registry_without_its_own_registry_host(image: str, ref: str) -> None:
    assert shipping.loopback_ref(image, 5000) == ref


def test_the_loopback_name_by_digest_drops_the_tag() -> None:
    digest = "sha256:" + "e" * 64
    assert shipping.loopback_ref("reg.lan:5443/ns/app:v2", 40001, digest) == f"127.0.0.1:40001/ns/app@{digest}"


LOG = """\
time="2026-11-28T02:10:20Z" level=info msg="response completed" http.request.host="127.0.0.1:35741" \
http.request.method=GET http.request.uri="/v2/app/blobs/sha256:aa" http.response.written=1000
time="2026-11-28T02:10:20Z" level=info msg="response completed" http.request.host="127.0.0.1:35741" \
http.request.method=GET http.request.uri="/v2/app/manifests/v1" http.response.written=900
time="2026-11-28T02:10:21Z" level=info msg="response completed" http.request.host="127.0.0.1:41000" \
http.request.method=GET http.request.uri="/v2/app/blobs/sha256:bb" http.response.written=20
time="2026-11-28T02:10:21Z" level=info msg="response completed" http.request.host="127.0.0.1:35741" \
http.request.method=HEAD http.request.uri="/v2/app/blobs/sha256:cc" http.response.written=0
127.0.0.1 - - [28/Nov/2026:02:10:20 +0000] "GET /v2/app/blobs/sha256:aa HTTP/1.1" 200 1000 "" "docker/20.10"
"""


def test_the_bytes_of_layers_sent_are_read_per_tunnel_from_the_registrys_log() -> None:
    assert shipping.blob_bytes(LOG, 35741) == 1000  # blobs only, GET only, its own tunnel only
    assert shipping.blob_bytes(LOG, 41000) == 20
    assert shipping.blob_bytes("", 35741) == 0


def test_the_registry_listens_on_loopback_only_and_keeps_its_blobs_in_the_cache(tmp_path: Path) -> None:
    text = shipping.registry_config(tmp_path / "data", 5123)
    assert "addr: 127.0.0.1:5123\n" in text and f"rootdirectory: {tmp_path / 'data'}\n" in text
    assert shipping.cache_dir({"XDG_CACHE_HOME": "/c"}) == Path("/c/tagship/registry")
    assert shipping.cache_dir({"HOME": "/home/a"}) == Path("/home/a/.cache/tagship/registry")


def test_a_missing_registry_program_names_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("tagship.release.shipping.shutil.which", lambda name: None)
    local = LocalTransport(server=server.parse(server.LOCAL), out=Output())
    with pytest.raises(MissingToolError) as caught:
        shipping.LocalRegistry(tmp_path).start(local)
    assert "apt install docker-registry" in str(caught.value)
