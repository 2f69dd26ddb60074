"""A git repository laid out like DjangoStarter (github.com/Deali-Axy/DjangoStarter), for lab tests.

Our own minimal Django project, in DjangoStarter's deployment layout: `src/` with `config.settings`
and `config.wsgi`, a Dockerfile, `compose.base.yml` (redis, and the app with its build, image,
`$APP_NAME-app` container name, port, bind mounts, `depends_on: redis: service_healthy` and a 30 s
python healthcheck), `compose.gunicorn.yml` (the app's gunicorn command), `compose.caddy.yml` (the
user's own Caddy `web`, `reverse_proxy app:8000`), a `.env` and a `tagship.toml` for the lab servers.
The image builds on `lab.django_base_image` (Debian's Django 3.2 and gunicorn, no pip); redis and
Caddy are the lab's images: call `lab.ensure_django_images()` first.
"""

from __future__ import annotations

import itertools
import shlex
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import lab
from tests.apprepo import AppRepo

COMPOSE_FILES = ("compose.base.yml", "compose.gunicorn.yml", "compose.caddy.yml")

# Above tests.apprepo's ports (18100 up), and checked free on the servers: with
# TAGSHIP_TEST_KEEP_SERVERS other sessions' apps (and their proxy routes) stay on the servers.
_ports = itertools.count(18600)

MANAGE_PY = """\
#!/usr/bin/env python
import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
"""

SETTINGS_PY = """\
\"\"\"Settings from the environment (compose passes .env with env_file), as DjangoStarter's do.\"\"\"

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent  # /project/src
PROJECT_DIR = BASE_DIR.parent  # /project: data/, media/, static-dist/, version.txt

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "insecure-only-for-development")
DEBUG = os.environ.get("DEBUG", "false").lower() == "true"
ALLOWED_HOSTS = os.environ.get("ALLOWED_HOSTS", "*").split(",")
ENVIRONMENT = os.environ.get("ENVIRONMENT", "development")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "apps.core",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "config.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
WSGI_APPLICATION = "config.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": Path(os.environ.get("DATA_DIR", PROJECT_DIR / "data")) / "db.sqlite3",
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

TIME_ZONE = os.environ.get("TZ", "UTC")
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = PROJECT_DIR / "static-dist"
MEDIA_URL = "/media/"
MEDIA_ROOT = PROJECT_DIR / "media"
VERSION_FILE = PROJECT_DIR / "version.txt"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {
        "console": {"class": "logging.StreamHandler"},
        "file": {"class": "logging.FileHandler", "filename": BASE_DIR / "logs" / "django.log"},
    },
    "root": {"handlers": ["console", "file"], "level": "INFO"},
}
"""

URLS_PY = """\
from django.urls import path

from apps.core import views

urlpatterns = [
    path("", views.index),
    path("version/", views.version),
    path("healthz/", views.healthz),
    path("visits/", views.visits),
]
"""

WSGI_PY = """\
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()
"""

VIEWS_PY = """\
import redis
from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from apps.core.models import Visit


def _text(body, status=200):
    return HttpResponse(body + "\\n", status=status, content_type="text/plain")


def _version():
    return settings.VERSION_FILE.read_text().strip()


def index(request):
    return _text(f"django starter {_version()}")


def version(request):
    return _text(_version())


def healthz(request):
    \"\"\"200 when redis answers; 500 in a release built broken (a BROKEN file in src/).\"\"\"
    if (settings.BASE_DIR / "BROKEN").exists():
        return _text("this release is broken", status=500)
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as exc:
        return _text(f"redis: {exc}", status=503)
    return _text("ok")


@csrf_exempt
@require_http_methods(["GET", "POST"])
def visits(request):
    \"\"\"POST records a visit in the sqlite database; both methods return the count.\"\"\"
    if request.method == "POST":
        Visit.objects.create()
    return _text(str(Visit.objects.count()))
"""

MODELS_PY = """\
from django.db import models


class Visit(models.Model):
    at = models.DateTimeField(auto_now_add=True)
"""

MIGRATION_PY = """\
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Visit",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("at", models.DateTimeField(auto_now_add=True)),
            ],
        ),
    ]
"""

APPS_PY = """\
from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
"""

