"""The values a deploy writes into each server's .env besides the release's tag: env.values from the
config and env.secrets_file, a local file kept out of git (docs/environments.md, "Server values
and secrets").

They travel inside the .env's bytes on stdin (never in argv), are masked in all output, and are
never recorded in history: a rollback leaves them as the last deploy wrote them.
"""

from __future__ import annotations

import os
from pathlib import Path

from tagship.builders import envfile
from tagship.builders.command import Command
from tagship.config import VARIABLE_RE, Config
from tagship.errors import ConfigError
from tagship.messages import t
from tagship.output import Output
from tagship.remote.transport import Transport

KEY = "env.secrets_file"
# Shorter values are not masked in output: masking "1" or "yes" would hide every such word in logs.
MASK_FROM = 4


def server_values(
    config: Config, local: Transport, out: Output, reserved: tuple[str, ...]
) -> tuple[tuple[str, str], ...]:
    """(key, value as it goes on the .env line) for env.values and env.secrets_file; reserved: the
    keys tagship sets itself (the tag and image keys), which neither may set."""
    pairs = [(key, envfile.encode(value)) for key, value in config.env.values]
    secrets = _secrets(config, local, out) if config.env.secrets_file else []
    twice = sorted({key for key, _ in config.env.values} & {key for key, _ in secrets})
    if twice:
        raise ConfigError(t("settings.env_values_both_set", KEY=KEY, twice=", ".join(twice)))
    taken = [key for key, _ in [*pairs, *secrets] if key in reserved]
    if taken:
        raise ConfigError(
            t("settings.env_values_sets_which", KEY=KEY, sorted=", ".join(sorted(set(taken)))),
            hint=t("settings.leave_tag_image_keys"),
        )
    return tuple(pairs + secrets)


def secrets_path(config: Config) -> Path:
    return config.root / os.path.expanduser(config.env.secrets_file)


def _secrets(config: Config, local: Transport, out: Output) -> list[tuple[str, str]]:
    path = secrets_path(config)
    try:
        text = path.read_bytes().decode("utf-8", "surrogateescape")
    except OSError as exc:
        raise ConfigError(
            t("settings.cannot_read", KEY=KEY, secrets_file=config.env.secrets_file, strerror=exc.strerror),
            hint=t("settings.create_key_value_lines"),
        ) from None
    _refuse_tracked(config, local, path)
    found = envfile.written_values(text)
    for key, written in found.items():
        if not VARIABLE_RE.fullmatch(key):
            raise ConfigError(t("settings.not_variable_name_letters", KEY=KEY, key=key[:80]))
        if "\x00" in written or "\r" in written:
            raise ConfigError(t("settings.value_holds_nul_carriage", KEY=KEY, key=key))
        # Each form it may show up in: as written, and as the container sees it (what an app logs).
        for form in {written, envfile.get_value(text, key) or "", envfile.decode(written)}:
            if len(form) >= MASK_FROM:
                out.add_secret(form)
    return list(found.items())


def _refuse_tracked(config: Config, local: Transport, path: Path) -> None:
    """A secrets file committed to the repository is not secret: refuse it (exit 2)."""
    root = config.root.resolve()
    try:
        inside = path.resolve().relative_to(root)
    except ValueError:
        return  # outside the repository (~/.config/app/secrets.env): git cannot have it
    tracked = local.run(
        Command(("git", "-C", str(root), "ls-files", "--error-unmatch", "--", str(inside))), show=False, check=False
    )
    if tracked.ok:
        raise ConfigError(
            t("settings.committed_git_so_values", KEY=KEY, secrets_file=config.env.secrets_file),
            hint=t("settings.git_rm_cached_echo", inside=inside),
        )
    ignored = local.run(
        Command(("git", "-C", str(root), "check-ignore", "--quiet", "--", str(inside))), show=False, check=False
    )
    if not ignored.ok:
        out_hint = t("settings.not_in_gitignore", KEY=KEY, file=config.env.secrets_file)
        local.out.warn(out_hint)
