"""`tagship exec`: a command in the app's running container (or a one-off one) on one server.

Read-only for tagship (no lock, no history); needs only tagship.toml and SSH. The command gets an
SSH session of its own with this terminal's stdin, stdout and stderr; with --interactive the server
gives it a pseudo-terminal (ssh -t, compose without --no-TTY), so a Django shell works.
"""

from __future__ import annotations

from dataclasses import dataclass

from tagship.config import Config
from tagship.engine.connections import connections
from tagship.engine.session import connect
from tagship.errors import ConfigError
from tagship.messages import t
from tagship.output import Output
from tagship.runtime import Target, runtime_for


@dataclass(frozen=True)
class ExecOptions:
    argv: tuple[str, ...]
    server: str = ""  # a configured server's name or address; "" means the first
    service: str = ""  # "" means the deployed service
    interactive: bool = False
    new: bool = False  # a one-off container of the current release instead of the running one


def execute(config: Config, out: Output, options: ExecOptions) -> int:
    """Run the command; its exit code (ssh's 255 if the connection failed)."""
    if not options.argv:
        raise ConfigError(t("exec.no_command_run"), hint=t("exec.give_after_tagship_exec"))
    with connections(config, out) as conns:
        runtime = runtime_for(config)
        target = _pick(runtime.targets(config, conns), options.server)
        connect(target)
        cmd = runtime.exec_command(
            config, target, options.service, options.argv, tty=options.interactive, new=options.new
        )
        out.command(target.name, cmd.shown())
        return target.transport.interactive(cmd)


def _pick(targets: list[Target], wanted: str) -> Target:
    """The first server, or the one named (as the config or its name spells it)."""
    if not wanted:
        return targets[0]
    for target in targets:
        if wanted in (target.name, target.server.raw):
            return target
    names = ", ".join(t.name for t in targets)
    raise ConfigError(t("exec.no_server_configuration", wanted=wanted), hint=t("exec.servers_are", names=names))
