"""A locked session on the servers: connect, take the deploy lock, audit, record history, release."""

from __future__ import annotations

import datetime
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from tagship import messages
from tagship.builders import history, lock
from tagship.builders.history import Record
from tagship.engine.plan import Plan, apply
from tagship.errors import ConfigError, LockedError, TagshipError, UnfinishedError
from tagship.output import Output
from tagship.release.version import Release
from tagship.remote.transport import Transport


class Host(Protocol):
    """A server as the session sees it: a name, a transport and the app's project directory there."""

    @property
    def name(self) -> str: ...

    @property
    def transport(self) -> Transport: ...

    @property
    def project_dir(self) -> str: ...


def connect(host: Host) -> None:
    """Open the server's shared SSH connection, or wait for the one started in the background."""
    host.transport.connect()


def connect_all(hosts: Sequence[Host], out: Output) -> None:
    """Connect to every server at once (for commands that take no lock)."""
    plan = Plan(out=out)
    plan.add_each(messages.t("target.connect_servers"), hosts, connect)
    apply(plan, out)


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Session:
    """The servers of one command run, with the lock this run holds on each."""

    targets: Sequence[Host]
    out: Output
    command: str
    version: str
    deployer: str
    lock_wait: float = 0.0
    environment: str = ""  # recorded in the history entries (config.environment)
    keep: int = 5  # config.releases.keep: what a rotated history must still hold for rollback
    holder: lock.Holder = field(init=False)
    locked: list[Host] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        check_lock_wait(self.lock_wait)
        self.holder = lock.Holder(
            token=uuid.uuid4().hex,
            who=self.deployer,
            host=socket.gethostname(),
            pid=os.getpid(),
            command=self.command,
            version=self.version,
            since=now(),
        )

    def plan_open(self, plan: Plan, ready: Callable[[Any], None] | None = None) -> None:
        """Connect to every server, check it is ready (`ready`, e.g. Docker and Compose v2 there) and
        take its lock (all or none). A server that is not ready stops the run before any lock: no
        history entry or audit line is written anywhere.

        A failure later in the plan does not release the lock: the failure is recorded on every
        locked server first (see recorded), then close() releases it.
        """
        plan.add_each(messages.t("session.connect_servers"), self.targets, connect)
        if ready is not None:
            plan.add_each(messages.t("switch.check_docker_compose"), self.targets, ready)
        lock_title = messages.t("session.take_deploy_lock")
        plan.add(
            lock_title,
            self.take_locks,
            self.drop_locks_now,
            servers=tuple(target.name for target in self.targets),
            undo_title=messages.t("plan.undo_2", title=lock_title),
        )

    def take_locks(self) -> None:
        """Every server's lock, one server after another, in the one order every run uses (by the
        server's own identity, see lock_order).

        Taken all at once, two runs starting together could each take some servers and both give up
        (or, with --lock-wait, wait for each other until it runs out); in one shared order, the run
        that takes the first server takes them all. It costs two round trips per server.
        """
        for target in sorted(self.targets, key=self.lock_order):
            self.take_lock(target)

    def lock_order(self, target: Host) -> tuple[str, str, str]:
        """The server's identity first (its host keys: two machines may name one server by an alias
        and by an address, so by name their orders could differ), then the project, then the name."""
        found = target.transport.run(lock.identity(), show=False, check=False)
        return (lock.parse_identity(found.stdout) if found.ok else "", target.project_dir, target.name)

    def drop_locks_now(self) -> None:
        """The lock step's own undo: only while that step fails (another server's lock is held)."""
        if not self.all_locked:
            for target in reversed(list(self.locked)):
                self.drop_lock(target)

    @property
    def all_locked(self) -> bool:
        return len(self.locked) == len(self.targets)

    def take_lock(self, target: Host) -> None:
        t = target.transport
        deadline = time.monotonic() + self.lock_wait
        waiting = False
        while True:
            result = t.run(lock.acquire(target.project_dir, self.holder), show=False, check=False)
            if result.ok:
                self.locked.append(target)
                self.audit(target, "started")
                return
            if result.code != lock.HELD:
                raise TagshipError(
                    messages.t("session.cannot_take_deploy_lock", name=t.name), detail=result.stderr.strip()
                )
            if time.monotonic() >= deadline:
                raise held_error(t.name, lock.parse_holder(result.stdout))
            if not waiting:
                holder = lock.parse_holder(result.stdout)
                who = holder.describe() if holder else messages.t("session.unknown_holder")
                t.out.info(messages.t("session.waiting_up_s_deploy", name=t.name, lock_wait=self.lock_wait, who=who))
                waiting = True
            time.sleep(1.0)

    def drop_lock(self, target: Host) -> None:
        if target in self.locked:
            self.locked.remove(target)
            target.transport.run(lock.release(target.project_dir, self.holder.token), show=False, check=False)

    def audit(self, target: Host, what: str) -> None:
        line = f"{now()} {self.deployer} {self.command} {self.version} {what}"
        target.transport.run(history.audit(target.project_dir, line), show=False, check=False)

    def record(
        self,
        release: Release,
        result: str,
        error: str = "",
        env: dict[str, str] | None = None,
        each: Mapping[str, str] | None = None,
    ) -> None:
        """Append a history entry and an audit line on every locked server (best effort).

        A run that never held every lock changed nothing: it gets an audit line, no history entry.
        each: a server's own result by name, when a rollout's batches ended differently: "succeeded"
        (its batch switched; no error), "failed", or UNTOUCHED (its batch never started: an audit
        line, no history entry).
        """
        seconds = round(time.monotonic() - self.started, 1)
        if not self.all_locked:
            for target in list(self.locked):
                self.audit(target, f"{result} before it held every lock" + (f": {error[:200]}" if error else ""))
            return
        for target in list(self.locked):
            own = (each or {}).get(target.name, result)
            if own == UNTOUCHED:
                self.audit(target, f"not deployed: the run stopped before this server's batch: {error[:200]}")
                continue
            self._entry(target, release, own, error if own == result else "", env, seconds)

    def _entry(
        self, target: Host, release: Release, result: str, error: str, env: dict[str, str] | None, seconds: float
    ) -> None:
        entry = Record(
            version=release.version,
            image=release.image,
            kind=self.command,
            result=result,
            at=now(),
            commit=release.commit,
            digest=release.digest,
            deployed_by=release.deployer,
            seconds=seconds,
            error=error[:500],
            env=env or {},
            environment=self.environment,
        )
        appended = target.transport.run(history.append(target.project_dir, entry), show=False, check=False)
        if appended.ok and history.needs_rotation(appended.stdout):
            self._rotate_history(target)
        self.audit(target, f"{result} in {seconds}s" + (f": {error[:200]}" if error else ""))

    def _rotate_history(self, target: Host) -> None:
        """Bound the server's history, keeping what rollback reads (best effort, as the entry itself)."""
        t = target.transport
        text = t.run(history.read(target.project_dir), show=False, check=False)
        if text.ok:
            kept = history.rotated(text.stdout, self.keep)
            t.run(history.rotate(target.project_dir, kept), show=False, check=False)

    def release_locks(self) -> None:
        """Release every lock this run holds (the connections' owner closes the transports)."""
        for target in list(self.locked):
            self.drop_lock(target)


