"""A bounded HTTP load client for zero-downtime checks: counts every failure, tracks versions.

Clients: some open a fresh connection per request, some reuse one keep-alive connection (and,
like urllib3, open a new one when the server has closed the idle one), and an optional slow
request kept in flight. Every non-2xx answer and every connection error counts as a failure.
Loops stop at a request cap, a time cap, or when stop() is called, whichever comes first.
"""

from __future__ import annotations

import http.client
import select
import socket
import threading
import time
from dataclasses import dataclass, field

# The tests' pace: a request every 50 ms from each client (every 12.5 ms a server with the four
# default clients) finds any gap a user would notice, and leaves the CPUs to the deploys when
# several test workers run at once. Unpaced, four workers' loads kept two CPUs so busy that a
# request timed out after 10 s; at 50 per client it happened again (the Django canary test alone:
# 168 CPU-seconds and 141 s at 50, 72 and 72 at 15). Benchmarks choose their own rate.
TEST_RATE = 20.0


@dataclass
class ClientLog:
    """One client thread's record."""

    kind: str
    sent: int = 0
    failed: int = 0
    versions: list[str] = field(default_factory=list)  # each distinct version, in the order seen
    version_times: list[float] = field(default_factory=list)  # when each of them was first seen (monotonic)
    errors: list[str] = field(default_factory=list)  # the first few failures, for messages
    failure_times: list[float] = field(default_factory=list)

    def record(self, ok: bool, body: str, error: str = "") -> None:
        self.sent += 1
        if not ok:
            self.failed += 1
            self.failure_times.append(time.monotonic())
            if len(self.errors) < 5:
                self.errors.append(error)
            return
        if not self.versions or self.versions[-1] != body:
            self.versions.append(body)
            self.version_times.append(time.monotonic())


@dataclass
class LoadReport:
    clients: list[ClientLog]
    seconds: float

    @property
    def sent(self) -> int:
        return sum(c.sent for c in self.clients)

    @property
    def failed(self) -> int:
        return sum(c.failed for c in self.clients)

    @property
    def outage_seconds(self) -> float:
        """From the first failure to the last (0 with no failures)."""
        times = sorted(t for c in self.clients for t in c.failure_times)
        return times[-1] - times[0] if times else 0.0

    def served_from(self, body: str) -> float | None:
        """When every client (not the slow one) had last switched to body for good: the latest of their
        last switches to it (monotonic); None if a client does not end on it."""
        times = []
        for client in (c for c in self.clients if c.kind != "slow"):
            if not client.versions or client.versions[-1] != body:
                return None
            times.append(client.version_times[-1])
        return max(times) if times else None

    def version_sequences(self) -> list[list[str]]:
        return [c.versions for c in self.clients if c.kind != "slow"]

    def errors(self) -> list[str]:
        return [e for c in self.clients for e in c.errors]


class Load:
    """Start with start(), end with stop() -> LoadReport."""

    def __init__(
        self,
        host: str,
        port: int,
        path: str = "/version.txt",
        *,
        fresh: int = 2,
        keepalive: int = 2,
        slow_path: str = "",
        max_requests: int = 200_000,
        max_seconds: float = 180.0,
        rate: float = TEST_RATE,
    ) -> None:
        self.host, self.port, self.path, self.slow_path = host, port, path, slow_path
        self.rate = rate  # requests per second per client; 0: as fast as it can
        self.max_requests, self.max_seconds = max_requests, max_seconds
        self._stop = threading.Event()
        self._count = 0
        self._lock = threading.Lock()
        self.clients = [ClientLog("fresh") for _ in range(fresh)] + [ClientLog("keepalive") for _ in range(keepalive)]
        self._threads: list[threading.Thread] = []
        self._started = 0.0

    def start(self) -> Load:
        self._started = time.monotonic()
        for log in self.clients:
            target = self._fresh if log.kind == "fresh" else self._keepalive
            self._threads.append(threading.Thread(target=target, args=(log,), daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def slow_request(self) -> ClientLog:
        """Send one slow request now, in a thread; its log is filled when it finishes."""
        log = ClientLog("slow")
        self.clients.append(log)
        thread = threading.Thread(target=self._one_slow, args=(log,), daemon=True)
        self._threads.append(thread)
        thread.start()
        return log

    def answered(self, count: int, timeout: float = 60) -> None:
        """Wait until every client (not a slow one) has sent `count` more requests than when called: before
        a deploy, the old release is seen by all; after it, the new one. Raises TimeoutError past timeout."""
        clients = [c for c in self.clients if c.kind != "slow"]
        wanted = [c.sent + count for c in clients]
        deadline = time.monotonic() + timeout
        while any(c.sent < want for c, want in zip(clients, wanted, strict=True)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the load's clients sent {[c.sent for c in clients]}, not {wanted}, in {timeout} s")
            self._stop.wait(0.01)

    def stop(self) -> LoadReport:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        return LoadReport(self.clients, time.monotonic() - self._started)

    def _go_on(self) -> bool:
        with self._lock:
            self._count += 1
            within = self._count <= self.max_requests
        return within and not self._stop.is_set() and time.monotonic() - self._started < self.max_seconds

    def _pace(self, due: float) -> float:
        """With a rate, wait until the next request is due; returns when the one after is due."""
        if not self.rate:
            return due
        due += 1 / self.rate
        delay = due - time.monotonic()
        if delay > 0:
            self._stop.wait(delay)
            return due
        return time.monotonic()  # behind schedule: carry on without a burst to catch up

    def _fresh(self, log: ClientLog) -> None:
        due = time.monotonic()
        while self._go_on():
            conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
            _attempt(conn, self.path, log)
            conn.close()
            due = self._pace(due)

    def _keepalive(self, log: ClientLog) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        due = time.monotonic()
        while self._go_on():
            if _dropped(conn) or not _attempt(conn, self.path, log):
                conn.close()  # like urllib3: a new connection when the server closed it, or after an error
                conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
            due = self._pace(due)
        conn.close()

    def _one_slow(self, log: ClientLog) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        _attempt(conn, self.slow_path, log)
        conn.close()


def _attempt(conn: http.client.HTTPConnection, path: str, log: ClientLog) -> bool:
    """One GET on conn, recorded in log; False after a connection error."""
    try:
        log.record(*_get(conn, path))
    except (OSError, http.client.HTTPException) as exc:
        log.record(False, "", f"{type(exc).__name__}: {exc}")
        return False
    return True


def _get(conn: http.client.HTTPConnection, path: str) -> tuple[bool, str, str]:
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read().decode(errors="replace").strip()
    if 200 <= response.status < 300:
        return True, body, ""
    return False, "", f"HTTP {response.status}: {body[:80]}"


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """True when the server closed this idle keep-alive connection (what urllib3 checks too)."""
    sock: socket.socket | None = conn.sock
    if sock is None:
        return False
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)
