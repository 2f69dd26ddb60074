"""`tagship lock status` and `tagship lock release`: who holds the deploy lock, and freeing a dead run's lock."""

from __future__ import annotations

import os
import socket
from dataclasses import asdict

from tagship.builders import history, lock
from tagship.config import Config
from tagship.engine.connections import connections
from tagship.engine.session import connect_all, now
from tagship.errors import LockedError
from tagship.messages import t
from tagship.output import Output
from tagship.release import version as release_mod
from tagship.remote import server as server_mod
from tagship.remote.transport import LocalTransport
from tagship.runtime import Target, runtime_for


def lock_status(config: Config, out: Output) -> bool:
    """Print each server's lock holder; True if any server is locked."""
    any_locked = False
    with connections(config, out) as conns:
        conns.connect_soon(config.servers)
        targets = runtime_for(config).targets(config, conns)
        connect_all(targets, out)
        for target in targets:
            text = target.transport.run(lock.status(target.project_dir), show=False).stdout
            holder, alive = lock.parse_status(text)
            if alive is None:
                out.result(t("lock.unlocked", name=target.name), server=target.name, locked=False)
                continue
            any_locked = True
            out.result(
                t(
                    "lock.locked",
                    name=target.name,
                    value=holder.describe() if holder else t("lock.unknown"),
                    liveness=_liveness(holder, alive),
                ),
                server=target.name,
                locked=True,
                holder=asdict(holder) if holder else None,
                alive=alive,
            )
    return any_locked


def _liveness(holder: lock.Holder | None, connection_alive: bool) -> str:
    """Say whether the holder looks dead: its SSH connection is gone, or its process on this host is."""
    if holder and _process_gone(holder):
        return t("lock.process_gone", pid=holder.pid, host=holder.host)
    if not connection_alive:
        return t("lock.connection_gone")
    return t("lock.connection_open")


def _process_gone(holder: lock.Holder) -> bool:
    """The holder ran on this machine and its process no longer exists."""
    if holder.host != socket.gethostname():
        return False
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    return False


def lock_release(config: Config, out: Output, force: bool = False) -> None:
    """Free the lock on every server; refused (nothing freed) while a holder looks alive, unless force."""
    local = LocalTransport(server=server_mod.parse(server_mod.LOCAL), out=out)
    with connections(config, out) as conns:
        conns.connect_soon(config.servers)
        targets = runtime_for(config).targets(config, conns)
        connect_all(targets, out)
        deployer = release_mod.deployer_name(local, str(config.root))
        for target, holder in _held_locks(targets, out, force):
            who = holder.describe() if holder else t("session.unknown_holder")
            target.transport.run(lock.force_release(target.project_dir))
            line = f"{now()} {deployer} lock-release - freed lock of {who}"
            target.transport.run(history.audit(target.project_dir, line), show=False, check=False)
            out.result(t("lock.released_lock_held", name=target.name, who=who))


def _held_locks(targets: list[Target], out: Output, force: bool) -> list[tuple[Target, lock.Holder | None]]:
    """The servers whose lock may be freed; raises, before anything is freed, if a holder looks alive."""
    held = []
    for target in targets:
        text = target.transport.run(lock.status(target.project_dir), show=False).stdout
        holder, alive = lock.parse_status(text)
        if alive is None:
            out.result(t("lock.not_locked", name=target.name))
            continue
        if alive and not force and not (holder and _process_gone(holder)):
            raise LockedError(
                t("lock.lock_holder_looks_alive", name=target.name, value=holder.describe() if holder else "unknown"),
                hint=t("lock.wait_that_run_end"),
            )
        held.append((target, holder))
    return held
