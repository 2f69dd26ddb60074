"""Images for framework-app tests (Django + gunicorn, Redis), built lazily on the Debian base.

`lab up` never builds them: a test that needs them calls `ensure_django_images()`, which builds
each image once (cached on the host engine) and pushes it to the lab registry under the lab lock.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from ._core import (
    BASE_IMAGE,
    DJANGO_BASE_IMAGE,
    REDIS_IMAGE,
    REGISTRY,
    REGISTRY_USER,
    Paths,
    _bin,
    _build_base,
    _ensure_host_engine,
    _host_env,
    _image_id,
    _locked,
    _registry_request,
    _require_root,
    apt_dockerfile,
    apt_mirror,
    lab_root,
)
from ._proc import LabError, run, tail

DJANGO_DOCKERFILE = (
    "# tagship lab stand-in for python:3.x-slim + pip install django gunicorn redis requests.\n"
    # libjs-jquery: Django's admin static files link into it (collectstatic fails without).
    + apt_dockerfile("python3-django libjs-jquery gunicorn python3-redis python3-requests python-is-python3")
    + 'ENV PYTHONUNBUFFERED=1\nCMD ["python"]\n'
)

REDIS_DOCKERFILE = (
    "# tagship lab stand-in for redis:alpine: Debian's redis-server, data in /data.\n"
    + apt_dockerfile("redis-server")
    + "WORKDIR /data\nEXPOSE 6379\n"
    # No config file: redis binds every address; protected mode would refuse the app's connections.
    + 'CMD ["redis-server", "--protected-mode", "no"]\n'
)


@dataclass(frozen=True)
class LabImage:
    """An image built here from a Dockerfile and pushed to the lab registry (REGISTRY/lab/NAME:TAG)."""

    remote: str
    dockerfile: str

    @property
    def name(self) -> str:
        return self.remote.removeprefix(f"{REGISTRY}/lab/").partition(":")[0]

    @property
    def tag(self) -> str:
        return self.remote.rpartition(":")[2]

    @property
    def local(self) -> str:
        return f"tagship-lab/{self.name}:{self.tag}"

    @property
    def digest(self) -> str:
        """Labels the build, so that an edited Dockerfile is rebuilt rather than served from cache."""
        return hashlib.sha256(self.dockerfile.encode()).hexdigest()[:16]


DIGEST_LABEL = "tagship-lab.dockerfile"
DJANGO_BASE = LabImage(DJANGO_BASE_IMAGE, DJANGO_DOCKERFILE)
REDIS = LabImage(REDIS_IMAGE, REDIS_DOCKERFILE)


def _build(paths: Paths, image: LabImage) -> float:
    """docker build image.local from its Dockerfile; seconds taken."""
    ctx = paths.root / "build" / image.name
    ctx.mkdir(parents=True, exist_ok=True)
    (ctx / "Dockerfile").write_text(image.dockerfile)
    env = _host_env(paths)
    env["DOCKER_BUILDKIT"] = "0"
    log = paths.logs / f"{image.name}-build.log"
    started = time.monotonic()
    proc = run(
        [_bin("docker"), "build", "--network", "host", "--build-arg", f"MIRROR={apt_mirror()}",
         "--label", f"{DIGEST_LABEL}={image.digest}", "-t", image.local, str(ctx)],
        check=False,
        env=env,
        timeout=900,
    )  # fmt: skip
    log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise LabError(f"building {image.local} failed; log {log}:\n{tail(log)}")
    return time.monotonic() - started


def _current(paths: Paths, image: LabImage) -> bool:
    """Whether the host engine has image.local, built from today's Dockerfile."""
    out = run(
        [_bin("docker"), "image", "inspect", "--format", f'{{{{index .Config.Labels "{DIGEST_LABEL}"}}}}', image.local],
        check=False,
        env=_host_env(paths),
    )
    return out.returncode == 0 and out.stdout.strip() == image.digest


def _publish(paths: Paths, password: str, image: LabImage) -> None:
    """Tag image.local as image.remote and push it unless the registry already has that content."""
    local = _image_id(paths, image.local)
    if local is None:
        raise LabError(f"{image.local} missing after build")
    env = _host_env(paths)
    if _image_id(paths, image.remote) != local:
        run([_bin("docker"), "tag", image.local, image.remote], env=env)
    head = _registry_request(
        paths,
        "HEAD",
        f"/v2/lab/{image.name}/manifests/{image.tag}",
        (REGISTRY_USER, password),
        {"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    remote = head[1].get("docker-content-digest") if head and head[0] == 200 else None
    digests = run(
        [_bin("docker"), "image", "inspect", "--format", "{{json .RepoDigests}}", image.remote],
        env=env,
    ).stdout
    if remote is None or f"{REGISTRY}/lab/{image.name}@{remote}" not in digests:
        run([_bin("docker"), "push", image.remote], env=env, timeout=600)


def ensure_django_images() -> dict[str, float]:
    """Build (once) and push the Django base and Redis images; seconds each build took now.

    Idempotent and safe to call from several processes at once (the lab lock serialises them);
    an empty result means both were already there. Needs a lab that is up (the registry).
    """
    _require_root()
    paths = Paths(lab_root())
    try:
        password = paths.password_file.read_text().strip()
    except OSError as exc:
        raise LabError(f"no lab registry password in {paths.root}: run `python -m lab up`") from exc
    built: dict[str, float] = {}
    with _locked(paths):
        _ensure_host_engine(paths)
        for image in (DJANGO_BASE, REDIS):
            if not _current(paths, image):
                if _image_id(paths, BASE_IMAGE) is None:
                    started = time.monotonic()
                    _build_base(paths)
                    built[BASE_IMAGE] = time.monotonic() - started
                built[image.local] = _build(paths, image)
            _publish(paths, password, image)
    return built
