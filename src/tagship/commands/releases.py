"""`tagship releases`: each server's history, the release it runs, and whether each image is still kept."""

from __future__ import annotations

from dataclasses import asdict

from tagship.builders.history import Record
from tagship.builders.untrusted import printable
from tagship.config import Config
from tagship.engine.connections import connections
from tagship.engine.session import connect_all
from tagship.messages import t
from tagship.output import Output
from tagship.runtime import ServerReleases, runtime_for


def list_releases(config: Config, out: Output) -> list[ServerReleases]:
    with connections(config, out) as conns:
        conns.connect_soon(config.servers)
        runtime = runtime_for(config)
        targets = runtime.targets(config, conns)
        connect_all(targets, out)
        states = [runtime.read_state(config, target) for target in targets]
        kept = [runtime.retained(target, s.records) for target, s in zip(targets, states, strict=True)]
    if out.json_mode:
        servers = [
            {
                "server": s.server,
                "current": s.current,
                "releases": [{**asdict(r), "retained": retained} for r, retained in zip(s.records, k, strict=True)],
            }
            for s, k in zip(states, kept, strict=True)
        ]
        out.event("releases", servers=servers)
        return states
    for state, retained in zip(states, kept, strict=True):
        out.result(t("releases.current", server=state.server, value=printable(state.current) or t("releases.unknown")))
        for record, is_kept in reversed(list(zip(state.records, retained, strict=True))):
            mark = "*" if record.version == state.current and record.result == "succeeded" else " "
            said = t("releases.kept") if is_kept else t("releases.pruned")
            out.result(_line(record, mark, said))
    return states


def _line(record: Record, mark: str, image: str) -> str:
    """One release as a line. Every field came from the server: each is shown printable, so no escape
    sequence reaches the terminal and no field starts a line of its own."""
    p = printable
    return (
        f"  {mark} {p(record.version):<14} {p(record.at)}  {p(record.kind):<8} {p(record.result):<9} "
        f"{record.seconds:>5.1f}s  {image:<6}  {p(record.commit[:12]):<12}  {p(record.deployed_by)}"
    )
