"""One exception family with a fixed exit-code table."""

from __future__ import annotations

from tagship.messages import t

# Exit codes are part of the public interface (README "Exit codes").
EXIT_OK = 0
EXIT_FAILED = 1  # a step failed on a server; the previous release keeps running
EXIT_USAGE = 2  # bad command line or configuration
EXIT_LOCKED = 3  # another deploy holds the lock
EXIT_GIT = 4  # no tag on HEAD, dirty tree, unknown tag
EXIT_MISSING_TOOL = 5  # docker / compose v2 / ssh missing locally or on a server
EXIT_CONNECT = 6  # SSH unreachable, authentication failed, unknown host key
EXIT_REGISTRY = 7  # registry login / push / pull refused
EXIT_HEALTH = 8  # the new release never became healthy; it was rolled back
EXIT_UNFINISHED = 9  # the new release is live everywhere, but a step after the switch did not finish
EXIT_INTERRUPTED = 130


class TagshipError(Exception):
    """An expected failure: one line saying what happened and what to do next."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, hint: str = "", detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message


class ConfigError(TagshipError):
    exit_code = EXIT_USAGE


class GitError(TagshipError):
    exit_code = EXIT_GIT


class MissingToolError(TagshipError):
    exit_code = EXIT_MISSING_TOOL


class ConnectError(TagshipError):
    exit_code = EXIT_CONNECT


class RegistryError(TagshipError):
    exit_code = EXIT_REGISTRY


class LockedError(TagshipError):
    exit_code = EXIT_LOCKED


class HealthError(TagshipError):
    exit_code = EXIT_HEALTH


class UnfinishedError(TagshipError):
    """A step after the point of no return failed or was interrupted: nothing was undone.

    The release is live on every server; what did not finish (retiring old containers, pruning)
    is left for the next run. Interrupted: exit code 130, else 9.
    """

    exit_code = EXIT_UNFINISHED

    def __init__(self, live: str, hint: str, cause: BaseException) -> None:
        if isinstance(cause, KeyboardInterrupt):
            what, detail = t("errors.interrupted_after"), ""
            self.exit_code = EXIT_INTERRUPTED
        else:
            what, detail = t("errors.then", cause=cause), getattr(cause, "detail", "")
        super().__init__(t("errors.nothing_undone", live=live, what=what), hint=hint, detail=detail)


class InterruptedUndone(TagshipError):
    """Ctrl-C before the point of no return: every step was undone and the locks released (exit 130)."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self) -> None:
        super().__init__(t("errors.interrupted_undone"))


class CommandFailed(TagshipError):
    """A command exited non-zero; carries what is needed to explain it."""

    def __init__(self, server: str, shown: str, code: int, stderr_tail: str) -> None:
        super().__init__(t("errors.command_failed", server=server, code=code, shown=shown), detail=stderr_tail)
        self.server = server
        self.shown = shown
        self.code = code
        self.stderr_tail = stderr_tail
