#!/bin/sh
# The run's own docker client config directory on a server, printed: the registry login of this run
# lands there (DOCKER_CONFIG=DIR), never in the user's ~/.docker, and goes when the run ends.
# Everything else the user's docker CLI reads keeps working through it: their config.json is
# copied (their own logins to other registries, proxies, credential helpers), the rest is linked
# (cli-plugins: a Compose v2 plugin installed for this user only; contexts).
# umask 077: the directory and the copy are the user's alone from their first byte (credentials).
set -eu
umask 077
dir=$(mktemp -d /tmp/tagship-docker.XXXXXXXX)
own=${DOCKER_CONFIG:-$HOME/.docker}
if [ -d "$own" ]; then
    for entry in "$own"/* "$own"/.[!.]*; do
        [ -e "$entry" ] || [ -L "$entry" ] || continue
        name=${entry##*/}
        if [ "$name" = config.json ]; then
            cp -- "$entry" "$dir/config.json"
        else
            ln -s -- "$entry" "$dir/$name"
        fi
    done
fi
printf '%s\n' "$dir"
