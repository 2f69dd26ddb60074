#!/bin/sh
# The run's own docker client config directory on a server, printed: the registry login of this run
# lands there (DOCKER_CONFIG=DIR), never in the user's ~/.docker, and goes when the run ends.
# Everything else the user's docker CLI reads keeps working through it: their config.json is
# copied (their own logins to other registries, proxies, credential helpers), the rest is linked
# (cli-plugins: a Compose v2 plugin installed for this user only; contexts).
# umask 077: the directory and the copy are the user's alone from their first byte (credentials).
# A run killed with SIGKILL cannot remove its directory: each directory names its run's connection
# (tagship-connection: the PID of the SSH connection's sshd, found as lock_acquire.sh finds it, or
# $PPID without one), and this script first removes this user's directories whose connection is
# gone. A directory without that file (one being made right now) is left alone.
set -eu
umask 077
if [ -d "/proc/$$" ]; then # without /proc no connection can be seen alive: remove nothing
  # Builtins only (test -O, read): /tmp may hold many such directories, and a process per
  # directory made this script take 0.2 s on a server with sixty.
  for old in /tmp/tagship-docker.*; do
    if [ -L "$old" ] || [ ! -d "$old" ] || [ ! -O "$old" ]; then continue; fi
    { read -r owner < "$old/tagship-connection"; } 2>/dev/null || continue
    case $owner in '' | *[!0-9]*) continue ;; esac
    [ -d "/proc/$owner" ] || rm -rf -- "$old"
  done
fi
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
dir=$(mktemp -d /tmp/tagship-docker.XXXXXXXX)
echo "$connection" > "$dir/tagship-connection"
own=${DOCKER_CONFIG:-$HOME/.docker}
if [ -d "$own" ]; then
    for entry in "$own"/* "$own"/.[!.]*; do
        [ -e "$entry" ] || [ -L "$entry" ] || continue
        name=${entry##*/}
        if [ "$name" = config.json ]; then
            cp -- "$entry" "$dir/config.json"
        elif [ "$name" != tagship-connection ]; then
            ln -s -- "$entry" "$dir/$name"
        fi
    done
fi
printf '%s\n' "$dir"
