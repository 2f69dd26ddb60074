"""In what order the servers switch: all at once, a canary first, or rolling batches (docs/rollout.md).

Pure: batches() turns [rollout] and the servers into the runs of one deploy; the deploy command runs
them one after the other, each as its own plan with its own undo.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from tagship.config import RolloutConfig, batch_size, canary_server
from tagship.engine.session import UNTOUCHED
from tagship.errors import UnfinishedError
from tagship.messages import pad, t, width
from tagship.output import Output
from tagship.remote.server import Server


class HasServer(Protocol):
    @property
    def server(self) -> Server: ...


T = TypeVar("T", bound=HasServer)


@dataclass(frozen=True)
class Batch(Generic[T]):
    """Servers that switch together, and how long they must stay healthy before their old containers stop."""

    number: int  # from 1
    targets: tuple[T, ...]
    watch: float  # seconds; 0: no watch
    pause: float = 0.0  # seconds to wait before this batch starts
    canary: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.server.name for t in self.targets)


def batches(rollout: RolloutConfig, targets: Sequence[T]) -> list[Batch[T]]:
    """The batches of one run, in order; every target in exactly one."""
    if not targets:
        return []
    if rollout.strategy == "canary" and len(targets) > 1:
        return _canary(rollout, targets)
    if rollout.strategy == "rolling" and len(targets) > 1:
        return _rolling(rollout, targets)
    return [Batch(1, tuple(targets), rollout.watch)]


def _canary(rollout: RolloutConfig, targets: Sequence[T]) -> list[Batch[T]]:
    # A canary named but not among this run's servers (--hosts left it out): the first one goes first.
    chosen = canary_server(rollout, [t.server for t in targets]) or targets[0].server
    first = next(t for t in targets if t.server is chosen)
    rest = tuple(t for t in targets if t is not first)
    return [
        Batch(1, (first,), max(rollout.watch, rollout.canary_watch), canary=True),
        Batch(2, rest, rollout.watch),
    ]


def _rolling(rollout: RolloutConfig, targets: Sequence[T]) -> list[Batch[T]]:
    size = batch_size(rollout.batch, len(targets)) or 1
    groups = [tuple(targets[i : i + size]) for i in range(0, len(targets), size)]
    return [
        Batch(number, group, rollout.watch, pause=rollout.pause if number > 1 else 0.0)
        for number, group in enumerate(groups, start=1)
    ]


def describe(rollout: RolloutConfig, runs: Sequence[Batch[T]]) -> str:
    """One line saying how this run goes, for the deploy's opening message."""
    if len(runs) <= 1:
        return t("rollout.all_at_once")
    if runs[0].canary:
        watched = t("rollout.watched", watch=runs[0].watch) if runs[0].watch else ""
        return t("rollout.canary", canary=runs[0].names[0], watched=watched, more=len(runs[1].targets))
    pause = t("rollout.apart", pause=rollout.pause) if rollout.pause else ""
    return t("rollout.rolling", batches=len(runs), size=len(runs[0].targets), pause=pause)


@dataclass
class Row:
    """One server's line of the summary: its release before the run, what happened, how long it took."""

    server: str
    old: str = "?"
    result: str = UNTOUCHED
    seconds: float = 0.0


@dataclass
class Ledger:
    """Each server's result through a rollout: what Session.record writes and the summary table shows."""

    version: str
    rows: dict[str, Row] = field(default_factory=dict)
    begun: bool = False  # a batch has started

    @classmethod
    def of(cls, version: str, names: Sequence[str]) -> Ledger:
        return cls(version, {name: Row(name) for name in names})

    def note_old(self, name: str, version: str) -> None:
        self.rows[name].old = version or t("rollout.none")

    def ended(self, batch: Batch[Any], result: str, seconds: float) -> None:
        for name in batch.names:
            self.rows[name].result, self.rows[name].seconds = result, round(seconds, 1)

    @contextmanager
    def track(self, batch: Batch[Any]) -> Iterator[None]:
        """Note how the block (the batch's plan) ends for each of its servers; let it end that way."""
        self.begun = True
        started = time.monotonic()
        try:
            yield
        except UnfinishedError:  # the release is live on this batch; a step after its switch did not finish
            self.ended(batch, SUCCEEDED, time.monotonic() - started)
            raise
        except BaseException:
            self.ended(batch, FAILED, time.monotonic() - started)
            raise
        self.ended(batch, SUCCEEDED, time.monotonic() - started)

    def show(self, out: Output) -> None:
        """The summary table, once a batch has started and when there are several servers."""
        if self.begun and len(self.rows) > 1:
            out.info(t("rollout.summary"))
            for line in self.table():
                out.info(line)

    def results(self) -> dict[str, str]:
        """Each server's own result once a batch has started; before that ({}) the run's result is everyone's."""
        return {name: row.result for name, row in self.rows.items()} if self.begun else {}

    def table(self) -> list[str]:
        """The summary: server, old -> new, result, seconds; aligned columns."""
        header = (t("rollout.server"), t("rollout.release"), t("rollout.result"), t("rollout.seconds"))
        lines = [header] + [
            (
                row.server,
                self._release(row),
                t(_RESULT_WORDS[row.result]) if row.result in _RESULT_WORDS else row.result,
                "-" if row.result == UNTOUCHED else f"{row.seconds:.1f}",
            )
            for row in self.rows.values()
        ]
        widths = [max(width(line[i]) for line in lines) for i in range(4)]
        return [
            "  ".join(
                ["", *(pad(line[i], widths[i]) for i in range(3)), pad(line[3], max(widths[3], 7), right=True)]
            ).rstrip()
            for line in lines
        ]

    def _release(self, row: Row) -> str:
        if row.result == SUCCEEDED:
            return f"{row.old} -> {self.version}"
        return t("rollout.kept", old=row.old)


SUCCEEDED = "succeeded"
FAILED = "failed"
_RESULT_WORDS = {SUCCEEDED: "rollout.switched", FAILED: "rollout.failed_undone", UNTOUCHED: "rollout.not_started"}