ENTRYPOINT_SH = """\
#!/bin/sh
# Migrations first (sqlite in the bind-mounted ./data), then the compose command (gunicorn).
# Replicas start together: one migrates at a time (concurrent ones break on sqlite's lock).
set -e
flock /project/data/.migrate.lock python src/manage.py migrate --noinput
# A release built to crash (tests): gunicorn (PID 1 after the exec) is stopped that many seconds
# after the start, as an app that dies soon after passing its health check would be.
if [ -f /project/src/CRASH_AFTER ]; then (sleep "$(cat /project/src/CRASH_AFTER)"; kill -TERM 1) & fi
exec "$@"
"""

HEALTHCHECK_PY = (
    "import requests; r = requests.get('http://localhost:8000/healthz/'); exit(0 if r.status_code == 200 else 1)"
)

DOCKERFILE = """\
# Our stand-in for DjangoStarter's Dockerfile (python:3.x-slim + uv there; Debian's packages here).
FROM {base}

ENV DJANGO_SETTINGS_MODULE=config.settings \\
    PYTHONPATH=/project/src \\
    PYTHONUNBUFFERED=1
WORKDIR /project
COPY src /project/src
COPY version.txt docker-entrypoint.sh /project/
RUN mkdir -p /project/data /project/media /project/src/logs \\
 && python src/manage.py collectstatic --noinput

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \\
    CMD python -c "{healthcheck}"
EXPOSE 8000
ENTRYPOINT ["sh", "/project/docker-entrypoint.sh"]
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000"]
"""

DOCKERIGNORE = """\
.git
.gitignore
__pycache__/
*.py[cod]
media/
static-dist/
data/
db.sqlite3
log/
redis/
README.md
"""

GITIGNORE = """\
.env
__pycache__/
data/
media/
log/
redis/
"""

# DjangoStarter shares ${HEALTHCHECK_INTERVAL:-30s} between redis and app; redis gets 5s here so
# that the first deploy waits 5 s (not 30) for `depends_on: condition: service_healthy`.
COMPOSE_BASE = """\
services:
  redis:
    image: ${{REDIS_IMAGE:-redis:alpine}}
    restart: unless-stopped
    container_name: $APP_NAME-redis
    volumes:
      - ./redis:/data
    networks:
      - default
    deploy:
      resources:
        limits:
          cpus: '${{REDIS_CPU_LIMIT:-0.5}}'
          memory: ${{REDIS_MEMORY_LIMIT:-256M}}
    healthcheck:
      test: [ "CMD", "redis-cli", "ping" ]
      interval: 5s
      timeout: ${{HEALTHCHECK_TIMEOUT:-5s}}
      retries: ${{HEALTHCHECK_RETRIES:-3}}
      start_period: ${{HEALTHCHECK_START_PERIOD:-10s}}
    security_opt:
      - no-new-privileges:true

  app:
    image: ${{APP_IMAGE_NAME}}:${{APP_IMAGE_TAG}}
{container_name}    build:
      context: .
      dockerfile: Dockerfile
    restart: always
    env_file:
      - .env
    environment:
      - ENVIRONMENT=${{ENVIRONMENT:-docker}}
      - URL_PREFIX=${{URL_PREFIX}}
      - DEBUG=${{DEBUG:-false}}
      - TZ=${{TZ:-Asia/Shanghai}}
      - REDIS_URL=redis://redis:6379/0
    volumes:
      - ./media:/project/media
      - static:/project/static-dist
      - ./data:/project/data
      - ./log:/project/src/logs
    user: "0:0"
    depends_on:
      redis:
        condition: service_healthy
    networks:
      - default
{ports}    deploy:
{replicas}      resources:
        limits:
          cpus: '${{APP_CPU_LIMIT:-1.0}}'
          memory: ${{APP_MEMORY_LIMIT:-512M}}
    healthcheck:
      test: [ "CMD", "python", "-c", "{healthcheck}" ]
      interval: ${{HEALTHCHECK_INTERVAL:-30s}}
      timeout: ${{HEALTHCHECK_TIMEOUT:-5s}}
      retries: ${{HEALTHCHECK_RETRIES:-3}}
      start_period: ${{HEALTHCHECK_START_PERIOD:-10s}}
    security_opt:
      - no-new-privileges:true

volumes:
  static:

networks:
  default:
    name: $APP_NAME
"""

COMPOSE_GUNICORN = """\
services:
  app:
    command:
      - gunicorn
      - config.wsgi:application
      - -w
      - "4"
      - -b
      - "0.0.0.0:${APP_INTERNAL_PORT:-8000}"
"""

