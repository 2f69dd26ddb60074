"""Every --json event a deploy and a rollback emit (good and failed runs) fits the documented schema
(docs/json-events.schema.json), and the doc names every event type: the doc cannot drift from the code."""

from __future__ import annotations

import ast
import io
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tagship import cli
from tagship.commands import deploy as deploy_command
from tagship.config import Config
from tagship.errors import CommandFailed
from tagship.output import Output
from tagship.remote.transport import Result
from tests.middle.fake_checkout import FakeCheckout
from tests.middle.fake_host import ENV, FakeHost, attach, record
from tests.middle.recorder import Script
from tests.middle.settings import H1, H2, PASSWORD

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "json-events.schema.json").read_text(encoding="utf-8"))
DOC = (ROOT / "docs" / "json-events.md").read_text(encoding="utf-8")
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


@pytest.fixture
def events_out() -> Output:
    return Output(json_mode=True, out=io.StringIO(), err=io.StringIO())


def events(out: Output) -> list[dict[str, Any]]:
    assert isinstance(out.out, io.StringIO)
    return [json.loads(line) for line in out.out.getvalue().splitlines()]


def assert_documented(found: list[dict[str, Any]]) -> None:
    for event in found:
        problems = [e.message for e in VALIDATOR.iter_errors(event)]
        assert not problems, f"{event} does not fit docs/json-events.schema.json: {problems}"


def test_the_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def cli_events(root: Path, capsys: pytest.CaptureFixture[str], *words: str) -> tuple[int, list[dict[str, Any]]]:
    """`tagship --json WORDS` as typed (the real CLI, on the middle tier's servers): exit code, events."""
    code = cli.main(["-C", str(root), "--json", *words])
    return code, [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_a_deploy_emits_only_documented_events(
    config: Config,
    hosts: dict[str, FakeHost],
    checkout: FakeCheckout,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TAGSHIP_REGISTRY_PASSWORD", PASSWORD)
    code, found = cli_events(config.root, capsys, "deploy")
    assert code == 0, found
    assert_documented(found)
    assert {"step", "step_done", "server_status", "command", "info", "result"} <= {e["event"] for e in found}
    assert found[-1]["event"] == "result" and found[-1]["version"] == "v2"
    pulls = [e for e in found if e["event"] == "server_status" and e["step"] == "pull reg/ns/app:v2"]
    assert sorted((e["server"], e["state"]) for e in pulls) == [(s, st) for s in (H1, H2) for st in ("done", "started")]
    assert all(e["seconds"] >= 0 for e in pulls if e["state"] == "done")


def test_status_emits_a_documented_event(
    config: Config, hosts: dict[str, FakeHost], capsys: pytest.CaptureFixture[str]
) -> None:
    _, found = cli_events(config.root, capsys, "status")  # its exit code says whether a server drifts
    assert_documented(found)
    assert [e["event"] for e in found if e["event"] == "status"] == ["status"]


def test_a_failed_deploy_emits_only_documented_events(
    config: Config, events_out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    script.on("--scale web=2 web", Result(1, "", "no space left on device"), server=H2, first=True)
    with pytest.raises(CommandFailed) as caught:
        deploy_command.run(config, events_out, deploy_command.DeployOptions())
    events_out.error(str(caught.value), caught.value.detail)  # as the CLI reports it
    found = events(events_out)
    assert_documented(found)
    assert {"warning", "error"} <= {e["event"] for e in found}
    assert [e["server"] for e in found if e["event"] == "server_status" and e["state"] == "failed"] == [H2]


def test_a_rollback_emits_only_documented_events(
    config: Config,
    script: Script,
    checkout: FakeCheckout,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TAGSHIP_REGISTRY_PASSWORD", PASSWORD)
    servers = [FakeHost(name, name[5:7], "v2", ("v1", "v2"), (record("v1"), record("v2"))) for name in (H1, H2)]
    for host in servers:
        host.files[ENV] += "COMPOSE_FILE=compose.yaml:compose.tagship.yaml\n"
    attach(script, *servers)
    code, found = cli_events(config.root, capsys, "rollback")
    assert code == 0, found
    assert_documented(found)
    assert {"step", "step_done", "server_status", "result"} <= {e["event"] for e in found}
    assert found[-1]["event"] == "result" and found[-1]["version"] == "v1"


def test_the_schema_refuses_an_event_that_is_not_documented() -> None:
    assert not VALIDATOR.is_valid({"event": "step", "time": 1.0, "title": "x", "extra": 1})
    assert not VALIDATOR.is_valid({"event": "progress", "time": 1.0})
    assert not VALIDATOR.is_valid({"event": "server_status", "time": 1.0, "step": "s", "server": "h", "state": "done"})


def event_kinds_in_source() -> set[str]:
    """Every literal event name the code passes to Output.event (self.event / out.event)."""
    found: set[str] = set()
    for path in (ROOT / "src" / "tagship").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "event"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                found.add(str(node.args[0].value))
    return found


def test_every_event_the_code_emits_is_in_the_schema_and_the_doc() -> None:
    in_schema = set(SCHEMA["properties"]["event"]["enum"])
    in_doc = set(re.findall(r"^### `([a-z_]+)`", DOC, flags=re.MULTILINE))
    assert event_kinds_in_source() <= in_schema, "an event type the code emits is missing from the schema"
    assert in_schema == in_doc, "docs/json-events.md and the schema list different event types"
    assert in_schema == {ref["$ref"].split("/")[-1] for ref in SCHEMA["oneOf"]}
