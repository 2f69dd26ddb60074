"""The proxy image reaches every server before anything there changes: present, pulled by the server,
or shipped through the user's registry by the deploying machine; else the deploy stops with the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from tagship.commands import deploy as deploy_command
from tagship.config import Config
from tagship.errors import EXIT_REGISTRY, RegistryError
from tagship.output import Output
from tagship.remote.transport import Result
from tests.middle.fake_checkout import DIGEST, LOCAL, FakeCheckout
from tests.middle.fake_host import COMPOSE, ENV, PROXY_IMAGE, FakeHost, attach
from tests.middle.recorder import Script, in_order, starts
from tests.middle.settings import CONFIG, H1, H2, write_config

MIRROR = "reg/ns/tagship-proxy:caddy-2-alpine"
INSPECT = f"docker image inspect --format '{{{{.Id}}}}' {PROXY_IMAGE}"
WRITE_ENV = "<atomic write> sh /srv/app/.env"
UPLOAD = f"<atomic write> sh {COMPOSE}"


def deploy(config: Config, out: Output) -> None:
    deploy_command.run(config, out, deploy_command.DeployOptions())


def lacking(script: Script, *, hub: bool) -> dict[str, FakeHost]:
    """h1 has no proxy image (hub: whether it can pull it itself); h2 has it."""
    hosts = attach(script, FakeHost(H1, "h1", hub=hub), FakeHost(H2, "h2", hub=hub))
    del hosts[H1].images[PROXY_IMAGE]
    return hosts


APP = f"reg/ns/app@{DIGEST}"  # the app's image, pulled by the digest its push reported


def pulls(script: Script, server: str) -> list[str]:
    return [c.argv[-1] for c in script.of(server) if "pull" in c.argv and c.argv[c.argv.index("pull") - 1] == "docker"]


def test_a_server_that_has_the_proxy_image_gets_nothing_more(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    deploy(config, out)
    for server in (H1, H2):
        in_order(script.shown(server), [INSPECT, WRITE_ENV])
        assert pulls(script, server) == [APP], server
    assert not any(MIRROR in shown for shown in script.shown(LOCAL)), "nothing shipped"


def test_a_server_that_lacks_it_pulls_it_before_its_env_changes(
    config: Config, out: Output, script: Script, checkout: FakeCheckout
) -> None:
    hosts = lacking(script, hub=True)
    deploy(config, out)
    in_order(script.shown(H1), [INSPECT, f"docker pull {PROXY_IMAGE}", f"docker pull {APP}", WRITE_ENV])
    assert pulls(script, H2) == [APP], "only the server that needs it pulls it"
    assert not any(MIRROR in shown for shown in script.shown(LOCAL))
    assert PROXY_IMAGE in hosts[H1].images and hosts[H1].env_tag() == "v2"


def test_a_server_that_cannot_pull_it_gets_it_through_the_registry_before_anything_changes(
    config: Config, out: Output, script: Script, checkout: FakeCheckout
) -> None:
    hosts = lacking(script, hub=False)
    deploy(config, out)
    h1 = in_order(
        script.shown(H1),
        [
            INSPECT,
            f"docker pull {PROXY_IMAGE}",  # refused: no hub
            f"docker pull {APP}",
            f"docker pull {MIRROR}",
            f"docker tag {MIRROR} {PROXY_IMAGE}",
            WRITE_ENV,
            "up --detach --no-deps --no-recreate --scale web=2 web",
        ],
    )
    upload = next(i for i, shown in enumerate(script.shown(H1)) if UPLOAD in shown)
    assert h1[1] < upload, "a proxy image no server can get stops the deploy before the first upload"
    in_order(script.shown(LOCAL), ["docker push reg/ns/app:v2", f"docker tag {PROXY_IMAGE} {MIRROR}", "docker push"])
    calls = script.calls
    pushed = next(i for i, c in enumerate(calls) if c.shown == f"docker push {MIRROR}")
    received = next(i for i, c in enumerate(calls) if c.server == H1 and c.shown.endswith(f"docker pull {MIRROR}"))
    first_env = next(i for i, c in enumerate(calls) if WRITE_ENV in c.shown)
    assert pushed < received < first_env
    assert pulls(script, H2) == [APP], "h2 has it: it pulls nothing more"
    assert hosts[H1].images[PROXY_IMAGE] == "sha256:caddy"
    assert all(host.env_tag() == "v2" and host.served() == "app-web-2" for host in hosts.values())


def assert_untouched(script: Script, hosts: dict[str, FakeHost], before: dict[str, str]) -> None:
    for name, host in hosts.items():
        assert host.files[ENV] == before[name] and host.env_tag() == "v1", name
        assert host.created == set(), f"{name}: no container started"
        assert not any(UPLOAD in s for s in script.shown(name)), name
        assert host.lock_holder == "", name


def test_when_neither_server_nor_this_machine_can_get_it_nothing_changes_and_the_fix_is_named(
    config: Config, out: Output, script: Script, checkout: FakeCheckout
) -> None:
    hosts = lacking(script, hub=False)
    before = {name: host.files[ENV] for name, host in hosts.items()}
    script.on(starts(INSPECT), Result(1, "", "Error: No such image"), server=LOCAL, first=True)
    script.on(starts(f"docker pull {PROXY_IMAGE}"), Result(1, "", "pull access denied"), server=LOCAL, first=True)
    with pytest.raises(RegistryError) as caught:
        deploy(config, out)
    assert caught.value.exit_code == EXIT_REGISTRY == 7
    assert str(caught.value) == (
        f"{H1} cannot pull the proxy image caddy:2-alpine, and neither can this machine; set proxy.image to an "
        "image your servers can pull (your registry's mirror of caddy:2-alpine), or `docker load` it on " + H1
    )
    assert caught.value.detail.splitlines()[1] == "this machine: pull access denied", "Docker's words as detail"
    assert not any(MIRROR in shown for shown in script.shown(LOCAL)), "nothing pushed"
    assert_untouched(script, hosts, before)


def test_without_a_registry_a_server_that_cannot_pull_it_stops_the_deploy(
    tmp_path: Path, out: Output, script: Script, checkout: FakeCheckout
) -> None:
    text = CONFIG.replace('url = "reg"', 'url = ""').replace('username = "deploy"\n', "")
    text = text.replace('name = "app"', 'name = "reg/ns/app"')
    config = write_config(tmp_path, text=text)
    hosts = lacking(script, hub=False)
    before = {name: host.files[ENV] for name, host in hosts.items()}
    with pytest.raises(RegistryError) as caught:
        deploy(config, out)
    assert caught.value.exit_code == 7
    assert str(caught.value).startswith(
        f"{H1} cannot pull the proxy image caddy:2-alpine, and no registry is configured to ship it through; "
        "set proxy.image to an image your servers can pull"
    )
    assert str(caught.value).endswith(f"or `docker load` it on {H1}")
    assert "registry-1.docker.io" in caught.value.detail, "Docker's own words come as the detail"
    assert_untouched(script, hosts, before)


def test_a_server_that_cannot_reach_the_registry_for_it_stops_the_deploy_before_its_env_changes(
    config: Config, out: Output, script: Script, checkout: FakeCheckout
) -> None:
    hosts = lacking(script, hub=False)
    before = {name: host.files[ENV] for name, host in hosts.items()}
    refused = Result(1, "", "connection refused")
    script.on(lambda call: call.shown.endswith(f"docker pull {MIRROR}"), refused, server=H1, first=True)
    with pytest.raises(RegistryError, match=f"{H1} could not pull {MIRROR}.*docker load` it on {H1}"):
        deploy(config, out)
    for name, host in hosts.items():
        assert host.files[ENV] == before[name] and host.created == set(), name
