"""Git command builders and parsers: which tag to ship, and the tree it names."""

from __future__ import annotations

import re

from tagship.builders.command import Command

# What Docker accepts as an image tag.
DOCKER_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def status(repo: str) -> Command:
    """Tracked changes only: untracked files never reach the image, which is built from the tag."""
    return Command(("git", "-C", repo, "status", "--porcelain", "--untracked-files=no"))


def tags_at_head(repo: str) -> Command:
    return Command(("git", "-C", repo, "tag", "--points-at", "HEAD", "--sort=-v:refname"))


def commit_of(repo: str, ref: str) -> Command:
    return Command(("git", "-C", repo, "rev-parse", "--verify", "--quiet", f"refs/tags/{ref}^{{commit}}"))


def archive(repo: str, commit: str) -> Command:
    return Command(("git", "-C", repo, "archive", "--format=tar", commit))


def user_name(repo: str) -> Command:
    return Command(("git", "-C", repo, "config", "user.name"))


def pick_tag(output: str) -> str | None:
    """The highest version among the tags on HEAD (git sorted them), or None."""
    tags = [line.strip() for line in output.splitlines() if line.strip()]
    return tags[0] if tags else None


def dirty_files(output: str) -> list[str]:
    """Paths listed by `git status --porcelain`."""
    return [line[3:] for line in output.splitlines() if line.strip()]
