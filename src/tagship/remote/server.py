"""Server addresses as users write them, parsed into what the ssh client needs."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from tagship.errors import ConfigError
from tagship.messages import t

LOCAL = "local"

# Options of the ssh command line that users put in REMOTE_HOST ("user@host -p 2022").
_FLAG_OPTIONS = {"-p": "Port", "-i": "IdentityFile", "-J": "ProxyJump", "-l": "User"}
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MAX_ADDRESS = 1000
_HOST_RE = re.compile(r"^[A-Za-z0-9_.\-]+$|^\[[0-9A-Fa-f:.]+\]$|^[0-9A-Fa-f:]+:[0-9A-Fa-f:]*$")
# One hop of a ProxyJump chain as ssh takes it: [ssh://][user@]host[:port], host a name, an alias or [v6].
_JUMP_HOP_RE = re.compile(
    r"(?:ssh://)?(?:[A-Za-z0-9_.][A-Za-z0-9_.-]*@)?(?:[A-Za-z0-9_.][A-Za-z0-9_.-]*|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?"
)
# -o Key=Value, Key Value or Key = Value, as ssh_config reads a line: the key ends at the first space
# or "=", whichever comes first (a value keeps its own spaces and "=": ProxyCommand=ssh -W %h:%p b).
_OPTION_RE = re.compile(r"([^\s=]+)(?:\s*=\s*|\s+)(.*)", re.DOTALL)
# Options that choose how ssh reaches a host: the address's own wins over ssh.jump.
PROXY_OPTIONS = ("proxyjump", "proxycommand")


@dataclass(frozen=True)
class Server:
    """One deploy target: an ssh destination (or the local machine) and its project path."""

    raw: str
    host: str  # host name, address or ssh_config alias; "local" for the local machine
    user: str = ""
    port: int | None = None
    options: tuple[tuple[str, str], ...] = ()  # ssh -o Key=Value pairs from the address
    path: str = ""

    @property
    def is_local(self) -> bool:
        return self.host == LOCAL

    @property
    def name(self) -> str:
        """Short name used as the output prefix."""
        return self.host if not self.user else f"{self.user}@{self.host}"

    @property
    def has_own_proxy(self) -> bool:
        """The address names its own way in (-J, -o ProxyJump= or -o ProxyCommand=): ssh.jump does not apply."""
        return any(key.lower() in PROXY_OPTIONS for key, _ in self.options)

    def jump_host(self, jump: str) -> str:
        """The ProxyJump tagship gives ssh for this server: the address's own -J, else jump (ssh.jump)."""
        own = [value for key, value in self.options if key.lower() == "proxyjump"]
        if own:
            return own[0]
        return "" if self.has_own_proxy or self.is_local else jump

    def jump_args(self, jump: str) -> list[str]:
        """ssh arguments reaching this server through jump (ssh.jump), unless its address names its own way."""
        return ["-J", jump] if jump and not self.has_own_proxy and not self.is_local else []

    def ssh_args(self) -> list[str]:
        """Arguments for the ssh client selecting this destination (before the remote command)."""
        args: list[str] = []
        if self.port is not None:
            args += ["-p", str(self.port)]
        if self.user:
            args += ["-l", self.user]
        for key, value in self.options:
            args += ["-o", f"{key}={value}"]
        args.append(self.host)
        return args


