"""The tagship test lab: a real registry and SSH servers with their own Docker engines.

Everything runs on this machine: a TLS + htpasswd registry in network namespace tslab-reg
(10.201.0.11:5443) and servers tslab-h1..hN (10.201.N.11), each with its own dockerd, sshd and
private /srv, /root/.docker and /var/lib/tagship. `python -m lab up|down|status`.
"""

from ._core import (
    Check,
    block_registry,
    caddy_image,
    current,
    down,
    haproxy_image,
    lab_root,
    server_docker,
    status,
    untrust_registry,
    up,
)
from ._framework import ensure_django_images
from ._model import Lab, LabServer
from ._proc import LabError

__all__ = [
    "Check",
    "Lab",
    "LabError",
    "LabServer",
    "block_registry",
    "caddy_image",
    "current",
    "down",
    "ensure_django_images",
    "haproxy_image",
    "lab_root",
    "server_docker",
    "status",
    "untrust_registry",
    "up",
]
