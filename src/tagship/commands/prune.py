"""`tagship prune`: remove this app's images beyond the last releases.keep on every server."""

from __future__ import annotations

from tagship.config import Config
from tagship.engine.connections import connections
from tagship.engine.plan import Plan, apply
from tagship.engine.session import Session, check_lock_wait
from tagship.messages import t
from tagship.output import Output
from tagship.release import version as release_mod
from tagship.remote import server as server_mod
from tagship.remote.transport import LocalTransport
from tagship.runtime import Target, runtime_for


def prune(config: Config, out: Output, lock_wait: float = 0.0) -> dict[str, list[str]]:
    """Prune under the deploy lock; returns the removed tags per server."""
    check_lock_wait(lock_wait)  # before any connection
    local = LocalTransport(server=server_mod.parse(server_mod.LOCAL), out=out)
    removed: dict[str, list[str]] = {}
    runtime = runtime_for(config)

    def prune_one(target: Target) -> None:
        removed[target.name] = runtime.prune(config, target)

    with connections(config, out) as conns:
        conns.connect_soon(config.servers)
        deployer = release_mod.deployer_name(local, str(config.root))
        targets = runtime.targets(config, conns)
        session = Session(targets, out, "prune", "-", deployer, lock_wait=lock_wait)
        plan = Plan(out=out)
        session.plan_open(plan)
        plan.add_each(t("prune.prune_images_beyond_last", keep=config.releases.keep), targets, prune_one)
        try:
            apply(plan, out)
        finally:
            session.release_locks()
    for name, tags in removed.items():
        out.result(
            t("prune.removed", name=name, value=", ".join(tags) if tags else t("prune.nothing")),
            server=name,
            removed=tags,
        )
    return removed
