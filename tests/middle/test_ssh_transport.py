"""image.transport = "ssh": the image goes from a registry on this machine to each server's engine
through a reverse tunnel on its ssh connection; no registry login, push or pull anywhere else."""

from __future__ import annotations

from pathlib import Path

import pytest

from tagship.commands import deploy as deploy_command
from tagship.config import Config
from tagship.errors import EXIT_REGISTRY, RegistryError
from tagship.output import Output
from tagship.release.shipping import LocalRegistry
from tagship.remote.transport import LocalTransport, Result
from tests.middle.fake_checkout import DIGEST, LOCAL, FakeCheckout
from tests.middle.fake_host import PROXY_IMAGE, REPOSITORY, FakeHost, attach, image_id
from tests.middle.recorder import TUNNEL_PORT, Script, in_order, printed, starts
from tests.middle.settings import CONFIG, H1, H2, write_config

PORT = 5000  # the registry on this machine, as the stubbed start gives it
IMAGE = f"{REPOSITORY}:v2"
HERE = f"127.0.0.1:{PORT}/{IMAGE}"
THERE = f"127.0.0.1:{TUNNEL_PORT}/{REPOSITORY}@{DIGEST}"  # by the digest its push here reported
WRITE_ENV = "<atomic write> sh /srv/app/.env"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return write_config(tmp_path, '\n[image]\nname = "app"\ntransport = "ssh"\n', text=_without_image())


def _without_image() -> str:
    return CONFIG.replace('[image]\nname = "app"\n', "")


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """The registry on this machine, its process stubbed: what happened to it, in order."""
    events: list[str] = []
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def start(self: LocalRegistry, local: LocalTransport) -> None:
        self.port = PORT
        events.append("start")

    def stop(self: LocalRegistry) -> None:
        events.append("stop")

    monkeypatch.setattr(LocalRegistry, "start", start)
    monkeypatch.setattr(LocalRegistry, "stop", stop)
    return events


@pytest.fixture
def built(script: Script, checkout: FakeCheckout) -> FakeCheckout:
    """This machine has the built image (its ID as the servers will see it)."""
    script.on(
        f"docker image inspect --format '{{{{.Id}}}}' {IMAGE}",
        Result(0, image_id("v2") + "\n", ""),
        server=LOCAL,
        first=True,
    )
    return checkout


def deploy(config: Config, out: Output) -> None:
    deploy_command.run(config, out, deploy_command.DeployOptions())


def test_config_reads_the_transport(config: Config) -> None:
    assert config.image.transport == "ssh" and config.image.over_ssh


def test_the_image_travels_through_a_tunnel_before_anything_changes_and_no_registry_is_used(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost], built: FakeCheckout, registry: list[str]
) -> None:
    deploy(config, out)
    in_order(
        script.shown(LOCAL),
        [
            f"docker build --tag {IMAGE}",
            f"docker tag {IMAGE} {HERE}",
            f"docker push {HERE}",
            f"docker image rm --no-prune {HERE}",
        ],
    )
    assert not any("login" in c or "manifest" in c or c == f"docker push {IMAGE}" for c in script.shown(LOCAL))
    for server in (H1, H2):
        in_order(
            script.shown(server),
            [
                "mkdir -p /srv/app",
                f"(forward -R 127.0.0.1:0:127.0.0.1:{PORT})",
                f"docker pull {THERE}",
                f"docker tag {THERE} {IMAGE}",
                f"docker image rm --no-prune {THERE}",
                f"(cancel -R 127.0.0.1:{TUNNEL_PORT}:127.0.0.1:{PORT})",
                WRITE_ENV,
                "up --detach --no-deps --no-recreate --scale web=2 web",
            ],
        )
        assert not any("docker login" in c or c == f"docker pull {IMAGE}" for c in script.shown(server))
        assert hosts[server].images[IMAGE] == image_id("v2") and THERE not in hosts[server].images
        assert hosts[server].env_tag() == "v2"
        assert f"{server}: {IMAGE} arrived over ssh (0 bytes of layers sent)" in printed(out)
    # Stopped by its own step, before the switch, and again (a no-op) on the way out.
    assert registry == ["start", "stop", "stop"]


def revision_on(script: Script, server: str, commit: str) -> None:
    """The server has IMAGE, built from commit (its revision label)."""
    labelled = lambda call: "image.revision" in call.shown and call.shown.endswith(IMAGE)  # noqa: E731
    script.on(labelled, Result(0, commit + "\n", ""), server=server, first=True)


def test_a_server_that_has_the_tag_from_the_same_commit_gets_no_tunnel(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost], built: FakeCheckout, registry: list[str]
) -> None:
    hosts[H1].images[IMAGE] = image_id("v2")
    revision_on(script, H1, built.commit)
    deploy(config, out)
    assert not any(c.startswith("(forward") for c in script.shown(H1))
    assert f"{H1} has {IMAGE} (commit {built.commit[:12]}) already: nothing to send" in printed(out)
    assert f"docker pull {THERE}" in script.shown(H2)
    assert all(host.env_tag() == "v2" for host in hosts.values())


