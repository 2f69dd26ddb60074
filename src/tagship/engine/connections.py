"""One owner for a run's connections: transports are made on first use and all closed on the way out."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tagship.config import Config
from tagship.output import Output
from tagship.remote.server import Server
from tagship.remote.transport import Transport, for_server


@dataclass
class Connections:
    """The transports of one run, one per server, made when first asked for (a dry run asks for none)."""

    config: Config
    out: Output
    _made: dict[str, Transport] = field(default_factory=dict)

    def get(self, server: Server) -> Transport:
        """The server's transport (made now if this is the first use)."""
        transport = self._made.get(server.name)
        if transport is None:
            ssh = self.config.ssh
            transport = for_server(
                server,
                self.out,
                ssh_config=ssh.config,
                ssh_options=ssh.options,
                jump=ssh.jump,
                connect_timeout=ssh.connect_timeout,
            )
            self._made[server.name] = transport
        return transport

    def connect_soon(self, servers: tuple[Server, ...] | list[Server]) -> None:
        """Start the SSH handshakes in the background while local work runs (connect() then waits)."""
        for server in servers:
            self.get(server).connect_soon()

    @property
    def opened(self) -> int:
        """How many transports this run made (a dry run makes none)."""
        return len(self._made)

    def close(self) -> None:
        """Close every transport, also when closing one raises (Ctrl-C while it waits for its
        connection): each removes its ssh control directory. The first error is raised after."""
        error: BaseException | None = None
        for transport in self._made.values():
            try:
                transport.close()
            except BaseException as exc:
                error = error or exc
        if error is not None:
            raise error


@contextmanager
def connections(config: Config, out: Output) -> Iterator[Connections]:
    """Every transport made inside the block is closed when it ends, however it ends."""
    owner = Connections(config, out)
    try:
        yield owner
    finally:
        owner.close()
