"""At least 200 hostile values through the real SSH path to a lab server: each arrives as one argument,
byte for byte, through the persistent shell and through an SSH session of its own, and none runs
anything (a canary file that any executed fragment would create never appears).

The server's `sh` is dash (Debian's), then bash, then BusyBox's: each lab server has a mount
namespace of its own, so the test binds bash or busybox over that server's dash (what /bin/sh
points to) for its own run, and takes it away after. Root's login shell there is bash, which runs
the ssh command line in both paths; `sh` runs the persistent shell's loop and each request's line.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator

import pytest

import lab
from tagship.builders.command import Command
from tagship.output import Output
from tagship.remote import server as server_mod
from tagship.remote.transport import SshTransport
from tests.apprepo import ssh

CANARY = "/tmp/tagship-hostile-canary"

# Fragments that a shell would act on if a value reached it unquoted.
FRAGMENTS = [
    f"$(touch {CANARY})",
    f"`touch {CANARY}`",
    f";touch {CANARY}",
    f"|touch {CANARY}",
    f"&touch {CANARY}",
    f"&&touch {CANARY}",
    f"||touch {CANARY}",
    f"\ntouch {CANARY}\n",
    f"\rtouch {CANARY}",
    f"${{IFS}}touch${{IFS}}{CANARY}",
    f"'; touch {CANARY}; '",
    f'"; touch {CANARY}; "',
    f"\\'; touch {CANARY} #",
    f"> {CANARY}",
    f"$'\\x3b'touch {CANARY}",
]
# Surroundings each fragment is tried in.
SHAPES = [
    "{}",
    "-{}",
    "--{}",
    " {} ",
    "x{}y",
    "'{}'",
    '"{}"',
    "{}\\",
    "ünï {} 中文",
    "\t{}\t",
    "$HOME{}",
    "*{}?",
    "~/{}",
    "{}#comment",
]
SINGLES = [
    "",
    " ",
    "-",
    "--",
    "-n",
    "-e",
    "$",
    "$$",
    "\\",
    "'",
    '"',
    "`",
    "\n",
    "\r\n",
    "*",
    "~",
    "!",
    "#",
    "%s",
    "{a,b}",
    "a" * 5000,
    "\x7f",
    "\x1b[31mred",
    "\u202eevil",
    "\udcff\udcfe invalid utf-8",
]


# argc and the first argument's bytes, hex-encoded so that nothing is lost on the way back.
SHOW = 'printf "%s:" "$#"; printf "%s" "$1" | od -v -An -tx1 | tr -d " \\n"'


def hostile_values() -> list[str]:
    values = [shape.format(fragment) for fragment, shape in itertools.product(FRAGMENTS, SHAPES)]
    return values + SINGLES


# What `sh --help` says first, by shell: how the test knows which one answered.
SIGNATURES = {"dash": "Illegal option", "bash": "GNU bash", "busybox": "BusyBox"}
SH_BINARIES = {"bash": "/usr/bin/bash", "busybox": "/usr/bin/busybox"}
DASH = "/usr/bin/dash"  # /bin/sh -> dash on the lab servers


@pytest.fixture(params=["dash", "bash", "busybox"])
def server_sh(request: pytest.FixtureRequest, the_lab: lab.Lab) -> Iterator[tuple[lab.LabServer, str]]:
    """The last lab server with that shell as its `sh` (in its own mount namespace, for this test only)."""
    server, shell = the_lab.servers[-1], str(request.param)
    if shell in SH_BINARIES:
        bound = ssh(server, "mount", "--bind", SH_BINARIES[shell], DASH)
        assert bound.returncode == 0, bound.stderr
    try:
        said = ssh(server, "sh", "-c", "sh --help 2>&1 | head -n 1")
        assert SIGNATURES[shell] in said.stdout + said.stderr, f"sh is not {shell}: {said.stdout}"
        yield server, shell
    finally:
        if shell in SH_BINARIES:
            ssh(server, "umount", DASH)


def test_two_hundred_hostile_values_arrive_as_one_argument_each_and_run_nothing(
    server_sh: tuple[lab.LabServer, str],
) -> None:
    h1, sh_name = server_sh
    values = hostile_values()
    assert len(values) >= 200
    ssh(h1, "rm", "-f", CANARY)
    out = Output(out=io.StringIO(), err=io.StringIO())
    transport = SshTransport(server=server_mod.parse(h1.name), out=out)
    try:
        transport.connect()
        assert transport._shell is not None, f"the persistent shell runs under {sh_name}"
        said = transport.run(Command(("sh", "-c", "sh --help 2>&1 | head -n 1")), show=False, check=False)
        assert SIGNATURES[sh_name] in said.stdout, said.stdout
        for value in values:
            cmd = Command(("sh", "-c", SHOW, "-", value))
            expected = f"1:{value.encode('utf-8', 'surrogateescape').hex()}"
            shell = transport.run(cmd, show=False)  # the persistent shell
            assert shell.stdout == expected, f"through the shell: {value!r:.80}"
            session = transport.run(cmd, show=False, stream=True)  # an SSH session of its own
            assert session.stdout.strip() == expected, f"through a session: {value!r:.80}"
        assert transport._shell is not None and transport._shell.alive, f"the persistent shell survived {sh_name}"
    finally:
        transport.close()
    canary = ssh(h1, "test", "-e", CANARY)
    assert canary.returncode == 1, "a fragment of a value was executed on the server"
