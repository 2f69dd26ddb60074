"""[rollout]: its values refused or taken, and the batches a run is cut into."""

from __future__ import annotations

from pathlib import Path

import pytest

from tagship import config as config_mod
from tagship.config import Config, RolloutConfig, batch_size
from tagship.engine import rollout
from tagship.errors import ConfigError
from tagship.remote.server import Server

SERVERS = 'servers = ["a.example", "deploy@b.example", "c.example:2222", "d.example", "e.example"]\n'


def load(tmp_path: Path, text: str, servers: str = SERVERS) -> Config:
    (tmp_path / "tagship.toml").write_text(servers + '[app]\npath = "/srv/app"\n\n[rollout]\n' + text)
    return config_mod.load(tmp_path, {})


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('strategy = "blue-green"', "rollout.strategy: must be one of all, canary, rolling, got 'blue-green'"),
        ("batch = 0", "rollout.batch: must be a whole number from 1 or a percentage from 1% to 100%, got 0"),
        ('batch = "150%"', "rollout.batch: must be a whole number from 1 or a percentage"),
        ('batch = "1\\u0661"', "rollout.batch: must be a whole number"),
        ('batch = "2 "', "rollout.batch: must be a whole number"),
        ("batch = 1.5", "rollout.batch: must be a number of servers or a percentage"),
        ("batch = true", "rollout.batch: must be a number of servers or a percentage"),
        ("pause = nan", "rollout.pause: must be a number from 0"),
        ("watch = -1", "rollout.watch: must be a number from 0"),
        ("canary_watch = inf", "rollout.canary_watch: must be a number from 0"),
        ('canary = "z.example"', "rollout.canary: 'z.example' is not a configured server"),
        ("speed = 3", "rollout.speed: unknown key"),
    ],
)
def test_bad_rollout_values_are_refused_with_the_key_named(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    assert problem in str(caught.value) + caught.value.detail


def test_rollout_values_are_read(tmp_path: Path) -> None:
    config = load(tmp_path, 'strategy = "rolling"\nbatch = "40%"\npause = 2.5\nwatch = 10\ncanary = "b.example"')
    assert config.rollout == RolloutConfig("rolling", "b.example", 60.0, "40%", 2.5, 10.0)
    assert load(tmp_path, "").rollout == RolloutConfig()


@pytest.mark.parametrize(
    ("batch", "servers", "size"),
    [("1", 5, 1), ("3", 5, 3), ("9", 5, 9), ("40%", 5, 2), ("50%", 3, 2), ("1%", 6, 1), ("100%", 6, 6), ("0", 5, None)],
)
def test_batch_sizes(batch: str, servers: int, size: int | None) -> None:
    assert batch_size(batch, servers) == size


class Held:
    def __init__(self, server: Server) -> None:
        self.server = server


def batches(config: Config) -> list[rollout.Batch[Held]]:
    return rollout.batches(config.rollout, [Held(s) for s in config.servers])


def test_all_at_once_is_one_batch_with_the_watch(tmp_path: Path) -> None:
    (run,) = batches(load(tmp_path, "watch = 4"))
    assert len(run.targets) == 5 and run.watch == 4 and not run.canary


def test_a_named_canary_goes_first_watched_the_longer_of_both(tmp_path: Path) -> None:
    runs = batches(load(tmp_path, 'strategy = "canary"\ncanary = "c.example:2222"\ncanary_watch = 9\nwatch = 3'))
    assert [[t.server.host for t in b.targets] for b in runs] == [
        ["c.example"],
        ["a.example", "b.example", "d.example", "e.example"],
    ]
    assert [(b.canary, b.watch) for b in runs] == [(True, 9), (False, 3)]


def test_rolling_cuts_the_servers_in_order_with_a_pause_before_each_later_batch(tmp_path: Path) -> None:
    runs = batches(load(tmp_path, 'strategy = "rolling"\nbatch = 2\npause = 5'))
    assert [[t.server.host for t in b.targets] for b in runs] == [
        ["a.example", "b.example"],
        ["c.example", "d.example"],
        ["e.example"],
    ]
    assert [b.pause for b in runs] == [0, 5, 5]


def test_one_server_is_one_batch_whatever_the_strategy(tmp_path: Path) -> None:
    for strategy in ("canary", "rolling"):
        config = load(tmp_path, f'strategy = "{strategy}"\ncanary_watch = 9', servers='servers = ["a.example"]\n')
        (run,) = batches(config)
        assert run.watch == 0 and not run.canary


def test_a_canary_left_out_by_hosts_gives_way_to_the_first_server(tmp_path: Path) -> None:
    config = config_mod.only_hosts(load(tmp_path, 'strategy = "canary"\ncanary = "a.example"'), "d.example,e.example")
    runs = batches(config)
    assert [[t.server.host for t in b.targets] for b in runs] == [["d.example"], ["e.example"]]
