"""The deploying machine: a git checkout of the app tagged v2, and a Docker client that builds and pushes.

It answers the `local` transport's commands, so `tagship deploy` (commands.deploy.run) runs whole:
version from git, the tagged tree, the build and push, then every server's plan.
"""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass

import pytest
import yaml

from tagship.commands import deploy as deploy_command
from tagship.commands import rollback as rollback_command
from tagship.output import Output
from tagship.remote.server import Server
from tagship.remote.transport import Result, Transport
from tests.middle.fake_host import PUSHED, rendered
from tests.middle.recorder import OK, Call, RecordingTransport, Script

LOCAL = "local"
COMPOSE_FILE = "services:\n  web:\n    build: .\n    image: reg/ns/app:${APP_IMAGE_TAG}\n    ports: ['18100:8080']\n"
DIGEST = "sha256:" + "d" * 64


def tar(files: dict[str, str]) -> bytes:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as archive:
        for name, text in files.items():
            body = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(body), 0o644
            archive.addfile(info, io.BytesIO(body))
    return data.getvalue()


@dataclass
class FakeCheckout:
    """HEAD is tagged `tag`; the registry does not have that tag yet."""

    tag: str = "v2"
    commit: str = "c0ffee" * 6 + "abcd"
    pushed: bool = False
    compose_file: str = COMPOSE_FILE  # the tagged tree's compose.yaml

    def answer(self, call: Call) -> Result:
        argv = call.argv
        if argv[:1] == ("git",):
            return self._git(argv[3:])
        if argv[:3] == ("docker", "compose", "--project-directory") and "--no-interpolate" in argv:
            return Result(0, json.dumps({"name": "tree", **yaml.safe_load(self.compose_file)}), "")
        if argv[:3] == ("docker", "compose", "--project-directory"):  # the tagged tree's project
            project = rendered(self.tag)
            project["name"] = "tagship-build-tree"
            project["services"]["web"]["build"] = {"context": argv[3], "dockerfile": "Dockerfile"}
            return Result(0, json.dumps(project), "")
        if argv[:3] == ("docker", "manifest", "inspect"):
            return Result(0 if self.pushed else 1, "", "" if self.pushed else "no such manifest")
        if argv[:2] == ("docker", "push"):
            self.pushed = True
            PUSHED[DIGEST] = self.tag
            return Result(0, f"{self.tag}: digest: {DIGEST} size: 1234\n", "")
        return OK  # docker version, compose version, login, build

    def _git(self, args: tuple[str, ...]) -> Result:
        if args[0] == "tag":
            return Result(0, f"{self.tag}\n", "")
        if args[0] == "rev-parse":
            return Result(0, f"{self.commit}\n", "") if f"refs/tags/{self.tag}^" in args[-1] else Result(1, "", "")
        if args[0] == "archive":
            raw = tar({"compose.yaml": self.compose_file, "Dockerfile": "FROM busybox\n"})
            return Result(0, "", "", raw)
        if args[0] == "config":
            return Result(0, "Alice\n", "")
        return OK  # status: a clean tree


def plug_local(monkeypatch: pytest.MonkeyPatch, script: Script, checkout: FakeCheckout) -> None:
    """The commands' own `local` transport records too, answered by the checkout."""

    def local(server: Server, out: Output) -> Transport:
        return RecordingTransport(server=server, out=out, script=script)

    script.on(lambda call: True, checkout.answer, server=LOCAL)
    monkeypatch.setattr(deploy_command, "LocalTransport", local)
    monkeypatch.setattr(rollback_command, "LocalTransport", local)
