"""The lab's public data types."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LabServer:
    """One lab server: a network namespace with its own Docker engine and sshd."""

    name: str  # "tslab-h1", also an ssh alias: plain `ssh tslab-h1` works
    ip: str  # "10.201.1.11"
    docker_host: str  # "unix:///run/tslab-h1/docker.sock", its own engine
    bastion: str = ""  # the hidden server's only way in (its slot's first server); "" for the others


@dataclass(frozen=True)
class Lab:
    """A running lab, as returned by up()."""

    registry: str  # "10.201.0.11:5443": TLS + htpasswd, reachable from host and all servers
    registry_user: str
    registry_password: str
    ca_cert: Path
    servers: tuple[LabServer, ...]
    caddy_image: str  # "10.201.0.11:5443/lab/caddy:2", built here, pushed to the registry
    haproxy_image: str  # "10.201.0.11:5443/lab/haproxy:2.6-user": tagship's port listeners (Debian's HAProxy)
    root: Path  # state dir: /var/lib/tagship-lab unless TAGSHIP_LAB_DIR says otherwise
    # Built only when a test asks (lab.ensure_django_images()), then cached and pushed like caddy:
    django_base_image: str  # "10.201.0.11:5443/lab/django-base:1": Debian's Django 3.2, gunicorn, redis-py
    redis_image: str  # "10.201.0.11:5443/lab/redis:7": Debian's redis-server, data in /data
    # up(hidden=True): the slot's tslab-jN (10.201.(100+N).11), whose sshd answers only the slot's first
    # server tslab-hN (ssh -J tslab-hN tslab-jN): tslab-j1 behind tslab-h1 in slot 0.
    hidden: LabServer | None = None
