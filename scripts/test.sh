#!/usr/bin/env bash
# The README's test command, and CI's (.ci/run). Run as root on Debian 12.
#   bash scripts/test.sh              everything: checks, unit, middle and lab tiers, then a time table
#   bash scripts/test.sh ARGS...      set up the same way, then only `pytest ARGS...` (e.g. one file)
# Installs what a new machine lacks (scripts/install-system.sh), a virtualenv from the lock
# (requirements/dev.lock, hashes checked), starts the lab (`python -m lab up`: Docker engine, registry,
# SSH servers) in the background while ruff, mypy, shellcheck and the unit and middle tiers run, then
# runs the lab tier on TAGSHIP_TEST_WORKERS parallel workers (default 4), each on a slot of servers of
# its own. Ends with a table of its phases and the 15 slowest tests.
# shellcheck disable=SC2317  # the functions below run through `phase` and the EXIT trap
set -euo pipefail
cd "$(dirname "$0")/.."

WORKERS="${TAGSHIP_TEST_WORKERS:-4}"
OUT="$(mktemp -d "${TMPDIR:-/tmp}/tagship-test.XXXXXX")"
START="$(date +%s%N)"
: >"$OUT/phases.tsv"

# phase NAME CMD...: run CMD, record its wall time and result.
phase() {
  local name="$1" began rc=0
  shift
  began="$(date +%s%N)"
  echo "==> $name" >&2
  "$@" || rc=$?
  printf '%s\t%s\t%s\n' "$name" "$(since "$began")" "$rc" >>"$OUT/phases.tsv"
  return "$rc"
}

since() { echo "$(( ($(date +%s%N) - $1) / 1000000 ))"; }  # milliseconds since a `date +%s%N`

report() {
  local rc=$?
  printf 'total\t%s\t%s\n' "$(since "$START")" "$rc" >>"$OUT/phases.tsv"
  if [ -x .venv/bin/python ]; then .venv/bin/python scripts/report.py "$OUT"; else cat "$OUT/phases.tsv"; fi
  exit "$rc"
}
trap report EXIT

# pip in .venv, its output shown only when it fails (this machine's pip config adds a warning per
# package about a local index folder that does not exist); its exit code is pip's.
pip_quietly() {
  local log="$OUT/pip.log" rc=0
  .venv/bin/python -m pip "$@" --quiet --disable-pip-version-check >"$log" 2>&1 || rc=$?
  if [ "$rc" != 0 ]; then cat "$log" >&2; fi
  return "$rc"
}

# The functions below chain their commands with &&: `phase` runs them as `"$@" || rc=$?`, where
# bash ignores set -e inside them, and a failing ruff would otherwise be hidden by a passing shellcheck.
install_venv() {
  { [ -x .venv/bin/python ] || python3 -m venv .venv; } &&
    # Exactly the lock's versions, checked by hash; the project itself (editable) adds nothing to them.
    pip_quietly install --require-hashes --no-deps -r requirements/dev.lock &&
    pip_quietly install --no-deps --no-build-isolation -e . &&
    .venv/bin/python -m pip check >&2
}

checks() {
  ruff check . &&
    ruff format --check . &&
    mypy &&
    shellcheck --shell=sh src/tagship/builders/scripts/*.sh &&
    shellcheck scripts/*.sh .ci/run
}

phase "install system packages" bash scripts/install-system.sh
phase "virtualenv from the lock" install_venv
export PATH="$PWD/.venv/bin:$PATH" VIRTUAL_ENV="$PWD/.venv"
export PYTHONDONTWRITEBYTECODE=1

# The lab starts in the background: its engines boot while the checks and fast tiers use the CPUs.
(
  began="$(date +%s%N)" rc=0
  python -m lab up --servers 3 --slots "$WORKERS" --hidden >"$OUT/lab-up.log" 2>&1 || rc=$?
  printf '%s\t%s\t%s\n' "lab up (in the background)" "$(since "$began")" "$rc" >"$OUT/lab-up.tsv"
  exit "$rc"
) &
LAB_UP=$!

if [ "$#" -gt 0 ]; then
  wait "$LAB_UP" || { cat "$OUT/lab-up.log" >&2; exit 1; }
  cat "$OUT/lab-up.tsv" >>"$OUT/phases.tsv"
  phase "pytest $*" python -m pytest -p no:cacheprovider -n "$WORKERS" --junitxml="$OUT/args.xml" "$@" || exit $?
  exit 0
fi

failed=0
phase "ruff, mypy, shellcheck" checks || failed=1
phase "unit and middle tiers" python -m pytest -p no:cacheprovider -q -n 2 -m "not lab" \
  --junitxml="$OUT/fast.xml" tests || failed=1
lab_rc=0
wait "$LAB_UP" || lab_rc=$?
cat "$OUT/lab-up.tsv" >>"$OUT/phases.tsv"
if [ "$lab_rc" != 0 ]; then
  cat "$OUT/lab-up.log" >&2
  exit 1
fi
phase "lab tier ($WORKERS workers)" python -m pytest -p no:cacheprovider -n "$WORKERS" -m lab \
  --junitxml="$OUT/lab.xml" tests || failed=1
exit "$failed"
