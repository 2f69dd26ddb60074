"""Which release to ship: the tag, its commit, its tree, and the image name it gets."""

from __future__ import annotations

import getpass
import io
import shutil
import socket
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tagship.builders import compose, docker, envfile, git
from tagship.config import Config
from tagship.errors import ConfigError, GitError, MissingToolError
from tagship.messages import t
from tagship.remote.transport import Transport


@dataclass
class Release:
    """A version to deploy and the image that carries it (digest filled in once pushed)."""

    version: str
    commit: str
    repository: str  # registry/namespace/name, or a local name when there is no registry
    deployer: str
    digest: str = ""  # the registry's manifest digest
    pinned: bool = False  # servers run repository:version@digest, so a re-pushed tag changes nothing
    in_registry: bool = False  # the registry already has this tag with this content: no build, no push

    @property
    def image(self) -> str:
        """The tag as built and pushed."""
        return f"{self.repository}:{self.version}"

    @property
    def tag_value(self) -> str:
        """What the .env tag key gets: the tag, or tag@digest when pinned."""
        return f"{self.version}@{self.digest}" if self.pinned and self.digest else self.version

    @property
    def ref(self) -> str:
        """What the servers run."""
        return f"{self.repository}:{self.tag_value}"

    @property
    def exact(self) -> str:
        """What the servers pull: this run's image by its digest when known (repository@digest),
        so that a tag pushed again while the deploy runs cannot put other content under it."""
        return f"{self.repository}@{self.digest}" if self.digest and not self.pinned else self.ref


def resolve_version(local: Transport, repo: str, requested: str, allow_dirty: bool) -> tuple[str, str]:
    """(tag, commit): the requested tag, or the tag on HEAD; refuses a dirty tree."""
    if not allow_dirty:
        dirty = git.dirty_files(local.run(git.status(repo), show=False).stdout)
        if dirty:
            listed = ", ".join(dirty[:5]) + (" …" if len(dirty) > 5 else "")
            raise GitError(
                t("release.working_tree_has_uncommitted", listed=listed),
                hint=t("release.commit_stash_them_pass"),
            )
    tag = requested or git.pick_tag(local.run(git.tags_at_head(repo), show=False).stdout)
    if not tag:
        raise GitError(
            t("release.head_has_no_tag"),
            hint=t("release.tag_git_tag_v"),
        )
    result = local.run(git.commit_of(repo, tag), show=False, check=False)
    if not result.ok or not result.stdout.strip():
        raise GitError(t("release.no_such_tag", tag=tag), hint=t("release.list_tags_git_tag"))
    if not git.DOCKER_TAG_RE.fullmatch(tag):  # match would let "v1\n" through ($)
        raise GitError(
            t("release.tag_cannot_docker_image", tag=tag),
            hint=t("release.use_letters_digits_most"),
        )
    return tag, result.stdout.strip()


def export_tree(local: Transport, repo: str, commit: str) -> Path:
    """Extract the commit's files into a new temporary directory (never the working tree)."""
    data = local.run(git.archive(repo, commit), show=False, binary=True).raw
    target = Path(tempfile.mkdtemp(prefix="tagship-build-"))
    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            archive.extractall(target, filter="data")
    except tarfile.FilterError as exc:  # a link to a file outside the tree: refused, nothing half-extracted kept
        remove_tree(target)
        raise ConfigError(
            t("release.tagged_tree_cannot_built", exc=exc),
            hint=t("release.image_built_tagged_commit"),
        ) from exc
    except BaseException:
        remove_tree(target)
        raise
    return target


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def deployer_name(local: Transport, repo: str) -> str:
    """Who deploys: git user name and local user@host."""
    try:
        name = local.run(git.user_name(repo), show=False, check=False).stdout.strip()
    except MissingToolError:  # rollback and the lock commands run on machines without git too
        name = ""
    who = f"{getpass.getuser()}@{socket.gethostname()}"
    return f"{name} ({who})" if name else who


def repository(config: Config, raw_image: str, local_env: str) -> str:
    """The image repository to tag and push: config, then compose's image value, then the app name."""
    reg = config.registry
    name = config.image.name
    found = compose.image_vars(raw_image)
    if not name and found.name_key:
        name = envfile.get_value(local_env, found.name_key) or ""
    if not name and found.literal_repo:
        if not reg.url:
            return checked(found.literal_repo)
        name = found.literal_repo.rsplit("/", 1)[-1]
    if not name:
        raise ConfigError(
            t("release.cannot_tell_image_name"),
            hint=t("release.set_image_name_tagship"),
        )
    if "/" in name and reg.url and name.startswith(reg.url + "/"):
        return name
    parts = [p for p in (reg.url.rstrip("/"), reg.namespace, name) if p]
    return checked("/".join(parts))


def checked(repo: str) -> str:
    """Refuse a repository name Docker would reject, before anything is built."""
    if not docker.REPOSITORY_RE.fullmatch(repo):
        raise ConfigError(
            t("release.not_valid_docker_image", repo=repo),
            hint=t("release.use_lower_case_letters"),
        )
    return repo
