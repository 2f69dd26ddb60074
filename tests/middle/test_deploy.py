"""`tagship deploy` whole, on recording transports: the commands each server gets, in order, and what it runs after."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tagship.builders import docker, proxy
from tagship.builders.override import PublishedPort
from tagship.commands import deploy as deploy_command
from tagship.config import Config
from tagship.errors import CommandFailed, ConfigError, HealthError, RegistryError
from tagship.output import Output
from tagship.remote.transport import Result
from tests.middle.fake_checkout import DIGEST, LOCAL, FakeCheckout, plug_local
from tests.middle.fake_host import (
    COMPOSE,
    DOCKER_CONFIG_DIR,
    ENV,
    OVERRIDE,
    PORT,
    PROJECT,
    PROXY_NAME,
    REPOSITORY,
    FakeHost,
    attach,
    image_id,
    record,
)
from tests.middle.recorder import CLOSE, CONNECT, Script, in_order
from tests.middle.settings import CONFIG, H1, H2, PASSWORD, write_config

# The key commands of a deploy on one server, in the order they must come (h1's container ids).
SEQUENCE = [
    CONNECT,
    "docker version",  # before the lock: a server without them leaves no trace (history, audit)
    "docker compose version",
    "<take lock>",
    "<append audit log>",
    "mkdir -p /srv/app",
    "<read file> sh /srv/app/compose.yaml",
    "<atomic write> sh /srv/app/compose.yaml 644",
    "docker login --username deploy --password-stdin reg",
    f"docker pull reg/ns/app@{DIGEST}",  # this run's image by its digest: a tag pushed again meanwhile changes nothing
    f"docker tag reg/ns/app@{DIGEST} reg/ns/app:v2",
    "<read file> sh /srv/app/.env",
    "<atomic write> sh /srv/app/.env 600  <<< .env with APP_IMAGE_TAG=v2",
    "--file /srv/app/compose.yaml config --format json",
    "docker ps --all",
    "<read file> sh /srv/app/compose.tagship.yaml",
    "<atomic write> sh /srv/app/compose.tagship.yaml 644",
    "<ensure network> sh tagship",
    "up --detach --no-deps --no-recreate --scale web=2 web",
    "docker image inspect --format '{{.Id}}' reg/ns/app:v2",
    "docker container inspect tagship-proxy",
    "docker ps --all --filter label=tagship.listener=tagship-proxy",
    "<probe until 2xx> sh http://app-web-2:8080/up",
    "<switch routes> sh switch /etc/tagship localhost:2020 localhost:2019 app",
    "docker exec tagship-proxy-18100 sh -c <route listener> sh /var/lib/haproxy/tagship/listener.cfg",
    "wget -q -O - http://localhost:2020/reverse_proxy/upstreams",
    "docker exec tagship-proxy-18100 sh -c <wait for the old listener workers>",
    "docker stop --time 10 h1-web-1",
    "docker rm --force h1-web-1",
    "docker ps --all --filter label=tagship.listener=tagship-proxy",
    "--scale worker=2 worker",
    "docker stop --time 10 h1-worker-1",
    "docker rm --force h1-worker-1",
    "docker image inspect --format '{{.Id}}' reg/ns/app:v2",
    "<read history>",
    "docker image ls --digests",
    "<append history> sh /srv/app/.tagship releases.jsonl 0  <<< history entry: deploy v2 succeeded",
    "<release own lock>",
    CLOSE,
]


def deploy(config: Config, out: Output) -> None:
    deploy_command.run(config, out, deploy_command.DeployOptions())


def test_a_deploy_sends_each_server_its_commands_in_order(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    deploy(config, out)
    in_order(script.shown(H1), SEQUENCE)
    in_order(script.shown(H2), [line.replace("h1-", "h2-") for line in SEQUENCE])
    local = script.shown(LOCAL)
    in_order(local, ["status --porcelain", "tag --points-at HEAD", "archive", "docker build", "docker push"])
    first_remote = next(i for i, c in enumerate(script.calls) if c.server != LOCAL)
    assert script.calls[first_remote - 1].shown.startswith("docker push"), "servers are touched after the push"


def test_after_a_deploy_every_server_runs_the_new_release_and_keeps_its_database(
    config: Config, out: Output, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    deploy(config, out)
    for name, host in hosts.items():
        prefix = host.prefix
        assert host.env_tag() == "v2" and "APP_PORT=18100" in host.files["/srv/app/.env"], name
        assert [c.id for c in host.running("web")] == [f"{prefix}-web-2"], name
        assert [c.id for c in host.running("worker")] == [f"{prefix}-worker-2"], name
        assert {c.image for c in host.running("web") + host.running("worker")} == {image_id("v2")}
        assert [c.id for c in host.running("db")] == [f"{prefix}-db-1"], "the database is never recreated"
        assert host.served() == "app-web-2"
        assert host.listener_serves() == ["app-web-2"], "the port's listener sends straight to the new container"
        listened = host.listener_configs[proxy.listener_name(PROXY_NAME, PublishedPort(PORT, PORT))]
        assert "    server s0 app-web-2:8080 init-addr 10.232.0.3,libc,none\n" in listened, "no DNS at the reload"
        assert "tagship.app" in host.files["/srv/app/compose.tagship.yaml"]
        last = host.history()[-1]
        assert (last.version, last.kind, last.result) == ("v2", "deploy", "succeeded"), name
        assert last.env == {"APP_IMAGE_TAG": "v2"}, name
        assert last.digest == DIGEST and last.image == f"{REPOSITORY}:v2"
        assert host.lock_holder == ""


def test_services_that_run_cost_no_compose_call_and_a_stopped_one_is_started(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    for container in hosts[H2].running("db"):
        container.running = False  # the database on h2 is down
    deploy(config, out)
    assert not [c for c in script.shown(H1) if "--no-deps db" in c], "h1's database runs: no compose call"
    # With the run's docker config (its registry login): the database's image may need pulling.
    assert [c for c in script.shown(H2) if "--no-deps db" in c] == [
        f"env DOCKER_CONFIG={DOCKER_CONFIG_DIR} docker compose --project-directory /srv/app --file "
        "/srv/app/compose.yaml --file /srv/app/compose.tagship.yaml up --detach --no-recreate --no-deps db"
    ]
    assert hosts[H2].running("db"), "h2's database was started"


def test_the_registry_password_travels_on_stdin_and_is_never_shown(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    deploy(config, out)
    logins = [c for c in script.calls if "login" in c.argv and c.argv[c.argv.index("login") - 1] == "docker"]
    assert {c.server for c in logins} == {LOCAL, H1, H2}
    assert all(c.stdin == PASSWORD for c in logins)
    assert not any(PASSWORD in c.shown for c in script.calls)
    assert PASSWORD not in out.err.getvalue()  # type: ignore[attr-defined]


def test_a_server_keeps_the_registry_login_only_while_the_run_pulls(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    deploy(config, out)
    for name, host in hosts.items():
        calls = [c.argv for c in script.of(name)]
        logins = [argv for argv in calls if "login" in argv]
        assert logins == [("env", f"DOCKER_CONFIG={DOCKER_CONFIG_DIR}", *docker.login("reg", "deploy", "x").argv)]
        pulls = [argv for argv in calls if "pull" in argv]
        assert pulls == [("env", f"DOCKER_CONFIG={DOCKER_CONFIG_DIR}", "docker", "pull", f"{REPOSITORY}@{DIGEST}")], (
            name
        )
        assert calls.index(("rm", "-rf", "--", DOCKER_CONFIG_DIR)) > calls.index(pulls[0]), name
        assert host.docker_config_dirs == set(), f"{name}: the credential left with the run"
        # compose starts the new release with it too: a sidecar from the same registry pulls with the login.
        ups = [argv for argv in calls if "compose" in argv and "up" in argv]
        assert ups and all(argv[:2] == ("env", f"DOCKER_CONFIG={DOCKER_CONFIG_DIR}") for argv in ups), name


def test_a_failed_deploy_removes_the_login_too(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    hosts[H2].crash_on_start = True
    with pytest.raises(HealthError):
        deploy(config, out)
    assert all(host.docker_config_dirs == set() and host.docker_configs_used for host in hosts.values())


@pytest.mark.parametrize(
    ("failing", "said", "fix"),
    [
        (
            "docker login",
            f"{H2} does not trust the TLS certificate of registry reg",
            f"put the CA certificate that signed it at /etc/docker/certs.d/reg/ca.crt on {H2}",
        ),
        ("docker pull", f"{H2} does not trust the TLS certificate of registry reg", "/etc/docker/certs.d/reg/ca.crt"),
    ],
)
def test_a_server_that_distrusts_the_registry_stops_the_deploy_before_the_switch_naming_where_the_ca_goes(
    config: Config,
    out: Output,
    script: Script,
    hosts: dict[str, FakeHost],
    checkout: FakeCheckout,
    failing: str,
    said: str,
    fix: str,
) -> None:
    x509 = "tls: failed to verify certificate: x509: certificate signed by unknown authority"
    script.on(
        failing, Result(1, "", f'Error response from daemon: Get "https://reg/v2/": {x509}'), server=H2, first=True
    )
    with pytest.raises(RegistryError) as caught:
        deploy(config, out)
    assert caught.value.message == said and fix in (caught.value.hint or ""), caught.value
    for name in hosts:
        assert not [c for c in script.shown(name) if "<switch routes>" in c or ("compose" in c and " up " in c)], name


@pytest.mark.parametrize(("keep", "removed"), [(3, ["v1.1", "v1.2", "v1.3", "v1.4"]), (10, [])])
def test_a_deploy_prunes_images_beyond_the_last_releases_kept(
    tmp_path: Path,
    out: Output,
    script: Script,
    checkout: FakeCheckout,
    keep: int,
    removed: list[str],
) -> None:
    config = write_config(tmp_path, f"\n[releases]\nkeep = {keep}\n")
    tags = tuple(f"v1.{n}" for n in range(1, 7))
    history = tuple(record(tag) for tag in tags)
    hosts = attach(script, *(FakeHost(name, name[5:7], "v1.6", tags, history) for name in (H1, H2)))
    deploy(config, out)
    for name, host in hosts.items():
        rm = [c.argv[-1] for c in script.of(name) if c.argv[:3] == ("docker", "image", "rm")]
        assert rm == [f"{REPOSITORY}:{tag}" for tag in removed], name
        kept = {ref.rsplit(":", 1)[1] for ref in host.images if ref.startswith(REPOSITORY)}
        assert kept == (set(tags) | {"v2"}) - set(removed)


FIXED_COMPOSE = "services:\n  web:\n    build: .\n    image: reg/ns/app:latest\n    ports: ['18100:8080']\n"
NO_TAG_KEY = CONFIG.replace('tag_key = "APP_IMAGE_TAG"\n', "")


def fixed_tag_servers(script: Script) -> dict[str, FakeHost]:
    """Both servers run v1 of a compose file that spells out reg/ns/app:latest (its override names v1)."""
    return attach(script, *(FakeHost(n, n[5:7], fixed_tag=True, records=(record("v1", env={}),)) for n in (H1, H2)))


def override_images(host: FakeHost) -> dict[str, str]:
    services = yaml.safe_load(host.files[OVERRIDE].replace("!reset ", ""))["services"]
    return {name: service["image"] for name, service in services.items() if "image" in service}


@pytest.mark.parametrize("proxied", [True, False], ids=["through the proxy", "plain compose up"])
def test_a_compose_file_with_a_fixed_tag_is_deployed_unchanged_with_the_image_in_the_override(
    tmp_path: Path, out: Output, script: Script, monkeypatch: pytest.MonkeyPatch, proxied: bool
) -> None:
    extra = "" if proxied else "\n[proxy]\nenabled = false\n\n[verify]\nstable_seconds = 0\n"
    config = write_config(tmp_path, extra, text=NO_TAG_KEY)
    plug_local(monkeypatch, script, FakeCheckout(compose_file=FIXED_COMPOSE))
    hosts = fixed_tag_servers(script)
    env_before = hosts[H1].files[ENV]
    deploy(config, out)
    for name, host in hosts.items():
        switch = "--scale web=2 web" if proxied else "up --detach web"
        in_order(
            script.shown(name),
            [
                f"docker tag reg/ns/app@{DIGEST} reg/ns/app:v2",
                "<atomic write> sh /srv/app/compose.tagship.yaml 644",
                switch,
                "history entry: deploy v2 succeeded",
            ],
        )
        assert not any("<atomic write> sh /srv/app/.env" in line for line in script.shown(name)), ".env is as it was"
        assert host.files[ENV] == env_before and "APP_IMAGE_TAG=v1" in env_before, name
        assert host.files[COMPOSE] == FIXED_COMPOSE, "the compose file is deployed unchanged"
        assert override_images(host) == {"web": f"{REPOSITORY}:v2", "worker": f"{REPOSITORY}:v2"}, name
        assert {c.image for c in host.running("web")} == {image_id("v2")}, name
        last = host.history()[-1]
        assert (last.version, last.image, last.env, last.result) == ("v2", f"{REPOSITORY}:v2", {}, "succeeded")
        if proxied:
            assert host.served() == "app-web-2" and {c.image for c in host.running("worker")} == {image_id("v2")}
        assert "container_name" in host.files[OVERRIDE] if proxied else "container_name" not in host.files[OVERRIDE]


@pytest.fixture
def worker_publishes_a_port(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake project's worker (the release's image) publishes port 18101 of its own."""
    from tests.middle import fake_host

    original = fake_host.rendered

    def with_port(tag: str) -> dict[str, object]:
        project = original(tag)
        project["services"]["worker"]["ports"] = [{"target": 8080, "published": "18101", "protocol": "tcp"}]
        return project

    monkeypatch.setattr(fake_host, "rendered", with_port)