def test_a_server_whose_tag_holds_other_content_is_refused_unless_forced(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost], built: FakeCheckout, registry: list[str]
) -> None:
    revision_on(script, H1, "badc0de" * 5)
    with pytest.raises(RegistryError) as caught:
        deploy(config, out)
    assert f"{H1} has {IMAGE} already, with other content (commit badc0debadc0)" in str(caught.value)
    assert "pass --force" in str(caught.value)
    assert all(host.env_tag() == "v1" for host in hosts.values()), "nothing switched"
    deploy_command.run(config, out, deploy_command.DeployOptions(force=True))
    assert f"docker pull {THERE}" in script.shown(H1)
    assert all(host.env_tag() == "v2" for host in hosts.values())


def test_a_proxy_image_a_server_cannot_pull_travels_the_same_way(
    config: Config, out: Output, script: Script, built: FakeCheckout, registry: list[str]
) -> None:
    hosts = attach(script, FakeHost(H1, "h1", hub=False), FakeHost(H2, "h2", hub=False))
    del hosts[H1].images[PROXY_IMAGE]
    script.on(
        f"docker image inspect --format '{{{{.Id}}}}' {PROXY_IMAGE}",
        Result(0, "sha256:caddy\n", ""),
        server=LOCAL,
        first=True,
    )
    proxy_here = f"127.0.0.1:{PORT}/{PROXY_IMAGE}"
    proxy_there = f"127.0.0.1:{TUNNEL_PORT}/{PROXY_IMAGE.rsplit(':', 1)[0]}@{DIGEST}"
    deploy(config, out)
    in_order(
        script.shown(LOCAL),
        [f"docker push {HERE}", f"docker tag {PROXY_IMAGE} {proxy_here}", f"docker push {proxy_here}"],
    )
    in_order(
        script.shown(H1),
        [
            f"docker pull {PROXY_IMAGE}",
            f"docker pull {THERE}",
            f"docker pull {proxy_there}",
            f"docker tag {proxy_there} {PROXY_IMAGE}",
            WRITE_ENV,
        ],
    )
    assert f"{H1} cannot pull {PROXY_IMAGE}: it gets it over ssh" in printed(out)
    assert hosts[H1].images[PROXY_IMAGE] == "sha256:caddy"
    assert not any(proxy_there in c for c in script.shown(H2)), "h2 has it"


def test_a_failed_pull_through_the_tunnel_closes_it_and_changes_nothing(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost], built: FakeCheckout, registry: list[str]
) -> None:
    script.on(starts(f"docker pull {THERE}"), Result(1, "", "connection reset"), server=H2, first=True)
    with pytest.raises(RegistryError) as caught:
        deploy(config, out)
    assert caught.value.exit_code == EXIT_REGISTRY
    assert f"{H2} could not pull {IMAGE} from this machine through its ssh tunnel" in str(caught.value)
    in_order(script.shown(H2), [f"docker pull {THERE}", f"(cancel -R 127.0.0.1:{TUNNEL_PORT}:127.0.0.1:{PORT})"])
    assert all(host.env_tag() == "v1" for host in hosts.values()), "nothing switched"
    assert registry[0] == "start" and registry[-1] == "stop"


def test_a_dry_run_shows_the_ssh_steps_and_starts_nothing(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost], built: FakeCheckout, registry: list[str]
) -> None:
    deploy_command.run(config, out, deploy_command.DeployOptions(dry_run=True))
    shown = printed(out)
    assert registry == [], "never started"
    for line in (
        "start a registry on this machine, for the servers to pull from over ssh",
        f"push {IMAGE} to it",
        f"docker push 127.0.0.1:<port>/{IMAGE}",
        f"{IMAGE} over ssh (only the layers a server lacks)",
        f"docker pull 127.0.0.1:<tunnel>/{REPOSITORY}@<digest>, tag it {IMAGE}",
        "stop the registry on this machine",
    ):
        assert line in shown, line
    assert "registry login" not in shown and f"pull {IMAGE}  " not in shown


def test_rolling_batches_keep_the_registry_on_this_machine_until_the_last_batch_has_the_image(
    tmp_path: Path, out: Output, script: Script, hosts: dict[str, FakeHost], built: FakeCheckout, registry: list[str]
) -> None:
    text = '\n[image]\nname = "app"\ntransport = "ssh"\n\n[rollout]\nstrategy = "rolling"\n'
    deploy(write_config(tmp_path, text, text=_without_image()), out)
    assert registry == ["start", "stop", "stop"], "one registry for the whole run"
    second = next(i for i, c in enumerate(script.calls) if c.server == H2 and f"docker pull {THERE}" in c.shown)
    assert second > next(i for i, c in enumerate(script.calls) if c.server == H1 and "--scale web=2 web" in c.shown)
    assert all(host.env_tag() == "v2" for host in hosts.values())