COMPOSE_CADDY = """\
services:
  web:
    container_name: $APP_NAME-web
    image: ${CADDY_IMAGE:-caddy:2}
    ports:
      - "${WEB_PORT:-9878}:80"
    volumes:
      - ./Caddyfile:/etc/caddy/Caddyfile
      - static:/project/static:ro
      - ./media:/project/media:ro
    depends_on:
      - app
"""

CADDYFILE = """\
:80 {
    handle_path /static/* {
        root * /project/static
        file_server
    }

    handle_path /media/* {
        root * /project/media
        file_server
    }

    handle {
        reverse_proxy app:8000
    }
}
"""


@dataclass
class DjangoStarterRepo(AppRepo):
    """A DjangoStarter-like project in a git repo; `port` is APP_PORT (0: the app publishes none)."""

    web_port: int = 0  # WEB_PORT: the user's own Caddy
    app_name: str = ""  # APP_NAME: container names, the compose network

    def release(self, version: str, *, broken: bool = False, tag: bool = True, crash_after: float = 0) -> None:
        """Commit a version (baked into the image as /project/version.txt) and tag it.

        broken: /healthz/ answers 500, so the container's healthcheck never passes.
        crash_after: gunicorn serves that many seconds after the container starts, then stops
        (and Docker's `restart: always` starts it again, to serve as long again).
        """
        (self.path / "version.txt").write_text(version + "\n")
        crash = self.path / "src" / "CRASH_AFTER"
        if crash_after:
            crash.write_text(f"{crash_after:g}\n")
        elif crash.exists():
            crash.unlink()
        marker = self.path / "src" / "BROKEN"
        if broken:
            marker.write_text("this release never becomes healthy\n")
        elif marker.exists():
            marker.unlink()
        self.git("add", "--all")
        self.git("commit", "--quiet", "--allow-empty", "--message", f"Release {version}")
        if tag:
            self.git("tag", version)


def post(url: str, timeout: float = 3) -> str:
    """POST (no body) to a URL, body stripped; raises on failure."""
    with urllib.request.urlopen(urllib.request.Request(url, data=b"", method="POST"), timeout=timeout) as response:
        return str(response.read().decode().strip())


def listening_ports(server: lab.LabServer) -> set[int]:
    """TCP ports something listens on in the server's network namespace."""
    out = subprocess.run(["ssh", server.name, "ss -Hltn"], capture_output=True, text=True, timeout=60, check=True)
    return {int(line.split()[3].rpartition(":")[2]) for line in out.stdout.splitlines() if line.strip()}


def free_ports(the_lab: lab.Lab, count: int) -> list[int]:
    """count ports that no lab server listens on yet."""
    used = set().union(*(listening_ports(s) for s in the_lab.servers))
    return list(itertools.islice((p for p in _ports if p not in used), count))


def remove_project(server: lab.LabServer, app_name: str) -> None:
    """Remove a project's containers, network, volumes and directory from a server (leftovers of a run)."""
    script = (
        'ids=$(docker ps -aq --filter "label=com.docker.compose.project=$1"); '
        '[ -z "$ids" ] || docker rm -f $ids >/dev/null; '
        'docker network rm "$1" >/dev/null 2>&1; docker volume rm "$1_static" >/dev/null 2>&1; '
        'rm -rf "/srv/$1"; true'
    )
    subprocess.run(["ssh", server.name, shlex.join(["sh", "-c", script, "sh", app_name])], check=True, timeout=120)


