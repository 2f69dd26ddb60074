"""hooks.before_switch: one-off commands in the new image, before anything switches."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tagship.commands import deploy as deploy_command
from tagship.errors import TagshipError
from tagship.output import Output
from tagship.remote.transport import Result
from tests.middle.fake_checkout import FakeCheckout
from tests.middle.fake_host import FakeHost
from tests.middle.recorder import Call, Script
from tests.middle.settings import H1, H2, write_config

HOOKS = '\n[hooks]\nbefore_switch = ["python manage.py migrate --noinput", "sh -c \'echo done > /tmp/x\'"]\n'
RUN = "run --rm --no-deps --no-TTY web"


def deploy(tmp_path: Path, out: Output, extra: str) -> None:
    deploy_command.run(write_config(tmp_path, extra), out, deploy_command.DeployOptions())


def test_hooks_run_once_in_the_new_image_before_the_new_web_starts(
    tmp_path: Path, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    tags_seen: list[str] = []

    def migrate(call: Call) -> Result:
        tags_seen.append(hosts[call.server].env_tag())  # compose run takes the image .env names
        return Result(0, "Applying shop.0002_orders... OK\n", "")

    script.on(RUN, migrate, first=True)
    deploy(tmp_path, out, HOOKS)
    runs = [c for c in script.calls if RUN in c.shown]
    assert [c.server for c in runs] == [H1, H1], "on the first server only (one shared database)"
    assert runs[0].argv[-4:] == ("python", "manage.py", "migrate", "--noinput")
    assert runs[1].argv[-3:] == ("sh", "-c", "echo done > /tmp/x"), "split as a shell splits, run by no shell"
    assert tags_seen == ["v2", "v2"]
    shown = script.shown(H1)
    first_run = next(i for i, c in enumerate(shown) if RUN in c)
    assert first_run < next(i for i, c in enumerate(shown) if "--scale web=2" in c), "before the new web starts"
    assert first_run > next(i for i, c in enumerate(shown) if "<ensure network>" in c), "after the network"


def test_hooks_can_run_on_every_server(
    tmp_path: Path, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    deploy(tmp_path, out, '\n[hooks]\nbefore_switch = ["true"]\nwhere = "every"\n')
    assert sorted(c.server for c in script.calls if RUN in c.shown) == [H1, H2]


def test_a_failing_hook_aborts_with_the_old_release_serving_and_nothing_switched(
    tmp_path: Path, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    script.on(RUN, Result(1, "", "django.db.utils.OperationalError: no such table: shop_order\n"), first=True)
    failed = re.escape("before_switch hook `python manage.py migrate --noinput` failed")
    with pytest.raises(TagshipError, match=failed) as caught:
        deploy(tmp_path, out, HOOKS)
    assert "no such table" in caught.value.detail
    for name, host in hosts.items():
        assert host.env_tag() == "v1", name
        assert host.served() == "app-web-1", name
        assert [c.id for c in host.running("web")] == [f"{host.prefix}-web-1"], name
        assert not any("--scale web=2" in c for c in script.shown(name)), "no new web was started"
        assert host.history()[-1].result == "failed" and host.lock_holder == "", name


def test_a_rollback_runs_no_hooks(
    tmp_path: Path, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    from tagship.commands.rollback import rollback

    deploy(tmp_path, out, HOOKS)
    calls = len(script.calls)
    rollback(write_config(tmp_path, HOOKS), out)
    assert not [c for c in script.calls[calls:] if RUN in c.shown]
