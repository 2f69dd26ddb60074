#!/usr/bin/env bash
# Update requirements/dev.lock from pyproject.toml, then prove it: a new virtualenv installed from
# the lock runs ruff, mypy and the unit and middle tiers.
#   bash scripts/lock.sh              keep every pin that still fits pyproject.toml
#   bash scripts/lock.sh --upgrade    move every pin to the newest version pyproject.toml allows
#   bash scripts/lock.sh -P click     move one package (uv's --upgrade-package)
# uv, not pip-tools: one universal resolution (Linux, macOS and Windows markers in one file, which
# pip-tools cannot do: it locks for the machine it runs on) with hashes, in about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION="0.13.8"
LOCK="requirements/dev.lock"
if ! command -v uv >/dev/null || [ "$(uv --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  python3 -m pip install -q "uv==${UV_VERSION}"
fi

# The lock also pins the build backend, so the editable install needs no unpinned download.
build_in="requirements/build-system.in"
trap 'rm -f "$build_in"' EXIT
python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))' \
  >"$build_in"
uv pip compile --quiet --universal --python-version 3.11 --generate-hashes --extra dev \
  --custom-compile-command "bash scripts/lock.sh" "$@" pyproject.toml "$build_in" -o "$LOCK"
python3 -m tests.lockfile stamp "$LOCK"

venv="$(mktemp -d)/venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --require-hashes --no-deps -r "$LOCK"
"$venv/bin/python" -m pip install -q --no-deps --no-build-isolation -e .
(
  export PATH="$venv/bin:$PATH"
  ruff check .
  ruff format --check .
  mypy
  python -m pytest -q -p no:cacheprovider -n 2 tests/unit tests/middle
)
rm -rf "$(dirname "$venv")"
echo "lock.sh: $LOCK updated and checked"