def parse(text: str, path: str = "", where: str = "server") -> Server:
    """Parse user@host, user@host:port, ssh://user@host:port, an alias, 'local' or 'user@host -p N'."""
    if _CONTROL_RE.search(text) or len(text) > MAX_ADDRESS:
        # Stripping a trailing newline would hide a copy-paste or templating mistake: refuse it instead.
        raise ConfigError(
            t("server.control_characters_more_than", where=where, MAX_ADDRESS=MAX_ADDRESS, text=text[:80])
        )
    raw = text.strip()
    if not raw:
        raise ConfigError(t("server.empty_server_address", where=where))
    if raw == LOCAL:
        return Server(raw=raw, host=LOCAL, path=path)
    try:
        words = shlex.split(raw)
    except ValueError as exc:
        raise ConfigError(t("server.cannot_parse", where=where, raw=raw, exc=exc)) from exc
    destination, options = _split_flags(words, raw, where)
    user, host, port = _split_destination(destination, raw, where)
    opt_port = dict(options).pop("Port", None)
    opt_user = dict(options).get("User", "")
    rest = tuple((k, v) for k, v in options if k not in ("Port", "User"))
    if opt_port is not None:
        port = _port(opt_port, raw, where)
    for key, value in rest:
        problem = jump_problem(value) if key.lower() == "proxyjump" else None
        if problem:
            raise ConfigError(t("server.invalid_jump_host", where=where, value=value[:80], raw=raw, problem=problem))
    return Server(raw=raw, host=host, user=user or opt_user, port=port, options=rest, path=path)


def _split_flags(words: list[str], raw: str, where: str) -> tuple[str, list[tuple[str, str]]]:
    destination = ""
    options: list[tuple[str, str]] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word in _FLAG_OPTIONS or word == "-o":
            if i + 1 >= len(words):
                raise ConfigError(t("server.needs_value", where=where, word=word, raw=raw))
            value = words[i + 1]
            if word == "-o":
                found = _OPTION_RE.fullmatch(value.strip())
                if not found:
                    raise ConfigError(t("server.o_needs_key_value", where=where, raw=raw))
                options.append((found.group(1), found.group(2)))
            else:
                options.append((_FLAG_OPTIONS[word], value))
            i += 2
        elif word.startswith("-"):
            raise ConfigError(
                t("server.unsupported_ssh_flag", where=where, word=word, raw=raw),
                hint=t("server.put_ssh_config_that"),
            )
        elif destination:
            raise ConfigError(t("server.more_than_one_host", where=where, raw=raw))
        else:
            destination = word
            i += 1
    if not destination:
        raise ConfigError(t("server.no_host", where=where, raw=raw))
    return destination, options


def _split_destination(dest: str, raw: str, where: str) -> tuple[str, str, int | None]:
    port: int | None = None
    if dest.startswith("ssh://"):
        dest = dest[len("ssh://") :].rstrip("/")
    user, _, hostport = dest.rpartition("@")
    host = hostport
    if hostport.startswith("["):  # [v6]:port
        end = hostport.find("]")
        host, rest = hostport[1:end], hostport[end + 1 :]
        if rest.startswith(":"):
            port = _port(rest[1:], raw, where)
    elif hostport.count(":") == 1:
        host, port_text = hostport.split(":")
        port = _port(port_text, raw, where)
    if not host or not _HOST_RE.match(host) or host.startswith("-"):
        raise ConfigError(t("server.invalid_host", where=where, host=host, raw=raw))
    if user and (user.startswith("-") or any(c.isspace() for c in user)):
        raise ConfigError(t("server.invalid_user", where=where, user=user, raw=raw))
    return user, host, port


def _port(text: str, raw: str, where: str) -> int:
    # str.isdigit is true for "٢٢" and int() reads it: ssh would get digits it does not know.
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 65536:
        raise ConfigError(t("server.invalid_port", where=where, text=text, raw=raw))
    return int(text)


def jump_problem(spec: str) -> str | None:
    """What is wrong with a ProxyJump spec (user@bastion:22, an ssh_config alias, hops joined by commas), or None."""
    if _CONTROL_RE.search(spec):
        return t("server.jump_control")
    if len(spec) > MAX_ADDRESS:
        return t("server.jump_too_long", most=MAX_ADDRESS)
    for hop in spec.split(","):
        if not hop:
            return t("server.jump_empty_hop")
        if hop.startswith("-"):
            return t("server.jump_dash", hop=hop[:80])
        if any(c.isspace() for c in hop):
            return t("server.jump_spaces", hop=hop[:80])
        shape = _JUMP_HOP_RE.fullmatch(hop)
        if not shape:
            return t("server.jump_shape", hop=hop[:80])
        if shape.group(1) is not None and not 0 < int(shape.group(1)) < 65536:
            return t("server.jump_port", hop=hop[:80])
    return None
