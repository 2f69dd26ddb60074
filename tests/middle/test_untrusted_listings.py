"""Container and image listings from a server are untrusted: crafted lines are skipped with a warning
naming the server, and never reach `docker stop`, `docker rm` or `docker image rm`."""

from __future__ import annotations

from pathlib import Path

from tagship.commands import deploy as deploy_command
from tagship.config import Config
from tagship.output import Output
from tagship.remote.transport import Result
from tests.middle.fake_checkout import FakeCheckout
from tests.middle.fake_host import REPOSITORY, FakeHost, attach, record
from tests.middle.recorder import Call, Script, printed
from tests.middle.settings import H1, H2, write_config

CRAFTED_PS = "--force running web app-web-9\nabc123 running web app-web-8\x1b[2J\n"
CRAFTED_TAGS = "--all sha256:" + "d" * 64 + "\nv0\x1b[2J sha256:" + "e" * 64 + "\n"


def test_crafted_container_lines_are_skipped_with_a_warning_and_never_stopped_or_removed(
    config: Config, out: Output, script: Script, hosts: dict[str, FakeHost], checkout: FakeCheckout
) -> None:
    def with_crafted_lines(call: Call) -> Result:
        listed = hosts[H2].answer(call)
        return Result(listed.code, listed.stdout + CRAFTED_PS, listed.stderr)

    script.on("label=com.docker.compose.project=app", with_crafted_lines, server=H2, first=True)
    deploy_command.run(config, out, deploy_command.DeployOptions())
    assert hosts[H2].served() == "app-web-2", "the deploy went through"
    said = printed(out)
    assert f"{H2}: `docker ps` gave 2 record(s) that tagship does not trust, skipped" in said
    assert ": the ID is not a container ID; line " in said and ": the name is not a container name" in said
    assert "\x1b[2J" not in said
    for call in script.of(H2):
        if call.argv[:2] in (("docker", "stop"), ("docker", "rm"), ("docker", "start")):
            ids = [word for word in call.argv[2:] if not word.startswith("--") and not word.isdigit()]
            assert all(i.startswith("h2-") for i in ids), call.shown
            assert "--force" not in call.argv[3:] or call.argv[:2] == ("docker", "rm"), call.shown


def test_crafted_image_tags_are_never_pruned(
    tmp_path: Path, out: Output, script: Script, checkout: FakeCheckout
) -> None:
    config = write_config(tmp_path, "\n[releases]\nkeep = 1\n")
    tags = ("v1.1", "v1.2", "v1.3")
    hosts = attach(script, *(FakeHost(n, n[5:7], "v1.3", tags, tuple(record(t) for t in tags)) for n in (H1, H2)))

    def with_crafted_tags(call: Call) -> Result:
        listed = hosts[H1].answer(call)
        return Result(listed.code, listed.stdout + CRAFTED_TAGS, listed.stderr)

    script.on(
        f"docker image ls --digests --format '{{{{.Tag}}}} {{{{.Digest}}}}' {REPOSITORY}",
        with_crafted_tags,
        server=H1,
        first=True,
    )
    deploy_command.run(config, out, deploy_command.DeployOptions())
    removed = [c.argv[-1] for c in script.of(H1) if c.argv[:3] == ("docker", "image", "rm")]
    assert removed == [f"{REPOSITORY}:v1.1", f"{REPOSITORY}:v1.2"], "only real tags beyond the kept releases"
    assert f"{H1}: `docker image ls` gave 2 record(s) that tagship does not trust, skipped" in printed(out)
