"""Releases kept on the servers: list them, roll back to one, prune old images, and the lock commands."""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass
from functools import partial

from tagship.builders import docker, envfile, history, lock
from tagship.builders.command import Command
from tagship.builders.history import Record
from tagship.commands.deploy import plan_switch, read_env, release_env
from tagship.config import Config
from tagship.engine.plan import Plan, apply
from tagship.engine.session import Session, now, recorded
from tagship.engine.target import Target, connect, connect_early, targets_for
from tagship.errors import ConfigError, LockedError
from tagship.output import Output
from tagship.release import image as build
from tagship.release import version as release_mod
from tagship.release.image import Source
from tagship.release.version import Release
from tagship.remote import server as server_mod
from tagship.remote.transport import LocalTransport, Transport


@dataclass
class ServerReleases:
    """What one server says about its releases."""

    server: str
    current: str
    records: list[Record]


def _local(out: Output) -> LocalTransport:
    return LocalTransport(server=server_mod.parse(server_mod.LOCAL), out=out)


def _source(config: Config, out: Output) -> Source:
    """The compose project as the working tree describes it (rollback builds nothing)."""
    return build.read_source(config, _local(out), config.root)


def read_state(target: Target, tag_key: str) -> ServerReleases:
    """History and current version (the tag in the server's .env) of one server."""
    t = target.transport
    text = t.run(history.read(target.project.directory), show=False).stdout
    env = read_env(target) or ""
    current = (envfile.get_value(env, tag_key) or "").split("@", 1)[0]
    return ServerReleases(t.name, current, history.parse(text))


def _connect_all(
    config: Config, out: Output, source: Source, transports: list[Transport] | None = None
) -> list[Target]:
    targets = targets_for(config, out, source.compose_files, transports=transports)
    plan = Plan(out=out)
    plan.add_each("connect to the servers", targets, connect)
    try:
        apply(plan, out)
    except BaseException:
        for target in targets:
            target.transport.close()
        raise
    return targets


# ---- tagship releases ----------------------------------------------------------------------------


def list_releases(config: Config, out: Output, transports: list[Transport] | None = None) -> list[ServerReleases]:
    source = _source(config, out)
    targets = _connect_all(config, out, source, transports)
    try:
        states = [read_state(t, source.tag_key) for t in targets]
        kept = [_kept_images(t, s.records) for t, s in zip(targets, states, strict=True)]
    finally:
        for target in targets:
            target.transport.close()
    if out.json_mode:
        servers = [
            {
                "server": s.server,
                "current": s.current,
                "releases": [{**asdict(r), "retained": _is_kept(r, k)} for r in s.records],
            }
            for s, k in zip(states, kept, strict=True)
        ]
        out.event("releases", servers=servers)
        return states
    for state, images in zip(states, kept, strict=True):
        out.result(f"{state.server} (current: {state.current or 'unknown'})")
        for record in reversed(state.records):
            mark = "*" if record.version == state.current and record.result == "succeeded" else " "
            image = "kept" if _is_kept(record, images) else "pruned"
            out.result(
                f"  {mark} {record.version:<14} {record.at}  {record.kind:<8} {record.result:<9} "
                f"{record.seconds:>5.1f}s  {image:<6}  {record.commit[:12]:<12}  {record.deployed_by}"
            )
    return states


def _kept_images(target: Target, records: list[Record]) -> set[str]:
    """ "REPOSITORY TAG-OR-DIGEST" of this app's images still on the server (a rollback can go there)."""
    kept = set()
    for repository in sorted({r.image.rsplit(":", 1)[0] for r in records}):
        for tag, digest in _image_refs(target, repository):
            kept |= {f"{repository} {tag}", f"{repository} {digest}"}
    return kept


def _is_kept(record: Record, images: set[str]) -> bool:
    repository = record.image.rsplit(":", 1)[0]
    return f"{repository} {record.version}" in images or f"{repository} {record.digest}" in images


# ---- tagship rollback ----------------------------------------------------------------------------