def test_a_second_service_of_the_image_publishing_a_port_switches_with_the_web_service(
    config: Config,
    out: Output,
    script: Script,
    hosts: dict[str, FakeHost],
    checkout: FakeCheckout,
    worker_publishes_a_port: None,
) -> None:
    deploy(config, out)
    admin = proxy.listener_name(PROXY_NAME, PublishedPort(18101, 18101))
    for name, host in hosts.items():
        p = host.prefix
        shown = script.shown(name)
        in_order(
            shown,
            [
                "--scale web=2 web",
                "--scale worker=2 worker",  # started beside the old one, like the web service
                "<probe until 2xx> sh http://app-web-2:8080/up",
                "<probe until 2xx> sh http://app-worker-2:8080/up",  # gated too
                "<switch routes>",  # one switch for both
                f"docker stop --time 10 {p}-web-1",
                f"docker stop --time 10 {p}-worker-1",
            ],
        )
        assert len([c for c in shown if "<switch routes>" in c]) == 1
        assert "reverse_proxy app-web-2:8080" in host.routes["back"], name
        assert "@app_app.worker header X-Tagship-App app.worker" in host.routes["back"], name
        assert "reverse_proxy app-worker-2:8080" in host.routes["back"], name
        assert host.listeners[admin] == ("app.worker", True), name
        assert [c.id for c in host.running("worker")] == [f"{p}-worker-2"], name
        assert "ports: !reset []" in host.files[OVERRIDE].split("  worker:")[1], "its host port goes to the proxy"


