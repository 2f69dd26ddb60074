#!/bin/sh
# Create a Docker network unless it exists. $1: the network's name.
docker network inspect "$1" >/dev/null 2>&1 || docker network create "$1"
