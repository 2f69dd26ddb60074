"""python -m lab up [--servers N] [--slots K] [--hidden|--no-hidden] | down [--purge] [--keep-engine] | status |
caddy-image | haproxy-image | django-images"""

from __future__ import annotations

import argparse
import sys
import time

from . import LabError, caddy_image, down, ensure_django_images, haproxy_image, status, up


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="start the lab, or check and repair a running one")
    p_up.add_argument("--servers", type=int, default=2, help="number of servers in each slot (default 2)")
    p_up.add_argument("--slots", type=int, default=1, help="slots of servers, one per parallel test worker (default 1)")
    p_up.add_argument(
        "--hidden",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also a hidden server per slot, tslab-jN, reachable only through tslab-hN, the slot's first server "
        "(default: as the last up left it)",
    )
    p_down = sub.add_parser("down", help="stop every lab process, delete namespaces and links")
    p_down.add_argument("--purge", action="store_true", help="also delete all lab state")
    p_down.add_argument("--keep-engine", action="store_true", help="leave the host dockerd running")
    sub.add_parser("status", help="show what runs (exit 1 if anything is unhealthy)")
    sub.add_parser("caddy-image", help="build the local Caddy stand-in image only; print its name")
    sub.add_parser("haproxy-image", help="build the local HAProxy stand-in image only; print its name")
    sub.add_parser("django-images", help="build (once) and push the Django base and Redis images")
    args = parser.parse_args(argv)

    try:
        if args.cmd == "up":
            t0 = time.monotonic()
            views = [up(args.servers, args.hidden, args.slots, slot) for slot in range(args.slots)]
            lab = views[0]
            print(f"lab up in {time.monotonic() - t0:.1f}s (state {lab.root})")
            print(
                f"registry     {lab.registry}  user {lab.registry_user}  "
                f"password in {lab.root / 'registry' / 'password'}"
            )
            print(f"ca cert      {lab.ca_cert}")
            print(f"caddy image  {lab.caddy_image}")
            print(f"haproxy image {lab.haproxy_image}")
            for slot, view in enumerate(views):
                for s in view.servers:
                    print(f"server       {s.name}  {s.ip}  DOCKER_HOST={s.docker_host}  slot {slot}")
                if view.hidden:
                    h = view.hidden
                    print(f"hidden       {h.name}  {h.ip}  DOCKER_HOST={h.docker_host}  only through {h.bastion}")
            return 0
        if args.cmd == "down":
            down(purge=args.purge, host_engine=not args.keep_engine)
            print("lab down" + (" (purged)" if args.purge else ""))
            return 0
        if args.cmd == "caddy-image":
            print(caddy_image())
            return 0
        if args.cmd == "haproxy-image":
            print(haproxy_image())
            return 0
        if args.cmd == "django-images":
            t0 = time.monotonic()
            built = ensure_django_images()
            for image, seconds in built.items():
                print(f"built {image} in {seconds:.1f}s")
            print(f"django images ready in {time.monotonic() - t0:.1f}s")
            return 0
        checks = status()
        for c in checks:
            print(f"{'ok ' if c.ok else 'BAD'}  {c.part:12} {c.detail}")
        return 0 if all(c.ok for c in checks) else 1
    except LabError as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