def test_a_new_port_gets_a_listener_of_its_own_and_the_proxy_and_other_listeners_are_left_alone(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    other = proxy.listener_name(PROXY_NAME, PublishedPort(9999, 9999))
    for host in hosts.values():
        host.listeners = {other: ("another-app", True)}  # the app's port has no listener yet
    deploy(config, out)
    mine = proxy.listener_name(PROXY_NAME, PublishedPort(PORT, PORT))
    for name, host in hosts.items():
        assert host.listeners == {other: ("another-app", True), mine: (PROJECT, True)}, name
        shown = script.shown(name)
        assert not [c for c in shown if c.startswith("docker run") and "tagship.proxy=1" in c], "proxy not recreated"
        assert not [c for c in shown if other in c], "another app's listener is never touched"


def test_a_failed_deploy_removes_the_listeners_it_started_and_only_those(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    other = proxy.listener_name(PROXY_NAME, PublishedPort(9999, 9999))
    for host in hosts.values():
        host.listeners = {other: ("another-app", True)}
    refused = Result(1, "back changed\nfront refused\n", "adapting config: unknown directive")
    script.on("<switch routes>", refused, server=H2, first=True)  # after the listeners started
    with pytest.raises(HealthError):
        deploy(config, out)
    for name, host in hosts.items():
        assert host.listeners == {other: ("another-app", True)}, name
        assert any(c.startswith("docker run") and "tagship.app=app" in c for c in script.shown(name)), name


def test_a_listener_that_refuses_its_new_route_puts_every_route_back_on_every_server(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    script.on("<route listener>", Result(1, "", "[ALERT] config: parsing error"), server=H2, times=1, first=True)
    with pytest.raises(HealthError, match="did not take the new route"):
        deploy(config, out)
    for name, host in hosts.items():
        assert host.listener_serves() == ["app-web-1"], name
        assert host.served() == "app-web-1" and host.env_tag() == "v1", name
        assert [c.id for c in host.running("web")] == [f"{host.prefix}-web-1"], name
    # h2's listener may have taken the route before its reply was lost: it is routed back as well.
    assert len([c for c in script.shown(H2) if "<route listener>" in c]) == 2


def test_a_listener_that_cannot_be_routed_back_still_leaves_the_back_tier_routed_back(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    script.on("<route listener>", Result(1, "", "[ALERT] config: parsing error"), server=H2, first=True)
    with pytest.raises(HealthError, match="did not take the new route"):
        deploy(config, out)
    assert hosts[H2].served() == "app-web-1", "the undo goes on past a listener that fails"
    assert hosts[H1].listener_serves() == ["app-web-1"] and hosts[H1].served() == "app-web-1"


def test_a_port_served_by_another_app_is_refused_by_name_before_the_switch(
    config: Config, out: Output, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    mine = proxy.listener_name(PROXY_NAME, PublishedPort(PORT, PORT))
    for host in hosts.values():
        host.listeners = {mine: ("shop", True)}
        host.other_projects = {"shop"}
    with pytest.raises(ConfigError, match=f"port {PORT} is already served by app 'shop'"):
        deploy(config, out)
    for host in hosts.values():
        assert host.served() == "app-web-1" and host.env_tag() == "v1"
        assert host.listeners == {mine: ("shop", True)}


def test_the_listener_of_an_app_with_no_container_left_is_taken_over(
    config: Config, out: Output, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    mine = proxy.listener_name(PROXY_NAME, PublishedPort(PORT, PORT))
    for host in hosts.values():
        host.listeners = {mine: ("shop", True)}  # shop was removed with `docker compose down`
    deploy(config, out)
    for host in hosts.values():
        assert host.listeners == {mine: (PROJECT, True)} and host.served() == "app-web-2"


def test_docker_losing_the_race_to_fill_a_new_volume_is_tried_once_more(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    race = "Error response from daemon: failed to mkdir /var/lib/docker/volumes/app_static/_data/css: file exists"
    script.on("--scale web=2 web", Result(1, "", race), server=H2, times=1, first=True)
    deploy(config, out)
    assert len([c for c in script.shown(H2) if c.endswith("--scale web=2 web")]) == 2
    assert hosts[H2].served() == "app-web-2" and hosts[H2].env_tag() == "v2"


def test_any_other_failure_to_start_the_new_containers_is_not_retried(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    script.on("--scale web=2 web", Result(1, "", "no space left on device"), server=H2, times=1, first=True)
    with pytest.raises(CommandFailed, match="exit 1"):
        deploy(config, out)
    assert len([c for c in script.shown(H2) if c.endswith("--scale web=2 web")]) == 1


def test_a_refused_switch_removes_the_new_containers_of_every_switched_service(
    config: Config,
    out: Output,
    script: Script,
    hosts: dict[str, FakeHost],
    checkout: FakeCheckout,
    worker_publishes_a_port: None,
) -> None:
    refused = Result(1, "back refused\n", "adapting config: unknown directive")
    script.on("<switch routes>", refused, server=H2, first=True)
    with pytest.raises(HealthError):
        deploy(config, out)
    for name, host in hosts.items():
        p = host.prefix
        assert [c.id for c in host.running("web")] == [f"{p}-web-1"], name
        assert [c.id for c in host.running("worker")] == [f"{p}-worker-1"], name
        assert host.env_tag() == "v1", name


LATIN1 = "GREETING=gr\udcfc\udcdf\n"  # "grüß" in Latin-1: bytes that are not UTF-8
USER_ENV = f'# ours\n{LATIN1}export APP_IMAGE_TAG = "v1"  # set by CI\nAPP_PORT={PORT}\n'


def test_a_dotenv_keeps_every_byte_but_the_tag(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    for host in hosts.values():
        host.files[ENV] = USER_ENV
    deploy(config, out)
    for host in hosts.values():
        written = host.files[ENV].encode("utf-8", "surrogateescape")
        assert written.startswith(b'# ours\nGREETING=gr\xfc\xdf\nexport APP_IMAGE_TAG = "v2"  # set by CI\n'), written


def test_a_failed_deploy_puts_back_the_same_dotenv_bytes(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    for host in hosts.values():
        host.files[ENV] = USER_ENV
    script.on(
        "<switch routes>", Result(1, "back refused\n", "adapting config: unknown directive"), server=H2, first=True
    )
    with pytest.raises(HealthError):
        deploy(config, out)
    for name, host in hosts.items():
        assert host.files[ENV] == USER_ENV, name


def test_hosts_limits_a_deploy_to_the_servers_it_names(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    from tagship import config as config_mod

    deploy(config_mod.only_hosts(config, "h1.invalid"), out)  # its host, as `--hosts h1.invalid`
    assert hosts[H1].env_tag() == "v2" and hosts[H1].served() == "app-web-2"
    assert hosts[H2].env_tag() == "v1" and hosts[H2].served() == "app-web-1"
    assert script.shown(H2) == [], "a server left out is not even connected to"


def test_a_missing_env_seed_is_needed_only_by_a_server_without_a_dotenv(
    tmp_path: Path, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    """env.seed names a file that is not there (a CI runner without the git-ignored .env): servers
    that have their .env deploy as ever, a dry run too."""
    text = CONFIG.replace('tag_key = "APP_IMAGE_TAG"\n', 'tag_key = "APP_IMAGE_TAG"\nseed = "env.example"\n')
    config = write_config(tmp_path, text=text)
    deploy_command.run(config, out, deploy_command.DeployOptions(dry_run=True))
    deploy(config, out)
    assert hosts[H1].env_tag() == "v2" and hosts[H2].env_tag() == "v2"


def test_a_missing_env_seed_for_a_server_without_a_dotenv_is_a_config_error_and_nothing_switches(
    tmp_path: Path, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    """Where a server has no .env and env.seed names no file: exit 2 naming the key and the path
    before that .env is written (it was a FileNotFoundError), and no server switches."""
    text = CONFIG.replace('tag_key = "APP_IMAGE_TAG"\n', 'tag_key = "APP_IMAGE_TAG"\nseed = "env.example"\n')
    config = write_config(tmp_path, text=text)
    del hosts[H1].files[ENV]
    before = hosts[H2].files[ENV]
    with pytest.raises(ConfigError) as caught:
        deploy_command.run(config, out, deploy_command.DeployOptions())
    assert caught.value.exit_code == 2
    assert str(caught.value).startswith(f"env.seed: cannot read {tmp_path / 'env.example'}: No such file")
    assert ENV not in hosts[H1].files and hosts[H2].files[ENV] == before


def test_an_env_seed_starts_the_dotenv_of_a_server_that_has_none(
    tmp_path: Path, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    text = CONFIG.replace('tag_key = "APP_IMAGE_TAG"\n', 'tag_key = "APP_IMAGE_TAG"\nseed = "env.example"\n')
    config = write_config(tmp_path, text=text)
    (tmp_path / "env.example").write_text(f"APP_PORT={PORT}\nFROM_SEED=1\n", encoding="utf-8")
    del hosts[H1].files[ENV]
    deploy(config, out)
    assert "FROM_SEED=1" in hosts[H1].files[ENV] and hosts[H1].env_tag() == "v2"
    assert "FROM_SEED" not in hosts[H2].files[ENV]


def test_a_local_dotenv_that_is_not_utf8_is_a_config_error_naming_it(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    """The local .env, which Compose reads to render the tagged files, in Latin-1: exit 2 naming
    env.file, the file and the byte (it was a UnicodeDecodeError)."""
    (config.root / ".env").write_bytes(b"APP_IMAGE_TAG=v1\nGREETING=gr\xfc\xdf\n")
    with pytest.raises(ConfigError) as caught:
        deploy_command.run(config, out, deploy_command.DeployOptions(dry_run=True))
    assert caught.value.exit_code == 2
    path = config.root / ".env"
    assert str(caught.value) == f"env.file: {path} is not UTF-8 text (byte 0xfc at offset 28); save it as UTF-8"
