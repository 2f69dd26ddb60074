"""One-off commands in the new image before anything switches (a Django `migrate`, `collectstatic`)."""

from __future__ import annotations

import shlex

from tagship.builders import compose
from tagship.config import Config
from tagship.errors import CommandFailed, TagshipError
from tagship.messages import t
from tagship.runtime.compose.target import Target


def hook_argv(command: str) -> tuple[str, ...]:
    """A hook's argv, split as a shell would split it (no shell runs it: write sh -c '...' for one)."""
    return tuple(shlex.split(command))


def shown(config: Config, service: str) -> list[str]:
    """The hooks as the plan shows them."""
    return [f"docker compose run --rm --no-deps {service} {command}" for command in config.hooks.before_switch]


def run_hooks(config: Config, target: Target, *, service: str) -> None:
    """Run every before_switch hook in a one-off container of the new release (its image, env,
    volumes and networks), output streamed; the first that fails stops the deploy before anything
    switched."""
    for command in config.hooks.before_switch:
        try:
            target.transport.run(compose.run_once(target.project, service, hook_argv(command)), stream=True)
        except CommandFailed as exc:
            raise TagshipError(
                t("hooks.before_switch_hook_failed", name=target.name, command=command, code=exc.code),
                hint=t("hooks.fix_hook_release_old"),
                detail=exc.stderr_tail,
            ) from exc
