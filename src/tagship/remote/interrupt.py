"""Ctrl-C and SIGTERM: stop the commands running now, then let the undo and the lock release finish.

Every child process (ssh, docker, git) runs in a session of its own, so the terminal's Ctrl-C
reaches tagship alone. Were it to reach the children, it would kill the ssh clients the undo
needs and leave the old release half restored. tagship stops what runs itself instead:

- the first signal stops the running commands, and the threads that ran them (other servers'
  steps) stop at their next command; the main thread gets KeyboardInterrupt, which undoes the
  finished steps, records the failure and releases the locks;
- a second signal only says what is going on;
- a third quits at once (the lock then stays: `tagship lock release`).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tagship.messages import t

EXIT_INTERRUPTED = 130

# Reentrant: the signal handler runs in the main thread, which may hold the lock at that moment.
_lock = threading.RLock()
_running: dict[object, Callable[[], None]] = {}
_stopped_threads: set[threading.Thread] = set()
_signals = 0
_held = 0  # the main thread is starting a process: an interrupt now waits until it can stop it (held)
_pending = False


def install() -> None:
    """Handle SIGINT and SIGTERM alike (call once, from the main thread)."""
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)


def _on_signal(signum: int, frame: object) -> None:
    global _signals, _pending
    _signals += 1
    if _signals == 1:
        stop_running()
        if _held:  # a process is starting: held() stops it and raises once it is known
            _pending = True
            return
        raise KeyboardInterrupt
    if _signals == 2:
        sys.stderr.write(t("interrupt.stopping") + "\n")
        return
    os._exit(EXIT_INTERRUPTED)


def stop_running() -> None:
    """Stop every command running now; the threads running them stop at their next command."""
    with _lock:
        main = threading.main_thread()
        _stopped_threads.update(t for t in threading.enumerate() if t is not main)
        stops = list(_running.values())
    for stop in stops:
        stop()


def check() -> None:
    """Raise KeyboardInterrupt in a thread that was running when tagship was interrupted."""
    if threading.current_thread() in _stopped_threads:
        raise KeyboardInterrupt


@contextmanager
def running(stop: Callable[[], None]) -> Iterator[None]:
    """While the block runs, an interrupt calls stop (which ends the command the block waits for)."""
    key = object()
    with _lock:
        _running[key] = stop
    try:
        check()
        yield
    finally:
        with _lock:
            _running.pop(key, None)


@contextmanager
def held(stop: Callable[[], None]) -> Iterator[None]:
    """Start a process inside this block: an interrupt that comes meanwhile waits for the block to end,
    then stop (which must know the process by then) ends it and KeyboardInterrupt is raised.

    Without it, Ctrl-C between the process's start and its registration would leave it running.
    """
    global _held, _pending
    main = threading.current_thread() is threading.main_thread()
    if main:
        _held += 1
    try:
        yield
    finally:
        if main:
            _held -= 1
    if (main and _pending) or threading.current_thread() in _stopped_threads:
        _pending = False
        stop()
        raise KeyboardInterrupt


def reset() -> None:
    """Forget earlier interrupts (tests run several commands in one process)."""
    global _signals, _pending
    with _lock:
        _signals = 0
        _pending = False
        _running.clear()
        _stopped_threads.clear()
