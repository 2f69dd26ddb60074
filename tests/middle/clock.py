"""A clock for waiting loops: sleeping advances it at once, so a 5 s wait takes no time."""

from __future__ import annotations

TICK = 0.001  # every reading takes a moment: a loop that never sleeps still reaches its deadline


class FakeClock:
    """time.monotonic and time.sleep for a module under test: sleeping advances the clock at once."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        self.now += TICK
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
