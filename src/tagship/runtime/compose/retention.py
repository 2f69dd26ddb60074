"""Releases kept on a server: its history, the release it runs, which images remain, pruning.

Needs only the config and the server: the .env keys come from what the history recorded.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from tagship import messages
from tagship.builders import compose, docker, envfile, history, override
from tagship.builders.command import Command
from tagship.builders.history import Record
from tagship.builders.untrusted import printable
from tagship.config import Config
from tagship.errors import ConfigError
from tagship.runtime import ServerReleases
from tagship.runtime.compose.prepare import read_env
from tagship.runtime.compose.target import Target


def read_state(config: Config, target: Target) -> ServerReleases:
    """History and current version of one server: the tag in its .env, or, when no .env key holds
    the tag (a compose file with a fixed tag), the image of its override, else the last release."""
    t = target.transport
    text = t.run(history.read(target.project.directory), show=False).stdout
    records, problems = history.parse_lines(text)
    for problem in problems:  # a line the server holds that tagship did not write: say so, never use it
        t.out.warn(
            messages.t(
                "retention.that_line_ignored",
                name=t.name,
                STATE_DIR=history.STATE_DIR,
                HISTORY_FILE=history.HISTORY_FILE,
                problem=problem,
            )
        )
    env = read_env(target) or ""
    tag_key = config.env.tag_key or recorded_tag_key(records)
    if tag_key:
        current = (envfile.get_value(env, tag_key) or "").split("@", 1)[0]
    elif records:
        current = override_version(target) or history.last_succeeded(records)
    else:
        current = ""
    return ServerReleases(t.name, current, records, env)


def override_version(target: Target) -> str:
    """The tag of the image the server's override sets for the web service ("" if it sets none)."""
    path = str(PurePosixPath(target.project.directory) / override.FILE_NAME)
    result = target.transport.run(envfile.read(path), show=False, check=False)
    return compose.image_tag(override.web_image(result.stdout)) if result.ok else ""


def recorded_tag_key(records: list[Record]) -> str:
    """The .env key that holds the tag, as the newest release that recorded its values set it ("" if none did)."""
    for record in reversed(records):
        for key, value in record.env.items():
            if value.split("@", 1)[0] == record.version:
                return key
    return ""


def kept_images(target: Target, records: list[Record]) -> set[str]:
    """ "REPOSITORY TAG-OR-DIGEST" of this app's images still on the server (a rollback can go there)."""
    kept = set()
    for repository in sorted({r.repository for r in records}):
        for tag, digest in image_refs(target, repository):
            kept |= {f"{repository} {tag}", f"{repository} {digest}"}
    return kept


def is_kept(record: Record, images: set[str]) -> bool:
    repository = record.repository
    return f"{repository} {record.version}" in images or f"{repository} {record.digest}" in images


def check_retained(targets: list[Target], record: Record) -> None:
    """Every server still has the release's image (by digest when recorded), or nothing happens."""
    missing = []
    for target in targets:
        if not target.transport.run(docker.image_id(present_ref(record)), show=False, check=False).ok:
            retained = retained_tags(target, record.repository)
            missing.append(
                messages.t(
                    "retention.keeps_only",
                    name=target.name,
                    tags=printable(", ".join(retained)) or messages.t("retention.nothing"),
                )
            )
    if missing:
        raise ConfigError(
            messages.t("retention.no_longer_retained", version=record.version, missing="; ".join(missing)),
            hint=messages.t("retention.roll_back_retained_release"),
        )


def present_ref(record: Record) -> str:
    """The reference that finds the release's image on a server (the digest survives a re-pushed tag)."""
    return f"{record.repository}@{record.digest}" if record.digest else record.image


def retained_tags(target: Target, repository: str) -> list[str]:
    """The tags of the repository's images on the server."""
    return sorted({tag for tag, _ in image_refs(target, repository)} - {"<none>"})


def image_refs(target: Target, repository: str) -> list[tuple[str, str]]:
    """(tag, digest) of each of the repository's images on the server ("<none>" where it has none)."""
    listing = target.transport.run(docker.image_refs(repository), show=False, check=False).stdout
    found, skipped = docker.parse_image_refs(listing)
    target.warn_skipped("docker image ls", skipped)
    return found


def prune_target(config: Config, target: Target, deploying: str = "") -> list[str]:
    """Remove the server's images of this app beyond the last releases.keep; never current or previous.

    During a deploy, `deploying` is the release just switched to (not in the history yet).
    """
    state = read_state(config, target)
    if not state.records:
        return []
    current = deploying or state.current
    tags = history.prune_choice(state.records, current, deploying, config.releases.keep)
    repository = state.records[-1].repository
    removed = []
    for tag in retained_tags(target, repository):
        if tag not in tags:
            result = target.transport.run(Command(("docker", "image", "rm", f"{repository}:{tag}")), check=False)
            if result.ok:
                removed.append(tag)
    return removed