def rollback(
    config: Config,
    out: Output,
    version: str = "",
    lock_wait: float = 0.0,
    transports: list[Transport] | None = None,
) -> Release:
    """Switch every server back to a retained release, with the same health-gated switch.

    transports: from connect_early, already connecting (else made here).
    """
    transports = transports or connect_early(config, out)
    try:
        source = _source(config, out)
        deployer = release_mod.deployer_name(_local(out), str(config.root))
    except BaseException:
        for transport in transports:
            transport.close()
        raise
    targets = targets_for(config, out, source.compose_files, transports=transports)
    session = Session(targets, out, "rollback", version or "previous", deployer, lock_wait=lock_wait)
    opening = Plan(out=out)
    session.plan_open(opening)
    try:
        apply(opening, out)
        states = [read_state(t, source.tag_key) for t in targets]
        record = _choose(states, version)
        _check_retained(targets, record)
    except BaseException:
        session.close()
        raise
    repository = record.image.rsplit(":", 1)[0]
    target_release = Release(
        record.version, record.commit, repository, deployer, record.digest, pinned=config.image.pin_digest
    )
    out.info(f"rolling back to {record.version} ({record.image}) on {len(targets)} server(s)")
    plan = Plan(out=out)
    plan_switch(config, targets, source, target_release, plan)
    with recorded(session, target_release, partial(release_env, source, target_release)):
        apply(plan, out)
    return target_release


def _choose(states: list[ServerReleases], version: str) -> Record:
    """The record to roll back to: the same on every server."""
    chosen: dict[str, Record | None] = {}
    for state in states:
        if version:
            chosen[state.server] = history.find(state.records, version)
        else:
            chosen[state.server] = history.previous(state.records, state.current)
    versions = {r.version if r else None for r in chosen.values()}
    if None in versions or len(versions) != 1:
        what = version or "the previous release"
        listing = "; ".join(
            f"{s.server}: current {s.current or '?'}, history "
            f"{', '.join(r.version for r in history.deployed_versions(s.records)) or 'empty'}"
            for s in states
        )
        raise ConfigError(f"cannot roll back to {what} on every server", detail=listing)
    record = next(r for r in chosen.values() if r is not None)
    return record


def _check_retained(targets: list[Target], record: Record) -> None:
    missing = []
    for target in targets:
        if not target.transport.run(docker.image_id(_present_ref(record)), show=False, check=False).ok:
            retained = _retained(target, record.image.rsplit(":", 1)[0])
            missing.append(f"{target.name} keeps only {', '.join(retained) or 'nothing'}")
    if missing:
        raise ConfigError(
            f"{record.version} is no longer retained: " + "; ".join(missing),
            hint="roll back to a retained release, or deploy that tag again",
        )


def _present_ref(record: Record) -> str:
    """The reference that finds the release's image on a server (the digest survives a re-pushed tag)."""
    return f"{record.image.rsplit(':', 1)[0]}@{record.digest}" if record.digest else record.image


def _retained(target: Target, repository: str) -> list[str]:
    """The tags of the repository's images on the server."""
    return sorted({tag for tag, _ in _image_refs(target, repository)} - {"<none>"})


def _image_refs(target: Target, repository: str) -> list[tuple[str, str]]:
    """(tag, digest) of each of the repository's images on the server ("<none>" where it has none)."""
    cmd = Command(("docker", "image", "ls", "--digests", "--format", "{{.Tag}} {{.Digest}}", repository))
    listing = target.transport.run(cmd, show=False, check=False).stdout
    return [(words[0], words[1]) for words in (line.split() for line in listing.splitlines()) if len(words) == 2]


# ---- prune ----------------------------------------------------------------------------------------


def prune_target(config: Config, target: Target, source: Source, deploying: str = "") -> list[str]:
    """Remove the server's images of this app beyond the last releases.keep; never current or previous.

    During a deploy, `deploying` is the release just switched to (not in the history yet).
    """
    state = read_state(target, source.tag_key)
    if not state.records:
        return []
    repository = state.records[-1].image.rsplit(":", 1)[0]
    chain = [r.version for r in history.deployed_versions(state.records) if r.version != deploying]
    chain += [deploying] if deploying else []
    keep = set(chain[-config.releases.keep :]) | {state.current}
    before = chain[chain.index(state.current) - 1] if state.current in chain[1:] else ""
    keep.add(before)
    removed = []
    for tag in _retained(target, repository):
        if tag not in keep:
            result = target.transport.run(Command(("docker", "image", "rm", f"{repository}:{tag}")), check=False)
            if result.ok:
                removed.append(tag)
    return removed


