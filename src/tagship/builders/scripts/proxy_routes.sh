#!/bin/sh
# Inside the proxy container: put an app's back route and front addresses in place (switch), or
# put back what one switch replaced (unswitch), reloading each tier gracefully.
#   switch CONFIG_DIR BACK_ADMIN FRONT_ADMIN APP RUN BACK_SNIPPET FRONT_SNIPPET
#   unswitch CONFIG_DIR BACK_ADMIN FRONT_ADMIN APP RUN TIER...   (TIER: back or front)
#   reroute CONFIG_DIR BACK_ADMIN FRONT_ADMIN APP RUN BACK_SNIPPET   (after the watch: the back route
#     without its backups; what switch RUN kept for its undo stays, and so does this route if refused)
# RUN names one switch: what it replaced is kept as APP.caddy.prev.RUN (or, for a snippet it
# created, an empty APP.caddy.created.RUN), so an unswitch for RUN touches only the tiers that
# switch changed. An undo that never got the switch's reply (Ctrl-C, a lost connection) can then
# ask for every tier: the ones the switch never reached stay as they are.
# switch prints per tier "TIER same" (identical snippet: no reload, since a front reload closes
# clients' idle keep-alive connections), "TIER changed" or "TIER refused" (Caddy rejected it: the
# previous snippet is back in place). If the front is refused the back goes back too. Last comes
# the upstreams listing, read after the back reload returned: from then on no new request reaches
# the old container, so a zero there means nothing is left to drain.
set -u
action=$1 conf=$2 back_admin=$3 front_admin=$4 app=$5 run=$6
shift 6
# swap TIER SNIPPET ADMIN
swap() {
  f=$conf/$1/$app.caddy
  rm -f -- "$f".prev* "$f".created.*  # what earlier switches kept: only this one's undo remains
  # An empty snippet for an app that has none: nothing to do (an app served on ports has no front snippet).
  if [ -z "$2" ] && [ ! -e "$f" ]; then echo "$1 same"; return 0; fi
  printf '%s' "$2" > "$f.new" || return 1
  if [ -e "$f" ] && cmp -s -- "$f" "$f.new"; then rm -f -- "$f.new"; echo "$1 same"; return 0; fi
  if [ -e "$f" ]; then cp -p -- "$f" "$f.prev.$run"; else : > "$f.created.$run"; fi
  mv -- "$f.new" "$f"
  if caddy reload --config "$conf/$1.caddyfile" --adapter caddyfile --address "$3" >&2; then
    echo "$1 changed"; return 0
  fi
  unswap "$1" "$3" >/dev/null 2>&1
  echo "$1 refused"; return 1
}
# unswap TIER ADMIN: undo this run's change of the tier, if it made one
unswap() {
  f=$conf/$1/$app.caddy
  if [ -e "$f.prev.$run" ]; then
    mv -- "$f.prev.$run" "$f"
  elif [ -e "$f.created.$run" ]; then
    rm -f -- "$f" "$f.created.$run"
  else
    return 0
  fi
  caddy reload --config "$conf/$1.caddyfile" --adapter caddyfile --address "$2" >&2
}
# upstreams: the listing that ends a switch or a reroute, read after the back tier reloaded
upstreams() {
  echo upstreams
  wget -q -O - "http://$back_admin/reverse_proxy/upstreams" || true
}
case $action in
  switch)
    swap back "$1" "$back_admin" || exit 1
    if ! swap front "$2" "$front_admin"; then unswap back "$back_admin"; exit 1; fi
    upstreams
    ;;
  reroute)
    f=$conf/back/$app.caddy
    cp -p -- "$f" "$f.watched" || exit 1
    # A write that fails half way puts the watched route back too, not only a refused reload.
    if ! { printf '%s' "$1" > "$f" && caddy reload --config "$conf/back.caddyfile" --adapter caddyfile --address "$back_admin" >&2; }; then
      mv -- "$f.watched" "$f"; exit 1
    fi
    rm -f -- "$f.watched"
    upstreams
    ;;
  unswitch)
    for tier in "$@"; do
      case $tier in back) unswap back "$back_admin" ;; front) unswap front "$front_admin" ;; esac || exit 1
    done
    ;;
  *) echo "proxy_routes.sh: unknown action $action" >&2; exit 2 ;;
esac