def create(
    path: Path,
    the_lab: lab.Lab,
    *,
    app_name: str,
    namespace: str,
    env: dict[str, str],
    publish_app_port: bool = True,
    replicas: int = 0,
) -> DjangoStarterRepo:
    """Write the project, its .env and tagship.toml, and commit it (untagged: call release()).

    publish_app_port=False: the app publishes no port, the user's Caddy is the only entry.
    replicas: declare `deploy.replicas` (and drop the fixed container name, which compose refuses
    with more than one replica).
    """
    app_port, web_port = free_ports(the_lab, 2)
    if not publish_app_port:
        app_port = 0
    files = {
        "src/manage.py": MANAGE_PY,
        "src/config/__init__.py": "",
        "src/config/settings.py": SETTINGS_PY,
        "src/config/urls.py": URLS_PY,
        "src/config/wsgi.py": WSGI_PY,
        "src/apps/__init__.py": "",
        "src/apps/core/__init__.py": "",
        "src/apps/core/apps.py": APPS_PY,
        "src/apps/core/models.py": MODELS_PY,
        "src/apps/core/views.py": VIEWS_PY,
        "src/apps/core/migrations/__init__.py": "",
        "src/apps/core/migrations/0001_initial.py": MIGRATION_PY,
        "docker-entrypoint.sh": ENTRYPOINT_SH,
        "version.txt": "v0\n",
        "Dockerfile": DOCKERFILE.format(base=the_lab.django_base_image, healthcheck=HEALTHCHECK_PY),
        ".dockerignore": DOCKERIGNORE,
        ".gitignore": GITIGNORE,
        "compose.base.yml": COMPOSE_BASE.format(
            container_name="" if replicas else "    container_name: $APP_NAME-app\n",
            ports='    ports:\n      - "${APP_PORT:-9876}:8000"\n' if publish_app_port else "",
            replicas=f"      replicas: {replicas}\n" if replicas else "",
            healthcheck=HEALTHCHECK_PY,
        ),
        "compose.gunicorn.yml": COMPOSE_GUNICORN,
        "compose.caddy.yml": COMPOSE_CADDY,
        "Caddyfile": CADDYFILE,
        ".env": dotenv(the_lab, app_name=app_name, app_port=app_port, web_port=web_port),
        "tagship.toml": tagship_toml(the_lab, app_name=app_name, namespace=namespace),
    }
    for name, text in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    repo = DjangoStarterRepo(path, env, app_port, f"/srv/{app_name}", f"{the_lab.registry}/{namespace}/{app_name}")
    repo.web_port, repo.app_name = web_port, app_name
    repo.git("init", "--quiet", "--initial-branch=main")
    repo.git("config", "user.name", "Test Deployer")
    repo.git("config", "user.email", "test@tagship.invalid")
    repo.git("add", "--all")
    repo.git("commit", "--quiet", "--message", "A DjangoStarter-like project")
    return repo


def dotenv(the_lab: lab.Lab, *, app_name: str, app_port: int, web_port: int) -> str:
    """DjangoStarter's .env.example, with this lab's images and ports and the three compose files."""
    return (
        "COMPOSE_FILE=" + ":".join(COMPOSE_FILES) + "\n"
        f"APP_NAME={app_name}\nAPP_IMAGE_NAME={app_name}\nAPP_IMAGE_TAG=v0\n\n"
        "ENVIRONMENT=docker\nDEBUG=false\nTZ=Asia/Shanghai\nURL_PREFIX=\n"
        "DJANGO_SECRET_KEY=lab-only-secret\n\n"
        + (f"APP_PORT={app_port}\n" if app_port else "")
        + f"APP_INTERNAL_PORT=8000\nWEB_PORT={web_port}\n\n"
        f"REDIS_IMAGE={the_lab.redis_image}\nCADDY_IMAGE={the_lab.caddy_image}\n\n"
        "REDIS_CPU_LIMIT=0.5\nREDIS_MEMORY_LIMIT=256M\nAPP_CPU_LIMIT=1.0\nAPP_MEMORY_LIMIT=512M\n\n"
        "HEALTHCHECK_INTERVAL=30s\nHEALTHCHECK_TIMEOUT=5s\nHEALTHCHECK_RETRIES=3\nHEALTHCHECK_START_PERIOD=10s\n"
    )


def tagship_toml(the_lab: lab.Lab, *, app_name: str, namespace: str) -> str:
    """tagship.toml for every lab server through the lab registry (as tests/conftest.py's app has)."""
    servers = ", ".join(f'"{s.name}"' for s in the_lab.servers)
    listed = ", ".join(f'"{f}"' for f in COMPOSE_FILES)
    return (
        f"servers = [{servers}]\n\n"
        f'[app]\npath = "/srv/{app_name}"\nservice = "app"\ncompose_files = [{listed}]\n'
        f'upload = [{listed}, "Caddyfile"]\n\n'
        f'[env]\nseed = ".env"\n\n'
        f'[image]\nname = "{app_name}"\n\n'
        f'[registry]\nurl = "{the_lab.registry}"\nnamespace = "{namespace}"\n'
        f'username = "{the_lab.registry_user}"\n\n'
        f'[proxy]\nimage = "{the_lab.caddy_image}"\nlistener_image = "{the_lab.haproxy_image}"\n\n'
        f'[health]\npath = "/healthz/"\n'
    )
