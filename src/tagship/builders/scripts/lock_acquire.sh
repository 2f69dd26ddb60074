#!/bin/sh
# Take the deploy lock: mkdir is atomic, so exactly one concurrent caller creates $1/lock.
# $1: the state directory (PROJECT/.tagship). Stdin: the holder's details, kept as holder.json.
# Exit 3, printing the holder, when the lock is already held. lock/connection gets the PID of this
# SSH connection's sshd process: every session of the connection (the persistent shell, or one
# session per command) runs under it, and it lives exactly as long as the connection. With no sshd
# among the ancestors (a local run) it gets $PPID, the process that ran this script.
set -eu
dir=$1
mkdir -p -- "$dir"
if ! mkdir -- "$dir/lock" 2>/dev/null; then
  cat -- "$dir/lock/holder.json" 2>/dev/null || true
  exit 3
fi
cat > "$dir/lock/holder.json"
connection=$PPID
pid=$$
while [ "$pid" -gt 1 ]; do
  { read -r stat < "/proc/$pid/stat"; } 2>/dev/null || break
  # "PID (COMM) STATE PPID ...": COMM may hold spaces and ")", so read on after the last ")".
  stat=${stat##*")"}
  stat=${stat#" "*" "}
  pid=${stat%%" "*}
  case $pid in '' | *[!0-9]*) break ;; esac
  { read -r comm < "/proc/$pid/comm"; } 2>/dev/null || break
  case $comm in sshd*) connection=$pid; break ;; esac
done
echo "$connection" > "$dir/lock/connection"
