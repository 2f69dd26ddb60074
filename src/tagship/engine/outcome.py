"""How a deploy or rollback ended, told: the local after_deploy or on_failure hooks, then the webhooks.

Neither changes the run's result or its exit code: their failures are warnings.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace

from tagship.builders.command import mask
from tagship.builders.report import FAILED, SUCCEEDED, Report, first_line
from tagship.config import Config
from tagship.engine import local_hooks, notify
from tagship.errors import TagshipError, UnfinishedError
from tagship.messages import t
from tagship.output import Output
from tagship.release.version import Release
from tagship.remote.server import Server
from tagship.remote.transport import Transport


def report_for(command: str, release: Release, servers: Sequence[Server], environment: str = "") -> Report:
    """The facts of a run that is about to start (its result comes when it ends); environment: -e's, if any."""
    return Report(
        environment=environment,
        command=command,
        version=release.version,
        commit=release.commit,
        image=release.image,
        servers=tuple(server.raw for server in servers),
        deployer=release.deployer,
    )


@contextmanager
def reported(config: Config, out: Output, local: Transport, report: Report, started: float) -> Iterator[None]:
    """Tell how the block ended (success, or failure with the error's first line), then let it end that way.

    Put it outside `recorded`, so the servers' locks are free before hooks and webhooks take their time.
    """
    try:
        yield
    except UnfinishedError as exc:  # the release is live on every server, as the history records it
        _tell(config, out, local, _ended(report, SUCCEEDED, exc, started, out))
        raise
    except (Exception, KeyboardInterrupt) as exc:
        _tell(config, out, local, _ended(report, FAILED, exc, started, out))
        raise
    _tell(config, out, local, _ended(report, SUCCEEDED, None, started, out))


def _ended(report: Report, result: str, exc: BaseException | None, started: float, out: Output) -> Report:
    error = first_line(_describe(exc)) if exc is not None else ""
    return replace(
        report,
        result=result,
        error=mask(error, tuple(out.secrets)),  # errors are masked when made; this is the second lock
        seconds=round(time.monotonic() - started, 1),
    )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return t("common.interrupted")
    if isinstance(exc, TagshipError):
        return str(exc)
    return f"unexpected {type(exc).__name__}: {exc}"


def _tell(config: Config, out: Output, local: Transport, report: Report) -> None:
    hooks = config.local_hooks
    if report.result == SUCCEEDED:
        local_hooks.run_after("after_deploy", hooks.after_deploy, local, config.root, report)
    else:
        local_hooks.run_after("on_failure", hooks.on_failure, local, config.root, report)
    notify.send(config.notify, report, out)
