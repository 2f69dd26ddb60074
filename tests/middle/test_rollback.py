"""Choices over the servers' histories: which release to roll back to, which images to keep; a rollback whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from tagship.builders import history
from tagship.builders.history import Record
from tagship.commands import rollback as rollback_command
from tagship.config import Config
from tagship.engine.connections import Connections
from tagship.errors import ConfigError
from tagship.output import Output
from tagship.runtime import ServerReleases
from tagship.runtime.compose import retention
from tagship.runtime.compose.target import targets_for
from tests.middle.fake_checkout import FakeCheckout
from tests.middle.fake_host import ENV, HISTORY, OVERRIDE, FakeHost, attach, image_id, record
from tests.middle.recorder import CLOSE, CONNECT, Script, in_order, printed
from tests.middle.settings import CONFIG, H1, H2, write_config


def server(name: str, current: str, *versions: str, failed: tuple[str, ...] = ()) -> ServerReleases:
    records = [record(v) for v in versions] + [record(v, result="failed") for v in failed]
    return ServerReleases(name, current, records, f"APP_IMAGE_TAG={current}\n")


def test_the_previous_release_is_the_one_deployed_before_by_deploy_order_not_tag_order() -> None:
    # v1 was deployed again after v2, then v3; a failed v4 never counts
    states = [server(H1, "v3", "v1", "v2", "v1", "v3", failed=("v4",)), server(H2, "v3", "v2", "v1", "v3")]
    assert rollback_command.choose(states, "").version == "v1"


def test_an_explicit_version_is_found_in_every_history() -> None:
    states = [server(H1, "v3", "v1", "v2", "v3"), server(H2, "v3", "v1", "v2", "v3")]
    chosen = rollback_command.choose(states, "v1")
    assert (chosen.version, chosen.env) == ("v1", {"APP_IMAGE_TAG": "v1"})


@pytest.mark.parametrize(
    ("states", "version"),
    [
        ([server(H1, "v3", "v1", "v2", "v3"), server(H2, "v2", "v1", "v2")], ""),  # previous: v2 on h1, v1 on h2
        ([server(H1, "v3", "v1", "v2", "v3"), server(H2, "v3", "v2", "v3")], "v1"),  # h2 never had v1
        ([server(H1, "v1", "v1"), server(H2, "v1", "v1")], ""),  # nothing before the first release
    ],
    ids=["servers disagree on the previous release", "a version one server lacks", "no previous release"],
)
def test_no_common_release_is_a_config_error_that_lists_every_server(
    states: list[ServerReleases], version: str
) -> None:
    with pytest.raises(ConfigError, match="cannot roll back to") as caught:
        rollback_command.choose(states, version)
    assert f"{H1}: current {states[0].current}, history " in caught.value.detail
    assert f"{H2}: current {states[1].current}, history " in caught.value.detail


def chain(*versions: str) -> list[Record]:
    return [record(v) for v in versions]


@pytest.mark.parametrize(
    ("records", "current", "deploying", "keep", "kept"),
    [
        (chain("v1", "v2", "v3", "v4", "v5"), "v5", "", 3, {"v3", "v4", "v5"}),
        (chain("v1", "v2", "v3"), "v3", "", 1, {"v2", "v3"}),  # the previous one always
        (chain("v1", "v2", "v3", "v4", "v5"), "v2", "", 2, {"v1", "v2", "v4", "v5"}),  # rolled back to v2
        (chain("v1", "v2", "v3", "v4"), "v1", "", 2, {"v1", "v3", "v4"}),  # nothing before v1
        (chain("v1", "v2", "v3"), "v4", "v4", 1, {"v3", "v4"}),  # during a deploy: v4 is not in the history yet
        (chain("v1", "v2", "v3", "v1"), "v1", "", 1, {"v1", "v3"}),  # v1 deployed again: v3 came before it
    ],
)
def test_prune_keeps_the_last_releases_and_always_the_current_and_previous(
    records: list[Record], current: str, deploying: str, keep: int, kept: set[str]
) -> None:
    assert history.prune_choice(records, current, deploying, keep) == kept


def test_the_tag_key_is_the_one_whose_recorded_value_is_the_version() -> None:
    pinned = Record("v2", "reg/ns/app:v2", "deploy", "succeeded", "t", env={"IMG": "reg/ns/app", "TAG": "v2@sha256:1"})
    older = Record("v1", "reg/ns/app:v1", "deploy", "succeeded", "t", env={"OLD_TAG": "v1"})
    assert retention.recorded_tag_key([older, pinned]) == "TAG"
    assert retention.recorded_tag_key([pinned, older]) == "OLD_TAG", "the newest record decides"
    assert retention.recorded_tag_key([Record("v1", "reg/ns/app:v1", "deploy", "succeeded", "t")]) == ""


def test_read_state_finds_the_current_version_through_the_recorded_tag_key(
    tmp_path: Path, out: Output, script: Script
) -> None:
    config = write_config(tmp_path, text=CONFIG.replace('tag_key = "APP_IMAGE_TAG"\n', ""))
    pinned = Record("v2", "reg/ns/app:v2", "deploy", "succeeded", "t", env={"RELEASE": "v2@sha256:1"})
    host = FakeHost(H1, "h1", records=(record("v1"), pinned))
    host.files[ENV] = "RELEASE=v2@sha256:1\nAPP_IMAGE_TAG=v1\n"
    attach(script, host)
    state = retention.read_state(config, targets_for(config, Connections(config, out), ())[0])
    assert (state.server, state.current, [r.version for r in state.records]) == (H1, "v2", ["v1", "v2"])


def test_a_rollback_switches_every_server_to_the_previous_release_and_records_it(
    config: Config, out: Output, script: Script, checkout: FakeCheckout
) -> None:
    servers = [FakeHost(name, name[5:7], "v2", ("v1", "v2"), (record("v1"), record("v2"))) for name in (H1, H2)]
    for host in servers:
        host.files[ENV] += "COMPOSE_FILE=compose.yaml:compose.tagship.yaml\n"  # as a deploy leaves it
    hosts = attach(script, *servers)
    release = rollback_command.rollback(config, out)
    assert release.version == "v1"
    for name, host in hosts.items():
        p = host.prefix
        in_order(
            script.shown(name),
            [
                CONNECT,
                "<take lock>",
                "<read history>",
                "<read file> sh /srv/app/.env",
                "docker image inspect --format '{{.Id}}' reg/ns/app:v1",
                "--file /srv/app/compose.yaml config --format json",
                "<atomic write> sh /srv/app/.env 600  <<< .env with APP_IMAGE_TAG=v1",
                "--scale web=2 web",
                "<probe until 2xx> sh http://app-web-2:8080/up",
                "<switch routes>",
                f"docker stop --time 10 {p}-web-1",
                "history entry: rollback v1 succeeded",
                "<release own lock>",
                CLOSE,
            ],
        )
        renders = [c for c in script.shown(name) if c.endswith("config --format json")]
        assert len(renders) == 1, "the project is rendered once: each render of a real project costs 0.3-0.9 s"
        assert host.env_tag() == "v1" and host.served() == "app-web-2", name
        assert [(c.id, c.image) for c in host.running("web")] == [(f"{p}-web-2", image_id("v1"))], name
        assert (host.history()[-1].version, host.history()[-1].kind) == ("v1", "rollback"), name
        assert host.lock_holder == "", name
    rows = [" ".join(line.split()[:-1]) for line in printed(out).split("summary:\n", 1)[1].splitlines()]
    assert rows == ["server release result", f"{H1} v2 -> v1 switched", f"{H2} v2 -> v1 switched"]


def test_a_fixed_tag_project_rolls_back_by_the_override_and_reads_its_current_release_there(
    tmp_path: Path, out: Output, script: Script, checkout: FakeCheckout
) -> None:
    config = write_config(tmp_path, text=CONFIG.replace('tag_key = "APP_IMAGE_TAG"\n', ""))
    releases = (record("v1", env={}), record("v2", env={}))
    hosts = attach(script, *(FakeHost(n, n[5:7], "v2", ("v1", "v2"), releases, fixed_tag=True) for n in (H1, H2)))
    env_before = hosts[H1].files[ENV]

    def current() -> list[str]:
        targets = targets_for(config, Connections(config, out), ())
        return [retention.read_state(config, target).current for target in targets]

    assert current() == ["v2", "v2"], "the override's image names the current release"
    assert rollback_command.rollback(config, out).version == "v1"
    for name, host in hosts.items():
        in_order(script.shown(name), ["<atomic write> sh /srv/app/compose.tagship.yaml 644", "--scale web=2 web"])
        assert 'image: "reg/ns/app:v1"' in host.files[OVERRIDE] and host.files[ENV] == env_before, name
        assert [(c.image, c.running) for c in host.running("web")] == [(image_id("v1"), True)], name
        last = host.history()[-1]
        assert (last.version, last.kind, last.image, last.env) == ("v1", "rollback", "reg/ns/app:v1", {}), name
    assert current() == ["v1", "v1"]
    for host in hosts.values():
        del host.files[OVERRIDE]
    assert current() == ["v1", "v1"], "without an override, the last release that succeeded"


def test_a_history_past_its_limit_is_rotated_and_the_next_rollback_still_finds_its_release(
    config: Config, out: Output, script: Script, checkout: FakeCheckout, monkeypatch: pytest.MonkeyPatch
) -> None:
    # v1, v2, then a long run of failed v3 deploys: only the old lines say where a rollback goes.
    releases = (record("v1"), record("v2"), *(record("v3", result="failed") for _ in range(30)))
    monkeypatch.setattr(history, "ROTATE_AT", 2000)
    hosts = attach(script, *(FakeHost(n, n[5:7], "v2", ("v1", "v2"), releases) for n in (H1, H2)))
    assert rollback_command.rollback(config, out).version == "v1"
    for name, host in hosts.items():
        kept = host.files[HISTORY]
        assert len(kept.encode()) < 2000, name
        assert len(history.parse(host.files[f"{HISTORY}.1"])) == len(releases) + 1, "the whole old file"
        assert [(r.version, r.kind, r.result) for r in host.history() if r.result == "succeeded"] == [
            ("v1", "deploy", "succeeded"),
            ("v2", "deploy", "succeeded"),
            ("v1", "rollback", "succeeded"),
        ], name
        in_order(script.shown(name), ["history entry: rollback v1 succeeded", "<read history>", "<rotate history>"])
    # The releases a rollback reaches are still there: back to v2 (the one deployed after v1).
    assert rollback_command.rollback(config, out, "v2").version == "v2"
    assert [host.env_tag() for host in hosts.values()] == ["v2", "v2"]
