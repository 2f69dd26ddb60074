#!/bin/sh
# Replace a file atomically with stdin: a temporary file beside it, the old mode and owner, then a
# rename (in place when the owner cannot be kept). A symlink is followed, so the link keeps pointing at the real file.
# $1: the file; $2: the octal mode for a new file; $3 (optional): "private": no access for group
# and others, whatever the old mode (the file now holds secrets).
# The temporary file is 0600 from its creation (mktemp, umask 077) until its bytes are in, and a
# private file's final mode has no bits for group and others: a secret is never in a file others
# can read, not even for a moment.
set -eu
umask 077
target=$1
private=${3:-}
if [ -L "$target" ]; then target=$(readlink -f -- "$target"); fi
dir=$(dirname -- "$target"); base=$(basename -- "$target")
mkdir -p -- "$dir"
tmp=$(mktemp "$dir/.$base.tagship.XXXXXX")
trap 'rm -f -- "$tmp"' EXIT
if [ -e "$target" ]; then mode=$(stat -c %a -- "$target"); else mode=$2; fi
if [ "$private" = private ]; then mode=$(printf '%o' $((0$mode & 07700))); fi
cat > "$tmp" # still 0600 (mktemp): writable even when the final mode is read-only
chmod "$mode" "$tmp"
if [ -e "$target" ] && ! chown "$(stat -c %u:%g -- "$target")" "$tmp" 2>/dev/null; then
  # Not allowed to give the new file the old one's owner (someone else's file, and we are not
  # root). Private content: the rename still happens (the file becomes ours, readable by us
  # alone): writing it in place would put the secrets in a file we may not make private.
  # Otherwise write it in place, which keeps owner and mode (not atomic, but the owner never
  # changes behind the user's back).
  if [ "$private" != private ]; then
    cat -- "$tmp" > "$target"
    exit 0
  fi
fi
mv -f -- "$tmp" "$target"
trap - EXIT
