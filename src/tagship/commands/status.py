"""`tagship status`: what each server runs, since when, its containers, the proxy, the lock, and drift.

Read-only and takes no lock; needs only tagship.toml and SSH. Every server is read at once, and one
that cannot be read is reported without stopping the others.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from tagship import messages
from tagship.builders import history, lock
from tagship.builders.proxy import Listener
from tagship.builders.status import ContainerState
from tagship.builders.untrusted import printable
from tagship.config import Config
from tagship.engine.session import connect
from tagship.errors import TagshipError
from tagship.output import Output
from tagship.runtime import Target, read_each, runtime_for


@dataclass
class ServerStatus:
    """What one server said; error is set when it could not be read (the other fields are then empty)."""

    server: str
    error: str = ""
    current: str = ""
    since: str = ""  # the time of the current release's history record
    kind: str = ""  # deploy or rollback: how the current release got there
    app: str = ""  # the compose project's name ("" before the first deploy)
    service: str = ""
    containers: list[ContainerState] = field(default_factory=list)
    proxy: str = ""  # the proxy container's name
    proxy_state: str = ""
    listeners: list[Listener] = field(default_factory=list)  # this app's port listeners
    locked: bool = False
    lock_holder: lock.Holder | None = None
    lock_alive: bool = False  # the holder's SSH connection is still open
    drift: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        """Read, and nothing drifts."""
        return not self.error and not self.drift


def status(config: Config, out: Output) -> list[ServerStatus]:
    """Read and print every server's status; the list is in the configured servers' order."""
    servers = read_each(config, out, messages.t("status.read_each"), lambda target: _read(config, target))
    if out.json_mode:
        out.event("status", servers=[_as_json(s) for s in servers])
    else:
        for server in servers:
            for line in _lines(server):
                out.result(line)
    return servers


def _read(config: Config, target: Target) -> ServerStatus:
    """One server's status; a server that cannot be reached or read says why instead."""
    try:
        connect(target)
        return _observe(config, target)
    except TagshipError as exc:
        return ServerStatus(target.name, error=str(exc))


def _observe(config: Config, target: Target) -> ServerStatus:
    runtime = runtime_for(config)
    holder, alive = lock.parse_status(target.transport.run(lock.status(target.project_dir), show=False).stdout)
    state = runtime.read_state(config, target)
    seen = runtime.status(config, target, state)
    found = ServerStatus(
        target.name,
        current=state.current,
        app=seen.app,
        service=seen.service,
        containers=seen.containers,
        proxy=config.proxy.name,
        proxy_state=seen.proxy_state,
        listeners=seen.listeners,
        locked=alive is not None,
        lock_holder=holder,
        lock_alive=bool(alive),
        drift=seen.drift,
    )
    record = history.find(state.records, state.current)
    if record is not None:
        found.since, found.kind = record.at, record.kind
    return found


def _lines(server: ServerStatus) -> list[str]:
    """One server as a compact table; every value from the server is shown printable."""
    p = printable
    if server.error:
        return [messages.t("status.unreachable", server=server.server, error=server.error)]
    how = f" ({p(server.kind)})" if server.kind else ""
    since = messages.t("status.since", since=p(server.since), how=how) if server.since else ""
    lines = [
        messages.t(
            "status.current",
            server=server.server,
            current=p(server.current) or messages.t("status.no_release"),
            since=since,
        )
    ]
    lines.append(_row(messages.t("status.lock"), _lock_text(server)))
    listeners = ", ".join(
        messages.t(
            "status.listener",
            name=p(item.name),
            state=messages.t("status.running") if item.running else messages.t("status.stopped"),
        )
        for item in server.listeners
    )
    proxy_text = f"{p(server.proxy)} {p(server.proxy_state)}"
    lines.append(
        _row(
            messages.t("status.proxy"),
            proxy_text + (messages.t("status.listeners", listeners=listeners) if listeners else ""),
        )
    )
    if server.containers:
        rows = [tuple(messages.t(column) for column in _COLUMNS)]
        rows += [(p(c.service), p(c.name), p(c.state), p(c.health) or "-", p(c.image)) for c in server.containers]
        widths = [max(messages.width(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines += [
            "  " + "  ".join(messages.pad(cell, w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in rows
        ]
    elif server.app:
        lines.append(messages.t("status.no_containers", app=p(server.app)))
    lines += [_row(messages.t("status.drift"), text) for text in server.drift] or [
        _row(messages.t("status.drift"), messages.t("status.none"))
    ]
    return lines


# The container table's headers (catalog ids).
_COLUMNS = ("status.service", "status.container", "status.state", "status.health", "status.image")


def _row(label: str, text: str) -> str:
    """A labelled line of a server's status, the labels padded to one width."""
    return f"  {messages.pad(label, 6)}  {text}"


def _lock_text(server: ServerStatus) -> str:
    if not server.locked:
        return messages.t("status.free")
    who = server.lock_holder.describe() if server.lock_holder else messages.t("session.unknown_holder")
    alive = messages.t("status.ssh_open") if server.lock_alive else messages.t("status.ssh_gone")
    return messages.t("status.held_by", who=who, alive=alive)


def _as_json(server: ServerStatus) -> dict[str, Any]:
    return {
        "server": server.server,
        "reachable": not server.error,
        "error": server.error,
        "current": server.current,
        "since": server.since,
        "kind": server.kind,
        "app": server.app,
        "service": server.service,
        "containers": [{**asdict(c), "running": c.running} for c in server.containers],
        "proxy": {"name": server.proxy, "state": server.proxy_state},
        "listeners": [asdict(item) for item in server.listeners],
        "lock": {"holder": asdict(server.lock_holder) if server.lock_holder else None, "alive": server.lock_alive}
        if server.locked
        else None,
        "drift": server.drift,
    }
