"""`tagship deploy -e NAME` on recording transports: each environment's servers, and only those, get the release."""

from __future__ import annotations

from pathlib import Path

import pytest

from tagship import config as config_mod
from tagship.commands import deploy as deploy_command
from tagship.output import Output
from tests.middle.fake_checkout import LOCAL, FakeCheckout
from tests.middle.fake_host import FakeHost
from tests.middle.recorder import CLOSE, Script
from tests.middle.settings import CONFIG, H1, H2, PASSWORD

ENVIRONMENTS = f"""
[hooks.local]
after_deploy = ["./smoke.sh"]

[environments.staging]
servers = ["{H1}"]

[environments.production]
servers = ["{H2}"]
"""


@pytest.mark.parametrize(("environment", "chosen", "other"), [("staging", H1, H2), ("production", H2, H1)])
def test_a_deploy_to_an_environment_changes_its_servers_only(
    tmp_path: Path,
    out: Output,
    script: Script,
    hosts: dict[str, FakeHost],
    checkout: FakeCheckout,
    environment: str,
    chosen: str,
    other: str,
) -> None:
    (tmp_path / "tagship.toml").write_text(CONFIG + ENVIRONMENTS)  # common: both servers; each environment: one
    config = config_mod.load(tmp_path, {"TAGSHIP_REGISTRY_PASSWORD": PASSWORD}, environment)
    deploy_command.run(config, out, deploy_command.DeployOptions())

    assert hosts[chosen].env_tag() == "v2" and hosts[chosen].served() == "app-web-2"
    last = hosts[chosen].history()[-1]
    assert (last.version, last.result, last.environment) == ("v2", "succeeded", environment)
    assert [c for c in script.shown(other) if c != CLOSE] == [], f"{other} is not in {environment}"
    assert hosts[other].env_tag() == "v1" and [r.version for r in hosts[other].history()] == ["v1"]
    (smoke,) = [c for c in script.of(LOCAL) if c.argv[:2] == ("sh", "-c")]
    assert smoke.command is not None and dict(smoke.command.env)["TAGSHIP_ENVIRONMENT"] == environment
