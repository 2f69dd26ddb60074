#!/bin/sh
# Free the lock whoever holds it. $1: the state directory (PROJECT/.tagship).
rm -rf -- "$1/lock"
