"""A server's files are untrusted input: a crafted history line or lock holder reaches neither .env nor
the terminal; a dry run leaves nothing behind on this machine."""

from __future__ import annotations

import io
import json
import subprocess
import tempfile
from pathlib import Path

import pytest

from tagship.builders import lock
from tagship.commands import deploy as deploy_command
from tagship.commands import releases as releases_command
from tagship.commands import rollback as rollback_command
from tagship.commands.lock import lock_status
from tagship.config import Config
from tagship.engine import connections as connections_mod
from tagship.errors import ConfigError, LockedError
from tagship.output import Output
from tagship.remote import transport as transport_mod
from tagship.remote.transport import Result
from tests.middle.fake_checkout import FakeCheckout
from tests.middle.fake_host import ENV, HISTORY, FakeHost, attach, record
from tests.middle.recorder import Script, printed
from tests.middle.settings import H1, H2

ESC = "\x1b]0;owned\x07\x1b[2J"  # retitle the terminal, clear the screen
CONTROL = [chr(c) for c in (*range(0x20), *range(0x7F, 0xA0)) if c != 0x0A]


def written(out: Output) -> str:
    """Everything the test's Output wrote, stdout and stderr."""
    assert isinstance(out.out, io.StringIO)
    return out.out.getvalue() + printed(out)


def test_releases_shows_history_fields_without_their_control_characters_and_names_skipped_lines(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost]
) -> None:
    crafted = record("v2")
    fields = {**json.loads(crafted.line()), "deployed_by": f"mallory{ESC}\n  * v9  forged", "at": f"t{ESC}"}
    hosts[H1].files[HISTORY] += json.dumps(fields) + "\n" + json.dumps({**fields, "seconds": "slow"}) + "\n"
    releases_command.list_releases(config, out)
    shown = written(out)
    assert not any(c in shown for c in CONTROL)
    assert "mallory\\x1b]0;owned\\x07\\x1b[2J\\n  * v9  forged" in shown
    assert not any(row.lstrip().startswith("* v9") for row in shown.splitlines()), "no forged line"
    assert f"{H1}: .tagship/releases.jsonl line 3: seconds is not a number; that line is ignored" in shown


def test_a_crafted_history_line_cannot_write_other_lines_into_env_on_rollback(
    config: Config, out: Output, script: Script, checkout: FakeCheckout
) -> None:
    # The crafted v1 comes after the real one, so without the check it is "the release before v2".
    crafted = record("v1", env={"APP_IMAGE_TAG": "v1\nDATABASE_URL=postgres://evil.example/db"})
    servers = [
        FakeHost(name, name[5:7], "v2", ("v1", "v2"), (record("v1"), crafted, record("v2"))) for name in (H1, H2)
    ]
    hosts = attach(script, *servers)
    assert rollback_command.rollback(config, out).version == "v1"
    for name, host in hosts.items():
        assert "evil" not in host.files[ENV] and host.env_tag() == "v1", name
        assert f"{name}: .tagship/releases.jsonl line 2: the value of env key APP_IMAGE_TAG" in printed(out)


def test_a_rollback_to_a_release_known_only_from_a_crafted_line_is_refused(
    config: Config, out: Output, script: Script, checkout: FakeCheckout
) -> None:
    crafted = record("v0", env={"APP_IMAGE_TAG": "v0\x00"})
    servers = [FakeHost(name, name[5:7], "v1", ("v0", "v1"), (crafted, record("v1"))) for name in (H1, H2)]
    hosts = attach(script, *servers)
    env_before = {name: host.files[ENV] for name, host in hosts.items()}
    with pytest.raises(ConfigError, match="cannot roll back to v0 on every server"):
        rollback_command.rollback(config, out, "v0")
    assert {name: host.files[ENV] for name, host in hosts.items()} == env_before
    assert f"{H1}: .tagship/releases.jsonl line 1:" in printed(out)


HOLDER = lock.Holder("t", f"mallory{ESC}", "laptop\nforged", 4242, "deploy", "v9", "2026-11-27T10:02:00Z")


def test_a_lock_holder_with_escape_sequences_is_shown_escaped_when_it_blocks_a_deploy(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    hosts[H2].lock_holder = HOLDER.json()
    with pytest.raises(LockedError) as caught:
        deploy_command.run(config, out, deploy_command.DeployOptions())
    assert not any(c in str(caught.value) for c in [*CONTROL, "\n"])
    assert "mallory\\x1b]0;owned\\x07\\x1b[2J on laptop\\nforged" in str(caught.value)


def test_lock_status_shows_the_holder_escaped(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost]
) -> None:
    script.on("<lock status>", Result(0, HOLDER.json() + "\nconnection=alive\n", ""), first=True)
    assert lock_status(config, out)
    shown = written(out)
    assert not any(c in shown for c in CONTROL) and "mallory\\x1b]0;owned" in shown
    assert "laptop\\nforged" in shown, "the holder's newline does not start a line of its own"


def test_a_dry_run_with_the_real_ssh_transport_starts_no_process_and_leaves_no_temporary_directory(
    config: Config,
    out: Output,
    script: Script,
    hosts: dict[str, FakeHost],
    checkout: FakeCheckout,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setattr(connections_mod, "for_server", transport_mod.for_server)  # the servers' real transport

    def no_process(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a dry run started {args[0]}")

    monkeypatch.setattr(subprocess, "run", no_process)  # not even `ssh -O exit` on the way out
    monkeypatch.setattr(subprocess, "Popen", no_process)
    deploy_command.run(config, out, deploy_command.DeployOptions(dry_run=True))
    assert "nothing runs in a dry run" in printed(out)
    assert list(scratch.iterdir()) == [], "no tagship-ssh-* (nor tagship-build-*) directory is left"