def prune(config: Config, out: Output, lock_wait: float = 0.0, transports: list[Transport] | None = None) -> None:
    source = _source(config, out)
    deployer = release_mod.deployer_name(_local(out), str(config.root))
    targets = targets_for(config, out, source.compose_files, transports=transports)
    session = Session(targets, out, "prune", "-", deployer, lock_wait=lock_wait)
    plan = Plan(out=out)
    session.plan_open(plan)
    removed: dict[str, list[str]] = {}
    plan.add_each(
        f"prune images beyond the last {config.releases.keep}",
        targets,
        lambda t: removed.__setitem__(t.name, prune_target(config, t, source)),
    )
    try:
        apply(plan, out)
    finally:
        session.close()
    for name, tags in removed.items():
        out.result(f"{name}: removed {', '.join(tags) if tags else 'nothing'}", server=name, removed=tags)


# ---- tagship lock status / release ------------------------------------------------------------------


def lock_status(config: Config, out: Output, transports: list[Transport] | None = None) -> bool:
    """Print each server's lock holder; True if any server is locked."""
    source = _source(config, out)
    targets = _connect_all(config, out, source, transports)
    any_locked = False
    try:
        for target in targets:
            text = target.transport.run(lock.status(target.project.directory), show=False).stdout
            holder, alive = lock.parse_status(text)
            if alive is None:
                out.result(f"{target.name}: unlocked", server=target.name, locked=False)
                continue
            any_locked = True
            out.result(
                f"{target.name}: locked by {holder.describe() if holder else 'unknown'}; {_liveness(holder, alive)}",
                server=target.name,
                locked=True,
                holder=asdict(holder) if holder else None,
                alive=alive,
            )
    finally:
        for target in targets:
            target.transport.close()
    return any_locked


def _liveness(holder: lock.Holder | None, connection_alive: bool) -> str:
    """Say whether the holder looks dead: its SSH connection is gone, or its process on this host is."""
    if holder and _process_gone(holder):
        return f"looks dead (process {holder.pid} on {holder.host} is gone): `tagship lock release` frees it"
    if not connection_alive:
        return "looks dead (its SSH connection is gone): `tagship lock release` frees it"
    return "its SSH connection is still open (a deploy is probably running)"


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


def lock_release(config: Config, out: Output, transports: list[Transport] | None = None, force: bool = False) -> None:
    """Free the lock on every server; refused (nothing freed) while a holder looks alive, unless force."""
    source = _source(config, out)
    targets = _connect_all(config, out, source, transports)
    deployer = release_mod.deployer_name(_local(out), str(config.root))
    try:
        for target, holder in _held_locks(targets, out, force):
            who = holder.describe() if holder else "an unknown holder"
            target.transport.run(lock.force_release(target.project.directory))
            line = f"{now()} {deployer} lock-release - freed lock of {who}"
            target.transport.run(history.audit(target.project.directory, line), show=False, check=False)
            out.result(f"{target.name}: released the lock held by {who}")
    finally:
        for target in targets:
            target.transport.close()


def _held_locks(targets: list[Target], out: Output, force: bool) -> list[tuple[Target, lock.Holder | None]]:
    """The servers whose lock may be freed; raises, before anything is freed, if a holder looks alive."""
    held = []
    for target in targets:
        text = target.transport.run(lock.status(target.project.directory), show=False).stdout
        holder, alive = lock.parse_status(text)
        if alive is None:
            out.result(f"{target.name}: was not locked")
            continue
        if alive and not force and not (holder and _process_gone(holder)):
            raise LockedError(
                f"{target.name}: the lock holder, {holder.describe() if holder else 'unknown'}, looks alive "
                "(its SSH connection is open); nothing was released",
                hint="wait for that run to end, or `tagship lock release --force` if you know it is dead",
            )
        held.append((target, holder))
    return held
