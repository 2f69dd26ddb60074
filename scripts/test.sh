#!/usr/bin/env bash
# Set up the lab (Docker engine, TLS registry, SSH servers in network namespaces) and run every
# check and test: ruff, mypy, shellcheck on the remote scripts, then pytest over unit and lab
# tiers. Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-system.sh
python3 -m pip install -q -e '.[dev]'
python3 -m lab up --servers 3

ruff check .
ruff format --check .
mypy
shellcheck --shell=sh src/tagship/builders/scripts/*.sh
python3 -m pytest -v -p no:cacheprovider "$@"
