"""`tagship logs`: the app's container logs from every server, each line prefixed with the server.

Read-only and takes no lock; needs only tagship.toml and SSH. Without --follow each server's block
comes in turn, in the configured order; with it, one stream per server (a thread each, an SSH session
of its own on a pseudo-terminal) and lines interleave as they arrive, until Ctrl-C stops them all.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from tagship.builders.command import Command
from tagship.config import Config
from tagship.engine.connections import connections
from tagship.engine.plan import Plan, apply
from tagship.engine.session import connect
from tagship.errors import EXIT_FAILED, TagshipError
from tagship.messages import t
from tagship.output import Output
from tagship.remote import interrupt
from tagship.runtime import Target, runtime_for


@dataclass(frozen=True)
class LogsOptions:
    service: str = ""  # "" means the deployed service
    follow: bool = False
    since: str = ""  # as docker compose logs takes it: 10m, 2026-11-27T10:00:00
    tail: int | None = None  # lines per container from the end


def logs(config: Config, out: Output, options: LogsOptions) -> int:
    """Show the logs; the exit code: 0, 1 if a server's logs could not be read, 130 on Ctrl-C."""
    with connections(config, out) as conns:
        conns.connect_soon(config.servers)
        runtime = runtime_for(config)
        targets = runtime.targets(config, conns)
        found: dict[str, Command] = {}

        def read(target: Target) -> None:
            connect(target)
            found[target.name] = runtime.logs_command(
                config, target, options.service, follow=options.follow, since=options.since, tail=options.tail
            )

        plan = Plan(out=out)
        plan.add_each(t("logs.find_app_each_server"), targets, read)
        apply(plan, out)
        commands = [(t, found[t.name]) for t in targets]
        if options.follow:
            return _follow(commands, out)
        failed = [t.name for t, cmd in commands if not _show(t, cmd, out)]
    return EXIT_FAILED if failed else 0


def _show(target: Target, cmd: Command, out: Output) -> bool:
    """Stream one server's logs; False (and a warning) if they could not be read."""
    try:
        result = target.transport.run(cmd, stream=True, check=False, show=False)
        interrupt.check()  # a stream stopped by Ctrl-C: its end is no news
    except TagshipError as exc:
        out.warn(f"{target.name}: {exc}")
        return False
    if not result.ok:
        out.warn(t("logs.docker_compose_logs_ended", name=target.name, code=result.code))
    return result.ok


def _follow(commands: list[tuple[Target, Command]], out: Output) -> int:
    """A stream per server until every one ends or Ctrl-C; the interrupt handler stops the ssh clients
    (the servers then hang up their terminals, which ends docker compose logs there)."""
    ok: dict[str, bool] = {}

    def stream(target: Target, cmd: Command) -> None:
        try:
            ok[target.name] = _show(target, cmd, out)
        except KeyboardInterrupt:  # this thread was stopped: the main thread says so
            ok[target.name] = False

    threads = [threading.Thread(target=stream, args=item, daemon=True) for item in commands]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)
    except KeyboardInterrupt:
        for thread in threads:
            thread.join(5)  # their processes were stopped: they end at once
        return interrupt.EXIT_INTERRUPTED
    return 0 if all(ok.values()) else EXIT_FAILED