UNTOUCHED = "untouched"  # a server whose rollout batch never started
MAX_LOCK_WAIT = 7 * 24 * 3600.0


def check_lock_wait(seconds: float) -> None:
    """--lock-wait must be a number of seconds: nan never reaches its deadline, inf waits forever."""
    if not 0 <= seconds <= MAX_LOCK_WAIT:  # false for nan too
        raise ConfigError(messages.t("session.lock_wait_must_number", MAX_LOCK_WAIT=MAX_LOCK_WAIT, seconds=seconds))


def held_error(server: str, holder: lock.Holder | None) -> LockedError:
    who = holder.describe() if holder else messages.t("session.unknown_holder")
    return LockedError(
        messages.t("session.deploy_lock_held", server=server, who=who),
        hint=messages.t("session.wait_lock_wait_seconds"),
    )


@contextmanager
def recorded(
    session: Session,
    release: Release,
    env: Callable[[], dict[str, str]],
    each: Callable[[], Mapping[str, str]] = dict,
) -> Iterator[None]:
    """Record success or failure in history and audit, then release the locks, however the block ends.

    each: each server's own result, asked when the block ends (a rollout's batches; see Session.record).
    """
    try:
        yield
        session.record(release, "succeeded", env=env(), each=each())
    except UnfinishedError as exc:  # the release is live; a step after the switch did not finish
        session.record(release, "succeeded", error=str(exc), env=env(), each=each())
        raise
    except (TagshipError, KeyboardInterrupt) as exc:
        session.record(release, "failed", error=str(exc) or type(exc).__name__, env=env(), each=each())
        raise
    finally:
        session.release_locks()
